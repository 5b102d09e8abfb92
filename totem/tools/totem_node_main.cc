// totem-node: a demo and test processor on a Totem ring. It sends --send
// numbered messages, delivers everything in the total order, checks
// per-sender FIFO order, and reports a digest of the delivered sequence, so
// that several processes can be compared: equal digests mean equal delivery
// sequences. Used by the integration tests and for quick throughput numbers.
//
// Payload of message i (1-based) from node n: u32 n | u64 i | filler bytes.
// When a node has delivered --expect-total messages it submits a "done"
// marker (i = 0, safe); it keeps running, and so keeps passing the token,
// until it has delivered every member's marker and --linger-ms more have
// passed, because a node that leaves a static ring stops the token for all.
//
// Output: a "config:" line; the first ten deliveries as "ordered #k ...";
// a stats line per second; "RESULT ..." with throughput; finally
// "DONE node=<id> delivered=<n> digest=<16 hex> counters: <...>".
// Exit codes: 0 ok, 2 bad flags or config, 3 timeout, 4 order violation,
// 1 other failure.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
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

#include "totem/node.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kPayloadHeaderBytes = 12;  // u32 sender | u64 index

struct Options {
  totem::NodeId id = totem::kNoNode;
  std::vector<totem::Peer> peers;
  std::string key_file;
  totem::TransportMode mode = totem::TransportMode::kUnicast;
  std::string mcast_group = "239.192.77.1";
  uint16_t mcast_port = 0;
  std::string mcast_if = "0.0.0.0";
  uint64_t send = 0;
  uint64_t size = 100;
  std::string guarantee = "agreed";  // agreed | safe | mixed
  bool expect_given = false;
  uint64_t expect_total = 0;
  uint64_t timeout_s = 60;
  bool packing = true;
  uint32_t window = 0;  // 0: the library default
  uint32_t max_per_visit = 0;
  uint32_t frame_bytes = 0;
  uint64_t max_pending_bytes = 0;
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
               "         [--no-packing] [--window N] [--max-per-visit N] [--frame-bytes N]\n"
               "         [--max-pending-bytes N] [--linger-ms MS] [--quiet]\n",
               error.c_str());
  std::exit(2);
}

uint64_t ParseU64(const std::string& flag, const std::string& s, uint64_t max) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) {
    Usage(flag + " needs a non-negative integer, got '" + s + "'");
  }
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
  if (errno != 0 || v > max) Usage(flag + " value " + s + " is out of range");
  return v;
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
    if (flag == "--id") {
      o.id = static_cast<totem::NodeId>(ParseU64(flag, value(), 0xFFFFFFFFu));
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
    } else if (flag == "--no-packing") {
      o.packing = false;
    } else if (flag == "--window") {
      o.window = static_cast<uint32_t>(ParseU64(flag, value(), 0xFFFFFFFFu));
    } else if (flag == "--max-per-visit") {
      o.max_per_visit = static_cast<uint32_t>(ParseU64(flag, value(), 0xFFFFFFFFu));
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
  if (o.send > 0 && o.size < kPayloadHeaderBytes) {
    Usage("--size must be at least " + std::to_string(kPayloadHeaderBytes) + " bytes");
  }
  if (!o.expect_given) o.expect_total = o.send * o.peers.size();
  return o;
}

uint64_t ReadU64(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
void WriteU64(uint8_t* p, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnvPrime = 0x100000001b3ull;

// Everything the delivery callback records; guarded by mu.
struct Tally {
  std::mutex mu;
  std::condition_variable cv;
  uint64_t delivered = 0;
  uint64_t digest = kFnvOffset;
  std::map<totem::NodeId, uint64_t> last_index;
  std::set<totem::NodeId> done_markers;
  uint64_t order_errors = 0;
  std::string first_error;
  Clock::time_point done_at;
};

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseFlags(argc, argv);

  totem::NodeConfig config;
  config.ring.node_id = o.id;
  for (const totem::Peer& p : o.peers) config.ring.members.push_back(p.id);
  if (o.window != 0) config.ring.window_size = o.window;
  if (o.max_per_visit != 0) config.ring.max_messages_per_visit = o.max_per_visit;
  if (o.frame_bytes != 0) config.ring.max_frame_bytes = o.frame_bytes;
  if (o.max_pending_bytes != 0) config.ring.max_pending_bytes = o.max_pending_bytes;
  config.ring.packing = o.packing;
  config.transport.mode = o.mode;
  config.transport.peers = o.peers;
  config.transport.key_file = o.key_file;
  config.transport.mcast_group = o.mcast_group;
  config.transport.mcast_port = o.mcast_port;
  config.transport.mcast_interface = o.mcast_if;

  std::string peers_text;
  for (const totem::Peer& p : o.peers) {
    if (!peers_text.empty()) peers_text += ",";
    peers_text += std::to_string(p.id) + "@" + p.host + ":" + std::to_string(p.port);
  }
  std::printf(
      "config: node=%u mode=%s peers=%s send=%llu size=%llu guarantee=%s expect_total=%llu "
      "packing=%s window=%u max_per_visit=%u frame_bytes=%u timeout_s=%llu linger_ms=%llu\n",
      o.id, o.mode == totem::TransportMode::kUnicast ? "unicast" : "multicast", peers_text.c_str(),
      static_cast<unsigned long long>(o.send), static_cast<unsigned long long>(o.size),
      o.guarantee.c_str(), static_cast<unsigned long long>(o.expect_total),
      o.packing ? "on" : "off", config.ring.window_size, config.ring.max_messages_per_visit,
      config.ring.max_frame_bytes, static_cast<unsigned long long>(o.timeout_s),
      static_cast<unsigned long long>(o.linger_ms));
  std::fflush(stdout);

  Tally tally;
  const uint64_t expect = o.expect_total;
  const bool quiet = o.quiet;
  totem::Callbacks callbacks;
  callbacks.on_deliver = [&tally, expect, quiet](const totem::Delivery& d) {
    std::lock_guard<std::mutex> lock(tally.mu);
    if (d.payload.size() < kPayloadHeaderBytes) {
      ++tally.order_errors;
      if (tally.first_error.empty()) tally.first_error = "payload shorter than its header";
      return;
    }
    const auto claimed = static_cast<totem::NodeId>(ReadU64(d.payload.data(), 4));
    const uint64_t index = ReadU64(d.payload.data() + 4, 8);
    if (claimed != d.sender && tally.first_error.empty()) {
      ++tally.order_errors;
      tally.first_error = "payload of node " + std::to_string(claimed) + " delivered as from " +
                          std::to_string(d.sender);
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
    uint64_t& last = tally.last_index[d.sender];
    if (index != last + 1) {
      ++tally.order_errors;
      if (tally.first_error.empty()) {
        tally.first_error = "from node " + std::to_string(d.sender) + " expected #" +
                            std::to_string(last + 1) + " got #" + std::to_string(index);
      }
    }
    last = index;
    if (!quiet && tally.delivered <= 10) {
      std::printf("ordered #%llu from=%u seq=%llu guarantee=%s\n",
                  static_cast<unsigned long long>(tally.delivered), d.sender,
                  static_cast<unsigned long long>(d.frame_seq), totem::GuaranteeName(d.guarantee));
    }
    if (tally.delivered == expect) {
      tally.done_at = Clock::now();
      tally.cv.notify_all();
    }
  };

  const Clock::time_point start = Clock::now();
  const Clock::time_point deadline = start + std::chrono::seconds(o.timeout_s);
  totem::StatusOr<std::unique_ptr<totem::Node>> started = totem::Node::Start(config, callbacks);
  if (!started.ok()) {
    std::fprintf(stderr, "totem-node: cannot start node %u: %s\n", o.id,
                 started.status().ToString().c_str());
    return started.status().code() == totem::StatusCode::kInvalidArgument ? 2 : 1;
  }
  std::unique_ptr<totem::Node> node = std::move(started).value();

  std::atomic<bool> stop_sending{false};
  std::string send_error;
  std::thread sender([&] {
    std::vector<uint8_t> payload(o.size);
    for (size_t k = kPayloadHeaderBytes; k < payload.size(); ++k) {
      payload[k] = static_cast<uint8_t>(k * 7 + o.id);
    }
    for (uint64_t i = 1; i <= o.send && !stop_sending; ++i) {
      WriteU64(payload.data(), o.id, 4);
      WriteU64(payload.data() + 4, i, 8);
      if (payload.size() > kPayloadHeaderBytes)
        payload[kPayloadHeaderBytes] = static_cast<uint8_t>(i);
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

  // Phase 1: deliver everything expected, reporting once a second.
  bool timed_out = false;
  {
    totem::Counters prev = node->GetCounters();
    Clock::time_point prev_at = Clock::now();
    std::unique_lock<std::mutex> lock(tally.mu);
    while (tally.delivered < expect) {
      const Clock::time_point tick = std::min(prev_at + std::chrono::seconds(1), deadline);
      tally.cv.wait_until(lock, tick, [&] { return tally.delivered >= expect; });
      if (tally.delivered >= expect) break;
      if (Clock::now() >= deadline) {
        timed_out = true;
        break;
      }
      if (Clock::now() >= prev_at + std::chrono::seconds(1)) {
        lock.unlock();
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
    if (!timed_out) {
      const double secs = std::chrono::duration<double>(tally.done_at - start).count();
      std::printf("RESULT node=%u delivered=%llu elapsed_s=%.3f msgs/s=%.0f\n", o.id,
                  static_cast<unsigned long long>(delivered), secs,
                  secs > 0 ? static_cast<double>(delivered) / secs : 0.0);
    }
  }
  if (timed_out) {
    std::fprintf(stderr, "totem-node: node %u timed out after %llu s: delivered %llu of %llu\n",
                 o.id, static_cast<unsigned long long>(o.timeout_s),
                 static_cast<unsigned long long>(delivered),
                 static_cast<unsigned long long>(expect));
    exit_code = 3;
  } else {
    // Phase 2: tell the others, and keep the token moving until all are done.
    std::vector<uint8_t> marker(kPayloadHeaderBytes, 0);
    WriteU64(marker.data(), o.id, 4);
    totem::Status st = node->Submit(marker, totem::Guarantee::kSafe);
    while (st.code() == totem::StatusCode::kWouldBlock && Clock::now() < deadline) {
      node->WaitWritable(std::chrono::milliseconds(100));
      st = node->Submit(marker, totem::Guarantee::kSafe);
    }
    std::unique_lock<std::mutex> lock(tally.mu);
    const bool all_done = tally.cv.wait_until(
        lock, deadline, [&] { return tally.done_markers.size() >= o.peers.size(); });
    if (!all_done) {
      std::printf("WARN node=%u only %zu of %zu nodes reported done before the timeout\n", o.id,
                  tally.done_markers.size(), o.peers.size());
    }
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(o.linger_ms));
  }

  stop_sending = true;
  node->Stop();  // wakes a sender blocked in WaitWritable
  sender.join();
  if (!send_error.empty()) {
    std::fprintf(stderr, "totem-node: submit failed: %s\n", send_error.c_str());
    if (exit_code == 0) exit_code = 1;
  }
  {
    std::lock_guard<std::mutex> lock(tally.mu);
    if (tally.order_errors != 0) {
      std::fprintf(stderr, "totem-node: %llu order violations; first: %s\n",
                   static_cast<unsigned long long>(tally.order_errors), tally.first_error.c_str());
      exit_code = 4;
    }
  }
  const totem::Counters c = node->GetCounters();
  std::printf("DONE node=%u delivered=%llu digest=%016llx counters: %s\n", o.id,
              static_cast<unsigned long long>(delivered), static_cast<unsigned long long>(digest),
              c.ToString().c_str());
  std::fflush(stdout);
  return exit_code;
}
