// The multiple-ring simulator (see multi_ring_sim.h): topology builder,
// event queue, per-ring simulated LANs, fault episodes, workload and the
// global-order checker.
#include "totem/sim/multi_ring_sim.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <queue>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "totem/config.h"
#include "totem/core/global_evs.h"
#include "totem/core/group_routing.h"
#include "totem/core/multi_ring.h"
#include "totem/core/output.h"
#include "totem/core/process_groups.h"
#include "totem/core/single_ring.h"
#include "totem/sim/group_checker.h"
#include "totem/sim/random.h"

namespace totem::sim {

using core::MessageKey;
using core::RingNumber;

const char* MultiTopologyName(MultiTopology t) {
  switch (t) {
    case MultiTopology::kChain:
      return "chain";
    case MultiTopology::kTree:
      return "tree";
    case MultiTopology::kCycle:
      return "cycle";
  }
  return "unknown";
}

bool ParseMultiTopology(const std::string& name, MultiTopology* out) {
  for (MultiTopology t : {MultiTopology::kChain, MultiTopology::kTree, MultiTopology::kCycle}) {
    if (name == MultiTopologyName(t)) {
      *out = t;
      return true;
    }
  }
  return false;
}

const char* MultiInjectionName(MultiInjection i) {
  switch (i) {
    case MultiInjection::kNone:
      return "none";
    case MultiInjection::kSwapDeliveries:
      return "swap-deliveries";
    case MultiInjection::kSkewForwarded:
      return "skew-forwarded";
    case MultiInjection::kDropDelivery:
      return "drop-delivery";
    case MultiInjection::kIgnoreDestinations:
      return "ignore-destinations";
    case MultiInjection::kConfigMembers:
      return "config-members";
    case MultiInjection::kRepeatConfiguration:
      return "repeat-config";
    case MultiInjection::kStopConfigurations:
      return "stop-configs";
    case MultiInjection::kWrongGroupJoin:
      return "wrong-group-join";
  }
  return "unknown";
}

bool ParseMultiInjection(const std::string& name, MultiInjection* out) {
  for (MultiInjection i :
       {MultiInjection::kNone, MultiInjection::kSwapDeliveries, MultiInjection::kSkewForwarded,
        MultiInjection::kDropDelivery, MultiInjection::kIgnoreDestinations,
        MultiInjection::kConfigMembers, MultiInjection::kRepeatConfiguration,
        MultiInjection::kStopConfigurations, MultiInjection::kWrongGroupJoin}) {
    if (name == MultiInjectionName(i)) {
      *out = i;
      return true;
    }
  }
  return false;
}

bool ParseMultiFaults(const std::string& list, uint32_t* mask) {
  *mask = 0;
  size_t at = 0;
  while (at <= list.size()) {
    size_t comma = list.find(',', at);
    if (comma == std::string::npos) comma = list.size();
    const std::string name = list.substr(at, comma - at);
    at = comma + 1;
    if (name.empty() || name == "none") continue;
    if (name == "all")
      *mask |= kMultiFaultAll;
    else if (name == "crash")
      *mask |= kMultiFaultCrash;
    else if (name == "gateway")
      *mask |= kMultiFaultGateway;
    else if (name == "partition")
      *mask |= kMultiFaultPartition;
    else
      return false;
  }
  return true;
}

std::string ValidateMultiOptions(const MultiSimOptions& o) {
  if (o.rings < 2 || o.rings > 8) return "--rings must be in [2, 8]";
  if (o.topology == MultiTopology::kCycle && o.rings < 3) return "a cycle needs --rings >= 3";
  if (o.min_ring_nodes < 1 || o.min_ring_nodes > o.max_ring_nodes || o.max_ring_nodes > 16) {
    return "ring sizes must satisfy 1 <= min <= max <= 16";
  }
  if (o.loss < 0 || o.loss >= 0.5) return "--loss must be in [0, 0.5)";
  if (o.safe_fraction < 0 || o.safe_fraction > 1) return "--safe must be in [0, 1]";
  if (o.filter_fraction < 0 || o.filter_fraction > 1) return "--filter-fraction must be in [0, 1]";
  if (o.guarantee_interval_us == 0) return "--gv-interval-us must be > 0";
  if (o.max_episodes == 0) return "--episodes must be >= 1";
  if (o.inject == MultiInjection::kWrongGroupJoin && !o.groups) {
    return "--inject-fault wrong-group-join needs --groups";
  }
  return "";
}

namespace {

constexpr uint64_t kMs = 1000;
constexpr uint64_t kWorkloadStartUs = 300 * kMs;
constexpr uint64_t kLatencyUs = 100;
constexpr uint64_t kJitterUs = 50;
constexpr uint64_t kCheckEveryUs = 10 * kMs;
constexpr uint64_t kProbeEveryUs = 200 * kMs;
constexpr uint64_t kGroupSyncGraceUs = 1000 * kMs;

// Payload of workload message `n`: n (8 bytes) then filler derived from n.
std::vector<uint8_t> WorkloadPayload(uint64_t n) {
  uint64_t st = n * 0x9E3779B97F4A7C15ull + 17;
  const size_t len = 8 + static_cast<size_t>(SplitMix64(st) % 300);
  std::vector<uint8_t> p(len);
  for (size_t i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(n >> (8 * i));
  for (size_t i = 8; i < len; ++i) p[i] = static_cast<uint8_t>(SplitMix64(st));
  return p;
}

using MessageId = std::pair<NodeId, uint64_t>;  // origin, origin seq

class Sim {
 public:
  explicit Sim(const MultiSimOptions& o)
      : o_(o), rnd_(o.seed), groups_([this](const std::string& what) { Fail(what); }) {}
  MultiRunResult Run();

 private:
  struct Node;

  // Effects of one node's SingleRing core on ring index `idx`.
  class RingOut : public core::Output {
   public:
    RingOut(Sim& sim, Node& node, size_t idx) : sim_(sim), node_(node), idx_(idx) {}
    void Unicast(NodeId to, std::span<const uint8_t> frame) override {
      sim_.Send(node_, idx_, to, frame);
    }
    void Multicast(std::span<const uint8_t> frame) override {
      for (NodeId to : sim_.ring_members_[node_.rings[idx_]]) {
        if (to != node_.id) sim_.Send(node_, idx_, to, frame);
      }
    }
    void SetTimer(core::TimerId id, uint64_t delay_us) override {
      const uint64_t token = ++sim_.timer_tokens_;
      node_.armed[idx_][static_cast<size_t>(id)] = token;
      Event e;
      e.time = sim_.now_ + delay_us;
      e.kind = Event::kRingTimer;
      e.node = node_.id;
      e.gen = node_.gen;
      e.idx = idx_;
      e.timer = static_cast<uint8_t>(id);
      e.token = token;
      sim_.Push(std::move(e));
    }
    void CancelTimer(core::TimerId id) override { node_.armed[idx_][static_cast<size_t>(id)] = 0; }
    void Deliver(const Delivery& delivery) override {
      node_.mr->HandleRingDelivery(node_.rings[idx_], delivery, sim_.now_, *node_.mr_out);
    }
    void DeliverConfiguration(const ConfigurationEvent& event) override {
      sim_.TraceLine(node_, "ring " + std::to_string(node_.rings[idx_]) + " config " +
                                ConfigurationKindName(event.kind) + " " + event.id.ToString() +
                                " members " + std::to_string(event.members.size()));
      node_.mr->HandleRingConfiguration(node_.rings[idx_], event, sim_.now_, *node_.mr_out);
    }
    void PersistRingSeq(uint64_t ring_seq) override { node_.persisted[idx_] = ring_seq; }

   private:
    Sim& sim_;
    Node& node_;
    size_t idx_;
  };

  class MultiOut : public core::MultiRingOutput {
   public:
    MultiOut(Sim& sim, Node& node) : sim_(sim), node_(node) {}
    void SubmitToRing(RingNumber ring, std::span<const uint8_t> bytes, Guarantee g) override {
      for (size_t i = 0; i < node_.rings.size(); ++i) {
        if (node_.rings[i] == ring) {
          std::vector<uint8_t> copy(bytes.begin(), bytes.end());
          sim_.MaybeSkew(copy);
          node_.pending[i].emplace_back(std::move(copy), g);
          return;
        }
      }
      sim_.Fail("node " + std::to_string(node_.id) + " submitted to ring " + std::to_string(ring) +
                " it is not on");
    }
    void Deliver(const core::MultiDelivery& d) override { sim_.OnDeliver(node_, d); }
    void DeliverTopology(const core::TopologyEvent& ev) override { sim_.OnTopology(node_, ev); }
    void DeliverConfiguration(const core::GlobalConfiguration& c) override {
      sim_.OnConfiguration(node_, c);
    }
    void SetTimer(uint64_t delay_us) override {
      node_.mr_token = ++sim_.timer_tokens_;
      Event e;
      e.time = sim_.now_ + delay_us;
      e.kind = Event::kMultiTimer;
      e.node = node_.id;
      e.gen = node_.gen;
      e.token = node_.mr_token;
      sim_.Push(std::move(e));
    }

   private:
    Sim& sim_;
    Node& node_;
  };

  struct Node {
    NodeId id = kNoNode;
    std::vector<RingNumber> rings;
    bool up = false;
    uint32_t gen = 0;  // incarnation; events of an older one are stale
    uint32_t proc = 0;
    std::vector<std::unique_ptr<core::SingleRing>> cores;
    std::vector<std::unique_ptr<RingOut>> outs;
    std::vector<std::array<uint64_t, static_cast<size_t>(core::TimerId::kCount)>> armed;
    std::vector<uint64_t> persisted;
    std::vector<std::deque<std::pair<std::vector<uint8_t>, Guarantee>>> pending;
    std::unique_ptr<core::MultiRing> mr;
    std::unique_ptr<MultiOut> mr_out;
    uint64_t mr_token = 0;
    bool retry_armed = false;
    // The multi-ring Lamport clock at the crash, passed back at the restart
    // (MultiRingConfig::initial_clock; a real driver reserves ahead).
    uint64_t clock_mark = 0;
    // --groups, per incarnation: the layer, the last global configuration
    // as an EVS regular event and its rings' members, the groups asked for.
    std::unique_ptr<core::ProcessGroups> pg;
    bool have_global = false;
    ConfigurationEvent last_regular;
    std::map<RingNumber, std::vector<NodeId>> ring_members;
    std::set<std::string> desired;
  };

  struct Event {
    enum Kind : uint8_t {
      kFrame,
      kRingTimer,
      kMultiTimer,
      kSubmit,
      kFault,
      kRetry,
      kCheck,
      kGroupOp,      // a random join, leave or group multicast
      kGroupSubmit,  // a state message or re-sent join/leave of `node`
    };
    uint64_t time = 0;
    uint64_t order = 0;
    Kind kind = kFrame;
    NodeId node = kNoNode;
    uint32_t gen = 0;
    NodeId from = kNoNode;
    uint32_t from_gen = 0;
    size_t idx = 0;  // ring index at `node` (timers); ring number (frames)
    uint8_t timer = 0;
    uint64_t token = 0;
    std::vector<uint8_t> bytes;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return std::tie(a.time, a.order) > std::tie(b.time, b.order);
    }
  };

  struct Proc {
    NodeId node = kNoNode;
    uint32_t gen = 0;
    bool have_last = false;
    MessageKey last;
    std::vector<MessageId> log;
    std::set<MessageId> ids;
    // Global configurations delivered, and the data messages delivered in
    // each (by index; before the first one: not recorded).
    std::vector<core::GlobalConfiguration> configs;
    std::vector<std::vector<uint64_t>> in_config;  // workload numbers
  };

  struct Fault {
    uint64_t at_us = 0;
    uint32_t kind = 0;  // MultiFaultKind
    bool repair = false;
    NodeId node = kNoNode;
    RingNumber ring = 0;
    std::vector<NodeId> side;  // partition: members moved to component 1
  };

  void Build();
  void Push(Event e) {
    e.order = ++order_;
    queue_.push(std::move(e));
  }
  void Send(Node& from, size_t idx, NodeId to, std::span<const uint8_t> frame);
  void StartNode(Node& n);
  void CrashNode(Node& n);
  void Flush(Node& n);
  void Handle(Event& e);
  void ApplyFault(const Fault& f);
  void OnDeliver(Node& n, const core::MultiDelivery& d);
  void OnConfiguration(Node& n, const core::GlobalConfiguration& c);
  void CheckConfiguration(Node& n, const core::GlobalConfiguration& c);
  // (d): every processor that is up has the same last configuration, of
  // exactly the nodes that are up ("" if so, else why not).
  std::string ConfigurationsDisagree();
  // (c): the sets of messages between consecutive configurations.
  void CheckVirtualSynchrony();
  void CheckDelivery(Node& n, const core::MultiDelivery& d);
  // --groups: the stream input to `n`'s layer and its group events.
  void GroupDeliver(Node& n, const core::MultiDelivery& d);
  void GroupConfiguration(Node& n, const core::GlobalConfiguration& c);
  void GroupDispatch(Node& n, core::GroupOutput out, const MessageKey& point);
  void GroupOp();
  void GroupSubmit(Node& n, const std::vector<uint8_t>& bytes,
                   const std::vector<RingNumber>& destinations);
  // Submits `bytes` for `n` once the current input returns.
  void GroupSubmitLater(Node& n, std::vector<uint8_t> bytes);
  bool GroupsQuiet() const;
  void GroupFinalChecks();
  // kSkewForwarded: lowers the effective timestamp (bytes 28-35) of the
  // first forwarded data envelope for every ring (flags and destination
  // count, bytes 36-37, zero) submitted after the workload started.
  void MaybeSkew(std::vector<uint8_t>& frame) {
    if (o_.inject != MultiInjection::kSkewForwarded || injected_ || now_ < kWorkloadStartUs ||
        frame.size() < 38 || frame[2] != 1 || frame[36] != 0 || frame[37] != 0) {
      return;  // not data for every ring (a stub or a filtered copy may harmlessly arrive late)
    }
    uint64_t eff = 0;
    for (size_t i = 0; i < 8; ++i) eff |= static_cast<uint64_t>(frame[28 + i]) << (8 * i);
    if (eff < 2) return;
    eff -= 1;
    for (size_t i = 0; i < 8; ++i) frame[28 + i] = static_cast<uint8_t>(eff >> (8 * i));
    injected_ = true;
  }
  void OnTopology(Node& n, const core::TopologyEvent& ev);
  bool Record(Node& n, const MessageKey& key);
  // Random destination rings (non-empty, a strict subset when possible).
  std::vector<RingNumber> DrawDestinations();
  // Whether `n` must deliver workload message `number` (a processor on a
  // destination ring, or any if it has none).
  bool DestinedFor(const Node& n, uint64_t number) const;
  // Whether some processor on no ring of `destinations` exists (so
  // delivering everywhere would be caught).
  bool HasOutsider(const std::vector<RingNumber>& destinations) const;
  bool Done();
  // A probe submitted on `ring` after the last repair reached every
  // processor that is up.
  bool ProbeArrived(std::pair<RingNumber, bool> probe);
  void FinalChecks();
  void Fail(const std::string& what) {
    res_.violations++;
    if (res_.ok) {
      res_.ok = false;
      res_.first_violation = "t=" + std::to_string(now_) + "us: " + what;
    }
  }
  void TraceLine(const Node& n, const std::string& what) {
    if (o_.trace == nullptr) return;
    *o_.trace << now_ << " n" << n.id << " " << what << "\n";
  }
  Node& NodeById(NodeId id) { return nodes_[id - 1]; }
  // No faults and no loss: the rings never change after they formed, so
  // every message must reach every processor and nothing may be dropped.
  bool Strict() const { return o_.faults == 0 && o_.loss == 0; }
  static uint64_t DropCount(const Node& n) {
    const auto& c = n.mr->counters();
    return c.late_dropped + c.malformed_dropped + c.unsynced_dropped + c.transitional_dropped;
  }

  const MultiSimOptions o_;
  Random rnd_;
  uint64_t now_ = 0;
  uint64_t order_ = 0;
  uint64_t timer_tokens_ = 0;
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  std::vector<RingNumber> rings_;
  std::vector<core::GatewayLink> links_;
  std::map<RingNumber, std::vector<NodeId>> ring_members_;
  std::map<RingNumber, std::map<NodeId, uint32_t>> component_;  // partitions
  std::vector<Node> nodes_;
  std::vector<Fault> faults_;
  uint64_t stable_us_ = 0;
  uint64_t final_wave_us_ = 0;
  bool final_wave_sent_ = false;
  bool injected_ = false;
  bool holding_swap_ = false;  // kSwapDeliveries: one delivery held back
  NodeId swap_node_ = kNoNode;
  MessageKey swap_key_;
  std::vector<uint8_t> swap_payload_;
  std::vector<uint64_t> drops_at_start_;  // DropCount per node when the workload starts

  // Checker state.
  std::vector<Proc> procs_;
  std::map<MessageId, MessageKey> key_of_;
  std::map<MessageId, std::string> topology_of_;
  std::map<ConfigurationId, core::GlobalConfiguration> config_of_;  // (a)
  std::map<MessageKey, ConfigurationId> config_at_;                 // first id per key
  std::set<MessageKey> divergent_at_;
  std::set<NodeId> configs_stopped_;                     // kStopConfigurations
  std::map<NodeId, ConfigurationId> node_last_config_;   // across restarts
  std::map<MessageId, uint64_t> workload_of_;            // message id -> workload number
  std::map<uint64_t, std::set<uint32_t>> delivered_at_;  // workload number -> procs
  // (ring, with destinations) -> probe numbers
  std::map<std::pair<RingNumber, bool>, std::vector<uint64_t>> probes_;
  std::map<uint64_t, std::vector<RingNumber>> destinations_;  // workload number -> rings
  uint64_t next_workload_ = 0;
  // --groups.
  GroupChecker groups_;
  std::vector<std::string> group_names_;
  uint64_t next_gm_ = 0;
  std::map<uint64_t, std::vector<std::string>> gm_groups_;  // multicast -> groups
  uint64_t group_submits_queued_ = 0;
  uint64_t digest_ = 0x243F6A8885A308D3ull;
  MultiRunResult res_;
};

void Sim::Build() {
  for (RingNumber r = 1; r <= o_.rings; ++r) rings_.push_back(r);
  std::vector<std::pair<RingNumber, RingNumber>> pairs;
  switch (o_.topology) {
    case MultiTopology::kChain:
      for (RingNumber r = 1; r < o_.rings; ++r) pairs.emplace_back(r, r + 1);
      break;
    case MultiTopology::kTree:
      for (RingNumber r = 2; r <= o_.rings; ++r) pairs.emplace_back(1, r);
      break;
    case MultiTopology::kCycle:
      for (RingNumber r = 1; r < o_.rings; ++r) pairs.emplace_back(r, r + 1);
      pairs.emplace_back(1, o_.rings);
      break;
  }
  // A redundant second gateway between the first pair of rings.
  if (o_.redundant_gateway) pairs.push_back(pairs.front());
  std::map<RingNumber, uint32_t> gateways_on;
  for (const auto& [a, b] : pairs) {
    gateways_on[a]++;
    gateways_on[b]++;
  }
  NodeId next = 1;
  auto add_node = [&](std::vector<RingNumber> rings) {
    Node n;
    n.id = next++;
    n.rings = std::move(rings);
    for (RingNumber r : n.rings) ring_members_[r].push_back(n.id);
    nodes_.push_back(std::move(n));
  };
  for (RingNumber r : rings_) {
    const uint32_t size = static_cast<uint32_t>(rnd_.Range(o_.min_ring_nodes, o_.max_ring_nodes));
    const uint32_t ordinary = size > gateways_on[r] ? size - gateways_on[r] : 0;
    for (uint32_t i = 0; i < ordinary; ++i) add_node({r});
  }
  for (const auto& [a, b] : pairs) {
    links_.push_back(core::GatewayLink{next, a, b});
    add_node({a, b});
  }
}

void Sim::Send(Node& from, size_t idx, NodeId to, std::span<const uint8_t> frame) {
  if (rnd_.Chance(o_.loss)) return;
  Event e;
  e.time = now_ + kLatencyUs + rnd_.Below(kJitterUs + 1);
  e.kind = Event::kFrame;
  e.node = to;
  e.from = from.id;
  e.from_gen = from.gen;
  e.idx = from.rings[idx];
  e.bytes.assign(frame.begin(), frame.end());
  Push(std::move(e));
}

void Sim::StartNode(Node& n) {
  n.up = true;
  n.gen++;
  n.proc = static_cast<uint32_t>(procs_.size());
  procs_.push_back(Proc{n.id, n.gen, false, {}, {}, {}, {}, {}});
  if (o_.groups) {
    n.pg = std::make_unique<core::ProcessGroups>(n.id);
    n.have_global = false;
    n.last_regular = ConfigurationEvent{};
    n.ring_members.clear();
    n.desired.clear();
    groups_.AddProcessor(n.proc, n.id);
  }
  core::MultiRingConfig mc;
  mc.node_id = n.id;
  mc.local_rings = n.rings;
  mc.rings = rings_;
  mc.links = links_;
  mc.guarantee_interval_us = o_.guarantee_interval_us;
  mc.incarnation = n.gen;
  mc.initial_clock = n.clock_mark;
  n.mr = std::make_unique<core::MultiRing>(mc);
  n.mr_out = std::make_unique<MultiOut>(*this, n);
  n.persisted.resize(n.rings.size(), 0);
  n.cores.clear();
  n.outs.clear();
  n.armed.assign(n.rings.size(), {});
  n.pending.assign(n.rings.size(), {});
  for (size_t i = 0; i < n.rings.size(); ++i) {
    RingConfig rc;
    rc.node_id = n.id;
    rc.members = ring_members_[n.rings[i]];
    n.cores.push_back(std::make_unique<core::SingleRing>(rc, n.persisted[i]));
    n.outs.push_back(std::make_unique<RingOut>(*this, n, i));
  }
  TraceLine(n, "start gen " + std::to_string(n.gen));
  n.mr->Start(now_, *n.mr_out);
  for (size_t i = 0; i < n.rings.size(); ++i) n.cores[i]->Start(now_, *n.outs[i]);
  Flush(n);
}

void Sim::CrashNode(Node& n) {
  TraceLine(n, "crash");
  n.up = false;
  n.clock_mark = n.mr->clock();
  n.gen++;  // its timers and in-flight datagrams die with it
  n.cores.clear();
  n.outs.clear();
  n.mr.reset();
  n.mr_out.reset();
  n.pending.clear();
  n.retry_armed = false;
  n.pg.reset();
  n.desired.clear();
}

void Sim::Flush(Node& n) {
  bool progress = true;
  while (progress && n.up) {
    progress = false;
    for (size_t i = 0; i < n.pending.size(); ++i) {
      while (!n.pending[i].empty()) {
        auto& [bytes, g] = n.pending[i].front();
        const Status st = n.cores[i]->Submit(bytes, g, now_, *n.outs[i]);
        if (st.code() == StatusCode::kWouldBlock) {
          if (!n.retry_armed) {
            n.retry_armed = true;
            Event e;
            e.time = now_ + kMs;
            e.kind = Event::kRetry;
            e.node = n.id;
            e.gen = n.gen;
            Push(std::move(e));
          }
          break;
        }
        if (!st.ok()) {
          Fail("node " + std::to_string(n.id) + " ring submit failed: " + st.ToString());
          n.pending[i].pop_front();
          continue;
        }
        n.pending[i].pop_front();
        progress = true;
      }
    }
  }
}

void Sim::Handle(Event& e) {
  switch (e.kind) {
    case Event::kFrame: {
      Node& to = NodeById(e.node);
      Node& from = NodeById(e.from);
      if (!to.up || from.gen != e.from_gen) return;
      const RingNumber ring = static_cast<RingNumber>(e.idx);
      auto& comp = component_[ring];
      if (comp[e.from] != comp[e.node]) return;
      for (size_t i = 0; i < to.rings.size(); ++i) {
        if (to.rings[i] == ring) {
          to.cores[i]->HandleFrame(e.bytes, now_, *to.outs[i]);
          Flush(to);
          return;
        }
      }
      return;
    }
    case Event::kRingTimer: {
      Node& n = NodeById(e.node);
      if (!n.up || n.gen != e.gen || n.armed[e.idx][e.timer] != e.token) return;
      n.armed[e.idx][e.timer] = 0;
      n.cores[e.idx]->HandleTimer(static_cast<core::TimerId>(e.timer), now_, *n.outs[e.idx]);
      Flush(n);
      return;
    }
    case Event::kMultiTimer: {
      Node& n = NodeById(e.node);
      if (!n.up || n.gen != e.gen || n.mr_token != e.token) return;
      n.mr->HandleTimer(now_, *n.mr_out);
      Flush(n);
      return;
    }
    case Event::kRetry: {
      Node& n = NodeById(e.node);
      if (!n.up || n.gen != e.gen) return;
      n.retry_armed = false;
      Flush(n);
      return;
    }
    case Event::kSubmit: {
      // From a random node that is up; the number is fixed at schedule time.
      std::vector<Node*> up;
      for (Node& n : nodes_) {
        if (n.up && (e.node == kNoNode || n.rings.front() == e.node)) up.push_back(&n);
      }
      const bool probe = e.node != kNoNode;
      const bool filtered_probe = probe && e.idx != 0;
      if (probe && !Strict()) {
        // Probes repeat until one from each ring reached every processor:
        // a single message may be lost at a configuration change.
        Event again;
        again.time = now_ + kProbeEveryUs;
        again.kind = Event::kSubmit;
        again.node = e.node;
        again.idx = e.idx;
        Push(std::move(again));
      }
      if (up.empty()) return;
      Node& n = *up[rnd_.Below(up.size())];
      const uint64_t number = probe ? next_workload_++ : e.token;
      const Guarantee g = rnd_.Chance(o_.safe_fraction) ? Guarantee::kSafe : Guarantee::kAgreed;
      std::vector<RingNumber> destinations;
      if (filtered_probe) {
        // The next ring: never the probe's own, so stubs are on the way.
        destinations = {e.node % o_.rings + 1};
      } else if (!probe && rnd_.Chance(o_.filter_fraction)) {
        destinations = DrawDestinations();
      }
      std::vector<RingNumber> given = destinations;
      if (o_.inject == MultiInjection::kIgnoreDestinations && !injected_ && !destinations.empty() &&
          HasOutsider(destinations)) {
        injected_ = true;
        given.clear();
      }
      const std::vector<uint8_t> payload = WorkloadPayload(number);
      const Status st = n.mr->Submit(payload, g, given, now_, *n.mr_out);
      if (!st.ok()) {
        Fail("multi-ring submit failed: " + st.ToString());
        return;
      }
      res_.submitted++;
      delivered_at_[number];
      if (!destinations.empty()) destinations_[number] = destinations;
      if (probe) probes_[{e.node, filtered_probe}].push_back(number);
      Flush(n);
      return;
    }
    case Event::kFault:
      ApplyFault(faults_[e.token]);
      return;
    case Event::kCheck:
      return;
    case Event::kGroupOp:
      GroupOp();
      return;
    case Event::kGroupSubmit: {
      group_submits_queued_--;
      Node& n = NodeById(e.node);
      if (!n.up || n.gen != e.gen) return;
      GroupSubmit(n, e.bytes, {});
      return;
    }
  }
}

void Sim::ApplyFault(const Fault& f) {
  switch (f.kind) {
    case kMultiFaultCrash:
    case kMultiFaultGateway: {
      Node& n = NodeById(f.node);
      if (f.repair) {
        if (!n.up) StartNode(n);
      } else if (n.up) {
        CrashNode(n);
      }
      return;
    }
    case kMultiFaultPartition: {
      auto& comp = component_[f.ring];
      comp.clear();
      if (!f.repair) {
        for (NodeId id : f.side) comp[id] = 1;
      }
      if (o_.trace) {
        *o_.trace << now_ << " ring " << f.ring << (f.repair ? " healed" : " partitioned") << "\n";
      }
      return;
    }
  }
}

bool Sim::Record(Node& n, const MessageKey& key) {
  Proc& p = procs_[n.proc];
  const MessageId id{key.origin, key.origin_seq};
  if (!p.ids.insert(id).second) {
    Fail("node " + std::to_string(n.id) + " delivered message (" + std::to_string(id.first) + "," +
         std::to_string(id.second) + ") twice");
    return false;
  }
  if (p.have_last && !(p.last < key)) {
    Fail("node " + std::to_string(n.id) + " delivered key ts " + std::to_string(key.timestamp) +
         " after ts " + std::to_string(p.last.timestamp) + " (not increasing)");
  }
  p.have_last = true;
  p.last = key;
  auto [k, fresh] = key_of_.try_emplace(id, key);
  if (!fresh && k->second != key) {
    Fail("message (" + std::to_string(id.first) + "," + std::to_string(id.second) +
         ") delivered with timestamp " + std::to_string(key.timestamp) + " at node " +
         std::to_string(n.id) + " but " + std::to_string(k->second.timestamp) + " elsewhere");
  }
  p.log.push_back(id);
  digest_ = Mix64(digest_ ^ (static_cast<uint64_t>(n.proc) << 40) ^ key.timestamp ^
                  (static_cast<uint64_t>(key.source_ring) << 56) ^ key.origin_seq);
  return true;
}

void Sim::OnDeliver(Node& n, const core::MultiDelivery& d) {
  if (o_.groups && core::DecodeGroupMessage(d.payload).ok()) {
    GroupDeliver(n, d);  // workload payloads never decode (byte 1 is not 1)
    return;
  }
  if (o_.inject == MultiInjection::kDropDelivery && !injected_ && now_ >= final_wave_us_) {
    injected_ = true;  // a final-wave message: liveness must miss it
    return;
  }
  if (o_.inject == MultiInjection::kSwapDeliveries && !injected_ && now_ >= kWorkloadStartUs) {
    if (!holding_swap_) {
      holding_swap_ = true;
      swap_node_ = n.id;
      swap_key_ = d.key;
      swap_payload_.assign(d.payload.begin(), d.payload.end());
      return;
    }
    if (n.id == swap_node_) {
      injected_ = true;
      CheckDelivery(n, d);
      core::MultiDelivery held;
      held.key = swap_key_;
      held.payload = swap_payload_;
      CheckDelivery(n, held);
      return;
    }
  }
  CheckDelivery(n, d);
}

void Sim::CheckDelivery(Node& n, const core::MultiDelivery& d) {
  res_.deliveries++;
  if (!Record(n, d.key)) return;
  if (d.payload.size() < 8) {
    Fail("delivered payload shorter than 8 bytes");
    return;
  }
  uint64_t number = 0;
  for (size_t i = 0; i < 8; ++i) number |= static_cast<uint64_t>(d.payload[i]) << (8 * i);
  const std::vector<uint8_t> want = WorkloadPayload(number);
  if (number >= next_workload_ || want.size() != d.payload.size() ||
      !std::equal(want.begin(), want.end(), d.payload.begin())) {
    Fail("node " + std::to_string(n.id) + " delivered corrupted payload of message " +
         std::to_string(number));
    return;
  }
  const MessageId id{d.key.origin, d.key.origin_seq};
  auto [w, fresh] = workload_of_.try_emplace(id, number);
  if (!fresh && w->second != number) Fail("two workload messages share one message id");
  if (!DestinedFor(n, number)) {
    Fail("node " + std::to_string(n.id) + " delivered message " + std::to_string(number) +
         " but is on none of its destination rings");
  }
  delivered_at_[number].insert(n.proc);
  Proc& p = procs_[n.proc];
  const ConfigurationId current = p.configs.empty() ? ConfigurationId{} : p.configs.back().id;
  if (d.config != current) {
    Fail("node " + std::to_string(n.id) + " delivered message " + std::to_string(number) +
         " in configuration " + d.config.ToString() + " but its current one is " +
         current.ToString());
  }
  if (!p.in_config.empty()) p.in_config.back().push_back(number);
  if (o_.trace) {
    *o_.trace << now_ << " n" << n.id << " deliver #" << number << " ts " << d.key.timestamp
              << " ring " << d.key.source_ring << "\n";
  }
}

void Sim::OnTopology(Node& n, const core::TopologyEvent& ev) {
  res_.topology_events++;
  if (!Record(n, ev.key)) return;
  std::string content = std::to_string(static_cast<int>(ev.kind)) + ":" + std::to_string(ev.ring) +
                        ":" + std::to_string(ev.other_ring);
  for (NodeId g : ev.gateways) content += "," + std::to_string(g);
  auto [t, fresh] = topology_of_.try_emplace(MessageId{ev.key.origin, ev.key.origin_seq}, content);
  if (!fresh && t->second != content) {
    Fail("topology change delivered as " + content + " at node " + std::to_string(n.id) +
         " but as " + t->second + " elsewhere");
  }
  if (o_.trace) {
    *o_.trace << now_ << " n" << n.id << " topology " << content << " ts " << ev.key.timestamp
              << " reachable " << ev.reachable.size() << "\n";
  }
}

void Sim::OnConfiguration(Node& n, const core::GlobalConfiguration& c) {
  res_.configurations++;
  if (o_.groups) GroupConfiguration(n, c);
  if (configs_stopped_.count(n.id)) return;
  if (o_.inject == MultiInjection::kStopConfigurations && !injected_ && now_ >= kWorkloadStartUs) {
    injected_ = true;  // from now on this node's configurations are lost
    configs_stopped_.insert(n.id);
    return;
  }
  if (o_.inject == MultiInjection::kRepeatConfiguration && !injected_) {
    injected_ = true;
    CheckConfiguration(n, c);
    CheckConfiguration(n, c);
    return;
  }
  if (o_.inject == MultiInjection::kConfigMembers && !injected_ && config_of_.count(c.id)) {
    injected_ = true;
    core::GlobalConfiguration fewer = c;
    fewer.members.pop_back();
    CheckConfiguration(n, fewer);
    return;
  }
  CheckConfiguration(n, c);
}

void Sim::CheckConfiguration(Node& n, const core::GlobalConfiguration& c) {
  Proc& p = procs_[n.proc];
  const std::string at = "node " + std::to_string(n.id) + " configuration " + c.id.ToString();
  std::set<NodeId> union_members;
  for (const auto& [ring, members] : c.ring_members) {
    union_members.insert(members.begin(), members.end());
  }
  if (c.members.empty() || !std::is_sorted(c.members.begin(), c.members.end()) ||
      std::vector<NodeId>(union_members.begin(), union_members.end()) != c.members ||
      c.id.rep != c.members.front() || !union_members.count(n.id)) {
    Fail(at + ": members are not the sorted union of its rings' members, or lack the node");
  }
  // (b) ids increase; the configuration comes after what was delivered.
  if (!p.configs.empty() && c.id.seq <= p.configs.back().id.seq) {
    const MessageKey& before = p.configs.back().key;
    if (before < c.key && before.timestamp == c.key.timestamp &&
        before.source_ring == c.key.source_ring) {
      res_.seq_ties++;  // two parts of a partitioned ring stamped one timestamp
    } else {
      Fail(at + " delivered after " + p.configs.back().id.ToString() + " (ids must increase)");
    }
  }
  if (p.have_last && c.key < p.last) Fail(at + " delivered at a key below its last delivery");
  // ... also across the node's restarts (it restarts from its clock).
  auto [node_last, node_fresh] = node_last_config_.try_emplace(n.id, c.id);
  if (!node_fresh && p.configs.empty() && c.id.seq <= node_last->second.seq) {
    Fail(at + " is the first after a restart but not above " + node_last->second.ToString() +
         ", the last before it");
  }
  node_last->second = c.id;
  // (a) one id, one view, one key.
  auto [known, fresh] = config_of_.try_emplace(c.id, c);
  if (!fresh) {
    const core::GlobalConfiguration& k = known->second;
    if (k.key != c.key || k.members != c.members || k.ring_members != c.ring_members) {
      auto key_text = [](const MessageKey& m) {
        return std::to_string(m.timestamp) + "/" + std::to_string(m.source_ring) + "/" +
               std::to_string(m.origin) + "/" + std::to_string(m.origin_seq);
      };
      Fail(at + " at key " + key_text(c.key) + " with " + std::to_string(c.members.size()) +
           " members differs from the same id elsewhere (key " + key_text(k.key) + ", " +
           std::to_string(k.members.size()) + " members" +
           (k.ring_members != c.ring_members ? ", other ring members)" : ")"));
    }
  }
  auto [first, first_fresh] = config_at_.try_emplace(c.key, c.id);
  if (!first_fresh && first->second != c.id && divergent_at_.insert(c.key).second) {
    res_.divergent_keys++;
  }
  p.configs.push_back(c);
  p.in_config.emplace_back();
  if (o_.trace) {
    std::string members;
    for (NodeId m : c.members) members += " " + std::to_string(m);
    members += " (";
    for (const auto& [ring, view] : n.mr->view()) {
      for (const core::RingReport& r : view) {
        members += " r" + std::to_string(ring) + "@" + std::to_string(r.key.timestamp) + ":";
        for (NodeId m : r.members) members += std::to_string(m) + ",";
      }
    }
    members += " )";
    *o_.trace << now_ << " n" << n.id << " configuration " << c.id.ToString() << " ts "
              << c.key.timestamp << " members" << members << "\n";
  }
}

std::string Sim::ConfigurationsDisagree() {
  std::vector<NodeId> up;
  for (const Node& n : nodes_) {
    if (n.up) up.push_back(n.id);
  }
  const core::GlobalConfiguration* first = nullptr;
  for (const Node& n : nodes_) {
    if (!n.up) continue;
    const Proc& p = procs_[n.proc];
    if (p.configs.empty()) return "node " + std::to_string(n.id) + " has no configuration";
    const core::GlobalConfiguration& last = p.configs.back();
    if (last.members != up) {
      return "node " + std::to_string(n.id) + "'s last configuration " + last.id.ToString() +
             " has " + std::to_string(last.members.size()) + " members, " +
             std::to_string(up.size()) + " nodes are up";
    }
    if (first == nullptr) first = &last;
    if (last.id != first->id) {
      return "node " + std::to_string(n.id) + " ends in configuration " + last.id.ToString() +
             ", others in " + first->id.ToString();
    }
  }
  return "";
}

void Sim::CheckVirtualSynchrony() {
  for (size_t a = 0; a < procs_.size(); ++a) {
    for (size_t b = a + 1; b < procs_.size(); ++b) {
      const Proc& pa = procs_[a];
      const Proc& pb = procs_[b];
      std::map<ConfigurationId, size_t> at_b;
      for (size_t j = 0; j < pb.configs.size(); ++j) at_b[pb.configs[j].id] = j;
      const Node& na = NodeById(pa.node);
      const Node& nb = NodeById(pb.node);
      for (size_t i = 0; i + 1 < pa.configs.size(); ++i) {
        auto j = at_b.find(pa.configs[i].id);
        if (j == at_b.end() || j->second + 1 >= pb.configs.size() ||
            pb.configs[j->second + 1].id != pa.configs[i + 1].id) {
          continue;
        }
        std::set<uint64_t> sa, sb;
        for (uint64_t m : pa.in_config[i]) {
          if (DestinedFor(nb, m)) sa.insert(m);
        }
        for (uint64_t m : pb.in_config[j->second]) {
          if (DestinedFor(na, m)) sb.insert(m);
        }
        if (sa == sb) continue;
        res_.vs_set_mismatches++;
        if (Strict()) {
          Fail("virtual synchrony: n" + std::to_string(pa.node) + "/" + std::to_string(pa.gen) +
               " and n" + std::to_string(pb.node) + "/" + std::to_string(pb.gen) +
               " delivered different messages (" + std::to_string(sa.size()) + " vs " +
               std::to_string(sb.size()) + ") between configurations " +
               pa.configs[i].id.ToString() + " and " + pa.configs[i + 1].id.ToString());
          return;
        }
      }
    }
  }
}

std::vector<RingNumber> Sim::DrawDestinations() {
  std::vector<RingNumber> out;
  for (RingNumber r : rings_) {
    if (rnd_.Chance(0.4)) out.push_back(r);
  }
  if (out.empty()) out.push_back(rings_[rnd_.Below(rings_.size())]);
  return out;
}

bool Sim::DestinedFor(const Node& n, uint64_t number) const {
  auto d = destinations_.find(number);
  if (d == destinations_.end()) return true;
  for (RingNumber r : n.rings) {
    if (std::find(d->second.begin(), d->second.end(), r) != d->second.end()) return true;
  }
  return false;
}

bool Sim::HasOutsider(const std::vector<RingNumber>& destinations) const {
  for (const Node& n : nodes_) {
    bool on = false;
    for (RingNumber r : n.rings) {
      if (std::find(destinations.begin(), destinations.end(), r) != destinations.end()) on = true;
    }
    if (!on) return true;
  }
  return false;
}

bool Sim::ProbeArrived(std::pair<RingNumber, bool> probe) {
  for (uint64_t number : probes_[probe]) {
    bool everywhere = true;
    for (const Node& n : nodes_) {
      if (n.up && DestinedFor(n, number) && !delivered_at_[number].count(n.proc)) {
        everywhere = false;
      }
    }
    if (everywhere) return true;
  }
  return false;
}

bool Sim::Done() {
  if (!final_wave_sent_) return false;
  for (const auto& [probe, numbers] : probes_) {
    if (!ProbeArrived(probe)) return false;
  }
  if (Strict()) {
    for (const auto& [number, at] : delivered_at_) {
      for (const Node& n : nodes_) {
        if (DestinedFor(n, number) && !at.count(n.proc)) return false;
      }
    }
  }
  // A processor that lost a state message stays in its state exchange until
  // the next configuration (process_groups.h): wait a while, then count it.
  return ConfigurationsDisagree().empty() &&
         (GroupsQuiet() || now_ >= final_wave_us_ + kGroupSyncGraceUs);
}

void Sim::FinalChecks() {
  // Any two processors deliver what both delivered in the same order.
  for (size_t a = 0; a < procs_.size(); ++a) {
    for (size_t b = a + 1; b < procs_.size(); ++b) {
      std::unordered_map<uint64_t, size_t> pos;
      auto hash = [](const MessageId& id) {
        return (static_cast<uint64_t>(id.first) << 44) ^ id.second;
      };
      for (size_t i = 0; i < procs_[b].log.size(); ++i) pos[hash(procs_[b].log[i])] = i;
      size_t last = 0;
      bool first = true;
      for (const MessageId& id : procs_[a].log) {
        auto it = pos.find(hash(id));
        if (it == pos.end()) continue;
        if (!first && it->second <= last) {
          Fail("processors n" + std::to_string(procs_[a].node) + "/" +
               std::to_string(procs_[a].gen) + " and n" + std::to_string(procs_[b].node) + "/" +
               std::to_string(procs_[b].gen) + " deliver common messages in different orders");
          return;
        }
        first = false;
        last = it->second;
      }
    }
  }
  // Without faults, once the rings have formed (the workload starts), nothing
  // may be dropped: the startup merges are the only topology changes.
  if (Strict()) {
    for (const Node& n : nodes_) {
      if (DropCount(n) != drops_at_start_[n.id - 1]) {
        const auto& c = n.mr->counters();
        Fail("node " + std::to_string(n.id) + " dropped messages without any fault: late " +
             std::to_string(c.late_dropped) + " malformed " + std::to_string(c.malformed_dropped) +
             " unsynced " + std::to_string(c.unsynced_dropped) + " (" +
             std::to_string(drops_at_start_[n.id - 1]) + " before the workload started)");
        return;
      }
    }
  }
}

void Sim::GroupDeliver(Node& n, const core::MultiDelivery& d) {
  res_.deliveries++;
  if (!Record(n, d.key)) return;
  StatusOr<core::GroupMessage> m = core::DecodeGroupMessage(d.payload);
  std::vector<uint8_t> bytes(d.payload.begin(), d.payload.end());
  if (m.value().type == core::GroupMessageType::kMulticast) {
    if (m.value().payload.size() < 8) {
      Fail("node " + std::to_string(n.id) + " delivered a group multicast without its number");
      return;
    }
    uint64_t gm = 0;
    for (size_t i = 0; i < 8; ++i) gm |= static_cast<uint64_t>(m.value().payload[i]) << (8 * i);
    groups_.NoteMessageKey(gm, d.key);
    groups_.NoteStreamDelivery(n.proc, gm);
  } else {
    groups_.NoteMembership(n.proc, d.key);
  }
  if (o_.inject == MultiInjection::kWrongGroupJoin && !injected_ && now_ >= kWorkloadStartUs &&
      m.value().type == core::GroupMessageType::kJoin) {
    // A group nobody joins: nothing the workload does repairs the damage.
    injected_ = true;
    bytes = core::EncodeGroupJoin("g" + std::to_string(group_names_.size())).value();
  }
  Delivery delivery;
  delivery.config_id = d.config;
  delivery.config_kind = ConfigurationKind::kRegular;
  delivery.sender = d.key.origin;
  delivery.guarantee = d.guarantee;
  delivery.payload = bytes;
  GroupDispatch(n, n.pg->OnDelivery(delivery), d.key);
}

void Sim::GroupConfiguration(Node& n, const core::GlobalConfiguration& c) {
  if (!n.pg) return;
  groups_.NoteConfiguration(n.proc, c.id, c.key);
  const std::vector<ConfigurationEvent> events =
      core::GlobalEvsEvents(n.have_global ? &n.last_regular : nullptr, c);
  n.ring_members = c.ring_members;
  for (const ConfigurationEvent& e : events) {
    if (e.kind == ConfigurationKind::kRegular) {
      n.last_regular = e;
      n.have_global = true;
    }
  }
  for (const ConfigurationEvent& e : events) GroupDispatch(n, n.pg->OnConfiguration(e), c.key);
  if (events.empty()) return;
  // Joins and leaves lost around a ring change: re-sent, as GroupNode does.
  const auto& own = n.pg->own_groups();
  for (const std::string& g : n.desired) {
    if (own.count(g) == 0) {
      res_.group_resubmits++;
      GroupSubmitLater(n, core::EncodeGroupJoin(g).value());
    }
  }
  for (const std::string& g : own) {
    if (n.desired.count(g) == 0) {
      res_.group_resubmits++;
      GroupSubmitLater(n, core::EncodeGroupLeave(g).value());
    }
  }
}

void Sim::GroupDispatch(Node& n, core::GroupOutput out, const MessageKey& point) {
  if (out.send.has_value()) GroupSubmitLater(n, std::move(*out.send));
  for (const core::GroupEvent& e : out.events) {
    if (const auto* view = std::get_if<GroupView>(&e)) {
      if (o_.trace) {
        std::string members;
        for (NodeId m : view->members) members += " " + std::to_string(m);
        *o_.trace << now_ << " n" << n.id << " group view " << view->group << " at ts "
                  << point.timestamp << ":" << members << "\n";
      }
      groups_.OnView(n.proc, point, *view);
      continue;
    }
    const auto& d = std::get<core::GroupDeliveryEvent>(e);
    if (d.payload.size() < 8 || d.sender == kNoNode) {
      Fail("node " + std::to_string(n.id) + " delivered a malformed group multicast");
      continue;
    }
    uint64_t gm = 0;
    for (size_t i = 0; i < 8; ++i) gm |= static_cast<uint64_t>(d.payload[i]) << (8 * i);
    if (o_.trace) {
      *o_.trace << now_ << " n" << n.id << " group deliver #g" << gm << " at ts " << point.timestamp
                << "\n";
    }
    groups_.OnDelivery(n.proc, point, gm, d.groups);
  }
}

void Sim::GroupSubmitLater(Node& n, std::vector<uint8_t> bytes) {
  Event e;
  e.time = now_;
  e.kind = Event::kGroupSubmit;
  e.node = n.id;
  e.gen = n.gen;
  e.bytes = std::move(bytes);
  group_submits_queued_++;
  Push(std::move(e));
}

void Sim::GroupSubmit(Node& n, const std::vector<uint8_t>& bytes,
                      const std::vector<RingNumber>& destinations) {
  const Status st = n.mr->Submit(bytes, Guarantee::kAgreed, destinations, now_, *n.mr_out);
  if (!st.ok()) {
    Fail("node " + std::to_string(n.id) + " group submit failed: " + st.ToString());
    return;
  }
  Flush(n);
}

void Sim::GroupOp() {
  std::vector<Node*> up;
  for (Node& n : nodes_) {
    if (n.up && n.pg) up.push_back(&n);
  }
  if (up.empty()) return;
  Node& n = *up[rnd_.Below(up.size())];
  const uint64_t action = rnd_.Below(100);
  const std::string& g = group_names_[rnd_.Below(group_names_.size())];
  if (action < 35 || (action < 60 && n.desired.empty())) {
    n.desired.insert(g);
    res_.group_joins++;
    if (o_.trace) *o_.trace << now_ << " n" << n.id << " join " << g << "\n";
    GroupSubmit(n, core::EncodeGroupJoin(g).value(), {});
    return;
  }
  if (action < 60) {
    auto it = n.desired.begin();
    std::advance(it, static_cast<long>(rnd_.Below(n.desired.size())));
    const std::string leave = *it;
    n.desired.erase(it);
    res_.group_leaves++;
    if (o_.trace) *o_.trace << now_ << " n" << n.id << " leave " << leave << "\n";
    GroupSubmit(n, core::EncodeGroupLeave(leave).value(), {});
    return;
  }
  std::vector<std::string> groups{g};
  if (rnd_.Chance(0.4)) {
    const std::string& other = group_names_[rnd_.Below(group_names_.size())];
    if (other != g) groups.push_back(other);
  }
  const uint64_t gm = next_gm_++;
  std::vector<uint8_t> payload(8 + rnd_.Below(32));
  for (size_t i = 0; i < payload.size(); ++i) {
    payload[i] = i < 8 ? static_cast<uint8_t>(gm >> (8 * i)) : static_cast<uint8_t>(gm + i);
  }
  // Routed like GroupNode::Multicast: by the origin's ordered state.
  core::GroupRoute route;
  if (!n.have_global) {
    route.everywhere = true;
  } else {
    std::vector<NodeId> members;
    for (const std::string& name : groups) {
      const std::vector<NodeId> of = n.pg->MembersOf(name);
      members.insert(members.end(), of.begin(), of.end());
    }
    route = core::RouteGroupMulticast(n.ring_members, std::move(members), n.rings.front());
  }
  gm_groups_[gm] = groups;
  res_.group_multicasts++;
  if (o_.trace) *o_.trace << now_ << " n" << n.id << " multicast #g" << gm << "\n";
  GroupSubmit(n, core::EncodeGroupMulticast(groups, payload).value(),
              route.everywhere ? std::vector<RingNumber>{} : route.rings);
}

bool Sim::GroupsQuiet() const {
  if (!o_.groups) return true;
  if (group_submits_queued_ > 0) return false;
  for (const Node& n : nodes_) {
    if (n.up && n.pg && n.pg->syncing()) return false;
  }
  return true;
}

void Sim::GroupFinalChecks() {
  if (res_.ok) groups_.Finish(gm_groups_);
  if (res_.ok && group_submits_queued_ == 0 && ConfigurationsDisagree().empty()) {
    // (e) over the processors done with their state exchange.
    std::map<uint32_t, std::map<std::string, std::vector<NodeId>>> states;
    std::set<NodeId> live;
    for (const Node& n : nodes_) {
      if (!n.up || !n.pg) continue;
      live.insert(n.id);
      if (n.pg->syncing()) {
        res_.group_stalled_syncs++;
      } else {
        states[n.proc] = n.pg->Snapshot();
      }
    }
    groups_.CheckQuiescent(states, live);
  }
  for (const Node& n : nodes_) {
    if (!n.pg) continue;
    res_.group_syncs_forced += n.pg->counters().syncs_forced;
    res_.group_hold_dropped += n.pg->counters().drop_hold_full;
    if (n.up && !std::equal(n.desired.begin(), n.desired.end(), n.pg->own_groups().begin(),
                            n.pg->own_groups().end())) {
      res_.group_unmet++;
    }
  }
  res_.group_views = groups_.counts().views;
  res_.group_deliveries = groups_.counts().deliveries;
  res_.group_missed_no_stream = groups_.counts().missed_no_stream;
  res_.group_missed_by_layer = groups_.counts().missed_by_layer;
  res_.group_views_diverged = groups_.counts().views_diverged;
  res_.group_states_diverged = groups_.counts().states_diverged;
}

MultiRunResult Sim::Run() {
  Build();
  // Fault episodes, one after the other, each repaired before the next.
  uint64_t t = kWorkloadStartUs;
  uint64_t last_repair = 0;
  if (o_.faults != 0) {
    const uint64_t episodes = rnd_.Range(1, o_.max_episodes);
    for (uint64_t i = 0; i < episodes; ++i) {
      std::vector<uint32_t> kinds;
      for (uint32_t k : {kMultiFaultCrash, kMultiFaultGateway, kMultiFaultPartition}) {
        if (o_.faults & k) kinds.push_back(k);
      }
      const uint32_t kind = kinds[rnd_.Below(kinds.size())];
      t += rnd_.Range(50, 300) * kMs;
      Fault f;
      f.at_us = t;
      f.kind = kind;
      if (kind == kMultiFaultPartition) {
        std::vector<RingNumber> candidates;
        for (RingNumber r : rings_) {
          if (ring_members_[r].size() >= 2) candidates.push_back(r);
        }
        if (candidates.empty()) continue;
        f.ring = candidates[rnd_.Below(candidates.size())];
        const auto& members = ring_members_[f.ring];
        for (NodeId id : members) {
          if (rnd_.Chance(0.5)) f.side.push_back(id);
        }
        if (f.side.empty()) f.side.push_back(members.back());
        if (f.side.size() == members.size()) f.side.erase(f.side.begin());
      } else {
        std::vector<NodeId> candidates;
        for (const Node& n : nodes_) {
          if ((n.rings.size() > 1) == (kind == kMultiFaultGateway)) candidates.push_back(n.id);
        }
        if (candidates.empty()) continue;
        f.node = candidates[rnd_.Below(candidates.size())];
      }
      faults_.push_back(f);
      const uint64_t repair_us = t + rnd_.Range(kind == kMultiFaultCrash ? 50 : 100, 600) * kMs;
      f.at_us = repair_us;
      f.repair = true;
      faults_.push_back(f);
      res_.episodes++;
      last_repair = std::max(last_repair, repair_us);
      if (!o_.overlap) t = repair_us;
    }
  }
  stable_us_ = std::max(t, last_repair);
  final_wave_us_ = stable_us_ + 500 * kMs;
  for (size_t i = 0; i < faults_.size(); ++i) {
    Event e;
    e.time = faults_[i].at_us;
    e.kind = Event::kFault;
    e.token = i;
    Push(std::move(e));
  }
  const uint64_t spread_end = stable_us_ + 200 * kMs;
  if (o_.groups) {
    const uint64_t count = rnd_.Range(3, 4);
    for (uint64_t i = 0; i < count; ++i) group_names_.push_back("g" + std::to_string(i));
    for (uint32_t i = 0; i < o_.group_ops; ++i) {
      Event e;
      e.time = rnd_.Range(kWorkloadStartUs, spread_end);
      e.kind = Event::kGroupOp;
      Push(std::move(e));
    }
  }
  for (uint32_t i = 0; i < o_.messages; ++i) {
    Event e;
    e.time = rnd_.Range(kWorkloadStartUs, spread_end);
    e.kind = Event::kSubmit;
    e.token = next_workload_++;
    Push(std::move(e));
  }
  for (RingNumber r : rings_) {
    for (size_t filtered : {0, 1}) {
      Event e;
      e.time = final_wave_us_;
      e.kind = Event::kSubmit;
      e.node = r;        // a probe, from a node whose first ring is r
      e.idx = filtered;  // with destinations {the next ring}
      Push(std::move(e));
    }
  }
  for (Node& n : nodes_) StartNode(n);

  const uint64_t limit_us = o_.max_time_ms * kMs;
  uint64_t next_check = final_wave_us_;
  while (!queue_.empty() && res_.ok) {
    Event e = queue_.top();
    queue_.pop();
    if (e.time > limit_us) break;
    now_ = e.time;
    if (drops_at_start_.empty() && now_ >= kWorkloadStartUs) {
      for (const Node& n : nodes_) drops_at_start_.push_back(n.mr ? DropCount(n) : 0);
    }
    res_.events++;
    Handle(e);
    if (now_ >= final_wave_us_) final_wave_sent_ = true;
    if (now_ >= next_check) {
      next_check = now_ + kCheckEveryUs;
      if (Done()) break;
    }
  }
  res_.virtual_us = now_;
  if (res_.ok && !Done()) {
    std::string why;
    for (const auto& [probe, numbers] : probes_) {
      if (ProbeArrived(probe) || numbers.empty()) continue;
      for (const Node& n : nodes_) {
        if (n.up && DestinedFor(n, numbers.back()) &&
            !delivered_at_[numbers.back()].count(n.proc)) {
          why = "no " + std::string(probe.second ? "filtered " : "") + "probe of ring " +
                std::to_string(probe.first) + " (" + std::to_string(numbers.size()) +
                " sent) reached every node it is for; node " + std::to_string(n.id) +
                " lacks the last one (queued " + std::to_string(n.mr->queued()) + ": " +
                n.mr->BlockedReason() + ")";
          break;
        }
      }
      if (!why.empty()) break;
    }
    if (why.empty() && !ConfigurationsDisagree().empty()) {
      why = "global configurations: " + ConfigurationsDisagree();
    }
    if (why.empty() && !GroupsQuiet()) {
      why = "groups: state submits queued " + std::to_string(group_submits_queued_);
      for (const Node& n : nodes_) {
        if (n.up && n.pg && n.pg->syncing()) {
          why += "; node " + std::to_string(n.id) + " still exchanging group state (" +
                 n.pg->counters().ToString() + ")";
          break;
        }
      }
    }
    if (why.empty()) {
      for (const auto& [number, at] : delivered_at_) {
        for (const Node& n : nodes_) {
          if (DestinedFor(n, number) && !at.count(n.proc)) {
            why = "workload message " + std::to_string(number) + " never reached node " +
                  std::to_string(n.id) + " (no faults, no loss)";
            break;
          }
        }
        if (!why.empty()) break;
      }
    }
    Fail("liveness: " + why);
  }
  if (res_.ok) FinalChecks();
  if (res_.ok) CheckVirtualSynchrony();
  if (o_.groups) GroupFinalChecks();
  // Messages some never-crashed processor did not deliver (lost at a
  // configuration change or a gateway failover; only reported).
  for (const auto& [number, at] : delivered_at_) {
    for (const Node& n : nodes_) {
      if (n.up && n.gen == 1 && DestinedFor(n, number) && !at.count(n.proc)) {
        res_.incomplete++;
        break;
      }
    }
  }
  res_.processors = procs_.size();
  res_.digest = digest_;
  for (const Node& n : nodes_) {
    if (!n.mr) continue;
    res_.forwarded += n.mr->counters().forwarded;
    res_.late_dropped += n.mr->counters().late_dropped;
    res_.unsynced_dropped +=
        n.mr->counters().unsynced_dropped + n.mr->counters().transitional_dropped;
    res_.unreachable_accepted += n.mr->counters().unreachable_accepted;
    res_.filtered_skipped += n.mr->counters().filtered_skipped;
    res_.stubs_forwarded += n.mr->counters().stubs_forwarded;
    res_.stub_at_destination += n.mr->counters().stub_at_destination;
    res_.resyncs += n.mr->counters().resyncs_sent;
  }
  return res_;
}

}  // namespace

MultiRunResult RunMultiRingSimulation(const MultiSimOptions& o) {
  Sim sim(o);
  return sim.Run();
}

}  // namespace totem::sim
