// Unit tests of the simulator's checker: fabricated delivery histories, one
// per guarantee, each of which the checker must reject (and a good history
// it must accept), so a passing simulation run cannot mean a blind checker.
// CheckerTest covers the static-membership mode (one ring, the single-ring
// guarantees); EvsCheckerTest covers extended virtual synchrony with
// configuration changes, crashes and restarts.
#include "totem/sim/checker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace totem::sim {
namespace {

constexpr uint64_t kSeed = 7;
const RingId kRing{1, 1};

// A two-node history builder: each node's core state is faked so that, by
// default, every delivery looks like a correct one.
class CheckerTest : public ::testing::Test {
 protected:
  CheckerTest() : checker_({1, 2}, 64, /*static_membership=*/true) {}

  ConfigurationEvent Config() const {
    ConfigurationEvent e;
    e.kind = ConfigurationKind::kRegular;
    e.id = kRing;
    e.members = {1, 2};
    e.joined = {1, 2};
    return e;
  }

  CoreView View(uint64_t frame_seq) const {
    CoreView v;
    v.ring_id = kRing;
    v.aru = frame_seq;
    v.delivered_up_to = frame_seq;
    v.safe_up_to = frame_seq;
    v.high_seq = frame_seq;
    return v;
  }

  void Submit(MessageKey key, Guarantee g = Guarantee::kAgreed, size_t size = 40) {
    checker_.OnSubmitted(key, g, MakePayload(kSeed, key, size));
  }

  void ConfigureAll() {
    checker_.OnConfiguration(1, Config(), View(0));
    checker_.OnConfiguration(2, Config(), View(0));
  }

  // Delivers `key` at `node` in frame `frame_seq`, with the payload that was
  // submitted for it (unless `payload` is given).
  void Deliver(NodeId node, MessageKey key, uint64_t frame_seq, Guarantee g = Guarantee::kAgreed,
               bool all_received = true, const std::vector<uint8_t>* payload = nullptr) {
    std::vector<uint8_t> p = payload ? *payload : MakePayload(kSeed, key, 40);
    Delivery d;
    d.config_id = kRing;
    d.sender = key.sender;
    d.guarantee = g;
    d.frame_seq = frame_seq;
    d.payload = p;
    checker_.OnDelivery(node, d, View(frame_seq), all_received);
  }

  Checker checker_;
};

TEST_F(CheckerTest, Finish_AcceptsIdenticalCompleteSequences) {
  Submit({1, 1});
  Submit({2, 1}, Guarantee::kSafe);
  Submit({1, 2});
  ConfigureAll();
  for (NodeId n : {1u, 2u}) {
    Deliver(n, {1, 1}, 1);
    Deliver(n, {2, 1}, 2, Guarantee::kSafe);
    Deliver(n, {1, 2}, 2);
  }
  checker_.Finish();
  EXPECT_TRUE(checker_.ok()) << checker_.first_violation();
  EXPECT_TRUE(checker_.AllDelivered());
  EXPECT_EQ(checker_.deliveries(), 6u);
}

TEST_F(CheckerTest, OnDelivery_DifferentOrderAtTwoNodesIsViolation) {
  Submit({1, 1});
  Submit({2, 1});
  ConfigureAll();
  Deliver(1, {1, 1}, 1);
  Deliver(1, {2, 1}, 2);
  Deliver(2, {2, 1}, 1);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(checker_.first_violation().find("total order"), std::string::npos)
      << checker_.first_violation();
}

TEST_F(CheckerTest, OnDelivery_DuplicateIsViolation) {
  Submit({1, 1});
  ConfigureAll();
  Deliver(1, {1, 1}, 1);
  Deliver(1, {1, 1}, 1);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(checker_.first_violation().find("duplicate"), std::string::npos);
}

TEST_F(CheckerTest, OnDelivery_NeverSubmittedIsViolation) {
  Submit({1, 1});
  ConfigureAll();
  Deliver(1, {1, 2}, 1);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(checker_.first_violation().find("invented"), std::string::npos);
}

TEST_F(CheckerTest, OnDelivery_UnrecognisablePayloadIsViolation) {
  Submit({1, 1});
  ConfigureAll();
  std::vector<uint8_t> junk(40, 0xAB);
  Deliver(1, {1, 1}, 1, Guarantee::kAgreed, true, &junk);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(checker_.first_violation().find("invented"), std::string::npos);
}

TEST_F(CheckerTest, OnDelivery_OneFlippedPayloadByteIsViolation) {
  Submit({1, 1});
  ConfigureAll();
  std::vector<uint8_t> p = MakePayload(kSeed, {1, 1}, 40);
  p[39] ^= 0x10;
  Deliver(1, {1, 1}, 1, Guarantee::kAgreed, true, &p);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(checker_.first_violation().find("differs"), std::string::npos);
}

TEST_F(CheckerTest, OnDelivery_TruncatedPayloadIsViolation) {
  Submit({1, 1});
  ConfigureAll();
  std::vector<uint8_t> p = MakePayload(kSeed, {1, 1}, 40);
  p.pop_back();
  Deliver(1, {1, 1}, 1, Guarantee::kAgreed, true, &p);
  EXPECT_FALSE(checker_.ok());
}

TEST_F(CheckerTest, OnDelivery_SenderFifoGapIsViolation) {
  Submit({1, 1});
  Submit({1, 2});
  ConfigureAll();
  Deliver(1, {1, 2}, 1);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(checker_.first_violation().find("FIFO"), std::string::npos);
}

TEST_F(CheckerTest, OnDelivery_WrongGuaranteeIsViolation) {
  Submit({1, 1}, Guarantee::kSafe);
  ConfigureAll();
  Deliver(1, {1, 1}, 1, Guarantee::kAgreed);
  EXPECT_FALSE(checker_.ok());
}

TEST_F(CheckerTest, OnDelivery_SafeBeforeAllReceivedIsViolation) {
  Submit({1, 1}, Guarantee::kSafe);
  ConfigureAll();
  Deliver(1, {1, 1}, 1, Guarantee::kSafe, /*all_received=*/false);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(checker_.first_violation().find("before every member"), std::string::npos);
}

TEST_F(CheckerTest, OnDelivery_SafeAboveSafeUpToIsViolation) {
  Submit({1, 1}, Guarantee::kSafe);
  ConfigureAll();
  std::vector<uint8_t> p = MakePayload(kSeed, {1, 1}, 40);
  Delivery d;
  d.config_id = kRing;
  d.sender = 1;
  d.guarantee = Guarantee::kSafe;
  d.frame_seq = 3;
  d.payload = p;
  CoreView v = View(3);
  v.safe_up_to = 2;
  checker_.OnDelivery(1, d, v, true);
  EXPECT_FALSE(checker_.ok());
}

TEST_F(CheckerTest, OnDelivery_FrameSeqBackwardsIsViolation) {
  Submit({1, 1});
  Submit({2, 1});
  ConfigureAll();
  Deliver(1, {1, 1}, 5);
  Deliver(1, {2, 1}, 4);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(checker_.first_violation().find("backwards"), std::string::npos);
}

TEST_F(CheckerTest, OnDelivery_PastAGapIsViolation) {
  Submit({1, 1});
  ConfigureAll();
  std::vector<uint8_t> p = MakePayload(kSeed, {1, 1}, 40);
  Delivery d;
  d.config_id = kRing;
  d.sender = 1;
  d.frame_seq = 4;
  d.payload = p;
  CoreView v = View(4);
  v.aru = 2;  // frames 3.. are missing at this node
  checker_.OnDelivery(1, d, v, true);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(checker_.first_violation().find("beyond the node's aru"), std::string::npos);
}

TEST_F(CheckerTest, OnDelivery_SkippedFramesAreViolation) {
  Submit({1, 1});
  ConfigureAll();
  std::vector<uint8_t> p = MakePayload(kSeed, {1, 1}, 40);
  Delivery d;
  d.config_id = kRing;
  d.sender = 1;
  d.frame_seq = 6;
  d.payload = p;
  CoreView v = View(6);
  v.delivered_up_to = 3;  // frames 4 and 5 were never delivered
  checker_.OnDelivery(1, d, v, true);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(checker_.first_violation().find("contiguous"), std::string::npos);
}

TEST_F(CheckerTest, OnDelivery_WrongConfigurationIdIsViolation) {
  Submit({1, 1});
  ConfigureAll();
  std::vector<uint8_t> p = MakePayload(kSeed, {1, 1}, 40);
  Delivery d;
  d.config_id = RingId{1, 2};
  d.sender = 1;
  d.frame_seq = 1;
  d.payload = p;
  checker_.OnDelivery(1, d, View(1), true);
  EXPECT_FALSE(checker_.ok());
}

TEST_F(CheckerTest, OnDelivery_BeforeConfigurationIsViolation) {
  Submit({1, 1});
  Deliver(1, {1, 1}, 1);
  EXPECT_FALSE(checker_.ok());
}

TEST_F(CheckerTest, OnConfiguration_WrongMembersIsViolation) {
  ConfigurationEvent e = Config();
  e.members = {1};
  e.joined = {1};
  checker_.OnConfiguration(1, e, View(0));
  EXPECT_FALSE(checker_.ok());
}

TEST_F(CheckerTest, OnConfiguration_SecondEventIsViolation) {
  ConfigureAll();
  EXPECT_TRUE(checker_.ok());
  checker_.OnConfiguration(1, Config(), View(0));
  EXPECT_FALSE(checker_.ok());
}

TEST_F(CheckerTest, OnStep_BufferOverBoundIsViolation) {
  ConfigureAll();
  CoreView v = View(0);
  v.buffered_frames = 65;
  checker_.OnStep(1, v, 0);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(checker_.first_violation().find("receive buffer"), std::string::npos);
}

TEST_F(CheckerTest, OnStep_SafeAboveSomeMembersAruIsViolation) {
  ConfigureAll();
  checker_.OnStep(1, View(5), /*min_aru=*/4);
  EXPECT_FALSE(checker_.ok());
}

TEST_F(CheckerTest, OnStep_AruGoingBackwardsIsViolation) {
  ConfigureAll();
  checker_.OnStep(1, View(5), 5);
  EXPECT_TRUE(checker_.ok());
  checker_.OnStep(1, View(4), 4);
  EXPECT_FALSE(checker_.ok());
}

TEST_F(CheckerTest, Finish_MissingDeliveryIsLivenessViolation) {
  Submit({1, 1});
  Submit({1, 2});
  ConfigureAll();
  Deliver(1, {1, 1}, 1);
  Deliver(1, {1, 2}, 1);
  Deliver(2, {1, 1}, 1);
  EXPECT_TRUE(checker_.ok());
  checker_.Finish();
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(checker_.first_violation().find("liveness"), std::string::npos);
  EXPECT_NE(checker_.first_violation().find("msg(1#2)"), std::string::npos);
}

TEST_F(CheckerTest, Withdraw_DeliveredRefusedMessageIsViolation) {
  Submit({1, 1});
  ConfigureAll();
  Deliver(1, {1, 1}, 1);
  checker_.Withdraw({1, 1});
  EXPECT_FALSE(checker_.ok());
}

// Three nodes; histories with configuration changes. Ring ids: A = 1:4
// (all three), then a split into 1:8 = {1,2} and 3:8 = {3}.
class EvsCheckerTest : public ::testing::Test {
 protected:
  static constexpr RingId kA{1, 4};
  static constexpr RingId kB{1, 8};
  static constexpr RingId kC{3, 8};

  EvsCheckerTest() : checker_({1, 2, 3}, 64) {}

  static std::vector<NodeId> Minus(std::vector<NodeId> a, const std::vector<NodeId>& b) {
    std::erase_if(a, [&](NodeId x) { return std::find(b.begin(), b.end(), x) != b.end(); });
    return a;
  }

  // A core view that the checker cannot hold a delivery against (the node is
  // already recovering into a new ring), unless `ring` is the delivery's.
  static CoreView ViewIn(RingId ring, uint64_t frame_seq = 0) {
    CoreView v;
    v.ring_id = ring;
    v.aru = v.delivered_up_to = v.safe_up_to = v.high_seq = frame_seq;
    return v;
  }

  void Regular(NodeId node, RingId id, std::vector<NodeId> members,
               std::vector<NodeId> transitional = {}, std::vector<NodeId> previous = {}) {
    ConfigurationEvent e;
    e.kind = ConfigurationKind::kRegular;
    e.id = id;
    e.members = members;
    e.joined = previous.empty() ? members : Minus(members, transitional);
    e.left = Minus(previous, members);
    checker_.OnConfiguration(node, e, ViewIn(id));
    config_[node] = {ConfigurationKind::kRegular, id};
  }

  void Transitional(NodeId node, RingId next, std::vector<NodeId> members,
                    std::vector<NodeId> previous) {
    ConfigurationEvent e;
    e.kind = ConfigurationKind::kTransitional;
    e.id = next;
    e.members = members;
    e.left = Minus(previous, members);
    checker_.OnConfiguration(node, e, ViewIn(next));
    config_[node] = {ConfigurationKind::kTransitional, next};
  }

  void Submit(MessageKey key, Guarantee g = Guarantee::kAgreed) {
    checker_.OnSubmitted(key, g, MakePayload(kSeed, key, 40));
  }

  // Delivers `key` at `node` in the node's current configuration. By
  // default the view shows a node that has moved on (no core-view checks).
  void Deliver(NodeId node, MessageKey key, uint64_t frame_seq, Guarantee g = Guarantee::kAgreed,
               bool all_received = true, std::optional<CoreView> view = std::nullopt) {
    std::vector<uint8_t> p = MakePayload(kSeed, key, 40);
    Delivery d;
    d.config_kind = config_[node].first;
    d.config_id = config_[node].second;
    d.sender = key.sender;
    d.guarantee = g;
    d.frame_seq = frame_seq;
    d.payload = p;
    checker_.OnDelivery(node, d, view ? *view : ViewIn(RingId{9, 99}), all_received);
  }

  // All three in A, each delivering a then b.
  void StartInA() {
    Submit({1, 1});
    Submit({2, 1});
    for (NodeId n : {1u, 2u, 3u}) Regular(n, kA, {1, 2, 3});
    for (NodeId n : {1u, 2u, 3u}) {
      Deliver(n, {1, 1}, 1);
      Deliver(n, {2, 1}, 2);
    }
  }

  // The split: {1,2} move to B, {3} to C, with `in_t` delivered in the
  // transitional configuration by nodes 1 and 2.
  void Split(const std::vector<MessageKey>& in_t12 = {}) {
    for (NodeId n : {1u, 2u}) {
      Transitional(n, kB, {1, 2}, {1, 2, 3});
      uint64_t seq = 3;
      for (const MessageKey& k : in_t12) Deliver(n, k, seq++);
      Regular(n, kB, {1, 2}, {1, 2}, {1, 2, 3});
    }
    Transitional(3, kC, {3}, {1, 2, 3});
    Regular(3, kC, {3}, {3}, {1, 2, 3});
  }

  std::string First() const { return checker_.first_violation(); }

  Checker checker_;
  std::map<NodeId, std::pair<ConfigurationKind, RingId>> config_;
};

TEST_F(EvsCheckerTest, Finish_AcceptsAGoodPartitionHistory) {
  StartInA();
  Submit({3, 1});
  Split({{3, 1}});
  Submit({1, 2}, Guarantee::kSafe);
  for (NodeId n : {1u, 2u}) Deliver(n, {1, 2}, 1, Guarantee::kSafe);
  // Node 3 crashed before its own message reached it.
  checker_.OnCrash(3);
  EXPECT_TRUE(checker_.Quiescent());
  checker_.Finish();
  EXPECT_TRUE(checker_.ok()) << First();
}

TEST_F(EvsCheckerTest, Finish_FailureAtomicityViolation) {
  StartInA();
  Submit({3, 1});
  for (NodeId n : {1u, 2u}) Transitional(n, kB, {1, 2}, {1, 2, 3});
  Deliver(1, {3, 1}, 3);  // node 2 never delivers it in the transitional configuration
  for (NodeId n : {1u, 2u}) Regular(n, kB, {1, 2}, {1, 2}, {1, 2, 3});
  checker_.OnCrash(3);
  EXPECT_TRUE(checker_.ok()) << First();
  checker_.Finish();
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("failure atomicity"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, Finish_EndingTogetherWithDifferentMessagesIsViolation) {
  StartInA();
  Submit({1, 2});
  Deliver(1, {1, 2}, 3);  // nodes 2 and 3 end the run without it
  checker_.Finish();
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("agreement"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, OnConfiguration_DisagreeingMembershipIsConsensusViolation) {
  StartInA();
  for (NodeId n : {1u, 2u}) Transitional(n, kB, {1, 2}, {1, 2, 3});
  Regular(1, kB, {1, 2}, {1, 2}, {1, 2, 3});
  EXPECT_TRUE(checker_.ok()) << First();
  Regular(2, kB, {1, 2, 3}, {1, 2}, {1, 2, 3});
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("consensus"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, Finish_OppositeOrdersInTwoPartitionsAreTotalOrderViolation) {
  Submit({1, 1});
  Submit({2, 1});
  Submit({3, 1});
  for (NodeId n : {1u, 2u, 3u}) Regular(n, kA, {1, 2, 3});
  // After A breaks, nodes 1 and 3 each deliver the last two messages of A in
  // their transitional configurations, in opposite orders.
  Transitional(1, kB, {1}, {1, 2, 3});
  Deliver(1, {2, 1}, 2);
  Deliver(1, {3, 1}, 3);
  Regular(1, kB, {1}, {1}, {1, 2, 3});
  Transitional(3, kC, {3}, {1, 2, 3});
  Deliver(3, {3, 1}, 2);
  Deliver(3, {2, 1}, 3);
  EXPECT_TRUE(checker_.ok()) << First();
  for (NodeId n : {1u, 2u, 3u}) checker_.OnCrash(n);  // only the order is judged
  checker_.Finish();
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("total order"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, Finish_ThreeWayCycleIsTotalOrderViolation) {
  // Pairwise consistent, globally cyclic: 1 sees a<b, 2 sees b<c, 3 sees c<a.
  Submit({1, 1});
  Submit({2, 1});
  Submit({3, 1});
  for (NodeId n : {1u, 2u, 3u}) Regular(n, kA, {1, 2, 3});
  const std::pair<MessageKey, MessageKey> pairs[] = {
      {{1, 1}, {2, 1}}, {{2, 1}, {3, 1}}, {{3, 1}, {1, 1}}};
  const RingId next[] = {RingId{1, 8}, RingId{2, 8}, RingId{3, 8}};
  for (NodeId n : {1u, 2u, 3u}) {
    Transitional(n, next[n - 1], {n}, {1, 2, 3});
    Deliver(n, pairs[n - 1].first, 1);
    Deliver(n, pairs[n - 1].second, 2);
    Regular(n, next[n - 1], {n}, {n}, {1, 2, 3});
  }
  for (NodeId n : {1u, 2u, 3u}) checker_.OnCrash(n);
  checker_.Finish();
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("no common total order"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, Finish_ConfigurationEventOrderedDifferentlyIsViolation) {
  StartInA();
  Submit({3, 1});
  // Node 1 delivers msg(3#1) before the transitional configuration, node 2
  // after it: the configuration change and the message are in opposite
  // orders (which also breaks failure atomicity for A).
  Deliver(1, {3, 1}, 3);
  for (NodeId n : {1u, 2u}) Transitional(n, kB, {1, 2}, {1, 2, 3});
  Deliver(2, {3, 1}, 3);
  for (NodeId n : {1u, 2u}) Regular(n, kB, {1, 2}, {1, 2}, {1, 2, 3});
  checker_.OnCrash(3);
  EXPECT_TRUE(checker_.ok()) << First();
  checker_.Finish();
  EXPECT_GE(checker_.violations(), 2u);  // atomicity, then the order
  EXPECT_NE(First().find("failure atomicity"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, OnDelivery_RegularConfigurationGapIsViolation) {
  Submit({1, 1});
  Submit({2, 1});
  for (NodeId n : {1u, 2u, 3u}) Regular(n, kA, {1, 2, 3});
  Deliver(1, {1, 1}, 1);
  Deliver(1, {2, 1}, 2);
  Deliver(2, {2, 1}, 2);  // skipped msg(1#1) in a regular configuration
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("total order: position 0"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, OnDelivery_DuplicateAcrossConfigurationsIsViolation) {
  StartInA();
  for (NodeId n : {1u, 2u}) Transitional(n, kB, {1, 2}, {1, 2, 3});
  Deliver(1, {1, 1}, 1);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("duplicate"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, OnDelivery_MessageInTwoRegularConfigurationsIsViolation) {
  Submit({1, 1});
  for (NodeId n : {1u, 2u, 3u}) Regular(n, kA, {1, 2, 3});
  Deliver(3, {1, 1}, 1);
  for (NodeId n : {1u, 2u}) Transitional(n, kB, {1, 2}, {1, 2, 3});
  for (NodeId n : {1u, 2u}) Regular(n, kB, {1, 2}, {1, 2}, {1, 2, 3});
  Deliver(1, {1, 1}, 1);  // ordered again on the new ring
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("belongs to"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, OnDelivery_WrongConfigurationKindIsViolation) {
  StartInA();
  for (NodeId n : {1u, 2u}) Transitional(n, kB, {1, 2}, {1, 2, 3});
  Submit({3, 1});
  config_[1] = {ConfigurationKind::kRegular, kB};  // claims the new regular configuration
  Deliver(1, {3, 1}, 3);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("delivery marked regular"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, Finish_MissingSelfDeliveryIsViolation) {
  StartInA();
  Submit({1, 2});
  for (NodeId n : {2u, 3u}) Deliver(n, {1, 2}, 3);
  checker_.Finish();
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("self-delivery"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, Finish_CrashedSenderIsExemptFromSelfDelivery) {
  StartInA();
  Submit({3, 1});  // accepted, then node 3 crashes before sending it
  checker_.OnCrash(3);
  EXPECT_TRUE(checker_.Quiescent());
  checker_.Finish();
  EXPECT_TRUE(checker_.ok()) << First();
}

TEST_F(EvsCheckerTest, Quiescent_FalseWhileOwnMessageUndelivered) {
  StartInA();
  EXPECT_TRUE(checker_.Quiescent());
  Submit({1, 2});
  EXPECT_FALSE(checker_.Quiescent());
}

TEST_F(EvsCheckerTest, Finish_SafeMessageMissingAtALiveMemberIsViolation) {
  Submit({1, 1}, Guarantee::kSafe);
  for (NodeId n : {1u, 2u, 3u}) Regular(n, kA, {1, 2, 3});
  Deliver(1, {1, 1}, 1, Guarantee::kSafe, true, ViewIn(kA, 1));
  checker_.OnCrash(1);
  // Node 2 and 3 never deliver it, and move on together.
  for (NodeId n : {2u, 3u}) Transitional(n, RingId{2, 8}, {2, 3}, {1, 2, 3});
  for (NodeId n : {2u, 3u}) Regular(n, RingId{2, 8}, {2, 3}, {2, 3}, {1, 2, 3});
  EXPECT_TRUE(checker_.ok()) << First();
  checker_.Finish();
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("safe delivery"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, OnDelivery_SafeBeforeAMemberStillInTheRingHasItIsViolation) {
  Submit({1, 1}, Guarantee::kSafe);
  for (NodeId n : {1u, 2u, 3u}) Regular(n, kA, {1, 2, 3});
  Deliver(1, {1, 1}, 1, Guarantee::kSafe, /*all_received=*/false, ViewIn(kA, 1));
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("before every member"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, OnDelivery_RecoveryDeliveryIsNotHeldAgainstTheNewRing) {
  // The same call as above, but the node has moved on to another ring: the
  // observers no longer describe A, so only the end-of-run check applies.
  Submit({1, 1}, Guarantee::kSafe);
  for (NodeId n : {1u, 2u, 3u}) Regular(n, kA, {1, 2, 3});
  Deliver(1, {1, 1}, 1, Guarantee::kSafe, /*all_received=*/false, ViewIn(kB, 0));
  EXPECT_TRUE(checker_.ok()) << First();
}

TEST_F(EvsCheckerTest, OnConfiguration_RegularWithoutTransitionalIsViolation) {
  StartInA();
  Regular(1, kB, {1, 2}, {1, 2}, {1, 2, 3});
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("without a transitional"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, OnConfiguration_TransitionalNotSubsetIsViolation) {
  Regular(1, RingId{1, 4}, {1, 2});
  Transitional(1, kB, {1, 3}, {1, 2});
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("not a subset"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, OnConfiguration_WrongJoinedListIsViolation) {
  StartInA();
  Transitional(1, kB, {1, 2}, {1, 2, 3});
  ConfigurationEvent e;
  e.kind = ConfigurationKind::kRegular;
  e.id = kB;
  e.members = {1, 2};
  e.joined = {2};  // 2 moved with 1 from A: it did not join
  e.left = {3};
  checker_.OnConfiguration(1, e, ViewIn(kB));
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("expected joined {} left {3}"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, OnConfiguration_RepresentativeNotLowestIsViolation) {
  Regular(2, RingId{2, 4}, {1, 2});
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("lowest member"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, OnConfiguration_RingSeqNotIncreasingIsViolation) {
  Regular(1, RingId{1, 8}, {1});
  Transitional(1, RingId{1, 4}, {1}, {1});
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("newer ring"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, OnConfiguration_RingIdReusedAfterRestartIsViolation) {
  Regular(1, RingId{1, 4}, {1});
  checker_.OnCrash(1);
  checker_.OnRestart(1, /*with_state=*/false);
  Regular(1, RingId{1, 4}, {1});
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("second time"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest,
       OnConfiguration_RepresentedSeqNotIncreasingAfterRestartWithStateIsViolation) {
  Regular(1, RingId{1, 8}, {1});
  checker_.OnCrash(1);
  checker_.OnRestart(1, /*with_state=*/true);
  Regular(1, RingId{1, 6}, {1});
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("had represented"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, OnRestart_StartsAFreshProcess) {
  StartInA();
  checker_.OnCrash(3);
  EXPECT_FALSE(checker_.IsUp(3));
  checker_.OnRestart(3, true);
  EXPECT_TRUE(checker_.IsUp(3));
  Regular(3, RingId{3, 12}, {3});  // fresh: only a regular configuration
  Submit({3, 1});
  Deliver(3, {3, 1}, 1);
  EXPECT_TRUE(checker_.ok()) << First();
  checker_.OnRestart(3, true);  // not crashed
  EXPECT_FALSE(checker_.ok());
}

TEST_F(EvsCheckerTest, OnDelivery_AtACrashedNodeIsViolation) {
  StartInA();
  checker_.OnCrash(2);
  Submit({1, 2});
  Deliver(2, {1, 2}, 3);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("crashed node"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, OnDelivery_SenderOrderBrokenIsViolation) {
  Submit({1, 1});
  Submit({1, 2});
  for (NodeId n : {1u, 2u, 3u}) Regular(n, kA, {1, 2, 3});
  Deliver(3, {1, 2}, 1);
  Deliver(3, {1, 1}, 2);
  EXPECT_FALSE(checker_.ok());
  EXPECT_NE(First().find("sender order"), std::string::npos) << First();
}

TEST_F(EvsCheckerTest, Unconverged_NamesWhatIsMissing) {
  for (NodeId n : {1u, 2u, 3u}) Regular(n, kA, {1, 2, 3});
  std::map<NodeId, CoreView> live;
  for (NodeId n : {1u, 2u, 3u}) {
    live[n] = ViewIn(kA);
    live[n].ring_members = {1, 2, 3};
  }
  EXPECT_EQ(checker_.Unconverged(live), "");
  live[2].state = MemberState::kGather;
  EXPECT_NE(checker_.Unconverged(live).find("gather"), std::string::npos);
  live[2].state = MemberState::kOperational;
  live[3].ring_id = kC;
  EXPECT_NE(checker_.Unconverged(live).find("is in ring"), std::string::npos);
  live[3].ring_id = kA;
  live.erase(3);  // node 3 is down: the ring must be exactly {1,2}
  for (auto& [n, v] : live) v.ring_members = {1, 2, 3};
  EXPECT_NE(checker_.Unconverged(live).find("live nodes are {1,2}"), std::string::npos);
  for (auto& [n, v] : live) {
    v.ring_members = {1, 2};
    v.ring_id = kB;  // a ring nobody delivered a configuration for
  }
  EXPECT_NE(checker_.Unconverged(live).find("has not installed"), std::string::npos);
}

TEST(PayloadTest, MakePayload_RoundTripsKeyAndDependsOnSeed) {
  std::vector<uint8_t> a = MakePayload(1, {3, 9}, 100);
  std::vector<uint8_t> b = MakePayload(2, {3, 9}, 100);
  ASSERT_EQ(a.size(), 100u);
  auto key = ParsePayload(a);
  ASSERT_TRUE(key.has_value());
  EXPECT_EQ(key->sender, 3u);
  EXPECT_EQ(key->index, 9u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a, MakePayload(1, {3, 9}, 100));
  EXPECT_EQ(MakePayload(1, {3, 9}, 1).size(), kPayloadHeaderBytes);
}

}  // namespace
}  // namespace totem::sim
