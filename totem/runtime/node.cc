// totem::Node (node.h): one Boost.Asio io_context on a dedicated thread
// drives one pure core::SingleRing. This file is the glue: it implements the
// core's Output with the UDP transport (udp_transport.h) and timers, feeds
// submissions from any thread into the core, and publishes counters and
// back-pressure to other threads.
//
// Design notes:
//  - Submissions land in a mutex-protected intake (one byte buffer plus
//    records, double-buffered so capacity is reused); a drain is posted to
//    the I/O thread only when the intake goes from empty to non-empty, so a
//    burst of Submits costs one post.
//  - The queue bound covers everything accepted and not yet sent by the core
//    (intake + I/O-side leftovers + core pending bytes). `queued_bytes_` is
//    recomputed exactly after every unit of I/O-thread work.
//  - WaitWritable waits for the queue to fall to half of max_pending_bytes
//    (or low enough for the last refused message), so writers refill in
//    bulk instead of waking for every freed frame.
//  - Timers are lazy: each core::TimerId has a deadline, and one asio timer
//    is armed for the earliest. Re-arming a timer to a later deadline (the
//    token retransmit timer at every visit) touches no syscall; an early
//    wake-up just re-arms.
//  - GetCounters from another thread asks the I/O thread for a copy, so the
//    snapshot is consistent and current; after Stop it returns the final one.
//  - Nothing here assumes a static ring: the core decides membership, the
//    transport keeps every configured peer's address (joins and merge
//    announcements go to all of them), and the intake bound holds whether
//    or not the core is operational.
//  - PersistRingSeq writes the state file (state_file.h) synchronously on
//    the I/O thread: the core must not use a ring sequence number before it
//    is durable. A write costs two fsyncs (~6 ms on this machine's disk),
//    and every member persists while the commit token passes it, so the
//    cost would add up along the ring on every membership change. Instead
//    the runtime reserves ahead: it persists seq + kRingSeqReserve, and a
//    later call at or below what is already durable returns at once. After
//    a restart the core starts above the reserved value, which exceeds every
//    ring sequence used, so the guarantee is the same; ring ids just jump by
//    up to kRingSeqReserve across a restart.
//  - CurrentConfiguration reads a mutex-protected copy updated on the I/O
//    thread just before the on_configuration callback.
//  - GetRingStatus reads atomics published on the I/O thread: the core's
//    membership state after every unit of work, and the token rotation
//    time, measured here (the core has no clock) as the interval between
//    consecutive increments of the core's token_rotations counter while
//    operational in one ring, averaged over the last kRotationWindow.
//  - A frame the core unicasts to this very node (a one-member ring passes
//    the token to itself) never touches a socket: it is queued and handed
//    back to the core as a received frame from a posted handler.
#include "totem/node.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "state_file.h"
#include "totem/core/output.h"
#include "totem/core/single_ring.h"
#include "udp_transport.h"

namespace totem {

namespace {

namespace asio = boost::asio;
using core::TimerId;
using runtime::RingSeqStore;
using runtime::UdpTransport;

constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
// Ring sequence numbers persisted ahead of use (see PersistRingSeq).
constexpr uint64_t kRingSeqReserve = 1024;
constexpr size_t kTimerCount = static_cast<size_t>(TimerId::kCount);

uint64_t NowUs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

class NodeImpl;
// The node whose I/O thread this is (nullptr on other threads).
thread_local const NodeImpl* tls_io_node = nullptr;

class NodeImpl final : public Node, private core::Output, private UdpTransport::Receiver {
 public:
  // `store` is null when config.state_dir is empty; `ring_seq` is what the
  // core starts from (the persisted value or the clock-derived one).
  NodeImpl(const NodeConfig& config, Callbacks callbacks, std::unique_ptr<RingSeqStore> store,
           uint64_t ring_seq)
      : config_(config),
        callbacks_(std::move(callbacks)),
        io_(1),
        work_(asio::make_work_guard(io_)),
        timer_(io_),
        store_(std::move(store)),
        initial_ring_seq_(ring_seq),
        core_(config.ring, ring_seq) {
    deadlines_.fill(kNever);
  }

  ~NodeImpl() override { Stop(); }

  Status Open(std::string_view key) {
    StatusOr<std::unique_ptr<UdpTransport>> t =
        UdpTransport::Open(io_, config_.transport, config_.ring.node_id, key);
    if (!t.ok()) return t.status();
    transport_ = std::move(t).value();
    return Status::Ok();
  }

  Status Launch() {
    running_ = true;
    asio::post(io_, [this] {
      now_us_ = NowUs();
      transport_->StartReceiving(this);
      core_.Start(now_us_, *this);
      AfterWork();
    });
    try {
      thread_ = std::thread([this] { Run(); });
    } catch (const std::exception& e) {
      running_ = false;
      return Status(StatusCode::kInternal, std::string("cannot start the I/O thread: ") + e.what());
    }
    return Status::Ok();
  }

  Status Submit(std::span<const uint8_t> data, Guarantee guarantee) override {
    const RingConfig& ring = config_.ring;
    if (data.size() > ring.max_message_bytes) {
      return Status(StatusCode::kResourceExhausted, "message of " + std::to_string(data.size()) +
                                                        " bytes exceeds ring.max_message_bytes=" +
                                                        std::to_string(ring.max_message_bytes));
    }
    bool post = false;
    {
      std::lock_guard<std::mutex> lock(intake_mu_);
      if (!running_) return Status(StatusCode::kUnavailable, "node is stopped");
      if (queued_bytes_ != 0 && queued_bytes_ + data.size() > ring.max_pending_bytes) {
        would_block_.fetch_add(1, std::memory_order_relaxed);
        last_refused_bytes_ = data.size();
        return Status(StatusCode::kWouldBlock, "submit queue full (ring.max_pending_bytes)");
      }
      intake_records_.push_back(
          IntakeRecord{intake_bytes_.size(), static_cast<uint32_t>(data.size()), guarantee});
      intake_bytes_.insert(intake_bytes_.end(), data.begin(), data.end());
      queued_bytes_ += data.size();
      last_refused_bytes_ = 0;
      if (!drain_posted_) drain_posted_ = post = true;
    }
    if (post) {
      asio::post(io_, [this] {
        DrainIntake();
        AfterWork();
      });
    }
    return Status::Ok();
  }

  bool WaitWritable(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(intake_mu_);
    if (tls_io_node == this) return running_ && HasRoomLocked();  // never block the I/O thread
    ++waiters_;
    cv_.wait_for(lock, timeout, [this] { return !running_ || HasRoomLocked(); });
    --waiters_;
    return running_ && HasRoomLocked();
  }

  Counters GetCounters() const override {
    if (tls_io_node == this) return ComputeCounters();
    std::unique_lock<std::mutex> lock(counters_mu_);
    if (counters_final_) return snapshot_;
    const uint64_t ticket = ++counter_requests_;
    asio::post(io_, [this, ticket] {
      Counters c = ComputeCounters();
      {
        std::lock_guard<std::mutex> l(counters_mu_);
        snapshot_ = c;
        counters_served_ = std::max(counters_served_, ticket);
      }
      counters_cv_.notify_all();
    });
    counters_cv_.wait_for(lock, std::chrono::seconds(2),
                          [&] { return counters_final_ || counters_served_ >= ticket; });
    return snapshot_;
  }

  ConfigurationView CurrentConfiguration() const override {
    std::lock_guard<std::mutex> lock(view_mu_);
    return view_;
  }

  uint64_t initial_ring_seq() const override { return initial_ring_seq_; }

  uint16_t bound_port() const override { return transport_->bound_port(); }

  RingStatus GetRingStatus() const override {
    RingStatus s;
    s.state = static_cast<RingState>(ring_state_.load(std::memory_order_relaxed));
    s.mean_token_rotation_us = rotation_mean_us_.load(std::memory_order_relaxed);
    s.rotations_measured = rotations_measured_.load(std::memory_order_relaxed);
    return s;
  }

  void Stop() override {
    if (tls_io_node == this) {
      std::fprintf(stderr, "totem: Node::Stop called from a callback (would deadlock)\n");
      std::abort();
    }
    std::lock_guard<std::mutex> stop_lock(stop_mu_);
    if (stopped_) return;
    {
      std::lock_guard<std::mutex> lock(intake_mu_);
      running_ = false;
    }
    cv_.notify_all();
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
    {
      std::lock_guard<std::mutex> lock(counters_mu_);
      if (transport_ != nullptr) snapshot_ = ComputeCounters();
      counters_final_ = true;
    }
    counters_cv_.notify_all();
    if (transport_ != nullptr) transport_->Close();
    stopped_ = true;
  }

 private:
  struct IntakeRecord {
    size_t offset;
    uint32_t len;
    Guarantee guarantee;
  };

  void Run() {
    tls_io_node = this;
    try {
      io_.run();
    } catch (const std::exception& e) {
      // Only application callbacks can throw here; a node cannot continue.
      std::fprintf(stderr, "totem: node %u: exception on the I/O thread: %s\n",
                   config_.ring.node_id, e.what());
      std::abort();
    }
  }

  // --- core::Output -------------------------------------------------------
  void Unicast(NodeId to, std::span<const uint8_t> frame) override {
    if (to == config_.ring.node_id) {
      LoopBack(frame);
      return;
    }
    transport_->SendTo(to, frame);
  }
  void Multicast(std::span<const uint8_t> frame) override { transport_->SendToAll(frame); }

  void SetTimer(TimerId id, uint64_t delay_us) override {
    const uint64_t deadline = now_us_ + delay_us;
    deadlines_[static_cast<size_t>(id)] = deadline;
    if (deadline < armed_deadline_) ArmTimer(deadline);
  }
  void CancelTimer(TimerId id) override { deadlines_[static_cast<size_t>(id)] = kNever; }

  void Deliver(const Delivery& delivery) override {
    if (callbacks_.on_deliver) callbacks_.on_deliver(delivery);
  }
  void DeliverConfiguration(const ConfigurationEvent& event) override {
    {
      std::lock_guard<std::mutex> lock(view_mu_);
      if (event.kind == ConfigurationKind::kRegular) {
        view_.regular = event;
        view_.in_transition = false;
        ++view_.regular_installs;
      } else {
        view_.in_transition = true;
        ++view_.transitional_installs;
      }
    }
    if (callbacks_.on_configuration) callbacks_.on_configuration(event);
  }
  void PersistRingSeq(uint64_t ring_seq) override {
    if (store_ == nullptr || ring_seq <= store_->last_written()) return;  // already durable
    const uint64_t reserved =
        ring_seq > kNever - kRingSeqReserve ? ring_seq : ring_seq + kRingSeqReserve;
    if (Status st = store_->Write(reserved); !st.ok()) {
      // Fail-stop (node.h): continuing could reuse this ring id after a restart.
      std::fprintf(stderr, "totem: node %u: cannot persist ring sequence %llu: %s; aborting\n",
                   config_.ring.node_id, static_cast<unsigned long long>(ring_seq),
                   st.ToString().c_str());
      std::abort();
    }
  }

  // --- UdpTransport::Receiver ---------------------------------------------
  void OnFrame(std::span<const uint8_t> frame) override {
    now_us_ = NowUs();
    core_.HandleFrame(frame, now_us_, *this);
    TrackRing();
  }
  void OnReceiveBatchDone() override { AfterWork(); }

  // --- I/O thread internals -------------------------------------------------
  // A frame the core sends to itself (the token of a one-member ring): fed
  // back in as a received frame once the current input has returned, as the
  // Output contract requires. Buffers are recycled.
  void LoopBack(std::span<const uint8_t> frame) {
    std::vector<uint8_t> copy;
    if (!loopback_spare_.empty()) {
      copy = std::move(loopback_spare_.back());
      loopback_spare_.pop_back();
    }
    copy.assign(frame.begin(), frame.end());
    loopback_.push_back(std::move(copy));
    if (loopback_posted_) return;
    loopback_posted_ = true;
    asio::post(io_, [this] {
      loopback_posted_ = false;
      std::vector<std::vector<uint8_t>> batch;
      batch.swap(loopback_);
      for (std::vector<uint8_t>& f : batch) {
        now_us_ = NowUs();
        core_.HandleFrame(f, now_us_, *this);
        TrackRing();
        loopback_spare_.push_back(std::move(f));
      }
      AfterWork();
    });
  }

  void ArmTimer(uint64_t deadline) {
    armed_deadline_ = deadline;
    timer_.expires_at(std::chrono::steady_clock::time_point(std::chrono::microseconds(deadline)));
    timer_.async_wait(
        [this, generation = ++timer_generation_](const boost::system::error_code& ec) {
          if (ec || generation != timer_generation_) return;
          OnTimer();
        });
  }

  void OnTimer() {
    armed_deadline_ = kNever;
    for (;;) {
      now_us_ = NowUs();
      size_t due = kTimerCount;
      uint64_t earliest = kNever;
      for (size_t i = 0; i < kTimerCount; ++i) {
        if (deadlines_[i] <= now_us_ && deadlines_[i] < earliest) {
          earliest = deadlines_[i];
          due = i;
        }
      }
      if (due == kTimerCount) break;
      deadlines_[due] = kNever;
      core_.HandleTimer(static_cast<TimerId>(due), now_us_, *this);
    }
    uint64_t next = kNever;
    for (uint64_t d : deadlines_) next = std::min(next, d);
    if (next != kNever && next < armed_deadline_) ArmTimer(next);
    AfterWork();
  }

  // Moves submissions from the intake into the core, in submit order.
  void DrainIntake() {
    now_us_ = NowUs();
    for (;;) {
      if (io_next_ >= io_records_.size()) {
        io_records_.clear();
        io_bytes_.clear();
        io_next_ = 0;
        {
          std::lock_guard<std::mutex> lock(intake_mu_);
          io_records_.swap(intake_records_);
          io_bytes_.swap(intake_bytes_);
          drain_posted_ = false;
        }
        io_remaining_bytes_ = io_bytes_.size();
        if (io_records_.empty()) return;
      }
      while (io_next_ < io_records_.size()) {
        const IntakeRecord& r = io_records_[io_next_];
        Status st = core_.Submit(std::span<const uint8_t>(io_bytes_.data() + r.offset, r.len),
                                 r.guarantee, now_us_, *this);
        // The intake bound makes the core's own refusal rare; if it happens,
        // keep the message and retry after the next unit of work.
        if (st.code() == StatusCode::kWouldBlock) return;
        ++io_next_;
        io_remaining_bytes_ -= r.len;
      }
    }
  }

  // Runs after every unit of I/O-thread work: retries refused submissions,
  // recomputes the queue bound and wakes writers waiting for room.
  void AfterWork() {
    TrackRing();
    if (io_next_ < io_records_.size()) DrainIntake();
    transport_->Flush();
    const uint64_t core_pending = core_.pending_bytes();
    bool notify = false;
    {
      std::lock_guard<std::mutex> lock(intake_mu_);
      queued_bytes_ = intake_bytes_.size() + io_remaining_bytes_ + core_pending;
      notify = waiters_ > 0 && HasRoomLocked();
    }
    if (notify) cv_.notify_all();
  }

  // Publishes the membership state and, when the core counted new token
  // arrivals, records the interval since the previous one (split evenly if
  // several arrived in one step). Any state but operational, or a new ring,
  // restarts the measurement.
  void TrackRing() {
    const core::MembershipState state = core_.membership_state();
    ring_state_.store(static_cast<uint8_t>(ToRingState(state)), std::memory_order_relaxed);
    const uint64_t rotations = core_.counters().token_rotations;
    const bool operational = state == core::MembershipState::kOperational;
    if (!operational || core_.ring_id() != rotation_ring_) {
      rotation_ring_ = core_.ring_id();
      last_token_us_ = 0;
      rotation_count_ = 0;
      rotation_sum_us_ = 0;
      rotation_mean_us_.store(0, std::memory_order_relaxed);
      rotations_measured_.store(0, std::memory_order_relaxed);
    }
    if (rotations == last_rotations_) return;
    const uint64_t arrived = rotations - last_rotations_;
    last_rotations_ = rotations;
    if (!operational) return;
    if (last_token_us_ != 0 && now_us_ >= last_token_us_) {
      const uint64_t interval = (now_us_ - last_token_us_) / arrived;
      const size_t slot = rotation_count_ % RingStatus::kRotationWindow;
      if (rotation_count_ >= RingStatus::kRotationWindow)
        rotation_sum_us_ -= rotation_window_[slot];
      rotation_window_[slot] = interval;
      rotation_sum_us_ += interval;
      ++rotation_count_;
      const uint64_t n = std::min<uint64_t>(rotation_count_, RingStatus::kRotationWindow);
      rotation_mean_us_.store(rotation_sum_us_ / n, std::memory_order_relaxed);
      rotations_measured_.store(static_cast<uint32_t>(n), std::memory_order_relaxed);
    }
    last_token_us_ = now_us_;
  }

  static RingState ToRingState(core::MembershipState s) {
    switch (s) {
      case core::MembershipState::kOperational:
        return RingState::kOperational;
      case core::MembershipState::kGather:
        return RingState::kGather;
      case core::MembershipState::kCommit:
        return RingState::kCommit;
      case core::MembershipState::kRecovery:
        return RingState::kRecovery;
    }
    return RingState::kGather;
  }

  bool HasRoomLocked() const {
    const uint64_t max = config_.ring.max_pending_bytes;
    const uint64_t refused = std::min<uint64_t>(last_refused_bytes_, max);
    return queued_bytes_ == 0 || queued_bytes_ <= std::min(max / 2, max - refused);
  }

  Counters ComputeCounters() const {
    Counters c = core_.counters();
    const runtime::TransportCounters& t = transport_->counters();
    c.datagrams_sent += t.datagrams_sent;
    c.datagrams_received += t.datagrams_received;
    c.send_errors += t.send_errors;
    c.drop_auth += t.drop_auth;
    c.drop_malformed += t.drop_malformed;
    c.submits_would_block += would_block_.load(std::memory_order_relaxed);
    return c;
  }

  const NodeConfig config_;
  const Callbacks callbacks_;

  // Declared before everything that registers with it, destroyed last.
  mutable asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  asio::steady_timer timer_;
  std::unique_ptr<UdpTransport> transport_;
  const std::unique_ptr<RingSeqStore> store_;  // I/O thread only after Launch
  const uint64_t initial_ring_seq_;
  core::SingleRing core_;
  std::thread thread_;

  // I/O thread only.
  uint64_t now_us_ = 0;
  std::array<uint64_t, kTimerCount> deadlines_{};
  uint64_t armed_deadline_ = kNever;
  uint64_t timer_generation_ = 0;
  std::vector<IntakeRecord> io_records_;
  std::vector<uint8_t> io_bytes_;
  std::vector<std::vector<uint8_t>> loopback_;        // frames to self, not yet handled
  std::vector<std::vector<uint8_t>> loopback_spare_;  // their recycled buffers
  bool loopback_posted_ = false;
  size_t io_next_ = 0;
  uint64_t io_remaining_bytes_ = 0;
  // Token rotation measurement (TrackRing).
  RingId rotation_ring_;
  uint64_t last_rotations_ = 0;   // core token_rotations at the last look
  uint64_t last_token_us_ = 0;    // arrival of the last token; 0: none yet in this ring
  uint64_t rotation_count_ = 0;   // intervals recorded in this ring
  uint64_t rotation_sum_us_ = 0;  // sum of the intervals in the window
  std::array<uint64_t, RingStatus::kRotationWindow> rotation_window_{};

  // Published by TrackRing for GetRingStatus.
  std::atomic<uint8_t> ring_state_{static_cast<uint8_t>(RingState::kGather)};
  std::atomic<uint64_t> rotation_mean_us_{0};
  std::atomic<uint32_t> rotations_measured_{0};

  // Intake, shared with submitters; guarded by intake_mu_.
  mutable std::mutex intake_mu_;
  std::condition_variable cv_;  // room in the queue, or stopped
  std::vector<IntakeRecord> intake_records_;
  std::vector<uint8_t> intake_bytes_;
  uint64_t queued_bytes_ = 0;  // accepted and not yet sent by the core
  uint64_t last_refused_bytes_ = 0;
  bool drain_posted_ = false;
  bool running_ = false;
  int waiters_ = 0;
  std::atomic<uint64_t> would_block_{0};

  // Counter snapshots; guarded by counters_mu_.
  mutable std::mutex counters_mu_;
  mutable std::condition_variable counters_cv_;
  mutable Counters snapshot_;
  mutable uint64_t counter_requests_ = 0;
  mutable uint64_t counters_served_ = 0;
  bool counters_final_ = false;

  // Configuration snapshot; guarded by view_mu_.
  mutable std::mutex view_mu_;
  ConfigurationView view_;

  std::mutex stop_mu_;
  bool stopped_ = false;
};

}  // namespace

const char* RingStateName(RingState s) {
  switch (s) {
    case RingState::kOperational:
      return "operational";
    case RingState::kGather:
      return "gather";
    case RingState::kCommit:
      return "commit";
    case RingState::kRecovery:
      return "recovery";
  }
  return "unknown";
}

StatusOr<std::unique_ptr<Node>> Node::Start(const NodeConfig& config, Callbacks callbacks) {
  if (Status st = config.Validate(); !st.ok()) return st;
  std::string key = config.transport.key;
  if (key.empty()) {
    StatusOr<std::string> k = ReadKeyFile(config.transport.key_file);
    if (!k.ok()) return k.status();
    key = std::move(k).value();
  }
  std::unique_ptr<runtime::RingSeqStore> store;
  uint64_t ring_seq = runtime::ClockDerivedRingSeq();
  if (!config.state_dir.empty()) {
    StatusOr<std::unique_ptr<runtime::RingSeqStore>> s =
        runtime::RingSeqStore::Open(config.state_dir);
    if (!s.ok()) {
      OPENSSL_cleanse(key.data(), key.size());
      return s.status();
    }
    store = std::move(s).value();
    ring_seq = store->initial();
  }
  auto node = std::make_unique<NodeImpl>(config, std::move(callbacks), std::move(store), ring_seq);
  Status st = node->Open(key);
  OPENSSL_cleanse(key.data(), key.size());
  if (!st.ok()) return st;
  if (st = node->Launch(); !st.ok()) return st;
  return std::unique_ptr<Node>(std::move(node));
}

}  // namespace totem
