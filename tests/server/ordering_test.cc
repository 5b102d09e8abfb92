// Unit tests of the multi-ring Ordering's mapping of global configurations
// (totem/core/multi_ring.h) onto the replication engine's EVS inputs
// (server/ordering.h EngineEvents): first configuration, growth, loss of a
// ring, and a repeated id.
#include "ordering.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace totemkv::server {
namespace {

using Ids = std::vector<totem::NodeId>;

totem::core::GlobalConfiguration Global(uint64_t seq, Ids members) {
  totem::core::GlobalConfiguration g;
  g.id = {members.empty() ? totem::kNoNode : *std::min_element(members.begin(), members.end()),
          seq};
  g.members = std::move(members);
  return g;
}

TEST(EngineEventsTest, EngineEvents_FirstIsRegularOnly) {
  const std::vector<totem::ConfigurationEvent> e = EngineEvents(nullptr, Global(7, {3, 1, 2}));
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].kind, totem::ConfigurationKind::kRegular);
  EXPECT_EQ(e[0].id, (totem::ConfigurationId{1, 7}));
  EXPECT_EQ(e[0].members, (Ids{1, 2, 3}));  // sorted, as the engine expects
  EXPECT_EQ(e[0].joined, (Ids{1, 2, 3}));
  EXPECT_TRUE(e[0].left.empty());
}

TEST(EngineEventsTest, EngineEvents_ChangeIsTransitionalThenRegular) {
  const totem::ConfigurationEvent prev = EngineEvents(nullptr, Global(7, {1, 2, 3, 4, 9})).back();
  // The gateway (9) left: ring 1's side keeps 1 and 2.
  std::vector<totem::ConfigurationEvent> e = EngineEvents(&prev, Global(8, {1, 2}));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].kind, totem::ConfigurationKind::kTransitional);
  EXPECT_EQ(e[0].id, (totem::ConfigurationId{1, 8}));
  EXPECT_EQ(e[0].members, (Ids{1, 2}));
  EXPECT_EQ(e[0].left, (Ids{3, 4, 9}));
  EXPECT_EQ(e[1].kind, totem::ConfigurationKind::kRegular);
  EXPECT_EQ(e[1].members, (Ids{1, 2}));
  EXPECT_TRUE(e[1].joined.empty());
  EXPECT_EQ(e[1].left, (Ids{3, 4, 9}));
  // It comes back.
  e = EngineEvents(&e[1], Global(9, {1, 2, 3, 4, 9}));
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].members, (Ids{1, 2}));
  EXPECT_TRUE(e[0].left.empty());
  EXPECT_EQ(e[1].joined, (Ids{3, 4, 9}));
  EXPECT_EQ(e[1].id, (totem::ConfigurationId{1, 9}));
}

TEST(EngineEventsTest, EngineEvents_SameIdIsNothing) {
  const totem::ConfigurationEvent prev = EngineEvents(nullptr, Global(7, {1, 2})).back();
  EXPECT_TRUE(EngineEvents(&prev, Global(7, {1, 2})).empty());
  // Same members, new id (a ring re-formed): a new configuration for the
  // engine, so it runs its state exchange again.
  EXPECT_EQ(EngineEvents(&prev, Global(10, {1, 2})).size(), 2u);
}

}  // namespace
}  // namespace totemkv::server
