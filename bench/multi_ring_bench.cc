// totem-bench --multi-ring: the multiple-ring protocol (totem/core/
// multi_ring.h; Moser et al., "The Totem Multiple-Ring Protocol") over real
// UDP on 127.0.0.1, against one ring of the same total size. Every
// processor is a totem::MultiRingNode in this process (one I/O thread per
// ring it is on, one ordering thread). The paper's claim under test: rings
// joined by gateways, with traffic that is mostly local to a ring, give
// lower latency and higher total throughput than one big ring.
//
// Configurations, each with N application processors (--processors, even,
// default 6) and ONE extra processor, so the processor count is N+1 in all:
//   one-ring          ring 1: all N+1 (the extra one only delivers).
//   two-rings         ring 1: processors 1..N/2 and the extra one; ring 2:
//                     N/2+1..N and the extra one, which is the gateway.
//                     No destinations: every message goes to both rings.
//   two-rings-filter  the same, but local messages name their own ring as
//                     the only destination, so the gateway forwards a
//                     payload-less stub of them to the other ring.
// Each application processor keeps --window of its own messages in flight
// (closed loop: it submits the next one when one of its own is delivered
// back to it). --locality L% (default 90) of them are local (meant for the
// processor's own ring only), the rest cross-ring (for everyone). In
// one-ring and two-rings the split changes nothing on the wire.
//
// Reported per configuration over --seconds after --warmup (one line of
// JSON each): ordered messages/s (own messages delivered back to their
// origins), deliveries/s over the N application processors and per
// processor, latency p50/p99 from Submit to delivery at the origin, and of
// cross-ring messages at the processors of the other half (the other ring;
// in one-ring the same processors), the bytes the multiple-ring layer
// ordered on each ring per second and per ordered message (envelopes,
// stubs, forwarded copies and guarantee vectors included; the single ring's
// own headers and tokens not), and the gateway's stub and skip counters.
// --check exits 1 unless every configuration delivered and filtering put
// fewer bytes per ordered message on every ring than no filtering (the
// CTest smoke run).
#include "multi_ring_bench.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "totem/config.h"
#include "totem/core/multi_ring.h"
#include "totem/multi_ring_node.h"

namespace totem::bench {
namespace {

using Clock = std::chrono::steady_clock;
using core::RingNumber;
using totemkv::bench::ComputePercentiles;
using totemkv::bench::LoadAverage1;
using totemkv::bench::ParseUint;
using totemkv::bench::Percentiles;
using totemkv::bench::WaitUntil;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// The first bytes of every payload (host byte order: it never leaves this
// process's own processors).
struct Header {
  uint32_t sender = 0;  // application processor index, 0-based
  uint32_t kind = 0;    // kLocal, kCross, kHello
  uint64_t seq = 0;
  int64_t submit_ns = 0;
};
static_assert(sizeof(Header) == 24);
constexpr uint32_t kLocal = 0;
constexpr uint32_t kCross = 1;
constexpr uint32_t kHello = 2;

enum class Layout { kOneRing, kTwoRings, kTwoRingsFilter };

const char* LayoutName(Layout l) {
  switch (l) {
    case Layout::kOneRing:
      return "one-ring";
    case Layout::kTwoRings:
      return "two-rings";
    case Layout::kTwoRingsFilter:
      return "two-rings-filter";
  }
  return "unknown";
}

struct Options {
  uint32_t processors = 6;  // application processors; one more is added
  uint32_t size = 100;
  uint32_t locality_pct = 90;
  double seconds = 2;
  double warmup = 0.5;
  uint32_t window = 16;
  uint64_t gv_interval_us = 5000;
  std::vector<Layout> layouts = {Layout::kOneRing, Layout::kTwoRings, Layout::kTwoRingsFilter};
  bool check = false;
};

constexpr const char* kUsage =
    "usage: totem-bench --multi-ring [options]\n"
    "  --processors N     application processors, even, 2..32 (default 6); every\n"
    "                     configuration adds one more (idle on one ring, the gateway\n"
    "                     on two)\n"
    "  --configs LIST     one-ring,two-rings,two-rings-filter (default all)\n"
    "  --locality PCT     share of each sender's messages for its own ring only\n"
    "                     (default 90)\n"
    "  --size B           message bytes, >= 24 (default 100)\n"
    "  --window W         own messages in flight per processor (default 16)\n"
    "  --seconds S        measured seconds per configuration (default 2)\n"
    "  --warmup S         seconds of traffic before measuring (default 0.5)\n"
    "  --gv-interval-us U the gateway's guarantee vector period (default 5000)\n"
    "  --check            exit 1 unless every configuration delivered and filtering\n"
    "                     ordered fewer bytes per message on every ring\n";

bool ParseSeconds(const std::string& s, double* out) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !(v >= 0.1) || v > 600) return false;
  *out = v;
  return true;
}

// Returns false (after printing why) on a bad command line.
bool ParseOptions(int argc, char** argv, Options* o) {
  auto fail = [](const std::string& why) {
    std::fprintf(stderr, "totem-bench --multi-ring: %s\n%s", why.c_str(), kUsage);
    return false;
  };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--multi-ring") continue;
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    }
    if (flag == "--check") {
      o->check = true;
      continue;
    }
    if (i + 1 >= argc) return fail("missing value for " + flag);
    const std::string v = argv[++i];
    uint64_t u = 0;
    if (flag == "--processors") {
      if (!ParseUint(v, 2, 32, &u) || u % 2 != 0) return fail("--processors must be even, 2..32");
      o->processors = static_cast<uint32_t>(u);
    } else if (flag == "--configs") {
      o->layouts.clear();
      std::stringstream in(v);
      std::string name;
      while (std::getline(in, name, ',')) {
        bool found = false;
        for (Layout l : {Layout::kOneRing, Layout::kTwoRings, Layout::kTwoRingsFilter}) {
          if (name == LayoutName(l)) {
            o->layouts.push_back(l);
            found = true;
          }
        }
        if (!found) return fail("unknown configuration " + name);
      }
      if (o->layouts.empty()) return fail("--configs is empty");
    } else if (flag == "--locality") {
      if (!ParseUint(v, 0, 100, &u)) return fail("--locality must be 0..100");
      o->locality_pct = static_cast<uint32_t>(u);
    } else if (flag == "--size") {
      if (!ParseUint(v, sizeof(Header), 60000, &u)) return fail("--size must be 24..60000");
      o->size = static_cast<uint32_t>(u);
    } else if (flag == "--window") {
      if (!ParseUint(v, 1, 4096, &u)) return fail("--window must be 1..4096");
      o->window = static_cast<uint32_t>(u);
    } else if (flag == "--seconds") {
      if (!ParseSeconds(v, &o->seconds)) return fail("--seconds must be 0.1..600");
    } else if (flag == "--warmup") {
      if (!ParseSeconds(v, &o->warmup)) return fail("--warmup must be 0.1..600");
    } else if (flag == "--gv-interval-us") {
      if (!ParseUint(v, 100, 1000000, &u)) return fail("--gv-interval-us must be 100..1000000");
      o->gv_interval_us = u;
    } else {
      return fail("unknown option " + flag);
    }
  }
  return true;
}

// `count` distinct free UDP ports on 127.0.0.1 (bound together, then closed).
bool FreePorts(size_t count, std::vector<uint16_t>* ports) {
  std::vector<int> fds;
  bool ok = true;
  for (size_t i = 0; i < count && ok; ++i) {
    const int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) {
      ok = false;
      break;
    }
    fds.push_back(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    socklen_t len = sizeof(addr);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ok = false;
      break;
    }
    ports->push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) close(fd);
  return ok;
}

std::string RandomKey() {
  std::random_device rd;
  std::string key(32, '\0');
  for (char& c : key) c = static_cast<char>(rd() & 0xFF);
  return key;
}

// One processor. The delivery callback runs on its ordering thread; the
// sender thread and the harness read the atomics; `mu` guards the rest.
struct Proc {
  NodeId id = kNoNode;
  uint32_t index = 0;  // application index (the extra processor: N)
  int half = -1;       // 0 or 1: which half (ring) of the senders; -1: the extra one
  bool sender = false;
  std::vector<RingNumber> rings;
  std::unique_ptr<MultiRingNode> node;

  std::atomic<uint64_t> delivered{0};  // benchmark messages, hellos not counted
  std::atomic<uint64_t> own_delivered{0};
  std::atomic<uint64_t> hello_from{0};  // bit i: a hello of processor i arrived
  std::atomic<uint64_t> malformed{0};
  std::atomic<uint64_t> submit_errors{0};

  std::mutex mu;
  std::condition_variable cv;
  uint64_t in_flight = 0;
  std::vector<int64_t> origin_ns;  // own messages, submitted in the window
  std::vector<int64_t> remote_ns;  // cross-ring messages of the other half, in the window
};

struct Result {
  Layout layout = Layout::kOneRing;
  bool ok = false;
  std::string error;
  double ordered_per_s = 0;
  double delivered_per_s = 0;
  double per_processor_per_s = 0;
  Percentiles origin;
  Percentiles remote;
  std::map<RingNumber, double> ring_bytes_per_s;
  std::map<RingNumber, double> ring_bytes_per_msg;
  uint64_t stubs_forwarded = 0;
  uint64_t filtered_skipped = 0;
  uint64_t submit_errors = 0;
  double load = NAN;
};

class Run {
 public:
  Run(const Options& o, Layout layout) : o_(o), layout_(layout) {}
  ~Run() { Stop(); }

  Result Go() {
    Result r;
    r.layout = layout_;
    r.load = LoadAverage1();
    std::string error = Build();
    if (error.empty() && !WaitReady()) error = "the rings did not form within 20 s";
    if (!error.empty()) {
      r.error = error;
      return r;
    }
    for (auto& p : procs_) {
      if (p->sender) senders_.emplace_back([this, q = p.get()] { SenderLoop(*q); });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(o_.warmup));
    const Snapshot before = Take();
    end_ns_.store(INT64_MAX);
    begin_ns_.store(NowNs());
    const int64_t t0 = NowNs();
    std::this_thread::sleep_for(std::chrono::duration<double>(o_.seconds));
    const int64_t t1 = NowNs();
    end_ns_.store(t1);
    const Snapshot after = Take();
    // Let the messages of the window come back (their latencies count)
    // before stopping the processors.
    StopSenders();
    WaitUntil(
        [&] {
          for (auto& p : procs_) {
            std::lock_guard<std::mutex> lock(p->mu);
            if (p->in_flight != 0) return false;
          }
          return true;
        },
        std::chrono::seconds(3));
    Stop();
    const double secs = static_cast<double>(t1 - t0) / 1e9;
    uint64_t own = 0, delivered = 0;
    std::vector<int64_t> origin, remote;
    for (auto& p : procs_) {
      const size_t i = p->index;
      if (!p->sender) continue;
      own += after.own[i] - before.own[i];
      delivered += after.delivered[i] - before.delivered[i];
      origin.insert(origin.end(), p->origin_ns.begin(), p->origin_ns.end());
      remote.insert(remote.end(), p->remote_ns.begin(), p->remote_ns.end());
      r.submit_errors += p->submit_errors.load();
    }
    r.ordered_per_s = static_cast<double>(own) / secs;
    r.delivered_per_s = static_cast<double>(delivered) / secs;
    r.per_processor_per_s = r.delivered_per_s / o_.processors;
    r.origin = ComputePercentiles(std::move(origin));
    r.remote = ComputePercentiles(std::move(remote));
    for (const auto& [ring, bytes] : after.ring_bytes) {
      const double b = static_cast<double>(bytes - before.ring_bytes.at(ring));
      r.ring_bytes_per_s[ring] = b / secs;
      r.ring_bytes_per_msg[ring] = own == 0 ? NAN : b / static_cast<double>(own);
    }
    r.stubs_forwarded = after.stubs - before.stubs;
    r.filtered_skipped = after.skipped - before.skipped;
    r.ok = own > 0;
    if (!r.ok) r.error = "no message was delivered back to its origin";
    return r;
  }

 private:
  struct Snapshot {
    std::vector<uint64_t> own, delivered;
    std::map<RingNumber, uint64_t> ring_bytes;
    uint64_t stubs = 0, skipped = 0;
  };

  bool TwoRings() const { return layout_ != Layout::kOneRing; }

  std::string Build() {
    const uint32_t n = o_.processors;
    std::map<RingNumber, std::vector<NodeId>> members;
    for (uint32_t i = 0; i <= n; ++i) {
      auto p = std::make_unique<Proc>();
      p->id = i + 1;
      p->index = i;
      p->sender = i < n;
      p->half = i < n ? static_cast<int>(i / (n / 2)) : -1;
      if (!TwoRings()) {
        p->rings = {1};
      } else if (i < n) {
        p->rings = {static_cast<RingNumber>(p->half + 1)};
      } else {
        p->rings = {1, 2};
      }
      for (RingNumber r : p->rings) members[r].push_back(p->id);
      procs_.push_back(std::move(p));
    }
    const NodeId gateway = n + 1;
    std::map<RingNumber, std::map<NodeId, uint16_t>> port;
    for (auto& [ring, ids] : members) {
      std::vector<uint16_t> ports;
      if (!FreePorts(ids.size(), &ports)) return "no free UDP ports on 127.0.0.1";
      for (size_t k = 0; k < ids.size(); ++k) port[ring][ids[k]] = ports[k];
    }
    const std::string key = RandomKey();
    for (auto& p : procs_) {
      MultiRingNodeConfig config;
      for (RingNumber r : p->rings) {
        MultiRingNodeConfig::LocalRing lr;
        lr.ring = r;
        lr.node.ring.node_id = p->id;
        lr.node.ring.members = members[r];
        lr.node.transport.mode = TransportMode::kUnicast;
        for (NodeId m : members[r]) {
          lr.node.transport.peers.push_back(Peer{m, "127.0.0.1", port[r][m]});
        }
        lr.node.transport.key = key;
        config.local.push_back(lr);
      }
      if (TwoRings()) {
        config.rings = {1, 2};
        config.links = {core::GatewayLink{gateway, 1, 2}};
      } else {
        config.rings = {1};
      }
      config.guarantee_interval_us = o_.gv_interval_us;
      config.incarnation = 1;
      MultiRingCallbacks cb;
      Proc* q = p.get();
      cb.on_deliver = [this, q](const core::MultiDelivery& d) { OnDeliver(*q, d); };
      cb.on_topology = [](const core::TopologyEvent&) {};
      auto started = MultiRingNode::Start(config, std::move(cb));
      if (!started.ok()) {
        return "processor " + std::to_string(p->id) + ": " + started.status().ToString();
      }
      p->node = std::move(started).value();
    }
    return "";
  }

  // Every processor delivered a hello from every application processor (so
  // every ring formed and finished its Sync round). Hellos are re-sent every
  // 300 ms: one sent while a ring was still forming may be dropped.
  bool WaitReady() {
    const uint64_t all = (1ull << o_.processors) - 1;
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    while (Clock::now() < deadline) {
      for (auto& p : procs_) {
        if (!p->sender) continue;
        Header h;
        h.sender = p->index;
        h.kind = kHello;
        std::vector<uint8_t> payload(sizeof(Header));
        std::memcpy(payload.data(), &h, sizeof(h));
        (void)p->node->Submit(payload, Guarantee::kAgreed);
      }
      const bool ready = WaitUntil(
          [&] {
            for (auto& p : procs_) {
              if (p->hello_from.load() != all) return false;
            }
            return true;
          },
          std::chrono::milliseconds(300));
      if (ready) return true;
    }
    return false;
  }

  void OnDeliver(Proc& p, const core::MultiDelivery& d) {
    if (d.payload.size() < sizeof(Header)) {
      p.malformed.fetch_add(1);
      return;
    }
    Header h;
    std::memcpy(&h, d.payload.data(), sizeof(h));
    if (h.sender >= o_.processors) {
      p.malformed.fetch_add(1);
      return;
    }
    if (h.kind == kHello) {
      p.hello_from.fetch_or(1ull << h.sender);
      return;
    }
    const int64_t latency = NowNs() - h.submit_ns;
    const bool in_window = h.submit_ns >= begin_ns_.load() && h.submit_ns < end_ns_.load();
    p.delivered.fetch_add(1);
    if (h.sender == p.index) {
      p.own_delivered.fetch_add(1);
      {
        std::lock_guard<std::mutex> lock(p.mu);
        if (p.in_flight > 0) p.in_flight--;
        if (in_window) p.origin_ns.push_back(latency);
      }
      p.cv.notify_one();
    } else if (h.kind == kCross && in_window && p.half >= 0 && p.half != procs_[h.sender]->half) {
      std::lock_guard<std::mutex> lock(p.mu);
      p.remote_ns.push_back(latency);
    }
  }

  void SenderLoop(Proc& p) {
    std::vector<uint8_t> payload(o_.size, 0);
    std::vector<RingNumber> own_ring = {p.rings.front()};
    std::mt19937_64 rnd(p.id);
    uint64_t seq = 0;
    while (!stop_senders_.load()) {
      {
        std::unique_lock<std::mutex> lock(p.mu);
        p.cv.wait_for(lock, std::chrono::milliseconds(10),
                      [&] { return p.in_flight < o_.window || stop_senders_.load(); });
        if (p.in_flight >= o_.window) continue;
        p.in_flight++;
      }
      Header h;
      h.sender = p.index;
      h.kind = rnd() % 100 < o_.locality_pct ? kLocal : kCross;
      h.seq = seq++;
      h.submit_ns = NowNs();
      std::memcpy(payload.data(), &h, sizeof(h));
      const bool filter = layout_ == Layout::kTwoRingsFilter && h.kind == kLocal;
      std::span<const RingNumber> destinations;
      if (filter) destinations = own_ring;
      Status st = p.node->Submit(payload, Guarantee::kAgreed, destinations);
      while (st.code() == StatusCode::kWouldBlock && !stop_senders_.load()) {
        p.node->WaitWritable(std::chrono::milliseconds(10));
        st = p.node->Submit(payload, Guarantee::kAgreed, destinations);
      }
      if (!st.ok()) {
        p.submit_errors.fetch_add(1);
        std::lock_guard<std::mutex> lock(p.mu);
        p.in_flight--;
      }
    }
  }

  Snapshot Take() {
    Snapshot s;
    for (auto& p : procs_) {
      s.own.push_back(p->own_delivered.load());
      s.delivered.push_back(p->delivered.load());
      for (size_t i = 0; i < p->rings.size(); ++i) {
        s.ring_bytes[p->rings[i]] += p->node->GetRingCounters(i).bytes_submitted;
      }
      const core::MultiRingCounters c = p->node->GetCounters();
      s.stubs += c.stubs_forwarded;
      s.skipped += c.filtered_skipped;
    }
    return s;
  }

  void StopSenders() {
    stop_senders_.store(true);
    for (auto& p : procs_) p->cv.notify_all();
    for (std::thread& t : senders_) t.join();
    senders_.clear();
  }

  void Stop() {
    StopSenders();
    for (auto& p : procs_) {
      if (p->node) p->node->Stop();
    }
  }

  const Options o_;
  const Layout layout_;
  std::vector<std::unique_ptr<Proc>> procs_;
  std::vector<std::thread> senders_;
  std::atomic<bool> stop_senders_{false};
  std::atomic<int64_t> begin_ns_{INT64_MAX};
  std::atomic<int64_t> end_ns_{0};
};

std::string Num(double v, int decimals = 0) {
  if (std::isnan(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

void Print(const Options& o, const Result& r) {
  std::string line =
      "{\"bench\":\"totem-multi-ring\",\"config\":\"" + std::string(LayoutName(r.layout)) +
      "\",\"processors\":" + std::to_string(o.processors + 1) +
      ",\"senders\":" + std::to_string(o.processors) + ",\"size\":" + std::to_string(o.size) +
      ",\"locality_pct\":" + std::to_string(o.locality_pct) +
      ",\"window\":" + std::to_string(o.window) + ",\"seconds\":" + Num(o.seconds, 1);
  if (!r.ok) {
    line += ",\"error\":\"" + r.error + "\"}";
    std::printf("%s\n", line.c_str());
    return;
  }
  line += ",\"ordered_msgs_per_s\":" + Num(r.ordered_per_s) +
          ",\"delivered_msgs_per_s\":" + Num(r.delivered_per_s) +
          ",\"per_processor_msgs_per_s\":" + Num(r.per_processor_per_s) +
          ",\"origin_p50_us\":" + Num(r.origin.p50_us) +
          ",\"origin_p99_us\":" + Num(r.origin.p99_us) +
          ",\"cross_remote_p50_us\":" + Num(r.remote.p50_us) +
          ",\"cross_remote_p99_us\":" + Num(r.remote.p99_us);
  for (const auto& [ring, bps] : r.ring_bytes_per_s) {
    line += ",\"ring" + std::to_string(ring) + "_bytes_per_s\":" + Num(bps) + ",\"ring" +
            std::to_string(ring) + "_bytes_per_msg\":" + Num(r.ring_bytes_per_msg.at(ring), 1);
  }
  line += ",\"stubs_forwarded\":" + std::to_string(r.stubs_forwarded) +
          ",\"filtered_skipped\":" + std::to_string(r.filtered_skipped) +
          ",\"submit_errors\":" + std::to_string(r.submit_errors) + ",\"load1\":" + Num(r.load, 2) +
          "}";
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

}  // namespace

int RunMultiRingBench(int argc, char** argv) {
  Options o;
  if (!ParseOptions(argc, argv, &o)) return 2;
  std::vector<Result> results;
  bool ok = true;
  for (Layout layout : o.layouts) {
    Result r;
    {
      Run run(o, layout);
      r = run.Go();
    }
    Print(o, r);
    ok = ok && r.ok;
    results.push_back(r);
  }
  if (!o.check) return ok ? 0 : 1;
  if (!ok) {
    std::printf("check: FAILED (a configuration did not deliver)\n");
    return 1;
  }
  const Result* plain = nullptr;
  const Result* filtered = nullptr;
  for (const Result& r : results) {
    if (r.layout == Layout::kTwoRings) plain = &r;
    if (r.layout == Layout::kTwoRingsFilter) filtered = &r;
  }
  if (plain != nullptr && filtered != nullptr) {
    for (const auto& [ring, per_msg] : filtered->ring_bytes_per_msg) {
      const double without = plain->ring_bytes_per_msg.at(ring);
      if (!(per_msg < without)) {
        std::printf(
            "check: FAILED (ring %u: %.1f bytes per message with filtering, %.1f without)\n", ring,
            per_msg, without);
        return 1;
      }
    }
    if (filtered->stubs_forwarded == 0) {
      std::printf("check: FAILED (filtering on, but the gateway forwarded no stub)\n");
      return 1;
    }
  }
  std::printf("check: ok\n");
  return 0;
}

}  // namespace totem::bench
