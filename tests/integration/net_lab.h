// NetLab: a private network of Linux network namespaces for multi-process
// tests (membership, partitions, the totemkvd fault test), built and torn
// down by the test with `ip` and `iptables`. Only addresses inside the
// test's own namespaces are used; the host's network is untouched.
#ifndef TOTEMKV_TESTS_INTEGRATION_NET_LAB_H_
#define TOTEMKV_TESTS_INTEGRATION_NET_LAB_H_

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "test_util.h"

namespace totem::testing {

inline std::string IpBinary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "ip";
}

inline std::string IptablesBinary() {
  for (const char* p : {"/usr/sbin/iptables", "/sbin/iptables", "/usr/bin/iptables"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

inline constexpr const char* kNamePrefix = "tkvp";

// Network namespaces made by a test: one per node plus a hub holding a
// bridge; each node's namespace has a veth ("eth0") into the hub with an
// address, 10.77.0.<i+1>/24 or one given (as a compose file's fixed
// container addresses), that exists only there. Processes run in a
// node's namespace through ExecPrefix(i) (`ip netns exec`). Partitions are
// iptables DROP rules inside the node namespaces. Everything is deleted at
// scope exit; namespaces left by a killed earlier run (named after a pid
// that no longer exists) are removed by Create(). Needs root (or
// CAP_SYS_ADMIN + CAP_NET_ADMIN) and iptables. Not thread-safe: drive it
// from one thread.
class NetLab {
 public:
  NetLab(const TempDir& dir, size_t nodes) : NetLab(dir, DefaultAddresses(nodes), 24) {}
  // Node i gets addresses[i] (numeric IPv4) on a /prefix_len network.
  NetLab(const TempDir& dir, std::vector<std::string> addresses, int prefix_len)
      : ip_(IpBinary()),
        iptables_(IptablesBinary()),
        log_(dir.path() + "/netlab.log"),
        n_(addresses.size()),
        addresses_(std::move(addresses)),
        prefix_len_(prefix_len) {
    tag_ = std::string(kNamePrefix) + std::to_string(::getpid());
  }
  ~NetLab() { Destroy(); }
  NetLab(const NetLab&) = delete;
  NetLab& operator=(const NetLab&) = delete;

  bool Create(std::string* error) {
    RemoveStale();
    if (iptables_.empty()) {
      *error = "iptables is not installed (scripts/setup.sh installs it)";
      return false;
    }
    if (!Run({ip_, "netns", "add", Hub()}, error)) return false;
    created_.push_back(Hub());
    if (!Run({ip_, "-n", Hub(), "link", "add", "br0", "type", "bridge"}, error) ||
        !Run({ip_, "-n", Hub(), "link", "set", "br0", "up"}, error)) {
      return false;
    }
    for (size_t i = 0; i < n_; ++i) {
      const std::string ns = Node(i);
      const std::string veth = "v" + std::to_string(i + 1);
      if (!Run({ip_, "netns", "add", ns}, error)) return false;
      created_.push_back(ns);
      if (!Run({ip_, "-n", ns, "link", "set", "lo", "up"}, error) ||
          !Run({ip_, "-n", Hub(), "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                "netns", ns},
               error) ||
          !Run({ip_, "-n", Hub(), "link", "set", veth, "master", "br0"}, error) ||
          !Run({ip_, "-n", Hub(), "link", "set", veth, "up"}, error) ||
          !Run({ip_, "-n", ns, "addr", "add", Address(i) + "/" + std::to_string(prefix_len_), "dev",
                "eth0"},
               error) ||
          !Run({ip_, "-n", ns, "link", "set", "eth0", "up"}, error)) {
        return false;
      }
    }
    return true;
  }

  // Drops every packet (or, with `protocol` such as "udp", only that
  // protocol's) between the two groups (0-based node indexes), in both
  // directions, with iptables inside each node's namespace.
  bool Partition(const std::vector<size_t>& a, const std::vector<size_t>& b, std::string* error,
                 const std::string& protocol = "") {
    auto rule = [&](size_t in, const std::string& chain, const std::string& dir,
                    const std::string& peer) {
      std::vector<std::string> cmd{iptables_, "-w", "-A", chain};
      if (!protocol.empty()) cmd.insert(cmd.end(), {"-p", protocol});
      cmd.insert(cmd.end(), {dir, peer, "-j", "DROP"});
      return Run(Exec(in, cmd), error);
    };
    auto block = [&](size_t from, size_t to) {
      return rule(from, "INPUT", "-s", Address(to)) && rule(from, "OUTPUT", "-d", Address(to));
    };
    for (size_t x : a) {
      for (size_t y : b) {
        if (!block(x, y) || !block(y, x)) return false;
      }
    }
    return true;
  }

  bool Heal(std::string* error) {
    for (size_t i = 0; i < n_; ++i) {
      if (!Run(Exec(i, {iptables_, "-w", "-F"}), error)) return false;
    }
    return true;
  }

  std::string Address(size_t i) const { return addresses_[i]; }
  std::vector<std::string> ExecPrefix(size_t i) const { return {ip_, "netns", "exec", Node(i)}; }

 private:
  static std::vector<std::string> DefaultAddresses(size_t nodes) {
    std::vector<std::string> a;
    for (size_t i = 0; i < nodes; ++i) a.push_back("10.77.0." + std::to_string(i + 1));
    return a;
  }
  std::string Hub() const { return tag_ + "-hub"; }
  std::string Node(size_t i) const { return tag_ + "-n" + std::to_string(i + 1); }
  std::vector<std::string> Exec(size_t i, std::vector<std::string> cmd) const {
    std::vector<std::string> argv = ExecPrefix(i);
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    return argv;
  }

  bool Run(const std::vector<std::string>& argv, std::string* error) {
    if (RunCommand(argv, log_) == 0) return true;
    std::string cmd;
    for (const std::string& a : argv) cmd += " " + a;
    *error = "failed:" + cmd + ": " + ReadFile(log_);
    return false;
  }

  void Destroy() {
    for (auto it = created_.rbegin(); it != created_.rend(); ++it) {
      RunCommand({ip_, "netns", "del", *it}, log_ + ".del");
    }
    created_.clear();
  }

  // Namespaces left behind by an earlier run of this test that was killed
  // (its process no longer exists).
  void RemoveStale() {
    const std::string list = log_ + ".list";
    if (RunCommand({ip_, "netns", "list"}, list) != 0) return;
    std::istringstream in(ReadFile(list));
    std::string line;
    while (std::getline(in, line)) {
      const std::string name = line.substr(0, line.find(' '));
      if (name.rfind(kNamePrefix, 0) != 0) continue;
      const std::string pid = name.substr(std::string(kNamePrefix).size(),
                                          name.find('-') - std::string(kNamePrefix).size());
      if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
      if (::kill(static_cast<pid_t>(std::stol(pid)), 0) == 0) continue;  // still running
      RunCommand({ip_, "netns", "del", name}, log_ + ".del");
    }
  }

  std::string ip_;
  std::string iptables_;
  std::string log_;
  size_t n_;
  std::vector<std::string> addresses_;
  int prefix_len_;
  std::string tag_;
  std::vector<std::string> created_;
};

}  // namespace totem::testing

#endif  // TOTEMKV_TESTS_INTEGRATION_NET_LAB_H_
