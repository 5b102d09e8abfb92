// The backup file of totemkvd: what Maintenance.Snapshot streams (so
// `etcdctl snapshot save` and `tkv snapshot save` write it verbatim) and what
// `totemkvd --restore-snapshot FILE` turns back into a data directory. It is
// our own format, not etcd's bbolt file (etcdctl snapshot restore/status do
// not read it), but it ends like etcd's stream: the file is padded to a
// multiple of 512 bytes plus a trailing SHA-256 of everything before it, the
// shape etcdctl 3.4's save checks ("sha256 checksum not found" otherwise).
//
// Layout (version 1, integers big-endian):
//   header: "totemkv-snapshot"(16) version(4)=1 flags(4)=0 member_id(8)
//           revision(8) compacted(8)      -- 48 bytes; revision = the
//           member's revision when the export began (the image holds at
//           least that); informational
//   frames: length(4, 1..kMaxFrameBytes) + one MvccStore export chunk
//           (kvstore/mvcc_store.h; each chunk checks itself)
//   end:    length(4)=0 chunk_count(4)
//   zeros until the offset is a multiple of 512, then SHA-256(32) of all
//   bytes before it.
//
// Restoring creates <data-dir>/db holding exactly the snapshot's replicated
// state (the keyspace, its history, leases, the dedup window), minus the old
// cluster's stored member list: the restored cluster's --initial-cluster
// decides its members. Its engine meta says "applied the order up to the
// snapshot's position, and came from a primary" (prim_number 1), so it is
// the donor when the cluster starts: members started with an empty data dir
// are rebuilt from it by state transfer once every configured member is up.
// The chain hash of the restored order is taken from the file's SHA-256, so
// members restored from the same file agree and ones restored from
// different files are told apart (one of them is rebuilt from the other).
#ifndef TOTEMKV_SERVER_SNAPSHOT_FILE_H_
#define TOTEMKV_SERVER_SNAPSHOT_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "kvstore/mvcc_store.h"
#include "totem/status.h"

namespace totemkv::server {

inline constexpr char kSnapshotMagic[] = "totemkv-snapshot";  // 16 bytes, no NUL
inline constexpr uint32_t kSnapshotVersion = 1;
inline constexpr size_t kSnapshotHeaderBytes = 48;
inline constexpr uint32_t kMaxFrameBytes = 64u << 20;

struct SnapshotHeader {
  uint64_t member_id = 0;
  int64_t revision = 0;
  int64_t compacted = 0;
};

// Encodes an export as the file's bytes, piece by piece (memory stays
// bounded by about two export chunks). Not thread-safe.
class SnapshotStreamWriter {
 public:
  SnapshotStreamWriter(std::unique_ptr<::kvstore::SnapshotExport> source,
                       const SnapshotHeader& header);
  ~SnapshotStreamWriter();
  SnapshotStreamWriter(const SnapshotStreamWriter&) = delete;
  SnapshotStreamWriter& operator=(const SnapshotStreamWriter&) = delete;

  // Replaces `out` by the next piece of about `max_bytes` (more if one
  // chunk is larger). Returns true while more pieces follow, false with the
  // last piece (which ends with the SHA-256). IoError if the export fails
  // to read; kInternal if OpenSSL fails.
  totem::StatusOr<bool> Next(size_t max_bytes, std::string* out);
  // Bytes returned so far.
  uint64_t bytes() const { return bytes_; }

 private:
  struct Sha;
  std::unique_ptr<::kvstore::SnapshotExport> source_;
  SnapshotHeader header_;
  std::unique_ptr<Sha> sha_;
  bool header_done_ = false;
  bool source_done_ = false;
  bool finished_ = false;
  uint32_t chunks_ = 0;
  uint64_t bytes_ = 0;
};

struct RestoreResult {
  SnapshotHeader header;  // as written by the member that took it
  int64_t revision = 0;   // the restored store's revision
  uint64_t green = 0;     // the restored order position
  uint64_t chunks = 0;
  uint64_t file_bytes = 0;
};

// Checks `file` (header, size, SHA-256, every frame and chunk) and creates
// `data_dir`/db from it (see above). Nothing is left behind on failure.
// Errors: InvalidArgument naming the file and what is wrong ("not a
// totemkv snapshot", "truncated", "checksum mismatch", a bad chunk, ...);
// FailedPrecondition if `data_dir`/db already exists; IoError if the file
// cannot be read or the store cannot be written.
totem::StatusOr<RestoreResult> RestoreSnapshot(const std::string& file,
                                               const std::string& data_dir);

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_SNAPSHOT_FILE_H_
