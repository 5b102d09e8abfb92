// totem-mring-node: a demo, test and measurement processor of the multiple
// ring runtime (totem/multi_ring_node.h). It is on one ring (ordinary) or on
// several (a gateway), sends numbered messages at a rate, delivers
// everything in the global total order, checks that order, and logs every
// delivery in a parseable form so several processes can be compared.
//
// Flags:
//   --id N                       this processor's id (the same on all its rings)
//   --ring R:ID@HOST:PORT,...    a local ring: its number and its processors
//                                (repeat for a gateway; the first one originates)
//   --rings R1,R2,...            every ring of the network
//   --link G:A:B                 a gateway edge (repeatable)
//   --key-file PATH              cluster key (totem-keygen)
//   [--rate MSGS_PER_S]          0 (default): do not send
//   [--send N]                   stop after N messages (default: no limit)
//   [--size BYTES]               payload size, >= 20 (default 100)
//   [--guarantee agreed|safe]    (default agreed)
//   [--run-seconds S]            exit after S seconds (default: until SIGTERM)
//   [--gv-interval-us N]         guarantee-vector period (default 20000)
//   [--incarnation N]            message-id incarnation (default: wall clock s)
//   [--token-timeout-us N] [--state-dir DIR] (DIR/ring<R> per ring)
//   [--delivery-log FILE]
// Payload: u32 origin | u64 index (1-based) | u64 send time (CLOCK_MONOTONIC
// us) | filler.
//
// Signals: SIGUSR1 stops sending and prints "SENT node=<id> sent=<n>";
// SIGTERM / SIGINT end the run cleanly.
//
// Output (stdout, line-buffered): "config: ...", per local ring
// configuration "ring <R> config <regular|transitional> id=<rep>:<seq>
// members=[..]", per topology event "topology kind=<ring-gateways|bridge>
// ring=<R> other=<R> gateways=[..] reachable=[..]", a "stats ..." line per
// second, and at the end "DONE node=<id> sent=<n> delivered=<n>
// order_violations=<n> fifo_violations=<n> lat_n=<n> lat_mean_us=<n>
// lat_p50_us=<n> lat_p99_us=<n> <layer counters>".
// Delivery log (flushed every 100 ms and at exit):
//   m <timestamp> <source ring> <origin> <origin seq hex> <index> <a|s>
//   t <timestamp> <source ring> <kind> <ring> <other ring> reachable=<r1,r2>
//
// Exit codes: 0 ok, 2 bad flags or config, 4 order violation, 1 other.
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tool_util.h"
#include "totem/multi_ring_node.h"

namespace {

using totem::tools::IdList;
using totem::tools::MonotonicUs;

constexpr size_t kHeaderBytes = 20;

std::atomic<bool> g_stop{false};
std::atomic<bool> g_stop_sending{false};

void OnSignal(int sig) {
  if (sig == SIGUSR1)
    g_stop_sending = true;
  else
    g_stop = true;
}

[[noreturn]] void Usage(const std::string& error) {
  std::fprintf(stderr,
               "totem-mring-node: %s\n"
               "usage: totem-mring-node --id N --ring R:ID@HOST:PORT,... [--ring ...]\n"
               "         --rings R1,R2,... [--link G:A:B ...] --key-file PATH\n"
               "         [--rate MSGS_PER_S] [--send N] [--size BYTES] [--guarantee agreed|safe]\n"
               "         [--run-seconds S] [--gv-interval-us N] [--incarnation N]\n"
               "         [--token-timeout-us N] [--state-dir DIR] [--delivery-log FILE]\n",
               error.c_str());
  std::exit(2);
}

uint64_t ParseU64(const std::string& what, const std::string& s, uint64_t max) {
  return totem::tools::ParseU64(what, s, max, Usage);
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, sep)) out.push_back(item);
  return out;
}

struct LocalRingFlag {
  totem::core::RingNumber ring = 0;
  std::vector<totem::Peer> peers;
};

struct Options {
  totem::NodeId id = totem::kNoNode;
  std::vector<LocalRingFlag> local;
  std::vector<totem::core::RingNumber> rings;
  std::vector<totem::core::GatewayLink> links;
  std::string key_file;
  uint64_t rate = 0;
  uint64_t send = UINT64_MAX;
  uint64_t size = 100;
  totem::Guarantee guarantee = totem::Guarantee::kAgreed;
  uint64_t run_seconds = 0;
  uint64_t gv_interval_us = 20000;
  uint32_t incarnation = 0;
  uint32_t token_timeout_us = 0;
  std::string state_dir;
  std::string delivery_log;
};

LocalRingFlag ParseRing(const std::string& s) {
  const size_t colon = s.find(':');
  if (colon == std::string::npos) Usage("--ring '" + s + "' is not R:ID@HOST:PORT,...");
  LocalRingFlag r;
  r.ring = static_cast<uint32_t>(ParseU64("--ring number", s.substr(0, colon), 0xFFFFFFFFu));
  for (const std::string& item : Split(s.substr(colon + 1), ',')) {
    const size_t at = item.find('@');
    const size_t pc = item.rfind(':');
    if (at == std::string::npos || pc == std::string::npos || pc < at) {
      Usage("--ring entry '" + item + "' is not ID@HOST:PORT");
    }
    totem::Peer p;
    p.id = static_cast<totem::NodeId>(ParseU64("--ring id", item.substr(0, at), 0xFFFFFFFFu));
    p.host = item.substr(at + 1, pc - at - 1);
    p.port = static_cast<uint16_t>(ParseU64("--ring port", item.substr(pc + 1), 65535));
    r.peers.push_back(p);
  }
  if (r.peers.empty()) Usage("--ring " + s + " has no processors");
  return r;
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
    } else if (flag == "--ring") {
      o.local.push_back(ParseRing(value()));
    } else if (flag == "--rings") {
      for (const std::string& r : Split(value(), ',')) {
        o.rings.push_back(static_cast<uint32_t>(ParseU64("--rings", r, 0xFFFFFFFFu)));
      }
    } else if (flag == "--link") {
      const std::vector<std::string> parts = Split(value(), ':');
      if (parts.size() != 3) Usage("--link needs G:A:B");
      totem::core::GatewayLink l;
      l.gateway = static_cast<uint32_t>(ParseU64("--link gateway", parts[0], 0xFFFFFFFFu));
      l.ring_a = static_cast<uint32_t>(ParseU64("--link ring", parts[1], 0xFFFFFFFFu));
      l.ring_b = static_cast<uint32_t>(ParseU64("--link ring", parts[2], 0xFFFFFFFFu));
      o.links.push_back(l);
    } else if (flag == "--key-file") {
      o.key_file = value();
    } else if (flag == "--rate") {
      o.rate = ParseU64(flag, value(), 10000000);
    } else if (flag == "--send") {
      o.send = ParseU64(flag, value(), UINT64_MAX);
    } else if (flag == "--size") {
      o.size = ParseU64(flag, value(), 1u << 20);
    } else if (flag == "--guarantee") {
      const std::string g = value();
      if (g == "agreed")
        o.guarantee = totem::Guarantee::kAgreed;
      else if (g == "safe")
        o.guarantee = totem::Guarantee::kSafe;
      else
        Usage("--guarantee must be agreed or safe, got '" + g + "'");
    } else if (flag == "--run-seconds") {
      o.run_seconds = ParseU64(flag, value(), 86400);
    } else if (flag == "--gv-interval-us") {
      o.gv_interval_us = ParseU64(flag, value(), 10000000);
    } else if (flag == "--incarnation") {
      o.incarnation = u32();
    } else if (flag == "--token-timeout-us") {
      o.token_timeout_us = u32();
    } else if (flag == "--state-dir") {
      o.state_dir = value();
    } else if (flag == "--delivery-log") {
      o.delivery_log = value();
    } else {
      Usage("unknown flag " + flag);
    }
  }
  if (o.id == totem::kNoNode) Usage("--id is required");
  if (o.local.empty()) Usage("--ring is required");
  if (o.rings.empty()) Usage("--rings is required");
  if (o.key_file.empty()) Usage("--key-file is required (make one with totem-keygen)");
  if (o.size < kHeaderBytes) Usage("--size must be >= " + std::to_string(kHeaderBytes));
  if (o.gv_interval_us == 0) Usage("--gv-interval-us must be > 0");
  return o;
}

void PutU(std::vector<uint8_t>& b, size_t at, uint64_t v, size_t n) {
  totem::tools::WriteLE(b.data() + at, v, n);
}
uint64_t GetU(std::span<const uint8_t> b, size_t at, size_t n) {
  return totem::tools::ReadLE(b.data() + at, n);
}

// Delivery state, touched on the ordering thread (callbacks) and read by main.
struct State {
  std::mutex mu;
  FILE* log = nullptr;
  uint64_t delivered = 0;
  uint64_t order_violations = 0;
  uint64_t fifo_violations = 0;
  bool have_last = false;
  totem::core::MessageKey last;
  std::map<std::pair<uint32_t, uint64_t>, uint64_t> last_index;  // (origin, incarnation)
  std::vector<uint32_t> latencies_us;
};

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseFlags(argc, argv);
  ::setvbuf(stdout, nullptr, _IOLBF, 0);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGUSR1, &sa, nullptr);

  totem::MultiRingNodeConfig config;
  for (const LocalRingFlag& l : o.local) {
    totem::MultiRingNodeConfig::LocalRing lr;
    lr.ring = l.ring;
    lr.node.ring.node_id = o.id;
    for (const totem::Peer& p : l.peers) lr.node.ring.members.push_back(p.id);
    if (o.token_timeout_us != 0) lr.node.ring.token_timeout_us = o.token_timeout_us;
    lr.node.transport.peers = l.peers;
    lr.node.transport.key_file = o.key_file;
    if (!o.state_dir.empty()) lr.node.state_dir = o.state_dir + "/ring" + std::to_string(l.ring);
    config.local.push_back(lr);
  }
  config.rings = o.rings;
  config.links = o.links;
  config.guarantee_interval_us = o.gv_interval_us;
  config.incarnation = o.incarnation;

  State st;
  if (!o.delivery_log.empty()) {
    st.log = std::fopen(o.delivery_log.c_str(), "w");
    if (st.log == nullptr) {
      std::fprintf(stderr, "totem-mring-node: cannot open %s\n", o.delivery_log.c_str());
      return 2;
    }
  }

  totem::MultiRingCallbacks cb;
  cb.on_deliver = [&](const totem::core::MultiDelivery& d) {
    const uint64_t now = MonotonicUs();
    std::lock_guard<std::mutex> lock(st.mu);
    st.delivered++;
    if (st.have_last && !(st.last < d.key)) st.order_violations++;
    st.have_last = true;
    st.last = d.key;
    uint64_t index = 0;
    if (d.payload.size() >= kHeaderBytes) {
      index = GetU(d.payload, 4, 8);
      auto& li = st.last_index[{d.key.origin, d.key.origin_seq >> 32}];
      if (index <= li) st.fifo_violations++;
      li = index;
      if (d.key.origin == o.id) {
        const uint64_t sent = GetU(d.payload, 12, 8);
        st.latencies_us.push_back(
            static_cast<uint32_t>(std::min<uint64_t>(now - sent, UINT32_MAX)));
      }
    }
    if (st.log != nullptr) {
      std::fprintf(st.log, "m %" PRIu64 " %u %u %" PRIx64 " %" PRIu64 " %c\n", d.key.timestamp,
                   d.key.source_ring, d.key.origin, d.key.origin_seq, index,
                   d.guarantee == totem::Guarantee::kSafe ? 's' : 'a');
    }
  };
  cb.on_topology = [&](const totem::core::TopologyEvent& t) {
    const char* kind =
        t.kind == totem::core::TopologyChangeKind::kBridge ? "bridge" : "ring-gateways";
    std::printf("topology kind=%s ring=%u other=%u gateways=[%s] reachable=[%s] t_us=%" PRIu64 "\n",
                kind, t.ring, t.other_ring, IdList(t.gateways).c_str(), IdList(t.reachable).c_str(),
                MonotonicUs());
    std::lock_guard<std::mutex> lock(st.mu);
    if (st.log != nullptr) {
      std::fprintf(st.log, "t %" PRIu64 " %u %s %u %u reachable=%s\n", t.key.timestamp,
                   t.key.source_ring, kind, t.ring, t.other_ring, IdList(t.reachable).c_str());
    }
  };
  cb.on_ring_configuration = [&](totem::core::RingNumber ring, const totem::ConfigurationEvent& e) {
    std::printf("ring %u config %s id=%s members=[%s] t_us=%" PRIu64 "\n", ring,
                totem::ConfigurationKindName(e.kind), e.id.ToString().c_str(),
                IdList(e.members).c_str(), MonotonicUs());
  };

  std::printf("config: id=%u local_rings=%zu rings=%zu links=%zu rate=%" PRIu64 " size=%" PRIu64
              " gv_interval_us=%" PRIu64 "\n",
              o.id, o.local.size(), o.rings.size(), o.links.size(), o.rate, o.size,
              o.gv_interval_us);
  totem::StatusOr<std::unique_ptr<totem::MultiRingNode>> started =
      totem::MultiRingNode::Start(config, std::move(cb));
  if (!started.ok()) {
    std::fprintf(stderr, "totem-mring-node: %s\n", started.status().ToString().c_str());
    return 2;
  }
  std::unique_ptr<totem::MultiRingNode> node = std::move(started).value();
  std::printf("started incarnation=%u\n", node->incarnation());

  // Sender thread.
  std::atomic<uint64_t> sent{0};
  std::thread sender([&] {
    if (o.rate == 0) return;
    const auto start = std::chrono::steady_clock::now();
    std::vector<uint8_t> payload(o.size, 0x5A);
    while (!g_stop && !g_stop_sending && sent < o.send) {
      const uint64_t due = static_cast<uint64_t>(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() *
          static_cast<double>(o.rate));
      if (sent >= due) {
        std::this_thread::sleep_for(std::chrono::microseconds(
            std::min<uint64_t>(1000000 / std::max<uint64_t>(o.rate, 1), 2000)));
        continue;
      }
      PutU(payload, 0, o.id, 4);
      PutU(payload, 4, sent + 1, 8);
      PutU(payload, 12, MonotonicUs(), 8);
      const totem::Status s = node->Submit(payload, o.guarantee);
      if (s.code() == totem::StatusCode::kWouldBlock) {
        node->WaitWritable(std::chrono::milliseconds(50));
        continue;
      }
      if (!s.ok()) {
        std::fprintf(stderr, "submit: %s\n", s.ToString().c_str());
        return;
      }
      sent++;
    }
  });

  const auto start = std::chrono::steady_clock::now();
  auto last_stats = start;
  bool reported_sent = false;
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard<std::mutex> lock(st.mu);
      if (st.log != nullptr) std::fflush(st.log);
    }
    if (g_stop_sending && !reported_sent) {
      if (sender.joinable()) sender.join();
      reported_sent = true;
      std::printf("SENT node=%u sent=%" PRIu64 "\n", o.id, sent.load());
    }
    if (now - last_stats >= std::chrono::seconds(1)) {
      last_stats = now;
      const totem::core::MultiRingCounters c = node->GetCounters();
      uint64_t delivered = 0;
      {
        std::lock_guard<std::mutex> lock(st.mu);
        delivered = st.delivered;
      }
      std::printf("stats t_s=%.1f sent=%" PRIu64 " delivered=%" PRIu64
                  " reachable=[%s] queued=%zu forwarded=%" PRIu64 " late_dropped=%" PRIu64
                  " blocked=\"%s\"\n",
                  std::chrono::duration<double>(now - start).count(), sent.load(), delivered,
                  IdList(node->Reachable()).c_str(), node->Queued(), c.forwarded, c.late_dropped,
                  node->BlockedReason().c_str());
    }
    if (o.run_seconds != 0 && now - start >= std::chrono::seconds(o.run_seconds)) break;
  }
  g_stop = true;
  if (sender.joinable()) sender.join();
  const totem::core::MultiRingCounters c = node->GetCounters();
  node->Stop();

  std::lock_guard<std::mutex> lock(st.mu);
  if (st.log != nullptr) std::fclose(st.log);
  std::vector<uint32_t> lat = st.latencies_us;
  std::sort(lat.begin(), lat.end());
  uint64_t sum = 0;
  for (uint32_t v : lat) sum += v;
  auto pct = [&](double p) -> uint64_t {
    if (lat.empty()) return 0;
    return lat[std::min(lat.size() - 1, static_cast<size_t>(p * static_cast<double>(lat.size())))];
  };
  std::printf(
      "DONE node=%u sent=%" PRIu64 " delivered=%" PRIu64 " order_violations=%" PRIu64
      " fifo_violations=%" PRIu64 " lat_n=%zu lat_mean_us=%" PRIu64 " lat_p50_us=%" PRIu64
      " lat_p99_us=%" PRIu64 " forwarded=%" PRIu64 " reforwarded=%" PRIu64
      " duplicates_dropped=%" PRIu64 " late_dropped=%" PRIu64 " transitional_dropped=%" PRIu64
      " unsynced_dropped=%" PRIu64 " guarantee_vectors_sent=%" PRIu64 " topology_delivered=%" PRIu64
      " reordered_accepted=%" PRIu64 " dedup_overflow=%" PRIu64 " join_holds_expired=%" PRIu64 "\n",
      o.id, sent.load(), st.delivered, st.order_violations, st.fifo_violations, lat.size(),
      lat.empty() ? 0 : sum / lat.size(), pct(0.5), pct(0.99), c.forwarded, c.reforwarded,
      c.duplicates_dropped, c.late_dropped, c.transitional_dropped, c.unsynced_dropped,
      c.guarantee_vectors_sent, c.topology_delivered, c.reordered_accepted, c.dedup_overflow,
      c.join_holds_expired);
  return (st.order_violations != 0 || st.fifo_violations != 0) ? 4 : 0;
}
