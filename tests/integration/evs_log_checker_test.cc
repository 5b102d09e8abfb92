// Tests of the offline EVS checker (evs_log_checker.h): a correct history
// with a crash, a partition and a merge passes, and each kind of bad history
// it claims to catch is caught. A checker that accepts everything would make
// the real-process tests meaningless.
#include "evs_log_checker.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace totem::testing {
namespace {

std::string Header(int node) {
  return "# totem-node delivery log node=" + std::to_string(node) + " incarnation=1\n";
}

// Nodes 1,2,3 in ring 1:10; node 3 fails; 1 and 2 deliver the rest of the
// old ring in the transitional configuration, then 1:20 = {1,2}.
std::vector<ProcessLog> GoodHistory() {
  const std::string common =
      "conf regular 1:10 1,2,3\n"
      "msg regular 1:10 1 a 1 agreed\n"
      "msg regular 1:10 3 c 1 agreed\n"
      "msg regular 1:10 2 b 1 safe\n";
  const std::string tail12 =
      "conf transitional 1:20 1,2\n"
      "msg transitional 1:20 3 c 2 agreed\n"
      "conf regular 1:20 1,2\n"
      "msg regular 1:20 2 b 2 agreed\n"
      "msg regular 1:20 1 a 2 agreed\n";
  return {
      ParseDeliveryLog(Header(1) + common + tail12 + "# end delivered=6\n", "node1"),
      ParseDeliveryLog(Header(2) + common + tail12 + "# end delivered=6\n", "node2"),
      // Node 3 was killed: a prefix with a torn last line.
      ParseDeliveryLog(Header(3) + common + "msg regular 1:10 3 c 2 ag", "node3"),
  };
}

TEST(EvsLogChecker, GoodHistory_Passes) {
  const EvsReport r = CheckEvs(GoodHistory());
  EXPECT_TRUE(r.ok()) << r.Summary();
  EXPECT_EQ(r.messages, 6u);
  EXPECT_EQ(r.regular_configs, 2u);
}

TEST(EvsLogChecker, DifferentOrder_Caught) {
  std::vector<ProcessLog> logs = GoodHistory();
  std::swap(logs[1].events[1], logs[1].events[2]);  // node 2 swaps two messages
  const EvsReport r = CheckEvs(logs);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.Summary().find("no single total order"), std::string::npos) << r.Summary();
}

TEST(EvsLogChecker, ConfigurationAtDifferentPoint_Caught) {
  // Node 2 delivers 3#2 before the transitional configuration, node 1 after.
  std::vector<ProcessLog> logs = GoodHistory();
  ProcessLog& n2 = logs[1];
  std::swap(n2.events[4], n2.events[5]);
  n2.events[4].transitional = false;
  n2.events[4].id = {1, 10};
  const EvsReport r = CheckEvs(logs);
  EXPECT_FALSE(r.ok()) << r.Summary();
}

TEST(EvsLogChecker, Duplicate_Caught) {
  std::vector<ProcessLog> logs = GoodHistory();
  logs[0].events.insert(logs[0].events.begin() + 2, logs[0].events[1]);
  const EvsReport r = CheckEvs(logs);
  EXPECT_NE(r.Summary().find("delivered twice"), std::string::npos) << r.Summary();
}

TEST(EvsLogChecker, MembershipDisagreement_Caught) {
  std::vector<ProcessLog> logs = GoodHistory();
  logs[1].events[6].members = {1, 2, 3};  // node 2's regular 1:20
  const EvsReport r = CheckEvs(logs);
  EXPECT_NE(r.Summary().find("has members"), std::string::npos) << r.Summary();
}

TEST(EvsLogChecker, FailureAtomicityViolation_Caught) {
  std::vector<ProcessLog> logs = GoodHistory();
  logs[1].events.erase(logs[1].events.begin() + 5);  // node 2 misses 3#2 in the transitional
  const EvsReport r = CheckEvs(logs);
  EXPECT_NE(r.Summary().find("delivered different sets"), std::string::npos) << r.Summary();
}

TEST(EvsLogChecker, DeliveryOutsideCurrentConfiguration_Caught) {
  std::vector<ProcessLog> logs = GoodHistory();
  logs[0].events[7].id = {1, 10};  // a message of 1:20 labelled 1:10
  const EvsReport r = CheckEvs(logs);
  EXPECT_NE(r.Summary().find("but the current configuration is"), std::string::npos) << r.Summary();
}

TEST(EvsLogChecker, RingSeqNotIncreasing_Caught) {
  const std::string log = Header(1) +
                          "conf regular 1:10 1\n"
                          "conf regular 1:9 1\n";
  const EvsReport r = CheckEvs({ParseDeliveryLog(log, "node1")});
  EXPECT_NE(r.Summary().find("did not increase"), std::string::npos) << r.Summary();
}

TEST(EvsLogChecker, PartitionsMayDiffer_ButNotInOrder) {
  // {1,2} and {3} each order their own traffic after ring 1:10 splits.
  const std::string base =
      "conf regular 1:10 1,2,3\n"
      "msg regular 1:10 1 a 1 agreed\n";
  const std::string left =
      "conf transitional 1:20 1,2\n"
      "conf regular 1:20 1,2\n"
      "msg regular 1:20 1 a 2 agreed\n";
  const std::string right =
      "conf transitional 3:21 3\n"
      "conf regular 3:21 3\n"
      "msg regular 3:21 3 c 1 agreed\n";
  const EvsReport r = CheckEvs({ParseDeliveryLog(Header(1) + base + left, "node1"),
                                ParseDeliveryLog(Header(2) + base + left, "node2"),
                                ParseDeliveryLog(Header(3) + base + right, "node3")});
  EXPECT_TRUE(r.ok()) << r.Summary();
}

}  // namespace
}  // namespace totem::testing
