// Unit tests of the simulator's checker: fabricated delivery histories, one
// per guarantee, each of which the checker must reject (and a good history
// it must accept), so a passing simulation run cannot mean a blind checker.
#include "totem/sim/checker.h"

#include <gtest/gtest.h>

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
  CheckerTest() : checker_({1, 2}, 64) {}

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
