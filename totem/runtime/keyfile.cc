// Cluster key files (node.h: ReadKeyFile / WriteKeyFile, `totem-keygen`).
//
// Format, version 1: two text lines,
//     totem-key v1
//     <the key as lowercase hex, 2 digits per byte>
// followed by an optional newline. Readers accept upper-case hex and
// trailing whitespace; anything else is rejected with a message naming the
// problem. Keys are at least 16 bytes. Files are written with mode 0600
// through a temporary file in the same directory and rename(2), so a reader
// never sees a half-written key.
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "file_io.h"
#include "totem/node.h"

namespace totem {

namespace {

constexpr std::string_view kHeader = "totem-key v1";
constexpr size_t kMinKeyBytes = 16;
constexpr size_t kMaxKeyBytes = 4096;
constexpr size_t kMaxFileBytes = 64 * 1024;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

StatusOr<std::string> ReadKeyFile(const std::string& path) {
  StatusOr<std::string> read = runtime::ReadSmallFile(path, kMaxFileBytes, "key file");
  if (!read.ok()) return read.status();
  const std::string& text = read.value();
  std::string_view rest(text);
  const size_t nl = rest.find('\n');
  if (nl == std::string_view::npos || TrimRight(rest.substr(0, nl)) != kHeader) {
    return InvalidArgument("key file " + path + " is not a totem key file (first line must be '" +
                           std::string(kHeader) + "'; make one with totem-keygen)");
  }
  std::string_view hex = TrimRight(rest.substr(nl + 1));
  if (hex.find('\n') != std::string_view::npos) {
    return InvalidArgument("key file " + path + " is corrupt: more than one key line");
  }
  if (hex.size() % 2 != 0) {
    return InvalidArgument("key file " + path + " is corrupt: odd number of hex digits");
  }
  std::string key;
  key.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = HexValue(hex[i]);
    const int lo = HexValue(hex[i + 1]);
    if (hi < 0 || lo < 0) {
      return InvalidArgument("key file " + path + " is corrupt: non-hex character at offset " +
                             std::to_string(nl + 1 + i));
    }
    key.push_back(static_cast<char>((hi << 4) | lo));
  }
  if (key.size() < kMinKeyBytes) {
    return InvalidArgument("key file " + path + " holds a " + std::to_string(key.size()) +
                           "-byte key; at least " + std::to_string(kMinKeyBytes) +
                           " bytes are required");
  }
  return key;
}

Status WriteKeyFile(const std::string& path, size_t bytes) {
  if (bytes < kMinKeyBytes || bytes > kMaxKeyBytes) {
    return InvalidArgument("key size " + std::to_string(bytes) + " bytes is outside [" +
                           std::to_string(kMinKeyBytes) + ", " + std::to_string(kMaxKeyBytes) +
                           "]");
  }
  std::string key(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(bytes)) != 1) {
    return Status(StatusCode::kInternal, "OpenSSL RAND_bytes failed to produce a key");
  }
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text(kHeader);
  text.push_back('\n');
  for (char c : key) {
    const auto b = static_cast<uint8_t>(c);
    text.push_back(kDigits[b >> 4]);
    text.push_back(kDigits[b & 0xF]);
  }
  text.push_back('\n');
  OPENSSL_cleanse(key.data(), key.size());

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  Status st = runtime::ReplaceFileAtomically(path, tmp, text, /*dir_fd=*/-1);
  OPENSSL_cleanse(text.data(), text.size());
  return st;
}

}  // namespace totem
