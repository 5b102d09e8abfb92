// Replicator: the write path of totemkvd between the gRPC services and the
// state machine (ARCHITECTURE.md §1). It owns the Totem node and the
// MvccStore:
//  - Propose() stamps an Op envelope with a fresh random 16-byte op id and
//    this node as origin, submits it with Guarantee::kSafe (retrying on
//    kWouldBlock within the deadline), and waits for its local apply.
//  - The Totem I/O thread only copies each safe delivery into a queue; one
//    apply thread drains the queue, groups everything queued into ONE
//    MvccStore::ApplyBatch (with the applied position = ring id + frame
//    seq of the last delivery), then completes the origin's waiting calls
//    by op id.
//  - ReadBarrier() gives linearizable reads: it proposes a Barrier op and
//    returns once it is applied locally. Concurrent readers share one: a
//    group stays open while the previous barrier is in flight, and every
//    reader that joined it is answered by the one barrier submitted after
//    they all arrived.
// This step applies EVERY safe-delivered op in delivery order, including
// those delivered in a transitional configuration; primary-component
// logic (green/yellow/red ops, refusing writes in a minority) is the next
// issue.
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

#include "kvstore/mvcc_store.h"
#include "kvstore/ops.pb.h"
#include "server_config.h"
#include "totem/node.h"

namespace totemkv::server {

class Replicator {
 public:
  // Opens the store under <data-dir>/db and starts the Totem node with its
  // state under <data-dir>/totem and the given cluster key bytes.
  static totem::StatusOr<std::unique_ptr<Replicator>> Start(const ServerConfig& config,
                                                            const std::string& key);
  ~Replicator();
  Replicator(const Replicator&) = delete;
  Replicator& operator=(const Replicator&) = delete;

  // Proposes `op` (body set by the caller) and waits until it is applied
  // here. Returns the op's result (its own failure in result.status), or
  // UNAVAILABLE if it could not be submitted / applied within `timeout`
  // (the op may still be applied later), or INVALID_ARGUMENT if too large.
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
  uint64_t applied_seq() const { return applied_seq_.load(); }
  uint64_t applied_ops() const { return applied_ops_.load(); }
  totem::NodeId node_id() const { return node_id_; }

  // Whether this member may serve writes and linearizable reads, decided
  // at every regular configuration (a first step towards the primary
  // component of the next issue):
  //  - kUnconfirmed: starting, or back in a majority after a minority;
  //    waiting for the member-state exchange. Propose waits (within its
  //    deadline) for it to end.
  //  - kCurrent: the configuration holds a majority of the configured
  //    members (--initial-cluster) and, when every member's MemberState
  //    announcement was delivered, none had applied more writes than this
  //    member at the configuration boundary.
  //  - kNoQuorum: the configuration holds no majority: refuse.
  //  - kBehind: a member of its configuration had applied more writes
  //    (this member restarted after missing some, or was cut off): refuse
  //    until caught up. Sticky: catching up is the next issue's state
  //    transfer. Serializable reads are still served (they may be stale).
  // Refusals are UNAVAILABLE with a message naming the reason.
  enum class Standing { kUnconfirmed, kCurrent, kNoQuorum, kBehind };
  Standing GetStanding(std::string* message) const;

  // Stops the node and the apply thread; waiting calls get UNAVAILABLE.
  void Stop();

 private:
  using OpId = std::array<uint8_t, 16>;
  struct Delivered {
    totem::RingId ring;
    uint64_t frame_seq = 0;
    std::string payload;
    // Set for a regular configuration's place in the delivery order.
    std::optional<totem::ConfigurationEvent> marker;
  };
  // The member-state exchange of the current regular configuration.
  struct Exchange {
    totem::RingId ring;
    std::vector<totem::NodeId> members;
    uint64_t my_writes = 0;
    std::map<totem::NodeId, uint64_t> writes;  // announcements delivered
    bool open = false;
  };
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

  Replicator(totem::NodeId node_id, std::unique_ptr<::kvstore::MvccStore> store);
  void OnDeliver(const totem::Delivery& d);
  void OnConfiguration(const totem::ConfigurationEvent& e);
  void ApplyLoop();
  void ApplyBatch(std::deque<Delivered>& batch);
  void OnConfigurationMarker(const totem::ConfigurationEvent& e);
  void OnMemberState(totem::NodeId from, const totemkv::kvstore::v1::MemberState& state);
  totem::Status CheckStanding(std::chrono::steady_clock::time_point deadline) const;
  OpId NewOpId();
  void Fail(const OpId& id, const std::shared_ptr<Pending>& pending);

  const totem::NodeId node_id_;
  std::unique_ptr<::kvstore::MvccStore> store_;
  std::unique_ptr<totem::Node> node_;

  mutable std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<Delivered> queue_;
  bool stopping_ = false;
  std::thread apply_thread_;

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

  mutable std::mutex history_mu_;
  std::deque<ConfigurationRecord> history_;
  uint64_t history_dropped_ = 0;

  std::vector<ClusterMember> cluster_;  // the configured members
  mutable std::mutex standing_mu_;
  mutable std::condition_variable standing_cv_;
  Standing standing_ = Standing::kUnconfirmed;
  std::string standing_message_ = "totemkv: this member has not confirmed it is up to date yet";
  Exchange exchange_;

  std::atomic<uint64_t> ops_proposed_{0};
  std::atomic<uint64_t> proposals_failed_{0};
  std::atomic<uint64_t> duplicates_applied_{0};
  std::atomic<uint64_t> batches_applied_{0};
  std::atomic<uint64_t> barriers_proposed_{0};
  std::atomic<uint64_t> undecodable_ops_{0};
  std::atomic<uint64_t> applied_seq_{0};
  std::atomic<uint64_t> applied_ops_{0};
  std::atomic<bool> stopped_{false};
};

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_REPLICATOR_H_
