// Process groups over the multiple-ring network with real processes: two
// rings of `totem-group-node` processes on loopback (ring 1: 1, 2, 3; ring
// 2: 3, 4, 5; 3 is the gateway). Group "left" has members only on ring 1
// (1, 2), group "both" everywhere. Processes 1 (ring 1) and 4 (ring 2)
// multicast to "left" and "both" in turn. The test checks offline that
// "left" messages reached no process on ring 2 and that the gateway sent
// ring 2 only payload-less stubs for them (its stubs_forwarded counter, and
// ring 2's filtered_skipped), that every two processes saw the messages they
// share in the same order, and that process 5, joining "left" later from
// ring 2, gets the later "left" messages: per sender, a suffix of what the
// ring 1 members got after its join (group_routing.h: a sender's messages
// submitted before it delivered the join may miss it, nothing after).
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace totem {
namespace {

using std::chrono::seconds;
using testing::Child;
using testing::FieldOfLine;
using testing::FreeUdpPorts;
using testing::ReadFile;
using testing::RunCommand;
using testing::TempDir;
using testing::WaitFor;

constexpr const char* kGroupNodeBin = TOTEM_GROUP_NODE_BIN;
constexpr const char* kKeygenBin = TOTEM_KEYGEN_BIN;

// Complete lines of a log, up to a "finished" line.
std::vector<std::string> Lines(const std::string& path) {
  return testing::CompleteLines(path, "finished");
}

bool IsMsg(const std::string& l, const std::string& groups) {
  return l.rfind("msg " + groups + " ", 0) == 0;
}

size_t Count(const std::vector<std::string>& lines, const std::string& groups) {
  return static_cast<size_t>(std::count_if(lines.begin(), lines.end(),
                                           [&](const std::string& l) { return IsMsg(l, groups); }));
}

// Index of the first line starting with `prefix`, or lines.size().
size_t Find(const std::vector<std::string>& lines, const std::string& prefix) {
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind(prefix, 0) == 0) return i;
  }
  return lines.size();
}

std::vector<std::string> Msgs(const std::vector<std::string>& lines) {
  std::vector<std::string> out;
  for (const std::string& l : lines) {
    if (l.rfind("msg ", 0) == 0) out.push_back(l);
  }
  return out;
}

// The messages both logs contain appear in the same relative order.
void ExpectConsistentOrder(const std::vector<std::string>& a, const std::vector<std::string>& b,
                           const std::string& what) {
  const std::vector<std::string> ma = Msgs(a);
  const std::vector<std::string> mb = Msgs(b);
  const auto [ca, cb] = testing::SharedInOrder(ma, mb);
  EXPECT_FALSE(ca.empty()) << what;
  EXPECT_EQ(ca, cb) << what;
}

uint64_t Counter(const std::string& output, const std::string& name) {
  return std::strtoull(FieldOfLine(output, "FINISHED", name).c_str(), nullptr, 10);
}

TEST(GroupMultiRingProcess, TwoRingsGateway_LeftStaysOnRing1_BothEverywhere_LateJoinerGetsLater) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string key = dir.path() + "/cluster.key";
  ASSERT_EQ(RunCommand({kKeygenBin, key}, dir.path() + "/keygen.log"), 0);
  const std::vector<uint16_t> ports = FreeUdpPorts(6);
  ASSERT_EQ(ports.size(), 6u);
  auto ring = [&](uint32_t r, const std::vector<uint32_t>& ids, size_t first_port) {
    std::string s = std::to_string(r) + ":";
    for (size_t i = 0; i < ids.size(); ++i) {
      s += (i == 0 ? "" : ",") + std::to_string(ids[i]) +
           "@127.0.0.1:" + std::to_string(ports[first_port + i]);
    }
    return s;
  };
  const std::string ring1 = ring(1, {1, 2, 3}, 0);
  const std::string ring2 = ring(2, {3, 4, 5}, 3);
  struct Spec {
    std::vector<std::string> rings;
    std::string groups;
    std::vector<std::string> extra;
  };
  const std::map<uint32_t, Spec> specs = {
      {1, {{ring1}, "left,both", {"--targets", "left;both", "--rate", "50"}}},
      {2, {{ring1}, "left,both", {}}},
      {3, {{ring1, ring2}, "both", {}}},
      {4, {{ring2}, "both", {"--targets", "left;both", "--rate", "50"}}},
      {5, {{ring2}, "both", {"--late-groups", "left"}}},
  };
  std::map<uint32_t, std::string> logs;
  std::map<uint32_t, Child> children;
  for (const auto& [id, spec] : specs) {
    logs[id] = dir.path() + "/groups" + std::to_string(id) + ".log";
    std::vector<std::string> argv = {kGroupNodeBin, "--id", std::to_string(id)};
    for (const std::string& r : spec.rings) {
      argv.push_back("--ring");
      argv.push_back(r);
    }
    for (const std::string& a :
         {std::string("--rings"), std::string("1,2"), std::string("--link"), std::string("3:1:2"),
          std::string("--key-file"), key, std::string("--groups"), spec.groups,
          std::string("--expect"), std::string("left=1,2;both=1,2,3,4,5"), std::string("--log"),
          logs[id], std::string("--timeout-s"), std::string("60")}) {
      argv.push_back(a);
    }
    argv.insert(argv.end(), spec.extra.begin(), spec.extra.end());
    children.emplace(id, Child(argv, dir.path() + "/node" + std::to_string(id) + ".out"));
  }
  auto outputs = [&] {
    std::string s;
    for (auto& [id, c] : children) s += "--- node " + std::to_string(id) + "\n" + c.Output();
    return s;
  };

  // Traffic to "left" flows on ring 1 while ring 2 has no member.
  ASSERT_TRUE(WaitFor([&] { return Count(Lines(logs[1]), "left") >= 30; }, seconds(30)))
      << outputs();
  EXPECT_EQ(Count(Lines(logs[4]), "left"), 0u);
  EXPECT_EQ(Count(Lines(logs[5]), "left"), 0u);

  // 5 joins "left" from ring 2 and then gets "left" messages.
  children.at(5).Signal(SIGUSR2);
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::vector<std::string> l = Lines(logs[5]);
        const size_t view = Find(l, "view left members=1,2,5");
        return view < l.size() &&
               Count({l.begin() + static_cast<long>(view), l.end()}, "left") >= 20;
      },
      seconds(20)))
      << outputs();

  for (auto& [id, c] : children) c.Signal(SIGUSR1);
  for (auto& [id, c] : children) {
    const std::optional<int> rc = c.Wait(seconds(20));
    ASSERT_TRUE(rc.has_value()) << "node " << id << " did not finish\n" << outputs();
    ASSERT_EQ(*rc, 0) << "node " << id << "\n" << outputs();
  }

  std::map<uint32_t, std::vector<std::string>> lines;
  for (uint32_t id = 1; id <= 5; ++id) {
    lines[id] = Lines(logs[id]);
    ASSERT_FALSE(lines[id].empty());
    EXPECT_EQ(lines[id].back(), "finished") << "node " << id;
  }

  // "left" never reached a non-member, and 5 only after its join.
  EXPECT_EQ(Count(lines[3], "left"), 0u);
  EXPECT_EQ(Count(lines[4], "left"), 0u);
  const size_t join5 = Find(lines[5], "view left members=1,2,5");
  ASSERT_LT(join5, lines[5].size());
  const std::vector<std::string> before5(lines[5].begin(),
                                         lines[5].begin() + static_cast<long>(join5));
  EXPECT_EQ(Count(before5, "left"), 0u);

  // Ring 2 got only stubs of the "left" messages from ring 1 sent while it
  // had no member: the gateway forwarded stubs, ring 2 skipped them.
  const size_t join_at1 = Find(lines[1], "view left members=1,2,5");
  ASSERT_LT(join_at1, lines[1].size());
  size_t left_from1_before = 0;
  for (size_t i = 0; i < join_at1; ++i) {
    if (IsMsg(lines[1][i], "left") && lines[1][i].find(" from=1 ") != std::string::npos) {
      ++left_from1_before;
    }
  }
  EXPECT_GE(left_from1_before, 10u);
  EXPECT_GE(Counter(children.at(3).Output(), "mring_stubs_forwarded"), left_from1_before)
      << children.at(3).Output();
  EXPECT_GE(Counter(children.at(4).Output(), "mring_filtered_skipped"), left_from1_before)
      << children.at(4).Output();

  // 1 and 2 are in the same groups: the same messages in the same order.
  EXPECT_EQ(Msgs(lines[1]), Msgs(lines[2]));
  // Every two processes: what they share in one order ("both" everywhere,
  // "left" consistent with it at 1, 2 and 5).
  for (uint32_t a = 1; a <= 5; ++a) {
    for (uint32_t b = a + 1; b <= 5; ++b) {
      ExpectConsistentOrder(lines[a], lines[b],
                            "nodes " + std::to_string(a) + " and " + std::to_string(b));
    }
  }

  // 5's "left" messages: per sender, a non-empty suffix of what 1 got to
  // "left" after 5's join.
  for (const std::string sender : {"1", "4"}) {
    std::vector<std::string> at1;
    for (size_t i = join_at1; i < lines[1].size(); ++i) {
      if (IsMsg(lines[1][i], "left") &&
          lines[1][i].find(" from=" + sender + " ") != std::string::npos) {
        at1.push_back(lines[1][i]);
      }
    }
    std::vector<std::string> at5;
    for (const std::string& l : lines[5]) {
      if (IsMsg(l, "left") && l.find(" from=" + sender + " ") != std::string::npos) {
        at5.push_back(l);
      }
    }
    ASSERT_FALSE(at5.empty()) << "sender " << sender;
    ASSERT_LE(at5.size(), at1.size()) << "sender " << sender;
    EXPECT_TRUE(std::equal(at5.begin(), at5.end(), at1.end() - static_cast<long>(at5.size())))
        << "sender " << sender << ": 5 got a gap inside the sender's later messages";
  }
}

}  // namespace
}  // namespace totem
