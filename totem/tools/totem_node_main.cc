// totem-node: a demo and test processor on a Totem ring. It sends numbered
// messages, delivers everything in the total order, checks per-sender FIFO
// order, prints every configuration change, and reports a digest of the
// delivered sequence, so that several processes can be compared: equal
// digests mean equal delivery sequences.
//
// Payload of message i (1-based) from node n:
//     u32 n | u64 i | u64 incarnation | filler bytes
// The incarnation is random per process start, so a restarted node's
// messages never collide with its previous life's.
//
// Two ways to run:
//  - Count mode (default): once a regular configuration with --wait-members
//    members (default: every peer) is installed, send --send messages (the
//    ring forms dynamically; what is sent in a smaller ring would not reach
//    the late joiners, and their counts would never add up); once --expect-total
//    messages were delivered, submit a "done" marker (i = 0, safe) and keep
//    running until every member of the current regular configuration has
//    delivered its own marker (or --timeout-s), then --linger-ms more.
//  - Duration mode (--run-seconds S): send (at --rate msgs/s, or as fast as
//    the queue allows; at most --send messages if given; from the start
//    unless --wait-members is given) for S seconds, then
//    stop sending, linger --linger-ms and exit. The test/benchmark harness
//    usually ends it earlier with SIGTERM.
// In both modes SIGTERM or SIGINT ends the run cleanly: the node stops, the
// delivery log is flushed and closed, and the exit code is 0 unless an order
// violation was seen.
//
// Output (stdout, flushed per line for configuration events):
//   "config: ..." (the flags), one line per configuration event:
//     config regular id=<rep>:<seq> members=[1,2,3] joined=[..] left=[..] t_us=<T>
//     config transitional id=<rep>:<seq> members=[..] t_us=<T>
//   after each regular configuration, the first delivery in it:
//     resumed id=<rep>:<seq> t_us=<T>
//   (T = CLOCK_MONOTONIC in microseconds, comparable across processes on one
//   host), "state: initial_ring_seq=<n>", the first ten deliveries as "ordered #k ..." (not with
//   --quiet), a stats line per second, "RESULT ..." (count mode) and finally "DONE node=<id>
//   delivered=<n> digest=<16 hex> configs=<regular installs> counters: <...>".
//
// --delivery-log FILE (for offline checks of extended virtual synchrony):
//   # totem-node delivery log node=<id> incarnation=<hex>
//   conf <regular|transitional> <rep>:<seq> <m1,m2,...>
//   msg <regular|transitional> <rep>:<seq> <sender> <incarnation hex> <index> <agreed|safe>
//   # end delivered=<n>                (only after a clean exit)
// Every configuration event and every delivery (markers included, index 0)
// is one line, in delivery order. The log is written through a 4 KiB stdio
// buffer, flushed at every configuration event, once a second and at exit;
// after kill -9 it is a prefix.
//
// Exit codes: 0 ok, 2 bad flags or config, 3 timeout, 4 order violation,
// 1 other failure.
#include <signal.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tool_util.h"
#include "totem/node.h"

namespace {

using totem::tools::IdList;
using totem::tools::MonotonicUs;
using totem::tools::ReadLE;
using totem::tools::WriteLE;

using Clock = std::chrono::steady_clock;

constexpr size_t kPayloadHeaderBytes = 20;  // u32 sender | u64 index | u64 incarnation

struct Options {
  totem::NodeId id = totem::kNoNode;
  std::vector<totem::Peer> peers;
  std::string key_file;
  totem::TransportMode mode = totem::TransportMode::kUnicast;
  std::string mcast_group = "239.192.77.1";
  uint16_t mcast_port = 0;
  std::string mcast_if = "0.0.0.0";
  bool send_given = false;
  uint64_t send = 0;
  uint64_t size = 100;
  std::string guarantee = "agreed";  // agreed | safe | mixed
  bool expect_given = false;
  uint64_t expect_total = 0;
  uint64_t timeout_s = 60;
  uint64_t run_seconds = 0;  // 0: count mode
  uint64_t rate = 0;         // msgs/s this node submits; 0: as fast as the queue allows
  bool wait_members_given = false;
  uint64_t wait_members = 0;  // start sending once a regular configuration has this many
  bool packing = true;
  uint32_t window = 0;  // 0: the library default
  uint32_t max_per_visit = 0;
  uint32_t frame_bytes = 0;
  uint64_t max_pending_bytes = 0;
  uint32_t token_timeout_us = 0;  // 0: the library default
  uint32_t join_timeout_us = 0;
  uint32_t consensus_timeout_us = 0;
  uint32_t merge_timeout_us = 0;
  std::string state_dir;
  std::string delivery_log;
  bool quiet = false;
  uint64_t linger_ms = 500;
};

[[noreturn]] void Usage(const std::string& error) {
  std::fprintf(stderr,
               "totem-node: %s\n"
               "usage: totem-node --id N --peers ID@HOST:PORT,... --key-file PATH\n"
               "         [--mode unicast|multicast] [--mcast-group G] [--mcast-port P]\n"
               "         [--mcast-if ADDR] [--send N] [--size BYTES]\n"
               "         [--guarantee agreed|safe|mixed] [--expect-total M] [--timeout-s S]\n"
               "         [--run-seconds S] [--rate MSGS_PER_S] [--wait-members N]\n"
               "         [--state-dir DIR] [--delivery-log FILE]\n"
               "         [--token-timeout-us N] [--join-timeout-us N] [--consensus-timeout-us N]\n"
               "         [--merge-timeout-us N]\n"
               "         [--no-packing] [--window N] [--max-per-visit N] [--frame-bytes N]\n"
               "         [--max-pending-bytes N] [--linger-ms MS] [--quiet]\n",
               error.c_str());
  std::exit(2);
}

uint64_t ParseU64(const std::string& flag, const std::string& s, uint64_t max) {
  return totem::tools::ParseU64(flag, s, max, Usage);
}

std::vector<totem::Peer> ParsePeers(const std::string& s) {
  std::vector<totem::Peer> peers;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    const size_t at = item.find('@');
    const size_t colon = item.rfind(':');
    if (at == std::string::npos || colon == std::string::npos || colon < at) {
      Usage("--peers entry '" + item + "' is not ID@HOST:PORT");
    }
    totem::Peer p;
    p.id = static_cast<totem::NodeId>(ParseU64("--peers id", item.substr(0, at), 0xFFFFFFFFu));
    p.host = item.substr(at + 1, colon - at - 1);
    p.port = static_cast<uint16_t>(ParseU64("--peers port", item.substr(colon + 1), 65535));
    peers.push_back(p);
  }
  if (peers.empty()) Usage("--peers is empty");
  return peers;
}

Options ParseFlags(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Usage(flag + " needs a value");
      return argv[++i];
    };
    auto u32 = [&]() { return static_cast<uint32_t>(ParseU64(flag, value(), 0xFFFFFFFFu)); };
    if (flag == "--id") {
      o.id = u32();
    } else if (flag == "--peers") {
      o.peers = ParsePeers(value());
    } else if (flag == "--key-file") {
      o.key_file = value();
    } else if (flag == "--mode") {
      const std::string m = value();
      if (m == "unicast") {
        o.mode = totem::TransportMode::kUnicast;
      } else if (m == "multicast") {
        o.mode = totem::TransportMode::kMulticast;
      } else {
        Usage("--mode must be unicast or multicast, got '" + m + "'");
      }
    } else if (flag == "--mcast-group") {
      o.mcast_group = value();
    } else if (flag == "--mcast-port") {
      o.mcast_port = static_cast<uint16_t>(ParseU64(flag, value(), 65535));
    } else if (flag == "--mcast-if") {
      o.mcast_if = value();
    } else if (flag == "--send") {
      o.send = ParseU64(flag, value(), 1ull << 40);
      o.send_given = true;
    } else if (flag == "--size") {
      o.size = ParseU64(flag, value(), 1u << 30);
    } else if (flag == "--guarantee") {
      o.guarantee = value();
      if (o.guarantee != "agreed" && o.guarantee != "safe" && o.guarantee != "mixed") {
        Usage("--guarantee must be agreed, safe or mixed, got '" + o.guarantee + "'");
      }
    } else if (flag == "--expect-total") {
      o.expect_total = ParseU64(flag, value(), 1ull << 48);
      o.expect_given = true;
    } else if (flag == "--timeout-s") {
      o.timeout_s = ParseU64(flag, value(), 86400);
    } else if (flag == "--run-seconds") {
      o.run_seconds = ParseU64(flag, value(), 86400);
      if (o.run_seconds == 0) Usage("--run-seconds must be at least 1");
    } else if (flag == "--rate") {
      o.rate = ParseU64(flag, value(), 10000000);
    } else if (flag == "--wait-members") {
      o.wait_members = ParseU64(flag, value(), 1u << 20);
      o.wait_members_given = true;
    } else if (flag == "--state-dir") {
      o.state_dir = value();
    } else if (flag == "--delivery-log") {
      o.delivery_log = value();
    } else if (flag == "--token-timeout-us") {
      o.token_timeout_us = u32();
    } else if (flag == "--join-timeout-us") {
      o.join_timeout_us = u32();
    } else if (flag == "--consensus-timeout-us") {
      o.consensus_timeout_us = u32();
    } else if (flag == "--merge-timeout-us") {
      o.merge_timeout_us = u32();
    } else if (flag == "--no-packing") {
      o.packing = false;
    } else if (flag == "--window") {
      o.window = u32();
    } else if (flag == "--max-per-visit") {
      o.max_per_visit = u32();
    } else if (flag == "--frame-bytes") {
      o.frame_bytes = static_cast<uint32_t>(ParseU64(flag, value(), 65000));
    } else if (flag == "--max-pending-bytes") {
      o.max_pending_bytes = ParseU64(flag, value(), 1ull << 40);
    } else if (flag == "--linger-ms") {
      o.linger_ms = ParseU64(flag, value(), 3600000);
    } else if (flag == "--quiet") {
      o.quiet = true;
    } else if (flag == "-h" || flag == "--help") {
      Usage("help");
    } else {
      Usage("unknown flag '" + flag + "'");
    }
  }
  if (o.id == totem::kNoNode) Usage("--id is required (and not 0)");
  if (o.peers.empty()) Usage("--peers is required");
  if (o.key_file.empty()) Usage("--key-file is required (make one with totem-keygen)");
  if (o.size < kPayloadHeaderBytes) {
    Usage("--size must be at least " + std::to_string(kPayloadHeaderBytes) + " bytes");
  }
  if (o.run_seconds == 0 && o.rate != 0) Usage("--rate needs --run-seconds");
  if (o.run_seconds != 0 && o.expect_given) Usage("--expect-total is for count mode only");
  if (o.run_seconds != 0 && !o.send_given) o.send = 1ull << 40;  // unbounded
  if (!o.expect_given) o.expect_total = o.send * o.peers.size();
  if (!o.wait_members_given) o.wait_members = o.run_seconds == 0 ? o.peers.size() : 0;
  if (o.wait_members > o.peers.size()) Usage("--wait-members exceeds the number of peers");
  return o;
}

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

// Per-sender-incarnation FIFO state.
struct SenderState {
  uint64_t last_index = 0;
  totem::ConfigurationKind last_kind = totem::ConfigurationKind::kRegular;
  totem::ConfigurationId last_config;
};

// Everything the callbacks record; guarded by mu.
struct Tally {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t delivered = 0;
  uint64_t digest = kFnvOffset;
  std::map<std::pair<totem::NodeId, uint64_t>, SenderState> senders;  // (sender, incarnation)
  std::set<totem::NodeId> done_markers;
  std::vector<totem::NodeId> regular_members;  // current regular configuration
  totem::ConfigurationKind config_kind = totem::ConfigurationKind::kRegular;
  totem::ConfigurationId config_id;
  bool awaiting_first_delivery = false;  // no delivery yet in the current regular config
  uint64_t regular_installs = 0;
  uint64_t order_errors = 0;
  std::string first_error;
  Clock::time_point done_at;
  bool stop = false;  // a signal asked the node to stop
  int stop_signal = 0;
};

// The delivery log (see the file comment). Written from the node's I/O
// thread; flushed from the main thread too (stdio locks the stream).
class DeliveryLog {
 public:
  bool Open(const std::string& path) {
    file_ = std::fopen(path.c_str(), "w");  // stdio's default: fully buffered, 4 KiB
    return file_ != nullptr;
  }
  bool enabled() const { return file_ != nullptr; }
  std::FILE* file() const { return file_; }
  void Flush() {
    if (file_ != nullptr) std::fflush(file_);
  }
  void Close() {
    if (file_ != nullptr) std::fclose(file_);
    file_ = nullptr;
  }

 private:
  std::FILE* file_ = nullptr;
};

void Fail(Tally& tally, const std::string& what) {
  ++tally.order_errors;
  if (tally.first_error.empty()) tally.first_error = what;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseFlags(argc, argv);

  // SIGTERM / SIGINT are taken by a watcher thread (sigwait), so every
  // thread started below inherits the blocked mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  totem::NodeConfig config;
  config.ring.node_id = o.id;
  for (const totem::Peer& p : o.peers) config.ring.members.push_back(p.id);
  if (o.window != 0) config.ring.window_size = o.window;
  if (o.max_per_visit != 0) config.ring.max_messages_per_visit = o.max_per_visit;
  if (o.frame_bytes != 0) config.ring.max_frame_bytes = o.frame_bytes;
  if (o.max_pending_bytes != 0) config.ring.max_pending_bytes = o.max_pending_bytes;
  if (o.token_timeout_us != 0) config.ring.token_timeout_us = o.token_timeout_us;
  if (o.join_timeout_us != 0) config.ring.join_timeout_us = o.join_timeout_us;
  if (o.consensus_timeout_us != 0) config.ring.consensus_timeout_us = o.consensus_timeout_us;
  if (o.merge_timeout_us != 0) config.ring.merge_timeout_us = o.merge_timeout_us;
  config.ring.packing = o.packing;
  config.transport.mode = o.mode;
  config.transport.peers = o.peers;
  config.transport.key_file = o.key_file;
  config.transport.mcast_group = o.mcast_group;
  config.transport.mcast_port = o.mcast_port;
  config.transport.mcast_interface = o.mcast_if;
  config.state_dir = o.state_dir;

  std::random_device rd;
  const uint64_t incarnation = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ MonotonicUs();

  std::string peers_text;
  for (const totem::Peer& p : o.peers) {
    if (!peers_text.empty()) peers_text += ",";
    peers_text += std::to_string(p.id) + "@" + p.host + ":" + std::to_string(p.port);
  }
  std::printf(
      "config: node=%u mode=%s peers=%s send=%llu size=%llu guarantee=%s expect_total=%llu "
      "run_seconds=%llu rate=%llu packing=%s window=%u max_per_visit=%u frame_bytes=%u "
      "token_timeout_us=%u timeout_s=%llu linger_ms=%llu state_dir=%s incarnation=%016llx\n",
      o.id, o.mode == totem::TransportMode::kUnicast ? "unicast" : "multicast", peers_text.c_str(),
      static_cast<unsigned long long>(o.send), static_cast<unsigned long long>(o.size),
      o.guarantee.c_str(), static_cast<unsigned long long>(o.expect_total),
      static_cast<unsigned long long>(o.run_seconds), static_cast<unsigned long long>(o.rate),
      o.packing ? "on" : "off", config.ring.window_size, config.ring.max_messages_per_visit,
      config.ring.max_frame_bytes, config.ring.token_timeout_us,
      static_cast<unsigned long long>(o.timeout_s), static_cast<unsigned long long>(o.linger_ms),
      o.state_dir.empty() ? "-" : o.state_dir.c_str(),
      static_cast<unsigned long long>(incarnation));
  std::fflush(stdout);

  DeliveryLog log;
  if (!o.delivery_log.empty() && !log.Open(o.delivery_log)) {
    std::fprintf(stderr, "totem-node: cannot open --delivery-log %s: %s\n", o.delivery_log.c_str(),
                 std::strerror(errno));
    return 2;
  }
  if (log.enabled()) {
    std::fprintf(log.file(), "# totem-node delivery log node=%u incarnation=%016llx\n", o.id,
                 static_cast<unsigned long long>(incarnation));
  }

  Tally tally;
  const bool count_mode = o.run_seconds == 0;
  const uint64_t expect = count_mode ? o.expect_total : UINT64_MAX;
  const bool quiet = o.quiet;
  totem::Callbacks callbacks;
  callbacks.on_configuration = [&tally, &log](const totem::ConfigurationEvent& e) {
    const uint64_t t = MonotonicUs();
    const bool regular = e.kind == totem::ConfigurationKind::kRegular;
    {
      std::lock_guard<std::mutex> lock(tally.mu);
      tally.config_kind = e.kind;
      tally.config_id = e.id;
      if (regular) {
        tally.regular_members = e.members;
        tally.awaiting_first_delivery = true;
        ++tally.regular_installs;
      }
      tally.cv.notify_all();
    }
    if (regular) {
      std::printf("config regular id=%s members=[%s] joined=[%s] left=[%s] t_us=%llu\n",
                  e.id.ToString().c_str(), IdList(e.members).c_str(), IdList(e.joined).c_str(),
                  IdList(e.left).c_str(), static_cast<unsigned long long>(t));
    } else {
      std::printf("config transitional id=%s members=[%s] t_us=%llu\n", e.id.ToString().c_str(),
                  IdList(e.members).c_str(), static_cast<unsigned long long>(t));
    }
    std::fflush(stdout);
    if (log.enabled()) {
      std::fprintf(log.file(), "conf %s %s %s\n", totem::ConfigurationKindName(e.kind),
                   e.id.ToString().c_str(), IdList(e.members).c_str());
      log.Flush();
    }
  };
  callbacks.on_deliver = [&tally, &log, expect, quiet](const totem::Delivery& d) {
    std::lock_guard<std::mutex> lock(tally.mu);
    if (tally.awaiting_first_delivery && d.config_kind == totem::ConfigurationKind::kRegular) {
      tally.awaiting_first_delivery = false;
      std::printf("resumed id=%s t_us=%llu\n", d.config_id.ToString().c_str(),
                  static_cast<unsigned long long>(MonotonicUs()));
      std::fflush(stdout);
    }
    if (d.payload.size() < kPayloadHeaderBytes) {
      Fail(tally, "payload shorter than its header");
      if (log.enabled()) {
        std::fprintf(log.file(), "msg %s %s %u - 0 %s\n",
                     totem::ConfigurationKindName(d.config_kind), d.config_id.ToString().c_str(),
                     d.sender, totem::GuaranteeName(d.guarantee));
      }
      return;
    }
    const auto claimed = static_cast<totem::NodeId>(ReadLE(d.payload.data(), 4));
    const uint64_t index = ReadLE(d.payload.data() + 4, 8);
    const uint64_t inc = ReadLE(d.payload.data() + 12, 8);
    if (log.enabled()) {
      std::fprintf(log.file(), "msg %s %s %u %016llx %llu %s\n",
                   totem::ConfigurationKindName(d.config_kind), d.config_id.ToString().c_str(),
                   d.sender, static_cast<unsigned long long>(inc),
                   static_cast<unsigned long long>(index), totem::GuaranteeName(d.guarantee));
    }
    if (d.config_kind != tally.config_kind || d.config_id != tally.config_id) {
      Fail(tally, "delivery in configuration " + d.config_id.ToString() + " (" +
                      totem::ConfigurationKindName(d.config_kind) +
                      ") which is not the current one " + tally.config_id.ToString());
    }
    if (claimed != d.sender) {
      Fail(tally, "payload of node " + std::to_string(claimed) + " delivered as from " +
                      std::to_string(d.sender));
    }
    if (index == 0) {  // done marker
      tally.done_markers.insert(d.sender);
      tally.cv.notify_all();
      return;
    }
    ++tally.delivered;
    uint64_t h = tally.digest;
    for (int i = 0; i < 4; ++i) h = (h ^ ((d.sender >> (8 * i)) & 0xFF)) * kFnvPrime;
    for (uint8_t b : d.payload) h = (h ^ b) * kFnvPrime;
    tally.digest = h;
    // FIFO per sender incarnation: strictly increasing always; without gaps
    // within one regular configuration (a gap is legitimate only across a
    // configuration change, where messages of another component or of a
    // failed sender may be missing).
    SenderState& s = tally.senders[{d.sender, inc}];
    const bool same_regular = s.last_index != 0 &&
                              d.config_kind == totem::ConfigurationKind::kRegular &&
                              s.last_kind == d.config_kind && s.last_config == d.config_id;
    if (index <= s.last_index || (same_regular && index != s.last_index + 1)) {
      Fail(tally, "from node " + std::to_string(d.sender) + " expected #" +
                      std::to_string(s.last_index + 1) + " got #" + std::to_string(index));
    }
    s.last_index = index;
    s.last_kind = d.config_kind;
    s.last_config = d.config_id;
    if (!quiet && tally.delivered <= 10) {
      std::printf("ordered #%llu from=%u seq=%llu guarantee=%s config=%s/%s\n",
                  static_cast<unsigned long long>(tally.delivered), d.sender,
                  static_cast<unsigned long long>(d.frame_seq), totem::GuaranteeName(d.guarantee),
                  totem::ConfigurationKindName(d.config_kind), d.config_id.ToString().c_str());
    }
    if (tally.delivered == expect) {
      tally.done_at = Clock::now();
      tally.cv.notify_all();
    }
  };

  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline =
      start + std::chrono::seconds(count_mode ? o.timeout_s : o.run_seconds);
  totem::StatusOr<std::unique_ptr<totem::Node>> started = totem::Node::Start(config, callbacks);
  if (!started.ok()) {
    std::fprintf(stderr, "totem-node: cannot start node %u: %s\n", o.id,
                 started.status().ToString().c_str());
    return started.status().code() == totem::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::unique_ptr<totem::Node> node = std::move(started).value();
  std::printf("state: initial_ring_seq=%llu\n",
              static_cast<unsigned long long>(node->initial_ring_seq()));
  std::fflush(stdout);

  // Signal watcher: turns SIGTERM / SIGINT into tally.stop. It is woken at
  // exit by a SIGTERM sent to itself with pthread_kill.
  std::atomic<bool> exiting{false};
  std::thread watcher([&] {
    int sig = 0;
    while (sigwait(&stop_signals, &sig) == 0) {
      if (exiting) return;
      std::lock_guard<std::mutex> lock(tally.mu);
      tally.stop = true;
      tally.stop_signal = sig;
      tally.cv.notify_all();
      return;
    }
  });

  std::atomic<bool> stop_sending{false};
  std::string send_error;
  std::thread sender([&] {
    if (o.wait_members > 0) {
      std::unique_lock<std::mutex> lock(tally.mu);
      tally.cv.wait(lock, [&] {
        return stop_sending || tally.stop || tally.regular_members.size() >= o.wait_members;
      });
    }
    std::vector<uint8_t> payload(o.size);
    for (size_t k = kPayloadHeaderBytes; k < payload.size(); ++k) {
      payload[k] = static_cast<uint8_t>(k * 7 + o.id);
    }
    const Clock::time_point send_start = Clock::now();
    for (uint64_t i = 1; i <= o.send && !stop_sending; ++i) {
      if (o.rate != 0) {
        const auto due = send_start + std::chrono::microseconds((i - 1) * 1000000 / o.rate);
        while (!stop_sending && Clock::now() < due) {
          std::this_thread::sleep_until(
              std::min(due, Clock::now() + std::chrono::milliseconds(50)));
        }
        if (stop_sending) return;
      }
      WriteLE(payload.data(), o.id, 4);
      WriteLE(payload.data() + 4, i, 8);
      WriteLE(payload.data() + 12, incarnation, 8);
      if (payload.size() > kPayloadHeaderBytes) {
        payload[kPayloadHeaderBytes] = static_cast<uint8_t>(i);
      }
      totem::Guarantee g = totem::Guarantee::kAgreed;
      if (o.guarantee == "safe" || (o.guarantee == "mixed" && i % 2 == 0)) {
        g = totem::Guarantee::kSafe;
      }
      for (;;) {
        totem::Status st = node->Submit(payload, g);
        if (st.ok()) break;
        if (st.code() != totem::StatusCode::kWouldBlock || stop_sending) {
          if (!stop_sending) send_error = st.ToString();
          return;
        }
        node->WaitWritable(std::chrono::milliseconds(100));
      }
    }
  });

  // Phase 1: count mode: deliver everything expected; duration mode: run
  // until the deadline. Either ends early on a signal. Reports once a second.
  bool timed_out = false;
  bool stopped_by_signal = false;
  {
    totem::Counters prev = node->GetCounters();
    Clock::time_point prev_at = Clock::now();
    std::unique_lock<std::mutex> lock(tally.mu);
    for (;;) {
      if (tally.stop) {
        stopped_by_signal = true;
        break;
      }
      if (count_mode && tally.delivered >= expect) break;
      if (Clock::now() >= deadline) {
        timed_out = count_mode;
        break;
      }
      const Clock::time_point tick = std::min(prev_at + std::chrono::seconds(1), deadline);
      tally.cv.wait_until(lock, tick,
                          [&] { return tally.stop || (count_mode && tally.delivered >= expect); });
      if (Clock::now() >= prev_at + std::chrono::seconds(1)) {
        lock.unlock();
        log.Flush();
        const totem::Counters c = node->GetCounters();
        const Clock::time_point now = Clock::now();
        const double dt = std::chrono::duration<double>(now - prev_at).count();
        if (!quiet) {
          std::printf(
              "node=%u delivered=%llu msgs/s=%.0f MB/s=%.2f rotations/s=%.0f retrans=%llu\n", o.id,
              static_cast<unsigned long long>(c.messages_delivered),
              static_cast<double>(c.messages_delivered - prev.messages_delivered) / dt,
              static_cast<double>(c.bytes_delivered - prev.bytes_delivered) / dt / 1e6,
              static_cast<double>(c.token_rotations - prev.token_rotations) / dt,
              static_cast<unsigned long long>(c.retransmissions_sent));
          std::fflush(stdout);
        }
        prev = c;
        prev_at = now;
        lock.lock();
      }
    }
  }

  int exit_code = 0;
  uint64_t delivered = 0;
  uint64_t digest = 0;
  {
    std::lock_guard<std::mutex> lock(tally.mu);
    delivered = tally.delivered;
    digest = tally.digest;
    if (count_mode && !timed_out && !stopped_by_signal) {
      const double secs = std::chrono::duration<double>(tally.done_at - start).count();
      std::printf("RESULT node=%u delivered=%llu elapsed_s=%.3f msgs/s=%.0f\n", o.id,
                  static_cast<unsigned long long>(delivered), secs,
                  secs > 0 ? static_cast<double>(delivered) / secs : 0.0);
    }
  }
  if (stopped_by_signal) {
    std::printf("STOP node=%u signal=%d\n", o.id, tally.stop_signal);
  } else if (timed_out) {
    std::fprintf(stderr, "totem-node: node %u timed out after %llu s: delivered %llu of %llu\n",
                 o.id, static_cast<unsigned long long>(o.timeout_s),
                 static_cast<unsigned long long>(delivered),
                 static_cast<unsigned long long>(expect));
    exit_code = 3;
  } else if (count_mode) {
    // Phase 2: tell the others, and keep the token moving until every member
    // of the current regular configuration is done, so nobody's leaving
    // disturbs the others' last deliveries.
    std::vector<uint8_t> marker(kPayloadHeaderBytes, 0);
    WriteLE(marker.data(), o.id, 4);
    WriteLE(marker.data() + 12, incarnation, 8);
    totem::Status st = node->Submit(marker, totem::Guarantee::kSafe);
    while (st.code() == totem::StatusCode::kWouldBlock && Clock::now() < deadline) {
      node->WaitWritable(std::chrono::milliseconds(100));
      st = node->Submit(marker, totem::Guarantee::kSafe);
    }
    std::unique_lock<std::mutex> lock(tally.mu);
    auto all_done = [&] {
      if (tally.stop) return true;
      for (totem::NodeId m : tally.regular_members) {
        if (tally.done_markers.count(m) == 0) return false;
      }
      return true;
    };
    if (!tally.cv.wait_until(lock, deadline, all_done)) {
      std::printf("WARN node=%u only %zu of %zu members reported done before the timeout\n", o.id,
                  tally.done_markers.size(), tally.regular_members.size());
    }
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(o.linger_ms));
  } else {
    stop_sending = true;  // duration mode: let the last messages settle
    std::unique_lock<std::mutex> lock(tally.mu);
    tally.cv.wait_for(lock, std::chrono::milliseconds(o.linger_ms), [&] { return tally.stop; });
  }

  {
    std::lock_guard<std::mutex> lock(tally.mu);  // wakes a sender waiting for members
    stop_sending = true;
  }
  tally.cv.notify_all();
  node->Stop();  // wakes a sender blocked in WaitWritable; no callback after this
  sender.join();
  exiting = true;
  pthread_kill(watcher.native_handle(), SIGTERM);
  watcher.join();
  if (!send_error.empty()) {
    std::fprintf(stderr, "totem-node: submit failed: %s\n", send_error.c_str());
    if (exit_code == 0) exit_code = 1;
  }
  uint64_t regular_installs = 0;
  {
    std::lock_guard<std::mutex> lock(tally.mu);
    regular_installs = tally.regular_installs;
    if (tally.order_errors != 0) {
      std::fprintf(stderr, "totem-node: %llu order violations; first: %s\n",
                   static_cast<unsigned long long>(tally.order_errors), tally.first_error.c_str());
      exit_code = 4;
    }
  }
  if (log.enabled()) {
    std::fprintf(log.file(), "# end delivered=%llu\n", static_cast<unsigned long long>(delivered));
    log.Close();
  }
  const totem::Counters c = node->GetCounters();
  std::printf("DONE node=%u delivered=%llu digest=%016llx configs=%llu counters: %s\n", o.id,
              static_cast<unsigned long long>(delivered), static_cast<unsigned long long>(digest),
              static_cast<unsigned long long>(regular_installs), c.ToString().c_str());
  std::fflush(stdout);
  return exit_code;
}
