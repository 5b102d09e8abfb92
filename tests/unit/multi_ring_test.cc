// Unit tests of the pure multiple-ring layer (totem/core/multi_ring.h) over
// perfect fake rings: each ring is one FIFO delivered to all its members in
// the same order, configuration events are given by the test, and the
// gateway's guarantee-vector timer fires only when a test fires it.
#include "totem/core/multi_ring.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

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
  }
  void Deliver(const MultiDelivery& d) override {
    data.emplace_back(d.payload.begin(), d.payload.end());
    keys.push_back(d.key);
    guarantees.push_back(d.guarantee);
  }
  void DeliverTopology(const TopologyEvent& ev) override { topology.push_back(ev); }
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
  truncated[1] = 1;
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

}  // namespace
}  // namespace totem::core
