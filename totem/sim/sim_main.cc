// totem-sim: runs the deterministic single-ring simulator over a range of
// seeds and prints one summary line ending in `violations=<count>` (the
// number of runs that broke a guarantee; a run stops at its first
// violation). Exits non-zero on any violation, after printing for each
// failing seed its first violation and the exact command that replays it.
// --trace prints every event of one seed; --digest prints each run's trace
// digest, which is identical on every replay of the same command. --faults
// adds crashes, restarts, partitions, loss bursts and slow nodes scheduled
// from the seed; --nodes A-B draws each seed's ring size from the seed.
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <iostream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "totem/sim/random.h"
#include "totem/sim/simulator.h"

namespace {

using totem::sim::InjectedFault;
using totem::sim::RunResult;
using totem::sim::SimOptions;

constexpr const char* kUsage = R"(usage: totem-sim [options]
  --nodes N | A-B        ring size (default 3); a range draws it per seed
  --seeds A-B | --seed S seeds to run (default 1)
  --messages M           messages submitted per run (default 100)
  --loss P --dup P --reorder P
                         per-datagram probability of loss, duplication and
                         extra delay that lets later datagrams overtake it
  --corrupt P            probability of a truncated or bad-magic datagram
  --no-burst             no burst loss (deaf periods) when --loss > 0
  --latency-us N --jitter-us N --reorder-delay-us N
  --no-packing           one message or fragment per frame
  --window N --max-per-visit N --frame-bytes N --buffer-frames N
  --pending-bytes N      submit queue bound (small: exercises kWouldBlock)
  --max-message-bytes N  largest message (large ones are capped to it)
  --max-rtr N            retransmission requests per token
  --token-retransmit-us N --token-hold-us N
  --token-timeout-us N --token-timeout-per-node-us N --join-timeout-us N
  --consensus-timeout-us N --merge-timeout-us N
                         membership timeouts (RingConfig defaults)
  --faults LIST          comma list of crash, restart, restart-wiped,
                         partition, heal, loss-burst, slow, or all: a fault
                         schedule drawn from the seed, then a final heal
                         after which the live nodes must form one ring
  --fault-count N        faults per run (default: 1-6 drawn from the seed)
  --wiped-seq-zero       restart-wiped passes ring seq 0 instead of a
                         time-based one (1e15 + virtual microseconds)
  --converge-ms N        termination bound after the final heal (default
                         2 x (token timeout + consensus + merge) + 4 x join
                         + 50 ms)
  --static-membership    the whole run must keep one configuration of all
                         nodes (no faults; the checker's strict mode)
  --spread-ms N          submit times spread over [0, N] ms (default automatic)
  --large-percent N --large-frames N
                         share of messages larger than a frame, and their
                         largest size in frames (default 10, 4)
  --safe-fraction F      share of kSafe messages (default 0.5)
  --max-time-ms N        virtual-time limit per run; hitting it is a
                         liveness violation (default 60000)
  --settle-ms N          run on after everything is delivered (default 50)
  --trace                print every event (single seed only)
  --digest               print each run's trace digest
  --inject-fault NAME    drop-delivery | corrupt-payload | swap-deliveries |
                         false-safe: break the run on purpose (checker test)
  --expect-violation     exit 0 only if EVERY run reports a violation
  --fuzz                 derive the network and ring options of each run
                         from its seed (node count, loss, window, frame size,
                         packing, ...); failures print the expanded options
)";

// Shortest text that parses back to the same double.
std::string FormatDouble(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  if (ec != std::errc()) return "nan";
  return std::string(buf, end);
}

bool ParseU64(std::string_view s, uint64_t* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}
bool ParseU32(std::string_view s, uint32_t* out) {
  uint64_t v = 0;
  if (!ParseU64(s, &v) || v > UINT32_MAX) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}
bool ParseDouble(std::string_view s, double* out) {
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size();
}

struct Cli {
  SimOptions opt;
  uint64_t first_seed = 1;
  uint64_t last_seed = 1;
  bool trace = false;
  bool digest = false;
  bool expect_violation = false;
  bool fuzz = false;
  uint32_t nodes_max = 0;  // --nodes A-B: per-seed ring size in [opt.nodes, nodes_max]
};

// --fuzz: options drawn from the seed (a stream separate from the run's).
SimOptions FuzzOptions(SimOptions o, uint64_t seed) {
  totem::sim::Random r(seed ^ 0xF0220F0220F0220Full);
  auto pick = [&r](std::initializer_list<double> xs) { return *(xs.begin() + r.Below(xs.size())); };
  o.nodes = static_cast<uint32_t>(r.Range(1, 9));
  o.loss = pick({0, 0.01, 0.05, 0.1, 0.2});
  o.dup = pick({0, 0.02, 0.1});
  o.reorder = pick({0, 0.05, 0.2, 0.5});
  o.corrupt = pick({0, 0, 0.02});
  o.packing = r.Chance(0.8);
  o.window_size = static_cast<uint32_t>(pick({16, 64, 256}));
  o.max_messages_per_visit = static_cast<uint32_t>(r.Range(1, std::min(o.window_size, 64u)));
  uint32_t buffer = 64;
  while (buffer < 4 * o.window_size) buffer *= 2;
  o.receive_buffer_frames = buffer << r.Below(3);
  o.max_frame_bytes = static_cast<uint32_t>(pick({256, 600, 1400, 9000}));
  o.max_rtr_entries =
      static_cast<uint32_t>(r.Range(1, std::min<uint64_t>(128, (o.max_frame_bytes - 58) / 8)));
  o.large_percent = static_cast<uint32_t>(pick({0, 10, 30}));
  o.large_max_frames = static_cast<uint32_t>(pick({4, 20}));
  o.safe_fraction = pick({0, 0.5, 1});
  o.token_hold_us = static_cast<uint32_t>(r.Range(100, 8000));
  return o;
}

// Every option that differs from the default, so the command replays the run.
std::string OptionsString(const SimOptions& o) {
  const SimOptions d;
  std::string s =
      " --nodes " + std::to_string(o.nodes) + " --messages " + std::to_string(o.messages);
  auto num = [&s](const char* flag, uint64_t v, uint64_t def) {
    if (v != def) s += std::string(" ") + flag + " " + std::to_string(v);
  };
  auto real = [&s](const char* flag, double v, double def) {
    if (v != def) s += std::string(" ") + flag + " " + FormatDouble(v);
  };
  real("--loss", o.loss, d.loss);
  real("--dup", o.dup, d.dup);
  real("--reorder", o.reorder, d.reorder);
  real("--corrupt", o.corrupt, d.corrupt);
  if (!o.burst_loss) s += " --no-burst";
  num("--latency-us", o.latency_us, d.latency_us);
  num("--jitter-us", o.jitter_us, d.jitter_us);
  num("--reorder-delay-us", o.reorder_delay_us, d.reorder_delay_us);
  if (!o.packing) s += " --no-packing";
  num("--window", o.window_size, d.window_size);
  num("--max-per-visit", o.max_messages_per_visit, d.max_messages_per_visit);
  num("--frame-bytes", o.max_frame_bytes, d.max_frame_bytes);
  num("--buffer-frames", o.receive_buffer_frames, d.receive_buffer_frames);
  num("--pending-bytes", o.max_pending_bytes, d.max_pending_bytes);
  num("--max-message-bytes", o.max_message_bytes, d.max_message_bytes);
  num("--max-rtr", o.max_rtr_entries, d.max_rtr_entries);
  num("--token-retransmit-us", o.token_retransmit_us, d.token_retransmit_us);
  num("--token-hold-us", o.token_hold_us, d.token_hold_us);
  num("--token-timeout-us", o.token_timeout_us, d.token_timeout_us);
  num("--token-timeout-per-node-us", o.token_timeout_per_node_us, d.token_timeout_per_node_us);
  num("--join-timeout-us", o.join_timeout_us, d.join_timeout_us);
  num("--consensus-timeout-us", o.consensus_timeout_us, d.consensus_timeout_us);
  num("--merge-timeout-us", o.merge_timeout_us, d.merge_timeout_us);
  if (o.faults != 0) s += " --faults " + totem::sim::FaultsString(o.faults);
  num("--fault-count", o.fault_count, d.fault_count);
  if (o.wiped_seq_zero) s += " --wiped-seq-zero";
  num("--converge-ms", o.converge_ms, d.converge_ms);
  if (o.static_membership) s += " --static-membership";
  num("--spread-ms", o.spread_ms, d.spread_ms);
  num("--large-percent", o.large_percent, d.large_percent);
  num("--large-frames", o.large_max_frames, d.large_max_frames);
  real("--safe-fraction", o.safe_fraction, d.safe_fraction);
  num("--max-time-ms", o.max_time_ms, d.max_time_ms);
  num("--settle-ms", o.settle_ms, d.settle_ms);
  if (o.inject != InjectedFault::kNone) {
    s += std::string(" --inject-fault ") + totem::sim::InjectedFaultName(o.inject);
  }
  return s;
}

// Returns an error message, or "" on success.
std::string ParseArgs(int argc, char** argv, Cli* cli) {
  SimOptions& o = cli->opt;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    bool has_inline = false;
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_inline = true;
    }
    // Boolean flags.
    if (flag == "--help" || flag == "-h") return "help";
    if (flag == "--trace") {
      cli->trace = true;
      continue;
    }
    if (flag == "--digest") {
      cli->digest = true;
      continue;
    }
    if (flag == "--no-packing") {
      o.packing = false;
      continue;
    }
    if (flag == "--no-burst") {
      o.burst_loss = false;
      continue;
    }
    if (flag == "--expect-violation") {
      cli->expect_violation = true;
      continue;
    }
    if (flag == "--fuzz") {
      cli->fuzz = true;
      continue;
    }
    if (flag == "--wiped-seq-zero") {
      o.wiped_seq_zero = true;
      continue;
    }
    if (flag == "--static-membership") {
      o.static_membership = true;
      continue;
    }
    if (!has_inline) {
      if (i + 1 >= argc) return flag + " needs a value";
      value = argv[++i];
    }
    bool ok = true;
    if (flag == "--seeds" || flag == "--seed") {
      auto dash = value.find('-');
      if (flag == "--seed" || dash == std::string::npos) {
        ok = ParseU64(value, &cli->first_seed);
        cli->last_seed = cli->first_seed;
      } else {
        ok = ParseU64(std::string_view(value).substr(0, dash), &cli->first_seed) &&
             ParseU64(std::string_view(value).substr(dash + 1), &cli->last_seed) &&
             cli->first_seed <= cli->last_seed;
      }
    } else if (flag == "--nodes") {
      auto dash = value.find('-');
      if (dash == std::string::npos) {
        ok = ParseU32(value, &o.nodes);
      } else {
        ok = ParseU32(std::string_view(value).substr(0, dash), &o.nodes) &&
             ParseU32(std::string_view(value).substr(dash + 1), &cli->nodes_max) &&
             o.nodes <= cli->nodes_max;
      }
    } else if (flag == "--messages") {
      ok = ParseU32(value, &o.messages);
    } else if (flag == "--loss") {
      ok = ParseDouble(value, &o.loss);
    } else if (flag == "--dup") {
      ok = ParseDouble(value, &o.dup);
    } else if (flag == "--reorder") {
      ok = ParseDouble(value, &o.reorder);
    } else if (flag == "--corrupt") {
      ok = ParseDouble(value, &o.corrupt);
    } else if (flag == "--latency-us") {
      ok = ParseU64(value, &o.latency_us);
    } else if (flag == "--jitter-us") {
      ok = ParseU64(value, &o.jitter_us);
    } else if (flag == "--reorder-delay-us") {
      ok = ParseU64(value, &o.reorder_delay_us);
    } else if (flag == "--window") {
      ok = ParseU32(value, &o.window_size);
    } else if (flag == "--max-per-visit") {
      ok = ParseU32(value, &o.max_messages_per_visit);
    } else if (flag == "--frame-bytes") {
      ok = ParseU32(value, &o.max_frame_bytes);
    } else if (flag == "--buffer-frames") {
      ok = ParseU32(value, &o.receive_buffer_frames);
    } else if (flag == "--pending-bytes") {
      ok = ParseU64(value, &o.max_pending_bytes);
    } else if (flag == "--max-message-bytes") {
      ok = ParseU32(value, &o.max_message_bytes);
    } else if (flag == "--max-rtr") {
      ok = ParseU32(value, &o.max_rtr_entries);
    } else if (flag == "--token-retransmit-us") {
      ok = ParseU32(value, &o.token_retransmit_us);
    } else if (flag == "--token-hold-us") {
      ok = ParseU32(value, &o.token_hold_us);
    } else if (flag == "--token-timeout-us") {
      ok = ParseU32(value, &o.token_timeout_us);
    } else if (flag == "--token-timeout-per-node-us") {
      ok = ParseU32(value, &o.token_timeout_per_node_us);
    } else if (flag == "--join-timeout-us") {
      ok = ParseU32(value, &o.join_timeout_us);
    } else if (flag == "--consensus-timeout-us") {
      ok = ParseU32(value, &o.consensus_timeout_us);
    } else if (flag == "--merge-timeout-us") {
      ok = ParseU32(value, &o.merge_timeout_us);
    } else if (flag == "--faults") {
      ok = totem::sim::ParseFaults(value, &o.faults);
    } else if (flag == "--fault-count") {
      ok = ParseU32(value, &o.fault_count);
    } else if (flag == "--converge-ms") {
      ok = ParseU64(value, &o.converge_ms);
    } else if (flag == "--spread-ms") {
      ok = ParseU64(value, &o.spread_ms);
    } else if (flag == "--large-percent") {
      ok = ParseU32(value, &o.large_percent);
    } else if (flag == "--large-frames") {
      ok = ParseU32(value, &o.large_max_frames);
    } else if (flag == "--safe-fraction") {
      ok = ParseDouble(value, &o.safe_fraction);
    } else if (flag == "--max-time-ms") {
      ok = ParseU64(value, &o.max_time_ms);
    } else if (flag == "--settle-ms") {
      ok = ParseU64(value, &o.settle_ms);
    } else if (flag == "--inject-fault") {
      ok = totem::sim::ParseInjectedFault(value, &o.inject);
    } else {
      return "unknown option " + flag;
    }
    if (!ok) return "bad value for " + flag + ": '" + value + "'";
  }
  if (cli->trace && cli->first_seed != cli->last_seed) return "--trace takes a single seed";
  if (cli->nodes_max != 0) {
    SimOptions big = o;
    big.nodes = cli->nodes_max;
    if (std::string bad = totem::sim::ValidateOptions(big); !bad.empty()) return bad;
  }
  return totem::sim::ValidateOptions(o);
}

// Written before each run and printed if the process dies by a signal (a
// core that aborts on a broken invariant), so the seed is never lost.
char g_crash_note[8192];
size_t g_crash_len = 0;

extern "C" void OnFatalSignal(int sig) {
  if (g_crash_len > 0) {
    ssize_t w = write(STDERR_FILENO, g_crash_note, g_crash_len);
    (void)w;
  }
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

}  // namespace

int main(int argc, char** argv) {
  Cli cli;
  std::string err = ParseArgs(argc, argv, &cli);
  if (err == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (!err.empty()) {
    std::cerr << "totem-sim: " << err << "\n(--help lists the options)\n";
    return 2;
  }
  const std::string program = argv[0];
  for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL}) std::signal(sig, OnFatalSignal);

  uint64_t runs = 0, failed = 0, delivered = 0, virtual_us_total = 0, virtual_us_max = 0;
  uint64_t would_block = 0, token_retransmits = 0, retransmissions = 0, dropped = 0;
  uint64_t out_of_window = 0;
  uint64_t faults = 0, crashes = 0, restarts = 0, config_events = 0;
  uint64_t converge_us_max = 0, converge_us_total = 0, converged_runs = 0, bound_us_max = 0;
  constexpr uint64_t kMaxReported = 20;
  for (uint64_t seed = cli.first_seed;; ++seed) {
    SimOptions o = cli.fuzz ? FuzzOptions(cli.opt, seed) : cli.opt;
    o.seed = seed;
    if (cli.nodes_max != 0) {
      o.nodes = cli.opt.nodes + static_cast<uint32_t>(totem::sim::Mix64(seed ^ 0x5EED0DE5ull) %
                                                      (cli.nodes_max - cli.opt.nodes + 1));
    }
    const std::string options = OptionsString(o);
    if (std::string bad = totem::sim::ValidateOptions(o); !bad.empty()) {
      std::fprintf(stderr, "totem-sim: seed %llu: %s\n", static_cast<unsigned long long>(seed),
                   bad.c_str());
      return 2;
    }
    if (cli.trace) o.trace = &std::cout;
    const std::string replay = program + options + " --seed " + std::to_string(seed);
    int n = std::snprintf(g_crash_note, sizeof g_crash_note,
                          "\ntotem-sim: died by a signal during seed=%llu\n  replay: %s --trace\n",
                          static_cast<unsigned long long>(seed), replay.c_str());
    g_crash_len = n > 0 ? std::min<size_t>(static_cast<size_t>(n), sizeof g_crash_note - 1) : 0;

    RunResult r = totem::sim::RunSimulation(o);
    ++runs;
    delivered += r.deliveries;
    virtual_us_total += r.virtual_us;
    virtual_us_max = std::max(virtual_us_max, r.virtual_us);
    would_block += r.would_block;
    token_retransmits += r.token_retransmits;
    retransmissions += r.retransmissions;
    dropped += r.dropped;
    out_of_window += r.out_of_window;
    faults += r.faults;
    crashes += r.crashes;
    restarts += r.restarts;
    config_events += r.configuration_events;
    bound_us_max = std::max(bound_us_max, r.bound_us);
    if (r.converged_us != 0) {
      const uint64_t c = r.converged_us - std::min(r.converged_us, r.stable_us);
      converge_us_max = std::max(converge_us_max, c);
      converge_us_total += c;
      ++converged_runs;
    }
    if (cli.trace || cli.digest) {
      std::printf("seed=%llu digest=%016llx events=%llu virtual_us=%llu deliveries=%llu %s%s\n",
                  static_cast<unsigned long long>(seed), static_cast<unsigned long long>(r.digest),
                  static_cast<unsigned long long>(r.events),
                  static_cast<unsigned long long>(r.virtual_us),
                  static_cast<unsigned long long>(r.deliveries), r.ok ? "ok" : "VIOLATION",
                  cli.fuzz ? options.c_str() : "");
    }
    if (!r.ok) {
      ++failed;
      if (!cli.expect_violation && failed <= kMaxReported) {
        std::printf("FAIL seed=%llu: %s\n  replay: %s --trace\n",
                    static_cast<unsigned long long>(seed), r.first_violation.c_str(),
                    replay.c_str());
      }
    } else if (cli.expect_violation) {
      std::printf("NO VIOLATION seed=%llu although one was expected\n  replay: %s --trace\n",
                  static_cast<unsigned long long>(seed), replay.c_str());
    }
    std::fflush(stdout);
    if (seed == cli.last_seed) break;
  }
  g_crash_len = 0;
  if (!cli.expect_violation && failed > kMaxReported) {
    std::printf("... and %llu more failing seeds\n",
                static_cast<unsigned long long>(failed - kMaxReported));
  }

  const SimOptions& o = cli.opt;
  if (o.faults != 0 || cli.nodes_max != 0) {
    std::printf(
        "totem-sim faults=%s nodes=%u-%u seeds=%llu-%llu messages=%u loss=%s runs=%llu "
        "delivered=%llu fault_events=%llu crashes=%llu restarts=%llu config_events=%llu "
        "converge_ms_avg=%.1f converge_ms_max=%.1f bound_ms=%.1f virtual_ms_avg=%.1f "
        "virtual_ms_max=%.1f violations=%llu\n",
        totem::sim::FaultsString(o.faults).c_str(), o.nodes,
        cli.nodes_max != 0 ? cli.nodes_max : o.nodes,
        static_cast<unsigned long long>(cli.first_seed),
        static_cast<unsigned long long>(cli.last_seed), o.messages, FormatDouble(o.loss).c_str(),
        static_cast<unsigned long long>(runs), static_cast<unsigned long long>(delivered),
        static_cast<unsigned long long>(faults), static_cast<unsigned long long>(crashes),
        static_cast<unsigned long long>(restarts), static_cast<unsigned long long>(config_events),
        converged_runs
            ? static_cast<double>(converge_us_total) / 1000.0 / static_cast<double>(converged_runs)
            : 0.0,
        static_cast<double>(converge_us_max) / 1000.0, static_cast<double>(bound_us_max) / 1000.0,
        static_cast<double>(virtual_us_total) / 1000.0 / static_cast<double>(runs),
        static_cast<double>(virtual_us_max) / 1000.0, static_cast<unsigned long long>(failed));
  } else if (cli.fuzz) {
    // The ring and network options differ per seed; name only the fixed ones.
    std::printf(
        "totem-sim fuzz=on seeds=%llu-%llu messages=%u runs=%llu delivered=%llu dropped=%llu "
        "would_block=%llu token_retransmits=%llu retransmissions=%llu out_of_window=%llu "
        "virtual_ms_avg=%.1f virtual_ms_max=%.1f violations=%llu\n",
        static_cast<unsigned long long>(cli.first_seed),
        static_cast<unsigned long long>(cli.last_seed), o.messages,
        static_cast<unsigned long long>(runs), static_cast<unsigned long long>(delivered),
        static_cast<unsigned long long>(dropped), static_cast<unsigned long long>(would_block),
        static_cast<unsigned long long>(token_retransmits),
        static_cast<unsigned long long>(retransmissions),
        static_cast<unsigned long long>(out_of_window),
        static_cast<double>(virtual_us_total) / 1000.0 / static_cast<double>(runs),
        static_cast<double>(virtual_us_max) / 1000.0, static_cast<unsigned long long>(failed));
  } else {
    std::printf(
        "totem-sim nodes=%u seeds=%llu-%llu messages=%u loss=%s dup=%s reorder=%s corrupt=%s "
        "packing=%s window=%u max_per_visit=%u frame_bytes=%u buffer_frames=%u runs=%llu "
        "delivered=%llu dropped=%llu would_block=%llu token_retransmits=%llu "
        "retransmissions=%llu out_of_window=%llu virtual_ms_avg=%.1f virtual_ms_max=%.1f%s "
        "violations=%llu\n",
        o.nodes, static_cast<unsigned long long>(cli.first_seed),
        static_cast<unsigned long long>(cli.last_seed), o.messages, FormatDouble(o.loss).c_str(),
        FormatDouble(o.dup).c_str(), FormatDouble(o.reorder).c_str(),
        FormatDouble(o.corrupt).c_str(), o.packing ? "on" : "off", o.window_size,
        o.max_messages_per_visit, o.max_frame_bytes, o.receive_buffer_frames,
        static_cast<unsigned long long>(runs), static_cast<unsigned long long>(delivered),
        static_cast<unsigned long long>(dropped), static_cast<unsigned long long>(would_block),
        static_cast<unsigned long long>(token_retransmits),
        static_cast<unsigned long long>(retransmissions),
        static_cast<unsigned long long>(out_of_window),
        static_cast<double>(virtual_us_total) / 1000.0 / static_cast<double>(runs),
        static_cast<double>(virtual_us_max) / 1000.0,
        o.inject != InjectedFault::kNone
            ? (std::string(" inject=") + totem::sim::InjectedFaultName(o.inject)).c_str()
            : "",
        static_cast<unsigned long long>(failed));
  }
  if (cli.expect_violation) return failed == runs ? 0 : 1;
  return failed == 0 ? 0 : 1;
}
