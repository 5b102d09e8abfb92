// Replicator: the write path of totemkvd between the gRPC services and the
// state machine (ARCHITECTURE.md §1). It owns the Totem node, the
// replication engine and the MvccStore (through ReplicatedStorage):
//  - Propose() wraps an Op envelope in an engine op record with a 16-byte
//    op id (the client's, or fresh random) and this node as origin,
//    submits it with Guarantee::kSafe (retrying on kWouldBlock within the
//    deadline), and waits for the engine to acknowledge or reject it.
//  - The Totem I/O thread only copies each safe delivery and configuration
//    event into a queue; one apply thread drains the queue into ONE engine
//    step (so green ops delivered together are applied in ONE WriteBatch),
//    submits the engine's messages, and completes waiting calls by op id.
//  - ReadBarrier() gives linearizable reads: it proposes a Barrier op and
//    returns once it is acknowledged. Concurrent readers share one: a
//    group stays open while the previous barrier is in flight, and every
//    reader that joined it is answered by the one barrier submitted after
//    they all arrived.
// What is applied, and when a client is answered, is decided by the
// replication engine (kvstore/replication.h): only a primary component
// applies ops; an op is acknowledged once a majority of the configured
// members applied it durably; laggards, restarted and wiped members are
// brought up to date by the state exchange. The apply thread feeds the
// engine every delivery and configuration in order and carries out its
// effects (multicasts, answers).
#ifndef TOTEMKV_SERVER_REPLICATOR_H_
#define TOTEMKV_SERVER_REPLICATOR_H_

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "histogram.h"
#include "kvstore/mvcc_store.h"
#include "kvstore/ops.pb.h"
#include "kvstore/replication.h"
#include "ordering.h"
#include "replicated_storage.h"
#include "server_config.h"
#include "totem/node.h"

namespace totemkv::server {

class Replicator {
 public:
  // Opens the store under <data-dir>/db and starts the Totem node with its
  // state under <data-dir>/totem and the given cluster key bytes; with
  // several rings in the config (ServerConfig::MultiRing), a MultiRingNode
  // instead, ring N's state under <data-dir>/totem/ring-N, ordered by the
  // global configurations (server/ordering.h).
  static totem::StatusOr<std::unique_ptr<Replicator>> Start(const ServerConfig& config,
                                                            const std::string& key);
  ~Replicator();
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // Proposes `op` (body set by the caller) and waits until a majority of
  // the configured members applied it durably (applied here too). Returns
  // the op's result (its own failure in result.status); UNAVAILABLE if this
  // member is not in the primary component (the reason named), or the
  // outcome is unknown (the configuration changed under it), or it was not
  // acknowledged within `timeout` (it may still be applied later);
  // INVALID_ARGUMENT if too large.
  // `client_op_id`: 16 bytes chosen by the client (a retried request
  // carries the same id, and the store applies it at most once); empty =
  // a fresh random id. Concurrent calls with the same id share one result.
  totem::StatusOr<::kvstore::OpResult> Propose(totemkv::kvstore::v1::Op op,
                                               std::chrono::milliseconds timeout,
                                               const std::string& client_op_id = {});

  // Called on the apply thread after every applied batch, on EVERY node,
  // with the store ops of the batch and their results (same indexes), in
  // delivery order. Keep it short; it must not call Propose and wait.
  using ApplyObserver = std::function<void(const std::vector<::kvstore::Op>& ops,
                                           const std::vector<::kvstore::OpResult>& results)>;
  void AddApplyObserver(ApplyObserver observer);

  // Called on the apply thread after this member's whole state was
  // replaced by a snapshot from another member (state transfer): derived
  // state (watchers' positions, lease timers) must be rebuilt.
  using ResetObserver = std::function<void()>;
  void AddResetObserver(ResetObserver observer);

  // Called on the Totem I/O thread for every configuration event (after it
  // is recorded in ConfigurationHistory()). Must not block.
  using ConfigurationObserver = std::function<void(const totem::ConfigurationEvent&)>;
  void AddConfigurationObserver(ConfigurationObserver observer);

  // The configuration events delivered since start, oldest first, each
  // with its wall-clock delivery time (µs since the epoch); at most
  // kConfigurationHistory are kept, `dropped` counts the older ones.
  struct ConfigurationRecord {
    totem::ConfigurationEvent event;
    int64_t time_unix_us = 0;
  };
  static constexpr size_t kConfigurationHistory = 1024;
  std::vector<ConfigurationRecord> ConfigurationHistory(uint64_t* dropped) const;

  // Store-side counters by name (see admin.proto GetCountersResponse.store).
  std::map<std::string, uint64_t> StoreCounters() const;
  totem::Counters TotemCounters() const { return node_->GetCounters(); }
  // The multiple-ring layer's counters ("mring_*"; empty with one ring).
  std::map<std::string, uint64_t> MultiRingCounters() const { return node_->LayerCounters(); }
  Ordering::GlobalView GlobalView() const { return node_->Global(); }

  // Returns once every op ordered before some point after this call began
  // is applied locally (see above).
  totem::Status ReadBarrier(std::chrono::milliseconds timeout);

  const ::kvstore::MvccStore& store() const { return *store_; }
  // Sets the store's (single) event callback, used by the watch hub. It
  // runs on the apply thread under the store mutex (MvccStore contract).
  void SetStoreEventCallback(::kvstore::MvccStore::EventCallback callback) {
    store_->SetEventCallback(std::move(callback));
  }
  totem::ConfigurationView Configuration() const { return node_->CurrentConfiguration(); }
  totem::RingStatus GetRingStatus() const { return node_->GetRingStatus(); }
  // The index of the last applied op in the global order (the same op
  // has the same index on every member).
  uint64_t applied_seq() const { return applied_seq_.load(); }
  uint64_t applied_ops() const { return applied_ops_.load(); }
  // Time from a delivery (or configuration event) entering the apply
  // queue until the engine step that handled it finished (durable), per
  // applied batch, measured from the oldest input of the batch.
  const LatencyHistogram& apply_latency() const { return apply_latency_; }
  totem::NodeId node_id() const { return node_id_; }

  // Whether this member may serve writes and linearizable reads:
  //  - kUnconfirmed: starting, or a configuration change / state exchange
  //    is under way; proposals are submitted and wait (the engine buffers
  //    them until the primary is installed).
  //  - kCurrent: member of the installed primary component.
  //  - kNoQuorum: the configuration is not primary (no majority of the
  //    configured members with data): refuse with UNAVAILABLE naming the
  //    reason, e.g. "totemkv: no quorum: 2 of 5 members reachable".
  //  - kBehind: unused since the engine catches members up (kept for the
  //    admin API's vocabulary).
  // Serializable reads are served in every state (they may be stale).
  enum class Standing { kUnconfirmed, kCurrent, kNoQuorum, kBehind };
  Standing GetStanding(std::string* message) const;

  // The engine's view, for operators (admin service, Maintenance.Status).
  struct ReplicationStatus {
    ::kvstore::repl::Role role = ::kvstore::repl::Role::kStarting;
    std::string reason;
    ::kvstore::repl::Meta meta;
    uint64_t commit_index = 0;
    std::vector<totem::NodeId> configured;
    ::kvstore::repl::EngineCounters counters;
  };
  ReplicationStatus Replication() const;

  // The configured members (replicated; --initial-cluster until changed).
  std::vector<totemkv::kvstore::v1::MemberInfo> Members() const;
  // Orders a membership change (add: `info` with a new id; remove: the
  // id) and waits until it is acknowledged like any write.
  totem::Status ProposeMemberChange(bool add, const totemkv::kvstore::v1::MemberInfo& info,
                                    std::chrono::milliseconds timeout);

  // Stops the node and the apply thread; waiting calls get UNAVAILABLE.
  void Stop();

 private:
  using OpId = ::kvstore::repl::OpId;
  // One entry per op id in flight from this node; `waiters` calls share it.
  struct Pending {
    std::promise<::kvstore::OpResult> promise;
    std::shared_future<::kvstore::OpResult> future;
    int waiters = 0;
  };
  struct BarrierGroup {
    std::promise<totem::Status> promise;
    std::shared_future<totem::Status> future;
  };

  Replicator(totem::NodeId node_id, std::unique_ptr<ReplicatedStorage> storage);
  void OnDeliver(const totem::Delivery& d);
  void OnConfiguration(const totem::ConfigurationEvent& e);
  void Enqueue(::kvstore::repl::Input input);
  void ApplyLoop();
  void RunEngine(std::vector<::kvstore::repl::Input>& inputs);
  // After a step: logs state_transfer_started / _finished (see transfer_log_)
  // from the engine's counters before the step.
  void LogStateTransfer(const ::kvstore::repl::EngineCounters& before, bool role_changed);
  void FlushOutbox();
  void Complete(const OpId& id, ::kvstore::OpResult result);
  totem::StatusOr<::kvstore::OpResult> Submit(::kvstore::repl::OpRecord record,
                                              std::chrono::steady_clock::time_point deadline);
  totem::Status CheckStanding() const;
  OpId NewOpId();
  void Fail(const OpId& id, const std::shared_ptr<Pending>& pending);

  const totem::NodeId node_id_;
  std::shared_ptr<::kvstore::MvccStore> store_;
  std::unique_ptr<ReplicatedStorage> storage_;
  std::unique_ptr<::kvstore::repl::Engine> engine_;  // apply thread only
  // The Totem node, or the multiple-ring node (server/ordering.h).
  std::unique_ptr<Ordering> node_;

  mutable std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<::kvstore::repl::Input> queue_;
  std::chrono::steady_clock::time_point queue_oldest_;  // when queue_ became non-empty
  bool stopping_ = false;
  std::thread apply_thread_;
  // Apply thread only: engine messages not yet submitted.
  std::deque<::kvstore::repl::Effects::Message> outbox_;

  mutable std::mutex pending_mu_;
  std::map<OpId, std::shared_ptr<Pending>> pending_;
  std::mt19937_64 rng_;  // guarded by pending_mu_

  std::mutex barrier_mu_;
  std::condition_variable barrier_cv_;
  std::shared_ptr<BarrierGroup> open_group_;
  int barriers_in_flight_ = 0;

  std::mutex observers_mu_;  // guards both observer lists
  std::vector<ApplyObserver> apply_observers_;
  std::vector<ConfigurationObserver> configuration_observers_;
  std::vector<ResetObserver> reset_observers_;

  mutable std::mutex history_mu_;
  std::deque<ConfigurationRecord> history_;
  uint64_t history_dropped_ = 0;

  mutable std::mutex status_mu_;  // a copy of the engine's state after each step
  ReplicationStatus status_;
  // The engine's role after the last step was kPrimary (engine thread
  // only): tells primary_lost from other role changes in the log.
  bool was_primary_ = false;
  // A state transfer (log catch-up or snapshot) this member takes part in,
  // as the engine's transfer counters show it (engine thread only): logged
  // as state_transfer_started when they first move, state_transfer_finished
  // at the next role change (the exchange ended).
  struct TransferLog {
    bool active = false;
    bool donor = false;
    bool snapshot = false;
    ::kvstore::repl::EngineCounters start;
    std::chrono::steady_clock::time_point started;
  };
  TransferLog transfer_log_;

  std::atomic<uint64_t> ops_proposed_{0};
  std::atomic<uint64_t> proposals_failed_{0};
  std::atomic<uint64_t> duplicates_applied_{0};
  std::atomic<uint64_t> batches_applied_{0};
  std::atomic<uint64_t> barriers_proposed_{0};
  std::atomic<uint64_t> outcome_unknown_{0};
  std::atomic<uint64_t> submit_retries_{0};
  std::atomic<uint64_t> applied_seq_{0};
  std::atomic<uint64_t> applied_ops_{0};
  std::atomic<bool> stopped_{false};
  LatencyHistogram apply_latency_;
};

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_REPLICATOR_H_
