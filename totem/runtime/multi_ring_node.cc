// totem::MultiRingNode (multi_ring_node.h): one totem::Node per local ring,
// and one ordering thread that owns the pure multiple-ring layer
// (core/multi_ring.h).
//
// Design notes:
//  - The ring Nodes' callbacks (each on its own I/O thread) copy what they
//    get into one event queue; so do Submit calls. The ordering thread takes
//    the events in queue order and feeds them to the core with the
//    steady-clock time; it also runs the core's one timer (a deadline it
//    waits for) and hands the core's submits to the ring Nodes, keeping them
//    in order per ring and retrying every millisecond while a Node's submit
//    queue is full.
//  - Application callbacks run on the ordering thread, outside the snapshot
//    mutex, so they may call the thread-safe getters and Submit.
#include "totem/multi_ring_node.h"

#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <variant>

namespace totem {
namespace {

constexpr size_t kEnvelopeMarginBytes = 64;  // the layer's envelope is 36 bytes

struct RingDeliveryEvent {
  size_t index = 0;
  Delivery delivery;  // payload points into `bytes`
  std::vector<uint8_t> bytes;
};
struct RingConfigEvent {
  size_t index = 0;
  ConfigurationEvent event;
};
struct SubmitEvent {
  std::vector<uint8_t> payload;
  Guarantee guarantee = Guarantee::kAgreed;
  std::vector<core::RingNumber> destinations;  // empty: every ring
};
using Event = std::variant<RingDeliveryEvent, RingConfigEvent, SubmitEvent>;

class MultiRingNodeImpl final : public MultiRingNode, private core::MultiRingOutput {
 public:
  MultiRingNodeImpl(const MultiRingNodeConfig& config, const core::MultiRingConfig& core_config,
                    MultiRingCallbacks callbacks)
      : config_(config),
        core_(core_config),
        callbacks_(std::move(callbacks)),
        start_(std::chrono::steady_clock::now()),
        incarnation_(core_config.incarnation) {
    size_t max_bytes = SIZE_MAX;
    for (const auto& l : config_.local) {
      max_bytes = std::min<size_t>(max_bytes, l.node.ring.max_message_bytes);
    }
    max_payload_ = max_bytes > kEnvelopeMarginBytes ? max_bytes - kEnvelopeMarginBytes : 0;
    pending_.resize(config_.local.size());
  }
  ~MultiRingNodeImpl() override { Stop(); }

  Status StartAll() {
    worker_ = std::thread([this] { Run(); });
    for (size_t i = 0; i < config_.local.size(); ++i) {
      Callbacks cb;
      cb.on_deliver = [this, i](const Delivery& d) {
        RingDeliveryEvent e;
        e.index = i;
        e.delivery = d;
        e.bytes.assign(d.payload.begin(), d.payload.end());
        Push(Event(std::move(e)));
      };
      cb.on_configuration = [this, i](const ConfigurationEvent& c) {
        Push(Event(RingConfigEvent{i, c}));
      };
      StatusOr<std::unique_ptr<Node>> node = Node::Start(config_.local[i].node, std::move(cb));
      if (!node.ok()) {
        Stop();
        return Status(node.status().code(), "ring " + std::to_string(config_.local[i].ring) + ": " +
                                                node.status().message());
      }
      std::lock_guard<std::mutex> lock(nodes_mu_);
      nodes_.push_back(std::move(node).value());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      nodes_ready_ = true;
    }
    cv_.notify_all();
    return Status::Ok();
  }

  Status Submit(std::span<const uint8_t> payload, Guarantee guarantee) override {
    return Submit(payload, guarantee, {});
  }

  Status Submit(std::span<const uint8_t> payload, Guarantee guarantee,
                std::span<const core::RingNumber> destinations) override {
    if (payload.size() > max_payload_) {
      return {StatusCode::kResourceExhausted,
              "multi-ring: message of " + std::to_string(payload.size()) +
                  " bytes is larger than " + std::to_string(max_payload_)};
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return {StatusCode::kUnavailable, "multi-ring: stopped"};
    if (pending_submits_ >= config_.max_pending_submits) {
      return {StatusCode::kWouldBlock, "multi-ring: submit queue full"};
    }
    pending_submits_++;
    events_.emplace_back(
        SubmitEvent{std::vector<uint8_t>(payload.begin(), payload.end()), guarantee,
                    std::vector<core::RingNumber>(destinations.begin(), destinations.end())});
    cv_.notify_all();
    return Status::Ok();
  }

  bool WaitWritable(std::chrono::milliseconds timeout) override {
    std::unique_lock<std::mutex> lock(mu_);
    return room_cv_.wait_for(lock, timeout, [&] {
      return stopping_ || pending_submits_ < config_.max_pending_submits;
    }) && !stopping_;
  }

  core::MultiRingCounters GetCounters() const override {
    std::lock_guard<std::mutex> lock(snap_mu_);
    return snap_counters_;
  }
  std::vector<core::RingNumber> Reachable() const override {
    std::lock_guard<std::mutex> lock(snap_mu_);
    return snap_reachable_;
  }
  size_t Queued() const override {
    std::lock_guard<std::mutex> lock(snap_mu_);
    return snap_queued_;
  }
  std::string BlockedReason() const override {
    std::lock_guard<std::mutex> lock(snap_mu_);
    return snap_blocked_;
  }
  Counters GetRingCounters(size_t i) const override {
    std::lock_guard<std::mutex> lock(nodes_mu_);
    if (i >= nodes_.size() || !nodes_[i]) return Counters{};
    return nodes_[i]->GetCounters();
  }
  uint32_t incarnation() const override { return incarnation_; }

  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    room_cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    std::lock_guard<std::mutex> lock(nodes_mu_);
    for (auto& n : nodes_) n->Stop();
  }

 private:
  uint64_t NowUs() const {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::steady_clock::now() - start_)
                                     .count());
  }

  void Push(Event e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      events_.push_back(std::move(e));
    }
    cv_.notify_all();
  }

  // The ordering thread.
  void Run() {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || nodes_ready_; });
      if (stopping_) return;
    }
    core_.Start(NowUs(), *this);
    FlushPending();
    Snapshot();
    for (;;) {
      Event e;
      bool have = false;
      {
        std::unique_lock<std::mutex> lock(mu_);
        const auto until = [&] {
          auto t = std::chrono::steady_clock::time_point::max();
          if (timer_armed_) t = start_ + std::chrono::microseconds(timer_deadline_us_);
          if (HasPending()) {
            t = std::min(t, std::chrono::steady_clock::now() + std::chrono::milliseconds(1));
          }
          return t;
        }();
        cv_.wait_until(lock, until, [&] { return stopping_ || !events_.empty(); });
        if (stopping_) return;
        if (!events_.empty()) {
          e = std::move(events_.front());
          events_.pop_front();
          have = true;
          if (std::holds_alternative<SubmitEvent>(e)) {
            pending_submits_--;
            room_cv_.notify_all();
          }
        }
      }
      const uint64_t now = NowUs();
      if (have) Handle(e, now);
      if (timer_armed_ && now >= timer_deadline_us_) {
        timer_armed_ = false;
        core_.HandleTimer(now, *this);
      }
      FlushPending();
      Snapshot();
    }
  }

  void Handle(Event& e, uint64_t now) {
    if (auto* d = std::get_if<RingDeliveryEvent>(&e)) {
      d->delivery.payload = d->bytes;
      core_.HandleRingDelivery(config_.local[d->index].ring, d->delivery, now, *this);
    } else if (auto* c = std::get_if<RingConfigEvent>(&e)) {
      const core::RingNumber ring = config_.local[c->index].ring;
      if (callbacks_.on_ring_configuration) callbacks_.on_ring_configuration(ring, c->event);
      core_.HandleRingConfiguration(ring, c->event, now, *this);
    } else {
      auto& s = std::get<SubmitEvent>(e);
      // Cannot fail after Start (the only error is kUnavailable before it).
      (void)core_.Submit(s.payload, s.guarantee, s.destinations, now, *this);
    }
  }

  bool HasPending() const {
    for (const auto& q : pending_) {
      if (!q.empty()) return true;
    }
    return false;
  }

  void FlushPending() {
    for (size_t i = 0; i < pending_.size(); ++i) {
      while (!pending_[i].empty()) {
        auto& [bytes, g] = pending_[i].front();
        const Status st = nodes_[i]->Submit(bytes, g);
        if (st.code() == StatusCode::kWouldBlock) break;
        // Other errors (too large, stopped) cannot be retried: drop it; the
        // layer treats a lost message like one the ring never delivered.
        if (!st.ok()) ring_submit_errors_++;
        pending_[i].pop_front();
      }
    }
  }

  void Snapshot() {
    std::lock_guard<std::mutex> lock(snap_mu_);
    snap_counters_ = core_.counters();
    snap_reachable_ = core_.Reachable();
    snap_queued_ = core_.queued();
    snap_blocked_ = core_.BlockedReason();
  }

  // core::MultiRingOutput, on the ordering thread.
  void SubmitToRing(core::RingNumber ring, std::span<const uint8_t> bytes,
                    Guarantee guarantee) override {
    for (size_t i = 0; i < config_.local.size(); ++i) {
      if (config_.local[i].ring == ring) {
        pending_[i].emplace_back(std::vector<uint8_t>(bytes.begin(), bytes.end()), guarantee);
        return;
      }
    }
  }
  void Deliver(const core::MultiDelivery& delivery) override {
    if (callbacks_.on_deliver) callbacks_.on_deliver(delivery);
  }
  void DeliverTopology(const core::TopologyEvent& event) override {
    if (callbacks_.on_topology) callbacks_.on_topology(event);
  }
  void DeliverConfiguration(const core::GlobalConfiguration& configuration) override {
    if (callbacks_.on_configuration) callbacks_.on_configuration(configuration);
  }
  void SetTimer(uint64_t delay_us) override {
    timer_armed_ = true;
    timer_deadline_us_ = NowUs() + delay_us;
  }

  const MultiRingNodeConfig config_;
  core::MultiRing core_;  // ordering thread only
  const MultiRingCallbacks callbacks_;
  const std::chrono::steady_clock::time_point start_;
  const uint32_t incarnation_;
  size_t max_payload_ = 0;

  mutable std::mutex nodes_mu_;               // guards nodes_ against Stop while a getter reads
  std::vector<std::unique_ptr<Node>> nodes_;  // filled before nodes_ready_

  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable room_cv_;
  std::deque<Event> events_;    // guarded by mu_
  size_t pending_submits_ = 0;  // SubmitEvents in events_; guarded by mu_
  bool nodes_ready_ = false;    // guarded by mu_
  bool stopping_ = false;       // guarded by mu_
  std::thread worker_;

  // Ordering thread only.
  std::vector<std::deque<std::pair<std::vector<uint8_t>, Guarantee>>> pending_;
  bool timer_armed_ = false;
  uint64_t timer_deadline_us_ = 0;
  uint64_t ring_submit_errors_ = 0;

  mutable std::mutex snap_mu_;
  core::MultiRingCounters snap_counters_;
  std::vector<core::RingNumber> snap_reachable_;
  size_t snap_queued_ = 0;
  std::string snap_blocked_;
};

}  // namespace

Status MultiRingNodeConfig::Validate() const {
  if (local.empty()) return InvalidArgument("multi-ring: no local ring");
  std::set<core::RingNumber> seen;
  for (const LocalRing& l : local) {
    if (!seen.insert(l.ring).second) {
      return InvalidArgument("multi-ring: local ring " + std::to_string(l.ring) + " listed twice");
    }
    if (l.node.ring.node_id != local.front().node.ring.node_id) {
      return InvalidArgument("multi-ring: ring " + std::to_string(l.ring) + " has node id " +
                             std::to_string(l.node.ring.node_id) + ", ring " +
                             std::to_string(local.front().ring) + " has " +
                             std::to_string(local.front().node.ring.node_id) +
                             " (one processor has one id on all its rings)");
    }
    if (Status st = l.node.Validate(); !st.ok()) {
      return Status(st.code(), "ring " + std::to_string(l.ring) + ": " + st.message());
    }
  }
  if (guarantee_interval_us == 0) return InvalidArgument("multi-ring: guarantee_interval_us is 0");
  if (max_pending_submits == 0) return InvalidArgument("multi-ring: max_pending_submits is 0");
  return Status::Ok();
}

StatusOr<std::unique_ptr<MultiRingNode>> MultiRingNode::Start(const MultiRingNodeConfig& config,
                                                              MultiRingCallbacks callbacks) {
  if (Status st = config.Validate(); !st.ok()) return st;
  core::MultiRingConfig mc;
  mc.node_id = config.local.front().node.ring.node_id;
  for (const auto& l : config.local) mc.local_rings.push_back(l.ring);
  mc.rings = config.rings;
  mc.links = config.links;
  mc.guarantee_interval_us = config.guarantee_interval_us;
  mc.incarnation = config.incarnation;
  if (mc.incarnation == 0) {
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    mc.incarnation = static_cast<uint32_t>(ts.tv_sec);
  }
  if (Status st = mc.Validate(); !st.ok()) return st;
  auto node = std::make_unique<MultiRingNodeImpl>(config, mc, std::move(callbacks));
  if (Status st = node->StartAll(); !st.ok()) return st;
  return std::unique_ptr<MultiRingNode>(std::move(node));
}

}  // namespace totem
