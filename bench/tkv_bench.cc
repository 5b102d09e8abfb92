// tkv-bench: a load generator that speaks the etcd v3 gRPC API, so the same
// binary measures totemkvd and a real etcd cluster side by side.
//
// Each of --clients N clients is one thread with one request in flight at a
// time (closed loop) on the sync etcd KV stub. Clients are spread round-robin
// over --endpoints; every endpoint gets one gRPC channel (one HTTP/2
// connection, forced apart with a local subchannel pool) per up to 16 of its
// clients, because a single connection serializes a lot of concurrent work.
// Keys are drawn uniformly from a --keys space with a seeded PRNG per client.
// Every latency sample of the measured window is kept, so the percentiles
// are exact (nearest rank). Errors are counted by gRPC status code and a run
// with any error says so (and the exit code is 3); a client pauses 10 ms
// after a failed request so a dead endpoint does not spin.
//
// Workloads: put (256-byte values by default), get (linearizable Range of
// one key), get-serializable (Range with serializable=true: answered by the
// local replica), mixed (each op a put or a linearizable get with
// probability --put-fraction, default 0.5). Get workloads first write every
// key of the space once (--no-preload skips it) so reads find data.
//
// --matrix runs the standard set (put 1 and 64 clients, get and
// get-serializable 1 and 64, mixed 64) and ends with a Markdown table.
// Output: human-readable lines plus one "RESULT ..." line per run; -w json
// prints one JSON object per run instead. --counters adds, for totemkvd,
// every node's admin counters that changed during the run. --failover runs
// the kill -9 failover benchmark instead (tkv_failover.cc). See
// bench/README.md.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "admin/admin.grpc.pb.h"
#include "bench_util.h"
#include "etcd/rpc.grpc.pb.h"
#include "grpc_code_name.h"
#include "tkv_failover.h"

namespace totemkv::bench {
namespace {

using Clock = std::chrono::steady_clock;

enum class Workload { kPut, kGet, kGetSerializable, kMixed };

const char* WorkloadName(Workload w) {
  switch (w) {
    case Workload::kPut:
      return "put";
    case Workload::kGet:
      return "get";
    case Workload::kGetSerializable:
      return "get-serializable";
    case Workload::kMixed:
      return "mixed";
  }
  return "?";
}

std::optional<Workload> ParseWorkload(const std::string& s) {
  if (s == "put") return Workload::kPut;
  if (s == "get" || s == "get-linearizable") return Workload::kGet;
  if (s == "get-serializable") return Workload::kGetSerializable;
  if (s == "mixed") return Workload::kMixed;
  return std::nullopt;
}

bool ReadsKeys(Workload w) { return w != Workload::kPut; }

// Clients per gRPC channel (HTTP/2 connection) to one endpoint.
constexpr uint32_t kClientsPerChannel = 16;
// Pause of a client after a failed request, so that clients of a dead
// endpoint do not spin and steal CPU from the others.
constexpr std::chrono::milliseconds kErrorPause{10};
// Concurrent writers of the preload phase.
constexpr uint32_t kPreloadClients = 64;

struct Options {
  std::vector<std::string> endpoints;
  uint32_t clients = 1;
  Workload workload = Workload::kPut;
  double duration_s = 10;
  uint64_t ops = 0;  // > 0: a fixed number of measured ops instead of a duration
  double warmup_s = 1;
  uint32_t value_size = 256;
  uint64_t keys = 10000;
  std::string key_prefix = "tkvbench/";
  double put_fraction = 0.5;
  uint64_t seed = 1;
  uint32_t timeout_ms = 5000;
  bool preload = true;
  bool matrix = false;
  bool json = false;
  bool counters = false;  // totemkvd admin counters before/after each run
  std::string label = "server";
};

void PrintUsage() {
  std::fprintf(
      stderr,
      "usage: tkv-bench --endpoints HOST:PORT[,HOST:PORT...] [options]\n"
      "  --endpoints LIST      etcd v3 gRPC endpoints (http:// prefix allowed); clients are\n"
      "                        spread over them round-robin\n"
      "  --clients N           concurrent clients, one request in flight each (default 1)\n"
      "  --workload W          put | get | get-serializable | mixed (default put);\n"
      "                        get = linearizable Range, mixed = --put-fraction puts, the\n"
      "                        rest linearizable gets\n"
      "  --duration S          measured seconds (default 10)\n"
      "  --ops N               measure N ops (all clients together) instead of a duration\n"
      "  --warmup S            seconds of load before measuring (default 1)\n"
      "  --value-size B        put value bytes (default 256)\n"
      "  --keys N              key space: keys PREFIX00000000.. chosen uniformly (default 10000)\n"
      "  --key-prefix P        (default tkvbench/)\n"
      "  --put-fraction F      share of puts in the mixed workload (default 0.5)\n"
      "  --seed N              PRNG seed; client i uses seed+i (default 1)\n"
      "  --timeout-ms N        per-request deadline (default 5000)\n"
      "  --no-preload          get workloads: do not write every key first\n"
      "  --matrix              run the standard set: put 1/64, get 1/64, get-serializable\n"
      "                        1/64, mixed 64 (ignores --clients and --workload)\n"
      "  --label NAME          name of the system under test in the output (default server)\n"
      "  --counters            totemkvd only: print each node's admin counters that changed\n"
      "                        during each run (Admin.GetCounters; text output only)\n"
      "  -w json               one JSON object per run on stdout instead of text\n"
      "  --failover            kill -9 failover benchmark instead (spawns its own totemkvd\n"
      "                        and etcd clusters): see tkv-bench --failover --help\n");
}

using totemkv::bench::ParseUint;

bool ParseDouble(const std::string& s, double min, double max, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size() || !std::isfinite(v) || v < min || v > max) {
    return false;
  }
  *out = v;
  return true;
}

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

std::optional<Options> ParseOptions(int argc, char** argv) {
  Options o;
  auto fail = [](const std::string& why) -> std::optional<Options> {
    std::fprintf(stderr, "tkv-bench: %s\n", why.c_str());
    PrintUsage();
    return std::nullopt;
  };
  bool duration_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-h" || flag == "--help") {
      PrintUsage();
      std::exit(0);
    }
    if (flag == "--no-preload") {
      o.preload = false;
      continue;
    }
    if (flag == "--matrix") {
      o.matrix = true;
      continue;
    }
    if (flag == "--counters") {
      o.counters = true;
      continue;
    }
    if (i + 1 >= argc) return fail("missing value for " + flag);
    const std::string value = argv[++i];
    uint64_t u = 0;
    if (flag == "--endpoints") {
      o.endpoints.clear();
      for (std::string ep : SplitComma(value)) {
        if (ep.rfind("http://", 0) == 0) ep = ep.substr(7);
        if (ep.rfind("https://", 0) == 0) return fail("--endpoints: TLS is not supported: " + ep);
        const size_t colon = ep.rfind(':');
        if (ep.empty() || colon == std::string::npos || colon == 0 ||
            !ParseUint(ep.substr(colon + 1), 1, 65535, &u)) {
          return fail("--endpoints: '" + ep + "' is not HOST:PORT");
        }
        o.endpoints.push_back(ep);
      }
    } else if (flag == "--clients") {
      if (!ParseUint(value, 1, 4096, &u)) return fail("--clients must be 1..4096");
      o.clients = static_cast<uint32_t>(u);
    } else if (flag == "--workload") {
      const std::optional<Workload> w = ParseWorkload(value);
      if (!w)
        return fail("--workload must be put, get, get-serializable or mixed, not '" + value + "'");
      o.workload = *w;
    } else if (flag == "--duration") {
      if (!ParseDouble(value, 0.1, 86400, &o.duration_s))
        return fail("--duration must be 0.1..86400 s");
      duration_given = true;
    } else if (flag == "--ops") {
      if (!ParseUint(value, 1, 1000000000, &o.ops)) return fail("--ops must be 1..1e9");
    } else if (flag == "--warmup") {
      if (!ParseDouble(value, 0, 3600, &o.warmup_s)) return fail("--warmup must be 0..3600 s");
    } else if (flag == "--value-size") {
      if (!ParseUint(value, 0, 1 << 20, &u)) return fail("--value-size must be 0..1048576");
      o.value_size = static_cast<uint32_t>(u);
    } else if (flag == "--keys") {
      if (!ParseUint(value, 1, 100000000, &o.keys)) return fail("--keys must be 1..1e8");
    } else if (flag == "--key-prefix") {
      o.key_prefix = value;
    } else if (flag == "--put-fraction") {
      if (!ParseDouble(value, 0, 1, &o.put_fraction)) return fail("--put-fraction must be 0..1");
    } else if (flag == "--seed") {
      if (!ParseUint(value, 0, UINT64_MAX, &o.seed)) return fail("--seed must be an integer");
    } else if (flag == "--timeout-ms") {
      if (!ParseUint(value, 1, 3600000, &u)) return fail("--timeout-ms must be 1..3600000");
      o.timeout_ms = static_cast<uint32_t>(u);
    } else if (flag == "--label") {
      if (value.empty() || value.find_first_of(" \t\n\"\\") != std::string::npos) {
        return fail("--label must be one word without quotes");
      }
      o.label = value;
    } else if (flag == "-w" || flag == "--write-out") {
      if (value == "json") {
        o.json = true;
      } else if (value == "simple" || value == "text") {
        o.json = false;
      } else {
        return fail("-w must be json or text");
      }
    } else {
      return fail("unknown option " + flag);
    }
  }
  if (o.endpoints.empty()) return fail("--endpoints is required (or --failover)");
  if (o.ops > 0 && duration_given) return fail("give --duration or --ops, not both");
  return o;
}

double LoadAverage1() {
  std::ifstream in("/proc/loadavg");
  double v = NAN;
  in >> v;
  return v;
}

std::string KeyName(const Options& o, uint64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%08llu", static_cast<unsigned long long>(index));
  return o.key_prefix + buf;
}

// The gRPC channels and stubs of one run: client i talks to endpoint
// i % E over that endpoint's channel (i / E) / kClientsPerChannel.
class Connections {
 public:
  Connections(const std::vector<std::string>& endpoints, uint32_t clients) {
    const uint32_t n_ep = static_cast<uint32_t>(endpoints.size());
    int channel_id = 0;
    for (uint32_t e = 0; e < n_ep; ++e) {
      const uint32_t on_ep = clients / n_ep + (e < clients % n_ep ? 1 : 0);
      const uint32_t n_ch =
          std::max<uint32_t>(1, (on_ep + kClientsPerChannel - 1) / kClientsPerChannel);
      std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;
      for (uint32_t c = 0; c < n_ch; ++c) {
        grpc::ChannelArguments args;
        // Without these, channels with equal arguments share one
        // subchannel, i.e. one TCP connection.
        args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
        args.SetInt("tkv_bench.channel_id", channel_id++);
        auto ch = grpc::CreateCustomChannel(endpoints[e], grpc::InsecureChannelCredentials(), args);
        channels_.push_back(ch);
        channel_endpoints_.push_back(endpoints[e]);
        stubs.push_back(etcdserverpb::KV::NewStub(ch));
      }
      stubs_.push_back(std::move(stubs));
    }
  }

  etcdserverpb::KV::Stub* ForClient(uint32_t i) const {
    const auto& per_ep = stubs_[i % stubs_.size()];
    return per_ep[(i / stubs_.size()) / kClientsPerChannel % per_ep.size()].get();
  }
  size_t channel_count() const { return channels_.size(); }
  const std::string& channel_endpoint(size_t i) const { return channel_endpoints_[i]; }

  // Connects every channel; false (with the failing index) if one does not
  // come up within `timeout`.
  bool ConnectAll(std::chrono::milliseconds timeout, size_t* failed) const {
    const auto deadline = std::chrono::system_clock::now() + timeout;
    for (size_t i = 0; i < channels_.size(); ++i) {
      if (!channels_[i]->WaitForConnected(deadline)) {
        *failed = i;
        return false;
      }
    }
    return true;
  }

 private:
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::string> channel_endpoints_;  // parallel to channels_
  std::vector<std::vector<std::unique_ptr<etcdserverpb::KV::Stub>>> stubs_;
};

// What one client thread collected.
struct ClientResult {
  std::vector<uint32_t> put_us;  // latency samples of the measured window
  std::vector<uint32_t> get_us;
  std::map<std::string, uint64_t> errors;  // measured window, by code
  uint64_t warmup_errors = 0;
  std::string first_error;  // "CODE: message", for the report
};

// State shared by the client threads of one run.
struct RunControl {
  std::atomic<bool> measuring{false};
  std::atomic<bool> stop{false};
  std::atomic<int64_t> remaining{0};  // ops budget (ops mode only)
  bool ops_mode = false;
};

grpc::Status DoPut(etcdserverpb::KV::Stub* kv, const std::string& key, const std::string& value,
                   uint32_t timeout_ms) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  etcdserverpb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  etcdserverpb::PutResponse resp;
  return kv->Put(&ctx, req, &resp);
}

grpc::Status DoGet(etcdserverpb::KV::Stub* kv, const std::string& key, bool serializable,
                   uint32_t timeout_ms) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
  etcdserverpb::RangeRequest req;
  req.set_key(key);
  req.set_serializable(serializable);
  etcdserverpb::RangeResponse resp;
  return kv->Range(&ctx, req, &resp);
}

std::string RandomValue(std::mt19937_64& rng, uint32_t size) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string v(size, 'x');
  for (char& c : v) c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return v;
}

void ClientLoop(const Options& o, Workload workload, uint32_t index, etcdserverpb::KV::Stub* kv,
                RunControl* ctl, ClientResult* out) {
  std::mt19937_64 rng(o.seed + index);
  std::uniform_int_distribution<uint64_t> key_dist(0, o.keys - 1);
  std::bernoulli_distribution put_coin(workload == Workload::kPut     ? 1.0
                                       : workload == Workload::kMixed ? o.put_fraction
                                                                      : 0.0);
  const std::string value = RandomValue(rng, o.value_size);
  const bool serializable = workload == Workload::kGetSerializable;
  while (!ctl->stop.load(std::memory_order_relaxed)) {
    const bool measuring = ctl->measuring.load(std::memory_order_acquire);
    if (measuring && ctl->ops_mode && ctl->remaining.fetch_sub(1) <= 0) break;
    const std::string key = KeyName(o, key_dist(rng));
    const bool is_put = put_coin(rng);
    const auto t0 = Clock::now();
    const grpc::Status st =
        is_put ? DoPut(kv, key, value, o.timeout_ms) : DoGet(kv, key, serializable, o.timeout_ms);
    const auto t1 = Clock::now();
    // An op counts if it started in the measured window and (duration
    // mode) finished before the window closed.
    if (!st.ok()) std::this_thread::sleep_for(kErrorPause);
    if (!measuring || (!ctl->ops_mode && ctl->stop.load(std::memory_order_acquire))) {
      if (!st.ok()) ++out->warmup_errors;
      continue;
    }
    if (st.ok()) {
      const int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count();
      (is_put ? out->put_us : out->get_us)
          .push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
    } else {
      ++out->errors[CodeName(st.error_code())];
      if (out->first_error.empty()) {
        out->first_error = std::string(CodeName(st.error_code())) + ": " + st.error_message();
      }
    }
  }
}

struct Percentiles {
  size_t count = 0;
  double min_ms = NAN, mean_ms = NAN, p50_ms = NAN, p90_ms = NAN, p99_ms = NAN, p999_ms = NAN,
         max_ms = NAN;
};

// Exact nearest-rank percentiles: the ceil(p * n)-th smallest sample.
Percentiles ComputePercentiles(std::vector<uint32_t> us) {
  Percentiles p;
  p.count = us.size();
  if (us.empty()) return p;
  std::sort(us.begin(), us.end());
  auto rank = [&](double q) {
    size_t k = static_cast<size_t>(std::ceil(q * static_cast<double>(us.size())));
    k = std::clamp<size_t>(k, 1, us.size());
    return us[k - 1] / 1000.0;
  };
  double sum = 0;
  for (uint32_t v : us) sum += v;
  p.min_ms = us.front() / 1000.0;
  p.max_ms = us.back() / 1000.0;
  p.mean_ms = sum / static_cast<double>(us.size()) / 1000.0;
  p.p50_ms = rank(0.50);
  p.p90_ms = rank(0.90);
  p.p99_ms = rank(0.99);
  p.p999_ms = rank(0.999);
  return p;
}

// One node's totemkvd admin counters ("totem." and "store." prefixed).
using CounterMap = std::map<std::string, uint64_t>;

// Fetches every endpoint's counters; an endpoint that does not serve the
// admin API (etcd) yields an empty map and `*why`.
std::vector<CounterMap> FetchCounters(const std::vector<std::string>& endpoints, std::string* why) {
  std::vector<CounterMap> out;
  for (const std::string& ep : endpoints) {
    auto stub = totemkv::admin::v1::Admin::NewStub(
        grpc::CreateChannel(ep, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    totemkv::admin::v1::GetCountersRequest req;
    totemkv::admin::v1::GetCountersResponse resp;
    const grpc::Status st = stub->GetCounters(&ctx, req, &resp);
    CounterMap m;
    if (st.ok()) {
      for (const auto& [k, v] : resp.totem()) m["totem." + k] = v;
      for (const auto& [k, v] : resp.store()) m["store." + k] = v;
    } else if (why->empty()) {
      *why = ep + ": " + CodeName(st.error_code()) + ": " + st.error_message();
    }
    out.push_back(std::move(m));
  }
  return out;
}

// Prints, per endpoint, every counter that changed (gauges "_current" as
// their value after the run), with its rate over `seconds`.
void PrintCounterDeltas(const std::vector<std::string>& endpoints,
                        const std::vector<CounterMap>& before, const std::vector<CounterMap>& after,
                        double seconds, const std::string& why) {
  if (!why.empty()) std::printf("  counters: not available (%s)\n", why.c_str());
  for (size_t i = 0; i < endpoints.size() && i < before.size() && i < after.size(); ++i) {
    if (after[i].empty()) continue;
    std::string line;
    for (const auto& [k, v] : after[i]) {
      const bool gauge = k.size() > 8 && k.compare(k.size() - 8, 8, "_current") == 0;
      const auto b = before[i].find(k);
      const uint64_t base = b == before[i].end() ? 0 : b->second;
      if (gauge) {
        if (v != 0) line += " " + k + "=" + std::to_string(v);
        continue;
      }
      if (v == base) continue;
      char rate[48];
      std::snprintf(rate, sizeof(rate), "(%.0f/s)", static_cast<double>(v - base) / seconds);
      line += " " + k + "=+" + std::to_string(v - base) + rate;
    }
    std::printf("  counters %s:%s\n", endpoints[i].c_str(), line.c_str());
  }
}

struct RunResult {
  std::string label;
  Workload workload = Workload::kPut;
  uint32_t clients = 0;
  size_t channels = 0;
  double seconds = 0;
  uint64_t ops = 0;
  double ops_per_s = 0;
  Percentiles all, put, get;
  std::map<std::string, uint64_t> errors;
  uint64_t error_count = 0;
  uint64_t warmup_errors = 0;
  std::string first_error;
  double load_start = NAN, load_end = NAN;
  std::vector<CounterMap> counters_before, counters_after;
  std::string counters_why;
  double counters_seconds = 0;
};

std::optional<RunResult> Run(const Options& o, Workload workload, uint32_t clients) {
  Connections conns(o.endpoints, clients);
  size_t failed = 0;
  if (!conns.ConnectAll(std::chrono::milliseconds(10000), &failed)) {
    std::fprintf(stderr, "tkv-bench: could not connect to %s within 10 s\n",
                 conns.channel_endpoint(failed).c_str());
    return std::nullopt;
  }
  RunResult r;
  r.label = o.label;
  r.workload = workload;
  r.clients = clients;
  r.channels = conns.channel_count();
  r.load_start = LoadAverage1();

  RunControl ctl;
  ctl.ops_mode = o.ops > 0;
  ctl.remaining.store(static_cast<int64_t>(o.ops));
  std::vector<ClientResult> results(clients);
  if (o.counters) r.counters_before = FetchCounters(o.endpoints, &r.counters_why);
  const auto c0 = Clock::now();
  std::vector<std::thread> threads;
  threads.reserve(clients);
  for (uint32_t i = 0; i < clients; ++i) {
    threads.emplace_back(ClientLoop, std::cref(o), workload, i, conns.ForClient(i), &ctl,
                         &results[i]);
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup_s));
  const auto t0 = Clock::now();
  ctl.measuring.store(true, std::memory_order_release);
  Clock::time_point t1;
  if (ctl.ops_mode) {
    for (auto& t : threads) t.join();
    t1 = Clock::now();
  } else {
    std::this_thread::sleep_for(std::chrono::duration<double>(o.duration_s));
    ctl.stop.store(true, std::memory_order_release);
    t1 = Clock::now();
    for (auto& t : threads) t.join();
  }
  r.seconds = std::chrono::duration<double>(t1 - t0).count();
  r.load_end = LoadAverage1();
  if (o.counters) {
    // Covers warmup and measured window alike.
    r.counters_after = FetchCounters(o.endpoints, &r.counters_why);
    r.counters_seconds = std::chrono::duration<double>(Clock::now() - c0).count();
  }

  std::vector<uint32_t> put_us, get_us;
  for (const ClientResult& c : results) {
    put_us.insert(put_us.end(), c.put_us.begin(), c.put_us.end());
    get_us.insert(get_us.end(), c.get_us.begin(), c.get_us.end());
    for (const auto& [code, n] : c.errors) {
      r.errors[code] += n;
      r.error_count += n;
    }
    r.warmup_errors += c.warmup_errors;
    if (r.first_error.empty()) r.first_error = c.first_error;
  }
  std::vector<uint32_t> all = put_us;
  all.insert(all.end(), get_us.begin(), get_us.end());
  r.ops = all.size();
  r.ops_per_s = r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0;
  r.all = ComputePercentiles(std::move(all));
  if (workload == Workload::kMixed) {
    r.put = ComputePercentiles(std::move(put_us));
    r.get = ComputePercentiles(std::move(get_us));
  }
  return r;
}

// Writes every key of the space once with up to kPreloadClients writers.
bool Preload(const Options& o) {
  const uint32_t writers = static_cast<uint32_t>(std::min<uint64_t>(kPreloadClients, o.keys));
  Connections conns(o.endpoints, writers);
  size_t failed = 0;
  if (!conns.ConnectAll(std::chrono::milliseconds(10000), &failed)) {
    std::fprintf(stderr, "tkv-bench: preload: could not connect to %s within 10 s\n",
                 conns.channel_endpoint(failed).c_str());
    return false;
  }
  const auto t0 = Clock::now();
  std::atomic<uint64_t> errors{0};
  std::mutex mu;
  std::string first_error;
  std::vector<std::thread> threads;
  for (uint32_t w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      std::mt19937_64 rng(o.seed + 1000003u * (w + 1));
      const std::string value = RandomValue(rng, o.value_size);
      for (uint64_t k = w; k < o.keys; k += writers) {
        const grpc::Status st = DoPut(conns.ForClient(w), KeyName(o, k), value, o.timeout_ms);
        if (!st.ok()) {
          ++errors;
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty()) {
            first_error = std::string(CodeName(st.error_code())) + ": " + st.error_message();
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (errors.load() > 0) {
    std::fprintf(stderr, "tkv-bench: preload of %llu keys had %llu errors (first: %s)\n",
                 static_cast<unsigned long long>(o.keys),
                 static_cast<unsigned long long>(errors.load()), first_error.c_str());
    return false;
  }
  if (!o.json) {
    std::printf("preloaded %llu keys (%u B values) in %.1f s\n",
                static_cast<unsigned long long>(o.keys), o.value_size, s);
    std::fflush(stdout);
  }
  return true;
}

std::string Ms(double v) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", v);
  return buf;
}

std::string JsonNum(double v, int decimals) {
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

std::string ErrorsText(const RunResult& r) {
  std::string s;
  for (const auto& [code, n] : r.errors)
    s += (s.empty() ? "" : ",") + code + "=" + std::to_string(n);
  return s.empty() ? "0" : s;
}

void PrintLatencyLine(const char* what, const Percentiles& p) {
  std::printf("  %-8s n=%zu ms: min %s mean %s p50 %s p90 %s p99 %s p99.9 %s max %s\n", what,
              p.count, Ms(p.min_ms).c_str(), Ms(p.mean_ms).c_str(), Ms(p.p50_ms).c_str(),
              Ms(p.p90_ms).c_str(), Ms(p.p99_ms).c_str(), Ms(p.p999_ms).c_str(),
              Ms(p.max_ms).c_str());
}

void PrintText(const Options& o, const RunResult& r) {
  std::printf("%s %s clients=%u endpoints=%zu channels=%zu value=%uB keys=%llu measured=%.1fs\n",
              r.label.c_str(), WorkloadName(r.workload), r.clients, o.endpoints.size(), r.channels,
              o.value_size, static_cast<unsigned long long>(o.keys), r.seconds);
  PrintLatencyLine("all", r.all);
  if (r.workload == Workload::kMixed) {
    PrintLatencyLine("put", r.put);
    PrintLatencyLine("get", r.get);
  }
  if (o.counters) {
    PrintCounterDeltas(o.endpoints, r.counters_before, r.counters_after, r.counters_seconds,
                       r.counters_why);
  }
  if (r.error_count > 0 || r.warmup_errors > 0) {
    std::printf("  ERRORS in this run: %s (warmup: %llu); first: %s\n", ErrorsText(r).c_str(),
                static_cast<unsigned long long>(r.warmup_errors), r.first_error.c_str());
  }
  std::printf(
      "RESULT label=%s workload=%s clients=%u ops=%llu ops/s=%.0f p50_ms=%s p99_ms=%s "
      "p99.9_ms=%s errors=%s load1=%.2f\n",
      r.label.c_str(), WorkloadName(r.workload), r.clients, static_cast<unsigned long long>(r.ops),
      r.ops_per_s, Ms(r.all.p50_ms).c_str(), Ms(r.all.p99_ms).c_str(), Ms(r.all.p999_ms).c_str(),
      ErrorsText(r).c_str(), r.load_start);
  std::fflush(stdout);
}

std::string PercentilesJson(const Percentiles& p) {
  return "{\"count\":" + std::to_string(p.count) + ",\"min_ms\":" + JsonNum(p.min_ms, 3) +
         ",\"mean_ms\":" + JsonNum(p.mean_ms, 3) + ",\"p50_ms\":" + JsonNum(p.p50_ms, 3) +
         ",\"p90_ms\":" + JsonNum(p.p90_ms, 3) + ",\"p99_ms\":" + JsonNum(p.p99_ms, 3) +
         ",\"p999_ms\":" + JsonNum(p.p999_ms, 3) + ",\"max_ms\":" + JsonNum(p.max_ms, 3) + "}";
}

void PrintJson(const Options& o, const RunResult& r) {
  std::string errors = "{";
  for (const auto& [code, n] : r.errors) {
    errors += (errors.size() > 1 ? "," : "") + JsonString(code) + ":" + std::to_string(n);
  }
  errors += "}";
  std::string out =
      "{\"label\":" + JsonString(r.label) +
      ",\"workload\":" + JsonString(WorkloadName(r.workload)) +
      ",\"clients\":" + std::to_string(r.clients) +
      ",\"endpoints\":" + std::to_string(o.endpoints.size()) +
      ",\"channels\":" + std::to_string(r.channels) +
      ",\"value_size\":" + std::to_string(o.value_size) + ",\"keys\":" + std::to_string(o.keys) +
      ",\"seconds\":" + JsonNum(r.seconds, 3) + ",\"ops\":" + std::to_string(r.ops) +
      ",\"ops_per_s\":" + JsonNum(r.ops_per_s, 1) + ",\"latency\":" + PercentilesJson(r.all);
  if (r.workload == Workload::kMixed) {
    out += ",\"put_fraction\":" + JsonNum(o.put_fraction, 3) +
           ",\"put_latency\":" + PercentilesJson(r.put) +
           ",\"get_latency\":" + PercentilesJson(r.get);
  }
  out += ",\"errors\":" + errors + ",\"error_count\":" + std::to_string(r.error_count) +
         ",\"warmup_errors\":" + std::to_string(r.warmup_errors) +
         ",\"first_error\":" + JsonString(r.first_error) +
         ",\"load1_start\":" + JsonNum(r.load_start, 2) +
         ",\"load1_end\":" + JsonNum(r.load_end, 2) + "}";
  std::printf("%s\n", out.c_str());
  std::fflush(stdout);
}

void PrintMarkdownTable(const std::vector<RunResult>& rows) {
  std::printf(
      "\n| system | workload | clients | ops/s | p50 ms | p99 ms | p99.9 ms | errors | load1 |\n"
      "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |\n");
  for (const RunResult& r : rows) {
    std::printf("| %s | %s | %u | %.0f | %s | %s | %s | %s | %.2f |\n", r.label.c_str(),
                WorkloadName(r.workload), r.clients, r.ops_per_s, Ms(r.all.p50_ms).c_str(),
                Ms(r.all.p99_ms).c_str(), Ms(r.all.p999_ms).c_str(), ErrorsText(r).c_str(),
                r.load_start);
  }
}

int Main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--failover") return RunTkvFailover(argc, argv);
  }
  const std::optional<Options> parsed = ParseOptions(argc, argv);
  if (!parsed) return 2;
  const Options& o = *parsed;

  std::vector<std::pair<Workload, uint32_t>> plan;
  if (o.matrix) {
    plan = {{Workload::kPut, 1},
            {Workload::kPut, 64},
            {Workload::kGet, 1},
            {Workload::kGet, 64},
            {Workload::kGetSerializable, 1},
            {Workload::kGetSerializable, 64},
            {Workload::kMixed, 64}};
  } else {
    plan = {{o.workload, o.clients}};
  }
  if (!o.json) {
    std::printf("tkv-bench: %s, endpoints %zu, %s per run (+%.1f s warmup), load average %.2f\n",
                o.label.c_str(), o.endpoints.size(),
                o.ops > 0 ? (std::to_string(o.ops) + " ops").c_str()
                          : (JsonNum(o.duration_s, 1) + " s").c_str(),
                o.warmup_s, LoadAverage1());
  }
  std::vector<RunResult> rows;
  bool preloaded = false;
  bool any_errors = false;
  for (const auto& [workload, clients] : plan) {
    if (ReadsKeys(workload) && o.preload && !preloaded) {
      if (!Preload(o)) return 1;
      preloaded = true;
    }
    std::optional<RunResult> r = Run(o, workload, clients);
    if (!r) return 1;
    if (o.json) {
      PrintJson(o, *r);
    } else {
      PrintText(o, *r);
    }
    any_errors = any_errors || r->error_count > 0 || r->warmup_errors > 0;
    rows.push_back(std::move(*r));
  }
  if (!o.json && rows.size() > 1) PrintMarkdownTable(rows);
  if (any_errors) {
    std::fprintf(stderr, "tkv-bench: WARNING: some requests failed (see errors above)\n");
    return 3;
  }
  return 0;
}

}  // namespace
}  // namespace totemkv::bench

int main(int argc, char** argv) { return totemkv::bench::Main(argc, argv); }
