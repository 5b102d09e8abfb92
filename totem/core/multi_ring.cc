// The multiple-ring ordering and topology layer (see multi_ring.h): the
// envelope every multi-ring message travels in, the Sync rounds that stamp a
// ring's messages with increasing effective timestamps, forwarding along the
// spanning tree, receive queues, guarantee vectors and topology changes.
//
// Envelope (36 bytes, little-endian): magic u8 0xA7 | version u8 2 | type u8 |
// guarantee u8 | source ring u32 | origin u32 | origin seq u64 | origin
// timestamp u64 | effective timestamp u64 (0 until the source ring stamps it:
// set in every forwarded copy), then the body:
//   data:       flags u8 (bit 0: stub) | destination count u8 | count x ring u32 |
//               the application payload (none in a stub)
//   guarantee:  count u16 | count x (source ring u32 | timestamp u64) |
//               count u16 | count x present gateway u32 | ring report |
//               have last u8 | last delivered key (timestamp u64, source ring
//               u32, origin u32, origin seq u64) | view table
//   topology:   kind u8 | ring u32 | other ring u32 | count u16 | count x gateway u32,
//               then for kRingGateways a ring report, for a Resync (kind 3,
//               no gateways) a view table
//   (ring report and view table: see global_view.h)
//   sync:       configuration rep u32 | configuration seq u64 | clock u64
#include "totem/core/multi_ring.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <utility>

#include "totem/core/global_view.h"
#include "totem/core/wire.h"

namespace totem::core {

namespace {
constexpr uint8_t kEnvelopeMagic = 0xA7;
constexpr uint8_t kEnvelopeVersion = 2;
constexpr size_t kEnvelopeBytes = 36;
constexpr size_t kMaxVectorEntries = 4096;
constexpr size_t kMaxTopologyGateways = 1024;
constexpr size_t kMaxRetained = 1u << 16;  // per source ring
constexpr size_t kMaxAcceptedIds = 4096;   // duplicate filter, per source ring and origin
constexpr uint32_t kJoinHoldTimers = 8;    // guarantee intervals a join hold lasts at most
constexpr uint8_t kResyncKind = 3;         // topology kind of a Resync (internal)
constexpr uint32_t kResyncRetryVectors = 16;
constexpr uint8_t kDataStub = 1;  // data flags bit: no payload

// The body of a data envelope.
struct DataBody {
  bool stub = false;
  std::vector<RingNumber> destinations;  // empty: every ring
  std::span<const uint8_t> payload;
};

void EncodeDataBody(bool stub, std::span<const RingNumber> destinations,
                    std::span<const uint8_t> payload, std::vector<uint8_t>& out) {
  out.clear();
  Writer w(out);
  w.U8(stub ? kDataStub : 0);
  w.U8(static_cast<uint8_t>(destinations.size()));
  for (RingNumber r : destinations) w.U32(r);
  w.Bytes(payload);
}

// False if `body` is not a well-formed data body (unknown flags, too many
// destinations, a truncated list, or a stub with a payload).
bool DecodeDataBody(std::span<const uint8_t> body, DataBody& out) {
  Reader r(body);
  const uint8_t flags = r.U8();
  const uint8_t count = r.U8();
  if (!r.ok() || (flags & ~kDataStub) != 0 || count > MultiRing::kMaxDestinations) return false;
  out.stub = (flags & kDataStub) != 0;
  out.destinations.clear();
  for (uint8_t i = 0; i < count && r.ok(); ++i) out.destinations.push_back(r.U32());
  if (!r.ok()) return false;
  out.payload = body.subspan(2 + 4 * static_cast<size_t>(count));
  return !(out.stub && !out.payload.empty());
}

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "totem multi-ring: invariant broken: %s\n", what);
  std::abort();
}
}  // namespace

struct MultiRing::Envelope {
  Type type = Type::kData;
  Guarantee guarantee = Guarantee::kAgreed;
  RingNumber source_ring = 0;
  NodeId origin = kNoNode;
  uint64_t origin_seq = 0;
  uint64_t timestamp = 0;
  uint64_t effective = 0;

  MessageKey Key() const { return {effective, source_ring, origin, origin_seq}; }

  void Encode(std::span<const uint8_t> body, std::vector<uint8_t>& out) const {
    out.clear();
    Writer w(out);
    w.U8(kEnvelopeMagic);
    w.U8(kEnvelopeVersion);
    w.U8(static_cast<uint8_t>(type));
    w.U8(static_cast<uint8_t>(guarantee));
    w.U32(source_ring);
    w.U32(origin);
    w.U64(origin_seq);
    w.U64(timestamp);
    w.U64(effective);
    w.Bytes(body);
  }

  // False if the frame is not a well-formed envelope.
  bool Decode(std::span<const uint8_t> frame, std::span<const uint8_t>& body) {
    if (frame.size() < kEnvelopeBytes) return false;
    Reader r(frame);
    if (r.U8() != kEnvelopeMagic || r.U8() != kEnvelopeVersion) return false;
    const uint8_t t = r.U8();
    const uint8_t g = r.U8();
    if (t < 1 || t > 4) return false;
    if (g != static_cast<uint8_t>(Guarantee::kAgreed) &&
        g != static_cast<uint8_t>(Guarantee::kSafe)) {
      return false;
    }
    type = static_cast<Type>(t);
    guarantee = static_cast<Guarantee>(g);
    source_ring = r.U32();
    origin = r.U32();
    origin_seq = r.U64();
    timestamp = r.U64();
    effective = r.U64();
    if (!r.ok() || origin == kNoNode) return false;
    body = frame.subspan(kEnvelopeBytes);
    return true;
  }
};

Status MultiRingConfig::Validate() const {
  if (node_id == kNoNode) return InvalidArgument("multi-ring: node_id must be set (not 0)");
  if (local_rings.empty()) return InvalidArgument("multi-ring: local_rings is empty");
  std::set<RingNumber> all;
  for (RingNumber r : rings) {
    if (!all.insert(r).second) {
      return InvalidArgument("multi-ring: ring " + std::to_string(r) + " listed twice in rings");
    }
  }
  std::set<RingNumber> mine;
  for (RingNumber r : local_rings) {
    if (!all.count(r)) {
      return InvalidArgument("multi-ring: local ring " + std::to_string(r) + " not in rings");
    }
    if (!mine.insert(r).second) {
      return InvalidArgument("multi-ring: local ring " + std::to_string(r) + " listed twice");
    }
  }
  for (const GatewayLink& l : links) {
    if (l.gateway == kNoNode) return InvalidArgument("multi-ring: a link has no gateway");
    if (!all.count(l.ring_a) || !all.count(l.ring_b)) {
      return InvalidArgument("multi-ring: link of gateway " + std::to_string(l.gateway) +
                             " names a ring not in rings");
    }
    if (l.ring_a == l.ring_b) {
      return InvalidArgument("multi-ring: link of gateway " + std::to_string(l.gateway) +
                             " joins ring " + std::to_string(l.ring_a) + " to itself");
    }
    if (l.gateway == node_id && (!mine.count(l.ring_a) || !mine.count(l.ring_b))) {
      return InvalidArgument("multi-ring: this node is the gateway of a link between rings " +
                             std::to_string(l.ring_a) + " and " + std::to_string(l.ring_b) +
                             " but is not on both");
    }
  }
  for (RingNumber a : local_rings) {
    for (RingNumber b : local_rings) {
      if (a >= b) continue;
      const bool linked = std::any_of(links.begin(), links.end(), [&](const GatewayLink& l) {
        return l.gateway == node_id &&
               ((l.ring_a == a && l.ring_b == b) || (l.ring_a == b && l.ring_b == a));
      });
      if (!linked) {
        return InvalidArgument("multi-ring: this node is on rings " + std::to_string(a) + " and " +
                               std::to_string(b) + " but no link names it their gateway");
      }
    }
  }
  if (guarantee_interval_us == 0) {
    return InvalidArgument("multi-ring: guarantee_interval_us must be > 0");
  }
  return Status::Ok();
}

MultiRing::MultiRing(const MultiRingConfig& config)
    : config_(config), clock_(config.initial_clock) {
  if (!config_.Validate().ok()) Die("MultiRing constructed from an invalid config");
  if (config_.initial_clock > 0) {
    // Nothing at or below the previous run's clock is delivered again (its
    // global configurations keep growing across the restart).
    delivered_any_ = true;
    last_delivered_ = MessageKey{config_.initial_clock, 0, kNoNode, 0};
  }
  for (RingNumber r : config_.local_rings) {
    LocalRing lr;
    lr.ring = r;
    local_.push_back(std::move(lr));
  }
  for (RingNumber r : config_.rings) presence_[r] = Presence{};
  for (const GatewayLink& l : config_.links) {
    edges_.push_back(Edge{l, true});
    presence_[l.ring_a].gateways.insert(l.gateway);
    presence_[l.ring_b].gateways.insert(l.gateway);
  }
  std::sort(edges_.begin(), edges_.end(), [](const Edge& x, const Edge& y) {
    return std::tie(x.link.gateway, x.link.ring_a, x.link.ring_b) <
           std::tie(y.link.gateway, y.link.ring_a, y.link.ring_b);
  });
  for (RingNumber r : config_.rings) sources_[r] = Source{};
  RecomputeReachable();
  for (RingNumber source : config_.rings) {
    const TreeMap& tree = Tree(source);
    for (const LocalRing& lr : local_) {
      auto p = tree.find(lr.ring);
      if (lr.ring != source && p != tree.end() && p->second.second == config_.node_id) {
        parent_of_.insert({source, lr.ring});
      }
    }
  }
}

void MultiRing::Start(uint64_t now_us, MultiRingOutput& out) {
  (void)now_us;
  started_ = true;
  if (is_gateway()) out.SetTimer(config_.guarantee_interval_us);
}

Status MultiRing::Submit(std::span<const uint8_t> payload, Guarantee guarantee, uint64_t now_us,
                         MultiRingOutput& out) {
  return Submit(payload, guarantee, {}, now_us, out);
}

Status MultiRing::Submit(std::span<const uint8_t> payload, Guarantee guarantee,
                         std::span<const RingNumber> destinations, uint64_t now_us,
                         MultiRingOutput& out) {
  (void)now_us;
  if (!started_) return {StatusCode::kUnavailable, "multi-ring: not started"};
  if (destinations.size() > kMaxDestinations) {
    return InvalidArgument("multi-ring: " + std::to_string(destinations.size()) +
                           " destination rings (at most " + std::to_string(kMaxDestinations) + ")");
  }
  for (size_t i = 0; i < destinations.size(); ++i) {
    const RingNumber r = destinations[i];
    if (!sources_.count(r)) {
      return InvalidArgument("multi-ring: destination ring " + std::to_string(r) +
                             " is not a configured ring");
    }
    if (std::count(destinations.begin(), destinations.end(), r) > 1) {
      return InvalidArgument("multi-ring: destination ring " + std::to_string(r) + " listed twice");
    }
  }
  std::vector<uint8_t> body;
  EncodeDataBody(/*stub=*/false, destinations, payload, body);
  Originate(config_.local_rings.front(), Type::kData, guarantee, std::move(body), out);
  counters_.submitted++;
  return Status::Ok();
}

MultiRing::LocalRing* MultiRing::FindLocal(RingNumber ring) {
  const int i = LocalIndex(ring);
  return i < 0 ? nullptr : &local_[static_cast<size_t>(i)];
}

int MultiRing::LocalIndex(RingNumber ring) const {
  for (size_t i = 0; i < local_.size(); ++i) {
    if (local_[i].ring == ring) return static_cast<int>(i);
  }
  return -1;
}

void MultiRing::Originate(RingNumber ring, Type type, Guarantee guarantee,
                          std::vector<uint8_t> body, MultiRingOutput& out) {
  Envelope env;
  env.type = type;
  env.guarantee = guarantee;
  env.source_ring = ring;
  env.origin = config_.node_id;
  env.origin_seq = (static_cast<uint64_t>(config_.incarnation) << 32) | ++next_seq_;
  env.timestamp = ++clock_;
  std::vector<uint8_t> frame;
  env.Encode(body, frame);
  out.SubmitToRing(ring, frame, guarantee);
}

void MultiRing::HandleRingConfiguration(RingNumber ring, const ConfigurationEvent& event,
                                        uint64_t now_us, MultiRingOutput& out) {
  (void)now_us;
  const int index = LocalIndex(ring);
  if (index < 0) Die("configuration of a ring this node is not on");
  LocalRing& lr = local_[static_cast<size_t>(index)];
  if (event.kind == ConfigurationKind::kTransitional) {
    lr.regular = false;
    if (lr.state == SyncState::kSyncing) {
      // The round cannot finish; the held messages are dropped by every
      // member moving on with this one (they delivered the same Syncs).
      counters_.unsynced_dropped += lr.held.size();
      lr.held.clear();
      lr.state = SyncState::kDropping;
    }
    return;
  }
  if (lr.state == SyncState::kSyncing) {
    counters_.unsynced_dropped += lr.held.size();
    lr.held.clear();
  }
  // Members this processor was not in a configuration with on this ring
  // (or its first configuration): the ring ordered messages it may get only
  // by other paths (see the join hold in multi_ring.h).
  lr.joining =
      lr.members.empty() || std::any_of(event.members.begin(), event.members.end(), [&](NodeId m) {
        return !std::binary_search(lr.members.begin(), lr.members.end(), m);
      });
  lr.config = event.id;
  lr.members = event.members;
  lr.regular = true;
  lr.state = SyncState::kSyncing;
  lr.sync_from.clear();
  lr.sync_floor = 0;
  {
    std::vector<uint8_t> body;
    Writer w(body);
    w.U32(event.id.rep);
    w.U64(event.id.seq);
    w.U64(clock_);
    Originate(ring, Type::kSync, Guarantee::kAgreed, std::move(body), out);
  }
  // The lowest member reports which of the ring's configured gateways are in,
  // and the ring's members (for the global configuration).
  if (!event.members.empty() && event.members.front() == config_.node_id) {
    const std::vector<NodeId> present = PresentGateways(lr);
    std::vector<uint8_t> body;
    Writer w(body);
    w.U8(static_cast<uint8_t>(TopologyChangeKind::kRingGateways));
    w.U32(ring);
    w.U32(0);
    w.U16(static_cast<uint16_t>(present.size()));
    for (NodeId g : present) w.U32(g);
    EncodeRingReport(event.id, event.members, w);
    Originate(ring, Type::kTopology, Guarantee::kAgreed, std::move(body), out);
  }
  // A gateway regular on two of its rings bridges them (again).
  for (const LocalRing& other : local_) {
    if (other.ring == ring || !other.regular) continue;
    for (RingNumber on : {ring, other.ring}) {
      std::vector<uint8_t> body;
      Writer w(body);
      w.U8(static_cast<uint8_t>(TopologyChangeKind::kBridge));
      w.U32(on);
      w.U32(on == ring ? other.ring : ring);
      w.U16(1);
      w.U32(config_.node_id);
      Originate(on, Type::kTopology, Guarantee::kAgreed, std::move(body), out);
    }
  }
}

void MultiRing::HandleRingDelivery(RingNumber ring, const Delivery& delivery, uint64_t now_us,
                                   MultiRingOutput& out) {
  (void)now_us;
  const int index = LocalIndex(ring);
  if (index < 0) Die("delivery from a ring this node is not on");
  LocalRing& lr = local_[static_cast<size_t>(index)];
  Envelope env;
  std::span<const uint8_t> body;
  if (!env.Decode(delivery.payload, body)) {
    counters_.malformed_dropped++;
    return;
  }
  if (env.source_ring == ring) {
    // Originated on this ring: submitted by its origin, not yet stamped.
    if (env.effective != 0 || delivery.sender != env.origin) {
      counters_.malformed_dropped++;
      return;
    }
    if (env.type == Type::kSync) {
      Reader r(body);
      ConfigurationId id;
      id.rep = r.U32();
      id.seq = r.U64();
      const uint64_t clock = r.U64();
      if (!r.ok() || r.remaining() != 0) {
        counters_.malformed_dropped++;
        return;
      }
      if (lr.state != SyncState::kSyncing || id != lr.config ||
          !std::binary_search(lr.members.begin(), lr.members.end(), env.origin)) {
        return;  // a Sync of an earlier configuration
      }
      lr.sync_from.insert(env.origin);
      lr.sync_floor = std::max(lr.sync_floor, clock);
      if (lr.sync_from.size() == lr.members.size()) {
        lr.state = SyncState::kStamping;
        lr.prev_eff = lr.sync_floor;
        if (lr.joining && is_gateway()) {
          lr.join_hold = true;
          lr.join_floor = lr.sync_floor;
          lr.join_hold_timers = 0;
        }
        StampHeld(index, out);
      }
      return;
    }
    if (delivery.config_kind == ConfigurationKind::kTransitional) {
      // Delivered past a gap that another component may not have had: its
      // effective timestamp would depend on which messages this component
      // got, so no component keeps it (every member that delivered it in the
      // regular configuration did so with the same prefix).
      counters_.transitional_dropped++;
      return;
    }
    const bool safe = delivery.guarantee == Guarantee::kSafe;
    switch (lr.state) {
      case SyncState::kSyncing:
        lr.held.emplace_back(std::vector<uint8_t>(delivery.payload.begin(), delivery.payload.end()),
                             safe);
        counters_.held_for_sync++;
        return;
      case SyncState::kDropping:
        counters_.unsynced_dropped++;
        return;
      case SyncState::kStamping:
        Stamp(index, delivery.payload, safe, out);
        TryDeliver(out);
        return;
    }
    return;
  }
  if (env.effective == 0 || env.type == Type::kSync) {
    counters_.malformed_dropped++;
    return;
  }
  Accept(index, env, body, delivery.guarantee == Guarantee::kSafe, delivery.sender, out);
  TryDeliver(out);
}

void MultiRing::StampHeld(int index, MultiRingOutput& out) {
  LocalRing& lr = local_[static_cast<size_t>(index)];
  auto held = std::move(lr.held);
  lr.held.clear();
  for (auto& [frame, safe] : held) Stamp(index, frame, safe, out);
  TryDeliver(out);
}

void MultiRing::Stamp(int index, std::span<const uint8_t> frame, bool safe, MultiRingOutput& out) {
  LocalRing& lr = local_[static_cast<size_t>(index)];
  Envelope env;
  std::span<const uint8_t> body;
  if (!env.Decode(frame, body)) Die("a held frame no longer decodes");
  env.effective = std::max(env.timestamp, lr.prev_eff + 1);
  lr.prev_eff = env.effective;
  Accept(index, env, body, safe, env.origin, out);
}

bool MultiRing::HasGateways(RingNumber ring) const {
  return std::any_of(edges_.begin(), edges_.end(),
                     [&](const Edge& e) { return e.link.ring_a == ring || e.link.ring_b == ring; });
}

std::vector<NodeId> MultiRing::PresentGateways(const LocalRing& lr) const {
  std::vector<NodeId> present;
  for (const Edge& e : edges_) {
    if (e.link.ring_a != lr.ring && e.link.ring_b != lr.ring) continue;
    if (std::binary_search(lr.members.begin(), lr.members.end(), e.link.gateway)) {
      present.push_back(e.link.gateway);
    }
  }
  std::sort(present.begin(), present.end());
  present.erase(std::unique(present.begin(), present.end()), present.end());
  return present;
}

const MultiRing::TreeMap& MultiRing::Tree(RingNumber root) const {
  auto cached = tree_cache_.find(root);
  if (cached != tree_cache_.end()) return cached->second;
  TreeMap& parent = tree_cache_[root];
  std::set<RingNumber> visited{root};
  std::deque<RingNumber> frontier{root};
  while (!frontier.empty()) {
    const RingNumber u = frontier.front();
    frontier.pop_front();
    std::vector<std::pair<RingNumber, NodeId>> next;
    for (const Edge& e : edges_) {
      if (!e.live) continue;
      if (e.link.ring_a == u) next.emplace_back(e.link.ring_b, e.link.gateway);
      if (e.link.ring_b == u) next.emplace_back(e.link.ring_a, e.link.gateway);
    }
    std::sort(next.begin(), next.end());
    for (const auto& [v, gateway] : next) {
      if (!visited.insert(v).second) continue;
      parent[v] = {u, gateway};
      frontier.push_back(v);
    }
  }
  return parent;
}

void MultiRing::Accept(int index, Envelope& env, std::span<const uint8_t> body, bool safe,
                       NodeId sender, MultiRingOutput& out) {
  (void)sender;  // any path is accepted: the guarantee check below keeps the order
  LocalRing& lr = local_[static_cast<size_t>(index)];
  uint64_t& seen = lr.seen[env.source_ring];
  seen = std::max(seen, env.effective);
  const MessageKey key = env.Key();
  // Only exact copies are duplicates: one origin's messages can reach this
  // processor out of origin order by two paths (a redundant gateway's or a
  // cycle's, while a gateway (re)joins), so an unseen lower seq is taken.
  auto src = sources_.find(env.source_ring);
  if (src == sources_.end()) {  // not a configured ring
    counters_.malformed_dropped++;
    return;
  }
  AcceptedIds& ids = accepted_[{env.source_ring, env.origin}];
  if (env.origin_seq <= ids.floor || ids.above.count(env.origin_seq) != 0) {
    counters_.duplicates_dropped++;
    auto q = queue_.find(key);
    if (safe && q != queue_.end()) q->second.safe_on |= 1ull << index;
    DataBody data;
    if (q != queue_.end() && q->second.stub_at_destination && env.type == Type::kData &&
        DecodeDataBody(body, data) && !data.stub) {
      // A full copy of a message for this processor that reached it as a
      // stub first (another path of the tree): it is delivered after all.
      q->second.payload.assign(data.payload.begin(), data.payload.end());
      q->second.stub_at_destination = false;
      q->second.skip = false;
    }
    return;
  }
  ids.above.emplace(env.origin_seq, env.effective);
  // Forget the ids delivered past (a copy of one, or an unseen id below
  // one, would be late anyway: one origin's messages are stamped in seq
  // order on their source ring) and, past the cap, the lowest (counted).
  while (!ids.above.empty()) {
    auto first = ids.above.begin();
    const MessageKey k{first->second, env.source_ring, env.origin, first->first};
    const bool passed = delivered_any_ && k <= last_delivered_;
    if (!passed && ids.above.size() <= kMaxAcceptedIds) break;
    if (!passed) counters_.dedup_overflow++;
    ids.floor = first->first;
    ids.above.erase(first);
  }
  clock_ = std::max(clock_, env.effective);
  // Decode the control bodies first: what they say about the topology is
  // taken even from a ring this processor does not wait for (that is how a
  // cut-off part of the graph is found again).
  std::vector<std::pair<RingNumber, uint64_t>> vector;
  Entry entry;
  entry.type = env.type;
  entry.guarantee = env.guarantee;
  entry.safe_on = safe ? 1ull << index : 0;
  if (env.type == Type::kGuaranteeVector) {
    Reader r(body);
    const uint16_t n = r.U16();
    for (uint16_t i = 0; i < n && r.ok() && vector.size() < kMaxVectorEntries; ++i) {
      const RingNumber ring = r.U32();
      const uint64_t ts = r.U64();
      vector.emplace_back(ring, ts);
    }
    const uint16_t m = r.U16();
    std::vector<NodeId> present;
    for (uint16_t i = 0; i < m && r.ok() && present.size() < kMaxTopologyGateways; ++i) {
      present.push_back(r.U32());
    }
    RingReport own;
    const bool own_ok = r.ok() && DecodeRingReport(r, &own.config, &own.members);
    const uint8_t have_last = r.U8();
    MessageKey last;
    last.timestamp = r.U64();
    last.source_ring = r.U32();
    last.origin = r.U32();
    last.origin_seq = r.U64();
    const uint8_t have_config = r.U8();
    MessageKey config_key;
    config_key.timestamp = r.U64();
    config_key.source_ring = r.U32();
    config_key.origin = r.U32();
    config_key.origin_seq = r.U64();
    ViewTable table;
    const bool table_ok = r.ok() && DecodeViewTable(r, config_.rings, &table);
    if (!own_ok || !table_ok || !r.ok() || r.remaining() != 0 || n != vector.size() ||
        m != present.size() || have_last > 1 || have_config > 1 ||
        !std::all_of(present.begin(), present.end(), [&](NodeId g) {
          return std::binary_search(own.members.begin(), own.members.end(), g);
        })) {
      counters_.malformed_dropped++;
      return;
    }
    ReportPresence(env.source_ring, key, present, /*add_only=*/false);
    AbsorbVectorView(env.source_ring, table, have_last == 1, last, have_config == 1, config_key,
                     out);
  } else if (env.type == Type::kTopology) {
    Reader r(body);
    const uint8_t kind = r.U8();
    TopologyEvent& ev = entry.topology;
    ev.key = key;
    ev.ring = r.U32();
    ev.other_ring = r.U32();
    const uint16_t n = r.U16();
    for (uint16_t i = 0; i < n && r.ok() && ev.gateways.size() < kMaxTopologyGateways; ++i) {
      ev.gateways.push_back(r.U32());
    }
    const bool is_bridge = kind == static_cast<uint8_t>(TopologyChangeKind::kBridge);
    const bool is_report = kind == static_cast<uint8_t>(TopologyChangeKind::kRingGateways);
    entry.resync = kind == kResyncKind;
    bool body_ok = r.ok();
    if (body_ok && is_report) {
      // The ring's members and configuration; the gateways are among them.
      entry.report.key = key;
      body_ok =
          DecodeRingReport(r, &entry.report.config, &entry.report.members) &&
          std::all_of(ev.gateways.begin(), ev.gateways.end(), [&](NodeId g) {
            return std::binary_search(entry.report.members.begin(), entry.report.members.end(), g);
          });
    } else if (body_ok && entry.resync) {
      body_ok = n == 0 && ev.other_ring == 0 && DecodeViewTable(r, config_.rings, &entry.table);
    }
    const bool kind_ok = is_report || entry.resync || (is_bridge && n == 1);
    if (!body_ok || !r.ok() || r.remaining() != 0 || !kind_ok || ev.ring != env.source_ring ||
        (is_bridge && !sources_.count(ev.other_ring)) || n != ev.gateways.size()) {
      counters_.malformed_dropped++;
      return;
    }
    if (!entry.resync) {
      ev.kind = static_cast<TopologyChangeKind>(kind);
      ReportPresence(ev.ring, key, ev.gateways, /*add_only=*/is_bridge);
      if (is_bridge) ReportPresence(ev.other_ring, key, ev.gateways, /*add_only=*/true);
    }
  } else {
    DataBody data;
    if (!DecodeDataBody(body, data) ||
        std::any_of(data.destinations.begin(), data.destinations.end(),
                    [&](RingNumber r) { return !sources_.count(r); })) {
      counters_.malformed_dropped++;
      return;
    }
    const bool destined = Destined(data.destinations);
    entry.skip = !destined || data.stub;
    entry.stub_at_destination = destined && data.stub;
    if (!entry.skip) entry.payload.assign(data.payload.begin(), data.payload.end());
  }
  // A ring that is not waited for may still send: its messages are taken
  // (in key order, like any other) as long as they are not late.
  Source& s = src->second;
  if (!s.reachable) counters_.unreachable_accepted++;
  if (delivered_any_ && key <= last_delivered_) {
    counters_.late_dropped++;
    return;
  }
  if (s.have_guarantee && key <= s.guarantee) {
    // Not a duplicate, but below a later message of its source that came
    // first by another path (per path, a ring's messages come in order;
    // across paths they need not). Nothing at or above its key was
    // delivered, so it still goes in key order; the guarantee stays.
    counters_.reordered_accepted++;
  } else {
    s.guarantee = key;
    s.have_guarantee = true;
  }
  if (tree_changed_) {
    tree_changed_ = false;
    if (is_gateway()) TakeOverTreeEdges(out);
  }
  Forward(env, body, out);
  if (env.type == Type::kGuaranteeVector) {
    auto& recv = recv_[env.source_ring];
    for (const auto& [ring, ts] : vector) recv[ring] = std::max(recv[ring], ts);
    if (is_gateway()) {
      for (const auto& [ring, ts] : vector) PruneRetained(ring);
    }
    return;
  }
  s.queued++;
  queue_.emplace(key, std::move(entry));
}

void MultiRing::Forward(const Envelope& env, std::span<const uint8_t> body, MultiRingOutput& out) {
  if (!is_gateway()) return;
  Retained kept;
  kept.effective = env.effective;
  kept.guarantee = env.guarantee;
  env.Encode(body, kept.frame);
  const TreeMap& tree = Tree(env.source_ring);
  DataBody data;
  const bool is_data = env.type == Type::kData && DecodeDataBody(body, data);
  std::vector<uint8_t> stub_frame;  // built on first use
  for (const LocalRing& lr : local_) {
    if (lr.ring == env.source_ring) continue;
    auto p = tree.find(lr.ring);
    if (p == tree.end() || p->second.second != config_.node_id) continue;
    counters_.forwarded++;
    if (is_data &&
        (data.stub || !NeedsPayload(tree, env.source_ring, lr.ring, data.destinations))) {
      if (stub_frame.empty()) {
        std::vector<uint8_t> stub_body;
        EncodeDataBody(/*stub=*/true, data.destinations, {}, stub_body);
        env.Encode(stub_body, stub_frame);
      }
      out.SubmitToRing(lr.ring, stub_frame, env.guarantee);
      counters_.stubs_forwarded++;
      continue;
    }
    out.SubmitToRing(lr.ring, kept.frame, env.guarantee);
  }
  // Kept until every ring reported it, for a take-over of a tree edge.
  auto& q = retained_[env.source_ring];
  q.push_back(std::move(kept));
  if (q.size() > kMaxRetained) {
    q.pop_front();
    counters_.retained_overflow++;
  }
  PruneRetained(env.source_ring);
}

bool MultiRing::Destined(std::span<const RingNumber> destinations) const {
  if (destinations.empty()) return true;
  return std::any_of(destinations.begin(), destinations.end(),
                     [&](RingNumber r) { return LocalIndex(r) >= 0; });
}

bool MultiRing::NeedsPayload(const TreeMap& tree, RingNumber source, RingNumber toward,
                             std::span<const RingNumber> destinations) const {
  if (destinations.empty()) return true;
  auto is_destination = [&](RingNumber r) {
    return std::find(destinations.begin(), destinations.end(), r) != destinations.end();
  };
  for (RingNumber r : config_.rings) {
    // Is r behind `toward` (toward itself, or below it in the tree)?
    bool behind = false;
    for (RingNumber x = r; x != source;) {
      if (x == toward) {
        behind = true;
        break;
      }
      auto p = tree.find(x);
      if (p == tree.end()) break;
      x = p->second.first;
    }
    if (!behind) continue;
    if (is_destination(r)) return true;
    // A gateway of r that is also on a destination ring may get its first
    // copy through r.
    for (const GatewayLink& l : config_.links) {
      const RingNumber other = l.ring_a == r ? l.ring_b : l.ring_b == r ? l.ring_a : 0;
      if (other != 0 && other != source && is_destination(other)) return true;
    }
  }
  return false;
}

void MultiRing::PruneRetained(RingNumber source) {
  auto q = retained_.find(source);
  if (q == retained_.end()) return;
  uint64_t everywhere = UINT64_MAX;
  for (const auto& [ring, src] : sources_) {
    if (!src.reachable) continue;
    uint64_t have = 0;
    auto r = recv_.find(ring);
    if (r != recv_.end()) {
      auto t = r->second.find(source);
      if (t != r->second.end()) have = t->second;
    }
    everywhere = std::min(everywhere, have);
  }
  while (!q->second.empty() && q->second.front().effective <= everywhere) q->second.pop_front();
}

void MultiRing::TakeOverTreeEdges(MultiRingOutput& out) {
  std::set<std::pair<RingNumber, RingNumber>> now;
  for (RingNumber source : config_.rings) {
    const TreeMap& tree = Tree(source);
    for (const LocalRing& lr : local_) {
      if (lr.ring == source) continue;
      auto p = tree.find(lr.ring);
      if (p == tree.end() || p->second.second != config_.node_id) continue;
      now.insert({source, lr.ring});
      if (parent_of_.count({source, lr.ring})) continue;
      // A tree edge this gateway did not have: the ring behind it may lack
      // what the previous parent had not forwarded yet. Everything above
      // what that ring reported goes again; its members drop what they have.
      uint64_t reported = 0;
      auto r = recv_.find(lr.ring);
      if (r != recv_.end()) {
        auto t = r->second.find(source);
        if (t != r->second.end()) reported = t->second;
      }
      auto q = retained_.find(source);
      if (q == retained_.end()) continue;
      for (const Retained& kept : q->second) {
        if (kept.effective <= reported) continue;
        out.SubmitToRing(lr.ring, kept.frame, kept.guarantee);
        counters_.reforwarded++;
      }
    }
  }
  parent_of_ = std::move(now);
}

void MultiRing::ReportPresence(RingNumber ring, const MessageKey& version,
                               const std::vector<NodeId>& gateways, bool add_only) {
  auto p = presence_.find(ring);
  if (p == presence_.end()) return;
  Presence& pr = p->second;
  if (pr.have_version && version <= pr.version) return;  // an older report
  pr.have_version = true;
  pr.version = version;
  if (!add_only) pr.gateways.clear();
  pr.gateways.insert(gateways.begin(), gateways.end());
  bool changed = false;
  for (Edge& e : edges_) {
    const bool live = presence_[e.link.ring_a].gateways.count(e.link.gateway) > 0 &&
                      presence_[e.link.ring_b].gateways.count(e.link.gateway) > 0;
    if (live != e.live) changed = true;
    e.live = live;
  }
  if (!changed) return;
  tree_cache_.clear();
  tree_changed_ = true;
  RecomputeReachable();
}

void MultiRing::RecomputeReachable() {
  std::set<RingNumber> reach(config_.local_rings.begin(), config_.local_rings.end());
  std::deque<RingNumber> frontier(config_.local_rings.begin(), config_.local_rings.end());
  while (!frontier.empty()) {
    const RingNumber u = frontier.front();
    frontier.pop_front();
    for (const Edge& e : edges_) {
      if (!e.live) continue;
      RingNumber v = 0;
      if (e.link.ring_a == u)
        v = e.link.ring_b;
      else if (e.link.ring_b == u)
        v = e.link.ring_a;
      else
        continue;
      if (reach.insert(v).second) frontier.push_back(v);
    }
  }
  for (auto& [ring, s] : sources_) {
    const bool now = reach.count(ring) > 0;
    if (now && !s.reachable && delivered_any_) {
      // Waited for again from here on; anything older is dropped as late.
      if (!s.have_guarantee || s.guarantee < last_delivered_) s.guarantee = last_delivered_;
      s.have_guarantee = true;
    }
    s.reachable = now;
  }
}

std::vector<RingNumber> MultiRing::Reachable() const {
  std::vector<RingNumber> out;
  for (const auto& [ring, s] : sources_) {
    if (s.reachable) out.push_back(ring);
  }
  return out;
}

bool MultiRing::SafeEverywhere(const MessageKey& key, const Entry& e) const {
  for (const auto& [ring, s] : sources_) {
    if (!s.reachable) continue;
    const int i = LocalIndex(ring);
    if (i >= 0 && (e.safe_on >> i) & 1) continue;
    auto r = recv_.find(ring);
    if (r == recv_.end()) return false;
    auto t = r->second.find(key.source_ring);
    if (t == r->second.end() || t->second < key.timestamp) return false;
  }
  return true;
}

uint64_t MultiRing::OtherPaths(const LocalRing& lr) const {
  uint64_t other = 0;
  for (const LocalRing& o : local_) {
    if (o.ring == lr.ring) continue;
    auto t = o.seen.find(lr.ring);
    if (t != o.seen.end()) other = std::max(other, t->second);
  }
  return other;
}

bool MultiRing::JoinHeld(const MessageKey& key) {
  for (LocalRing& lr : local_) {
    if (!lr.join_hold) continue;
    const uint64_t other = OtherPaths(lr);
    if (other >= lr.join_floor) {
      lr.join_hold = false;  // the other paths caught up with the join
      continue;
    }
    // Source lr.ring's messages up to `other` came by the other paths; a
    // lower one than the join floor may still come that way.
    if (MessageKey{other, lr.ring, UINT32_MAX, UINT64_MAX} < key) return true;
  }
  return false;
}

std::string MultiRing::BlockedReason() const {
  if (queue_.empty()) return "";
  const auto& [key, entry] = *queue_.begin();
  for (const LocalRing& lr : local_) {
    if (!lr.join_hold) continue;
    const uint64_t other = OtherPaths(lr);
    if (other < lr.join_floor && MessageKey{other, lr.ring, UINT32_MAX, UINT64_MAX} < key) {
      return "join hold of ring " + std::to_string(lr.ring) + " (other paths at " +
             std::to_string(other) + " < join floor " + std::to_string(lr.join_floor) + ")";
    }
  }
  for (const auto& [ring, s] : sources_) {
    if (!s.reachable || s.queued > 0) continue;
    if (!s.have_guarantee || s.guarantee < key) {
      return "waiting for ring " + std::to_string(ring) + " (guarantee " +
             (s.have_guarantee ? std::to_string(s.guarantee.timestamp) : "none") + " < " +
             std::to_string(key.timestamp) + ")";
    }
  }
  if (entry.guarantee == Guarantee::kSafe && !SafeEverywhere(key, entry)) {
    std::string lacking;
    for (const auto& [ring, s] : sources_) {
      if (!s.reachable) continue;
      const int i = LocalIndex(ring);
      if (i >= 0 && (entry.safe_on >> i) & 1) continue;
      auto r = recv_.find(ring);
      uint64_t have = 0;
      if (r != recv_.end()) {
        auto t = r->second.find(key.source_ring);
        if (t != r->second.end()) have = t->second;
      }
      if (have < key.timestamp) {
        lacking += " ring " + std::to_string(ring) + " reported " + std::to_string(have);
      }
    }
    return "safe message ts " + std::to_string(key.timestamp) + " from ring " +
           std::to_string(key.source_ring) + " not yet known received:" + lacking;
  }
  return "";
}

void MultiRing::TryDeliver(MultiRingOutput& out) {
  while (!queue_.empty()) {
    auto it = queue_.begin();
    const MessageKey key = it->first;
    for (const auto& [ring, s] : sources_) {
      if (!s.reachable || s.queued > 0) continue;
      if (!s.have_guarantee || s.guarantee < key) return;
    }
    if (JoinHeld(key)) return;
    Entry& e = it->second;
    if (e.guarantee == Guarantee::kSafe && !SafeEverywhere(key, e)) return;
    if (delivered_any_ && key <= last_delivered_) Die("delivery out of key order");
    delivered_any_ = true;
    last_delivered_ = key;
    Source& src = sources_[key.source_ring];
    if (src.queued == 0) Die("queue count underflow");
    src.queued--;
    if (e.type == Type::kTopology && e.resync) {
      counters_.resyncs_delivered++;
      if (key.origin == config_.node_id && key.origin_seq == resync_seq_) {
        resync_outstanding_ = false;
      }
      MergeViewTable(e.table, view_);
      DeliverView(key, /*resync=*/true, out);
    } else if (e.type == Type::kTopology) {
      e.topology.reachable = Reachable();
      counters_.topology_delivered++;
      out.DeliverTopology(e.topology);
      if (e.topology.kind == TopologyChangeKind::kRingGateways) {
        ApplyRingReport(e.topology.ring, e.report, view_);
        DeliverView(key, /*resync=*/false, out);
      }
    } else if (e.skip) {
      counters_.filtered_skipped++;
      if (e.stub_at_destination) counters_.stub_at_destination++;
    } else {
      MultiDelivery d;
      d.key = key;
      d.guarantee = e.guarantee;
      d.payload = e.payload;
      if (have_config_) d.config = global_.id;
      counters_.delivered++;
      out.Deliver(d);
    }
    queue_.erase(it);
  }
}

void MultiRing::HandleTimer(uint64_t now_us, MultiRingOutput& out) {
  (void)now_us;
  if (!is_gateway()) return;
  bool released = false;
  for (LocalRing& lr : local_) {
    if (lr.join_hold && ++lr.join_hold_timers >= kJoinHoldTimers) {
      lr.join_hold = false;  // no other path carried the ring's messages: go on
      counters_.join_holds_expired++;
      released = true;
    }
  }
  if (released) TryDeliver(out);
  for (const LocalRing& lr : local_) {
    if (!lr.regular || lr.state != SyncState::kStamping) continue;
    std::vector<uint8_t> body;
    Writer w(body);
    w.U16(static_cast<uint16_t>(lr.seen.size()));
    for (const auto& [ring, ts] : lr.seen) {
      w.U32(ring);
      w.U64(ts);
    }
    const std::vector<NodeId> present = PresentGateways(lr);
    w.U16(static_cast<uint16_t>(present.size()));
    for (NodeId g : present) w.U32(g);
    EncodeRingReport(lr.config, lr.members, w);
    w.U8(delivered_any_ ? 1 : 0);
    w.U64(last_delivered_.timestamp);
    w.U32(last_delivered_.source_ring);
    w.U32(last_delivered_.origin);
    w.U64(last_delivered_.origin_seq);
    w.U8(have_config_ ? 1 : 0);
    w.U64(global_.key.timestamp);
    w.U32(global_.key.source_ring);
    w.U32(global_.key.origin);
    w.U64(global_.key.origin_seq);
    EncodeViewTable(view_, w);
    Originate(lr.ring, Type::kGuaranteeVector, Guarantee::kSafe, std::move(body), out);
    counters_.guarantee_vectors_sent++;
  }
  out.SetTimer(config_.guarantee_interval_us);
}

void MultiRing::AbsorbVectorView(RingNumber source, const ViewTable& table, bool have_last,
                                 const MessageKey& last, bool have_config,
                                 const MessageKey& config_key, MultiRingOutput& out) {
  vectors_since_resync_++;
  for (const auto& [ring, components] : table) {
    // A ring this processor knows nothing of, or a report it has passed
    // without delivering it (so it never will).
    const bool missing = !view_.count(ring);
    for (const RingReport& report : components) {
      const bool passed = delivered_any_ && report.key <= last_delivered_;
      if ((missing || passed) && !Covers(view_, ring, report)) {
        ApplyRingReport(ring, report, adopted_);
      }
    }
  }
  // Adopted entries stay until a delivered Resync puts them in the table.
  bool want = !adopted_.empty();
  // The gateway passed a report this processor delivered but lacks it: the
  // lowest member of the gateway's ring tells it (and everyone) by a Resync.
  const LocalRing* lr = FindLocal(source);
  if (have_last && lr != nullptr && lr->regular && !lr->members.empty() &&
      lr->members.front() == config_.node_id) {
    for (const auto& [ring, components] : view_) {
      for (const RingReport& report : components) {
        if (!(last < report.key) && !Covers(table, ring, report)) want = true;
      }
    }
    // Configuration drift: the gateway and this processor both passed the
    // later of their current configurations' points, yet those differ, so
    // one of them passed a configuration point without delivering it (its
    // Resync or report came late there, e.g. while it was not waiting for
    // that ring) and nothing else would ever line them up again.
    if (have_config && have_config_ && delivered_any_ && config_key != global_.key) {
      const MessageKey later = std::max(config_key, global_.key);
      if (!(last < later) && !(last_delivered_ < later)) {
        want = true;
        counters_.configuration_drift_seen++;
      }
    }
  }
  if (!want) return;
  if (resync_outstanding_ && vectors_since_resync_ < kResyncRetryVectors) return;
  ViewTable carried = view_;
  MergeViewTable(adopted_, carried);
  std::vector<uint8_t> body;
  Writer w(body);
  w.U8(kResyncKind);
  w.U32(config_.local_rings.front());
  w.U32(0);
  w.U16(0);
  EncodeViewTable(carried, w);
  Originate(config_.local_rings.front(), Type::kTopology, Guarantee::kAgreed, std::move(body), out);
  resync_seq_ = (static_cast<uint64_t>(config_.incarnation) << 32) | next_seq_;
  resync_outstanding_ = true;
  vectors_since_resync_ = 0;
  counters_.resyncs_sent++;
}

void MultiRing::DeliverView(const MessageKey& key, bool resync, MultiRingOutput& out) {
  for (auto it = adopted_.begin(); it != adopted_.end();) {
    std::erase_if(it->second, [&](const RingReport& r) { return Covers(view_, it->first, r); });
    it = it->second.empty() ? adopted_.erase(it) : std::next(it);
  }
  GlobalConfiguration next;
  ViewComponents used;
  if (!ComputeGlobalConfiguration(view_, config_.rings, config_.node_id, config_.local_rings,
                                  config_.links, key, &next, &used)) {
    return;  // a reachable ring's members are not known yet
  }
  if (!resync && have_config_ && used == global_ring_ids_ &&
      next.ring_members == global_.ring_members) {
    return;
  }
  have_config_ = true;
  global_ = std::move(next);
  global_ring_ids_ = std::move(used);
  counters_.configurations_delivered++;
  out.DeliverConfiguration(global_);
}

}  // namespace totem::core
