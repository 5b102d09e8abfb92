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
// container addresses), that exists only there. With several networks
// (as a compose file with two, and a gateway container on both) the hub
// holds one bridge per network and a node has one veth per network it is
// attached to ("eth0", "eth1", ... in its order of attachments); the
// bridges are not connected, so only a node on two networks spans them
// (and it does not forward). Processes run in a
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
  NetLab(const TempDir& dir, const std::vector<std::string>& addresses, int prefix_len)
      : NetLab(dir, std::vector<int>{prefix_len}, OnOneNetwork(addresses)) {}
  // One interface of a node: its address on network `network`.
  struct Attachment {
    size_t network = 0;
    std::string address;  // numeric IPv4
  };
  // Network k is a /prefix_lens[k]; node i has one interface per entry of
  // attachments[i] (at least one; the first is its Address()).
  NetLab(const TempDir& dir, std::vector<int> prefix_lens,
         std::vector<std::vector<Attachment>> attachments)
      : ip_(IpBinary()),
        iptables_(IptablesBinary()),
        log_(dir.path() + "/netlab.log"),
        n_(attachments.size()),
        prefix_lens_(std::move(prefix_lens)),
        attachments_(std::move(attachments)) {
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
    for (size_t k = 0; k < prefix_lens_.size(); ++k) {
      const std::string br = "br" + std::to_string(k);
      if (!Run({ip_, "-n", Hub(), "link", "add", br, "type", "bridge"}, error) ||
          !Run({ip_, "-n", Hub(), "link", "set", br, "up"}, error)) {
        return false;
      }
    }
    for (size_t i = 0; i < n_; ++i) {
      const std::string ns = Node(i);
      if (!Run({ip_, "netns", "add", ns}, error)) return false;
      created_.push_back(ns);
      if (!Run({ip_, "-n", ns, "link", "set", "lo", "up"}, error)) return false;
      for (size_t j = 0; j < attachments_[i].size(); ++j) {
        const Attachment& a = attachments_[i][j];
        if (a.network >= prefix_lens_.size()) {
          *error = "node " + std::to_string(i) + ": no network " + std::to_string(a.network);
          return false;
        }
        // Hub side: v<node> on the first network (as before), v<node>n<k>
        // on network k > 0.
        const std::string veth =
            "v" + std::to_string(i + 1) + (a.network == 0 ? "" : "n" + std::to_string(a.network));
        const std::string eth = "eth" + std::to_string(j);
        const std::string br = "br" + std::to_string(a.network);
        if (!Run({ip_, "-n", Hub(), "link", "add", veth, "type", "veth", "peer", "name", eth,
                  "netns", ns},
                 error) ||
            !Run({ip_, "-n", Hub(), "link", "set", veth, "master", br}, error) ||
            !Run({ip_, "-n", Hub(), "link", "set", veth, "up"}, error) ||
            !Run({ip_, "-n", ns, "addr", "add",
                  a.address + "/" + std::to_string(prefix_lens_[a.network]), "dev", eth},
                 error) ||
            !Run({ip_, "-n", ns, "link", "set", eth, "up"}, error)) {
          return false;
        }
      }
    }
    return true;
  }

  // Drops every packet (or, with `protocol` such as "udp", only that
  // protocol's) between the two groups (0-based node indexes), in both
  // directions, with iptables inside each node's namespace (to and from
  // every address of the peer).
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
      for (const Attachment& peer : attachments_[to]) {
        if (!rule(from, "INPUT", "-s", peer.address) || !rule(from, "OUTPUT", "-d", peer.address)) {
          return false;
        }
      }
      return true;
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

  std::string Address(size_t i) const { return attachments_[i].front().address; }
  std::vector<std::string> ExecPrefix(size_t i) const { return {ip_, "netns", "exec", Node(i)}; }

 private:
  static std::vector<std::string> DefaultAddresses(size_t nodes) {
    std::vector<std::string> a;
    for (size_t i = 0; i < nodes; ++i) a.push_back("10.77.0." + std::to_string(i + 1));
    return a;
  }
  static std::vector<std::vector<Attachment>> OnOneNetwork(
      const std::vector<std::string>& addresses) {
    std::vector<std::vector<Attachment>> out;
    for (const std::string& a : addresses) out.push_back({Attachment{0, a}});
    return out;
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
  std::vector<int> prefix_lens_;                      // per network
  std::vector<std::vector<Attachment>> attachments_;  // per node
  std::string tag_;
  std::vector<std::string> created_;
};

}  // namespace totem::testing

#endif  // TOTEMKV_TESTS_INTEGRATION_NET_LAB_H_
