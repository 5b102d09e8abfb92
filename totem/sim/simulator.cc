// The deterministic simulator (see simulator.h): event queue, network model,
// workload and the Output each core writes its effects into.
#include "totem/sim/simulator.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "totem/config.h"
#include "totem/core/output.h"
#include "totem/core/single_ring.h"
#include "totem/core/wire.h"
#include "totem/sim/checker.h"
#include "totem/sim/random.h"
#include "totem/status.h"
#include "totem/types.h"

namespace totem::sim {

const char* InjectedFaultName(InjectedFault f) {
  switch (f) {
    case InjectedFault::kNone:
      return "none";
    case InjectedFault::kDropDelivery:
      return "drop-delivery";
    case InjectedFault::kCorruptPayload:
      return "corrupt-payload";
    case InjectedFault::kSwapDeliveries:
      return "swap-deliveries";
    case InjectedFault::kFalseSafe:
      return "false-safe";
  }
  return "unknown";
}

bool ParseInjectedFault(const std::string& name, InjectedFault* out) {
  for (InjectedFault f :
       {InjectedFault::kNone, InjectedFault::kDropDelivery, InjectedFault::kCorruptPayload,
        InjectedFault::kSwapDeliveries, InjectedFault::kFalseSafe}) {
    if (name == InjectedFaultName(f)) {
      *out = f;
      return true;
    }
  }
  return false;
}

// The ring parameters every simulated core runs with.
static RingConfig MakeRingConfig(const SimOptions& o, NodeId id,
                                 const std::vector<NodeId>& members) {
  RingConfig rc;
  rc.node_id = id;
  rc.members = members;
  rc.window_size = o.window_size;
  rc.max_messages_per_visit = o.max_messages_per_visit;
  rc.max_frame_bytes = o.max_frame_bytes;
  rc.packing = o.packing;
  rc.receive_buffer_frames = o.receive_buffer_frames;
  rc.max_pending_bytes = o.max_pending_bytes;
  rc.max_message_bytes = o.max_message_bytes;
  rc.max_rtr_entries = o.max_rtr_entries;
  rc.token_retransmit_us = o.token_retransmit_us;
  rc.token_hold_us = o.token_hold_us;
  return rc;
}

std::string ValidateOptions(const SimOptions& o) {
  auto prob = [](double p) { return p >= 0 && p <= 0.9; };
  if (o.nodes < 1 || o.nodes > 64) return "--nodes must be in [1, 64]";
  if (!prob(o.loss) || !prob(o.dup) || !prob(o.reorder) || !prob(o.corrupt)) {
    return "--loss, --dup, --reorder and --corrupt must be in [0, 0.9] (total loss never ends)";
  }
  if (o.loss + o.corrupt > 0.9) return "--loss plus --corrupt must stay below 0.9";
  if (o.large_percent > 100) return "--large-percent must be in [0, 100]";
  if (o.large_max_frames < 2 || o.large_max_frames > 512) {
    return "--large-frames must be in [2, 512]";
  }
  if (o.safe_fraction < 0 || o.safe_fraction > 1) return "--safe-fraction must be in [0, 1]";
  if (o.max_time_ms == 0) return "--max-time-ms must be positive";
  if (o.latency_us == 0) return "--latency-us must be positive";
  std::vector<NodeId> members;
  for (NodeId n = 1; n <= o.nodes; ++n) members.push_back(n);
  RingConfig rc = MakeRingConfig(o, 1, members);
  if (o.max_message_bytes < o.max_frame_bytes) {
    return "--max-message-bytes must be at least --frame-bytes";
  }
  Status s = rc.Validate();
  if (!s.ok()) return "ring configuration: " + s.ToString();
  return "";
}

namespace {

using core::TimerId;
constexpr size_t kTimerCount = static_cast<size_t>(TimerId::kCount);

enum class EventKind : uint8_t { kStart = 1, kFrame = 2, kTimer = 3, kSubmit = 4 };

struct Event {
  uint64_t time_us = 0;
  uint64_t order = 0;  // insertion counter: ties in time keep insertion order
  EventKind kind = EventKind::kStart;
  NodeId node = kNoNode;
  NodeId from = kNoNode;   // kFrame
  bool corrupted = false;  // kFrame
  TimerId timer = TimerId::kTokenRetransmit;
  uint64_t generation = 0;  // kTimer
  uint32_t work = 0;        // kSubmit: index into the workload plan
  std::vector<uint8_t> bytes;
};

// Min-heap order for std::push_heap / std::pop_heap.
struct Later {
  bool operator()(const Event& a, const Event& b) const {
    if (a.time_us != b.time_us) return a.time_us > b.time_us;
    return a.order > b.order;
  }
};

// FNV-1a, 64 bit: simple, stable, and enough to tell two runs apart.
class Digest {
 public:
  void Add(uint64_t v) {
    for (int i = 0; i < 8; ++i) Byte(static_cast<uint8_t>(v >> (8 * i)));
  }
  void Add(std::span<const uint8_t> b) {
    Add(b.size());
    for (uint8_t x : b) Byte(x);
  }
  uint64_t value() const { return h_; }

 private:
  void Byte(uint8_t b) {
    h_ ^= b;
    h_ *= 0x100000001B3ull;
  }
  uint64_t h_ = 0xCBF29CE484222325ull;
};

struct Planned {
  uint64_t time_us = 0;
  NodeId node = kNoNode;
  uint32_t size = 0;
  Guarantee guarantee = Guarantee::kAgreed;
};

// A delivery whose payload outlives the callback (fault injection).
struct HeldDelivery {
  Delivery delivery;
  std::vector<uint8_t> payload;
};

// Human-readable summary of a frame for the trace.
std::string DescribeFrame(std::span<const uint8_t> bytes) {
  core::Reader r(bytes);
  core::Header h;
  char buf[256];
  if (core::DecodeHeader(r, h) != core::DecodeResult::kOk) {
    std::snprintf(buf, sizeof buf, "garbage len=%zu", bytes.size());
    return buf;
  }
  switch (h.type) {
    case core::FrameType::kToken: {
      core::Token t;
      if (core::DecodeTokenBody(r, 0xFFFF, t) != core::DecodeResult::kOk) {
        std::snprintf(buf, sizeof buf, "token(bad) len=%zu", bytes.size());
        return buf;
      }
      std::string s;
      std::snprintf(buf, sizeof buf,
                    "token tseq=%" PRIu64 " seq=%" PRIu64 " aru=%" PRIu64
                    " aru_id=%u fcc=%u backlog=%u rtr=[",
                    t.token_seq, t.seq, t.aru, t.aru_id, t.fcc, t.backlog);
      s = buf;
      for (size_t i = 0; i < t.rtr.size(); ++i) {
        if (i == 8) {
          s += " ...+" + std::to_string(t.rtr.size() - 8);
          break;
        }
        s += (i ? " " : "") + std::to_string(t.rtr[i]);
      }
      return s + "]";
    }
    case core::FrameType::kData: {
      core::DataFrameInfo info;
      if (core::DecodeDataBody(r, info) != core::DecodeResult::kOk) {
        std::snprintf(buf, sizeof buf, "data(bad) len=%zu", bytes.size());
        return buf;
      }
      std::snprintf(buf, sizeof buf, "data seq=%" PRIu64 " %s chunks=%u len=%zu", info.seq,
                    GuaranteeName(info.guarantee), info.chunk_count, bytes.size());
      return buf;
    }
    case core::FrameType::kHoldCancel:
      return "hold-cancel";
  }
  return "unknown";
}

class Simulation;

// The Output of one core: effects go to the network, the timer wheel and
// the checker of the simulation that owns it.
class NodeOutput final : public core::Output {
 public:
  NodeOutput(Simulation* sim, NodeId id) : sim_(sim), id_(id) {}
  void Unicast(NodeId to, std::span<const uint8_t> frame) override;
  void Multicast(std::span<const uint8_t> frame) override;
  void SetTimer(TimerId id, uint64_t delay_us) override;
  void CancelTimer(TimerId id) override;
  void Deliver(const Delivery& delivery) override;
  void DeliverConfiguration(const ConfigurationEvent& event) override;

 private:
  Simulation* sim_;
  NodeId id_;
};

class Simulation {
 public:
  explicit Simulation(const SimOptions& o);
  RunResult Run();

  // Effects of core `node` (through its NodeOutput).
  void Send(NodeId from, NodeId to, std::span<const uint8_t> frame);
  void Multicast(NodeId from, std::span<const uint8_t> frame);
  void SetTimer(NodeId node, TimerId id, uint64_t delay_us);
  void CancelTimer(NodeId node, TimerId id);
  void Deliver(NodeId node, const Delivery& d);
  void DeliverConfiguration(NodeId node, const ConfigurationEvent& e);

 private:
  static size_t Index(NodeId id) { return id - 1; }
  core::SingleRing& Core(NodeId id) { return *cores_[Index(id)]; }
  core::Output& Out(NodeId id) { return *outputs_[Index(id)]; }
  CoreView ViewOf(NodeId id) const;
  uint64_t MinAru() const;
  bool AllReceived(uint64_t seq) const;
  void Push(Event e);
  Event Pop();
  void Handle(Event& e);
  void Submit(const Event& e);
  void PassDelivery(NodeId node, const Delivery& d);
  void FinalChecks();
  void Trace(NodeId node, const std::string& what);
  bool tracing() const { return opt_.trace != nullptr; }

  const SimOptions opt_;
  Random rng_;
  std::vector<NodeId> members_;
  Checker checker_;
  std::vector<std::unique_ptr<core::SingleRing>> cores_;
  std::vector<std::unique_ptr<NodeOutput>> outputs_;

  std::vector<Event> heap_;
  uint64_t next_order_ = 0;
  uint64_t now_us_ = 0;

  std::vector<std::array<uint64_t, kTimerCount>> timer_gen_;  // per node, per timer
  std::vector<std::array<bool, kTimerCount>> timer_armed_;
  std::vector<uint64_t> deaf_until_us_;       // per node: burst loss until then
  std::vector<uint64_t> link_arrival_us_;     // [from][to]: last in-order arrival
  std::vector<uint64_t> accepted_;            // per node: messages Submit accepted
  std::vector<uint64_t> corrupted_received_;  // per node
  std::vector<Planned> plan_;
  uint64_t plan_done_ = 0;

  // Fault injection state.
  bool fault_done_ = false;
  std::optional<HeldDelivery> held_;

  Digest digest_;
  RunResult result_;
};

void NodeOutput::Unicast(NodeId to, std::span<const uint8_t> frame) { sim_->Send(id_, to, frame); }
void NodeOutput::Multicast(std::span<const uint8_t> frame) { sim_->Multicast(id_, frame); }
void NodeOutput::SetTimer(TimerId id, uint64_t delay_us) { sim_->SetTimer(id_, id, delay_us); }
void NodeOutput::CancelTimer(TimerId id) { sim_->CancelTimer(id_, id); }
void NodeOutput::Deliver(const Delivery& delivery) { sim_->Deliver(id_, delivery); }
void NodeOutput::DeliverConfiguration(const ConfigurationEvent& event) {
  sim_->DeliverConfiguration(id_, event);
}

std::vector<NodeId> MemberList(uint32_t n) {
  std::vector<NodeId> m;
  for (NodeId i = 1; i <= n; ++i) m.push_back(i);
  return m;
}

Simulation::Simulation(const SimOptions& o)
    : opt_(o),
      rng_(o.seed),
      members_(MemberList(o.nodes)),
      checker_(members_, o.receive_buffer_frames),
      timer_gen_(o.nodes),
      timer_armed_(o.nodes),
      deaf_until_us_(o.nodes, 0),
      link_arrival_us_(static_cast<size_t>(o.nodes) * o.nodes, 0),
      accepted_(o.nodes, 0),
      corrupted_received_(o.nodes, 0) {
  for (auto& g : timer_gen_) g.fill(0);
  for (auto& a : timer_armed_) a.fill(false);
  for (NodeId id : members_) {
    cores_.push_back(std::make_unique<core::SingleRing>(MakeRingConfig(o, id, members_)));
    outputs_.push_back(std::make_unique<NodeOutput>(this, id));
  }

  // The workload plan: when, where, how big, which guarantee.
  const uint64_t spread_us = (o.spread_ms != 0 ? o.spread_ms : 20 + o.messages / 20) * 1000;
  const uint32_t frame = o.max_frame_bytes;
  for (uint32_t i = 0; i < o.messages; ++i) {
    Planned p;
    p.time_us = rng_.Range(1, spread_us);
    p.node = static_cast<NodeId>(1 + rng_.Below(o.nodes));
    const uint64_t r = rng_.Below(100);
    if (r < 5) {
      // Sizes at the packing / fragmentation boundaries.
      const uint64_t cap =
          frame - core::kHeaderBytes - core::kDataFixedBytes - core::kChunkHeaderBytes;
      const uint64_t edges[] = {
          kPayloadHeaderBytes, cap - 1, cap,         cap + 1, cap - core::kFirstChunkExtraBytes,
          2 * cap - 1,         2 * cap, 2 * cap + 1, 3 * cap};
      const uint64_t pick = edges[rng_.Below(std::size(edges))];
      p.size = static_cast<uint32_t>(
          std::clamp<uint64_t>(pick, kPayloadHeaderBytes, o.max_message_bytes));
    } else if (r < 5 + o.large_percent) {
      p.size = static_cast<uint32_t>(
          rng_.Range(frame + 1, static_cast<uint64_t>(frame) * o.large_max_frames));
      p.size = std::min(p.size, o.max_message_bytes);
    } else if (r < 5 + o.large_percent + (100 - o.large_percent) / 4) {
      p.size = static_cast<uint32_t>(rng_.Range(kPayloadHeaderBytes, frame));
    } else {
      p.size = static_cast<uint32_t>(rng_.Range(kPayloadHeaderBytes, 128));
    }
    p.guarantee = rng_.Chance(o.safe_fraction) ? Guarantee::kSafe : Guarantee::kAgreed;
    plan_.push_back(p);
  }
  for (NodeId id : members_) {
    Event e;
    e.kind = EventKind::kStart;
    e.node = id;
    Push(std::move(e));
  }
  for (uint32_t i = 0; i < plan_.size(); ++i) {
    Event e;
    e.time_us = plan_[i].time_us;
    e.kind = EventKind::kSubmit;
    e.node = plan_[i].node;
    e.work = i;
    Push(std::move(e));
  }
}

void Simulation::Push(Event e) {
  e.order = next_order_++;
  heap_.push_back(std::move(e));
  std::push_heap(heap_.begin(), heap_.end(), Later());
}

Event Simulation::Pop() {
  std::pop_heap(heap_.begin(), heap_.end(), Later());
  Event e = std::move(heap_.back());
  heap_.pop_back();
  return e;
}

CoreView Simulation::ViewOf(NodeId id) const {
  const core::SingleRing& c = *cores_[Index(id)];
  CoreView v;
  v.ring_id = c.ring_id();
  v.aru = c.aru();
  v.delivered_up_to = c.delivered_up_to();
  v.safe_up_to = c.safe_up_to();
  v.high_seq = c.high_seq_received();
  v.buffered_frames = c.buffered_frames();
  return v;
}

uint64_t Simulation::MinAru() const {
  uint64_t m = UINT64_MAX;
  for (const auto& c : cores_) m = std::min(m, c->aru());
  return m;
}

bool Simulation::AllReceived(uint64_t seq) const {
  for (const auto& c : cores_) {
    if (!c->HasReceived(seq)) return false;
  }
  return true;
}

void Simulation::Trace(NodeId node, const std::string& what) {
  char prefix[64];
  std::snprintf(prefix, sizeof prefix, "t=%" PRIu64 " n=%u ", now_us_, node);
  *opt_.trace << prefix << what << '\n';
}

void Simulation::Multicast(NodeId from, std::span<const uint8_t> frame) {
  if (tracing()) Trace(from, "mcast " + DescribeFrame(frame));
  for (NodeId to : members_) {
    if (to != from) Send(from, to, frame);
  }
}

void Simulation::Send(NodeId from, NodeId to, std::span<const uint8_t> frame) {
  ++result_.datagrams;
  digest_.Add(0x53454E44);  // "SEND"
  digest_.Add(now_us_);
  digest_.Add((static_cast<uint64_t>(from) << 32) | to);
  digest_.Add(frame);
  if (frame.size() > opt_.max_frame_bytes) {
    checker_.set_now(now_us_);
    checker_.Fail("node " + std::to_string(from) + " emitted a " + std::to_string(frame.size()) +
                  "-byte frame > max_frame_bytes=" + std::to_string(opt_.max_frame_bytes) + ": " +
                  DescribeFrame(frame));
    return;
  }
  if (to < 1 || to > opt_.nodes) {
    checker_.set_now(now_us_);
    checker_.Fail("node " + std::to_string(from) + " sent a frame to non-member " +
                  std::to_string(to));
    return;
  }

  // Fate of this copy, always drawn in the same order.
  if (opt_.loss > 0 && opt_.burst_loss && rng_.Chance(opt_.loss * 0.02)) {
    deaf_until_us_[Index(to)] =
        std::max(deaf_until_us_[Index(to)], now_us_ + rng_.Range(500, 5000));
  }
  const bool lost = rng_.Chance(opt_.loss) || now_us_ < deaf_until_us_[Index(to)];
  if (lost) {
    ++result_.dropped;
    digest_.Add(0);
    if (tracing()) Trace(from, "drop to=" + std::to_string(to) + " " + DescribeFrame(frame));
    return;
  }
  const int copies = rng_.Chance(opt_.dup) ? 2 : 1;
  for (int c = 0; c < copies; ++c) {
    uint64_t delay = opt_.latency_us + rng_.Range(0, opt_.jitter_us);
    // A link is FIFO (jitter never reorders) except for the copies picked
    // for reordering, which get an extra delay and are overtaken.
    uint64_t& link = link_arrival_us_[Index(from) * opt_.nodes + Index(to)];
    if (rng_.Chance(opt_.reorder)) {
      delay += rng_.Range(1, opt_.reorder_delay_us);
    } else {
      if (link > now_us_) delay = std::max(delay, link - now_us_);
      link = now_us_ + delay;
    }
    Event e;
    e.time_us = now_us_ + delay;
    e.kind = EventKind::kFrame;
    e.node = to;
    e.from = from;
    e.bytes.assign(frame.begin(), frame.end());
    // Corruption the decoders must reject (see simulator.h): truncation, or
    // damage to the magic / version bytes.
    if (rng_.Chance(opt_.corrupt) && !e.bytes.empty()) {
      e.corrupted = true;
      ++result_.corrupted;
      if (rng_.Chance(0.5)) {
        e.bytes.resize(rng_.Below(e.bytes.size()));
      } else {
        const size_t at = rng_.Below(std::min<size_t>(3, e.bytes.size()));
        e.bytes[at] ^= static_cast<uint8_t>(rng_.Range(1, 255));
      }
    }
    digest_.Add(e.time_us);
    if (tracing()) {
      Trace(from, std::string(c ? "dup " : "send ") + "to=" + std::to_string(to) + " arrive=+" +
                      std::to_string(delay) + "us " + (e.corrupted ? "CORRUPTED " : "") +
                      DescribeFrame(frame));
    }
    Push(std::move(e));
  }
}

void Simulation::SetTimer(NodeId node, TimerId id, uint64_t delay_us) {
  const size_t t = static_cast<size_t>(id);
  if (t >= kTimerCount) {
    checker_.Fail("node " + std::to_string(node) + " set an unknown timer");
    return;
  }
  uint64_t gen = ++timer_gen_[Index(node)][t];
  timer_armed_[Index(node)][t] = true;
  digest_.Add(0x54494D45);  // "TIME"
  digest_.Add(now_us_ + delay_us);
  digest_.Add((static_cast<uint64_t>(node) << 8) | t);
  if (tracing()) {
    Trace(node,
          std::string("timer-set ") + core::TimerName(id) + " +" + std::to_string(delay_us) + "us");
  }
  Event e;
  e.time_us = now_us_ + delay_us;
  e.kind = EventKind::kTimer;
  e.node = node;
  e.timer = id;
  e.generation = gen;
  Push(std::move(e));
}

void Simulation::CancelTimer(NodeId node, TimerId id) {
  const size_t t = static_cast<size_t>(id);
  if (t >= kTimerCount) {
    checker_.Fail("node " + std::to_string(node) + " cancelled an unknown timer");
    return;
  }
  ++timer_gen_[Index(node)][t];
  timer_armed_[Index(node)][t] = false;
  digest_.Add(0x43414E43);  // "CANC"
  digest_.Add((static_cast<uint64_t>(node) << 8) | t);
  if (tracing()) Trace(node, std::string("timer-cancel ") + core::TimerName(id));
}

void Simulation::DeliverConfiguration(NodeId node, const ConfigurationEvent& e) {
  digest_.Add(0x434F4E46);  // "CONF"
  digest_.Add(node);
  digest_.Add(e.id.rep);
  digest_.Add(e.id.seq);
  if (tracing()) {
    std::string m;
    for (NodeId x : e.members) m += (m.empty() ? "" : ",") + std::to_string(x);
    Trace(node, std::string("configuration ") +
                    (e.kind == ConfigurationKind::kRegular ? "regular" : "transitional") +
                    " id=" + e.id.ToString() + " members=" + m);
  }
  checker_.set_now(now_us_);
  checker_.OnConfiguration(node, e, ViewOf(node));
}

void Simulation::Deliver(NodeId node, const Delivery& d) {
  ++result_.deliveries;
  digest_.Add(0x44454C56);  // "DELV"
  digest_.Add(node);
  digest_.Add(d.sender);
  digest_.Add(d.frame_seq);
  digest_.Add(static_cast<uint64_t>(d.guarantee));
  digest_.Add(d.payload);
  if (tracing()) {
    std::optional<MessageKey> k = ParsePayload(d.payload);
    char buf[160];
    std::snprintf(buf, sizeof buf, "deliver msg(%u#%" PRIu64 ") %s frame_seq=%" PRIu64 " len=%zu",
                  k ? k->sender : 0, k ? k->index : 0, GuaranteeName(d.guarantee), d.frame_seq,
                  d.payload.size());
    Trace(node, buf);
  }
  checker_.set_now(now_us_);

  // Deliberate faults, so tests can prove the checker notices them. They
  // hit the last node's first delivery (the first safe one for kFalseSafe).
  if (opt_.inject != InjectedFault::kNone && !fault_done_ && node == members_.back()) {
    switch (opt_.inject) {
      case InjectedFault::kNone:
        break;
      case InjectedFault::kDropDelivery:
        fault_done_ = true;
        return;
      case InjectedFault::kCorruptPayload: {
        fault_done_ = true;
        std::vector<uint8_t> copy(d.payload.begin(), d.payload.end());
        copy.back() ^= 0x01;
        Delivery bad = d;
        bad.payload = copy;
        PassDelivery(node, bad);
        return;
      }
      case InjectedFault::kSwapDeliveries:
        if (!held_) {
          held_.emplace();
          held_->payload.assign(d.payload.begin(), d.payload.end());
          held_->delivery = d;
          held_->delivery.payload = held_->payload;
          return;
        }
        fault_done_ = true;
        PassDelivery(node, d);
        PassDelivery(node, held_->delivery);
        held_.reset();
        return;
      case InjectedFault::kFalseSafe:
        if (d.guarantee == Guarantee::kSafe) {
          fault_done_ = true;
          checker_.OnDelivery(node, d, ViewOf(node), false);
          return;
        }
        break;
    }
  }
  PassDelivery(node, d);
}

void Simulation::PassDelivery(NodeId node, const Delivery& d) {
  const bool all = d.guarantee == Guarantee::kSafe ? AllReceived(d.frame_seq) : true;
  checker_.OnDelivery(node, d, ViewOf(node), all);
}

void Simulation::Submit(const Event& e) {
  const Planned& p = plan_[e.work];
  const MessageKey key{p.node, accepted_[Index(p.node)] + 1};
  std::vector<uint8_t> payload = MakePayload(opt_.seed, key, p.size);
  checker_.OnSubmitted(key, p.guarantee, payload);
  Status s = Core(p.node).Submit(payload, p.guarantee, now_us_, Out(p.node));
  digest_.Add(static_cast<uint64_t>(s.code()));
  if (s.ok()) {
    ++accepted_[Index(p.node)];
    ++plan_done_;
    if (tracing()) {
      Trace(p.node, "submit msg(" + std::to_string(key.sender) + "#" + std::to_string(key.index) +
                        ") " + GuaranteeName(p.guarantee) +
                        " len=" + std::to_string(payload.size()));
    }
    return;
  }
  checker_.Withdraw(key);
  if (s.code() != StatusCode::kWouldBlock) {
    checker_.Fail("Submit of " + std::to_string(payload.size()) + " bytes at node " +
                  std::to_string(p.node) + " failed: " + s.ToString());
    return;
  }
  ++result_.would_block;
  Event retry;
  retry.time_us = now_us_ + rng_.Range(100, 2000);
  retry.kind = EventKind::kSubmit;
  retry.node = p.node;
  retry.work = e.work;
  if (tracing()) Trace(p.node, "submit would-block; retry at " + std::to_string(retry.time_us));
  Push(std::move(retry));
}

void Simulation::Handle(Event& e) {
  digest_.Add(0x45564E54);  // "EVNT"
  digest_.Add(e.time_us);
  digest_.Add((static_cast<uint64_t>(e.node) << 8) | static_cast<uint64_t>(e.kind));
  checker_.set_now(now_us_);
  switch (e.kind) {
    case EventKind::kStart:
      if (tracing()) Trace(e.node, "start");
      Core(e.node).Start(now_us_, Out(e.node));
      break;
    case EventKind::kFrame:
      digest_.Add(e.from);
      digest_.Add(e.bytes);
      if (e.corrupted) ++corrupted_received_[Index(e.node)];
      if (tracing()) {
        Trace(e.node, "recv from=" + std::to_string(e.from) + " " +
                          (e.corrupted ? "CORRUPTED " : "") + DescribeFrame(e.bytes));
      }
      Core(e.node).HandleFrame(e.bytes, now_us_, Out(e.node));
      break;
    case EventKind::kTimer: {
      const size_t t = static_cast<size_t>(e.timer);
      if (!timer_armed_[Index(e.node)][t] || timer_gen_[Index(e.node)][t] != e.generation) {
        return;  // cancelled or re-armed since
      }
      timer_armed_[Index(e.node)][t] = false;
      if (tracing()) Trace(e.node, std::string("timer-fire ") + core::TimerName(e.timer));
      Core(e.node).HandleTimer(e.timer, now_us_, Out(e.node));
      break;
    }
    case EventKind::kSubmit:
      Submit(e);
      break;
  }
  checker_.set_now(now_us_);
  checker_.OnStep(e.node, ViewOf(e.node), MinAru());
}

void Simulation::FinalChecks() {
  for (const auto& c : cores_) {
    result_.token_retransmits += c->counters().tokens_retransmitted;
    result_.retransmissions += c->counters().retransmissions_sent;
    result_.out_of_window += c->counters().drop_out_of_window;
  }
  if (!checker_.ok()) return;
  checker_.set_now(now_us_);
  uint64_t high = 0;
  for (const auto& c : cores_) high = std::max(high, c->high_seq_received());
  for (NodeId id : members_) {
    const core::SingleRing& c = Core(id);
    const Counters& k = c.counters();
    if (k.drop_malformed + k.drop_bad_version != corrupted_received_[Index(id)]) {
      checker_.Fail(
          "node " + std::to_string(id) + " received " +
          std::to_string(corrupted_received_[Index(id)]) +
          " corrupted datagrams but counted drop_malformed=" + std::to_string(k.drop_malformed) +
          " drop_bad_version=" + std::to_string(k.drop_bad_version));
    }
    if (c.delivered_up_to() != high) {
      checker_.Fail("quiescence: node " + std::to_string(id) +
                    " delivered_up_to=" + std::to_string(c.delivered_up_to()) +
                    " but frames up to " + std::to_string(high) + " exist");
    }
  }
}

RunResult Simulation::Run() {
  const uint64_t limit_us = opt_.max_time_ms * 1000;
  std::optional<uint64_t> settle_until;
  bool timed_out = false;
  while (checker_.ok()) {
    if (!settle_until && plan_done_ == plan_.size() && checker_.AllDelivered()) {
      settle_until = now_us_ + opt_.settle_ms * 1000;
    }
    const uint64_t until = settle_until ? *settle_until : limit_us;
    if (heap_.empty() || heap_.front().time_us > until) {
      timed_out = !settle_until;
      break;
    }
    if (result_.events >= opt_.max_events) {
      checker_.Fail("event budget of " + std::to_string(opt_.max_events) +
                    " exhausted (livelock?)");
      break;
    }
    Event e = Pop();
    now_us_ = e.time_us;
    ++result_.events;
    Handle(e);
  }
  if (checker_.ok()) {
    checker_.set_now(now_us_);
    checker_.Finish();
    if (timed_out && checker_.ok()) {
      checker_.Fail("liveness: stopped at the virtual-time limit (" +
                    std::to_string(opt_.max_time_ms) + " ms) with " +
                    std::to_string(plan_.size() - plan_done_) +
                    " submissions still refused (kWouldBlock)");
    }
  }
  FinalChecks();
  result_.ok = checker_.ok();
  result_.violations = checker_.violations();
  result_.first_violation = checker_.first_violation();
  result_.virtual_us = now_us_;
  result_.submitted = checker_.submitted();
  digest_.Add(result_.events);
  digest_.Add(result_.deliveries);
  result_.digest = digest_.value();
  return result_;
}

}  // namespace

RunResult RunSimulation(const SimOptions& options) {
  Simulation sim(options);
  return sim.Run();
}

}  // namespace totem::sim
