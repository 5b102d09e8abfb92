// Unit tests of the pure process group layer (totem/core/process_groups.h),
// fed by a fake totally ordered stream with EVS configuration events: joins,
// leaves and multicasts to intersecting groups, processors leaving the
// configuration, partitions merging, a configuration change in the middle
// of a sync, limits, and malformed group messages.
#include "totem/core/process_groups.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace totem::core {
namespace {

std::string Ids(const std::vector<NodeId>& ids) {
  std::string s;
  for (NodeId id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

std::string Names(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ",") + n;
  return s;
}

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }

std::vector<uint8_t> Ok(StatusOr<std::vector<uint8_t>> b) {
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  return b.ok() ? b.value() : std::vector<uint8_t>{};
}

// A fake ordered stream: every processor has a ProcessGroups layer and a
// queue of messages it submitted; the test decides when queued messages are
// ordered and to which component they are delivered.
class FakeStream {
 public:
  explicit FakeStream(const std::vector<NodeId>& nodes) {
    for (NodeId n : nodes) layers_.emplace(n, ProcessGroups(n));
  }

  // Installs regular configuration `id` in the component `members`: each
  // member that was in a regular configuration first gets a transitional
  // one (its old members that move with it), as EVS delivers.
  void Regular(const std::vector<NodeId>& members, uint64_t seq) {
    const RingId id{members.front(), seq};
    for (NodeId n : members) {
      if (in_transition_.erase(n) == 0 && !prev_[n].empty()) {
        std::vector<NodeId> moved;
        for (NodeId m : prev_[n]) {
          if (std::find(members.begin(), members.end(), m) != members.end()) moved.push_back(m);
        }
        Transitional(n, id, moved);
      }
      ConfigurationEvent e{ConfigurationKind::kRegular, id, members, {}, {}};
      Feed(n, layers_.at(n).OnConfiguration(e));
      prev_[n] = members;
      config_[n] = {id, ConfigurationKind::kRegular};
    }
  }

  // Delivers only the transitional configuration to `n` (the next regular
  // one comes with Regular).
  void Transitional(NodeId n, RingId next_id, const std::vector<NodeId>& members) {
    ConfigurationEvent t{ConfigurationKind::kTransitional, next_id, members, {}, {}};
    log_[n].push_back("conf transitional " + Ids(members));
    Feed(n, layers_.at(n).OnConfiguration(t));
    config_[n] = {next_id, ConfigurationKind::kTransitional};
    in_transition_.insert(n);
  }

  void Submit(NodeId sender, std::vector<uint8_t> bytes) { queue_[sender].push_back(bytes); }
  void Join(NodeId n, const std::string& g) { Submit(n, Ok(EncodeGroupJoin(g))); }
  void Leave(NodeId n, const std::string& g) { Submit(n, Ok(EncodeGroupLeave(g))); }
  void Multicast(NodeId n, const std::vector<std::string>& groups, const std::string& payload) {
    Submit(n, Ok(EncodeGroupMulticast(groups, Bytes(payload))));
  }

  // Orders the next queued message of `sender` and delivers it to every
  // processor of `component` (which must share one configuration).
  void OrderOne(NodeId sender, const std::vector<NodeId>& component) {
    ASSERT_FALSE(queue_[sender].empty());
    const std::vector<uint8_t> bytes = queue_[sender].front();
    queue_[sender].pop_front();
    for (NodeId n : component) {
      Delivery d;
      d.sender = sender;
      d.config_id = config_[n].first;
      d.config_kind = config_[n].second;
      d.payload = bytes;
      Feed(n, layers_.at(n).OnDelivery(d));
    }
  }

  // Orders everything queued by members of `component`, round robin.
  void Flush(const std::vector<NodeId>& component) {
    bool any = true;
    while (any) {
      any = false;
      for (NodeId s : component) {
        if (!queue_[s].empty()) {
          OrderOne(s, component);
          any = true;
        }
      }
    }
  }

  // Drops what `n` had queued (it crashed, or its messages were never sent).
  void DropQueue(NodeId n) { queue_[n].clear(); }

  ProcessGroups& layer(NodeId n) { return layers_.at(n); }
  const std::vector<std::string>& log(NodeId n) { return log_[n]; }
  // The log lines about `group` (views and deliveries addressed to it).
  std::vector<std::string> GroupLog(NodeId n, const std::string& group) {
    std::vector<std::string> out;
    for (const std::string& line : log_[n]) {
      if (line.find(" " + group + " ") != std::string::npos ||
          line.find("," + group + " ") != std::string::npos ||
          line.find(" " + group + ",") != std::string::npos ||
          line.find("," + group + ",") != std::string::npos) {
        out.push_back(line);
      }
    }
    return out;
  }
  std::vector<GroupView> views(NodeId n) { return views_[n]; }

 private:
  void Feed(NodeId n, GroupOutput out) {
    for (GroupEvent& e : out.events) {
      if (auto* v = std::get_if<GroupView>(&e)) {
        log_[n].push_back("view " + v->group + " members=" + Ids(v->members) + " " +
                          GroupViewReasonName(v->reason));
        views_[n].push_back(*v);
      } else {
        auto& d = std::get<GroupDeliveryEvent>(e);
        log_[n].push_back("msg " + Names(d.groups) + " from=" + std::to_string(d.sender) + " " +
                          std::string(d.payload.begin(), d.payload.end()));
      }
    }
    if (out.send.has_value()) queue_[n].push_back(*out.send);
  }

  std::map<NodeId, ProcessGroups> layers_;
  std::map<NodeId, std::deque<std::vector<uint8_t>>> queue_;
  std::map<NodeId, std::vector<NodeId>> prev_;
  std::map<NodeId, std::pair<RingId, ConfigurationKind>> config_;
  std::set<NodeId> in_transition_;
  std::map<NodeId, std::vector<std::string>> log_;
  std::map<NodeId, std::vector<GroupView>> views_;
};

const std::vector<NodeId> kAll = {1, 2, 3};

// Two members' logs of one group from the point both have it: the later
// joiner's log starts with the view that added it, so the longer log is
// trimmed at the front to the same length.
void ExpectSameSinceBothIn(FakeStream& s, NodeId a, NodeId b, const std::string& group) {
  std::vector<std::string> la = s.GroupLog(a, group);
  std::vector<std::string> lb = s.GroupLog(b, group);
  ASSERT_FALSE(la.empty());
  ASSERT_FALSE(lb.empty());
  if (la.size() > lb.size()) la.erase(la.begin(), la.end() - static_cast<long>(lb.size()));
  if (lb.size() > la.size()) lb.erase(lb.begin(), lb.end() - static_cast<long>(la.size()));
  EXPECT_EQ(la, lb) << "group " << group << " at " << a << " and " << b;
}

TEST(ProcessGroups, JoinThenMulticast_DeliveredOnlyToMembersInOrder) {
  FakeStream s(kAll);
  s.Regular(kAll, 1);
  s.Flush(kAll);  // the syncs
  for (NodeId n : kAll) EXPECT_FALSE(s.layer(n).syncing());
  s.Join(1, "A");
  s.Join(3, "A");
  s.Join(2, "B");
  s.Flush(kAll);
  s.Multicast(2, {"A"}, "m1");  // open group: 2 is not in A
  s.Multicast(1, {"B"}, "m2");
  s.Flush(kAll);
  EXPECT_EQ(s.log(1), (std::vector<std::string>{"view A members=1 join", "view A members=1,3 join",
                                                "msg A from=2 m1"}));
  EXPECT_EQ(s.log(3), (std::vector<std::string>{"view A members=1,3 join", "msg A from=2 m1"}));
  EXPECT_EQ(s.log(2), (std::vector<std::string>{"view B members=2 join", "msg B from=1 m2"}));
  EXPECT_EQ(s.layer(2).counters().multicasts_not_member, 1u);
  for (NodeId n : kAll) {
    EXPECT_EQ(s.layer(n).MembersOf("A"), (std::vector<NodeId>{1, 3}));
    EXPECT_EQ(s.layer(n).MembersOf("B"), (std::vector<NodeId>{2}));
  }
  const std::vector<GroupView> v = s.views(3);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].joined, (std::vector<NodeId>{3}));
  EXPECT_EQ(v[0].config_id, (RingId{1, 1}));
}

TEST(ProcessGroups, Leave_FinalViewListsTheLeaverAndStopsDelivery) {
  FakeStream s(kAll);
  s.Regular(kAll, 1);
  s.Join(1, "A");
  s.Join(2, "A");
  s.Flush(kAll);
  s.Leave(2, "A");
  s.Multicast(3, {"A"}, "after-leave");
  s.Leave(2, "A");  // redundant
  s.Flush(kAll);
  const std::vector<GroupView> v = s.views(2);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[1].members, (std::vector<NodeId>{1}));
  EXPECT_EQ(v[1].left, (std::vector<NodeId>{2}));
  EXPECT_EQ(v[1].reason, GroupViewReason::kLeave);
  EXPECT_EQ(s.log(2).back(), "view A members=1 leave");
  EXPECT_EQ(s.log(1).back(), "msg A from=3 after-leave");
  EXPECT_TRUE(s.layer(2).own_groups().empty());
  EXPECT_EQ(s.layer(1).counters().leaves_redundant, 1u);
}

TEST(ProcessGroups, IntersectingGroups_EveryMemberSeesTheSameOrderPerGroupAndAcrossGroups) {
  FakeStream s(kAll);
  s.Regular(kAll, 1);
  const std::map<NodeId, std::vector<std::string>> joins = {
      {1, {"A", "B"}}, {2, {"B", "C"}}, {3, {"A", "B", "C"}}};
  for (const auto& [n, gs] : joins) {
    for (const std::string& g : gs) s.Join(n, g);
  }
  s.Flush(kAll);
  std::mt19937 rng(7);
  const std::vector<std::vector<std::string>> targets = {{"A"}, {"B"}, {"C"}, {"A", "C"}, {"D"}};
  std::map<NodeId, std::vector<std::string>> expected;  // payloads each should get
  for (int i = 0; i < 300; ++i) {
    const NodeId sender = kAll[rng() % 3];
    const auto& t = targets[rng() % targets.size()];
    const std::string payload = "p" + std::to_string(i);
    s.Multicast(sender, t, payload);
    s.OrderOne(sender, kAll);
    for (const auto& [n, gs] : joins) {
      bool member = false;
      for (const std::string& g : t) member |= std::count(gs.begin(), gs.end(), g) > 0;
      if (member) {
        expected[n].push_back("msg " + Names(t) + " from=" + std::to_string(sender) + " " +
                              payload);
      }
    }
  }
  for (NodeId n : kAll) {
    std::vector<std::string> got;
    for (const std::string& l : s.log(n)) {
      if (l.rfind("msg", 0) == 0) got.push_back(l);
    }
    EXPECT_EQ(got, expected[n]) << "node " << n;
  }
  // Per group: identical sequences at every member.
  ExpectSameSinceBothIn(s, 1, 3, "A");
  ExpectSameSinceBothIn(s, 1, 3, "B");
  ExpectSameSinceBothIn(s, 2, 3, "B");
  ExpectSameSinceBothIn(s, 2, 3, "C");
  EXPECT_GT(s.GroupLog(2, "C").size(), 20u);
}

TEST(ProcessGroups, ProcessorLeavesConfiguration_LeavesItsGroupsAtTheSamePointEverywhere) {
  FakeStream s(kAll);
  s.Regular(kAll, 1);
  for (NodeId n : kAll) s.Join(n, "A");
  s.Join(3, "B");
  s.Join(1, "B");
  s.Flush(kAll);
  s.Multicast(3, {"A"}, "before");
  s.Flush(kAll);
  // 3 crashes: 1 and 2 deliver a transitional configuration {1,2}, then a
  // message of the old configuration, then the regular {1,2}.
  s.Multicast(1, {"A", "B"}, "in-transitional");
  s.DropQueue(3);
  s.Transitional(1, RingId{1, 2}, {1, 2});
  s.Transitional(2, RingId{1, 2}, {1, 2});
  s.OrderOne(1, {1, 2});
  s.Regular({1, 2}, 2);
  s.Multicast(1, {"A"}, "during-sync");
  s.OrderOne(1, {1, 2});  // 1's sync
  s.OrderOne(1, {1, 2});  // held until 2's sync
  s.OrderOne(2, {1, 2});
  ExpectSameSinceBothIn(s, 1, 2, "A");
  const std::vector<std::string> log1 = s.log(1);
  // Order at 1 after "before": the configuration views, then the held
  // messages in order after the sync.
  const std::vector<std::string> expected_tail = {"msg A from=3 before",
                                                  "conf transitional 1,2",
                                                  "view A members=1,2 configuration",
                                                  "view B members=1 configuration",
                                                  "msg A,B from=1 in-transitional",
                                                  "msg A from=1 during-sync"};
  ASSERT_GE(log1.size(), expected_tail.size());
  EXPECT_EQ(
      std::vector<std::string>(log1.end() - static_cast<long>(expected_tail.size()), log1.end()),
      expected_tail);
  const std::vector<GroupView> v = s.views(2);
  EXPECT_EQ(v.back().left, (std::vector<NodeId>{3}));
  EXPECT_EQ(v.back().reason, GroupViewReason::kConfiguration);
  for (NodeId n : {1u, 2u}) {
    EXPECT_EQ(s.layer(n).counters().syncs_completed, 2u);
    EXPECT_EQ(s.layer(n).counters().messages_held, 1u);
  }
}

TEST(ProcessGroups, PartitionsMerge_StateIsTheUnionAndHeldMessagesFollowTheViews) {
  FakeStream s(kAll);
  s.Regular({1, 2}, 1);
  s.Regular({3}, 1);
  s.Join(1, "A");
  s.Join(2, "B");
  s.Flush({1, 2});
  s.Join(3, "A");
  s.Flush({3});
  s.Regular(kAll, 2);
  // Traffic ordered before all three syncs is held.
  s.OrderOne(3, kAll);  // 3's sync
  s.Multicast(2, {"A"}, "early");
  s.OrderOne(2, kAll);  // 2's sync
  s.OrderOne(2, kAll);  // "early": held (1's sync is missing)
  for (NodeId n : kAll) EXPECT_TRUE(s.layer(n).syncing());
  s.OrderOne(1, kAll);  // 1's sync completes it
  for (NodeId n : kAll) {
    EXPECT_FALSE(s.layer(n).syncing());
    EXPECT_EQ(s.layer(n).Snapshot(),
              (std::map<std::string, std::vector<NodeId>>{{"A", {1, 3}}, {"B", {2}}}));
  }
  EXPECT_EQ(s.log(1).back(), "msg A from=2 early");
  EXPECT_EQ(s.log(3).back(), "msg A from=2 early");
  EXPECT_EQ(s.log(1)[s.log(1).size() - 2], "view A members=1,3 sync");
  EXPECT_EQ(s.log(3)[s.log(3).size() - 2], "view A members=1,3 sync");
  // joined is relative to each side's previous view.
  EXPECT_EQ(s.views(1).back().joined, (std::vector<NodeId>{3}));
  EXPECT_EQ(s.views(3).back().joined, (std::vector<NodeId>{1}));
}

TEST(ProcessGroups, ConfigurationChangeDuringSync_ForcedCompletionKeepsMembersInStep) {
  FakeStream s(kAll);
  s.Regular(kAll, 1);
  s.Join(1, "A");
  s.Join(2, "A");
  s.Flush(kAll);
  s.Regular(kAll, 2);   // e.g. a merge with nobody new: everyone syncs again
  s.OrderOne(1, kAll);  // only 1's sync is ordered
  s.Multicast(1, {"A"}, "held");
  s.OrderOne(1, kAll);
  // 3 fails before 2's and 3's syncs are ordered.
  s.DropQueue(3);
  s.Transitional(1, RingId{1, 3}, {1, 2});
  s.Transitional(2, RingId{1, 3}, {1, 2});
  EXPECT_EQ(s.layer(1).MembersOf("A"), (std::vector<NodeId>{1}));  // 2 undeclared for now
  EXPECT_EQ(s.layer(2).MembersOf("A"), (std::vector<NodeId>{1}));
  EXPECT_EQ(s.layer(1).counters().syncs_forced, 1u);
  s.DropQueue(1);  // the stale syncs of configuration 1:2 would be dropped anyway
  s.DropQueue(2);
  s.Regular({1, 2}, 3);
  s.Flush({1, 2});
  for (NodeId n : {1u, 2u}) EXPECT_EQ(s.layer(n).MembersOf("A"), (std::vector<NodeId>{1, 2}));
  // 2's sync never arrived in 1:2, so at the forced completion 2 is in no
  // group: the held message goes to 1 only, and 2 is back at the next sync.
  const std::vector<std::string> views = {"view A members=1,2 join", "view A members=1 sync",
                                          "view A members=1,2 sync"};
  EXPECT_EQ(s.GroupLog(2, "A"), views);
  std::vector<std::string> at1 = views;
  at1.insert(at1.begin(), "view A members=1 join");
  at1.insert(at1.begin() + 3, "msg A from=1 held");
  EXPECT_EQ(s.GroupLog(1, "A"), at1);
}

TEST(ProcessGroups, StaleAndDuplicateSyncs_AreDroppedAndCounted) {
  FakeStream s({1, 2});
  s.Regular({1, 2}, 5);
  s.Submit(1, Ok(EncodeGroupSync(RingId{1, 4}, {"A"})));  // an older configuration's
  s.Submit(1, Ok(EncodeGroupSync(RingId{1, 5}, {"A"})));  // a second one for 1:5
  s.OrderOne(1, {1, 2});                                  // 1's own sync
  s.OrderOne(1, {1, 2});
  s.OrderOne(1, {1, 2});
  s.OrderOne(2, {1, 2});  // completes the sync
  s.Submit(2, Ok(EncodeGroupSync(RingId{1, 5}, {"A"})));
  s.Flush({1, 2});  // after completion every sync is stale
  for (NodeId n : {1u, 2u}) {
    EXPECT_EQ(s.layer(n).counters().drop_stale_sync, 2u);
    EXPECT_EQ(s.layer(n).counters().drop_duplicate_sync, 1u);
    EXPECT_EQ(s.layer(n).counters().syncs_completed, 1u);
    EXPECT_TRUE(s.layer(n).MembersOf("A").empty());
  }
}

TEST(ProcessGroups, TooManyGroupsPerProcessor_JoinsBeyondTheBoundDroppedEverywhere) {
  FakeStream s({1, 2});
  s.Regular({1, 2}, 1);
  for (size_t i = 0; i <= kMaxGroupsPerProcessor; ++i) s.Join(1, "g" + std::to_string(i));
  s.Flush({1, 2});
  for (NodeId n : {1u, 2u}) {
    EXPECT_EQ(s.layer(n).counters().drop_too_many_groups, 1u);
    EXPECT_EQ(s.layer(n).Snapshot().size(), kMaxGroupsPerProcessor);
  }
  EXPECT_EQ(s.layer(1).own_groups().size(), kMaxGroupsPerProcessor);
  // The full own state still fits one sync message.
  s.Regular({1, 2}, 2);
  s.Flush({1, 2});
  EXPECT_EQ(s.layer(2).Snapshot().size(), kMaxGroupsPerProcessor);
  EXPECT_EQ(s.layer(2).counters().syncs_completed, 2u);
}

TEST(ProcessGroups, MalformedMessages_DroppedAndCountedNeverApplied) {
  FakeStream s({1, 2});
  s.Regular({1, 2}, 1);
  s.Join(1, "A");
  s.Flush({1, 2});
  const std::vector<std::vector<uint8_t>> bad = {
      {},
      {kGroupMagic},
      {0x00, kGroupWireVersion, 1, 1, 'A'},
      {kGroupMagic, 9, 1, 1, 'A'},
      {kGroupMagic, kGroupWireVersion, 99},
      {kGroupMagic, kGroupWireVersion, 1, 0},                  // empty name
      {kGroupMagic, kGroupWireVersion, 1, 5, 'A'},             // truncated name
      {kGroupMagic, kGroupWireVersion, 1, 1, ' '},             // space in name
      {kGroupMagic, kGroupWireVersion, 1, 1, 'A', 'x'},        // trailing bytes
      {kGroupMagic, kGroupWireVersion, 3, 0},                  // no groups
      {kGroupMagic, kGroupWireVersion, 3, 2, 1, 'A', 1, 'A'},  // repeated group
      {kGroupMagic, kGroupWireVersion, 3, 17},                 // too many groups
      {kGroupMagic, kGroupWireVersion, 4, 1, 0, 0, 0},         // truncated sync
  };
  for (const auto& b : bad) s.Submit(2, b);
  s.Flush({1, 2});
  for (NodeId n : {1u, 2u}) {
    EXPECT_EQ(s.layer(n).counters().drop_malformed, bad.size());
    EXPECT_EQ(s.layer(n).Snapshot(), (std::map<std::string, std::vector<NodeId>>{{"A", {1}}}));
  }
  // Random mutations of valid messages never crash; each either decodes or
  // is counted.
  std::mt19937 rng(11);
  const std::vector<std::vector<uint8_t>> seeds = {
      Ok(EncodeGroupMulticast({"A", "bb", "ccc"}, Bytes("payload"))),
      Ok(EncodeGroupSync(RingId{1, 1}, {"A", "B"})), Ok(EncodeGroupJoin("zz"))};
  ProcessGroups layer(1);
  layer.OnConfiguration({ConfigurationKind::kRegular, RingId{1, 1}, {1}, {}, {}});
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> m = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 3);
    for (int e = 0; e < edits && !m.empty(); ++e) {
      switch (rng() % 3) {
        case 0:
          m[rng() % m.size()] = static_cast<uint8_t>(rng());
          break;
        case 1:
          m.resize(rng() % m.size());
          break;
        default:
          m.push_back(static_cast<uint8_t>(rng()));
      }
    }
    Delivery d;
    d.sender = 1 + rng() % 2;
    d.config_id = RingId{1, 1};
    d.payload = m;
    (void)layer.OnDelivery(d);
  }
  EXPECT_GT(layer.counters().drop_malformed, 0u);
}

TEST(ProcessGroups, Encode_RejectsBadNamesAndGroupListsWithPreciseErrors) {
  EXPECT_EQ(EncodeGroupJoin("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(EncodeGroupJoin(std::string(kMaxGroupNameBytes + 1, 'x'))
                .status()
                .message()
                .find("exceeds the limit of 128"),
            std::string::npos);
  EXPECT_NE(EncodeGroupJoin("a b").status().message().find("offset 1"), std::string::npos);
  EXPECT_TRUE(EncodeGroupJoin(std::string(kMaxGroupNameBytes, 'x')).ok());
  EXPECT_FALSE(EncodeGroupMulticast({}, Bytes("x")).ok());
  EXPECT_NE(EncodeGroupMulticast({"A", "A"}, Bytes("x")).status().message().find("named twice"),
            std::string::npos);
  std::vector<std::string> many;
  for (size_t i = 0; i <= kMaxGroupsPerMessage; ++i) many.push_back("g" + std::to_string(i));
  EXPECT_FALSE(EncodeGroupMulticast(many, Bytes("x")).ok());
  many.pop_back();
  EXPECT_TRUE(EncodeGroupMulticast(many, Bytes("x")).ok());
  std::vector<std::string> all;
  for (size_t i = 0; i < kMaxGroupsPerProcessor; ++i) {
    all.push_back(std::string(kMaxGroupNameBytes - 4, 'n') + std::to_string(1000 + i));
  }
  EXPECT_EQ(Ok(EncodeGroupSync(RingId{1, 1}, all)).size(), kMaxGroupSyncBytes);
}

TEST(ProcessGroups, AddressedGroups_TheGatewayFilterHook) {
  StatusOr<GroupAddress> a = AddressedGroups(Ok(EncodeGroupMulticast({"x", "y"}, Bytes("p"))));
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->to_all);
  EXPECT_EQ(a->groups, (std::vector<std::string>{"x", "y"}));
  StatusOr<GroupAddress> j = AddressedGroups(Ok(EncodeGroupJoin("x")));
  ASSERT_TRUE(j.ok());
  EXPECT_TRUE(j->to_all);
  EXPECT_FALSE(AddressedGroups(Bytes("garbage")).ok());
  ProcessGroups layer(1);
  layer.OnConfiguration({ConfigurationKind::kRegular, RingId{1, 1}, {1, 2}, {}, {}});
  EXPECT_FALSE(layer.HasMembers({"x"}));
}

}  // namespace
}  // namespace totem::core
