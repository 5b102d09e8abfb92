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

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <variant>

#include "file_io.h"

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
    // The core's own checks, here so the caller gets the error (the core
    // only sees the submit later, on the ordering thread).
    if (destinations.size() > core::MultiRing::kMaxDestinations) {
      return InvalidArgument("multi-ring: " + std::to_string(destinations.size()) +
                             " destination rings (at most " +
                             std::to_string(core::MultiRing::kMaxDestinations) + ")");
    }
    for (core::RingNumber r : destinations) {
      if (std::find(config_.rings.begin(), config_.rings.end(), r) == config_.rings.end()) {
        return InvalidArgument("multi-ring: destination ring " + std::to_string(r) +
                               " is not a configured ring");
      }
      if (std::count(destinations.begin(), destinations.end(), r) > 1) {
        return InvalidArgument("multi-ring: destination ring " + std::to_string(r) +
                               " listed twice");
      }
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
  RingStatus GetRingStatus(size_t i) const override {
    std::lock_guard<std::mutex> lock(nodes_mu_);
    if (i >= nodes_.size() || !nodes_[i]) return RingStatus{};
    return nodes_[i]->GetRingStatus();
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
      PersistClock();
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
      // Cannot fail after Start: Submit checked the destinations.
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

  // Raises the persisted clock mark when the clock comes within half a
  // reserve of it (MultiRingNodeConfig::clock_file).
  void PersistClock() {
    if (config_.clock_file.empty() || core_.clock() + config_.clock_reserve / 2 < clock_mark_) {
      return;
    }
    const uint64_t mark = core_.clock() + config_.clock_reserve;
    if (WriteClockMark(config_.clock_file, mark).ok()) {
      clock_mark_ = mark;
    } else {
      clock_persist_errors_++;  // retried after the next unit of work
    }
  }

 public:
  static Status WriteClockMark(const std::string& path, uint64_t mark) {
    std::string dir = ".";
    if (const size_t slash = path.rfind('/'); slash != std::string::npos) {
      dir = slash == 0 ? "/" : path.substr(0, slash);
    }
    const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    const Status st =
        runtime::ReplaceFileAtomically(path, path + ".tmp", std::to_string(mark) + "\n", dir_fd);
    if (dir_fd >= 0) ::close(dir_fd);
    return st;
  }
  // The mark in `path` (0 if the file does not exist).
  static StatusOr<uint64_t> ReadClockMark(const std::string& path) {
    struct stat sb {};
    if (::stat(path.c_str(), &sb) != 0 && errno == ENOENT) return uint64_t{0};
    StatusOr<std::string> text = runtime::ReadSmallFile(path, 64, "multi-ring clock file");
    if (!text.ok()) return text.status();
    std::string t = *text;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    uint64_t v = 0;
    bool ok = !t.empty() && t.size() <= 20;
    for (char c : t) {
      if (c < '0' || c > '9' || v > (UINT64_MAX - 9) / 10) {
        ok = false;
        break;
      }
      v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!ok) {
      return Status{StatusCode::kInvalidArgument,
                    "multi-ring clock file " + path + ": not a decimal number: \"" + t + "\""};
    }
    return v;
  }
  void set_clock_mark(uint64_t mark) { clock_mark_ = mark; }

 private:
  void Snapshot() {
    std::lock_guard<std::mutex> lock(snap_mu_);
    snap_counters_ = core_.counters();
    snap_counters_.clock_persist_errors = clock_persist_errors_;
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
  uint64_t clock_mark_ = 0;
  uint64_t clock_persist_errors_ = 0;

  mutable std::mutex snap_mu_;
  core::MultiRingCounters snap_counters_;
  std::vector<core::RingNumber> snap_reachable_;
  size_t snap_queued_ = 0;
  std::string snap_blocked_;
};

}  // namespace

Status MultiRingNodeConfig::Validate() const {
  if (local.empty()) return InvalidArgument("multi-ring: no local ring");
  if (!clock_file.empty() && (clock_reserve < 2 || clock_reserve > (uint64_t{1} << 40))) {
    return InvalidArgument("multi-ring: clock_reserve must be in [2, 2^40]");
  }
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
  uint64_t mark = 0;
  if (!config.clock_file.empty()) {
    StatusOr<uint64_t> read = MultiRingNodeImpl::ReadClockMark(config.clock_file);
    if (!read.ok()) return read.status();
    // Start above the last mark, and reserve the next block before running.
    mc.initial_clock = *read;
    mark = *read + config.clock_reserve;
    if (Status st = MultiRingNodeImpl::WriteClockMark(config.clock_file, mark); !st.ok()) {
      return st;
    }
  }
  if (Status st = mc.Validate(); !st.ok()) return st;
  auto node = std::make_unique<MultiRingNodeImpl>(config, mc, std::move(callbacks));
  node->set_clock_mark(mark);
  if (Status st = node->StartAll(); !st.ok()) return st;
  return std::unique_ptr<MultiRingNode>(std::move(node));
}

}  // namespace totem
