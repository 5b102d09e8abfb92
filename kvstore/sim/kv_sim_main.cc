// totemkv-sim: runs the store simulation (kv_sim.h) over a range of seeds
// and prints one summary line ending in `violations=<count>`. Exits
// non-zero on any violation, after printing for each failing seed its first
// violation and the exact command that replays it (add --trace for every
// event of that seed).
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>

#include "kvstore/sim/kv_sim.h"
#include "totem/sim/random.h"

namespace {

using kvstore::sim::KvSimOptions;

constexpr const char* kUsage = R"(usage: totemkv-sim [options]
  --seeds A-B | --seed S   seeds to run (default 1)
  --nodes N | A-B          cluster size (default 3); a range draws it per seed
  --faults LIST            simulator faults: crash, restart, restart-wiped,
                           partition, heal, loss-burst, slow, all
  --fault-count N          faults per run (default 1-6 from the seed)
  --loss P --dup P --reorder P
                           network faults per datagram
  --clients N              sequential clients (default 4)
  --ops N                  ops per client (default 20)
  --keys N                 key space (default 3)
  --log-retention N        ops kept in each replica's op log (default 32)
  --chunk-bytes N          snapshot / transfer chunk size (default 256)
  --transfer-window N      transfer messages in flight (default 4)
  --client-timeout-ms N    a client gives up on an op (default 500)
  --retry-percent N        retries with the same op id after an unknown
                           outcome (default 20)
  --liveness-ms N          bound after the final heal (default 3000)
  --max-time-ms N          virtual-time limit (default 60000)
  --trap                   the scripted trap scenario (5 nodes)
  --inject-fault NAME      ack-rejected-op | drop-replica-op | wrong-get-result
  --expect-violation       exit 0 only if EVERY run reports a violation
  --trace                  print every event (single seed)
)";

bool U64(std::string_view s, uint64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}
bool U32(std::string_view s, uint32_t* out) {
  uint64_t v = 0;
  if (!U64(s, &v) || v > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}
bool Dbl(std::string_view s, double* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}
bool Range(std::string_view s, uint64_t* a, uint64_t* b) {
  auto dash = s.find('-');
  if (dash == std::string_view::npos) {
    if (!U64(s, a)) return false;
    *b = *a;
    return true;
  }
  return U64(s.substr(0, dash), a) && U64(s.substr(dash + 1), b) && *a <= *b;
}

}  // namespace

int main(int argc, char** argv) {
  KvSimOptions o;
  uint64_t first = 1, last = 1, nodes_lo = 3, nodes_hi = 3;
  bool expect_violation = false, trace = false;
  std::string args;  // everything but --seeds, for the replay command
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (flag == "--trap") {
      o.trap = true;
      args += " --trap";
      continue;
    }
    if (flag == "--expect-violation") {
      expect_violation = true;
      args += " --expect-violation";
      continue;
    }
    if (flag == "--trace") {
      trace = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::cerr << "totemkv-sim: " << flag << " needs a value\n" << kUsage;
      return 2;
    }
    const std::string v = argv[++i];
    bool ok = true;
    uint64_t u = 0;
    if (flag == "--seeds" || flag == "--seed") {
      ok = Range(v, &first, &last);
    } else {
      args += " " + flag + " " + v;
      if (flag == "--nodes") {
        ok = Range(v, &nodes_lo, &nodes_hi);
      } else if (flag == "--faults") {
        ok = totem::sim::ParseFaults(v, &o.sim.faults);
      } else if (flag == "--fault-count") {
        ok = U32(v, &o.sim.fault_count);
      } else if (flag == "--loss") {
        ok = Dbl(v, &o.sim.loss);
      } else if (flag == "--dup") {
        ok = Dbl(v, &o.sim.dup);
      } else if (flag == "--reorder") {
        ok = Dbl(v, &o.sim.reorder);
      } else if (flag == "--clients") {
        ok = U32(v, &o.clients);
      } else if (flag == "--ops") {
        ok = U32(v, &o.ops_per_client);
      } else if (flag == "--keys") {
        ok = U32(v, &o.keys);
      } else if (flag == "--log-retention") {
        ok = U64(v, &u);
        o.log_retention = u;
      } else if (flag == "--chunk-bytes") {
        ok = U64(v, &u);
        o.snapshot_chunk_bytes = u;
      } else if (flag == "--transfer-window") {
        ok = U32(v, &o.transfer_window);
      } else if (flag == "--client-timeout-ms") {
        ok = U64(v, &o.client_timeout_ms);
      } else if (flag == "--retry-percent") {
        ok = U32(v, &o.retry_same_id_percent);
      } else if (flag == "--liveness-ms") {
        ok = U64(v, &o.liveness_ms);
      } else if (flag == "--max-time-ms") {
        ok = U64(v, &o.sim.max_time_ms);
      } else if (flag == "--inject-fault") {
        ok = kvstore::sim::ParseKvInjectedFault(v, &o.inject);
      } else {
        std::cerr << "totemkv-sim: unknown option " << flag << "\n" << kUsage;
        return 2;
      }
    }
    if (!ok) {
      std::cerr << "totemkv-sim: bad value for " << flag << ": '" << v << "'\n";
      return 2;
    }
  }
  if (trace && first != last) {
    std::cerr << "totemkv-sim: --trace takes a single seed\n";
    return 2;
  }
  for (uint64_t n : {nodes_lo, nodes_hi}) {
    KvSimOptions check = o;
    check.sim.nodes = static_cast<uint32_t>(n);
    if (std::string bad = kvstore::sim::ValidateKvSimOptions(check); !bad.empty()) {
      std::cerr << "totemkv-sim: " << bad << "\n";
      return 2;
    }
  }
  uint64_t runs = 0, failed = 0, acked = 0, unknown = 0, snapshots = 0, primaries = 0, yellow = 0,
           required = 0, amnesia = 0, virtual_us = 0;
  for (uint64_t seed = first; seed <= last; ++seed) {
    KvSimOptions run = o;
    run.sim.seed = seed;
    run.sim.nodes = static_cast<uint32_t>(
        nodes_lo == nodes_hi
            ? nodes_lo
            : nodes_lo + totem::sim::Mix64(seed ^ 0x6E6F646573ull) % (nodes_hi - nodes_lo + 1));
    if (trace) run.trace = &std::cout;
    kvstore::sim::KvSimResult r = kvstore::sim::RunKvSim(run);
    ++runs;
    acked += r.acked;
    unknown += r.unknown;
    snapshots += r.snapshots;
    primaries += r.primaries;
    yellow += r.yellow_adopted;
    required += r.liveness_required;
    amnesia += r.amnesia;
    virtual_us += r.sim.virtual_us;
    if (!r.ok) {
      ++failed;
      if (!expect_violation) {
        std::printf("seed=%llu nodes=%u VIOLATION: %s\n  replay: totemkv-sim --seed %llu%s\n",
                    static_cast<unsigned long long>(seed), run.sim.nodes, r.first_violation.c_str(),
                    static_cast<unsigned long long>(seed), args.c_str());
      }
    } else if (expect_violation) {
      std::printf(
          "seed=%llu: expected a violation, the run passed\n  replay: totemkv-sim --seed "
          "%llu%s\n",
          static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed),
          args.c_str());
    }
  }
  std::printf(
      "totemkv-sim%s seeds=%llu-%llu runs=%llu acked=%llu unknown=%llu primaries=%llu "
      "snapshots=%llu yellow_adopted=%llu liveness_required=%llu amnesia=%llu "
      "virtual_ms_avg=%.1f violations=%llu\n",
      args.c_str(), static_cast<unsigned long long>(first), static_cast<unsigned long long>(last),
      static_cast<unsigned long long>(runs), static_cast<unsigned long long>(acked),
      static_cast<unsigned long long>(unknown), static_cast<unsigned long long>(primaries),
      static_cast<unsigned long long>(snapshots), static_cast<unsigned long long>(yellow),
      static_cast<unsigned long long>(required), static_cast<unsigned long long>(amnesia),
      runs ? static_cast<double>(virtual_us) / 1000.0 / static_cast<double>(runs) : 0.0,
      static_cast<unsigned long long>(failed));
  if (expect_violation) return failed == runs ? 0 : 1;
  return failed == 0 ? 0 : 1;
}
