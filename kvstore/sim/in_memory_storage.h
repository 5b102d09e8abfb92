// The simulator's durable storage for the replication engine: a tiny,
// deterministic state machine (a map of string registers with ops `put k v`
// and `get k`), the engine's meta and yellow ops, an op log with a small
// retention (so laggards need snapshots) and snapshots cut into small
// chunks. It models one node's disk: it survives a crash of the node (the
// simulation keeps it) and a wiped restart replaces it by a fresh one.
//
// A get is an ordered op: its result is the value at its place in the
// global order (a linearizable read through the order). Ops are applied at
// most once per op id: a duplicate returns the first application's result.
// The per-id results are part of the replicated state (snapshots carry
// them), so dedup and acknowledgements survive a rebuild.
#ifndef KVSTORE_SIM_IN_MEMORY_STORAGE_H_
#define KVSTORE_SIM_IN_MEMORY_STORAGE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kvstore/replication.h"

namespace kvstore::sim {

using repl::Meta;
using repl::OpId;
using repl::OpRecord;
using repl::Status;
using repl::StatusOr;

// Payload of the state machine's ops.
struct KvOp {
  bool is_get = false;
  std::string key;
  std::string value;  // put only
};
std::string EncodeKvOp(const KvOp& op);
std::optional<KvOp> DecodeKvOp(const std::string& payload);

// The result of a get of a key that has no value.
inline constexpr const char* kNoValue = "<none>";
// The result of a put.
inline constexpr const char* kPutOk = "ok";

// The state machine alone (map + per-id results): pure, so the checker can
// replay any order on a fresh one.
class KvStateMachine {
 public:
  // Applies `op` (a duplicate id returns the first result). Membership ops
  // and undecodable payloads change nothing and return "".
  std::string Apply(const OpRecord& op);
  std::optional<std::string> ResultOf(const OpId& id) const;
  const std::map<std::string, std::string>& data() const { return data_; }
  // Order-independent checksum of data and results, kept incrementally.
  uint64_t checksum() const { return checksum_; }
  std::string Serialize() const;
  bool Deserialize(const std::string& bytes);

 private:
  void Set(const std::string& key, const std::string& value);
  std::map<std::string, std::string> data_;
  std::map<OpId, std::string> results_;
  uint64_t checksum_ = 0;
};

class InMemoryStorage final : public repl::Storage {
 public:
  // `log_retention`: ops kept in the op log (at least 1).
  // `snapshot_chunk_bytes`: upper bound of a snapshot chunk (the engine's
  // max_bytes applies too).
  InMemoryStorage(size_t log_retention, size_t snapshot_chunk_bytes);

  Meta LoadMeta() override { return meta_; }
  std::vector<OpRecord> LoadYellow() override { return yellow_; }
  Status ApplyGreen(const std::vector<OpRecord>& ops, const std::vector<uint64_t>& hashes,
                    const Meta& meta_after) override;
  Status SaveYellow(const std::vector<OpRecord>& yellow, const Meta& meta) override;
  Status SaveMeta(const Meta& meta) override;
  uint64_t LogFirst() override;
  bool ReadLog(uint64_t index, OpRecord* op, uint64_t* hash) override;
  StatusOr<std::unique_ptr<SnapshotReader>> OpenSnapshot() override;
  StatusOr<std::unique_ptr<SnapshotWriter>> BeginSnapshotInstall() override;

  const Meta& meta() const { return meta_; }
  const KvStateMachine& state() const { return state_; }
  uint64_t snapshots_installed() const { return snapshots_installed_; }

  // Observation for the checker: every op applied green (index, hash of
  // the chain at it, hash before it), and every installed snapshot.
  struct Observer {
    std::function<void(uint64_t index, uint64_t hash, uint64_t prev_hash, const OpRecord& op)>
        applied;
    std::function<void(const Meta& meta)> installed;
  };
  void set_observer(Observer observer) { observer_ = std::move(observer); }

  // Fault injection (checker tests): the next data op applied is skipped by
  // the state machine (the replica silently diverges).
  void InjectDropNextOp() { drop_next_ = true; }

 private:
  class Reader;
  class Writer;
  struct LogEntry {
    uint64_t index = 0;
    uint64_t hash = 0;
    OpRecord op;
  };

  const size_t log_retention_;
  const size_t chunk_bytes_;
  Meta meta_;
  std::vector<OpRecord> yellow_;
  KvStateMachine state_;
  std::deque<LogEntry> log_;
  Observer observer_;
  bool drop_next_ = false;
  uint64_t snapshots_installed_ = 0;
};

}  // namespace kvstore::sim

#endif  // KVSTORE_SIM_IN_MEMORY_STORAGE_H_
