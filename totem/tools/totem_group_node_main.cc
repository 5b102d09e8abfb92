// totem-group-node: a demo and test processor of the process group API
// (totem/groups.h). It joins --groups, waits until the groups named in
// --expect have exactly the given members, then multicasts numbered messages
// round robin to the --targets (each target one or more groups), and logs
// every group view and delivery in order, so that the logs of several
// processes can be compared offline.
//
//   totem-group-node --id N --peers ID@HOST:PORT,... --key-file PATH
//       --groups A,B [--targets 'A;B;A+C'] [--expect 'A=1,3;B=1,2,3']
//       [--rate MSGS_PER_S] [--log FILE] [--timeout-s S] [--late-groups C,D]
//
// Multiple-ring mode (GroupNode::StartMultiRing; flags as totem-mring-node):
// instead of --peers, one --ring per local ring (two or more: a gateway; the
// first one originates), plus every ring and gateway edge of the network:
//   --ring R:ID@HOST:PORT,... [--ring ...] --rings R1,R2 [--link G:A:B ...]
//   [--gv-interval-us N] [--incarnation N]
// Multicasts are then routed to the rings with members of their groups.
//
// SIGUSR2: join the --late-groups (each once).
//
// SIGUSR1: stop sending, multicast a "done" marker to this node's groups, and
// exit once a marker from every member of the current regular configuration
// was delivered (they must share a group with this node). SIGTERM/SIGINT:
// exit at once. Payload: "<sender>:<index>" or "done:<sender>".
//
// Log lines (one per event, flushed per line):
//   conf <regular|transitional> <rep>:<seq> members=<ids>
//   view <group> members=<ids> joined=<ids> left=<ids> reason=<reason>
//   msg <g1,g2,..> from=<sender> i=<index>      (done markers: i=done)
//   finished
// stdout: "READY" once the expected views were seen, "FINISHED ..." at the
// end with the group counters (and, over multiple rings, "mring_stubs_forwarded=
// mring_filtered_skipped= mring_forwarded=" from the multiple-ring layer). Exit codes: 0 ok, 2 bad
// flags, 3 timeout, 4 per-sender order violation, 1 other failure.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "totem/groups.h"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Usage(const std::string& error) {
  std::fprintf(stderr,
               "totem-group-node: %s\n"
               "usage: totem-group-node --id N --peers ID@HOST:PORT,... --key-file PATH\n"
               "         --groups A,B [--targets 'A;B;A+C'] [--expect 'A=1,3;B=1,2']\n"
               "         [--rate MSGS_PER_S] [--log FILE] [--timeout-s S] [--late-groups C,D]\n"
               "   or: totem-group-node --id N --ring R:ID@HOST:PORT,... [--ring ...]\n"
               "         --rings R1,R2 [--link G:A:B ...] [--gv-interval-us N]\n"
               "         [--incarnation N] --key-file PATH --groups ... (as above)\n",
               error.c_str());
  std::exit(2);
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, sep)) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

uint64_t ParseU64(const std::string& flag, const std::string& s) {
  if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos) {
    Usage(flag + " needs a non-negative integer, got '" + s + "'");
  }
  return std::stoull(s);
}

std::string Ids(const std::vector<totem::NodeId>& ids) {
  std::string s;
  for (totem::NodeId id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

std::string Join(const std::vector<std::string>& v, char sep) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : std::string(1, sep)) + x;
  return s;
}

struct State {
  std::mutex mu;
  std::condition_variable cv;
  std::FILE* log = nullptr;
  std::map<totem::NodeId, uint64_t> last_index;  // per sender
  std::set<totem::NodeId> done_from;
  std::vector<totem::NodeId> regular_members;
  uint64_t order_errors = 0;
  std::string first_error;
  bool finished = false;
  bool stop_sending = false;
  bool exit_now = false;
  uint64_t delivered = 0;
};

void Line(State& st, const std::string& line) {
  if (st.log == nullptr) return;
  std::fprintf(st.log, "%s\n", line.c_str());
  std::fflush(st.log);
}

void CheckFinished(State& st) {
  if (!st.stop_sending || st.finished || st.regular_members.empty()) return;
  for (totem::NodeId m : st.regular_members) {
    if (st.done_from.count(m) == 0) return;
  }
  st.finished = true;
  Line(st, "finished");
  st.cv.notify_all();
}

}  // namespace

int main(int argc, char** argv) {
  totem::NodeConfig config;
  totem::MultiRingNodeConfig multi;
  std::vector<std::string> groups;
  std::vector<std::string> late_groups;
  std::vector<std::vector<std::string>> targets;
  std::map<std::string, std::vector<totem::NodeId>> expect;
  uint64_t rate = 200;
  uint64_t timeout_s = 60;
  std::string key_file;
  std::string log_path;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--id") {
      config.ring.node_id = static_cast<totem::NodeId>(ParseU64(flag, value()));
    } else if (flag == "--peers") {
      for (const std::string& item : Split(value(), ',')) {
        const size_t at = item.find('@');
        const size_t colon = item.rfind(':');
        if (at == std::string::npos || colon == std::string::npos || colon < at) {
          Usage("--peers entry '" + item + "' is not ID@HOST:PORT");
        }
        totem::Peer p;
        p.id = static_cast<totem::NodeId>(ParseU64("--peers id", item.substr(0, at)));
        p.host = item.substr(at + 1, colon - at - 1);
        p.port = static_cast<uint16_t>(ParseU64("--peers port", item.substr(colon + 1)));
        config.transport.peers.push_back(p);
        config.ring.members.push_back(p.id);
      }
    } else if (flag == "--ring") {
      const std::string spec = value();
      const size_t colon = spec.find(':');
      if (colon == std::string::npos) Usage("--ring '" + spec + "' is not R:ID@HOST:PORT,...");
      totem::MultiRingNodeConfig::LocalRing lr;
      lr.ring = static_cast<uint32_t>(ParseU64("--ring number", spec.substr(0, colon)));
      for (const std::string& item : Split(spec.substr(colon + 1), ',')) {
        const size_t at = item.find('@');
        const size_t pc = item.rfind(':');
        if (at == std::string::npos || pc == std::string::npos || pc < at) {
          Usage("--ring entry '" + item + "' is not ID@HOST:PORT");
        }
        totem::Peer p;
        p.id = static_cast<totem::NodeId>(ParseU64("--ring id", item.substr(0, at)));
        p.host = item.substr(at + 1, pc - at - 1);
        p.port = static_cast<uint16_t>(ParseU64("--ring port", item.substr(pc + 1)));
        lr.node.transport.peers.push_back(p);
        lr.node.ring.members.push_back(p.id);
      }
      if (lr.node.transport.peers.empty()) Usage("--ring " + spec + " has no processors");
      multi.local.push_back(lr);
    } else if (flag == "--rings") {
      for (const std::string& r : Split(value(), ',')) {
        multi.rings.push_back(static_cast<uint32_t>(ParseU64("--rings", r)));
      }
    } else if (flag == "--link") {
      const std::vector<std::string> parts = Split(value(), ':');
      if (parts.size() != 3) Usage("--link needs G:A:B");
      totem::core::GatewayLink l;
      l.gateway = static_cast<totem::NodeId>(ParseU64("--link gateway", parts[0]));
      l.ring_a = static_cast<uint32_t>(ParseU64("--link ring", parts[1]));
      l.ring_b = static_cast<uint32_t>(ParseU64("--link ring", parts[2]));
      multi.links.push_back(l);
    } else if (flag == "--gv-interval-us") {
      multi.guarantee_interval_us = ParseU64(flag, value());
      if (multi.guarantee_interval_us == 0) Usage("--gv-interval-us must be > 0");
    } else if (flag == "--incarnation") {
      multi.incarnation = static_cast<uint32_t>(ParseU64(flag, value()));
    } else if (flag == "--late-groups") {
      late_groups = Split(value(), ',');
    } else if (flag == "--key-file") {
      key_file = value();
    } else if (flag == "--groups") {
      groups = Split(value(), ',');
    } else if (flag == "--targets") {
      for (const std::string& t : Split(value(), ';')) targets.push_back(Split(t, '+'));
    } else if (flag == "--expect") {
      for (const std::string& e : Split(value(), ';')) {
        const size_t eq = e.find('=');
        if (eq == std::string::npos) Usage("--expect entry '" + e + "' is not GROUP=IDS");
        std::vector<totem::NodeId> ids;
        for (const std::string& id : Split(e.substr(eq + 1), ',')) {
          ids.push_back(static_cast<totem::NodeId>(ParseU64("--expect id", id)));
        }
        expect[e.substr(0, eq)] = ids;
      }
    } else if (flag == "--rate") {
      rate = ParseU64(flag, value());
      if (rate == 0) Usage("--rate must be at least 1");
    } else if (flag == "--log") {
      log_path = value();
    } else if (flag == "--timeout-s") {
      timeout_s = ParseU64(flag, value());
    } else {
      Usage("unknown flag '" + flag + "'");
    }
  }
  if (config.ring.node_id == totem::kNoNode) Usage("--id is required (and not 0)");
  const bool multi_ring = !multi.local.empty();
  if (multi_ring && !config.transport.peers.empty()) Usage("--peers and --ring exclude each other");
  if (!multi_ring && config.transport.peers.empty()) Usage("--peers or --ring is required");
  if (multi_ring && multi.rings.empty()) Usage("--rings is required with --ring");
  if (key_file.empty()) Usage("--key-file is required");
  if (groups.empty()) Usage("--groups is required");
  totem::StatusOr<std::string> key = totem::ReadKeyFile(key_file);
  if (!key.ok()) Usage(key.status().ToString());
  config.transport.key = key.value();
  for (totem::MultiRingNodeConfig::LocalRing& lr : multi.local) {
    lr.node.ring.node_id = config.ring.node_id;
    lr.node.transport.key = key.value();
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  sigaddset(&signals, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  State st;
  if (!log_path.empty()) {
    st.log = std::fopen(log_path.c_str(), "w");
    if (st.log == nullptr) Usage("cannot open --log " + log_path + ": " + std::strerror(errno));
  }
  const totem::NodeId self = config.ring.node_id;
  totem::GroupCallbacks cb;
  cb.on_configuration = [&st](const totem::ConfigurationEvent& e) {
    std::lock_guard<std::mutex> lock(st.mu);
    Line(st, std::string("conf ") + totem::ConfigurationKindName(e.kind) + " " + e.id.ToString() +
                 " members=" + Ids(e.members));
    if (e.kind == totem::ConfigurationKind::kRegular) {
      st.regular_members = e.members;
      CheckFinished(st);
    }
  };
  cb.on_group_view = [&st](const totem::GroupView& v) {
    std::lock_guard<std::mutex> lock(st.mu);
    Line(st, "view " + v.group + " members=" + Ids(v.members) + " joined=" + Ids(v.joined) +
                 " left=" + Ids(v.left) + " reason=" + totem::GroupViewReasonName(v.reason));
    st.cv.notify_all();
  };
  cb.on_group_deliver = [&st](const totem::GroupDelivery& d) {
    const std::string payload(d.payload.begin(), d.payload.end());
    std::lock_guard<std::mutex> lock(st.mu);
    const std::string where = "msg " + Join(d.groups, ',') + " from=" + std::to_string(d.sender);
    if (payload.rfind("done:", 0) == 0) {
      Line(st, where + " i=done");
      st.done_from.insert(d.sender);
      CheckFinished(st);
      return;
    }
    const size_t colon = payload.find(':');
    const uint64_t index =
        colon == std::string::npos ? 0 : std::strtoull(payload.c_str() + colon + 1, nullptr, 10);
    Line(st, where + " i=" + std::to_string(index));
    ++st.delivered;
    uint64_t& last = st.last_index[d.sender];
    if (index <= last) {
      ++st.order_errors;
      if (st.first_error.empty()) {
        st.first_error = "from " + std::to_string(d.sender) + " #" + std::to_string(index) +
                         " after #" + std::to_string(last);
      }
    }
    last = index;
  };

  totem::StatusOr<std::unique_ptr<totem::GroupNode>> started =
      multi_ring ? totem::GroupNode::StartMultiRing(multi, std::move(cb))
                 : totem::GroupNode::Start(config, std::move(cb));
  if (!started.ok()) {
    std::fprintf(stderr, "totem-group-node: cannot start: %s\n",
                 started.status().ToString().c_str());
    return started.status().code() == totem::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::unique_ptr<totem::GroupNode> node = std::move(started).value();

  std::atomic<bool> exiting{false};
  std::thread watcher([&] {
    int sig = 0;
    while (sigwait(&signals, &sig) == 0) {
      if (exiting) return;
      if (sig == SIGUSR2) {
        for (const std::string& g : late_groups) {
          const totem::Status s = node->Join(g);
          if (!s.ok())
            std::fprintf(stderr, "totem-group-node: join %s: %s\n", g.c_str(),
                         s.ToString().c_str());
        }
        late_groups.clear();
        continue;
      }
      std::lock_guard<std::mutex> lock(st.mu);
      if (sig == SIGUSR1) {
        st.stop_sending = true;
      } else {
        st.exit_now = true;
      }
      st.cv.notify_all();
    }
  });

  auto submit = [&](const std::vector<std::string>& to, const std::string& payload) {
    const std::vector<uint8_t> bytes(payload.begin(), payload.end());
    for (;;) {
      const totem::Status s = node->Multicast(to, bytes, totem::Guarantee::kAgreed);
      if (s.code() != totem::StatusCode::kWouldBlock) return s;
      node->WaitWritable(std::chrono::milliseconds(100));
    }
  };

  int exit_code = 0;
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(timeout_s);
  for (const std::string& g : groups) {
    totem::Status s = node->Join(g);
    if (!s.ok()) Usage("join " + g + ": " + s.ToString());
  }
  bool ready = false;
  {
    std::unique_lock<std::mutex> lock(st.mu);
    // Polled: views of groups this node is not in wake nobody.
    auto expected_seen = [&] {
      for (const auto& [g, ids] : expect) {
        if (node->Members(g) != ids) return false;
      }
      return true;
    };
    while (!st.exit_now && !(ready = expected_seen()) && Clock::now() < deadline) {
      st.cv.wait_for(lock, std::chrono::milliseconds(20));
    }
  }
  if (!ready) {
    std::fprintf(stderr, "totem-group-node: expected views not seen before the timeout\n");
    exit_code = 3;
  } else {
    std::printf("READY node=%u\n", self);
    std::fflush(stdout);
    const Clock::time_point start = Clock::now();
    for (uint64_t i = 1; !targets.empty(); ++i) {
      {
        std::unique_lock<std::mutex> lock(st.mu);
        const auto due = start + std::chrono::microseconds((i - 1) * 1000000 / rate);
        st.cv.wait_until(lock, due, [&] { return st.stop_sending || st.exit_now; });
        if (st.stop_sending || st.exit_now) break;
      }
      const totem::Status s =
          submit(targets[(i - 1) % targets.size()], std::to_string(self) + ":" + std::to_string(i));
      if (!s.ok()) {
        std::fprintf(stderr, "totem-group-node: multicast failed: %s\n", s.ToString().c_str());
        exit_code = 1;
        break;
      }
    }
    std::unique_lock<std::mutex> lock(st.mu);
    st.cv.wait_until(lock, deadline, [&] { return st.stop_sending || st.exit_now; });
    if (st.stop_sending && !st.exit_now) {
      lock.unlock();
      if (!submit(groups, "done:" + std::to_string(self)).ok()) exit_code = 1;
      lock.lock();
      if (!st.cv.wait_until(lock, deadline, [&] { return st.finished || st.exit_now; })) {
        std::fprintf(stderr, "totem-group-node: not every member's done marker arrived\n");
        exit_code = 3;
      }
    }
  }
  node->Stop();
  exiting = true;
  pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();
  std::lock_guard<std::mutex> lock(st.mu);
  if (st.order_errors != 0) {
    std::fprintf(stderr, "totem-group-node: %llu order violations; first: %s\n",
                 static_cast<unsigned long long>(st.order_errors), st.first_error.c_str());
    exit_code = 4;
  }
  std::string layer;
  if (multi_ring) {
    const totem::core::MultiRingCounters mc = node->GetMultiRingCounters();
    layer = " mring_stubs_forwarded=" + std::to_string(mc.stubs_forwarded) +
            " mring_filtered_skipped=" + std::to_string(mc.filtered_skipped) +
            " mring_forwarded=" + std::to_string(mc.forwarded);
  }
  std::printf("FINISHED node=%u delivered=%llu %s%s\n", self,
              static_cast<unsigned long long>(st.delivered),
              node->GetGroupCounters().ToString().c_str(), layer.c_str());
  std::fflush(stdout);
  if (st.log != nullptr) std::fclose(st.log);
  return exit_code;
}
