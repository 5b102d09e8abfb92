// Membership and extended virtual synchrony with real processes over UDP:
// five `totem-node` processes, all sending, survive `kill -9` of one and take
// it back when it restarts (ring ids keep increasing across the restart, from
// its state file), and survive a 3|2 partition made with packet filters
// between network namespaces the test creates, then merge when it heals.
// Every process writes a delivery log; the logs are checked offline with the
// EVS checker (evs_log_checker.h). The tests wait on conditions with
// deadlines (polling the nodes' output), never on bare sleeps. Only loopback
// and addresses inside the test's own namespaces are used.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "evs_log_checker.h"
#include "net_lab.h"
#include "test_util.h"

namespace totem {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Child;
using testing::FreeUdpPorts;
using testing::ReadFile;
using testing::RunCommand;
using testing::TempDir;
using testing::WaitFor;

constexpr const char* kNodeBin = TOTEM_NODE_BIN;
constexpr const char* kKeygenBin = TOTEM_KEYGEN_BIN;

using Clock = std::chrono::steady_clock;

// One "config regular ..." / "config transitional ..." line of totem-node.
struct ConfigLine {
  bool regular = false;
  std::string id;  // "<rep>:<seq>"
  uint64_t seq = 0;
  std::vector<uint32_t> members;
};

std::string Field(const std::string& line, const std::string& key) {
  const size_t at = line.find(" " + key + "=");
  if (at == std::string::npos) return "";
  const size_t begin = at + key.size() + 2;
  return line.substr(begin, line.find(' ', begin) - begin);
}

std::vector<ConfigLine> ConfigLines(const std::string& out) {
  std::vector<ConfigLine> lines;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    ConfigLine c;
    if (line.rfind("config regular ", 0) == 0) {
      c.regular = true;
    } else if (line.rfind("config transitional ", 0) != 0) {
      continue;
    }
    c.id = Field(line, "id");
    const size_t colon = c.id.find(':');
    if (colon == std::string::npos) continue;
    c.seq = std::stoull(c.id.substr(colon + 1));
    std::string members = Field(line, "members");
    if (members.size() < 2) continue;
    std::stringstream m(members.substr(1, members.size() - 2));
    std::string item;
    while (std::getline(m, item, ',')) c.members.push_back(static_cast<uint32_t>(std::stoul(item)));
    lines.push_back(c);
  }
  return lines;
}

std::optional<ConfigLine> LastRegular(const std::string& out) {
  std::optional<ConfigLine> last;
  for (const ConfigLine& c : ConfigLines(out)) {
    if (c.regular) last = c;
  }
  return last;
}

// The value in a state file, or 0 if it cannot be read.
uint64_t StateFileSeq(const std::string& dir) {
  const std::string text = ReadFile(dir + "/ring_seq");
  const size_t nl = text.find('\n');
  if (text.rfind("totem-ring-seq v1\n", 0) != 0 || nl + 1 >= text.size()) return 0;
  return std::strtoull(text.c_str() + nl + 1, nullptr, 10);
}

// Deliveries a delivery log shows in regular configuration `id`.
size_t DeliveriesIn(const std::string& log_path, const std::string& id) {
  const std::string prefix = "msg regular " + id + " ";
  std::istringstream in(ReadFile(log_path));
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) n += line.rfind(prefix, 0) == 0 ? 1 : 0;
  return n;
}

std::string Members(const std::vector<uint32_t>& m) {
  std::string s;
  for (uint32_t x : m) s += (s.empty() ? "" : ",") + std::to_string(x);
  return "[" + s + "]";
}

// Five (or n) totem-node processes, each restartable; node i (0-based) is
// id i + 1. Every incarnation gets its own output and delivery log.
class Cluster {
 public:
  Cluster(const TempDir& dir, std::vector<std::string> hosts, std::vector<uint16_t> ports,
          std::vector<std::vector<std::string>> prefixes)
      : dir_(dir.path()),
        hosts_(std::move(hosts)),
        ports_(std::move(ports)),
        prefixes_(std::move(prefixes)),
        children_(hosts_.size()),
        incarnation_(hosts_.size(), 0) {
    key_ = dir_ + "/cluster.key";
    key_ok_ = RunCommand({kKeygenBin, key_}, dir_ + "/keygen.log") == 0;
  }

  bool key_ok() const { return key_ok_; }
  size_t size() const { return hosts_.size(); }

  void Start(size_t i) {
    ++incarnation_[i];
    std::string peers;
    for (size_t k = 0; k < hosts_.size(); ++k) {
      peers += (peers.empty() ? "" : ",") + std::to_string(k + 1) + "@" + hosts_[k] + ":" +
               std::to_string(ports_[k]);
    }
    std::vector<std::string> argv = prefixes_[i];
    for (const std::string& a : {std::string(kNodeBin),
                                 std::string("--id"),
                                 std::to_string(i + 1),
                                 std::string("--peers"),
                                 peers,
                                 std::string("--key-file"),
                                 key_,
                                 std::string("--state-dir"),
                                 StateDir(i),
                                 std::string("--delivery-log"),
                                 DeliveryLog(i),
                                 std::string("--run-seconds"),
                                 std::string("150"),
                                 std::string("--rate"),
                                 std::string("200"),
                                 std::string("--size"),
                                 std::string("64"),
                                 std::string("--guarantee"),
                                 std::string("mixed"),
                                 std::string("--quiet")}) {
      argv.push_back(a);
    }
    children_[i].push_back(std::make_unique<Child>(argv, OutputPath(i)));
  }

  // kill -9, no goodbye.
  void Kill(size_t i) { children_[i].back()->Kill(); }

  // SIGTERM to every running process; returns a description of every one
  // that did not exit with 0 (killed incarnations are skipped).
  std::string TerminateAll() {
    for (auto& list : children_) {
      if (!list.empty()) list.back()->Signal(SIGTERM);
    }
    std::string failures;
    for (size_t i = 0; i < children_.size(); ++i) {
      if (children_[i].empty()) continue;
      const std::optional<int> rc = children_[i].back()->Wait(seconds(10));
      if (!rc.has_value() || *rc != 0) {
        failures += "node " + std::to_string(i + 1) + " exit " +
                    (rc.has_value() ? std::to_string(*rc) : std::string("none")) + ":\n" +
                    Output(i) + "\n";
      }
    }
    return failures;
  }

  std::string StateDir(size_t i) const { return dir_ + "/state" + std::to_string(i + 1); }
  std::string OutputPath(size_t i) const {
    return dir_ + "/node" + std::to_string(i + 1) + "." + std::to_string(incarnation_[i]) + ".out";
  }
  std::string DeliveryLog(size_t i) const { return DeliveryLog(i, incarnation_[i]); }
  std::string DeliveryLog(size_t i, int incarnation) const {
    return dir_ + "/node" + std::to_string(i + 1) + "." + std::to_string(incarnation) +
           ".deliveries";
  }
  // Output of the current incarnation of node i.
  std::string Output(size_t i) const { return ReadFile(OutputPath(i)); }

  // Every incarnation's delivery log, parsed.
  std::vector<testing::ProcessLog> DeliveryLogs() const {
    std::vector<testing::ProcessLog> logs;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      for (int inc = 1; inc <= incarnation_[i]; ++inc) {
        logs.push_back(testing::ParseDeliveryLog(
            ReadFile(DeliveryLog(i, inc)),
            "node" + std::to_string(i + 1) + (inc > 1 ? "#" + std::to_string(inc) : "")));
      }
    }
    return logs;
  }

  // Waits until every node in `nodes` (0-based) has installed, as its latest
  // regular configuration, the same one with exactly `members`, and has
  // delivered a message in it. Returns that configuration.
  std::optional<ConfigLine> WaitForConfiguration(const std::vector<size_t>& nodes,
                                                 const std::vector<uint32_t>& members,
                                                 milliseconds timeout) {
    std::optional<ConfigLine> agreed;
    const bool ok = WaitFor(
        [&] {
          agreed.reset();
          for (size_t i : nodes) {
            const std::string out = Output(i);
            std::optional<ConfigLine> c = LastRegular(out);
            if (!c || c->members != members) return false;
            if (agreed && agreed->id != c->id) return false;
            if (out.find("resumed id=" + c->id + " ") == std::string::npos) return false;
            agreed = c;
          }
          return true;
        },
        timeout);
    if (!ok) return std::nullopt;
    return agreed;
  }

  // Waits until every node in `nodes` has at least `count` deliveries of
  // configuration `id` in its (flushed) delivery log.
  bool WaitForDeliveries(const std::vector<size_t>& nodes, const std::string& id, size_t count,
                         milliseconds timeout) {
    return WaitFor(
        [&] {
          for (size_t i : nodes) {
            if (DeliveriesIn(DeliveryLog(i), id) < count) return false;
          }
          return true;
        },
        timeout);
  }

  // What each node last said about its configuration (for failure messages).
  std::string Describe() const {
    std::string s;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      std::optional<ConfigLine> c = LastRegular(Output(i));
      s += "  node " + std::to_string(i + 1) + ": " +
           (c ? c->id + " " + Members(c->members) : std::string("no configuration")) + "\n";
    }
    return s;
  }

 private:
  std::string dir_;
  std::vector<std::string> hosts_;
  std::vector<uint16_t> ports_;
  std::vector<std::vector<std::string>> prefixes_;
  std::string key_;
  bool key_ok_ = false;
  std::vector<std::vector<std::unique_ptr<Child>>> children_;  // [node][incarnation - 1]
  std::vector<int> incarnation_;
};

const std::vector<uint32_t> kAll = {1, 2, 3, 4, 5};

void ExpectEvs(const Cluster& cluster) {
  const std::vector<testing::ProcessLog> logs = cluster.DeliveryLogs();
  const testing::EvsReport report = testing::CheckEvs(logs);
  EXPECT_TRUE(report.ok()) << report.Summary();
  EXPECT_GT(report.messages, 0u);
  std::printf("EVS check: %s\n", report.Summary().c_str());
}

double MsSince(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

TEST(MembershipProcess, FiveNodes_KillOne_SurvivorsReform_RestartRejoins_RingSeqPersisted) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::vector<uint16_t> ports = FreeUdpPorts(5);
  ASSERT_EQ(ports.size(), 5u);
  Cluster cluster(dir, std::vector<std::string>(5, "127.0.0.1"), ports,
                  std::vector<std::vector<std::string>>(5));
  ASSERT_TRUE(cluster.key_ok());
  for (size_t i = 0; i < 5; ++i) cluster.Start(i);

  // All five form one ring and order traffic.
  std::optional<ConfigLine> full = cluster.WaitForConfiguration({0, 1, 2, 3, 4}, kAll, seconds(20));
  ASSERT_TRUE(full.has_value()) << "no common 5-member configuration:\n" << cluster.Describe();
  ASSERT_TRUE(cluster.WaitForDeliveries({0, 1, 2, 3, 4}, full->id, 200, seconds(10)));

  // Node 5, then node 1 (the representative): kill -9 while everyone sends,
  // the survivors reform and keep ordering, the victim restarts from its
  // state directory and rejoins.
  for (const size_t victim : {size_t{4}, size_t{0}}) {
    SCOPED_TRACE("victim node " + std::to_string(victim + 1));
    std::vector<size_t> survivors;
    std::vector<uint32_t> survivor_ids;
    for (size_t i = 0; i < 5; ++i) {
      if (i == victim) continue;
      survivors.push_back(i);
      survivor_ids.push_back(static_cast<uint32_t>(i + 1));
    }
    // The victim persisted the ring sequence before using it.
    const uint64_t persisted_before = StateFileSeq(cluster.StateDir(victim));
    EXPECT_GE(persisted_before, full->seq);

    const Clock::time_point killed_at = Clock::now();
    cluster.Kill(victim);
    std::optional<ConfigLine> reduced =
        cluster.WaitForConfiguration(survivors, survivor_ids, seconds(15));
    ASSERT_TRUE(reduced.has_value())
        << "survivors did not agree on " << Members(survivor_ids) << ":\n"
        << cluster.Describe();
    std::printf(
        "kill -9 node %zu -> survivors installed %s and delivered in it: %.0f ms (test "
        "poll)\n",
        victim + 1, reduced->id.c_str(), MsSince(killed_at));
    EXPECT_GT(reduced->seq, full->seq);
    ASSERT_TRUE(cluster.WaitForDeliveries(survivors, reduced->id, 200, seconds(10)))
        << "survivors stopped ordering";

    // Restart with the same state directory: it starts from the persisted
    // ring sequence and rejoins; ring ids keep increasing.
    EXPECT_EQ(StateFileSeq(cluster.StateDir(victim)), persisted_before) << "changed while dead";
    cluster.Start(victim);
    ASSERT_TRUE(WaitFor(
        [&] {
          return cluster.Output(victim).find("state: initial_ring_seq=") != std::string::npos;
        },
        seconds(10)))
        << cluster.Output(victim);
    EXPECT_EQ(testing::FieldOfLine(cluster.Output(victim), "state:", "initial_ring_seq"),
              std::to_string(persisted_before));
    std::optional<ConfigLine> rejoined =
        cluster.WaitForConfiguration({0, 1, 2, 3, 4}, kAll, seconds(20));
    ASSERT_TRUE(rejoined.has_value()) << "node did not rejoin:\n" << cluster.Describe();
    EXPECT_GT(rejoined->seq, reduced->seq);
    EXPECT_GT(rejoined->seq, persisted_before) << "ring sequence went backwards across a restart";
    ASSERT_TRUE(cluster.WaitForDeliveries({0, 1, 2, 3, 4}, rejoined->id, 200, seconds(10)));
    // Every node's state file covers every ring it has been in.
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_GE(StateFileSeq(cluster.StateDir(i)), rejoined->seq) << "node " << i + 1;
    }
    full = rejoined;
  }

  const std::string failures = cluster.TerminateAll();
  EXPECT_TRUE(failures.empty()) << failures;
  ExpectEvs(cluster);
}

TEST(MembershipProcess, FiveNodes_Partition3And2_BothSidesWork_HealMerges_EvsChecked) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  testing::NetLab lab(dir, 5);  // declared before the cluster: its processes die first
  std::string error;
  if (!lab.Create(&error)) {
    const char* skip = std::getenv("TOTEMKV_SKIP_NETNS");
    if (skip != nullptr && std::string(skip) == "1") {
      GTEST_SKIP() << "cannot build the namespace network (TOTEMKV_SKIP_NETNS=1): " << error;
    }
    FAIL() << "cannot build the namespace network (needs root and iptables; set "
              "TOTEMKV_SKIP_NETNS=1 to skip): "
           << error;
  }
  std::vector<std::string> hosts;
  std::vector<std::vector<std::string>> prefixes;
  for (size_t i = 0; i < 5; ++i) {
    hosts.push_back(lab.Address(i));
    prefixes.push_back(lab.ExecPrefix(i));
  }
  // Each node has a namespace of its own, so any port is free in it; take
  // kernel-chosen ones anyway rather than hard-code a number.
  const std::vector<uint16_t> ports = FreeUdpPorts(5);
  ASSERT_EQ(ports.size(), 5u);
  Cluster cluster(dir, hosts, ports, prefixes);
  ASSERT_TRUE(cluster.key_ok());
  for (size_t i = 0; i < 5; ++i) cluster.Start(i);

  std::optional<ConfigLine> full = cluster.WaitForConfiguration({0, 1, 2, 3, 4}, kAll, seconds(20));
  ASSERT_TRUE(full.has_value()) << "no common 5-member configuration:\n" << cluster.Describe();
  ASSERT_TRUE(cluster.WaitForDeliveries({0, 1, 2, 3, 4}, full->id, 100, seconds(10)));

  // Two 3|2 partitions, the second splitting the representative's group
  // differently: each side installs its own configuration and keeps
  // ordering its own traffic; healed, they merge into one ring of five.
  struct Split {
    std::vector<size_t> a, b;
    std::vector<uint32_t> a_ids, b_ids;
  };
  for (const Split& split :
       {Split{{0, 1, 2}, {3, 4}, {1, 2, 3}, {4, 5}}, Split{{0, 3, 4}, {1, 2}, {1, 4, 5}, {2, 3}}}) {
    SCOPED_TRACE("partition " + Members(split.a_ids) + " | " + Members(split.b_ids));
    const Clock::time_point cut_at = Clock::now();
    ASSERT_TRUE(lab.Partition(split.a, split.b, &error)) << error;
    std::optional<ConfigLine> left =
        cluster.WaitForConfiguration(split.a, split.a_ids, seconds(15));
    std::optional<ConfigLine> right =
        cluster.WaitForConfiguration(split.b, split.b_ids, seconds(15));
    ASSERT_TRUE(left.has_value() && right.has_value()) << "the sides did not reform:\n"
                                                       << cluster.Describe();
    std::printf("partition %s|%s -> both sides reformed (%s, %s): %.0f ms (test poll)\n",
                Members(split.a_ids).c_str(), Members(split.b_ids).c_str(), left->id.c_str(),
                right->id.c_str(), MsSince(cut_at));
    EXPECT_GT(left->seq, full->seq);
    EXPECT_GT(right->seq, full->seq);
    ASSERT_TRUE(cluster.WaitForDeliveries(split.a, left->id, 200, seconds(10)));
    ASSERT_TRUE(cluster.WaitForDeliveries(split.b, right->id, 200, seconds(10)));

    const Clock::time_point healed_at = Clock::now();
    ASSERT_TRUE(lab.Heal(&error)) << error;
    std::optional<ConfigLine> merged =
        cluster.WaitForConfiguration({0, 1, 2, 3, 4}, kAll, seconds(20));
    ASSERT_TRUE(merged.has_value()) << "the partitions did not merge:\n" << cluster.Describe();
    std::printf("heal -> merged into %s: %.0f ms (test poll)\n", merged->id.c_str(),
                MsSince(healed_at));
    EXPECT_GT(merged->seq, std::max(left->seq, right->seq));
    ASSERT_TRUE(cluster.WaitForDeliveries({0, 1, 2, 3, 4}, merged->id, 200, seconds(10)));
    full = merged;
  }

  const std::string failures = cluster.TerminateAll();
  EXPECT_TRUE(failures.empty()) << failures;
  ExpectEvs(cluster);
}

}  // namespace
}  // namespace totem
