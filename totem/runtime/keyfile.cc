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

#include "totem/node.h"

namespace totem {

namespace {

constexpr std::string_view kHeader = "totem-key v1";
constexpr size_t kMinKeyBytes = 16;
constexpr size_t kMaxKeyBytes = 4096;
constexpr size_t kMaxFileBytes = 64 * 1024;

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

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

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

StatusOr<std::string> ReadKeyFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError(Errno("cannot open key file", path));
  std::string text;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      Status st = IoError(Errno("cannot read key file", path));
      ::close(fd);
      return st;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxFileBytes) {
      ::close(fd);
      return InvalidArgument("key file " + path + " is larger than " +
                             std::to_string(kMaxFileBytes) + " bytes; not a totem key file");
    }
  }
  ::close(fd);

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
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return IoError(Errno("cannot create", tmp));
  // The umask cannot widen 0600, but an inherited ACL could: pin the mode.
  const bool ok = ::fchmod(fd, 0600) == 0 && WriteAll(fd, text) && ::fsync(fd) == 0;
  Status st = ok ? Status::Ok() : IoError(Errno("cannot write", tmp));
  OPENSSL_cleanse(text.data(), text.size());
  if (::close(fd) != 0 && st.ok()) st = IoError(Errno("cannot close", tmp));
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = IoError(Errno("cannot rename " + tmp + " to", path));
  }
  if (!st.ok()) ::unlink(tmp.c_str());
  return st;
}

}  // namespace totem
