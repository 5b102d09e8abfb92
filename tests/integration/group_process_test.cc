// The process group API with real processes over UDP on loopback: three
// `totem-group-node` processes on one ring join overlapping groups
// (1: A,B  2: B,C  3: A,B,C) and multicast to A, B, C and A+C. One is
// killed with SIGKILL under traffic. Every process logs its group views and
// deliveries in order; the test checks offline that every two members of a
// group saw the same views and the same messages in the same order, that the
// killed process left B and C at the same point of the order at both
// survivors, and that nothing was delivered to a non-member.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "test_util.h"

namespace totem {
namespace {

using std::chrono::seconds;
using testing::Child;
using testing::FreeUdpPorts;
using testing::ReadFile;
using testing::RunCommand;
using testing::TempDir;
using testing::WaitFor;

constexpr const char* kGroupNodeBin = TOTEM_GROUP_NODE_BIN;
constexpr const char* kKeygenBin = TOTEM_KEYGEN_BIN;

std::vector<std::string> Lines(const std::string& path) { return testing::CompleteLines(path); }

size_t CountPrefix(const std::vector<std::string>& lines, const std::string& prefix) {
  return static_cast<size_t>(std::count_if(
      lines.begin(), lines.end(), [&](const std::string& l) { return l.rfind(prefix, 0) == 0; }));
}

std::set<std::string> Split(const std::string& s, char sep) {
  std::set<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, sep)) {
    if (!item.empty()) out.insert(item);
  }
  return out;
}

std::string Field(const std::string& line, const std::string& key) {
  const size_t at = line.find(" " + key + "=");
  if (at == std::string::npos) return "";
  const size_t begin = at + key.size() + 2;
  return line.substr(begin, line.find(' ', begin) - begin);
}

// The events of one group in a log, up to the "finished" line if any: its
// views, and the messages addressed to it.
std::vector<std::string> GroupEvents(const std::vector<std::string>& lines,
                                     const std::string& group) {
  std::vector<std::string> out;
  for (const std::string& l : lines) {
    if (l == "finished") break;
    std::istringstream in(l);
    std::string kind;
    std::string what;
    in >> kind >> what;
    if (kind == "view" && what == group) {
      // joined/left are relative to each member's previous view: compare
      // the member list and the reason.
      out.push_back("view members=" + Field(l, "members") + " " + Field(l, "reason"));
    } else if (kind == "msg" && Split(what, ',').count(group) != 0) {
      out.push_back(l);
    }
  }
  return out;
}

// From the first view of `group` listing both `a` and `b` on.
std::vector<std::string> SinceBoth(const std::vector<std::string>& events, uint32_t a, uint32_t b) {
  for (size_t i = 0; i < events.size(); ++i) {
    if (events[i].rfind("view ", 0) != 0) continue;
    const std::set<std::string> m = Split(Field(events[i], "members"), ',');
    if (m.count(std::to_string(a)) != 0 && m.count(std::to_string(b)) != 0) {
      return {events.begin() + static_cast<long>(i), events.end()};
    }
  }
  return {};
}

// True if the ring had a configuration other than {1,2,3} and {1,3} after it
// first formed with all three (a spurious partition under CPU starvation:
// then the sides legitimately deliver different messages, and only the
// order of what both delivered must agree).
bool SpuriousPartition(const std::vector<std::string>& lines) {
  bool formed = false;
  for (const std::string& l : lines) {
    if (l.rfind("conf ", 0) != 0) continue;
    const std::string m = Field(l, "members");
    if (m == "1,2,3") formed = true;
    if (formed && m != "1,2,3" && m != "1,3") return true;
  }
  return false;
}

// The messages both sequences contain appear in the same relative order.
void ExpectConsistentOrder(const std::vector<std::string>& a, const std::vector<std::string>& b,
                           const std::string& what) {
  auto msgs = [](const std::vector<std::string>& v) {
    std::vector<std::string> out;
    for (const std::string& l : v) {
      if (l.rfind("msg ", 0) == 0) out.push_back(l);
    }
    return out;
  };
  const std::vector<std::string> ma = msgs(a);
  const std::vector<std::string> mb = msgs(b);
  const auto [ca, cb] = testing::SharedInOrder(ma, mb);
  EXPECT_EQ(ca, cb) << what;
}

TEST(GroupProcess, ThreeProcessesOverlappingGroups_SameOrderAndViews_KilledOneLeavesEverywhere) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string key = dir.path() + "/cluster.key";
  ASSERT_EQ(RunCommand({kKeygenBin, key}, dir.path() + "/keygen.log"), 0);
  const std::vector<uint16_t> ports = FreeUdpPorts(3);
  ASSERT_EQ(ports.size(), 3u);
  std::string peers;
  for (size_t i = 0; i < 3; ++i) {
    peers += (peers.empty() ? "" : ",") + std::to_string(i + 1) +
             "@127.0.0.1:" + std::to_string(ports[i]);
  }
  const std::map<uint32_t, std::string> groups = {{1, "A,B"}, {2, "B,C"}, {3, "A,B,C"}};
  std::map<uint32_t, std::string> logs;
  std::map<uint32_t, Child> children;
  for (const auto& [id, gs] : groups) {
    logs[id] = dir.path() + "/groups" + std::to_string(id) + ".log";
    children.emplace(
        id, Child({kGroupNodeBin, "--id", std::to_string(id), "--peers", peers, "--key-file", key,
                   "--groups", gs, "--targets", "A;B;C;A+C", "--expect", "A=1,3;B=1,2,3;C=2,3",
                   "--rate", "400", "--log", logs[id], "--timeout-s", "40"},
                  dir.path() + "/node" + std::to_string(id) + ".out"));
  }
  auto delivered = [&](uint32_t id) { return CountPrefix(Lines(logs[id]), "msg "); };
  ASSERT_TRUE(
      WaitFor([&] { return delivered(1) >= 300 && delivered(2) >= 300 && delivered(3) >= 300; },
              seconds(20)))
      << children.at(1).Output() << children.at(2).Output() << children.at(3).Output();

  children.at(2).Kill();  // SIGKILL under traffic
  auto left2 = [&](uint32_t id) {
    for (const std::string& l : Lines(logs[id])) {
      if (l.rfind("view B ", 0) == 0 && Field(l, "left") == "2") return true;
    }
    return false;
  };
  ASSERT_TRUE(WaitFor([&] { return left2(1) && left2(3); }, seconds(10)));
  const size_t at1 = delivered(1);
  const size_t at3 = delivered(3);
  ASSERT_TRUE(
      WaitFor([&] { return delivered(1) >= at1 + 200 && delivered(3) >= at3 + 200; }, seconds(10)));
  for (uint32_t id : {1u, 3u}) children.at(id).Signal(SIGUSR1);
  for (uint32_t id : {1u, 3u}) {
    const std::optional<int> rc = children.at(id).Wait(seconds(20));
    ASSERT_TRUE(rc.has_value()) << "node " << id << " did not finish\n" << children.at(id).Output();
    ASSERT_EQ(*rc, 0) << children.at(id).Output();
  }

  std::map<uint32_t, std::vector<std::string>> lines;
  for (uint32_t id : {1u, 2u, 3u}) lines[id] = Lines(logs[id]);
  for (uint32_t id : {1u, 3u}) {
    ASSERT_EQ(CountPrefix(lines[id], "finished"), 1u) << "node " << id;
    EXPECT_NE(children.at(id).Output().find("drop_malformed=0 "), std::string::npos);
  }

  const bool spurious =
      SpuriousPartition(lines[1]) || SpuriousPartition(lines[2]) || SpuriousPartition(lines[3]);
  if (spurious) {
    // Rare, from the ring (token loss under CPU starvation), not the groups.
    for (const auto& [g, a, b] : std::vector<std::tuple<std::string, uint32_t, uint32_t>>{
             {"A", 1, 3}, {"B", 1, 3}, {"B", 1, 2}, {"C", 2, 3}}) {
      ExpectConsistentOrder(
          GroupEvents(lines[a], g), GroupEvents(lines[b], g),
          "group " + g + " at " + std::to_string(a) + " and " + std::to_string(b));
    }
    GTEST_SKIP() << "the ring partitioned spuriously; checked order consistency only";
  }

  // Survivors: identical per-group histories (views and messages) from the
  // point both are members to the end of the run.
  for (const std::string g : {"A", "B"}) {
    const std::vector<std::string> e1 = SinceBoth(GroupEvents(lines[1], g), 1, 3);
    const std::vector<std::string> e3 = SinceBoth(GroupEvents(lines[3], g), 1, 3);
    ASSERT_GT(e1.size(), 50u) << "group " << g;
    EXPECT_EQ(e1, e3) << "group " << g << " differs between nodes 1 and 3";
  }
  // Node 2 left B at the same point at both survivors, and C at node 3.
  const std::vector<std::string> b1 = SinceBoth(GroupEvents(lines[1], "B"), 1, 3);
  const auto leave_b = std::find(b1.begin(), b1.end(), "view members=1,3 configuration");
  ASSERT_NE(leave_b, b1.end());
  EXPECT_GT(std::count_if(leave_b, b1.end(),
                          [](const std::string& l) { return l.rfind("msg ", 0) == 0; }),
            20);
  const std::vector<std::string> c3 = GroupEvents(lines[3], "C");
  EXPECT_NE(std::find(c3.begin(), c3.end(), "view members=3 configuration"), c3.end());
  // The killed node's history is a prefix of the survivors' while it lived.
  for (const std::string g : {"B"}) {
    const std::vector<std::string> e2 = SinceBoth(GroupEvents(lines[2], g), 1, 2);
    const std::vector<std::string> e1 = SinceBoth(GroupEvents(lines[1], g), 1, 2);
    ASSERT_GT(e2.size(), 50u);
    ASSERT_LE(e2.size(), e1.size());
    EXPECT_TRUE(std::equal(e2.begin(), e2.end(), e1.begin())) << "group " << g;
  }
  {
    const std::vector<std::string> e2 = SinceBoth(GroupEvents(lines[2], "C"), 2, 3);
    const std::vector<std::string> e3 = SinceBoth(GroupEvents(lines[3], "C"), 2, 3);
    ASSERT_GT(e2.size(), 50u);
    ASSERT_LE(e2.size(), e3.size());
    EXPECT_TRUE(std::equal(e2.begin(), e2.end(), e3.begin())) << "group C";
  }
  // Nothing reached a non-member: node 1 is not in C, node 2 not in A.
  for (const std::string& l : lines[1]) {
    if (l.rfind("msg C ", 0) == 0) ADD_FAILURE() << "node 1 got " << l;
  }
  for (const std::string& l : lines[2]) {
    if (l.rfind("msg A ", 0) == 0) ADD_FAILURE() << "node 2 got " << l;
  }
}

}  // namespace
}  // namespace totem
