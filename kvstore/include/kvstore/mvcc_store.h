// MvccStore: the replicated state of totemkv, an etcd-style multi-version
// key-value store on RocksDB (ARCHITECTURE.md §4). Ordered ops are applied
// in delivered batches, each batch as ONE rocksdb::WriteBatch that also
// records the caller's applied position, so a crash never half-applies a
// batch. Apply is a pure function of (state, ops): no clock, randomness or
// node-local state, so replicas hold identical bytes (see Checksum()).
//
// Layout (one column family, one-byte key prefixes, all integers big-endian
// so byte order = numeric order):
//   'i' esc(key) rev(8) sub(4) -> revision record {put|tombstone, create,
//                                version, lease, value}. esc() escapes 0x00
//                                as 00 FF and ends with 00 01, so a key's
//                                records are contiguous and in key order;
//                                reading at revision R = SeekForPrev.
//   'e' rev(8) sub(4)          -> key: the event log, in revision order
//   'l' lease(8)               -> {granted ttl, generation}
//   'a' lease(8) key           -> "" (keys attached to a lease)
//   'd' op_id(16)              -> {window seq, status, message, revision}
//   'q' seq(8)                 -> op_id (the dedup window, oldest first)
//   'm' name                   -> meta: revision, compacted revision,
//                                applied position, applied write count,
//                                counters, format
// Deviation from etcd: compaction at R keeps a tombstone whose revision is
// exactly R (etcd drops it), so watches from R see every event at R.
//
// Revisions: a fresh store is at revision 1 (as etcd). A Put always makes a
// new revision; a DeleteRange that deletes nothing, a Txn whose executed
// branch writes nothing, and a lease revoke/expire of a lease without keys
// do not. Several changes in one op share the revision (sub-revisions).
//
// Duplicate detection: the last `Options::dedup_window` op ids with a
// nonzero id are remembered (persisted, part of the replicated state); a
// retry within that window is not applied again and returns the original
// status and revision (not the response body).
//
// Thread-safety: all methods are safe to call concurrently (one internal
// mutex serializes them); the event callback runs under that mutex and must
// not call back into the store.
#ifndef KVSTORE_MVCC_STORE_H_
#define KVSTORE_MVCC_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kvstore/types.h"

namespace rocksdb {
class DB;
}

namespace kvstore {

struct StoreOptions {
  // fsync the WAL once per ApplyBatch (group commit). Durable by default.
  bool sync = true;
  bool create_if_missing = true;
  // Limits (INVALID_ARGUMENT, nothing changed). They are part of the
  // replicated semantics: every replica must use the same values.
  size_t max_key_bytes = 1536 * 1024;
  size_t max_value_bytes = 1536 * 1024;
  size_t max_request_bytes = 1536 * 1024;  // sum of keys, values, range ends of one op
  size_t max_txn_ops = 128;                // per compare / success / failure list
  uint64_t dedup_window = 100000;          // op ids remembered
};

class MvccStore {
 public:
  // Called after each durable batch with its events in revision order
  // (prev_kv always filled when it exists) and the new revision.
  using EventCallback = std::function<void(const std::vector<Event>& events, int64_t revision)>;

  // Opens (creating if allowed) the store at `path`. IoError if RocksDB
  // refuses; FailedPrecondition if the directory holds another format.
  static StatusOr<std::unique_ptr<MvccStore>> Open(const std::string& path,
                                                   const StoreOptions& options = {});
  ~MvccStore();
  MvccStore(const MvccStore&) = delete;
  MvccStore& operator=(const MvccStore&) = delete;

  // Applies `ops` in order in one WriteBatch together with `position`.
  // Ops in the batch see the effects of earlier ops of the batch. Returns
  // one result per op (an op's own failure is in its OpResult and changes
  // nothing); a non-OK Status means the batch could not be written
  // (IoError) and nothing of it was applied.
  StatusOr<std::vector<OpResult>> ApplyBatch(const std::vector<Op>& ops,
                                             const AppliedPosition& position);

  // Serializable read of committed state. Errors: kErrCompacted,
  // kErrFutureRev (FAILED_PRECONDITION), limits (INVALID_ARGUMENT).
  StatusOr<RangeResponse> Range(const RangeRequest& request) const;

  // Events with revision >= start_revision matching the key range, in
  // revision order. FAILED_PRECONDITION kErrCompacted if start_revision <
  // the compacted revision. A start beyond the current revision yields none.
  StatusOr<std::vector<Event>> History(const HistoryRequest& request) const;

  // Lease state. FAILED_PRECONDITION kErrLeaseNotFound for unknown ids.
  StatusOr<LeaseInfo> TimeToLive(int64_t id, bool keys) const;
  // Every live lease (without keys), by id: lets a restarted server rebuild
  // its expiry timers.
  StatusOr<std::vector<LeaseInfo>> Leases() const;

  int64_t CurrentRevision() const;
  int64_t CompactedRevision() const;  // 0 if never compacted
  AppliedPosition Position() const;
  // How many applied ops changed the stored state (wrote any record: data,
  // history, leases or the dedup window), over the store's life; persisted
  // with each batch. Deterministic like everything else: replicas that
  // applied the same op sequence report the same count, and one that
  // missed a write reports less, so comparing counts tells a lagging
  // replica from a current one. Reads and ops that failed without
  // recording anything do not count.
  uint64_t AppliedWrites() const;

  // 64-bit FNV-1a over every stored record in key order: data, history,
  // leases, dedup window, revision and applied position. Equal on replicas
  // that applied the same ops at the same positions.
  StatusOr<uint64_t> Checksum() const;

  void SetEventCallback(EventCallback callback);

 private:
  class Apply;  // the per-batch apply context
  MvccStore(std::unique_ptr<rocksdb::DB> db, const StoreOptions& options);
  Status LoadMeta();

  const StoreOptions options_;
  mutable std::mutex mu_;
  std::unique_ptr<rocksdb::DB> db_;
  // Mirrors of the persisted meta records; updated only after a batch's
  // write succeeded.
  int64_t revision_ = 1;
  int64_t compacted_ = 0;
  uint64_t dedup_seq_ = 0;    // op ids recorded so far
  uint64_t generation_ = 0;   // lease generations handed out so far
  AppliedPosition position_;
  uint64_t applied_writes_ = 0;
  EventCallback callback_;
};

}  // namespace kvstore

#endif  // KVSTORE_MVCC_STORE_H_
