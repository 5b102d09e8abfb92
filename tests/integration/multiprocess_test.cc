// Multi-process integration tests: several `totem-node` processes form a
// ring over real UDP (unicast on loopback, and multicast inside a network
// namespace the test creates) and must report identical delivery digests.
// Only loopback and namespace-private addresses are used.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "test_util.h"

namespace totem {
namespace {

using std::chrono::seconds;
using testing::Child;
using testing::FieldOfLine;
using testing::FreeUdpPorts;
using testing::RunCommand;
using testing::TempDir;

constexpr const char* kNodeBin = TOTEM_NODE_BIN;
constexpr const char* kKeygenBin = TOTEM_KEYGEN_BIN;

std::string PeersFlag(const std::vector<uint16_t>& ports) {
  std::string s;
  for (size_t i = 0; i < ports.size(); ++i) {
    if (!s.empty()) s += ",";
    s += std::to_string(i + 1) + "@127.0.0.1:" + std::to_string(ports[i]);
  }
  return s;
}

std::string IpBinary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "ip";
}

// Runs `n` nodes (argv prefix + node flags + extra flags), waits for all,
// and checks exit codes and identical digests.
void RunCluster(const TempDir& dir, size_t n, const std::vector<std::string>& prefix,
                const std::vector<std::string>& extra, uint64_t expect_total) {
  const std::string key = dir.path() + "/cluster.key";
  ASSERT_EQ(RunCommand({kKeygenBin, key}, dir.path() + "/keygen.log"), 0)
      << testing::ReadFile(dir.path() + "/keygen.log");
  const std::vector<uint16_t> ports = FreeUdpPorts(n);
  ASSERT_EQ(ports.size(), n);

  std::vector<Child> children;
  for (size_t i = 0; i < n; ++i) {
    std::vector<std::string> argv = prefix;
    for (const std::string& a :
         {std::string(kNodeBin), std::string("--id"), std::to_string(i + 1), std::string("--peers"),
          PeersFlag(ports), std::string("--key-file"), key, std::string("--timeout-s"),
          std::string("30")}) {
      argv.push_back(a);
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    children.emplace_back(argv, dir.path() + "/node" + std::to_string(i + 1) + ".log");
  }
  std::vector<std::string> digests;
  for (size_t i = 0; i < n; ++i) {
    const std::optional<int> rc = children[i].Wait(seconds(45));
    const std::string out = children[i].Output();
    ASSERT_TRUE(rc.has_value()) << "node " << i + 1 << " did not exit:\n" << out;
    ASSERT_EQ(*rc, 0) << "node " << i + 1 << " failed:\n" << out;
    EXPECT_EQ(FieldOfLine(out, "DONE", "delivered"), std::to_string(expect_total)) << out;
    EXPECT_EQ(FieldOfLine(out, "DONE", "drop_auth"), "0") << out;
    digests.push_back(FieldOfLine(out, "DONE", "digest"));
    ASSERT_EQ(digests.back().size(), 16u) << out;
  }
  for (size_t i = 1; i < n; ++i) {
    EXPECT_EQ(digests[i], digests[0]) << "node " << i + 1 << " delivered a different sequence";
  }
}

TEST(MultiProcess, ThreeNodesUnicast_IdenticalDigests) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  RunCluster(dir, 3, {}, {"--send", "3000", "--size", "200", "--guarantee", "mixed", "--quiet"},
             9000);
}

TEST(MultiProcess, ThreeNodesUnicast_FragmentedSafeWithoutPacking_IdenticalDigests) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  RunCluster(dir, 3, {},
             {"--send", "300", "--size", "5000", "--guarantee", "safe", "--no-packing", "--quiet"},
             900);
}

// A network namespace of the test's own, deleted at scope exit.
class NetNamespace {
 public:
  explicit NetNamespace(const TempDir& dir) : ip_(IpBinary()), log_(dir.path() + "/netns.log") {
    std::random_device rd;
    name_ = "totemkv-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 100000);
  }
  ~NetNamespace() {
    if (created_) RunCommand({ip_, "netns", "del", name_}, log_ + ".del");
  }
  // Creates the namespace with a multicast-capable loopback.
  bool Create(std::string* error) {
    if (RunCommand({ip_, "netns", "add", name_}, log_) != 0) {
      *error = testing::ReadFile(log_);
      return false;
    }
    created_ = true;
    for (const std::vector<std::string>& cmd :
         {std::vector<std::string>{ip_, "-n", name_, "link", "set", "lo", "up"},
          std::vector<std::string>{ip_, "-n", name_, "link", "set", "lo", "multicast", "on"},
          std::vector<std::string>{ip_, "-n", name_, "route", "add", "224.0.0.0/4", "dev", "lo"}}) {
      if (RunCommand(cmd, log_) != 0) {
        *error = "setting up " + name_ + " failed: " + testing::ReadFile(log_);
        return false;
      }
    }
    return true;
  }
  std::vector<std::string> ExecPrefix() const { return {ip_, "netns", "exec", name_}; }

 private:
  std::string ip_;
  std::string log_;
  std::string name_;
  bool created_ = false;
};

TEST(MultiProcess, ThreeNodesMulticast_InNetworkNamespace_IdenticalDigests) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  NetNamespace ns(dir);
  std::string error;
  if (!ns.Create(&error)) {
    const char* skip = std::getenv("TOTEMKV_SKIP_NETNS");
    if (skip != nullptr && std::string(skip) == "1") {
      GTEST_SKIP() << "cannot create a network namespace (TOTEMKV_SKIP_NETNS=1): " << error;
    }
    FAIL() << "cannot create a network namespace for the multicast test (needs root or "
              "CAP_SYS_ADMIN; set TOTEMKV_SKIP_NETNS=1 to skip): "
           << error;
  }
  const uint16_t mcast_port = FreeUdpPorts(1).at(0);
  RunCluster(dir, 3, ns.ExecPrefix(),
             {"--mode", "multicast", "--mcast-group", "239.192.77.41", "--mcast-port",
              std::to_string(mcast_port), "--mcast-if", "127.0.0.1", "--send", "3000", "--size",
              "300", "--guarantee", "mixed", "--quiet"},
             9000);
}

}  // namespace
}  // namespace totem
