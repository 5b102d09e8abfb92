// Multiple rings with real processes: two rings of two `totem-mring-node`
// processes each (unicast on loopback) joined by a gateway process on both.
// Every process logs its global delivery order; the test checks that the
// logs agree (common messages in the same relative order; after quiescence
// the same messages in the same order), that each ring keeps ordering its
// own traffic while the gateway is SIGKILLed, and that cross-ring delivery
// resumes once it is restarted. A second test puts two redundant gateways
// between the rings and kills the one that forwards: the other takes over
// without duplicate or missing deliveries.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "test_util.h"

namespace totem {
namespace {

using std::chrono::seconds;
using testing::Child;
using testing::FreeUdpPorts;
using testing::RunCommand;
using testing::TempDir;
using testing::WaitFor;

constexpr const char* kMringBin = TOTEM_MRING_NODE_BIN;
constexpr const char* kKeygenBin = TOTEM_KEYGEN_BIN;

struct Msg {
  uint32_t origin = 0;
  std::string seq;  // origin seq (hex): unique per origin incarnation
  uint64_t index = 0;
  std::string Id() const { return std::to_string(origin) + "/" + seq; }
  // The origin and its incarnation (the high 32 bits of the origin seq).
  std::string Sender() const {
    return std::to_string(origin) + "/" + (seq.size() > 8 ? seq.substr(0, seq.size() - 8) : "0");
  }
};

// The "m" lines of a delivery log, in order.
std::vector<Msg> ReadLog(const std::string& path) {
  std::vector<Msg> out;
  std::string text = testing::ReadFile(path);
  text.erase(text.rfind('\n') == std::string::npos ? 0 : text.rfind('\n') + 1);  // partial line
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 2 || line[0] != 'm') continue;
    std::istringstream f(line);
    std::string tag, ts, ring, g;
    Msg m;
    if (f >> tag >> ts >> ring >> m.origin >> m.seq >> m.index >> g) out.push_back(m);
  }
  return out;
}

uint64_t MaxIndex(const std::vector<Msg>& log, uint32_t origin) {
  uint64_t best = 0;
  for (const Msg& m : log) {
    if (m.origin == origin) best = std::max(best, m.index);
  }
  return best;
}

// Every message two logs share appears in the same relative order.
::testing::AssertionResult SameRelativeOrder(const std::vector<Msg>& a, const std::vector<Msg>& b) {
  std::map<std::string, size_t> pos;
  for (size_t i = 0; i < b.size(); ++i) pos[b[i].Id()] = i;
  size_t last = 0;
  bool first = true;
  size_t common = 0;
  for (const Msg& m : a) {
    auto it = pos.find(m.Id());
    if (it == pos.end()) continue;
    ++common;
    if (!first && it->second <= last) {
      return ::testing::AssertionFailure()
             << "message " << m.Id() << " (index " << m.index << ") is out of relative order";
    }
    first = false;
    last = it->second;
  }
  return ::testing::AssertionSuccess() << common << " common messages";
}

// The ring configuration ids in the "ring <R> config ..." lines of a
// totem-mring-node's output from byte `from` on; `lines` gets those lines.
std::set<std::string> RingIdsSince(const std::string& output, size_t from, std::string* lines) {
  std::istringstream in(output.substr(std::min(from, output.size())));
  std::set<std::string> ids;
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("ring ", 0) != 0) continue;
    *lines += line + "\n";
    std::istringstream f(line);
    std::string tag, ring, word, kind, id;
    if (f >> tag >> ring >> word >> kind >> id) ids.insert(id);
  }
  return ids;
}

class TwoRings {
 public:
  explicit TwoRings(const TempDir& dir) : dir_(dir) {
    key_ = dir.path() + "/cluster.key";
    ports_ = FreeUdpPorts(6);  // 1, 2, 3, 4, gateway on ring 1, gateway on ring 2
  }
  bool MakeKey() { return RunCommand({kKeygenBin, key_}, dir_.path() + "/keygen.log") == 0; }

  std::string Ring1() const {
    return "1:1@127.0.0.1:" + P(0) + ",2@127.0.0.1:" + P(1) + ",9@127.0.0.1:" + P(4);
  }
  std::string Ring2() const {
    return "2:3@127.0.0.1:" + P(2) + ",4@127.0.0.1:" + P(3) + ",9@127.0.0.1:" + P(5);
  }
  std::string Log(const std::string& name) const { return dir_.path() + "/" + name + ".log"; }
  std::string Out(const std::string& name) const { return dir_.path() + "/" + name + ".out"; }

  std::unique_ptr<Child> StartOrdinary(uint32_t id) {
    return std::make_unique<Child>(
        std::vector<std::string>{
            kMringBin, "--id", std::to_string(id), "--ring", id <= 2 ? Ring1() : Ring2(), "--rings",
            "1,2", "--link", "9:1:2", "--key-file", key_, "--rate", "100", "--size", "64",
            "--incarnation", "1", "--delivery-log", Log("node" + std::to_string(id))},
        Out("node" + std::to_string(id)));
  }
  std::unique_ptr<Child> StartGateway(const std::string& name, uint32_t incarnation) {
    return std::make_unique<Child>(
        std::vector<std::string>{kMringBin, "--id", "9", "--ring", Ring1(), "--ring", Ring2(),
                                 "--rings", "1,2", "--link", "9:1:2", "--key-file", key_,
                                 "--incarnation", std::to_string(incarnation), "--delivery-log",
                                 Log(name)},
        Out(name));
  }

 private:
  std::string P(size_t i) const { return std::to_string(ports_.at(i)); }
  const TempDir& dir_;
  std::string key_;
  std::vector<uint16_t> ports_;
};

TEST(MultiRingProcess, TwoRingsAndGateway_OneGlobalOrder_SurvivesGatewayKillAndRestart) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  TwoRings net(dir);
  ASSERT_TRUE(net.MakeKey()) << testing::ReadFile(dir.path() + "/keygen.log");

  const std::vector<uint32_t> ids = {1, 2, 3, 4};
  std::vector<std::unique_ptr<Child>> nodes;
  for (uint32_t id : ids) nodes.push_back(net.StartOrdinary(id));
  std::unique_ptr<Child> gateway = net.StartGateway("gw1", 1);
  auto log = [&](uint32_t id) { return ReadLog(net.Log("node" + std::to_string(id))); };
  auto outputs = [&] {
    std::string s;
    for (size_t i = 0; i < nodes.size(); ++i)
      s += "--- node" + std::to_string(ids[i]) + "\n" + nodes[i]->Output();
    return s + "--- gateway\n" + gateway->Output();
  };

  // 1. Cross-ring traffic: every process delivers every origin's messages.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (uint32_t id : ids) {
          const std::vector<Msg> l = log(id);
          for (uint32_t o : ids) {
            if (MaxIndex(l, o) < 30) return false;
          }
        }
        return true;
      },
      seconds(20)))
      << outputs();

  // 2. SIGKILL the gateway: each ring keeps ordering its own traffic.
  gateway->Kill();
  std::map<uint32_t, uint64_t> at_kill;  // max index of the same-ring peer seen by each node
  auto peer = [](uint32_t id) -> uint32_t { return id == 1 ? 2 : id == 2 ? 1 : id == 3 ? 4 : 3; };
  for (uint32_t id : ids) at_kill[id] = MaxIndex(log(id), peer(id));
  ASSERT_TRUE(WaitFor(
      [&] {
        for (uint32_t id : ids) {
          if (MaxIndex(log(id), peer(id)) < at_kill[id] + 100) return false;
        }
        return true;
      },
      seconds(20)))
      << "a ring stopped ordering its own traffic without the gateway\n"
      << outputs();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::string own = ids[i] <= 2 ? "reachable=[1]" : "reachable=[2]";
    EXPECT_NE(nodes[i]->Output().find(own), std::string::npos) << nodes[i]->Output();
  }

  // 3. Restart it: cross-ring delivery resumes.
  std::map<uint32_t, uint64_t> before_restart;  // max index of the other ring's node 1 or 3
  auto other = [](uint32_t id) -> uint32_t { return id <= 2 ? 3 : 1; };
  for (uint32_t id : ids) before_restart[id] = MaxIndex(log(id), other(id));
  std::vector<size_t> output_at_restart;
  for (auto& c : nodes) output_at_restart.push_back(c->Output().size());
  gateway = net.StartGateway("gw2", 2);
  ASSERT_TRUE(WaitFor(
      [&] {
        for (uint32_t id : ids) {
          if (MaxIndex(log(id), other(id)) < before_restart[id] + 30) return false;
        }
        return true;
      },
      seconds(20)))
      << "cross-ring delivery did not resume after the gateway restarted\n"
      << outputs();

  // 4. Quiesce: once no ring has reconfigured for a while (the multi-ring
  // layer does not agree on the set of messages delivered around a topology
  // change, see multi_ring.h), every process must deliver the same messages
  // in the same order.
  auto config_lines = [&] {
    size_t n = 0;
    std::string all = outputs();
    for (size_t at = all.find("\nring "); at != std::string::npos;
         at = all.find("\nring ", at + 1)) {
      ++n;
    }
    return n;
  };
  size_t last_count = config_lines();
  auto last_change = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor(
      [&] {
        const size_t n = config_lines();
        const auto now = std::chrono::steady_clock::now();
        if (n != last_count) {
          last_count = n;
          last_change = now;
        }
        return now - last_change > std::chrono::milliseconds(1500);
      },
      seconds(20)))
      << "the rings kept reconfiguring\n"
      << outputs();
  // The restart is ONE membership change of each ring: every ordinary node
  // prints a transitional configuration (the members that stayed, e.g.
  // [1,2]) and then the regular one with the gateway ([1,2,9]), both with
  // the new ring id. (Reading the members of those lines in a row,
  // "[1,2,9] [1,2] [1,2] [1,2,9]" from before the kill on, looks like a
  // flap; it is the kill's pair and the restart's pair.) A second ring id
  // here would be a real re-form.
  for (size_t i = 0; i < nodes.size(); ++i) {
    std::string lines;
    EXPECT_EQ(RingIdsSince(nodes[i]->Output(), output_at_restart[i], &lines).size(), 1u)
        << "node " << ids[i] << "'s ring re-formed more than once after the restart:\n"
        << lines;
  }
  std::map<uint32_t, uint64_t> threshold;
  for (uint32_t id : ids) {
    const std::vector<Msg> l = log(id);
    for (uint32_t o : ids) threshold[o] = std::max(threshold[o], MaxIndex(l, o));
  }
  // Let every origin send (and deliver to itself) some more first.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (uint32_t id : ids) {
          if (MaxIndex(log(id), id) < threshold[id] + 30) return false;
        }
        return true;
      },
      seconds(20)))
      << outputs();
  for (auto& c : nodes) c->Signal(SIGUSR1);
  std::map<uint32_t, uint64_t> sent;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (size_t i = 0; i < nodes.size(); ++i) {
          const std::string s = testing::FieldOfLine(nodes[i]->Output(), "SENT", "sent");
          if (s.empty()) return false;
          sent[ids[i]] = std::stoull(s);
        }
        return true;
      },
      seconds(10)))
      << outputs();
  const std::vector<std::string> names = {"node1", "node2", "node3", "node4", "gw2"};
  auto tail_of = [&](const std::string& name) {
    std::vector<std::string> tail;
    for (const Msg& m : ReadLog(net.Log(name))) {
      if (m.index > threshold[m.origin]) tail.push_back(m.Id());
    }
    return tail;
  };
  size_t expected_tail = 0;
  for (uint32_t o : ids) {
    ASSERT_GT(sent[o], threshold[o]) << "node " << o << " stopped sending too early";
    expected_tail += sent[o] - threshold[o];
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const std::string& n : names) {
          if (tail_of(n).size() < expected_tail) return false;
        }
        return true;
      },
      seconds(20)))
      << "not every process delivered every message sent after the restart; tails: node1 "
      << tail_of("node1").size() << " node2 " << tail_of("node2").size() << " node3 "
      << tail_of("node3").size() << " node4 " << tail_of("node4").size() << " gw2 "
      << tail_of("gw2").size() << " of " << expected_tail << "\n"
      << outputs();
  const std::vector<std::string> reference = tail_of("node1");
  EXPECT_EQ(reference.size(), expected_tail);
  for (const std::string& n : names) {
    EXPECT_EQ(tail_of(n), reference) << n << " delivered a different tail";
  }

  // Across the whole run, every pair of logs agrees on the relative order.
  std::vector<std::vector<Msg>> logs;
  for (const char* n : {"node1", "node2", "node3", "node4", "gw1", "gw2"}) {
    logs.push_back(ReadLog(net.Log(n)));
  }
  for (size_t a = 0; a < logs.size(); ++a) {
    for (size_t b = a + 1; b < logs.size(); ++b) {
      EXPECT_TRUE(SameRelativeOrder(logs[a], logs[b])) << "logs " << a << " and " << b;
    }
  }

  // Clean exits, no order or FIFO violation seen by any process.
  for (auto& c : nodes) c->Signal(SIGTERM);
  gateway->Signal(SIGTERM);
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::optional<int> rc = nodes[i]->Wait(seconds(10));
    ASSERT_TRUE(rc.has_value()) << nodes[i]->Output();
    EXPECT_EQ(*rc, 0) << nodes[i]->Output();
    EXPECT_EQ(testing::FieldOfLine(nodes[i]->Output(), "DONE", "order_violations"), "0");
  }
  const std::optional<int> rc = gateway->Wait(seconds(10));
  ASSERT_TRUE(rc.has_value()) << gateway->Output();
  EXPECT_EQ(*rc, 0) << gateway->Output();
  EXPECT_NE(testing::FieldOfLine(gateway->Output(), "DONE", "forwarded"), "0") << gateway->Output();
}

// The value of `key=` in the LAST line starting with `prefix`, or "".
std::string LastFieldOfLine(const std::string& text, const std::string& prefix,
                            const std::string& key) {
  std::string value;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) != 0) continue;
    const size_t at = line.find(" " + key + "=");
    if (at == std::string::npos) continue;
    const size_t begin = at + key.size() + 2;
    value = line.substr(begin, line.find(' ', begin) - begin);
  }
  return value;
}

// Rings 1 = {1, 2, 8, 9} and 2 = {3, 4, 8, 9}: two gateways (8 and 9)
// between the same two rings.
class RedundantRings {
 public:
  explicit RedundantRings(const TempDir& dir) : dir_(dir) {
    key_ = dir.path() + "/cluster.key";
    ports_ = FreeUdpPorts(8);  // 1, 2, 3, 4, 8 on ring 1, 8 on ring 2, 9 on ring 1, 9 on ring 2
  }
  bool MakeKey() { return RunCommand({kKeygenBin, key_}, dir_.path() + "/keygen.log") == 0; }

  std::string Ring1() const {
    return "1:1@127.0.0.1:" + P(0) + ",2@127.0.0.1:" + P(1) + ",8@127.0.0.1:" + P(4) +
           ",9@127.0.0.1:" + P(6);
  }
  std::string Ring2() const {
    return "2:3@127.0.0.1:" + P(2) + ",4@127.0.0.1:" + P(3) + ",8@127.0.0.1:" + P(5) +
           ",9@127.0.0.1:" + P(7);
  }
  // A restarted gateway (incarnation > 1) logs to its own files.
  std::string Name(uint32_t id, uint32_t incarnation = 1) const {
    return "node" + std::to_string(id) +
           (incarnation > 1 ? "-r" + std::to_string(incarnation) : "");
  }
  std::string Log(uint32_t id, uint32_t incarnation = 1) const {
    return dir_.path() + "/" + Name(id, incarnation) + ".log";
  }
  std::string Out(uint32_t id, uint32_t incarnation = 1) const {
    return dir_.path() + "/" + Name(id, incarnation) + ".out";
  }

  // Every process sends 100 messages/s; a gateway originates on ring 1.
  std::unique_ptr<Child> Start(uint32_t id, uint32_t incarnation = 1) {
    std::vector<std::string> argv = {kMringBin, "--id", std::to_string(id)};
    if (id != 3 && id != 4) argv.insert(argv.end(), {"--ring", Ring1()});
    if (id != 1 && id != 2) argv.insert(argv.end(), {"--ring", Ring2()});
    argv.insert(argv.end(), {"--rings", "1,2", "--link", "8:1:2", "--link", "9:1:2", "--key-file",
                             key_, "--rate", "100", "--size", "64", "--incarnation",
                             std::to_string(incarnation), "--delivery-log", Log(id, incarnation)});
    return std::make_unique<Child>(argv, Out(id, incarnation));
  }

 private:
  std::string P(size_t i) const { return std::to_string(ports_.at(i)); }
  const TempDir& dir_;
  std::string key_;
  std::vector<uint16_t> ports_;
};

// Two redundant gateways; the one that owns the tree edge (it forwards) is
// SIGKILLed while every process sends; the other takes the edge over; then
// the killed one restarts (a new incarnation) and, as the lower id, takes
// the edge back. After everyone stops sending and the logs settle, at every
// process that was up the whole time (the survivors): no message is
// delivered twice (at any process); every message any survivor delivered,
// and every message of another origin that the killed gateway delivered, is
// delivered by every survivor; the restarted gateway delivers everything
// from 0.5 s after its start on, and per sender everything after the first
// message it delivered; every pair of logs (the killed and the
// restarted gateway's included) agrees on the relative order. Exempt,
// counted and printed: messages sent while the rings first formed (before
// every process delivered 50 of every origin), the killed gateway's own
// messages that no survivor delivered (never ordered on ring 1 before the
// kill), and what the restarted gateway never got because it was sent
// before it joined (see below).
TEST(MultiRingProcess, RedundantGateways_KillTreeEdgeOwner_OtherTakesOverWithoutLossOrDuplicates) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  RedundantRings net(dir);
  ASSERT_TRUE(net.MakeKey()) << testing::ReadFile(dir.path() + "/keygen.log");

  const std::vector<uint32_t> all = {1, 2, 3, 4, 8, 9};
  std::map<uint32_t, std::unique_ptr<Child>> procs;
  for (uint32_t id : all) procs[id] = net.Start(id);
  auto log = [&](uint32_t id) { return ReadLog(net.Log(id)); };
  auto outputs = [&] {
    std::string s;
    for (uint32_t id : all) s += "--- node" + std::to_string(id) + "\n" + procs[id]->Output();
    return s;
  };

  // 1. Every process delivers every origin's messages.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (uint32_t id : all) {
          const std::vector<Msg> l = log(id);
          for (uint32_t o : all) {
            if (MaxIndex(l, o) < 50) return false;
          }
        }
        return true;
      },
      seconds(20)))
      << outputs();

  // Messages up to here were sent while the rings were forming: a ring's
  // messages delivered before a gateway joined it reach only that ring (the
  // startup limit in multi_ring.h). The checks below cover what comes after.
  std::map<uint32_t, uint64_t> floor;  // per origin: highest index delivered anywhere
  for (uint32_t id : all) {
    const std::vector<Msg> l = log(id);
    for (uint32_t o : all) floor[o] = std::max(floor[o], MaxIndex(l, o));
  }

  // 2. Kill the gateway that forwards now (it owns the edge of the spanning
  // tree; which one that is depends on the order in which they joined).
  auto forwarded = [&](uint32_t id) {
    const std::string f = LastFieldOfLine(procs[id]->Output(), "stats", "forwarded");
    return f.empty() ? uint64_t{0} : std::stoull(f);
  };
  const uint64_t f8 = forwarded(8), f9 = forwarded(9);
  ASSERT_TRUE(WaitFor([&] { return forwarded(8) + forwarded(9) > f8 + f9 + 50; }, seconds(10)))
      << outputs();
  const uint32_t killed = forwarded(8) - f8 >= forwarded(9) - f9 ? 8 : 9;
  const uint32_t other = killed == 8 ? 9 : 8;
  const std::vector<uint32_t> survivors = {1, 2, 3, 4, other};
  procs[killed]->Kill();
  std::map<uint32_t, uint64_t> at_kill;  // per origin: the highest index any survivor delivered
  for (uint32_t id : survivors) {
    const std::vector<Msg> l = log(id);
    for (uint32_t o : survivors) at_kill[o] = std::max(at_kill[o], MaxIndex(l, o));
  }

  // 3. Cross-ring traffic goes on through the other gateway.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (uint32_t id : survivors) {
          const std::vector<Msg> l = log(id);
          for (uint32_t o : survivors) {
            if (MaxIndex(l, o) < at_kill[o] + 100) return false;
          }
        }
        return true;
      },
      seconds(20)))
      << "delivery did not go on after gateway " << killed << " was killed\n"
      << outputs();
  EXPECT_GT(forwarded(other), 0u) << "gateway " << other << " did not take over\n" << outputs();

  // 4. Restart the killed gateway: as the lower id it takes the tree edge
  // back (if it is 8), with nothing retained from before its crash.
  std::map<uint32_t, size_t> output_at_restart;
  for (uint32_t id : {1u, 2u, 3u, 4u}) output_at_restart[id] = procs[id]->Output().size();
  std::unique_ptr<Child> restarted = net.Start(killed, 2);
  auto restarted_log = [&] { return ReadLog(net.Log(killed, 2)); };
  std::map<uint32_t, uint64_t> at_restart;
  for (uint32_t id : survivors) {
    const std::vector<Msg> l = log(id);
    for (uint32_t o : survivors) at_restart[o] = std::max(at_restart[o], MaxIndex(l, o));
  }
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::vector<Msg> r = restarted_log();
        for (uint32_t o : survivors) {
          if (MaxIndex(r, o) < at_restart[o] + 100) return false;
        }
        for (uint32_t id : survivors) {
          if (MaxIndex(log(id), killed) < 50) return false;
        }
        return true;
      },
      seconds(20)))
      << "the restarted gateway did not rejoin the traffic\n"
      << outputs() << "--- restarted\n"
      << restarted->Output();

  // 5. Stop sending; wait until every survivor has delivered everything.
  for (uint32_t id : survivors) procs[id]->Signal(SIGUSR1);
  restarted->Signal(SIGUSR1);
  std::map<uint32_t, uint64_t> sent;
  ASSERT_TRUE(WaitFor(
      [&] {
        for (uint32_t id : survivors) {
          const std::string s = testing::FieldOfLine(procs[id]->Output(), "SENT", "sent");
          if (s.empty()) return false;
          sent[id] = std::stoull(s);
        }
        return true;
      },
      seconds(10)))
      << outputs();
  ASSERT_TRUE(WaitFor(
      [&] {
        for (uint32_t id : survivors) {
          const std::vector<Msg> l = log(id);
          for (uint32_t o : survivors) {
            if (MaxIndex(l, o) < sent[o]) return false;
          }
        }
        return true;
      },
      seconds(20)))
      << "not every survivor delivered the last message of every survivor\n"
      << outputs();
  // ... and the restarted gateway's last message (once it delivered it).
  ASSERT_TRUE(WaitFor(
      [&] {
        if (testing::FieldOfLine(restarted->Output(), "SENT", "sent").empty()) return false;
        std::string last_own;
        for (const Msg& m : restarted_log()) {
          if (m.origin == killed) last_own = m.Id();
        }
        if (last_own.empty()) return false;
        for (uint32_t id : survivors) {
          const std::vector<Msg> l = log(id);
          if (std::none_of(l.begin(), l.end(), [&](const Msg& m) { return m.Id() == last_own; })) {
            return false;
          }
        }
        return true;
      },
      seconds(20)))
      << "the survivors did not deliver the restarted gateway's messages\n"
      << outputs() << "--- restarted\n"
      << restarted->Output();

  std::map<uint32_t, std::vector<Msg>> logs;
  for (uint32_t id : all) logs[id] = log(id);
  const uint32_t kRestarted = 100;  // the restarted gateway's key in `logs`
  logs[kRestarted] = restarted_log();
  // No duplicates, at any process.
  for (uint32_t id : {1u, 2u, 3u, 4u, 8u, 9u, kRestarted}) {
    std::set<std::string> seen;
    for (const Msg& m : logs[id]) {
      EXPECT_TRUE(seen.insert(m.Id()).second)
          << "node " << id << " delivered " << m.Id() << " twice";
    }
  }
  // Every message any survivor delivered, every survivor delivered.
  std::map<std::string, std::set<uint32_t>> where;  // message -> survivors that delivered it
  std::set<std::string> startup;
  for (uint32_t id : survivors) {
    for (const Msg& m : logs[id]) {
      where[m.Id()].insert(id);
      const bool first_run = m.Sender() == std::to_string(m.origin) + "/1";
      if (first_run && m.index <= floor[m.origin]) startup.insert(m.Id());
    }
  }
  size_t missing = 0, startup_missing = 0;
  for (const auto& [msg, at] : where) {
    if (at.size() == survivors.size()) continue;
    if (startup.count(msg) != 0) {
      ++startup_missing;
      continue;
    }
    if (++missing <= 20) {
      std::string ids;
      for (uint32_t id : at) ids += " " + std::to_string(id);
      ADD_FAILURE() << "message " << msg << " delivered only at" << ids;
    }
  }
  EXPECT_EQ(missing, 0u) << "messages delivered by some survivors but not all";
  // What the killed gateway delivered: survivors' messages must be everywhere.
  size_t only_at_killed = 0, killed_own_lost = 0;
  for (const Msg& m : logs[killed]) {
    if (where.count(m.Id()) != 0 || m.index <= floor[m.origin]) continue;
    if (m.origin == killed) {
      ++killed_own_lost;
    } else {
      ++only_at_killed;
      ADD_FAILURE() << "message " << m.Id() << " delivered by the killed gateway " << killed
                    << " but by no survivor";
    }
  }
  std::printf(
      "killed=%u survivors_delivered=%zu killed_delivered=%zu killed_own_not_survived=%zu "
      "others_only_at_killed=%zu startup_not_everywhere=%zu\n",
      killed, where.size(), logs[killed].size(), killed_own_lost, only_at_killed, startup_missing);
  // The restarted gateway misses nothing sent from 0.5 s after its start on
  // (50 messages per origin), and, per sender, nothing after the first
  // message of it that it delivered (no gap in its join window: there it
  // gets a sender's message k+1 directly on ring 2's new configuration and
  // k, which ring 2 ordered before it joined, forwarded over ring 1; the
  // duplicate filter takes k, and the join hold keeps k+1 back until ring
  // 1's stream passes the join). Exempt, counted: what a sender sent before
  // the first message of it the restarted gateway delivered, within those
  // 0.5 s (forwarded over a ring before it joined that ring too); printed:
  // those sent after the restart.
  size_t restarted_gaps = 0, before_join = 0;
  {
    std::set<std::string> have;
    std::map<std::string, uint64_t> first;  // per sender: the first index delivered
    for (const Msg& m : logs[kRestarted]) {
      have.insert(m.Id());
      first.try_emplace(m.Sender(), m.index);
    }
    const std::string own = std::to_string(killed) + "/2";
    for (const auto& [msg, at] : where) {
      const Msg& m = *std::find_if(logs[*at.begin()].begin(), logs[*at.begin()].end(),
                                   [&](const Msg& x) { return x.Id() == msg; });
      if (m.origin == killed && m.Sender() != own) continue;  // the killed incarnation's
      if (have.count(msg) != 0) continue;
      const uint64_t from = (m.origin == killed ? 0 : at_restart[m.origin]) + 50;
      auto f = first.find(m.Sender());
      if (m.index <= from && (f == first.end() || m.index < f->second)) {
        if (m.index + 50 > from) ++before_join;  // sent after the restart
        continue;
      }
      if (++restarted_gaps <= 10) {
        ADD_FAILURE() << "the restarted gateway missed " << msg << " (index " << m.index
                      << (f != first.end() && m.index > f->second ? ", a gap in its join window"
                                                                  : "")
                      << ")";
      }
    }
  }
  EXPECT_EQ(restarted_gaps, 0u);
  std::printf("restarted gateway: before_join=%zu\n", before_join);
  // One order, the killed and the restarted gateway's logs included.
  const std::vector<uint32_t> everyone = {1, 2, 3, 4, 8, 9, kRestarted};
  for (size_t a = 0; a < everyone.size(); ++a) {
    for (size_t b = a + 1; b < everyone.size(); ++b) {
      EXPECT_TRUE(SameRelativeOrder(logs[everyone[a]], logs[everyone[b]]))
          << "logs of " << everyone[a] << " and " << everyone[b] << " (" << kRestarted
          << ": restarted)";
    }
  }

  // The restart is one membership change of each ring (see the test above).
  for (uint32_t id : {1u, 2u, 3u, 4u}) {
    std::string lines;
    EXPECT_EQ(RingIdsSince(procs[id]->Output(), output_at_restart[id], &lines).size(), 1u)
        << "node " << id << "'s ring re-formed more than once after the restart:\n"
        << lines;
  }

  for (uint32_t id : survivors) procs[id]->Signal(SIGTERM);
  restarted->Signal(SIGTERM);
  {
    const std::optional<int> rc = restarted->Wait(seconds(10));
    ASSERT_TRUE(rc.has_value()) << restarted->Output();
    EXPECT_EQ(*rc, 0) << restarted->Output();
  }
  for (uint32_t id : survivors) {
    const std::optional<int> rc = procs[id]->Wait(seconds(10));
    ASSERT_TRUE(rc.has_value()) << procs[id]->Output();
    EXPECT_EQ(*rc, 0) << procs[id]->Output();
    EXPECT_EQ(testing::FieldOfLine(procs[id]->Output(), "DONE", "order_violations"), "0");
  }
  std::printf("gateway %u: %s\n", other,
              LastFieldOfLine(procs[other]->Output(), "DONE", "forwarded").c_str());
  std::printf("DONE line of gateway %u: reforwarded=%s duplicates_dropped=%s late_dropped=%s\n",
              other, LastFieldOfLine(procs[other]->Output(), "DONE", "reforwarded").c_str(),
              LastFieldOfLine(procs[other]->Output(), "DONE", "duplicates_dropped").c_str(),
              LastFieldOfLine(procs[other]->Output(), "DONE", "late_dropped").c_str());
  std::printf(
      "DONE line of the restarted gateway: late_dropped=%s reordered_accepted=%s "
      "join_holds_expired=%s dedup_overflow=%s\n",
      LastFieldOfLine(restarted->Output(), "DONE", "late_dropped").c_str(),
      LastFieldOfLine(restarted->Output(), "DONE", "reordered_accepted").c_str(),
      LastFieldOfLine(restarted->Output(), "DONE", "join_holds_expired").c_str(),
      LastFieldOfLine(restarted->Output(), "DONE", "dedup_overflow").c_str());
  EXPECT_EQ(LastFieldOfLine(restarted->Output(), "DONE", "dedup_overflow"), "0");
}

}  // namespace
}  // namespace totem
