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
//   'r' key                    -> replicated aux: replicated state that is not
//                                etcd keyspace (e.g. the member list); in
//                                Checksum() and in snapshots
//   'x' key                    -> local aux: node-local bookkeeping (op log,
//                                engine meta); NOT in Checksum() or snapshots
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
// Snapshots: ExportSnapshot() cuts a point-in-time image of every record
// except local aux into self-checking chunks; a SnapshotInstaller stages the
// chunks of another store's export in an SST file under the store directory
// ("<path>/snapshot-staging/", bounded memory) and Commit() ingests it as ONE
// RocksDB file ingestion that also carries a range tombstone over the whole
// key space: the store holds either its old records or exactly the
// snapshot's (plus the commit's aux records), never a mix, even across a
// crash. Leftover staging files of a crashed install are removed by Open().
//
// Thread-safety: all methods are safe to call concurrently (one internal
// mutex serializes them); the event callback runs under that mutex and must
// not call back into the store. A SnapshotExport or SnapshotInstaller is
// used by one thread at a time and must not outlive its store.
#ifndef KVSTORE_MVCC_STORE_H_
#define KVSTORE_MVCC_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvstore/types.h"

namespace rocksdb {
class DB;
}

namespace kvstore {

// One write of an aux record (see the layout above). `value` set: put;
// nullopt with empty `range_end`: delete `key`; nullopt with `range_end`:
// delete every record of the namespace in [key, range_end).
struct AuxWrite {
  bool replicated = false;
  std::string key;
  std::optional<std::string> value;
  std::string range_end;

  static AuxWrite Put(bool replicated, std::string key, std::string value) {
    return AuxWrite{replicated, std::move(key), std::move(value), {}};
  }
  static AuxWrite Delete(bool replicated, std::string key) {
    return AuxWrite{replicated, std::move(key), std::nullopt, {}};
  }
  static AuxWrite DeleteRange(bool replicated, std::string begin, std::string end) {
    return AuxWrite{replicated, std::move(begin), std::nullopt, std::move(end)};
  }
};

// A point-in-time reader of a store's replicated records (everything but
// local aux), as chunks for SnapshotInstaller. Chunk format (version 1):
//   "TKS1" tag(8) index(4) flags(1: bit 0 = last chunk) count(4)
//   count x { klen(4) key vlen(4) value }  fnv1a64(everything before)(8)
// with `tag` the same in every chunk of one export and `index` 0, 1, ...
class SnapshotExport {
 public:
  virtual ~SnapshotExport() = default;
  // Fills `chunk` with the next chunk of about max_bytes (at least one
  // record); false when the last chunk was returned. IoError on read errors.
  virtual StatusOr<bool> Next(size_t max_bytes, std::string* chunk) = 0;
};

// Receives an export's chunks in order and replaces the store by them.
// Destroying it without a successful Commit() leaves the store unchanged.
class SnapshotInstaller {
 public:
  virtual ~SnapshotInstaller() = default;
  // Stages one chunk. InvalidArgument if the chunk is corrupt (checksum,
  // framing, version), out of order, from another export, arrives after the
  // last chunk, or holds a local aux record; the installer is then unusable
  // (every later call fails). IoError if staging fails.
  virtual Status Add(std::string_view chunk) = 0;
  // Atomically replaces every record of the store (local aux included) by
  // the snapshot's records plus `local_aux` (each must be a local put), then
  // reloads the store's revision, position and counters from them.
  // FailedPrecondition if the last chunk was not received; InvalidArgument
  // for a replicated or delete aux write; IoError if RocksDB refuses (the
  // store is unchanged then).
  virtual Status Commit(const std::vector<AuxWrite>& local_aux) = 0;
};

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
  // `aux` is written in the same WriteBatch, after the ops.
  StatusOr<std::vector<OpResult>> ApplyBatch(const std::vector<Op>& ops,
                                             const AppliedPosition& position,
                                             const std::vector<AuxWrite>& aux = {});

  // Writes aux records alone, atomically (synced if options.sync). IoError
  // if RocksDB refuses (nothing written); InvalidArgument for an empty key.
  Status WriteAux(const std::vector<AuxWrite>& aux);
  // One aux record; nullopt if absent. IoError on read errors.
  StatusOr<std::optional<std::string>> ReadAux(bool replicated, const std::string& key) const;
  // Aux records whose key starts with `prefix`, in key order, at most
  // `limit` of them (0: no limit). Keys are returned without the namespace.
  StatusOr<std::vector<std::pair<std::string, std::string>>> ScanAux(bool replicated,
                                                                     const std::string& prefix,
                                                                     size_t limit = 0) const;

  // A consistent image of the replicated records as of now (see
  // SnapshotExport). IoError if RocksDB refuses.
  StatusOr<std::unique_ptr<SnapshotExport>> ExportSnapshot() const;
  // Starts replacing this store by a snapshot (see SnapshotInstaller).
  // IoError if the staging file cannot be created.
  StatusOr<std::unique_ptr<SnapshotInstaller>> BeginInstall();

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
  // leases, dedup window, revision, applied position and replicated aux
  // (not local aux). Equal on replicas that applied the same ops at the
  // same positions with the same replicated aux writes.
  StatusOr<uint64_t> Checksum() const;

  void SetEventCallback(EventCallback callback);

 private:
  class Apply;      // the per-batch apply context
  class Installer;  // SnapshotInstaller
  MvccStore(std::unique_ptr<rocksdb::DB> db, const std::string& path, const StoreOptions& options);
  Status LoadMeta();

  const StoreOptions options_;
  const std::string path_;
  uint64_t next_staging_ = 0;  // names staging files; guarded by mu_
  mutable std::mutex mu_;
  std::unique_ptr<rocksdb::DB> db_;
  // Mirrors of the persisted meta records; updated only after a batch's
  // write succeeded.
  int64_t revision_ = 1;
  int64_t compacted_ = 0;
  uint64_t dedup_seq_ = 0;   // op ids recorded so far
  uint64_t generation_ = 0;  // lease generations handed out so far
  AppliedPosition position_;
  uint64_t applied_writes_ = 0;
  EventCallback callback_;
};

}  // namespace kvstore

#endif  // KVSTORE_MVCC_STORE_H_
