// etcd's Maintenance.HashKV over the MvccStore: a CRC-32C (Castagnoli) of
// the key-value history up to a revision, computed exactly as etcd's
// mvcc.hashByRev does over its "key" bucket: the bucket name, then every
// retained revision record in (main, sub) order as its 17-byte revision key
// (8-byte main, '_', 8-byte sub, plus 't' for a tombstone) and the
// marshaled mvccpb.KeyValue (a tombstone holds only the key). Records at or
// below the compacted revision C count only if they are some key's live
// value at the hashed revision (etcd's kvindex.Keep), or, when no key is
// live there, if compaction kept them (each key's live value at C).
// Replicas at the same revision and compacted revision answer the same hash;
// operators compare them across members (etcdctl endpoint hashkv).
// Deviation: the store does not expose the sub-revision of a record at or
// below C (its event log is compacted), so such records of one revision
// are numbered 0, 1, ... in key order; the hash equals etcd's unless a
// compacted revision changed several keys (a txn) in another order, or one
// of them was later overwritten.
#ifndef TOTEMKV_SERVER_HASH_KV_H_
#define TOTEMKV_SERVER_HASH_KV_H_

#include <cstdint>
#include <string_view>

#include "kvstore/mvcc_store.h"
#include "totem/status.h"

namespace totemkv::server {

struct KvHash {
  uint32_t hash = 0;
  int64_t compact_revision = 0;  // the store's compacted revision; -1 if never (etcd)
  int64_t hash_revision = 0;     // the revision hashed
};

// Hashes `store` at `revision` (<= 0: the current revision). Errors, as
// etcd: FAILED_PRECONDITION kvstore::kErrCompacted at or below the
// compacted revision, kvstore::kErrFutureRev beyond the current one (ToGrpcStatus
// makes both etcd's OUT_OF_RANGE); UNAVAILABLE if the store was compacted
// again while hashing (retry); IoError from the store.
totem::StatusOr<KvHash> HashKv(const ::kvstore::MvccStore& store, int64_t revision);

// CRC-32C (Castagnoli, reflected, as Go's crc32.Update with the Castagnoli
// table): continues `crc` over `data`. Crc32c(0, "123456789") = 0xe3069283.
uint32_t Crc32c(uint32_t crc, std::string_view data);

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_HASH_KV_H_
