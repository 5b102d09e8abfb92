// ReplicatedStorage: the replication engine's durable Storage
// (kvstore/replication.h) on totemkvd's RocksDB MvccStore. Green ops are
// applied to the store in ONE WriteBatch per ApplyGreen together with the
// op log, the engine meta and the replicated member list, so a crash never
// separates "applied" from "recorded as applied".
//
// Layout in the store's aux namespaces (integers big-endian):
//   local  "meta"                  -> engine Meta (version 1 binary)
//   local  "log/" index(8)         -> version(1) hash(8) OpRecord: the op log
//   local  "yellow/" seq(8)        -> OpRecord: the stored yellow ops
//   replicated "member/" id(4)     -> serialized totemkv.kvstore.v1.MemberInfo
// OpRecord encoding: version(1) op_id(16) origin(4) kind(1) member(4)
// payload(rest). Local records are node-local (not in Checksum() nor in
// snapshots); members are replicated state (in both).
//
// Applying: a kData payload is a serialized totemkv.kvstore.v1.Op. Ops
// that do not parse, or carry no store op, change nothing on every replica
// alike; a Barrier changes nothing and reports the revision at its place in
// the order. The store's applied position is {"", green index}, so replicas
// that applied the same order hold identical bytes however their
// deliveries were batched. Membership ops record / delete "member/<id>";
// the first one also records the bootstrap members (which must then be the
// same on every node, as --initial-cluster is).
//
// Thread-safety: the Storage methods, SetApplyObserver and the snapshot
// reader/writer are for the engine's thread only. TakeResult, Members and
// counters may be called from any thread.
#ifndef TOTEMKV_SERVER_REPLICATED_STORAGE_H_
#define TOTEMKV_SERVER_REPLICATED_STORAGE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kvstore/mvcc_store.h"
#include "kvstore/ops.pb.h"
#include "kvstore/replication.h"

namespace totemkv::server {

struct ReplicatedStorageOptions {
  // This node: results of ops it originated are kept for TakeResult.
  totem::NodeId self = totem::kNoNode;
  // The member list while none is stored (from --initial-cluster).
  std::vector<totemkv::kvstore::v1::MemberInfo> bootstrap_members;
  // The op log keeps at most this many ops and bytes (oldest dropped first;
  // trimming happens in steps of about 1/16 of each bound).
  uint64_t log_retention_ops = 50000;
  uint64_t log_retention_bytes = 64ull << 20;
  // Results not taken within this many applied ops are dropped.
  uint64_t result_retention_ops = 100000;
};

class ReplicatedStorage : public ::kvstore::repl::Storage {
 public:
  using ApplyObserver = std::function<void(const std::vector<::kvstore::Op>& ops,
                                           const std::vector<::kvstore::OpResult>& results)>;

  // Reads the engine meta, yellow ops and op log bookkeeping from `store`.
  // InvalidArgument for bad options; kInternal "corrupt" if a record does
  // not decode or the op log does not end at the meta's green index;
  // IoError from RocksDB.
  static totem::StatusOr<std::unique_ptr<ReplicatedStorage>> Open(
      std::shared_ptr<::kvstore::MvccStore> store, const ReplicatedStorageOptions& options);
  ~ReplicatedStorage() override;

  // ---- kvstore::repl::Storage ----
  ::kvstore::repl::Meta LoadMeta() override;
  std::vector<::kvstore::repl::OpRecord> LoadYellow() override;
  // Beyond the Storage contract: FailedPrecondition if the ops do not
  // continue the stored order (first index != green + 1) or hashes and ops
  // differ in number; IoError from RocksDB. Nothing is applied then.
  totem::Status ApplyGreen(const std::vector<::kvstore::repl::OpRecord>& ops,
                           const std::vector<uint64_t>& hashes,
                           const ::kvstore::repl::Meta& meta_after) override;
  totem::Status SaveYellow(const std::vector<::kvstore::repl::OpRecord>& yellow,
                           const ::kvstore::repl::Meta& meta) override;
  totem::Status SaveMeta(const ::kvstore::repl::Meta& meta) override;
  uint64_t LogFirst() override;
  // False outside [LogFirst(), green] or if the record is unreadable.
  bool ReadLog(uint64_t index, ::kvstore::repl::OpRecord* op, uint64_t* hash) override;
  totem::StatusOr<std::unique_ptr<SnapshotReader>> OpenSnapshot() override;
  // Commit(meta) also drops the kept results (the engine rejects the ops
  // of a rebuilt replica) and every other local aux record of the store.
  totem::StatusOr<std::unique_ptr<SnapshotWriter>> BeginSnapshotInstall() override;

  // ---- for the server ----
  // The result of this node's op `id` applied green (removed on return);
  // nullopt if unknown, already taken, or dropped by retention.
  std::optional<::kvstore::OpResult> TakeResult(const ::kvstore::repl::OpId& id);
  // Called on the engine's thread after each ApplyGreen that applied store
  // ops, with those ops and their results (the watch hub / lease hook).
  void SetApplyObserver(ApplyObserver observer);
  // The replicated member list by id (the bootstrap list while none is
  // stored). Empty on a read error.
  std::vector<totemkv::kvstore::v1::MemberInfo> Members() const;
  const ::kvstore::MvccStore& store() const { return *store_; }
  uint64_t undecodable_ops() const { return undecodable_ops_.load(); }

 private:
  class Reader;
  class Writer;
  ReplicatedStorage(std::shared_ptr<::kvstore::MvccStore> store,
                    const ReplicatedStorageOptions& options);
  totem::Status Load();
  void KeepResult(const ::kvstore::repl::OpId& id, uint64_t index, ::kvstore::OpResult result);
  void AfterInstall(const ::kvstore::repl::Meta& meta);

  const ReplicatedStorageOptions options_;
  const std::shared_ptr<::kvstore::MvccStore> store_;
  ApplyObserver observer_;

  // Mirrors of the durable records; changed only after a write succeeded.
  ::kvstore::repl::Meta meta_;
  std::vector<::kvstore::repl::OpRecord> yellow_;
  uint64_t log_first_ = 1;          // first retained index (green + 1: none)
  std::deque<uint64_t> log_sizes_;  // stored bytes of each retained entry
  uint64_t log_bytes_ = 0;          // sum of log_sizes_
  bool members_stored_ = false;     // any "member/" record exists

  std::atomic<uint64_t> undecodable_ops_{0};

  mutable std::mutex results_mu_;
  struct Kept {
    uint64_t index = 0;
    ::kvstore::OpResult result;
  };
  std::map<::kvstore::repl::OpId, Kept> results_;                      // guarded by results_mu_
  std::deque<std::pair<uint64_t, ::kvstore::repl::OpId>> kept_order_;  // guarded by results_mu_
};

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_REPLICATED_STORAGE_H_
