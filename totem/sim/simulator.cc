// The deterministic simulator (see simulator.h): event queue, network model,
// fault schedule (crash, restart, partition, loss bursts, slow nodes),
// workload, and the Output each core writes its effects into.
#include "totem/sim/simulator.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <map>
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
  rc.token_timeout_us = o.token_timeout_us;
  rc.token_timeout_per_node_us = o.token_timeout_per_node_us;
  rc.join_timeout_us = o.join_timeout_us;
  rc.consensus_timeout_us = o.consensus_timeout_us;
  rc.merge_timeout_us = o.merge_timeout_us;
  return rc;
}

namespace {
constexpr std::pair<FaultKind, const char*> kFaultNames[] = {
    {kFaultCrash, "crash"},
    {kFaultRestart, "restart"},
    {kFaultRestartWiped, "restart-wiped"},
    {kFaultPartition, "partition"},
    {kFaultHeal, "heal"},
    {kFaultLossBurst, "loss-burst"},
    {kFaultSlow, "slow"},
};
}  // namespace

bool ParseFaults(const std::string& list, uint32_t* mask) {
  *mask = 0;
  size_t at = 0;
  while (at <= list.size()) {
    size_t comma = list.find(',', at);
    if (comma == std::string::npos) comma = list.size();
    const std::string name = list.substr(at, comma - at);
    at = comma + 1;
    if (name.empty() || name == "none") continue;
    if (name == "all") {
      *mask |= kFaultAll;
      continue;
    }
    bool found = false;
    for (const auto& [bit, n] : kFaultNames) {
      if (name == n) {
        *mask |= bit;
        found = true;
      }
    }
    if (!found) return false;
  }
  return true;
}

std::string FaultsString(uint32_t mask) {
  if (mask == 0) return "none";
  if (mask == kFaultAll) return "all";
  std::string s;
  for (const auto& [bit, n] : kFaultNames) {
    if (mask & bit) s += (s.empty() ? "" : ",") + std::string(n);
  }
  return s;
}

uint64_t ConvergenceBoundUs(const SimOptions& o) {
  if (o.converge_ms != 0) return o.converge_ms * 1000;
  RingConfig rc = MakeRingConfig(o, 1, {1});
  const uint64_t token = rc.TokenTimeoutUs(o.nodes);
  return 2 * (token + o.consensus_timeout_us + o.merge_timeout_us) + 4ull * o.join_timeout_us +
         50'000;
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
  if ((o.faults & ~static_cast<uint32_t>(kFaultAll)) != 0) return "unknown fault kind";
  if (o.faults != 0 && o.static_membership) {
    return "--static-membership and --faults exclude each other";
  }
  if (o.fault_count > 1000) return "--fault-count must be at most 1000";
  if (o.app_final_heal && (o.app == nullptr || o.faults != 0)) {
    return "app_final_heal needs an app and no drawn faults";
  }
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

enum class EventKind : uint8_t {
  kStart = 1,
  kFrame = 2,
  kTimer = 3,
  kSubmit = 4,
  kFault = 5,     // work: index into the fault schedule
  kDeadline = 6,  // the termination bound expires
  kAppTimer = 7,  // generation: the app's token
};

struct Event {
  uint64_t time_us = 0;
  uint64_t order = 0;  // insertion counter: ties in time keep insertion order
  EventKind kind = EventKind::kStart;
  NodeId node = kNoNode;
  NodeId from = kNoNode;          // kFrame
  bool corrupted = false;         // kFrame
  bool slowed = false;            // kFrame: already queued behind a slow node's work
  uint32_t from_incarnation = 0;  // kFrame: the sender's incarnation when sent
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
    case core::FrameType::kJoin: {
      core::Join j;
      if (core::DecodeJoinBody(r, j) != core::DecodeResult::kOk) break;
      auto list = [](const std::vector<NodeId>& v) {
        std::string out;
        for (NodeId n : v) out += (out.empty() ? "" : ",") + std::to_string(n);
        return "{" + out + "}";
      };
      return "join ring=" + h.ring_id.ToString() + " ring_seq=" + std::to_string(j.ring_seq) +
             " proc=" + list(j.proc) + " fail=" + list(j.fail);
    }
    case core::FrameType::kCommitToken: {
      core::CommitToken t;
      if (core::DecodeCommitTokenBody(r, t) != core::DecodeResult::kOk) break;
      std::string out = "commit-token ring=" + (t.ring_id.rep ? t.ring_id : h.ring_id).ToString() +
                        " rotation=" + std::to_string(t.rotation) +
                        " index=" + std::to_string(t.index) + " [";
      for (size_t i = 0; i < t.entries.size(); ++i) {
        const core::CommitEntry& e = t.entries[i];
        out += (i ? " " : "") + std::to_string(e.node) + ":" + e.old_ring.ToString() +
               "/aru=" + std::to_string(e.aru) + "/high=" + std::to_string(e.high_seq) +
               (e.filled ? "" : "/-");
      }
      return out + "]";
    }
    case core::FrameType::kMergeDetect:
      return "merge-detect ring=" + h.ring_id.ToString();
    case core::FrameType::kTokenAck:
      return "token-ack ring=" + h.ring_id.ToString();
    default:
      break;
  }
  std::snprintf(buf, sizeof buf, "frame type=%u len=%zu", static_cast<unsigned>(h.type),
                bytes.size());
  return buf;
}

// One scheduled fault; its parameters are drawn when the schedule is made.
struct Fault {
  uint64_t time_us = 0;
  FaultKind kind = kFaultCrash;
  bool final_heal = false;           // the heal after the last fault
  NodeId node = kNoNode;             // crash / restart / slow / loss-burst (0: all links)
  std::vector<uint32_t> components;  // partition: component of each node
  uint64_t duration_us = 0;          // loss-burst / slow
  double loss = 0;                   // loss-burst
  uint64_t service_us = 0;           // slow: processing time per datagram
};

std::string DescribeFault(const Fault& f) {
  if (f.final_heal) return "final-heal";
  std::string s = FaultsString(f.kind);
  if (f.node != kNoNode) s += " node=" + std::to_string(f.node);
  if (f.kind == kFaultLossBurst && f.node == kNoNode) s += " all-links";
  if (!f.components.empty()) {
    s += " components=";
    for (size_t i = 0; i < f.components.size(); ++i) {
      s += (i ? "," : "") + std::to_string(i + 1) + ":" + std::to_string(f.components[i]);
    }
  }
  if (f.duration_us) s += " for=" + std::to_string(f.duration_us) + "us";
  if (f.kind == kFaultLossBurst) s += " loss=" + std::to_string(f.loss);
  if (f.kind == kFaultSlow) s += " service=" + std::to_string(f.service_us) + "us";
  return s;
}

// The core's membership state as the checker sees it.
MemberState StateOf(const core::SingleRing& c) {
  switch (c.membership_state()) {
    case core::MembershipState::kOperational:
      return MemberState::kOperational;
    case core::MembershipState::kGather:
      return MemberState::kGather;
    case core::MembershipState::kCommit:
      return MemberState::kCommit;
    case core::MembershipState::kRecovery:
      return MemberState::kRecovery;
  }
  return MemberState::kGather;
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
  void PersistRingSeq(uint64_t ring_seq) override;

 private:
  Simulation* sim_;
  NodeId id_;
};

class Simulation final : private AppContext {
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
  void PersistRingSeq(NodeId node, uint64_t seq);

 private:
  static size_t Index(NodeId id) { return id - 1; }
  bool Up(NodeId id) const { return cores_[Index(id)] != nullptr; }
  core::SingleRing& Core(NodeId id) { return *cores_[Index(id)]; }
  core::Output& Out(NodeId id) { return *outputs_[Index(id)]; }
  CoreView ViewOf(NodeId id) const;
  uint64_t MinAru(NodeId node, NodeId* who) const;
  bool AllReceived(NodeId node, const Delivery& d) const;
  void Push(Event e);
  Event Pop();
  void Handle(Event& e);
  void Submit(const Event& e);
  void PassDelivery(NodeId node, const Delivery& d);
  void MakeSchedule();
  void ApplyFault(const Fault& f);
  void Crash(NodeId node);
  void Restart(NodeId node, bool with_state);
  void CheckConvergence(NodeId stepped);
  std::map<NodeId, CoreView> LiveViews() const;
  void FinalChecks();
  void Trace(NodeId node, const std::string& what) override;
  bool tracing() const override { return opt_.trace != nullptr; }

  // AppContext.
  uint64_t now_us() const override { return now_us_; }
  uint32_t nodes() const override { return opt_.nodes; }
  bool IsUp(NodeId node) const override { return node >= 1 && node <= opt_.nodes && Up(node); }
  Status Submit(NodeId node, std::span<const uint8_t> bytes, Guarantee g) override;
  void ScheduleTimer(uint64_t at_us, uint64_t token) override;
  Random& random() override { return rng_; }
  void Fail(const std::string& what) override {
    checker_.set_now(now_us_);
    checker_.Fail(what);
  }
  Status ApplyFault(const FaultSpec& fault) override;
  void FinalHeal() override;

  // Marks the span in which a core is mid-step (the app must not re-enter).
  class InCore {
   public:
    explicit InCore(Simulation* sim) : sim_(sim) { ++sim_->in_core_; }
    ~InCore() { --sim_->in_core_; }
    InCore(const InCore&) = delete;
    InCore& operator=(const InCore&) = delete;

   private:
    Simulation* sim_;
  };

  const SimOptions opt_;
  App* const app_;
  int in_core_ = 0;
  uint64_t app_submitted_ = 0;
  Random rng_;
  std::vector<NodeId> members_;
  Checker checker_;
  std::vector<std::unique_ptr<core::SingleRing>> cores_;  // null while crashed
  std::vector<std::unique_ptr<NodeOutput>> outputs_;

  std::vector<Event> heap_;
  uint64_t next_order_ = 0;
  uint64_t now_us_ = 0;

  std::vector<std::array<uint64_t, kTimerCount>> timer_gen_;  // per node, per timer
  std::vector<std::array<bool, kTimerCount>> timer_armed_;
  std::vector<uint64_t> deaf_until_us_;       // per node: burst loss until then
  std::vector<uint64_t> link_arrival_us_;     // [from][to]: last in-order arrival
  std::vector<uint64_t> accepted_;            // per node: messages Submit accepted
  std::vector<uint64_t> corrupted_received_;  // per node, current incarnation
  std::vector<Planned> plan_;
  uint64_t plan_done_ = 0;

  // Faults.
  std::vector<Fault> schedule_;
  std::vector<uint32_t> incarnation_;  // per node
  std::vector<uint64_t> persisted_;    // per node: ring seq in its state file
  std::vector<bool> state_file_;       // per node: the file exists
  std::vector<uint32_t> component_;    // per node: partition component
  uint64_t burst_until_us_ = 0;
  double burst_loss_ = 0;
  NodeId burst_node_ = kNoNode;
  std::vector<uint64_t> slow_until_us_, slow_service_us_, busy_until_us_;
  uint64_t slow_backlog_us_ = 0;  // last time a slowed datagram is processed

  // Termination.
  bool healed_ = false;  // the final heal happened
  uint64_t bound_us_ = 0;
  std::optional<uint64_t> converged_us_;
  bool membership_dirty_ = false;  // a configuration event, crash or restart since the last check

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
void NodeOutput::PersistRingSeq(uint64_t ring_seq) { sim_->PersistRingSeq(id_, ring_seq); }

std::vector<NodeId> MemberList(uint32_t n) {
  std::vector<NodeId> m;
  for (NodeId i = 1; i <= n; ++i) m.push_back(i);
  return m;
}

Simulation::Simulation(const SimOptions& o)
    : opt_(o),
      app_(o.app),
      rng_(o.seed),
      members_(MemberList(o.nodes)),
      checker_(members_, o.receive_buffer_frames, o.static_membership),
      timer_gen_(o.nodes),
      timer_armed_(o.nodes),
      deaf_until_us_(o.nodes, 0),
      link_arrival_us_(static_cast<size_t>(o.nodes) * o.nodes, 0),
      accepted_(o.nodes, 0),
      corrupted_received_(o.nodes, 0),
      incarnation_(o.nodes, 1),
      persisted_(o.nodes, 0),
      state_file_(o.nodes, false),
      component_(o.nodes, 0),
      slow_until_us_(o.nodes, 0),
      slow_service_us_(o.nodes, 0),
      busy_until_us_(o.nodes, 0) {
  for (auto& g : timer_gen_) g.fill(0);
  for (auto& a : timer_armed_) a.fill(false);
  for (NodeId id : members_) {
    // First boot: no state file, ring seq 0.
    cores_.push_back(std::make_unique<core::SingleRing>(MakeRingConfig(o, id, members_), 0));
    outputs_.push_back(std::make_unique<NodeOutput>(this, id));
  }
  bound_us_ = ConvergenceBoundUs(o);

  // The fault schedule comes first (only when there are faults, so a run
  // without faults draws exactly what it drew before faults existed).
  if (o.faults != 0) MakeSchedule();
  const uint64_t last_fault_us = schedule_.empty() ? 0 : schedule_.back().time_us;

  // The workload plan: when, where, how big, which guarantee. With faults,
  // submissions spread over the whole schedule and a little beyond.
  uint64_t spread_us = (o.spread_ms != 0 ? o.spread_ms : 20 + o.messages / 20) * 1000;
  if (o.spread_ms == 0 && last_fault_us != 0)
    spread_us = std::max(spread_us, last_fault_us + 20'000);
  const uint32_t frame = o.max_frame_bytes;
  for (uint32_t i = 0; app_ == nullptr && i < o.messages; ++i) {
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
  for (uint32_t i = 0; i < schedule_.size(); ++i) {
    Event e;
    e.time_us = schedule_[i].time_us;
    e.kind = EventKind::kFault;
    e.work = i;
    Push(std::move(e));
  }
  if (schedule_.empty() && !(app_ != nullptr && o.app_final_heal)) {
    healed_ = true;  // stable from the start
    Event e;
    e.time_us = bound_us_;
    e.kind = EventKind::kDeadline;
    Push(std::move(e));
  }
  if (app_ != nullptr) {
    app_->Attach(this);
    if (healed_) app_->OnStable(0);  // no faults: stable from the start
  }
}

// Draws the fault schedule, tracking which nodes are down and whether the
// network is partitioned so that every fault applies when it happens.
void Simulation::MakeSchedule() {
  const uint32_t n = opt_.nodes;
  const uint32_t count =
      opt_.fault_count != 0 ? opt_.fault_count : static_cast<uint32_t>(rng_.Range(1, 6));
  const uint64_t token = MakeRingConfig(opt_, 1, members_).TokenTimeoutUs(n);
  const uint64_t long_gap = 2 * (token + opt_.consensus_timeout_us);
  const uint64_t short_gap = 3ull * opt_.join_timeout_us;
  std::vector<bool> down(n, false);
  bool partitioned = false;
  uint64_t t = rng_.Range(1, 50'000);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t live = 0;
    for (bool d : down) live += d ? 0 : 1;
    std::vector<FaultKind> kinds;
    for (const auto& [bit, name] : kFaultNames) {
      if (!(opt_.faults & bit)) continue;
      switch (bit) {
        case kFaultCrash:
          if (live > 1) kinds.push_back(bit);
          break;
        case kFaultRestart:
        case kFaultRestartWiped:
          if (live < n) kinds.push_back(bit);
          break;
        case kFaultPartition:
          if (n > 1) kinds.push_back(bit);
          break;
        case kFaultHeal:
          if (partitioned) kinds.push_back(bit);
          break;
        default:
          kinds.push_back(bit);
          break;
      }
    }
    if (!kinds.empty()) {
      Fault f;
      f.time_us = t;
      f.kind = kinds[rng_.Below(kinds.size())];
      auto pick = [&](bool want_down) {
        std::vector<NodeId> c;
        for (NodeId id = 1; id <= n; ++id) {
          if (down[Index(id)] == want_down) c.push_back(id);
        }
        return c[rng_.Below(c.size())];
      };
      switch (f.kind) {
        case kFaultCrash:
          f.node = pick(false);
          down[Index(f.node)] = true;
          break;
        case kFaultRestart:
        case kFaultRestartWiped:
          f.node = pick(true);
          down[Index(f.node)] = false;
          break;
        case kFaultPartition: {
          const uint32_t k = static_cast<uint32_t>(rng_.Range(2, std::min<uint32_t>(n, 3)));
          f.components.resize(n);
          for (uint32_t& c : f.components) c = static_cast<uint32_t>(rng_.Below(k));
          // At least two non-empty components.
          if (std::all_of(f.components.begin(), f.components.end(),
                          [&](uint32_t c) { return c == f.components[0]; })) {
            const size_t moved = rng_.Below(n);
            f.components[moved] = (f.components[moved] + 1) % k;
          }
          partitioned = true;
          break;
        }
        case kFaultHeal:
          partitioned = false;
          break;
        case kFaultLossBurst:
          f.node = rng_.Chance(0.5) ? static_cast<NodeId>(rng_.Range(1, n)) : kNoNode;
          f.duration_us = rng_.Range(5'000, 100'000);
          f.loss = 0.3 + 0.5 * rng_.Unit();
          break;
        case kFaultSlow:
          f.node = static_cast<NodeId>(rng_.Range(1, n));
          f.duration_us = rng_.Range(10'000, 300'000);
          f.service_us = rng_.Range(200, 5'000);
          break;
        default:
          break;
      }
      schedule_.push_back(std::move(f));
    }
    t += rng_.Chance(0.4) ? rng_.Range(100, short_gap) : rng_.Range(short_gap, long_gap);
  }
  Fault heal;
  heal.time_us = t;
  heal.kind = kFaultHeal;
  heal.final_heal = true;
  schedule_.push_back(std::move(heal));
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
  v.state = StateOf(c);
  v.aru = c.aru();
  v.delivered_up_to = c.delivered_up_to();
  v.safe_up_to = c.safe_up_to();
  v.high_seq = c.high_seq_received();
  v.buffered_frames = c.buffered_frames();
  v.ring_members = c.ring_members();
  return v;
}

std::map<NodeId, CoreView> Simulation::LiveViews() const {
  std::map<NodeId, CoreView> m;
  for (NodeId id : members_) {
    if (Up(id)) m.emplace(id, ViewOf(id));
  }
  return m;
}

// The lowest aru among the live nodes still operating in this node's ring
// (a node that left for Gather no longer describes that ring).
uint64_t Simulation::MinAru(NodeId node, NodeId* who) const {
  const RingId ring = cores_[Index(node)]->ring_id();
  uint64_t m = UINT64_MAX;
  for (NodeId id : members_) {
    const auto& c = cores_[Index(id)];
    if (c && c->ring_id() == ring && StateOf(*c) == MemberState::kOperational && c->aru() < m) {
      m = c->aru();
      *who = id;
    }
  }
  return m;
}

// Safe delivery at the moment it happens: every member of the delivery's
// regular configuration that is still operating in it has the frame.
// Members that crashed, left for Gather (the core's observers then no longer
// describe the old ring), moved to another ring or never installed it are
// exempt here; the checker's end-of-run check covers those that did not
// crash.
bool Simulation::AllReceived(NodeId node, const Delivery& d) const {
  (void)node;
  if (d.config_kind != ConfigurationKind::kRegular) return true;
  for (NodeId q : members_) {
    if (!Up(q) || !checker_.InRegular(q, d.config_id)) continue;
    const core::SingleRing& c = *cores_[Index(q)];
    if (c.ring_id() == d.config_id && StateOf(c) == MemberState::kOperational &&
        !c.HasReceived(d.frame_seq)) {
      return false;
    }
  }
  return true;
}

void Simulation::Trace(NodeId node, const std::string& what) {
  if (!tracing()) return;
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
  // Joins and commit tokens grow with the number of processors and may
  // exceed the frame size (they are rare; see RingConfig::max_frame_bytes);
  // tokens and data frames never may.
  const bool membership_frame =
      frame.size() > 3 && (frame[3] == static_cast<uint8_t>(core::FrameType::kJoin) ||
                           frame[3] == static_cast<uint8_t>(core::FrameType::kCommitToken));
  if (frame.size() > (membership_frame ? 65000u : opt_.max_frame_bytes)) {
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
  if (component_[Index(from)] != component_[Index(to)]) {
    ++result_.dropped;
    digest_.Add(1);
    if (tracing()) Trace(from, "partitioned to=" + std::to_string(to) + " " + DescribeFrame(frame));
    return;
  }

  // Fate of this copy, always drawn in the same order.
  if (opt_.loss > 0 && opt_.burst_loss && rng_.Chance(opt_.loss * 0.02)) {
    deaf_until_us_[Index(to)] =
        std::max(deaf_until_us_[Index(to)], now_us_ + rng_.Range(500, 5000));
  }
  bool lost = rng_.Chance(opt_.loss) || now_us_ < deaf_until_us_[Index(to)];
  if (!lost && now_us_ < burst_until_us_ &&
      (burst_node_ == kNoNode || burst_node_ == from || burst_node_ == to)) {
    lost = rng_.Chance(burst_loss_);
  }
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
    e.from_incarnation = incarnation_[Index(from)];
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

void Simulation::PersistRingSeq(NodeId node, uint64_t seq) {
  digest_.Add(0x50455253);  // "PERS"
  digest_.Add(node);
  digest_.Add(seq);
  if (tracing()) Trace(node, "persist ring_seq=" + std::to_string(seq));
  if (state_file_[Index(node)] && seq < persisted_[Index(node)]) {
    checker_.set_now(now_us_);
    checker_.Fail("node " + std::to_string(node) + " persisted ring seq " + std::to_string(seq) +
                  " below the " + std::to_string(persisted_[Index(node)]) +
                  " already in its state file");
  }
  persisted_[Index(node)] = seq;
  state_file_[Index(node)] = true;
}

void Simulation::DeliverConfiguration(NodeId node, const ConfigurationEvent& e) {
  ++result_.configuration_events;
  membership_dirty_ = true;
  digest_.Add(0x434F4E46);  // "CONF"
  digest_.Add(node);
  digest_.Add(e.id.rep);
  digest_.Add(e.id.seq);
  digest_.Add(static_cast<uint64_t>(e.kind));
  for (NodeId m : e.members) digest_.Add(m);
  if (tracing()) {
    std::string m;
    for (NodeId x : e.members) m += (m.empty() ? "" : ",") + std::to_string(x);
    Trace(node, std::string("configuration ") + ConfigurationKindName(e.kind) +
                    " id=" + e.id.ToString() + " members=" + m);
  }
  checker_.set_now(now_us_);
  // A ring this node represents must use a ring seq it persisted first, or
  // a restart could reuse the ring id.
  if (e.kind == ConfigurationKind::kRegular && e.id.rep == node && e.id.seq != 0 &&
      (!state_file_[Index(node)] || e.id.seq > persisted_[Index(node)])) {
    checker_.Fail("node " + std::to_string(node) + " installed ring " + e.id.ToString() +
                  " as representative without persisting its seq first (state file: " +
                  (state_file_[Index(node)] ? std::to_string(persisted_[Index(node)]) : "none") +
                  ")");
  }
  if (converged_us_ && e.kind == ConfigurationKind::kRegular && opt_.loss == 0 &&
      opt_.corrupt == 0) {
    checker_.Fail("node " + std::to_string(node) + " installed " + e.id.ToString() +
                  " after the live nodes had converged at t=" + std::to_string(*converged_us_) +
                  "us on a stable, loss-free network (spurious membership change)");
  }
  checker_.OnConfiguration(node, e, ViewOf(node));
  if (app_ != nullptr && checker_.ok()) app_->OnConfiguration(node, e);
}

void Simulation::Deliver(NodeId node, const Delivery& d) {
  ++result_.deliveries;
  digest_.Add(0x44454C56);  // "DELV"
  digest_.Add(node);
  digest_.Add(d.sender);
  digest_.Add(d.frame_seq);
  digest_.Add(static_cast<uint64_t>(d.guarantee));
  digest_.Add(static_cast<uint64_t>(d.config_kind));
  digest_.Add(d.payload);
  if (tracing()) {
    std::optional<MessageKey> k = ParsePayload(d.payload);
    char buf[200];
    std::snprintf(
        buf, sizeof buf, "deliver msg(%u#%" PRIu64 ") %s frame_seq=%" PRIu64 " len=%zu in %s %s",
        k ? k->sender : 0, k ? k->index : 0, GuaranteeName(d.guarantee), d.frame_seq,
        d.payload.size(), ConfigurationKindName(d.config_kind), d.config_id.ToString().c_str());
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
        if (d.guarantee == Guarantee::kSafe && d.config_kind == ConfigurationKind::kRegular &&
            d.config_id == Core(node).ring_id()) {
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
  const bool all = d.guarantee == Guarantee::kSafe ? AllReceived(node, d) : true;
  checker_.OnDelivery(node, d, ViewOf(node), all);
  if (app_ != nullptr && checker_.ok() && d.payload.size() >= kPayloadHeaderBytes) {
    // The app's bytes follow the workload header the checker identifies
    // messages by (see Simulation::Submit(NodeId, ...)).
    Delivery inner = d;
    inner.payload = d.payload.subspan(kPayloadHeaderBytes);
    app_->OnDelivery(node, inner);
  }
}

Status Simulation::Submit(NodeId node, std::span<const uint8_t> bytes, Guarantee g) {
  if (in_core_ > 0) {
    return Status(StatusCode::kFailedPrecondition,
                  "AppContext::Submit from inside a core step; submit from a timer");
  }
  if (!IsUp(node)) {
    return Status(StatusCode::kUnavailable, "node " + std::to_string(node) + " is down");
  }
  const MessageKey key{node, accepted_[Index(node)] + 1};
  std::vector<uint8_t> payload = MakePayload(opt_.seed, key, kPayloadHeaderBytes);
  payload.insert(payload.end(), bytes.begin(), bytes.end());
  checker_.set_now(now_us_);
  checker_.OnSubmitted(key, g, payload);
  Status s;
  {
    InCore guard(this);
    s = Core(node).Submit(payload, g, now_us_, Out(node));
  }
  digest_.Add(0x41535542);  // "ASUB"
  digest_.Add(node);
  digest_.Add(static_cast<uint64_t>(s.code()));
  if (s.ok()) {
    ++accepted_[Index(node)];
    ++app_submitted_;
    if (tracing()) {
      Trace(node, "app submit msg(" + std::to_string(key.sender) + "#" + std::to_string(key.index) +
                      ") " + GuaranteeName(g) + " len=" + std::to_string(payload.size()));
    }
  } else {
    checker_.Withdraw(key);
    if (s.code() == StatusCode::kWouldBlock) ++result_.would_block;
  }
  return s;
}

void Simulation::ScheduleTimer(uint64_t at_us, uint64_t token) {
  Event e;
  e.time_us = std::max(at_us, now_us_);
  e.kind = EventKind::kAppTimer;
  e.generation = token;
  Push(std::move(e));
}

Status Simulation::ApplyFault(const FaultSpec& spec) {
  if (in_core_ > 0) {
    return Status(StatusCode::kFailedPrecondition,
                  "AppContext::ApplyFault from inside a core step; apply it from a timer");
  }
  const bool needs_node = spec.kind == kFaultCrash || spec.kind == kFaultRestart ||
                          spec.kind == kFaultRestartWiped || spec.kind == kFaultSlow;
  if (needs_node && (spec.node < 1 || spec.node > opt_.nodes)) {
    return Status(StatusCode::kInvalidArgument, "fault names no node");
  }
  if (spec.kind == kFaultPartition && spec.components.size() != opt_.nodes) {
    return Status(StatusCode::kInvalidArgument, "a partition needs one component per node");
  }
  Fault f;
  f.time_us = now_us_;
  f.kind = spec.kind;
  f.node = spec.node;
  f.components = spec.components;
  f.duration_us = spec.duration_us;
  f.loss = spec.loss;
  f.service_us = spec.service_us;
  ApplyFault(f);
  return Status::Ok();
}

void Simulation::FinalHeal() {
  if (healed_) return;
  Fault f;
  f.time_us = now_us_;
  f.kind = kFaultHeal;
  f.final_heal = true;
  ApplyFault(f);
}

void Simulation::Submit(const Event& e) {
  const Planned& p = plan_[e.work];
  // A message planned at a node that is down goes to the next live node.
  NodeId node = p.node;
  for (uint32_t i = 0; i < opt_.nodes && !Up(node); ++i) node = node % opt_.nodes + 1;
  if (!Up(node)) {
    checker_.Fail("workload: no live node to submit at");
    return;
  }
  const MessageKey key{node, accepted_[Index(node)] + 1};
  std::vector<uint8_t> payload = MakePayload(opt_.seed, key, p.size);
  checker_.OnSubmitted(key, p.guarantee, payload);
  Status s = Core(node).Submit(payload, p.guarantee, now_us_, Out(node));
  digest_.Add(static_cast<uint64_t>(s.code()));
  if (s.ok()) {
    ++accepted_[Index(node)];
    ++plan_done_;
    if (tracing()) {
      Trace(node, "submit msg(" + std::to_string(key.sender) + "#" + std::to_string(key.index) +
                      ") " + GuaranteeName(p.guarantee) + " len=" + std::to_string(payload.size()));
    }
    return;
  }
  checker_.Withdraw(key);
  if (s.code() != StatusCode::kWouldBlock) {
    checker_.Fail("Submit of " + std::to_string(payload.size()) + " bytes at node " +
                  std::to_string(node) + " failed: " + s.ToString());
    return;
  }
  ++result_.would_block;
  Event retry;
  retry.time_us = now_us_ + rng_.Range(100, 2000);
  retry.kind = EventKind::kSubmit;
  retry.node = node;
  retry.work = e.work;
  if (tracing()) Trace(node, "submit would-block; retry at " + std::to_string(retry.time_us));
  Push(std::move(retry));
}

void Simulation::Crash(NodeId node) {
  if (!Up(node)) return;
  ++result_.crashes;
  membership_dirty_ = true;
  cores_[Index(node)].reset();
  ++incarnation_[Index(node)];  // datagrams it has in flight vanish
  for (size_t t = 0; t < kTimerCount; ++t) {
    ++timer_gen_[Index(node)][t];
    timer_armed_[Index(node)][t] = false;
  }
  busy_until_us_[Index(node)] = 0;
  checker_.OnCrash(node);
  if (app_ != nullptr) app_->OnNodeCrash(node);
}

void Simulation::Restart(NodeId node, bool with_state) {
  if (Up(node)) return;
  ++result_.restarts;
  membership_dirty_ = true;
  uint64_t seq = 0;
  if (with_state && state_file_[Index(node)]) {
    seq = persisted_[Index(node)];
  } else if (!opt_.wiped_seq_zero) {
    // What the runtime does without a state file: wall-clock microseconds.
    seq = kSimEpochSeconds * 1'000'000 + now_us_;
  }
  if (!with_state) {
    state_file_[Index(node)] = false;
    persisted_[Index(node)] = 0;
  }
  if (tracing()) {
    Trace(node, std::string("restart ") + (with_state ? "with" : "WITHOUT") +
                    " state file, ring_seq=" + std::to_string(seq));
  }
  digest_.Add(seq);
  corrupted_received_[Index(node)] = 0;
  cores_[Index(node)] =
      std::make_unique<core::SingleRing>(MakeRingConfig(opt_, node, members_), seq);
  checker_.OnRestart(node, with_state);
  if (app_ != nullptr) app_->OnNodeStart(node, !with_state);
  InCore guard(this);
  Core(node).Start(now_us_, Out(node));
}

void Simulation::ApplyFault(const Fault& f) {
  digest_.Add(0x46415554);  // "FAUT"
  digest_.Add(static_cast<uint64_t>(f.kind) | (f.final_heal ? 0x100 : 0));
  digest_.Add(f.node);
  if (tracing()) Trace(f.node, "FAULT " + DescribeFault(f));
  if (f.final_heal) {
    std::fill(component_.begin(), component_.end(), 0);
    burst_until_us_ = 0;
    std::fill(slow_until_us_.begin(), slow_until_us_.end(), 0);
    healed_ = true;
    result_.stable_us = std::max(now_us_, slow_backlog_us_);
    Event e;
    e.time_us = result_.stable_us + bound_us_;
    e.kind = EventKind::kDeadline;
    Push(std::move(e));
    if (app_ != nullptr) app_->OnStable(result_.stable_us);
    return;
  }
  ++result_.faults;
  switch (f.kind) {
    case kFaultCrash:
      Crash(f.node);
      break;
    case kFaultRestart:
      Restart(f.node, true);
      break;
    case kFaultRestartWiped:
      Restart(f.node, false);
      break;
    case kFaultPartition:
      component_ = f.components;
      break;
    case kFaultHeal:
      std::fill(component_.begin(), component_.end(), 0);
      break;
    case kFaultLossBurst:
      burst_until_us_ = now_us_ + f.duration_us;
      burst_loss_ = f.loss;
      burst_node_ = f.node;
      break;
    case kFaultSlow:
      slow_until_us_[Index(f.node)] = now_us_ + f.duration_us;
      slow_service_us_[Index(f.node)] = f.service_us;
      break;
    default:
      break;
  }
}

// After the network is stable: note the first moment the live nodes form
// one ring (the deadline event judges whether it came in time).
void Simulation::CheckConvergence(NodeId stepped) {
  if (!healed_ || now_us_ < result_.stable_us) return;
  if (converged_us_) {
    // Lossy networks may legitimately change membership again; converge
    // anew. Cheap while nothing moved: only the stepped node can have left.
    if (!membership_dirty_ && (stepped == kNoNode || !Up(stepped) ||
                               StateOf(Core(stepped)) == MemberState::kOperational)) {
      return;
    }
    membership_dirty_ = false;
    if (checker_.Unconverged(LiveViews()).empty()) return;
    converged_us_.reset();
    return;
  }
  membership_dirty_ = false;
  if (!checker_.Unconverged(LiveViews()).empty()) return;
  converged_us_ = now_us_;
  if (result_.converged_us == 0) result_.converged_us = now_us_;
  if (tracing()) Trace(0, "CONVERGED");
}

void Simulation::Handle(Event& e) {
  digest_.Add(0x45564E54);  // "EVNT"
  digest_.Add(e.time_us);
  digest_.Add((static_cast<uint64_t>(e.node) << 8) | static_cast<uint64_t>(e.kind));
  checker_.set_now(now_us_);
  NodeId stepped = e.node;
  switch (e.kind) {
    case EventKind::kStart:
      if (tracing()) Trace(e.node, "start");
      if (app_ != nullptr) app_->OnNodeStart(e.node, false);
      {
        InCore guard(this);
        Core(e.node).Start(now_us_, Out(e.node));
      }
      break;
    case EventKind::kFrame: {
      const size_t to = Index(e.node);
      if (!Up(e.node) || incarnation_[Index(e.from)] != e.from_incarnation ||
          component_[Index(e.from)] != component_[to]) {
        ++result_.dropped;
        digest_.Add(2);
        if (tracing()) Trace(e.node, "vanished from=" + std::to_string(e.from));
        return;
      }
      if (!e.slowed && now_us_ < slow_until_us_[to]) {
        // A slow node works through its input one datagram at a time.
        busy_until_us_[to] = std::max(busy_until_us_[to], now_us_) + slow_service_us_[to];
        slow_backlog_us_ = std::max(slow_backlog_us_, busy_until_us_[to]);
        e.slowed = true;
        e.time_us = busy_until_us_[to];
        Push(std::move(e));
        return;
      }
      digest_.Add(e.from);
      digest_.Add(e.bytes);
      if (e.corrupted) ++corrupted_received_[to];
      if (tracing()) {
        Trace(e.node, "recv from=" + std::to_string(e.from) + " " +
                          (e.corrupted ? "CORRUPTED " : "") + DescribeFrame(e.bytes));
      }
      {
        InCore guard(this);
        Core(e.node).HandleFrame(e.bytes, now_us_, Out(e.node));
      }
      break;
    }
    case EventKind::kTimer: {
      const size_t t = static_cast<size_t>(e.timer);
      if (!timer_armed_[Index(e.node)][t] || timer_gen_[Index(e.node)][t] != e.generation) {
        return;  // cancelled or re-armed since
      }
      timer_armed_[Index(e.node)][t] = false;
      if (tracing()) Trace(e.node, std::string("timer-fire ") + core::TimerName(e.timer));
      {
        InCore guard(this);
        Core(e.node).HandleTimer(e.timer, now_us_, Out(e.node));
      }
      break;
    }
    case EventKind::kSubmit:
      Submit(e);
      stepped = kNoNode;
      break;
    case EventKind::kAppTimer:
      digest_.Add(e.generation);
      app_->OnTimer(e.generation);
      stepped = kNoNode;
      membership_dirty_ = true;  // the app may have crashed or restarted nodes
      break;
    case EventKind::kFault:
      ApplyFault(schedule_[e.work]);
      stepped = schedule_[e.work].node;
      break;
    case EventKind::kDeadline:
      CheckConvergence(kNoNode);
      // On a network that keeps losing datagrams the bound cannot hold (each
      // loss may start a new membership round): there only eventual
      // convergence is required, by the end of the run.
      if (!converged_us_ && opt_.loss == 0 && opt_.corrupt == 0) {
        checker_.Fail("termination: " + std::to_string(bound_us_ / 1000) +
                      " ms after the network became stable (t=" +
                      std::to_string(result_.stable_us) + "us) the live nodes have not formed " +
                      "one ring: " + checker_.Unconverged(LiveViews()));
      }
      return;
  }
  checker_.set_now(now_us_);
  if (stepped != kNoNode && Up(stepped)) {
    NodeId who = kNoNode;
    const uint64_t min_aru = MinAru(stepped, &who);
    const CoreView view = ViewOf(stepped);
    if (view.safe_up_to > min_aru && view.state == MemberState::kOperational) {
      checker_.OnStep(stepped, view, min_aru,
                      "node " + std::to_string(who) + ": " + ViewString(ViewOf(who)));
    } else {
      checker_.OnStep(stepped, view, min_aru);
    }
  }
  CheckConvergence(stepped);
}

void Simulation::FinalChecks() {
  for (const auto& c : cores_) {
    if (!c) continue;
    result_.token_retransmits += c->counters().tokens_retransmitted;
    result_.retransmissions += c->counters().retransmissions_sent;
    result_.out_of_window += c->counters().drop_out_of_window;
  }
  if (!checker_.ok()) return;
  checker_.set_now(now_us_);
  uint64_t high = 0;
  for (const auto& c : cores_) {
    if (c) high = std::max(high, c->high_seq_received());
  }
  for (NodeId id : members_) {
    if (!Up(id)) continue;
    const core::SingleRing& c = Core(id);
    const Counters& k = c.counters();
    // Every malformed / bad-version drop must be a datagram the network
    // damaged (a valid frame is never rejected). Not every damaged one lands
    // there: a node in another ring drops a frame by its header first.
    if (k.drop_malformed + k.drop_bad_version > corrupted_received_[Index(id)]) {
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
  bool settling = false;
  uint64_t settle_until = 0;
  bool timed_out = false;
  while (checker_.ok()) {
    const bool done = healed_ && converged_us_ && plan_done_ == plan_.size() &&
                      (app_ == nullptr || app_->Done()) && checker_.Quiescent();
    if (!done) {
      settling = false;
    } else if (!settling) {
      settling = true;
      settle_until = now_us_ + opt_.settle_ms * 1000;
    }
    const uint64_t until = settling ? std::min(settle_until, limit_us) : limit_us;
    if (heap_.empty() || heap_.front().time_us > until) {
      timed_out = !settling;
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
    if (timed_out) {
      std::string why;
      if (plan_done_ != plan_.size()) {
        why = std::to_string(plan_.size() - plan_done_) + " submissions still refused";
      } else if (app_ != nullptr && !app_->Done()) {
        why = app_->NotDoneReason();
      } else if (!healed_) {
        why = "the fault schedule did not finish";
      } else if (!converged_us_) {
        why = "not converged: " + checker_.Unconverged(LiveViews());
      } else {
        why = "deliveries incomplete";
      }
      checker_.Finish();  // names the missing deliveries, if any
      if (checker_.ok()) {
        checker_.Fail("liveness: stopped at the virtual-time limit (" +
                      std::to_string(opt_.max_time_ms) + " ms): " + why);
      }
    } else {
      checker_.Finish();
      if (app_ != nullptr && checker_.ok()) app_->OnEnd();
    }
  }
  FinalChecks();
  result_.ok = checker_.ok();
  result_.violations = checker_.violations();
  result_.first_violation = checker_.first_violation();
  result_.virtual_us = now_us_;
  result_.submitted = checker_.submitted();
  result_.bound_us = bound_us_;
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
