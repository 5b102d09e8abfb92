// Unit tests of the pure multiple-ring layer (totem/core/multi_ring.h, and
// its global view: global_view.h), mostly over perfect fake rings: each
// ring is one FIFO delivered to all its members in the same order,
// configuration events are given by the test, and the
// gateway's guarantee-vector timer fires only when a test fires it.
#include "totem/core/multi_ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "totem/core/global_view.h"

namespace totem::core {
namespace {

struct Proc;

// Perfect rings: Pump() hands every submitted frame to every member of its
// ring, ring by ring, in submission order, until nothing is left.
class Bus {
 public:
  struct Frame {
    NodeId sender;
    std::vector<uint8_t> bytes;
    Guarantee guarantee;
  };
  std::map<RingNumber, std::vector<Proc*>> members;
  std::map<RingNumber, std::deque<Frame>> queued;
  std::map<RingNumber, uint64_t> config_seq;
  std::map<RingNumber, std::vector<std::vector<uint8_t>>> submitted;  // every frame, per ring

  void Configure(RingNumber ring, std::vector<Proc*> procs);
  void Pump();
  // Delivers only what is queued on `ring` (and what that queues there).
  void PumpRing(RingNumber ring);
};

struct Proc : public MultiRingOutput {
  Proc(Bus& on, NodeId node, std::vector<RingNumber> rings, const MultiRingConfig& shape)
      : bus(on), id(node) {
    MultiRingConfig c = shape;
    c.node_id = node;
    c.local_rings = rings;
    mr = std::make_unique<MultiRing>(c);
    mr->Start(0, *this);
  }
  void SubmitToRing(RingNumber ring, std::span<const uint8_t> bytes, Guarantee g) override {
    bus.queued[ring].push_back({id, {bytes.begin(), bytes.end()}, g});
    bus.submitted[ring].emplace_back(bytes.begin(), bytes.end());
  }
  void Deliver(const MultiDelivery& d) override {
    data.emplace_back(d.payload.begin(), d.payload.end());
    keys.push_back(d.key);
    guarantees.push_back(d.guarantee);
    data_configs.push_back(d.config);
  }
  void DeliverTopology(const TopologyEvent& ev) override { topology.push_back(ev); }
  void DeliverConfiguration(const GlobalConfiguration& c) override { configs.push_back(c); }
  void SetTimer(uint64_t delay_us) override { timer_us = delay_us; }
  void Submit(const std::string& s, Guarantee g = Guarantee::kAgreed) {
    ASSERT_TRUE(mr->Submit(std::vector<uint8_t>(s.begin(), s.end()), g, 0, *this).ok());
  }
  void FireTimer() { mr->HandleTimer(0, *this); }

  Bus& bus;
  NodeId id;
  std::unique_ptr<MultiRing> mr;
  std::vector<std::string> data;
  std::vector<MessageKey> keys;
  std::vector<Guarantee> guarantees;
  std::vector<TopologyEvent> topology;
  std::vector<ConfigurationId> data_configs;  // MultiDelivery::config of each delivery
  std::vector<GlobalConfiguration> configs;
  uint64_t timer_us = 0;
};

void Bus::Configure(RingNumber ring, std::vector<Proc*> procs) {
  std::vector<NodeId> ids;
  for (Proc* p : procs) ids.push_back(p->id);
  std::sort(ids.begin(), ids.end());
  const ConfigurationId id{ids.front(), ++config_seq[ring]};
  for (Proc* p : members[ring]) {
    if (std::find(procs.begin(), procs.end(), p) == procs.end()) continue;
    ConfigurationEvent trans;
    trans.kind = ConfigurationKind::kTransitional;
    trans.id = id;
    trans.members = ids;
    p->mr->HandleRingConfiguration(ring, trans, 0, *p);
  }
  members[ring] = procs;
  queued[ring].clear();
  ConfigurationEvent ev;
  ev.kind = ConfigurationKind::kRegular;
  ev.id = id;
  ev.members = ids;
  for (Proc* p : procs) p->mr->HandleRingConfiguration(ring, ev, 0, *p);
}

void Bus::Pump() {
  for (bool any = true; any;) {
    any = false;
    for (auto& [ring, q] : queued) {
      if (q.empty()) continue;
      any = true;
      Frame f = std::move(q.front());
      q.pop_front();
      Delivery d;
      d.config_id = {members[ring].empty() ? kNoNode : members[ring].front()->id, config_seq[ring]};
      d.sender = f.sender;
      d.guarantee = f.guarantee;
      d.payload = f.bytes;
      for (Proc* p : members[ring]) p->mr->HandleRingDelivery(ring, d, 0, *p);
    }
  }
}

void Bus::PumpRing(RingNumber ring) {
  auto& q = queued[ring];
  while (!q.empty()) {
    Frame f = std::move(q.front());
    q.pop_front();
    Delivery d;
    d.config_id = {members[ring].front()->id, config_seq[ring]};
    d.sender = f.sender;
    d.guarantee = f.guarantee;
    d.payload = f.bytes;
    for (Proc* p : members[ring]) p->mr->HandleRingDelivery(ring, d, 0, *p);
  }
}

MultiRingConfig TwoRings() {
  MultiRingConfig c;
  c.rings = {1, 2};
  c.links = {GatewayLink{3, 1, 2}};
  return c;
}

TEST(MultiRingConfig, Validate_RejectsBadConfigs) {
  MultiRingConfig ok = TwoRings();
  ok.node_id = 3;
  ok.local_rings = {1, 2};
  EXPECT_TRUE(ok.Validate().ok()) << ok.Validate().ToString();

  MultiRingConfig c = ok;
  c.node_id = kNoNode;
  EXPECT_EQ(c.Validate().code(), StatusCode::kInvalidArgument);
  c = ok;
  c.local_rings = {};
  EXPECT_EQ(c.Validate().code(), StatusCode::kInvalidArgument);
  c = ok;
  c.local_rings = {1, 7};
  EXPECT_NE(c.Validate().message().find("not in rings"), std::string::npos);
  c = ok;
  c.rings = {1, 2, 2};
  EXPECT_NE(c.Validate().message().find("twice"), std::string::npos);
  c = ok;
  c.links = {GatewayLink{3, 1, 1}};
  EXPECT_NE(c.Validate().message().find("to itself"), std::string::npos);
  c = ok;
  c.local_rings = {1};  // gateway of a link but only on one of its rings
  EXPECT_NE(c.Validate().message().find("not on both"), std::string::npos);
  c = ok;
  c.node_id = 4;  // on two rings without a link
  EXPECT_NE(c.Validate().message().find("no link"), std::string::npos);
  c = ok;
  c.guarantee_interval_us = 0;
  EXPECT_EQ(c.Validate().code(), StatusCode::kInvalidArgument);
}

TEST(MultiRing, OneRing_EveryMemberDeliversTheSameOrder) {
  Bus bus;
  MultiRingConfig shape;
  shape.rings = {1};
  Proc a(bus, 1, {1}, shape), b(bus, 2, {1}, shape);
  bus.Configure(1, {&a, &b});
  a.Submit("a1");
  a.Submit("a2");
  b.Submit("b1");
  bus.Pump();
  ASSERT_EQ(a.data.size(), 3u);
  EXPECT_EQ(a.data, b.data);
  EXPECT_EQ(a.keys, b.keys);
  for (size_t i = 1; i < a.keys.size(); ++i) EXPECT_LT(a.keys[i - 1], a.keys[i]);
}

TEST(MultiRing, Submit_BeforeStartIsUnavailable) {
  Bus bus;
  MultiRingConfig c;
  c.rings = {1};
  c.node_id = 1;
  c.local_rings = {1};
  MultiRing mr(c);
  Proc sink(bus, 2, {1}, c);
  const std::vector<uint8_t> x{1};
  EXPECT_EQ(mr.Submit(x, Guarantee::kAgreed, 0, sink).code(), StatusCode::kUnavailable);
}

// Two rings joined by gateway 3; processor 1 on ring 1, processor 2 on ring 2.
class TwoRingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bus.Configure(1, {&p1, &g});
    bus.Configure(2, {&p2, &g});
    bus.Pump();
    g.FireTimer();
    bus.Pump();
  }
  Bus bus;
  Proc p1{bus, 1, {1}, TwoRings()};
  Proc p2{bus, 2, {2}, TwoRings()};
  Proc g{bus, 3, {1, 2}, TwoRings()};
};

TEST_F(TwoRingTest, Deliver_WaitsForAnIdleRingUntilAGuaranteeVector) {
  p1.Submit("x");
  bus.Pump();
  // Ring 2 has said nothing past x's timestamp: nobody may deliver x yet.
  EXPECT_TRUE(p1.data.empty()) << p1.mr->BlockedReason();
  EXPECT_TRUE(p2.data.empty());
  EXPECT_NE(p1.mr->BlockedReason().find("waiting for ring 2"), std::string::npos);
  g.FireTimer();
  bus.Pump();
  ASSERT_EQ(p1.data, std::vector<std::string>{"x"});
  EXPECT_EQ(p2.data, p1.data);
  EXPECT_EQ(g.data, p1.data);
  EXPECT_EQ(p2.keys, p1.keys);
  EXPECT_EQ(g.mr->counters().forwarded > 0, true);
}

TEST_F(TwoRingTest, Deliver_InterleavesRingsInTimestampOrderEverywhere) {
  for (int i = 0; i < 5; ++i) {
    p1.Submit("one" + std::to_string(i));
    p2.Submit("two" + std::to_string(i));
    g.Submit("gw" + std::to_string(i));
  }
  bus.Pump();
  g.FireTimer();
  bus.Pump();
  ASSERT_EQ(p1.data.size(), 15u);
  EXPECT_EQ(p2.data, p1.data);
  EXPECT_EQ(g.data, p1.data);
  EXPECT_EQ(p2.keys, p1.keys);
}

TEST_F(TwoRingTest, SafeDelivery_WaitsUntilEveryRingReportsIt) {
  p1.Submit("z", Guarantee::kSafe);
  bus.Pump();
  EXPECT_TRUE(p1.data.empty());
  EXPECT_TRUE(p2.data.empty());
  g.FireTimer();
  bus.Pump();
  ASSERT_EQ(p2.data, std::vector<std::string>{"z"});
  EXPECT_EQ(p2.guarantees.front(), Guarantee::kSafe);
  EXPECT_EQ(p1.data, p2.data);
}

TEST_F(TwoRingTest, Topology_GatewayLeavingStopsTheWaitAtOneLogicalPoint) {
  const size_t before = p1.topology.size();
  bus.Configure(1, {&p1});  // the gateway left ring 1
  bus.Configure(2, {&p2});  // and ring 2
  bus.Pump();
  ASSERT_GT(p1.topology.size(), before);
  const TopologyEvent& ev = p1.topology.back();
  EXPECT_EQ(ev.kind, TopologyChangeKind::kRingGateways);
  EXPECT_EQ(ev.ring, 1u);
  EXPECT_TRUE(ev.gateways.empty());
  EXPECT_EQ(ev.reachable, std::vector<RingNumber>{1});
  // Ring 2 is no longer waited for: no guarantee vector needed.
  p1.Submit("alone");
  p2.Submit("alone too");
  bus.Pump();
  EXPECT_EQ(p1.data, std::vector<std::string>{"alone"});
  EXPECT_EQ(p2.data, std::vector<std::string>{"alone too"});
}

TEST_F(TwoRingTest, Topology_GatewayReturningBridgesTheRingsAgain) {
  bus.Configure(1, {&p1});
  bus.Configure(2, {&p2});
  bus.Pump();
  p1.Submit("before");
  bus.Pump();
  bus.Configure(1, {&p1, &g});
  bus.Configure(2, {&p2, &g});
  bus.Pump();
  EXPECT_EQ(p1.mr->Reachable(), (std::vector<RingNumber>{1, 2}));
  EXPECT_EQ(p2.mr->Reachable(), (std::vector<RingNumber>{1, 2}));
  p1.Submit("after");
  bus.Pump();
  g.FireTimer();
  bus.Pump();
  ASSERT_FALSE(p2.data.empty());
  EXPECT_EQ(p2.data.back(), "after");
  EXPECT_EQ(p1.data.back(), "after");
}

TEST_F(TwoRingTest, MalformedEnvelope_IsCountedAndDropped) {
  const std::vector<uint8_t> junk{0xA7, 1, 9, 9, 0};
  Delivery d;
  d.sender = 1;
  d.payload = junk;
  p1.mr->HandleRingDelivery(1, d, 0, p1);
  std::vector<uint8_t> truncated(40, 0);
  truncated[0] = 0xA7;
  truncated[1] = 2;
  truncated[2] = 2;  // guarantee vector with a body that does not parse
  truncated[3] = 1;
  truncated[4] = 2;  // source ring 2, forwarded (effective timestamp set)
  truncated[8] = 3;
  truncated[19] = 0x7F;  // an origin seq above everything the gateway sent
  truncated[28] = 99;
  truncated[36] = 0xFF;
  truncated[37] = 0xFF;
  d.sender = 3;
  d.payload = truncated;
  p1.mr->HandleRingDelivery(1, d, 0, p1);
  EXPECT_EQ(p1.mr->counters().malformed_dropped, 2u);
  EXPECT_TRUE(p1.data.empty());
}

// Global configurations (multi_ring.h, "Global configurations").
void ExpectSameConfiguration(const GlobalConfiguration& a, const GlobalConfiguration& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.members, b.members);
  EXPECT_EQ(a.ring_members, b.ring_members);
}

TEST_F(TwoRingTest, GlobalConfiguration_EveryProcessorSeesTheWholeNetwork) {
  for (Proc* p : {&p1, &p2, &g}) {
    ASSERT_FALSE(p->configs.empty()) << "node " << p->id;
    ExpectSameConfiguration(p->configs.back(), p1.configs.back());
    EXPECT_EQ(p->mr->counters().configurations_delivered, p->configs.size());
  }
  const GlobalConfiguration& c = p1.configs.back();
  EXPECT_EQ(c.members, (std::vector<NodeId>{1, 2, 3}));
  EXPECT_EQ(c.ring_members.at(1), (std::vector<NodeId>{1, 3}));
  EXPECT_EQ(c.ring_members.at(2), (std::vector<NodeId>{2, 3}));
  EXPECT_EQ(c.id.rep, 1u);
  EXPECT_EQ(c.id.seq >> 24, c.key.timestamp);
  // Messages delivered from now on carry the configuration's id.
  p1.Submit("x");
  bus.Pump();
  g.FireTimer();
  bus.Pump();
  ASSERT_EQ(p2.data, std::vector<std::string>{"x"});
  EXPECT_EQ(p2.data_configs.back(), c.id);
  EXPECT_EQ(p1.data_configs.back(), c.id);
}

TEST_F(TwoRingTest, GlobalConfiguration_RingChangeDeliveredAtOneKeyEverywhere) {
  const GlobalConfiguration before = p1.configs.back();
  // The same members re-form ring 1 (a new single-ring configuration): a new
  // global configuration, same members, at one key everywhere.
  bus.Configure(1, {&p1, &g});
  bus.Pump();
  g.FireTimer();
  bus.Pump();
  for (Proc* p : {&p1, &p2, &g}) {
    ASSERT_GE(p->configs.size(), 2u) << "node " << p->id;
    ExpectSameConfiguration(p->configs.back(), p1.configs.back());
  }
  EXPECT_EQ(p1.configs.back().members, before.members);
  EXPECT_NE(p1.configs.back().id, before.id);
  EXPECT_GT(p1.configs.back().id.seq, before.id.seq);
  EXPECT_GT(p1.configs.back().key, before.key);

  // Gateway 3 leaves ring 2 (in this fake bus it simply stops getting ring
  // 2): ring 2 alone is processor 2's network now.
  const size_t n1 = p1.configs.size();
  bus.Configure(2, {&p2});
  bus.Pump();
  EXPECT_EQ(p2.configs.back().members, std::vector<NodeId>{2});
  EXPECT_EQ(p2.configs.back().ring_members.count(1), 0u);
  EXPECT_GT(p2.configs.back().id.seq, p1.configs.back().id.seq);
  // Ring 1 delivered nothing new: its view is unchanged.
  EXPECT_EQ(p1.configs.size(), n1);
}

TEST_F(TwoRingTest, GlobalConfiguration_NewProcessorWaitsThenResyncAlignsEveryone) {
  MultiRingConfig shape = TwoRings();
  Proc p4(bus, 4, {1}, shape);
  bus.Configure(1, {&p1, &g, &p4});
  bus.Pump();
  // p1 and the gateway deliver ring 1's new report: members 1-4.
  EXPECT_EQ(p1.configs.back().members, (std::vector<NodeId>{1, 2, 3, 4}));
  ExpectSameConfiguration(g.configs.back(), p1.configs.back());
  // p4 knows ring 1 but not the members of ring 2 behind the gateway.
  EXPECT_TRUE(p4.configs.empty());
  EXPECT_EQ(p4.mr->view().count(2), 0u);
  const size_t n2 = p2.configs.size();
  g.FireTimer();  // the gateway's view table reaches p4; p4 multicasts a Resync
  bus.Pump();
  EXPECT_EQ(p4.mr->counters().resyncs_sent, 1u);
  ASSERT_EQ(p4.configs.size(), 1u);
  EXPECT_EQ(p4.configs.back().members, (std::vector<NodeId>{1, 2, 3, 4}));
  for (Proc* p : {&p1, &p2, &g}) {
    ExpectSameConfiguration(p->configs.back(), p4.configs.back());
    EXPECT_EQ(p->mr->counters().resyncs_delivered, 1u);
  }
  EXPECT_EQ(p2.configs.size(), n2 + 1);
  // Nothing more to fix: another vector sends no second Resync.
  g.FireTimer();
  bus.Pump();
  EXPECT_EQ(p4.mr->counters().resyncs_sent, 1u);
}

TEST_F(TwoRingTest, GlobalConfiguration_RestartedProcessorFillsItsViewFromAVector) {
  MultiRingConfig shape = TwoRings();
  shape.incarnation = 1;
  Proc p2b(bus, 2, {2}, shape);  // processor 2 restarted
  bus.Configure(2, {&p2b, &g});
  bus.Pump();
  EXPECT_TRUE(p2b.configs.empty());
  p2b.Submit("early");
  for (int i = 0; i < 3; ++i) {
    bus.Pump();
    g.FireTimer();
  }
  bus.Pump();
  EXPECT_EQ(p2b.mr->counters().resyncs_sent, 1u);
  ASSERT_FALSE(p2b.configs.empty());
  for (Proc* p : {&p1, &g}) ExpectSameConfiguration(p->configs.back(), p2b.configs.back());
  EXPECT_EQ(p2b.configs.back().members, (std::vector<NodeId>{1, 2, 3}));
  // What it delivered before it knew the network carries no configuration.
  ASSERT_FALSE(p2b.data.empty());
  EXPECT_EQ(p2b.data_configs.front(), ConfigurationId{});
}

TEST_F(TwoRingTest, GlobalConfiguration_MalformedReportIsCounted) {
  // A RingGateways report from processor 1 whose member list is not sorted.
  std::vector<uint8_t> frame;
  auto u32 = [&frame](uint32_t v) {
    for (int i = 0; i < 4; ++i) frame.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  auto u64 = [&](uint64_t v) {
    u32(static_cast<uint32_t>(v));
    u32(static_cast<uint32_t>(v >> 32));
  };
  frame = {0xA7, 2, 3, 1};  // magic, version, topology, agreed
  u32(1);                   // source ring
  u32(1);                   // origin
  u64(1ull << 40);          // origin seq
  u64(1000);                // timestamp
  u64(0);                   // not yet stamped
  frame.push_back(1);       // kRingGateways
  u32(1);
  u32(0);
  frame.push_back(0);  // no gateways
  frame.push_back(0);
  u32(1);  // configuration rep
  u64(9);  // configuration seq
  frame.push_back(2);
  frame.push_back(0);
  u32(2);
  u32(1);  // not ascending
  const size_t configs = p1.configs.size();
  Delivery d;
  d.sender = 1;
  d.payload = frame;
  p1.mr->HandleRingDelivery(1, d, 0, p1);
  EXPECT_EQ(p1.mr->counters().malformed_dropped, 1u);
  EXPECT_EQ(p1.configs.size(), configs);
  ASSERT_EQ(p1.mr->view().at(1).size(), 1u);
  EXPECT_EQ(p1.mr->view().at(1).front().members, (std::vector<NodeId>{1, 3}));
}

RingReport Report(uint64_t ts, RingNumber ring, uint64_t config_seq, std::vector<NodeId> members) {
  RingReport r;
  r.key = MessageKey{ts, ring, members.front(), ts};
  r.config = ConfigurationId{members.front(), config_seq};
  r.members = std::move(members);
  return r;
}

TEST(GlobalView, ApplyRingReport_KeepsOneEntryPerComponentNewestByRingSeq) {
  ViewTable t;
  EXPECT_TRUE(ApplyRingReport(1, Report(10, 1, 5, {1, 2, 3}), t));
  // The ring splits: {1} and {2, 3} each report; both parts stay.
  EXPECT_TRUE(ApplyRingReport(1, Report(20, 1, 6, {2, 3}), t));
  EXPECT_TRUE(ApplyRingReport(1, Report(21, 1, 6, {1}), t));
  ASSERT_EQ(t.at(1).size(), 2u);
  // Every member restarted: a low timestamp, but a higher ring seq wins.
  EXPECT_TRUE(ApplyRingReport(1, Report(3, 1, 9, {1, 2, 3}), t));
  ASSERT_EQ(t.at(1).size(), 1u);
  EXPECT_EQ(t.at(1).front().config.seq, 9u);
  // An older report sharing a member is ignored, and so is the same one.
  EXPECT_FALSE(ApplyRingReport(1, Report(30, 1, 7, {3, 4}), t));
  EXPECT_FALSE(ApplyRingReport(1, Report(3, 1, 9, {1, 2, 3}), t));
}

TEST(GlobalView, Compute_WaitsForAReachableRingAndSkipsACutOffOne) {
  const std::vector<RingNumber> rings{1, 2, 3};
  const std::vector<GatewayLink> links{{4, 1, 2}, {5, 2, 3}};
  ViewTable t;
  ApplyRingReport(1, Report(10, 1, 1, {1, 4}), t);
  GlobalConfiguration c;
  ViewComponents used;
  const MessageKey at{50, 1, 1, 1};
  // Gateway 4 is in ring 1: ring 2's members are needed.
  EXPECT_FALSE(ComputeGlobalConfiguration(t, rings, 1, {1}, links, at, &c, &used));
  ApplyRingReport(2, Report(11, 2, 1, {2, 4}), t);  // gateway 5 is not in ring 2
  ASSERT_TRUE(ComputeGlobalConfiguration(t, rings, 1, {1}, links, at, &c, &used));
  EXPECT_EQ(c.members, (std::vector<NodeId>{1, 2, 4}));
  EXPECT_EQ(c.ring_members.count(3), 0u);
  EXPECT_EQ(c.id.rep, 1u);
  EXPECT_EQ(c.id.seq >> 24, 50u);
  // A processor not in any component of its ring knows nothing yet.
  EXPECT_FALSE(ComputeGlobalConfiguration(t, rings, 7, {1}, links, at, &c, &used));
}

TEST(GlobalView, DecodeViewTable_RejectsMalformedTables) {
  const std::vector<RingNumber> rings{1, 2};
  auto decode = [&](const ViewTable& t) {
    std::vector<uint8_t> bytes;
    Writer w(bytes);
    EncodeViewTable(t, w);
    Reader r(bytes);
    ViewTable out;
    return DecodeViewTable(r, rings, &out) && r.remaining() == 0 && out == t;
  };
  ViewTable ok;
  ok[1] = {Report(10, 1, 1, {1, 3}), Report(12, 1, 2, {2})};
  ok[2] = {Report(11, 2, 1, {3, 4})};
  EXPECT_TRUE(decode(ok));
  ViewTable overlapping = ok;
  overlapping[1][1].members = {2, 3};  // two parts sharing member 3
  EXPECT_FALSE(decode(overlapping));
  ViewTable unknown;
  unknown[9] = {Report(10, 9, 1, {1})};  // not a configured ring
  EXPECT_FALSE(decode(unknown));
  ViewTable unsorted = ok;
  unsorted[2][0].members = {4, 3};
  EXPECT_FALSE(decode(unsorted));
  ViewTable foreign = ok;
  foreign[2][0].key.source_ring = 1;  // a report of ring 2 must come from ring 2
  EXPECT_FALSE(decode(foreign));
}

TEST(MultiRing, InitialClock_KeepsTimestampsAndConfigurationIdsGrowingAcrossARestart) {
  Bus bus;
  MultiRingConfig shape;
  shape.rings = {1};
  shape.initial_clock = 5000;  // what the previous run reserved
  Proc a(bus, 1, {1}, shape);
  bus.Configure(1, {&a});
  bus.Pump();
  a.Submit("x");
  bus.Pump();
  ASSERT_EQ(a.keys.size(), 1u);
  EXPECT_GT(a.keys.front().timestamp, 5000u);
  ASSERT_EQ(a.configs.size(), 1u);
  EXPECT_GT(a.configs.front().id.seq, uint64_t{5000} << 24);
}

// Two gateways (3 and 4) between rings 1 and 2; the tree uses 3.
TEST(MultiRing, RedundantGateway_TakesOverWithoutLossOrDuplicates) {
  MultiRingConfig shape;
  shape.rings = {1, 2};
  shape.links = {GatewayLink{3, 1, 2}, GatewayLink{4, 1, 2}};
  Bus bus;
  Proc p1(bus, 1, {1}, shape), p2(bus, 2, {2}, shape);
  Proc g3(bus, 3, {1, 2}, shape), g4(bus, 4, {1, 2}, shape);
  bus.Configure(1, {&p1, &g3, &g4});
  bus.Configure(2, {&p2, &g3, &g4});
  bus.Pump();
  g3.FireTimer();
  g4.FireTimer();
  bus.Pump();
  const uint64_t g3_forwarded = g3.mr->counters().forwarded;
  EXPECT_EQ(g4.mr->counters().forwarded, 0u);
  p1.Submit("m1");
  p1.Submit("m2");
  bus.PumpRing(1);  // both gateways accept m1, m2; only 3 forwards them ...
  EXPECT_EQ(g3.mr->counters().forwarded, g3_forwarded + 2);
  EXPECT_EQ(g4.mr->counters().forwarded, 0u);
  bus.Configure(1, {&p1, &g4});  // ... and fails before ring 2 ordered them
  bus.Configure(2, {&p2, &g4});
  bus.Pump();
  EXPECT_GE(g4.mr->counters().reforwarded, 2u);
  g4.FireTimer();
  bus.Pump();
  g4.FireTimer();
  bus.Pump();
  EXPECT_EQ(p2.data, (std::vector<std::string>{"m1", "m2"}));
  EXPECT_EQ(p1.data, p2.data);
  EXPECT_EQ(p2.keys, p1.keys);
}

// Gateway 4 restarts (a new incarnation) and joins ring 1, then ring 2.
// Ring 2 orders m1 before 4 is on it (4 gets it only as 3's forwarded copy
// over ring 1) and m2 after: 4 gets m2 directly first, then m1 by the other
// path. m1 is not a duplicate and nothing past it was delivered, so 4
// delivers both, in order (it used to drop m1: the filter kept only the
// highest origin seq per origin).
TEST(MultiRing, RedundantGateway_RejoinTakesALowerSeqThatCameLaterByAnotherPath) {
  MultiRingConfig shape;
  shape.rings = {1, 2};
  shape.links = {GatewayLink{3, 1, 2}, GatewayLink{4, 1, 2}};
  Bus bus;
  Proc p1(bus, 1, {1}, shape), p2(bus, 2, {2}, shape), g3(bus, 3, {1, 2}, shape);
  MultiRingConfig restarted = shape;
  restarted.incarnation = 1;
  Proc g4(bus, 4, {1, 2}, restarted);
  bus.Configure(1, {&p1, &g3, &g4});
  bus.Configure(2, {&p2, &g3});
  for (int i = 0; i < 2; ++i) {
    bus.Pump();
    g3.FireTimer();
    bus.Pump();
  }
  p2.Submit("m1");
  bus.PumpRing(2);  // ring 2 orders m1; 3 forwards it, still queued on ring 1
  ASSERT_FALSE(bus.queued[1].empty());
  bus.Configure(2, {&p2, &g3, &g4});  // 4 joins ring 2
  bus.PumpRing(2);                    // the Sync round
  p2.Submit("m2");
  bus.PumpRing(2);  // 4 gets m2 directly ...
  bus.PumpRing(1);  // ... then m1 by ring 1
  for (int i = 0; i < 3; ++i) {
    g3.FireTimer();
    g4.FireTimer();
    bus.Pump();
  }
  const std::vector<std::string> want = {"m1", "m2"};
  EXPECT_EQ(p1.data, want);
  EXPECT_EQ(p2.data, want);
  EXPECT_EQ(g4.data, want) << g4.mr->BlockedReason();
  EXPECT_EQ(g4.keys, p1.keys);
  EXPECT_EQ(g4.mr->counters().reordered_accepted, 1u);
  EXPECT_EQ(g4.mr->counters().late_dropped, 0u);
  EXPECT_EQ(g4.mr->counters().dedup_overflow, 0u);
  // Copies that came again are still dropped as duplicates.
  EXPECT_GT(g4.mr->counters().duplicates_dropped, 0u);
}

// The rejoin of RedundantGateway_RejoinTakes... up to m2, with the frames
// ring 1 had queued when 4 joined ring 2 (3's forwarded copy of m1) held
// aside, and then 4 sends x on ring 1: stamped past m2 (4 accepted m2), so
// ring 1's guarantee passes m2 before m1 comes by ring 1.
class RejoinTest : public ::testing::Test {
 protected:
  static MultiRingConfig Shape(uint32_t incarnation) {
    MultiRingConfig c;
    c.rings = {1, 2};
    c.links = {GatewayLink{3, 1, 2}, GatewayLink{4, 1, 2}};
    c.incarnation = incarnation;
    return c;
  }
  void SetUp() override {
    bus.Configure(1, {&p1, &g3, &g4});
    bus.Configure(2, {&p2, &g3});
    for (int i = 0; i < 2; ++i) {
      bus.Pump();
      g3.FireTimer();
      bus.Pump();
    }
    p2.Submit("m1");
    bus.PumpRing(2);
    held = std::move(bus.queued[1]);
    bus.queued[1].clear();
    ASSERT_FALSE(held.empty());
    bus.Configure(2, {&p2, &g3, &g4});
    bus.PumpRing(2);
    p2.Submit("m2");
    bus.PumpRing(2);
    rest = std::move(bus.queued[1]);
    bus.queued[1].clear();
    g4.Submit("x");
    ASSERT_EQ(bus.queued[1].size(), 1u);
    bus.PumpRing(1);  // x first on ring 1 (it may order the senders so)
  }
  // Ring 1 then orders the held frames, then the rest (3's own frames in
  // the order 3 sent them).
  void Release() {
    for (Bus::Frame& f : held) bus.queued[1].push_back(std::move(f));
    for (Bus::Frame& f : rest) bus.queued[1].push_back(std::move(f));
    held.clear();
    rest.clear();
    for (int i = 0; i < 3; ++i) {
      bus.Pump();
      g3.FireTimer();
      g4.FireTimer();
    }
    bus.Pump();
  }
  Bus bus;
  Proc p1{bus, 1, {1}, Shape(0)};
  Proc p2{bus, 2, {2}, Shape(0)};
  Proc g3{bus, 3, {1, 2}, Shape(0)};
  Proc g4{bus, 4, {1, 2}, Shape(1)};  // restarted: a new incarnation
  std::deque<Bus::Frame> held, rest;
};

// 4 joined ring 2 and has m2 directly: it holds back what is above ring 2's
// messages in ring 1's stream until that stream passes the join's sync
// floor, so m1 (ordered on ring 2 before 4 joined) is not passed by.
TEST_F(RejoinTest, JoinHold_WaitsForTheOtherPathThenDeliversBothInOrder) {
  EXPECT_TRUE(g4.data.empty());
  EXPECT_NE(g4.mr->BlockedReason().find("join hold of ring 2"), std::string::npos)
      << g4.mr->BlockedReason();
  Release();
  ASSERT_GE(g4.data.size(), 2u) << g4.mr->BlockedReason();
  EXPECT_EQ(std::vector<std::string>(g4.data.begin(), g4.data.begin() + 2),
            (std::vector<std::string>{"m1", "m2"}));
  EXPECT_EQ(g4.mr->counters().late_dropped, 0u);
  EXPECT_EQ(g4.mr->counters().join_holds_expired, 0u);
  EXPECT_EQ(p1.data, g4.data);
  EXPECT_EQ(p1.keys, g4.keys);
}

// No other path carries ring 2's messages for 8 guarantee intervals: the
// hold ends, 4 delivers m2, and m1, coming later by ring 1, is late
// (counted), never delivered out of order.
TEST_F(RejoinTest, JoinHold_ExpiresWithoutAnOtherPathThenALaterLowerCopyIsLate) {
  for (int i = 0; i < 7; ++i) g4.FireTimer();  // its frames stay queued
  EXPECT_TRUE(g4.data.empty());
  g4.FireTimer();
  EXPECT_GE(g4.mr->counters().join_holds_expired, 1u);
  ASSERT_EQ(g4.data, std::vector<std::string>{"m2"}) << g4.mr->BlockedReason();
  Release();
  for (size_t i = 1; i < g4.keys.size(); ++i) EXPECT_LT(g4.keys[i - 1], g4.keys[i]);
  EXPECT_EQ(std::count(g4.data.begin(), g4.data.end(), "m1"), 0);
  EXPECT_GE(g4.mr->counters().late_dropped, 1u);
}

// A chain 1 - 2 - 3: processors 1, 2, 3 on rings 1, 2, 3; gateway 4
// joins rings 1 and 2, gateway 5 rings 2 and 3.
class ChainTest : public ::testing::Test {
 protected:
  static MultiRingConfig Shape() {
    MultiRingConfig c;
    c.rings = {1, 2, 3};
    c.links = {GatewayLink{4, 1, 2}, GatewayLink{5, 2, 3}};
    return c;
  }
  void SetUp() override {
    bus.Configure(1, {&p1, &g4});
    bus.Configure(2, {&p2, &g4, &g5});
    bus.Configure(3, {&p3, &g5});
    Settle();
    bus.submitted.clear();
  }
  void Settle() {
    for (int i = 0; i < 3; ++i) {
      bus.Pump();
      g4.FireTimer();
      g5.FireTimer();
    }
    bus.Pump();
  }
  Status SubmitTo(Proc& p, const std::string& s, std::vector<RingNumber> destinations) {
    return p.mr->Submit(std::vector<uint8_t>(s.begin(), s.end()), Guarantee::kAgreed, destinations,
                        0, p);
  }
  // Whether some frame submitted to `ring` carries the bytes of `s`.
  bool RingCarried(RingNumber ring, const std::string& s) {
    for (const auto& frame : bus.submitted[ring]) {
      if (std::search(frame.begin(), frame.end(), s.begin(), s.end()) != frame.end()) return true;
    }
    return false;
  }
  Bus bus;
  Proc p1{bus, 1, {1}, Shape()};
  Proc p2{bus, 2, {2}, Shape()};
  Proc p3{bus, 3, {3}, Shape()};
  Proc g4{bus, 4, {1, 2}, Shape()};
  Proc g5{bus, 5, {2, 3}, Shape()};
};

TEST_F(ChainTest, Filter_LocalMessageReachesOtherRingsOnlyAsStubs) {
  const std::string payload = "local-to-ring-1-payload";
  ASSERT_TRUE(SubmitTo(p1, payload, {1}).ok());
  p1.Submit("everywhere");
  Settle();
  EXPECT_EQ(p1.data, (std::vector<std::string>{payload, "everywhere"}));
  EXPECT_EQ(g4.data, p1.data);  // on ring 1 too
  for (Proc* p : {&p2, &p3, &g5}) {
    EXPECT_EQ(p->data, std::vector<std::string>{"everywhere"}) << "node " << p->id;
    EXPECT_EQ(p->mr->counters().filtered_skipped, 1u) << "node " << p->id;
  }
  // Every processor saw both at the same place in the order.
  EXPECT_EQ(p3.keys.back(), p1.keys.back());
  EXPECT_EQ(g4.mr->counters().stubs_forwarded, 1u);
  EXPECT_EQ(g5.mr->counters().stubs_forwarded, 1u);
  EXPECT_TRUE(RingCarried(1, payload));
  EXPECT_FALSE(RingCarried(2, payload));
  EXPECT_FALSE(RingCarried(3, payload));
  // The stubs are the envelope (36 bytes) + flags, count, one ring: nothing more.
  size_t stubs = 0;
  for (RingNumber ring : {2u, 3u}) {
    for (const auto& frame : bus.submitted[ring]) {
      if (frame.size() > 36 && frame[2] == 1 && frame[36] == 1) {
        EXPECT_EQ(frame.size(), 36u + 2u + 4u);
        stubs++;
      }
    }
  }
  EXPECT_EQ(stubs, 2u);
}

TEST_F(ChainTest, Filter_MessageForTheFarRingPassesTheMiddleRingInFull) {
  const std::string payload = "for-ring-3-payload";
  ASSERT_TRUE(SubmitTo(p1, payload, {3}).ok());
  p1.Submit("everywhere");
  Settle();
  EXPECT_TRUE(RingCarried(2, payload));
  EXPECT_TRUE(RingCarried(3, payload));
  EXPECT_EQ(p3.data, (std::vector<std::string>{payload, "everywhere"}));
  EXPECT_EQ(g5.data, p3.data);
  EXPECT_EQ(g5.keys, p3.keys);
  // The origin is not on a destination ring: it skips its own message.
  for (Proc* p : {&p1, &g4, &p2}) {
    EXPECT_EQ(p->data, std::vector<std::string>{"everywhere"}) << "node " << p->id;
    EXPECT_EQ(p->mr->counters().filtered_skipped, 1u) << "node " << p->id;
  }
  EXPECT_EQ(g4.mr->counters().stubs_forwarded, 0u);
  EXPECT_EQ(g5.mr->counters().stubs_forwarded, 0u);
}

TEST_F(ChainTest, Filter_MiddleRingAndFarRingFromTheMiddle) {
  ASSERT_TRUE(SubmitTo(p2, "for-2-and-3", {2, 3}).ok());
  Settle();
  EXPECT_FALSE(RingCarried(1, "for-2-and-3"));
  EXPECT_EQ(g4.mr->counters().stubs_forwarded, 1u);
  EXPECT_EQ(p1.data, std::vector<std::string>{});
  EXPECT_EQ(g4.data, std::vector<std::string>{"for-2-and-3"});  // on ring 2
  EXPECT_EQ(p2.data, std::vector<std::string>{"for-2-and-3"});
  EXPECT_EQ(p3.data, std::vector<std::string>{"for-2-and-3"});
}

TEST_F(ChainTest, Submit_RejectsBadDestinations) {
  EXPECT_EQ(SubmitTo(p1, "x", {9}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(SubmitTo(p1, "x", {2, 2}).code(), StatusCode::kInvalidArgument);
  std::vector<RingNumber> many(MultiRing::kMaxDestinations + 1, 1);
  EXPECT_EQ(SubmitTo(p1, "x", many).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p1.mr->counters().submitted, 0u);
}

// A cycle 1 - 2 - 3 - 1: gateway 4 joins rings 1 and 2, 5 rings 2 and 3,
// 6 rings 3 and 1. From ring 1 the tree reaches ring 2 through 4 and ring 3
// through 6; gateway 5 gets every message from ring 1 twice.
TEST(MultiRing, Filter_CycleGatewayOnADestinationGetsThePayloadEitherWay) {
  MultiRingConfig shape;
  shape.rings = {1, 2, 3};
  shape.links = {GatewayLink{4, 1, 2}, GatewayLink{5, 2, 3}, GatewayLink{6, 1, 3}};
  Bus bus;
  Proc p1(bus, 1, {1}, shape), p2(bus, 2, {2}, shape), p3(bus, 3, {3}, shape);
  Proc g4(bus, 4, {1, 2}, shape), g5(bus, 5, {2, 3}, shape), g6(bus, 6, {1, 3}, shape);
  bus.Configure(1, {&p1, &g4, &g6});
  bus.Configure(2, {&p2, &g4, &g5});
  bus.Configure(3, {&p3, &g5, &g6});
  auto settle = [&] {
    for (int i = 0; i < 3; ++i) {
      bus.Pump();
      for (Proc* g : {&g4, &g5, &g6}) g->FireTimer();
    }
    bus.Pump();
  };
  settle();
  const std::string for3 = "for-ring-3";
  const std::string for1 = "for-ring-1";
  ASSERT_TRUE(p1.mr
                  ->Submit(std::vector<uint8_t>(for3.begin(), for3.end()), Guarantee::kAgreed,
                           std::vector<RingNumber>{3}, 0, p1)
                  .ok());
  ASSERT_TRUE(p1.mr
                  ->Submit(std::vector<uint8_t>(for1.begin(), for1.end()), Guarantee::kAgreed,
                           std::vector<RingNumber>{1}, 0, p1)
                  .ok());
  settle();
  // Ring 2 needs the payload of the first: gateway 5 is on ring 3.
  EXPECT_EQ(g4.mr->counters().stubs_forwarded, 1u);  // only the one for ring 1
  EXPECT_EQ(g6.mr->counters().stubs_forwarded, 1u);
  EXPECT_EQ(g5.data, std::vector<std::string>{for3});
  EXPECT_EQ(p3.data, std::vector<std::string>{for3});
  EXPECT_EQ(g6.data, (std::vector<std::string>{for3, for1}));
  EXPECT_EQ(g4.data, std::vector<std::string>{for1});
  EXPECT_EQ(p1.data, std::vector<std::string>{for1});
  EXPECT_TRUE(p2.data.empty());
  for (Proc* p : {&p1, &p2, &p3, &g4, &g5, &g6}) {
    EXPECT_EQ(p->mr->counters().stub_at_destination, 0u) << "node " << p->id;
  }
}

// Redundant gateways 3 (the tree's) and 4 between rings 1 and 2. A message
// of ring 1 for ring 1 reaches ring 2 as a stub; gateway 4, on ring 1 too,
// gets that stub before ring 1 delivers the message itself to it.
TEST(MultiRing, Filter_StubFirstAtADestinationTakesTheLaterFullCopy) {
  MultiRingConfig shape;
  shape.rings = {1, 2};
  shape.links = {GatewayLink{3, 1, 2}, GatewayLink{4, 1, 2}};
  Bus bus;
  Proc p1(bus, 1, {1}, shape), p2(bus, 2, {2}, shape);
  Proc g3(bus, 3, {1, 2}, shape), g4(bus, 4, {1, 2}, shape);
  bus.Configure(1, {&p1, &g3, &g4});
  bus.Configure(2, {&p2, &g3, &g4});
  auto settle = [&] {
    for (int i = 0; i < 3; ++i) {
      bus.Pump();
      g3.FireTimer();
      g4.FireTimer();
    }
    bus.Pump();
  };
  settle();
  const std::string payload = "ring-1-only";
  ASSERT_TRUE(p1.mr
                  ->Submit(std::vector<uint8_t>(payload.begin(), payload.end()), Guarantee::kAgreed,
                           std::vector<RingNumber>{1}, 0, p1)
                  .ok());
  ASSERT_EQ(bus.queued[1].size(), 1u);
  const Bus::Frame original = bus.queued[1].front();
  bus.members[1] = {&p1, &g3};  // ring 1 delivers to gateway 4 last
  bus.PumpRing(1);
  bus.members[1] = {&p1, &g3, &g4};
  bus.PumpRing(2);  // gateway 3's stub
  EXPECT_EQ(g3.mr->counters().stubs_forwarded, 1u);
  Delivery d;
  d.config_id = {1, bus.config_seq[1]};
  d.sender = original.sender;
  d.payload = original.bytes;
  g4.mr->HandleRingDelivery(1, d, 0, g4);
  settle();
  EXPECT_EQ(g4.data, std::vector<std::string>{payload});
  EXPECT_EQ(p1.data, g4.data);
  EXPECT_EQ(g4.keys, p1.keys);
  EXPECT_TRUE(p2.data.empty());
  EXPECT_EQ(g4.mr->counters().stub_at_destination, 0u);
  EXPECT_EQ(p2.mr->counters().filtered_skipped, 1u);
}

}  // namespace
}  // namespace totem::core
