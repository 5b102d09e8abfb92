// Unit tests of the pure pieces that put process groups on the multiple-ring
// network: the destination rings of a group multicast
// (core/group_routing.h) and the global configuration -> EVS events mapping
// (core/global_evs.h).
#include "totem/core/group_routing.h"

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "totem/core/global_evs.h"

namespace totem::core {
namespace {

// Ring 1: 1, 2, 3 (gateway); ring 2: 3, 4, 5; ring 3: 6.
const std::map<RingNumber, std::vector<NodeId>> kRings = {{1, {1, 2, 3}}, {2, {3, 4, 5}}, {3, {6}}};

TEST(RouteGroupMulticast_Test, MembersOnOneRing_OnlyThatRing) {
  const GroupRoute r = RouteGroupMulticast(kRings, {2, 1}, /*origin_ring=*/2);
  EXPECT_FALSE(r.everywhere);
  EXPECT_EQ(r.rings, (std::vector<RingNumber>{1}));
}

TEST(RouteGroupMulticast_Test, MembersOnTwoRings_BothRingsSorted) {
  const GroupRoute r = RouteGroupMulticast(kRings, {5, 1, 5}, 1);
  EXPECT_FALSE(r.everywhere);
  EXPECT_EQ(r.rings, (std::vector<RingNumber>{1, 2}));
}

TEST(RouteGroupMulticast_Test, GatewayMember_NeedsOnlyOneOfItsRings) {
  EXPECT_EQ(RouteGroupMulticast(kRings, {3}, 3).rings, (std::vector<RingNumber>{1}));
  // Ring 2 is needed for 4 anyway; 3 (lower id) picked ring 1 first.
  EXPECT_EQ(RouteGroupMulticast(kRings, {3, 4}, 3).rings, (std::vector<RingNumber>{1, 2}));
  EXPECT_EQ(RouteGroupMulticast(kRings, {3, 6}, 1).rings, (std::vector<RingNumber>{1, 3}));
}

TEST(RouteGroupMulticast_Test, NoMembers_OriginRingOnly) {
  const GroupRoute r = RouteGroupMulticast(kRings, {}, 2);
  EXPECT_FALSE(r.everywhere);
  EXPECT_EQ(r.rings, (std::vector<RingNumber>{2}));
}

TEST(RouteGroupMulticast_Test, MemberOnUnknownRing_Everywhere) {
  // 9 is in no ring of the configuration (its report is not in yet).
  EXPECT_TRUE(RouteGroupMulticast(kRings, {1, 9}, 1).everywhere);
  EXPECT_TRUE(RouteGroupMulticast({}, {1}, 1).everywhere);
}

TEST(RouteGroupMulticast_Test, MoreRingsThanAMessageMayName_Everywhere) {
  std::map<RingNumber, std::vector<NodeId>> rings;
  std::vector<NodeId> members;
  for (NodeId n = 1; n <= MultiRing::kMaxDestinations + 1; ++n) {
    rings[n] = {n};
    members.push_back(n);
  }
  EXPECT_TRUE(RouteGroupMulticast(rings, members, 1).everywhere);
  members.pop_back();
  const GroupRoute r = RouteGroupMulticast(rings, members, 1);
  EXPECT_FALSE(r.everywhere);
  EXPECT_EQ(r.rings.size(), MultiRing::kMaxDestinations);
}

GlobalConfiguration Global(uint64_t seq, std::vector<NodeId> members) {
  GlobalConfiguration g;
  g.id = ConfigurationId{members.empty() ? kNoNode : members.front(), seq};
  g.members = std::move(members);
  return g;
}

TEST(GlobalEvsEvents_Test, First_RegularOnly) {
  const std::vector<ConfigurationEvent> e = GlobalEvsEvents(nullptr, Global(5, {3, 1, 1}));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, ConfigurationKind::kRegular);
  EXPECT_EQ(e[0].members, (std::vector<NodeId>{1, 3}));
  EXPECT_EQ(e[0].joined, (std::vector<NodeId>{1, 3}));
  EXPECT_TRUE(e[0].left.empty());
}

TEST(GlobalEvsEvents_Test, Change_TransitionalThenRegular) {
  const ConfigurationEvent prev = GlobalEvsEvents(nullptr, Global(5, {1, 2, 3})).back();
  const std::vector<ConfigurationEvent> e = GlobalEvsEvents(&prev, Global(9, {1, 3, 4}));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].kind, ConfigurationKind::kTransitional);
  EXPECT_EQ(e[0].members, (std::vector<NodeId>{1, 3}));
  EXPECT_EQ(e[0].left, (std::vector<NodeId>{2}));
  EXPECT_EQ(e[1].kind, ConfigurationKind::kRegular);
  EXPECT_EQ(e[1].id, (ConfigurationId{1, 9}));
  EXPECT_EQ(e[1].joined, (std::vector<NodeId>{4}));
  EXPECT_EQ(e[1].left, (std::vector<NodeId>{2}));
}

TEST(GlobalEvsEvents_Test, SameId_Nothing) {
  const ConfigurationEvent prev = GlobalEvsEvents(nullptr, Global(5, {1, 2})).back();
  EXPECT_TRUE(GlobalEvsEvents(&prev, Global(5, {1, 2})).empty());
}

}  // namespace
}  // namespace totem::core
