// The backup file format and restore (see snapshot_file.h).
#include "snapshot_file.h"

#include <openssl/evp.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "kvstore/replication.h"
#include "replicated_storage.h"

namespace totemkv::server {

namespace {

using totem::Status;
using totem::StatusOr;

constexpr size_t kShaBytes = 32;
constexpr size_t kAlign = 512;
constexpr size_t kEndBytes = 8;  // length 0 + chunk count

void PutU32(std::string* out, uint32_t v) {
  for (int i = 3; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutU64(std::string* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetBE(const char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

// A SHA-256 over a stream (OpenSSL's EVP interface).
class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) {
    ok_ = ctx_ != nullptr && EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) == 1;
  }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const char* data, size_t n) {
    if (ok_ && n > 0) ok_ = EVP_DigestUpdate(ctx_, data, n) == 1;
  }
  // The digest; empty if OpenSSL failed anywhere.
  std::string Final() {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int len = 0;
    if (!ok_ || EVP_DigestFinal_ex(ctx_, md.data(), &len) != 1 || len != kShaBytes) return {};
    return std::string(reinterpret_cast<const char*>(md.data()), len);
  }

 private:
  EVP_MD_CTX* ctx_;
  bool ok_ = false;
};

Status Bad(const std::string& file, const std::string& why) {
  return totem::InvalidArgument("snapshot " + file + ": " + why);
}

// Reads exactly n bytes; false at end of file.
bool ReadExact(std::ifstream& in, char* buf, size_t n) {
  in.read(buf, static_cast<std::streamsize>(n));
  return static_cast<size_t>(in.gcount()) == n;
}

}  // namespace

struct SnapshotStreamWriter::Sha : Sha256 {};

SnapshotStreamWriter::SnapshotStreamWriter(std::unique_ptr<::kvstore::SnapshotExport> source,
                                           const SnapshotHeader& header)
    : source_(std::move(source)), header_(header), sha_(std::make_unique<Sha>()) {}

SnapshotStreamWriter::~SnapshotStreamWriter() = default;

StatusOr<bool> SnapshotStreamWriter::Next(size_t max_bytes, std::string* out) {
  out->clear();
  if (finished_) return false;
  if (!header_done_) {
    out->append(kSnapshotMagic, 16);
    PutU32(out, kSnapshotVersion);
    PutU32(out, 0);
    PutU64(out, header_.member_id);
    PutU64(out, static_cast<uint64_t>(header_.revision));
    PutU64(out, static_cast<uint64_t>(header_.compacted));
    header_done_ = true;
  }
  std::string chunk;
  while (!source_done_ && out->size() < max_bytes) {
    StatusOr<bool> more = source_->Next(max_bytes - out->size(), &chunk);
    if (!more.ok()) return more.status();
    if (!*more) {  // the previous chunk was the last one
      source_done_ = true;
      break;
    }
    if (chunk.empty() || chunk.size() > kMaxFrameBytes) {
      return Status(totem::StatusCode::kInternal,
                    "snapshot: export chunk of " + std::to_string(chunk.size()) + " bytes");
    }
    PutU32(out, static_cast<uint32_t>(chunk.size()));
    out->append(chunk);
    ++chunks_;
  }
  if (source_done_) {
    PutU32(out, 0);
    PutU32(out, chunks_);
    const uint64_t total = bytes_ + out->size();
    out->append((kAlign - total % kAlign) % kAlign, '\0');
  }
  sha_->Update(out->data(), out->size());
  if (source_done_) {
    const std::string digest = sha_->Final();
    if (digest.size() != kShaBytes) {
      return Status(totem::StatusCode::kInternal, "snapshot: SHA-256 failed");
    }
    out->append(digest);
    finished_ = true;
  }
  bytes_ += out->size();
  return !finished_;
}

StatusOr<RestoreResult> RestoreSnapshot(const std::string& file, const std::string& data_dir) {
  namespace fs = std::filesystem;
  RestoreResult result;
  std::error_code ec;
  const uint64_t size = fs::file_size(file, ec);
  if (ec) return totem::IoError("snapshot " + file + ": " + ec.message());
  result.file_bytes = size;
  std::ifstream in(file, std::ios::binary);
  if (!in) return totem::IoError("snapshot " + file + ": cannot open");

  // Header first, for the clearest message on a file of another kind.
  std::array<char, kSnapshotHeaderBytes> head{};
  if (!ReadExact(in, head.data(), head.size()) ||
      std::memcmp(head.data(), kSnapshotMagic, 16) != 0) {
    if (size >= 16 && std::memcmp(head.data(), kSnapshotMagic, 16) != 0) {
      return Bad(file, "not a totemkv snapshot (bad magic; an etcd snapshot needs etcdctl)");
    }
    return Bad(file, "truncated (" + std::to_string(size) + " bytes, shorter than the header)");
  }
  const uint32_t version = static_cast<uint32_t>(GetBE(head.data() + 16, 4));
  if (version != kSnapshotVersion) {
    return Bad(file, "unsupported format version " + std::to_string(version));
  }
  result.header.member_id = GetBE(head.data() + 24, 8);
  result.header.revision = static_cast<int64_t>(GetBE(head.data() + 32, 8));
  result.header.compacted = static_cast<int64_t>(GetBE(head.data() + 40, 8));
  if (size < kSnapshotHeaderBytes + kEndBytes + kShaBytes || (size - kShaBytes) % kAlign != 0) {
    return Bad(file, "truncated or padded: " + std::to_string(size) +
                         " bytes is not a whole snapshot (512*n + 32)");
  }

  // Pass 1: the SHA-256 over everything before the trailer.
  const uint64_t body = size - kShaBytes;
  std::string digest;
  {
    Sha256 sha;
    sha.Update(head.data(), head.size());
    std::vector<char> buf(1 << 20);
    for (uint64_t left = body - head.size(); left > 0;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
      if (!ReadExact(in, buf.data(), n))
        return totem::IoError("snapshot " + file + ": read failed");
      sha.Update(buf.data(), n);
      left -= n;
    }
    std::array<char, kShaBytes> stored{};
    if (!ReadExact(in, stored.data(), stored.size())) {
      return totem::IoError("snapshot " + file + ": read failed");
    }
    digest = sha.Final();
    if (digest.size() != kShaBytes) {
      return Status(totem::StatusCode::kInternal, "snapshot: SHA-256 failed");
    }
    if (std::memcmp(digest.data(), stored.data(), kShaBytes) != 0) {
      return Bad(file,
                 "checksum mismatch (SHA-256 of the contents differs from the trailer: "
                 "the file is corrupt or truncated)");
    }
  }

  // Pass 2: install the chunks into a fresh store beside the final one.
  const fs::path db = fs::path(data_dir) / "db";
  const fs::path staging = fs::path(data_dir) / "db.restoring";
  if (fs::exists(db, ec)) {
    return Status(totem::StatusCode::kFailedPrecondition,
                  "restore: " + db.string() + " already exists (restore into an empty data dir)");
  }
  fs::create_directories(data_dir, ec);
  if (ec) return totem::IoError("restore: cannot create " + data_dir + ": " + ec.message());
  fs::remove_all(staging, ec);
  struct Cleanup {
    fs::path path;
    bool armed = true;
    ~Cleanup() {
      std::error_code ignored;
      if (armed) fs::remove_all(path, ignored);
    }
  } cleanup{staging};

  {
    auto store = ::kvstore::MvccStore::Open(staging.string());
    if (!store.ok()) return store.status();
    std::shared_ptr<::kvstore::MvccStore> shared(std::move(store).value());
    auto storage = ReplicatedStorage::Open(shared, ReplicatedStorageOptions{});
    if (!storage.ok()) return storage.status();
    auto writer = (*storage)->BeginSnapshotInstall();
    if (!writer.ok()) return writer.status();

    in.clear();
    in.seekg(static_cast<std::streamoff>(kSnapshotHeaderBytes));
    uint64_t offset = kSnapshotHeaderBytes;
    std::string chunk;
    for (;;) {
      std::array<char, 4> len_bytes{};
      if (offset + 4 > body || !ReadExact(in, len_bytes.data(), 4)) {
        return Bad(file, "truncated: no end marker");
      }
      offset += 4;
      const uint32_t len = static_cast<uint32_t>(GetBE(len_bytes.data(), 4));
      if (len == 0) break;
      if (len > kMaxFrameBytes || offset + len > body) {
        return Bad(file, "frame of " + std::to_string(len) + " bytes at offset " +
                             std::to_string(offset - 4) + " is out of bounds");
      }
      chunk.resize(len);
      if (!ReadExact(in, chunk.data(), len)) return Bad(file, "truncated frame");
      offset += len;
      Status s = (*writer)->Add(chunk);
      if (!s.ok()) return Bad(file, "chunk " + std::to_string(result.chunks) + ": " + s.message());
      ++result.chunks;
    }
    std::array<char, 4> count_bytes{};
    if (offset + 4 > body || !ReadExact(in, count_bytes.data(), 4)) {
      return Bad(file, "truncated end marker");
    }
    offset += 4;
    if (GetBE(count_bytes.data(), 4) != result.chunks) {
      return Bad(file, "end marker counts " + std::to_string(GetBE(count_bytes.data(), 4)) +
                           " chunks, the file holds " + std::to_string(result.chunks));
    }
    if (body - offset >= kAlign) return Bad(file, "unexpected data after the end marker");

    // The restored lineage: the snapshot's order position, a chain hash of
    // the file, and "came from a primary" so it counts as having data.
    ::kvstore::repl::Meta meta;
    meta.prim_number = 1;
    meta.green_hash = GetBE(digest.data(), 8);
    if (Status s = (*writer)->Commit(meta); !s.ok()) {
      return Bad(file, "install: " + s.message());
    }
    meta.green = shared->Position().seq;
    if (Status s = (*storage)->SaveMeta(meta); !s.ok()) return s;
    // The old cluster's member list would override this cluster's
    // --initial-cluster; drop it.
    if (Status s = shared->WriteAux({::kvstore::AuxWrite::DeleteRange(true, "member/", "member0")});
        !s.ok()) {
      return s;
    }
    result.revision = shared->CurrentRevision();
    result.green = meta.green;
  }
  fs::rename(staging, db, ec);
  if (ec) return totem::IoError("restore: cannot rename " + staging.string() + ": " + ec.message());
  cleanup.armed = false;
  return result;
}

}  // namespace totemkv::server
