// Unit tests of the Admin service's pure parts: the majority rule behind
// GetRingResponse.primary, the ring state and configuration conversions,
// and that totem::Counters::Fields lists every counter (the one name list
// GetCounters serves).
#include "admin_service.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace totemkv::server {
namespace {

namespace pb = totemkv::admin::v1;

std::vector<ClusterMember> Cluster(std::vector<totem::NodeId> ids) {
  std::vector<ClusterMember> c;
  for (totem::NodeId id : ids) c.push_back({"n" + std::to_string(id), id, "127.0.0.1", 1, {}});
  return c;
}

TEST(AdminServiceTest, HoldsMajority_StrictMajorityOfConfiguredMembers) {
  const std::vector<ClusterMember> three = Cluster({1, 2, 3});
  EXPECT_TRUE(HoldsMajority({1, 2, 3}, three));
  EXPECT_TRUE(HoldsMajority({1, 3}, three));
  EXPECT_FALSE(HoldsMajority({2}, three));
  EXPECT_FALSE(HoldsMajority({}, three));
  EXPECT_FALSE(HoldsMajority({1, 2}, Cluster({1, 2, 3, 4})));  // a tie is not a majority
  EXPECT_FALSE(HoldsMajority({1, 7, 8}, three));               // unknown ids do not count
  EXPECT_TRUE(HoldsMajority({5}, Cluster({5})));
}

TEST(AdminServiceTest, RingStateToProto_EveryState) {
  EXPECT_EQ(RingStateToProto(totem::RingState::kOperational), pb::RING_STATE_OPERATIONAL);
  EXPECT_EQ(RingStateToProto(totem::RingState::kGather), pb::RING_STATE_GATHER);
  EXPECT_EQ(RingStateToProto(totem::RingState::kCommit), pb::RING_STATE_COMMIT);
  EXPECT_EQ(RingStateToProto(totem::RingState::kRecovery), pb::RING_STATE_RECOVERY);
}

TEST(AdminServiceTest, ConfigurationToProto_CopiesEveryField) {
  Replicator::ConfigurationRecord r;
  r.event.kind = totem::ConfigurationKind::kTransitional;
  r.event.id = {2, 77};
  r.event.members = {2, 3};
  r.event.left = {1};
  r.time_unix_us = 1234;
  pb::ConfigurationEvent e;
  ConfigurationToProto(r, &e);
  EXPECT_EQ(e.kind(), pb::CONFIGURATION_KIND_TRANSITIONAL);
  EXPECT_EQ(e.id().representative(), 2u);
  EXPECT_EQ(e.id().seq(), 77u);
  EXPECT_EQ(std::vector<uint32_t>(e.members().begin(), e.members().end()),
            (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(e.joined_size(), 0);
  EXPECT_EQ(std::vector<uint32_t>(e.left().begin(), e.left().end()), std::vector<uint32_t>{1});
  EXPECT_EQ(e.time_unix_us(), 1234);
}

TEST(AdminServiceTest, CountersFields_ListsEveryCounterOnce) {
  const totem::Counters c;
  // Counters holds only uint64_t fields; Fields() must name each of them.
  EXPECT_EQ(c.Fields().size() * sizeof(uint64_t), sizeof(totem::Counters));
  std::set<std::string_view> names;
  for (const auto& [name, value] : c.Fields()) {
    EXPECT_TRUE(names.insert(name).second) << name;
    EXPECT_EQ(value, 0u);
  }
  totem::Counters d;
  d.token_rotations = 7;
  d.send_errors = 9;
  EXPECT_NE(d.ToString().find("token_rotations=7"), std::string::npos);
  EXPECT_NE(d.ToString().find("send_errors=9"), std::string::npos);
}

}  // namespace
}  // namespace totemkv::server
