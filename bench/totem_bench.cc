// totem-bench: throughput and latency of the Totem single-ring protocol over
// real UDP on 127.0.0.1. It runs N totem::Node instances in one process (each
// with its own I/O thread), lets K of them submit as fast as the submit queue
// allows, and reports per message size: ordered messages/s and MB/s delivered
// per node, p50/p99 latency from Submit to the sender's own agreed and safe
// delivery, and token rotations/s, with packing on and off. Latency is also
// measured at a fixed moderate rate (50% of the measured maximum, or --rate),
// because latency under saturation is mostly time spent in the submit queue.
// The yardstick is the same transport with no ordering at all: every sender
// fans frames of the packed protocol's size out to every peer, one datagram
// per peer per frame (sendmmsg, as the runtime does), and the receivers count
// what actually arrives (loss is reported); messages/s is frames received
// times the messages such a frame carries when packed. "raw-auth" adds the
// runtime's HMAC-SHA256 sign/verify, separating the cost of authentication
// from the cost of ordering. Every pass ends by draining the ring and
// checking that all nodes delivered the same messages in the same order.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "failover.h"
#include "multi_ring_bench.h"
#include "totem/config.h"
#include "totem/counters.h"
#include "totem/node.h"
#include "totem/status.h"
#include "totem/types.h"

namespace {

using Clock = std::chrono::steady_clock;
using totemkv::bench::ComputePercentiles;
using totemkv::bench::Percentiles;

// On-wire sizes the raw yardstick mirrors (see totem/core/wire.h): a data
// frame's header and fixed body, each chunk's header, the extra total length
// of a first fragment, and the transport's HMAC-SHA256 tag.
constexpr uint32_t kDataPrefixBytes = 24 + 12;
constexpr uint32_t kChunkHeaderBytes = 4;
constexpr uint32_t kFirstFragmentExtraBytes = 4;
constexpr uint32_t kAuthTagBytes = 32;

// Every benchmark payload starts with this header (little-endian host order
// is fine: it never leaves the process's own nodes).
struct PayloadHeader {
  uint32_t pass = 0;
  uint32_t sender_index = 0;
  uint64_t seq = 0;       // per sender, 0, 1, 2, ... over the whole ring lifetime
  int64_t submit_ns = 0;  // steady_clock at Submit
};
constexpr size_t kPayloadHeaderBytes = sizeof(PayloadHeader);
static_assert(kPayloadHeaderBytes == 24);

// Published corosync numbers used as the reference (corosync 3.1.7, udpu,
// 3 nodes, one sender).
struct Reference {
  uint32_t size;
  double msgs_per_s;
};
constexpr Reference kCorosyncReference[] = {{100, 35000}, {1000, 31000}, {10000, 4200}};

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// ---------------------------------------------------------------------------
// Options.

struct Options {
  uint32_t nodes = 3;
  uint32_t senders = 1;
  double seconds = 3.0;
  double warmup_seconds = 0.5;
  std::vector<uint32_t> sizes = {100, 1000, 10000};
  std::vector<std::string> modes = {"packed", "unpacked", "raw", "raw-auth"};
  uint32_t frame_bytes = 1400;
  uint32_t window = 256;
  uint32_t max_per_visit = 64;
  uint64_t pending_bytes = 1u << 20;
  double rate = 0;  // total msgs/s of the fixed-rate latency cell; 0: 50% of max
  bool json = false;
  bool encrypt = false;  // TransportConfig::encrypt (AES-256-GCM frames)
};

void PrintUsage() {
  std::fprintf(
      stderr,
      "usage: totem-bench [options]\n"
      "  --nodes N            ring size (default 3)\n"
      "  --senders K          nodes that submit: the first K (default 1; N = all senders)\n"
      "  --seconds S          measured seconds of the throughput pass per cell (default 3);\n"
      "                       the safe and fixed-rate passes measure max(1, S/2)\n"
      "  --warmup S           seconds before measuring (default 0.5)\n"
      "  --sizes A,B,...      message sizes in bytes (default 100,1000,10000; >= 24)\n"
      "  --modes M,...        packed,unpacked,raw,raw-auth (default all; raw-auth also signs\n"
      "                       and verifies HMAC-SHA256 as the runtime does)\n"
      "  --frame-bytes B      RingConfig::max_frame_bytes (default 1400)\n"
      "  --window W           RingConfig::window_size (default 256)\n"
      "  --max-per-visit M    RingConfig::max_messages_per_visit (default 64)\n"
      "  --pending-bytes B    RingConfig::max_pending_bytes (default 1 MiB, which bounds\n"
      "                       queueing in the saturated latency)\n"
      "  --rate R             total msgs/s of the fixed-rate latency cell (default 50%% of max)\n"
      "  --json               machine-readable output on stdout\n"
      "  --encrypt            encrypt ring frames (AES-256-GCM) instead of only\n"
      "                       authenticating them (HMAC-SHA256)\n"
      "  --failover ...       crash-recovery benchmark with totem-node processes instead\n"
      "                       (totem-bench --failover --help)\n"
      "  --multi-ring ...     one ring against two rings and a gateway, filtering on\n"
      "                       and off (totem-bench --multi-ring --help)\n");
}

bool ParseUint(const std::string& s, uint64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

bool ParseDouble(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || *end != '\0' || !(v >= 0)) return false;
  *out = v;
  return true;
}

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> parts;
  std::stringstream in(s);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

// Returns nullopt (after printing why) on a bad command line.
std::optional<Options> ParseOptions(int argc, char** argv) {
  Options o;
  auto fail = [](const std::string& why) -> std::optional<Options> {
    std::fprintf(stderr, "totem-bench: %s\n", why.c_str());
    PrintUsage();
    return std::nullopt;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      PrintUsage();
      std::exit(0);
    }
    if (flag == "--json") {
      o.json = true;
      continue;
    }
    if (flag == "--encrypt") {
      o.encrypt = true;
      continue;
    }
    if (i + 1 >= argc) return fail("missing value for " + flag);
    const std::string value = argv[++i];
    uint64_t u = 0;
    double d = 0;
    if (flag == "--nodes") {
      if (!ParseUint(value, &u) || u < 2 || u > 64) return fail("--nodes must be 2..64");
      o.nodes = static_cast<uint32_t>(u);
    } else if (flag == "--senders") {
      if (!ParseUint(value, &u) || u < 1) return fail("--senders must be >= 1");
      o.senders = static_cast<uint32_t>(u);
    } else if (flag == "--seconds") {
      if (!ParseDouble(value, &d) || d < 0.2) return fail("--seconds must be >= 0.2");
      o.seconds = d;
    } else if (flag == "--warmup") {
      if (!ParseDouble(value, &d)) return fail("bad --warmup");
      o.warmup_seconds = d;
    } else if (flag == "--sizes") {
      o.sizes.clear();
      for (const std::string& p : SplitCommas(value)) {
        if (!ParseUint(p, &u) || u < kPayloadHeaderBytes || u > (1u << 20)) {
          return fail("sizes must be 24..1048576 bytes");
        }
        o.sizes.push_back(static_cast<uint32_t>(u));
      }
      if (o.sizes.empty()) return fail("--sizes is empty");
    } else if (flag == "--modes") {
      o.modes = SplitCommas(value);
      for (const std::string& m : o.modes) {
        if (m != "packed" && m != "unpacked" && m != "raw" && m != "raw-auth")
          return fail("unknown mode " + m);
      }
      if (o.modes.empty()) return fail("--modes is empty");
    } else if (flag == "--frame-bytes") {
      if (!ParseUint(value, &u) || u < 128 || u > 65000) return fail("bad --frame-bytes");
      o.frame_bytes = static_cast<uint32_t>(u);
    } else if (flag == "--window") {
      if (!ParseUint(value, &u) || u < 1) return fail("bad --window");
      o.window = static_cast<uint32_t>(u);
    } else if (flag == "--max-per-visit") {
      if (!ParseUint(value, &u) || u < 1) return fail("bad --max-per-visit");
      o.max_per_visit = static_cast<uint32_t>(u);
    } else if (flag == "--pending-bytes") {
      if (!ParseUint(value, &u) || u < 1024) return fail("bad --pending-bytes");
      o.pending_bytes = u;
    } else if (flag == "--rate") {
      if (!ParseDouble(value, &d)) return fail("bad --rate");
      o.rate = d;
    } else {
      return fail("unknown option " + flag);
    }
  }
  if (o.senders > o.nodes) return fail("--senders must not exceed --nodes");
  return o;
}

// ---------------------------------------------------------------------------
// Small helpers.

uint64_t Mix(uint64_t h, uint64_t x) {
  h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0x100000001b3ull;
}

// Binds `count` UDP sockets to 127.0.0.1 port 0 at once (so the ports are
// distinct) and returns them; the caller closes or keeps them.
std::vector<int> BindLoopbackSockets(uint32_t count, std::vector<uint16_t>* ports) {
  std::vector<int> fds;
  ports->clear();
  for (uint32_t i = 0; i < count; ++i) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
      std::perror("socket");
      std::exit(1);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      std::perror("bind");
      std::exit(1);
    }
    fds.push_back(fd);
    ports->push_back(ntohs(addr.sin_port));
  }
  return fds;
}

// The 1-minute load average, or NaN if /proc is unavailable. Other processes
// competing for the CPUs skew every number here, so the report shows it.
double LoadAverage() {
  std::FILE* f = std::fopen("/proc/loadavg", "r");
  if (f == nullptr) return NAN;
  double load = NAN;
  if (std::fscanf(f, "%lf", &load) != 1) load = NAN;
  std::fclose(f);
  return load;
}

std::string RandomKey(size_t bytes) {
  std::random_device rd;
  std::string key(bytes, '\0');
  for (char& c : key) c = static_cast<char>(rd() & 0xFF);
  return key;
}

// ---------------------------------------------------------------------------
// Results.

struct Row {
  std::string mode;  // packed | unpacked | raw | corosync-ref
  uint32_t size = 0;
  std::string load;                 // "max" (saturating senders) or "rate" (fixed offered rate)
  double offered_msgs_per_s = NAN;  // the fixed rate, for load == "rate"
  double msgs_per_s = NAN;          // delivered per node
  double mb_per_s = NAN;
  Percentiles agreed;
  Percentiles safe;
  double safe_msgs_per_s = NAN;  // throughput of the safe pass, per node
  double rotations_per_s = NAN;
  double loss_pct = NAN;  // raw: datagrams lost; totem: always 0 if consistent
  double rtx_pct = NAN;   // totem: retransmitted frames / new frames
  // Diagnostics over the throughput pass's window (summed over all nodes).
  double frames_per_rotation = NAN;
  double msgs_per_frame = NAN;
  uint64_t retransmissions = 0;
  uint64_t retransmit_requests = 0;
  uint64_t tokens_retransmitted = 0;
  uint64_t token_holds = 0;
  uint64_t drops = 0;
  uint64_t send_errors = 0;
  uint64_t would_block = 0;
  bool consistent = true;
  std::string warning;
};

// ---------------------------------------------------------------------------
// The ring under test.

// What one node's delivery callback observes. Counters are atomics written
// only by the node's I/O thread; latency samples are guarded by `mu`.
struct NodeState {
  totem::NodeId id = totem::kNoNode;
  uint32_t index = 0;
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> delivered_bytes{0};
  std::atomic<uint64_t> order_hash{0};
  std::atomic<uint64_t> fifo_violations{0};
  std::atomic<uint64_t> malformed{0};
  std::vector<uint64_t> next_seq_from;  // I/O thread only: expected seq per sender index

  std::mutex mu;
  std::vector<int64_t> agreed_ns;  // own messages' Submit -> delivery, in the window
  std::vector<int64_t> safe_ns;

  uint64_t next_submit_seq = 0;  // sender thread only (one pass at a time)
};

// The measurement window, shared by senders and callbacks: latency samples
// are kept for messages submitted in [begin, end).
struct Window {
  std::atomic<int64_t> begin_ns{0};
  std::atomic<int64_t> end_ns{0};
};

class Ring {
 public:
  Ring(const Options& opts, bool packing) {
    const uint32_t n = opts.nodes;
    std::vector<uint16_t> ports;
    std::vector<int> fds = BindLoopbackSockets(n, &ports);
    for (int fd : fds) close(fd);

    const std::string key = RandomKey(32);
    totem::RingConfig ring;
    for (uint32_t i = 0; i < n; ++i) ring.members.push_back(i + 1);
    ring.window_size = opts.window;
    ring.max_messages_per_visit = opts.max_per_visit;
    ring.max_frame_bytes = opts.frame_bytes;
    ring.packing = packing;
    ring.max_pending_bytes = opts.pending_bytes;
    totem::TransportConfig transport;
    transport.mode = totem::TransportMode::kUnicast;
    for (uint32_t i = 0; i < n; ++i) {
      transport.peers.push_back(totem::Peer{i + 1, "127.0.0.1", ports[i]});
    }
    transport.key = key;
    transport.encrypt = opts.encrypt;

    for (uint32_t i = 0; i < n; ++i) {
      auto state = std::make_unique<NodeState>();
      state->id = i + 1;
      state->index = i;
      state->next_seq_from.assign(n, 0);
      states_.push_back(std::move(state));
    }
    for (uint32_t i = 0; i < n; ++i) {
      totem::NodeConfig config;
      config.ring = ring;
      config.ring.node_id = i + 1;
      config.transport = transport;
      NodeState* st = states_[i].get();
      totem::Callbacks callbacks;
      callbacks.on_deliver = [this, st](const totem::Delivery& d) { OnDeliver(st, d); };
      auto node = totem::Node::Start(config, std::move(callbacks));
      if (!node.ok()) {
        std::fprintf(stderr, "totem-bench: node %u failed to start: %s\n", i + 1,
                     node.status().ToString().c_str());
        std::exit(1);
      }
      nodes_.push_back(std::move(node.value()));
    }
  }

  ~Ring() {
    for (auto& node : nodes_) node->Stop();
  }

  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // Waits until every node is in one regular configuration with all N
  // members (the ring forms dynamically: nodes may first form smaller rings,
  // and traffic sent then would not reach everyone).
  bool WaitConfigured(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      bool all = true;
      const totem::ConfigurationView first = nodes_[0]->CurrentConfiguration();
      for (auto& node : nodes_) {
        const totem::ConfigurationView v = node->CurrentConfiguration();
        all = all && !v.in_transition && v.regular.members.size() == nodes_.size() &&
              v.regular.id == first.regular.id;
      }
      if (all) return true;
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  uint32_t size() const { return static_cast<uint32_t>(nodes_.size()); }
  totem::Node& node(uint32_t i) { return *nodes_[i]; }
  NodeState& state(uint32_t i) { return *states_[i]; }
  Window& window() { return window_; }
  std::atomic<uint32_t>& pass() { return pass_; }
  std::atomic<uint64_t>& submitted() { return submitted_; }

 private:
  void OnDeliver(NodeState* st, const totem::Delivery& d) {
    if (d.payload.size() < kPayloadHeaderBytes) {
      st->malformed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    PayloadHeader h;
    std::memcpy(&h, d.payload.data(), sizeof(h));
    if (h.sender_index >= st->next_seq_from.size() || h.sender_index + 1 != d.sender) {
      st->malformed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    uint64_t& expected = st->next_seq_from[h.sender_index];
    if (h.seq != expected) st->fifo_violations.fetch_add(1, std::memory_order_relaxed);
    expected = h.seq + 1;
    const uint64_t hash = Mix(Mix(st->order_hash.load(std::memory_order_relaxed), d.sender), h.seq);
    st->order_hash.store(hash, std::memory_order_relaxed);

    if (d.sender == st->id && h.pass == pass_.load(std::memory_order_relaxed) &&
        h.submit_ns >= window_.begin_ns.load(std::memory_order_relaxed) &&
        h.submit_ns < window_.end_ns.load(std::memory_order_relaxed)) {
      const int64_t latency = NowNs() - h.submit_ns;
      std::lock_guard<std::mutex> lock(st->mu);
      (d.guarantee == totem::Guarantee::kSafe ? st->safe_ns : st->agreed_ns).push_back(latency);
    }
    st->delivered_bytes.fetch_add(d.payload.size(), std::memory_order_relaxed);
    st->delivered.fetch_add(1, std::memory_order_release);
  }

  std::vector<std::unique_ptr<NodeState>> states_;
  std::vector<std::unique_ptr<totem::Node>> nodes_;
  Window window_;
  std::atomic<uint32_t> pass_{0};
  std::atomic<uint64_t> submitted_{0};  // successful Submits over the ring's lifetime
};

// Result of one pass (one guarantee, one offered load) on a ring.
struct PassResult {
  double msgs_per_s = 0;  // mean over nodes of messages delivered in the window
  double mb_per_s = 0;
  double min_node_msgs_per_s = 0;
  double max_node_msgs_per_s = 0;
  Percentiles latency;
  double rotations_per_s = 0;
  uint64_t rotations = 0;  // of node 1's token, over the window
  totem::Counters delta;   // summed over all nodes, over the window
  bool drained = true;
  bool consistent = true;
  std::string warning;
};

totem::Counters SumCounters(Ring& ring) {
  totem::Counters sum;
  for (uint32_t i = 0; i < ring.size(); ++i) {
    const totem::Counters c = ring.node(i).GetCounters();
    sum.messages_submitted += c.messages_submitted;
    sum.submits_would_block += c.submits_would_block;
    sum.frames_sent += c.frames_sent;
    sum.retransmissions_sent += c.retransmissions_sent;
    sum.retransmit_requests += c.retransmit_requests;
    sum.tokens_retransmitted += c.tokens_retransmitted;
    sum.token_holds += c.token_holds;
    sum.send_errors += c.send_errors;
    sum.drop_malformed += c.drop_malformed + c.drop_bad_version + c.drop_auth +
                          c.drop_foreign_ring + c.drop_duplicate_token + c.drop_bad_fragment +
                          c.drop_unknown_sender;
    sum.drop_duplicate_frame += c.drop_duplicate_frame;
    sum.drop_out_of_window += c.drop_out_of_window;
  }
  return sum;
}

totem::Counters Subtract(const totem::Counters& b, const totem::Counters& a) {
  totem::Counters d;
  d.messages_submitted = b.messages_submitted - a.messages_submitted;
  d.submits_would_block = b.submits_would_block - a.submits_would_block;
  d.frames_sent = b.frames_sent - a.frames_sent;
  d.retransmissions_sent = b.retransmissions_sent - a.retransmissions_sent;
  d.retransmit_requests = b.retransmit_requests - a.retransmit_requests;
  d.tokens_retransmitted = b.tokens_retransmitted - a.tokens_retransmitted;
  d.token_holds = b.token_holds - a.token_holds;
  d.send_errors = b.send_errors - a.send_errors;
  d.drop_malformed = b.drop_malformed - a.drop_malformed;
  d.drop_duplicate_frame = b.drop_duplicate_frame - a.drop_duplicate_frame;
  d.drop_out_of_window = b.drop_out_of_window - a.drop_out_of_window;
  return d;
}

// One submitting node. With rate > 0 it paces itself to `rate` msgs/s;
// otherwise it keeps the submit queue full (Submit until kWouldBlock, then
// WaitWritable).
void SenderLoop(Ring& ring, uint32_t index, uint32_t size, totem::Guarantee guarantee, double rate,
                const std::atomic<bool>& stop, std::string* error) {
  NodeState& st = ring.state(index);
  totem::Node& node = ring.node(index);
  std::vector<uint8_t> payload(size);
  for (size_t i = kPayloadHeaderBytes; i < payload.size(); ++i) {
    payload[i] = static_cast<uint8_t>(i * 131u + index);
  }
  const uint32_t pass = ring.pass().load();
  const auto start = Clock::now();
  uint64_t sent = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    if (rate > 0) {
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      if (static_cast<double>(sent) >= elapsed * rate) {
        std::this_thread::sleep_for(std::chrono::microseconds(100));
        continue;
      }
    }
    PayloadHeader h{pass, index, st.next_submit_seq, NowNs()};
    std::memcpy(payload.data(), &h, sizeof(h));
    const totem::Status s = node.Submit(payload, guarantee);
    if (s.ok()) {
      ++st.next_submit_seq;
      ++sent;
      ring.submitted().fetch_add(1, std::memory_order_relaxed);
    } else if (s.code() == totem::StatusCode::kWouldBlock) {
      node.WaitWritable(std::chrono::milliseconds(20));
    } else {
      *error = "node " + std::to_string(index + 1) + " Submit: " + s.ToString();
      return;
    }
  }
}

// Runs senders for warmup + `seconds`, measures over the last `seconds`,
// then stops them and drains the ring.
PassResult RunPass(Ring& ring, const Options& opts, uint32_t size, totem::Guarantee guarantee,
                   double total_rate, double seconds) {
  PassResult r;
  const uint32_t n = ring.size();
  const uint32_t pass = ring.pass().load() + 1;
  const int64_t start_ns = NowNs();
  const int64_t begin_ns = start_ns + static_cast<int64_t>(opts.warmup_seconds * 1e9);
  const int64_t end_ns = begin_ns + static_cast<int64_t>(seconds * 1e9);
  for (uint32_t i = 0; i < n; ++i) {
    NodeState& st = ring.state(i);
    std::lock_guard<std::mutex> lock(st.mu);
    st.agreed_ns.clear();
    st.safe_ns.clear();
  }
  ring.window().begin_ns.store(begin_ns);
  ring.window().end_ns.store(end_ns);
  ring.pass().store(pass);

  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::vector<std::string> errors(opts.senders);
  const double per_sender_rate = total_rate / opts.senders;
  for (uint32_t i = 0; i < opts.senders; ++i) {
    threads.emplace_back(SenderLoop, std::ref(ring), i, size, guarantee, per_sender_rate,
                         std::cref(stop), &errors[i]);
  }

  auto sleep_until_ns = [](int64_t t) {
    const int64_t now = NowNs();
    if (t > now) std::this_thread::sleep_for(std::chrono::nanoseconds(t - now));
  };
  auto snapshot = [&](std::vector<uint64_t>* msgs, std::vector<uint64_t>* bytes) {
    for (uint32_t i = 0; i < n; ++i) {
      msgs->push_back(ring.state(i).delivered.load());
      bytes->push_back(ring.state(i).delivered_bytes.load());
    }
  };
  sleep_until_ns(begin_ns);
  std::vector<uint64_t> m0, b0, m1, b1;
  const int64_t t0 = NowNs();
  snapshot(&m0, &b0);
  const totem::Counters c0 = SumCounters(ring);
  const uint64_t rot0 = ring.node(0).GetCounters().token_rotations;
  sleep_until_ns(end_ns);
  const int64_t t1 = NowNs();
  snapshot(&m1, &b1);
  const totem::Counters c1 = SumCounters(ring);
  const uint64_t rot1 = ring.node(0).GetCounters().token_rotations;

  stop.store(true);
  for (auto& t : threads) t.join();
  for (const std::string& e : errors) {
    if (!e.empty()) r.warning += e + "; ";
  }

  const double dt = static_cast<double>(t1 - t0) / 1e9;
  double sum_msgs = 0, sum_bytes = 0;
  r.min_node_msgs_per_s = INFINITY;
  for (uint32_t i = 0; i < n; ++i) {
    const double rate_i = static_cast<double>(m1[i] - m0[i]) / dt;
    sum_msgs += rate_i;
    sum_bytes += static_cast<double>(b1[i] - b0[i]) / dt;
    r.min_node_msgs_per_s = std::min(r.min_node_msgs_per_s, rate_i);
    r.max_node_msgs_per_s = std::max(r.max_node_msgs_per_s, rate_i);
  }
  r.msgs_per_s = sum_msgs / n;
  r.mb_per_s = sum_bytes / n / 1e6;
  r.rotations = rot1 - rot0;
  r.rotations_per_s = static_cast<double>(r.rotations) / dt;
  r.delta = Subtract(c1, c0);

  // Drain: every node must deliver everything that was submitted.
  const uint64_t target = ring.submitted().load();
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  for (;;) {
    bool all = true;
    for (uint32_t i = 0; i < n; ++i) all = all && ring.state(i).delivered.load() >= target;
    if (all) break;
    if (Clock::now() > deadline) {
      r.drained = false;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // Let any (wrongly) extra delivery land before comparing.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::ostringstream why;
  const uint64_t hash0 = ring.state(0).order_hash.load();
  for (uint32_t i = 0; i < n; ++i) {
    NodeState& st = ring.state(i);
    const uint64_t delivered = st.delivered.load();
    if (delivered != target) {
      why << "node " << st.id << " delivered " << delivered << " of " << target << " submitted; ";
    }
    if (st.order_hash.load() != hash0) why << "node " << st.id << " order differs from node 1; ";
    if (st.fifo_violations.load() != 0) {
      why << "node " << st.id << " saw " << st.fifo_violations.load() << " FIFO violations; ";
    }
    if (st.malformed.load() != 0) {
      why << "node " << st.id << " got " << st.malformed.load() << " foreign payloads; ";
    }
  }
  if (!why.str().empty()) {
    r.consistent = false;
    r.warning += why.str();
  }

  std::vector<int64_t> samples;
  for (uint32_t i = 0; i < opts.senders; ++i) {
    NodeState& st = ring.state(i);
    std::lock_guard<std::mutex> lock(st.mu);
    const auto& v = guarantee == totem::Guarantee::kSafe ? st.safe_ns : st.agreed_ns;
    samples.insert(samples.end(), v.begin(), v.end());
  }
  r.latency = ComputePercentiles(std::move(samples));
  return r;
}

void FillDiagnostics(const PassResult& p, Row* row) {
  const totem::Counters& d = p.delta;
  row->retransmissions = d.retransmissions_sent;
  row->retransmit_requests = d.retransmit_requests;
  row->tokens_retransmitted = d.tokens_retransmitted;
  row->token_holds = d.token_holds;
  row->drops = d.drop_malformed + d.drop_duplicate_frame + d.drop_out_of_window;
  row->send_errors = d.send_errors;
  row->would_block = d.submits_would_block;
  row->rtx_pct = d.frames_sent ? 100.0 * static_cast<double>(d.retransmissions_sent) /
                                     static_cast<double>(d.frames_sent)
                               : 0.0;
  row->frames_per_rotation = p.rotations
                                 ? static_cast<double>(d.frames_sent + d.retransmissions_sent) /
                                       static_cast<double>(p.rotations)
                                 : NAN;
  row->msgs_per_frame =
      d.frames_sent ? static_cast<double>(d.messages_submitted) / static_cast<double>(d.frames_sent)
                    : NAN;
}

std::vector<Row> RunTotemCell(const Options& opts, const std::string& mode, uint32_t size) {
  Ring ring(opts, mode == "packed");
  if (!ring.WaitConfigured(std::chrono::seconds(5))) {
    std::fprintf(stderr, "totem-bench: ring did not form within 5 s\n");
    std::exit(1);
  }
  const double short_seconds = std::max(1.0, opts.seconds / 2);
  auto log = [&](const char* what) {
    if (!opts.json) {
      std::fprintf(stderr, "  %-8s %6u B  %s\n", mode.c_str(), size, what);
    }
  };

  log("agreed, saturating");
  const PassResult agreed_max =
      RunPass(ring, opts, size, totem::Guarantee::kAgreed, 0, opts.seconds);
  log("safe, saturating");
  const PassResult safe_max = RunPass(ring, opts, size, totem::Guarantee::kSafe, 0, short_seconds);
  const double rate = opts.rate > 0 ? opts.rate : 0.5 * agreed_max.msgs_per_s;
  log("agreed, fixed rate");
  const PassResult agreed_rate =
      RunPass(ring, opts, size, totem::Guarantee::kAgreed, rate, short_seconds);
  log("safe, fixed rate");
  const PassResult safe_rate =
      RunPass(ring, opts, size, totem::Guarantee::kSafe, rate, short_seconds);

  auto make_row = [&](const char* load, const PassResult& a, const PassResult& s) {
    Row row;
    row.mode = mode;
    row.size = size;
    row.load = load;
    row.msgs_per_s = a.msgs_per_s;
    row.mb_per_s = a.mb_per_s;
    row.agreed = a.latency;
    row.safe = s.latency;
    row.safe_msgs_per_s = s.msgs_per_s;
    row.rotations_per_s = a.rotations_per_s;
    FillDiagnostics(a, &row);
    row.consistent = a.consistent && s.consistent;
    row.loss_pct = row.consistent ? 0.0 : NAN;
    std::string w;
    for (const PassResult* p : {&a, &s}) {
      if (!p->drained) w += "ring did not drain; ";
      w += p->warning;
      if (p->max_node_msgs_per_s > 0 && p->min_node_msgs_per_s < 0.9 * p->max_node_msgs_per_s) {
        char buf[128];
        std::snprintf(buf, sizeof(buf), "per-node delivery rates differ (%.0f..%.0f msgs/s); ",
                      p->min_node_msgs_per_s, p->max_node_msgs_per_s);
        w += buf;
      }
    }
    row.warning = w;
    return row;
  };
  std::vector<Row> rows;
  rows.push_back(make_row("max", agreed_max, safe_max));
  Row rate_row = make_row("rate", agreed_rate, safe_rate);
  rate_row.offered_msgs_per_s = rate;
  for (const PassResult* p : {&agreed_rate, &safe_rate}) {
    if (p->msgs_per_s < 0.95 * rate) {
      char buf[160];
      std::snprintf(buf, sizeof(buf),
                    "fixed rate not sustained (%.0f of %.0f msgs/s offered): latency is "
                    "queueing; ",
                    p->msgs_per_s, rate);
      rate_row.warning += buf;
    }
  }
  rows.push_back(rate_row);
  return rows;
}

// ---------------------------------------------------------------------------
// Raw UDP fan-out: no ordering, no authentication, the same datagram size.

// Messages of `size` one frame of `frame_bytes` carries when packed (whole
// messages if they fit; otherwise the fraction of a fragmented message).
double MessagesPerFrame(uint32_t frame_bytes, uint32_t size) {
  const double space = static_cast<double>(frame_bytes - kDataPrefixBytes);
  const double whole = std::floor(space / (size + kChunkHeaderBytes));
  if (whole >= 1) return whole;
  return (space - kChunkHeaderBytes) / (size + kFirstFragmentExtraBytes);
}

// HMAC-SHA256 over a frame, keyed once, as the runtime's transport does it
// (OpenSSL 3 EVP_MAC; re-initialising with a null key reuses the keyed state).
class Hmac {
 public:
  explicit Hmac(const std::string& key) {
    mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    ctx_ = mac_ ? EVP_MAC_CTX_new(mac_) : nullptr;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                           OSSL_PARAM_construct_end()};
    if (ctx_ == nullptr || EVP_MAC_init(ctx_, reinterpret_cast<const unsigned char*>(key.data()),
                                        key.size(), params) != 1) {
      std::fprintf(stderr, "totem-bench: OpenSSL HMAC-SHA256 unavailable\n");
      std::exit(1);
    }
  }
  ~Hmac() {
    EVP_MAC_CTX_free(ctx_);
    EVP_MAC_free(mac_);
  }
  Hmac(const Hmac&) = delete;
  Hmac& operator=(const Hmac&) = delete;

  // Writes the tag of the first `len` bytes of `data` to `tag`.
  void Sign(const uint8_t* data, size_t len, uint8_t* tag) {
    size_t out_len = 0;
    if (EVP_MAC_init(ctx_, nullptr, 0, nullptr) != 1 || EVP_MAC_update(ctx_, data, len) != 1 ||
        EVP_MAC_final(ctx_, tag, &out_len, kAuthTagBytes) != 1) {
      std::abort();
    }
  }
  bool Verify(const uint8_t* datagram, size_t len) {
    uint8_t tag[kAuthTagBytes];
    Sign(datagram, len - kAuthTagBytes, tag);
    return CRYPTO_memcmp(tag, datagram + len - kAuthTagBytes, kAuthTagBytes) == 0;
  }

 private:
  EVP_MAC* mac_ = nullptr;
  EVP_MAC_CTX* ctx_ = nullptr;
};

// Fans frames out like the runtime's unicast transport: per frame one
// sendmmsg with a datagram per peer; receivers drain with recvmmsg. With
// `auth`, senders sign and receivers verify every datagram as well.
Row RunRawCell(const Options& opts, uint32_t size, bool auth) {
  const uint32_t n = opts.nodes;
  const uint32_t datagram_bytes = opts.frame_bytes + kAuthTagBytes;
  const std::string key = RandomKey(32);
  std::vector<uint16_t> ports;
  std::vector<int> fds = BindLoopbackSockets(n, &ports);
  const int buffer_bytes = 4 << 20;  // as TransportConfig::socket_buffer_bytes
  for (int fd : fds) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer_bytes, sizeof(buffer_bytes));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buffer_bytes, sizeof(buffer_bytes));
    timeval tv{0, 50000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  std::vector<sockaddr_in> addrs(n);
  for (uint32_t i = 0; i < n; ++i) {
    addrs[i].sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &addrs[i].sin_addr);
    addrs[i].sin_port = htons(ports[i]);
  }

  std::atomic<bool> stop_senders{false}, stop_receivers{false};
  std::vector<std::atomic<uint64_t>> sent(n), received(n), send_errors(n), auth_failures(n);
  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      constexpr size_t kBatch = 16;
      std::unique_ptr<Hmac> hmac = auth ? std::make_unique<Hmac>(key) : nullptr;
      std::vector<uint8_t> storage(kBatch * 65536);
      iovec iov[kBatch];
      mmsghdr msgs[kBatch];
      while (!stop_receivers.load(std::memory_order_relaxed)) {
        for (size_t k = 0; k < kBatch; ++k) {
          iov[k] = iovec{storage.data() + k * 65536, 65536};
          msgs[k] = mmsghdr{};
          msgs[k].msg_hdr.msg_iov = &iov[k];
          msgs[k].msg_hdr.msg_iovlen = 1;
        }
        const int got = recvmmsg(fds[i], msgs, kBatch, MSG_WAITFORONE, nullptr);
        for (int k = 0; k < got; ++k) {
          if (msgs[k].msg_len != datagram_bytes) continue;
          if (hmac &&
              !hmac->Verify(storage.data() + static_cast<size_t>(k) * 65536, msgs[k].msg_len)) {
            auth_failures[i].fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          received[i].fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (uint32_t s = 0; s < opts.senders; ++s) {
    threads.emplace_back([&, s] {
      std::unique_ptr<Hmac> hmac = auth ? std::make_unique<Hmac>(key) : nullptr;
      std::vector<uint8_t> frame(datagram_bytes, static_cast<uint8_t>(s));
      std::vector<mmsghdr> msgs;
      iovec iov{frame.data(), frame.size()};
      for (uint32_t peer = 0; peer < n; ++peer) {
        if (peer == s) continue;
        mmsghdr m{};
        m.msg_hdr.msg_name = &addrs[peer];
        m.msg_hdr.msg_namelen = sizeof(addrs[peer]);
        m.msg_hdr.msg_iov = &iov;
        m.msg_hdr.msg_iovlen = 1;
        msgs.push_back(m);
      }
      uint64_t seq = 0;
      while (!stop_senders.load(std::memory_order_relaxed)) {
        std::memcpy(frame.data(), &seq, sizeof(seq));
        ++seq;
        if (hmac) hmac->Sign(frame.data(), opts.frame_bytes, frame.data() + opts.frame_bytes);
        const int rc = sendmmsg(fds[s], msgs.data(), static_cast<unsigned>(msgs.size()), 0);
        if (rc != static_cast<int>(msgs.size())) {
          send_errors[s].fetch_add(msgs.size() - static_cast<size_t>(std::max(rc, 0)),
                                   std::memory_order_relaxed);
        }
        sent[s].fetch_add(1, std::memory_order_relaxed);
      }
    });
  }

  auto snapshot = [&](std::vector<uint64_t>* v) {
    v->clear();
    for (uint32_t i = 0; i < n; ++i) v->push_back(received[i].load());
  };
  std::this_thread::sleep_for(std::chrono::duration<double>(opts.warmup_seconds));
  std::vector<uint64_t> r0, r1;
  const auto t0 = Clock::now();
  snapshot(&r0);
  std::this_thread::sleep_for(std::chrono::duration<double>(opts.seconds));
  const auto t1 = Clock::now();
  snapshot(&r1);
  stop_senders.store(true);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let the queues drain
  stop_receivers.store(true);
  for (auto& t : threads) t.join();
  for (int fd : fds) close(fd);

  const double dt = std::chrono::duration<double>(t1 - t0).count();
  uint64_t total_sent_datagrams = 0, total_received = 0, errors = 0, auth_failed = 0;
  for (uint32_t s = 0; s < opts.senders; ++s) {
    total_sent_datagrams += sent[s].load() * (n - 1);
    errors += send_errors[s].load();
  }
  for (uint32_t i = 0; i < n; ++i) {
    total_received += received[i].load();
    auth_failed += auth_failures[i].load();
  }
  // A totem node delivers every sender's messages; the comparable raw node
  // is one that receives from every sender: the non-senders (or, with all
  // nodes sending, every node, which then misses only its own frames).
  double sum_frames = 0;
  uint32_t counted = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (opts.senders == n || i >= opts.senders) {
      sum_frames += static_cast<double>(r1[i] - r0[i]) / dt;
      ++counted;
    }
  }
  Row row;
  row.mode = auth ? "raw-auth" : "raw";
  row.size = size;
  row.load = "max";
  row.msgs_per_frame = MessagesPerFrame(opts.frame_bytes, size);
  row.msgs_per_s = (counted ? sum_frames / counted : 0) * row.msgs_per_frame;
  row.mb_per_s = row.msgs_per_s * size / 1e6;
  row.send_errors = errors;
  row.drops = auth_failed;
  row.loss_pct = total_sent_datagrams
                     ? std::max(0.0, 100.0 * (1.0 - static_cast<double>(total_received) /
                                                        static_cast<double>(total_sent_datagrams)))
                     : NAN;
  return row;
}

// ---------------------------------------------------------------------------
// Output.

std::string Fmt(double v, int decimals = 0) {
  if (std::isnan(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string JsonNum(double v, int decimals = 1) {
  if (std::isnan(v) || std::isinf(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  return out + "\"";
}

void PrintTable(const Options& opts, const std::vector<Row>& rows, double load_at_start) {
  std::printf(
      "\ntotem-bench: %u nodes, %u sender(s), loopback UDP unicast, frame %u B, window %u, "
      "max/visit %u, pending %llu B, %.1f s per throughput cell\n",
      opts.nodes, opts.senders, opts.frame_bytes, opts.window, opts.max_per_visit,
      static_cast<unsigned long long>(opts.pending_bytes), opts.seconds);
  const unsigned cpus = std::thread::hardware_concurrency();
  std::printf("load average at start %.2f on %u CPUs%s\n", load_at_start, cpus,
              load_at_start >= cpus ? " -- CONTENDED: other processes skew these numbers" : "");
  std::printf(
      "msgs/s and MB/s: delivered per node (MB = 1e6 B of payload). load=max: senders keep the\n"
      "submit queue full (latency is mostly queueing); load=rate: fixed offered rate shown in\n"
      "brackets. Latency: Submit -> the sender's own delivery (agreed and safe passes are run\n"
      "separately). raw: UDP fan-out of packed-size frames with no ordering (raw-auth: plus\n"
      "HMAC-SHA256 sign/verify); loss%% = datagrams sent but never received. rtx%% =\n"
      "retransmitted frames / new frames. corosync-ref: corosync 3.1.7 udpu, 3 nodes, 1 "
      "sender.\n\n");
  std::printf("%-12s %6s %-13s %10s %8s %14s %14s %12s %12s %11s %6s %6s\n", "mode", "size", "load",
              "msgs/s", "MB/s", "p50_agreed_us", "p99_agreed_us", "p50_safe_us", "p99_safe_us",
              "rotations/s", "loss%", "rtx%");
  for (const Row& r : rows) {
    std::string load = r.load;
    if (!std::isnan(r.offered_msgs_per_s)) load += "[" + Fmt(r.offered_msgs_per_s) + "]";
    std::printf("%-12s %6u %-13s %10s %8s %14s %14s %12s %12s %11s %6s %6s\n", r.mode.c_str(),
                r.size, load.c_str(), Fmt(r.msgs_per_s).c_str(), Fmt(r.mb_per_s, 1).c_str(),
                Fmt(r.agreed.p50_us).c_str(), Fmt(r.agreed.p99_us).c_str(),
                Fmt(r.safe.p50_us).c_str(), Fmt(r.safe.p99_us).c_str(),
                Fmt(r.rotations_per_s).c_str(), Fmt(r.loss_pct, 2).c_str(),
                Fmt(r.rtx_pct, 2).c_str());
  }

  std::printf(
      "\ndiagnostics over the window of each row's agreed pass, summed over nodes:\n"
      "  safe_msg/s  delivered per node by the matching safe pass\n"
      "  frm/rot     frames (new + retransmitted, all nodes) per token rotation\n"
      "  msgs/frm    messages per new frame (raw: the packing it models)\n"
      "  rtx, rtx_req, tok_rtx, holds: retransmitted frames, retransmit requests, token\n"
      "              retransmissions, token holds; drops: input dropped for any reason;\n"
      "  snd_err     send errors; wouldblock: Submit calls refused (queue full)\n");
  std::printf("%-12s %6s %-5s %10s %9s %9s %8s %8s %8s %7s %8s %8s %10s\n", "mode", "size", "load",
              "safe_msg/s", "frm/rot", "msgs/frm", "rtx", "rtx_req", "tok_rtx", "holds", "drops",
              "snd_err", "wouldblock");
  for (const Row& r : rows) {
    if (r.mode == "corosync-ref") continue;
    std::printf("%-12s %6u %-5s %10s %9s %9s %8llu %8llu %8llu %7llu %8llu %8llu %10llu\n",
                r.mode.c_str(), r.size, r.load.c_str(), Fmt(r.safe_msgs_per_s).c_str(),
                Fmt(r.frames_per_rotation, 1).c_str(), Fmt(r.msgs_per_frame, 2).c_str(),
                static_cast<unsigned long long>(r.retransmissions),
                static_cast<unsigned long long>(r.retransmit_requests),
                static_cast<unsigned long long>(r.tokens_retransmitted),
                static_cast<unsigned long long>(r.token_holds),
                static_cast<unsigned long long>(r.drops),
                static_cast<unsigned long long>(r.send_errors),
                static_cast<unsigned long long>(r.would_block));
  }
  bool warned = false;
  for (const Row& r : rows) {
    if (r.warning.empty()) continue;
    if (!warned) std::printf("\nWARNINGS\n");
    warned = true;
    std::printf("  %s %u B load=%s: %s\n", r.mode.c_str(), r.size, r.load.c_str(),
                r.warning.c_str());
  }
  if (!warned) std::printf("\nsanity: every node delivered the same messages in the same order\n");
}

void PrintJson(const Options& opts, const std::vector<Row>& rows, double load_at_start) {
  std::printf(
      "{\"load_average_at_start\":%s,\"cpus\":%u,\"nodes\":%u,\"senders\":%u,\"seconds\":%s,"
      "\"frame_bytes\":%u,\"window\":%u,"
      "\"max_per_visit\":%u,\"pending_bytes\":%llu,\"rows\":[",
      JsonNum(load_at_start, 2).c_str(), std::thread::hardware_concurrency(), opts.nodes,
      opts.senders, JsonNum(opts.seconds, 2).c_str(), opts.frame_bytes, opts.window,
      opts.max_per_visit, static_cast<unsigned long long>(opts.pending_bytes));
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    std::printf(
        "%s\n{\"mode\":%s,\"size\":%u,\"load\":%s,\"offered_msgs_per_s\":%s,\"msgs_per_s\":%s,"
        "\"mb_per_s\":%s,\"p50_agreed_us\":%s,\"p99_agreed_us\":%s,\"agreed_samples\":%zu,"
        "\"p50_safe_us\":%s,\"p99_safe_us\":%s,\"safe_samples\":%zu,\"safe_msgs_per_s\":%s,"
        "\"rotations_per_s\":%s,\"loss_pct\":%s,\"rtx_pct\":%s,\"frames_per_rotation\":%s,\"msgs_"
        "per_frame\":%s,"
        "\"retransmissions\":%llu,\"retransmit_requests\":%llu,\"tokens_retransmitted\":%llu,"
        "\"token_holds\":%llu,\"drops\":%llu,\"send_errors\":%llu,\"would_block\":%llu,"
        "\"consistent\":%s,\"warning\":%s}",
        i ? "," : "", JsonString(r.mode).c_str(), r.size, JsonString(r.load).c_str(),
        JsonNum(r.offered_msgs_per_s).c_str(), JsonNum(r.msgs_per_s).c_str(),
        JsonNum(r.mb_per_s, 3).c_str(), JsonNum(r.agreed.p50_us).c_str(),
        JsonNum(r.agreed.p99_us).c_str(), r.agreed.samples, JsonNum(r.safe.p50_us).c_str(),
        JsonNum(r.safe.p99_us).c_str(), r.safe.samples, JsonNum(r.safe_msgs_per_s).c_str(),
        JsonNum(r.rotations_per_s).c_str(), JsonNum(r.loss_pct, 3).c_str(),
        JsonNum(r.rtx_pct, 3).c_str(), JsonNum(r.frames_per_rotation, 2).c_str(),
        JsonNum(r.msgs_per_frame, 3).c_str(), static_cast<unsigned long long>(r.retransmissions),
        static_cast<unsigned long long>(r.retransmit_requests),
        static_cast<unsigned long long>(r.tokens_retransmitted),
        static_cast<unsigned long long>(r.token_holds), static_cast<unsigned long long>(r.drops),
        static_cast<unsigned long long>(r.send_errors),
        static_cast<unsigned long long>(r.would_block), r.consistent ? "true" : "false",
        JsonString(r.warning).c_str());
  }
  std::printf("\n]}\n");
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--failover") return totem::bench::RunFailoverBench(argc, argv);
    if (std::string(argv[i]) == "--multi-ring") return totem::bench::RunMultiRingBench(argc, argv);
  }
  const std::optional<Options> parsed = ParseOptions(argc, argv);
  if (!parsed) return 2;
  const Options& opts = *parsed;
  const double load_at_start = LoadAverage();

  std::vector<Row> rows;
  for (uint32_t size : opts.sizes) {
    for (const std::string& mode : opts.modes) {
      if (mode == "raw" || mode == "raw-auth") {
        if (!opts.json) std::fprintf(stderr, "  %-8s %6u B  UDP fan-out\n", mode.c_str(), size);
        rows.push_back(RunRawCell(opts, size, mode == "raw-auth"));
      } else {
        for (Row& r : RunTotemCell(opts, mode, size)) rows.push_back(std::move(r));
      }
    }
    if (opts.nodes == 3 && opts.senders == 1) {
      for (const Reference& ref : kCorosyncReference) {
        if (ref.size != size) continue;
        Row r;
        r.mode = "corosync-ref";
        r.size = size;
        r.load = "max";
        r.msgs_per_s = ref.msgs_per_s;
        r.mb_per_s = ref.msgs_per_s * size / 1e6;
        rows.push_back(r);
      }
    }
  }
  if (opts.json) {
    PrintJson(opts, rows, load_at_start);
  } else {
    PrintTable(opts, rows, load_at_start);
  }
  bool consistent = true;
  for (const Row& r : rows) consistent = consistent && r.consistent;
  return consistent ? 0 : 1;
}
