// totem-mring-sim: runs the multiple-ring simulator (multi_ring_sim.h) over a
// range of seeds and prints one summary line ending in `violations=<count>`.
// Exits non-zero on any violation, after printing each failing seed's first
// violation and the command that replays it (add --trace for every event).
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "totem/sim/multi_ring_sim.h"

namespace {

using totem::sim::MultiRunResult;
using totem::sim::MultiSimOptions;
using totem::sim::MultiTopology;

constexpr const char* kUsage = R"(usage: totem-mring-sim [options]
  --topology chain|tree|cycle|mixed   ring graph (mixed: drawn per seed; default chain)
  --rings N | A-B        rings (default 3); a range draws it per seed
  --ring-nodes A-B       processors per ring, gateways included (default 2-4)
  --seeds A-B | --seed S seeds to run (default 1)
  --messages M           workload messages per run (default 100)
  --safe-fraction F      share of kSafe messages (default 0.3)
  --filter-fraction F    share of messages with random destination rings
                         (default 0.3; the rest go to every ring)
  --loss P               per-datagram loss probability (default 0)
  --faults LIST          comma list of crash (not a gateway), gateway,
                         partition (split one ring), or all / none
  --episodes N           fault episodes per run: 1..N drawn (default 3)
  --overlap              episodes may overlap (default: each repaired first)
  --redundant-gateway    a second gateway between rings 1 and 2 (the tree
                         uses the lower id; the other takes over when it fails)
  --gv-interval-us N     guarantee vector period (default 20000)
  --max-time-ms N        virtual-time limit (default 20000)
  --groups               process groups on every processor: random joins,
                         leaves, group multicasts; group checks (see
                         totem/sim/group_checker.h)
  --group-ops N          group operations per run with --groups (default 80)
  --trace                print every event (single seed only)
  --digest               print each run's digest
  --inject-fault NAME    swap-deliveries | skew-forwarded | drop-delivery |
                         ignore-destinations | config-members | repeat-config |
                         stop-configs | wrong-group-join (needs --groups):
                         break the run on purpose (checker test)
  --expect-violation     exit 0 only if EVERY run reports a violation
)";

bool ParseU64(std::string_view s, uint64_t* out) {
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

bool ParseRange(std::string_view s, uint64_t* lo, uint64_t* hi) {
  const size_t dash = s.find('-');
  if (dash == std::string_view::npos) {
    if (!ParseU64(s, lo)) return false;
    *hi = *lo;
    return true;
  }
  return ParseU64(s.substr(0, dash), lo) && ParseU64(s.substr(dash + 1), hi) && *lo <= *hi;
}

int Usage(const std::string& error) {
  std::fprintf(stderr, "totem-mring-sim: %s\n%s", error.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  MultiSimOptions base;
  uint64_t seed_lo = 1, seed_hi = 1, rings_lo = 3, rings_hi = 3;
  bool mixed = false, trace = false, digest = false, expect_violation = false;
  std::string original;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    original += (original.empty() ? "" : " ") + flag;
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      original += " " + *out;
      return true;
    };
    std::string v;
    uint64_t n = 0, lo = 0, hi = 0;
    if (flag == "--help" || flag == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (flag == "--trace") {
      trace = true;
    } else if (flag == "--digest") {
      digest = true;
    } else if (flag == "--redundant-gateway") {
      base.redundant_gateway = true;
    } else if (flag == "--overlap") {
      base.overlap = true;
    } else if (flag == "--groups") {
      base.groups = true;
    } else if (flag == "--expect-violation") {
      expect_violation = true;
    } else if (!value(&v)) {
      return Usage("unknown flag or missing value: " + flag);
    } else if (flag == "--topology") {
      mixed = v == "mixed";
      if (!mixed && !totem::sim::ParseMultiTopology(v, &base.topology)) {
        return Usage("bad --topology " + v);
      }
    } else if (flag == "--inject-fault") {
      if (!totem::sim::ParseMultiInjection(v, &base.inject)) {
        return Usage("bad --inject-fault " + v);
      }
    } else if (flag == "--rings") {
      if (!ParseRange(v, &rings_lo, &rings_hi)) return Usage("bad --rings " + v);
    } else if (flag == "--ring-nodes") {
      if (!ParseRange(v, &lo, &hi) || hi > 16) return Usage("bad --ring-nodes " + v);
      base.min_ring_nodes = static_cast<uint32_t>(lo);
      base.max_ring_nodes = static_cast<uint32_t>(hi);
    } else if (flag == "--seeds" || flag == "--seed") {
      if (!ParseRange(v, &seed_lo, &seed_hi)) return Usage("bad " + flag + " " + v);
    } else if (flag == "--messages") {
      if (!ParseU64(v, &n) || n > 1000000) return Usage("bad --messages " + v);
      base.messages = static_cast<uint32_t>(n);
    } else if (flag == "--safe-fraction") {
      base.safe_fraction = std::stod(v);
    } else if (flag == "--filter-fraction") {
      base.filter_fraction = std::stod(v);
    } else if (flag == "--loss") {
      base.loss = std::stod(v);
    } else if (flag == "--faults") {
      if (!totem::sim::ParseMultiFaults(v, &base.faults)) return Usage("bad --faults " + v);
    } else if (flag == "--episodes") {
      if (!ParseU64(v, &n) || n > 100) return Usage("bad --episodes " + v);
      base.max_episodes = static_cast<uint32_t>(n);
    } else if (flag == "--gv-interval-us") {
      if (!ParseU64(v, &n)) return Usage("bad --gv-interval-us " + v);
      base.guarantee_interval_us = n;
    } else if (flag == "--group-ops") {
      if (!ParseU64(v, &n) || n > 100000) return Usage("bad --group-ops " + v);
      base.group_ops = static_cast<uint32_t>(n);
    } else if (flag == "--max-time-ms") {
      if (!ParseU64(v, &n)) return Usage("bad --max-time-ms " + v);
      base.max_time_ms = n;
    } else {
      return Usage("unknown flag " + flag);
    }
  }
  if (trace && seed_lo != seed_hi) return Usage("--trace needs a single seed");

  uint64_t runs = 0, failed = 0, deliveries = 0, topology = 0, forwarded = 0, episodes = 0,
           late = 0, unsynced = 0, unreachable = 0, submitted = 0, incomplete = 0, skipped = 0,
           stubs = 0, stub_at_destination = 0;
  unsigned long long configurations = 0, resyncs = 0, vs_mismatches = 0, divergent = 0,
                     seq_ties = 0;
  unsigned long long g_joins = 0, g_leaves = 0, g_multicasts = 0, g_resubmits = 0, g_views = 0,
                     g_deliveries = 0, g_missed_no_stream = 0, g_missed_by_layer = 0,
                     g_syncs_forced = 0, g_hold_dropped = 0, g_unmet = 0, g_views_diverged = 0,
                     g_states_diverged = 0, g_stalled = 0;
  for (uint64_t seed = seed_lo; seed <= seed_hi; ++seed) {
    MultiSimOptions o = base;
    o.seed = seed;
    o.rings = static_cast<uint32_t>(rings_lo + (seed * 2654435761u) % (rings_hi - rings_lo + 1));
    if (mixed) o.topology = static_cast<MultiTopology>(seed % 3);
    if (o.topology == MultiTopology::kCycle && o.rings < 3) o.rings = 3;
    if (trace) o.trace = &std::cout;
    const std::string bad = totem::sim::ValidateMultiOptions(o);
    if (!bad.empty()) return Usage(bad);
    const MultiRunResult r = totem::sim::RunMultiRingSimulation(o);
    runs++;
    deliveries += r.deliveries;
    topology += r.topology_events;
    forwarded += r.forwarded;
    episodes += r.episodes;
    late += r.late_dropped;
    unsynced += r.unsynced_dropped;
    unreachable += r.unreachable_accepted;
    submitted += r.submitted;
    incomplete += r.incomplete;
    skipped += r.filtered_skipped;
    stubs += r.stubs_forwarded;
    stub_at_destination += r.stub_at_destination;
    configurations += r.configurations;
    resyncs += r.resyncs;
    vs_mismatches += r.vs_set_mismatches;
    divergent += r.divergent_keys;
    seq_ties += r.seq_ties;
    g_joins += r.group_joins;
    g_leaves += r.group_leaves;
    g_multicasts += r.group_multicasts;
    g_resubmits += r.group_resubmits;
    g_views += r.group_views;
    g_deliveries += r.group_deliveries;
    g_missed_no_stream += r.group_missed_no_stream;
    g_missed_by_layer += r.group_missed_by_layer;
    g_syncs_forced += r.group_syncs_forced;
    g_hold_dropped += r.group_hold_dropped;
    g_unmet += r.group_unmet;
    g_views_diverged += r.group_views_diverged;
    g_states_diverged += r.group_states_diverged;
    g_stalled += r.group_stalled_syncs;
    if (digest) {
      std::printf("seed=%llu digest=%016llx\n", static_cast<unsigned long long>(seed),
                  static_cast<unsigned long long>(r.digest));
    }
    if (!r.ok && expect_violation) {
      failed++;
    } else if (!r.ok) {
      failed++;
      std::printf(
          "VIOLATION seed=%llu topology=%s rings=%u: %s\n  replay: totem-mring-sim %s "
          "--seed %llu --topology %s --rings %u --trace\n",
          static_cast<unsigned long long>(seed), totem::sim::MultiTopologyName(o.topology), o.rings,
          r.first_violation.c_str(), original.c_str(), static_cast<unsigned long long>(seed),
          totem::sim::MultiTopologyName(o.topology), o.rings);
    }
  }
  if (base.groups) {
    std::printf(
        "groups: joins=%llu leaves=%llu multicasts=%llu resubmits=%llu views=%llu "
        "deliveries=%llu missed_no_stream=%llu missed_by_layer=%llu syncs_forced=%llu "
        "hold_dropped=%llu unmet_at_end=%llu views_diverged=%llu states_diverged=%llu "
        "stalled_syncs=%llu\n",
        g_joins, g_leaves, g_multicasts, g_resubmits, g_views, g_deliveries, g_missed_no_stream,
        g_missed_by_layer, g_syncs_forced, g_hold_dropped, g_unmet, g_views_diverged,
        g_states_diverged, g_stalled);
  }
  std::printf(
      "runs=%llu submitted=%llu incomplete=%llu deliveries=%llu topology_events=%llu "
      "forwarded=%llu episodes=%llu late_dropped=%llu unsynced_dropped=%llu "
      "unreachable_accepted=%llu filtered_skipped=%llu stubs_forwarded=%llu "
      "stub_at_destination=%llu configurations=%llu resyncs=%llu divergent_keys=%llu "
      "seq_ties=%llu vs_set_mismatches=%llu violations=%llu\n",
      static_cast<unsigned long long>(runs), static_cast<unsigned long long>(submitted),
      static_cast<unsigned long long>(incomplete), static_cast<unsigned long long>(deliveries),
      static_cast<unsigned long long>(topology), static_cast<unsigned long long>(forwarded),
      static_cast<unsigned long long>(episodes), static_cast<unsigned long long>(late),
      static_cast<unsigned long long>(unsynced), static_cast<unsigned long long>(unreachable),
      static_cast<unsigned long long>(skipped), static_cast<unsigned long long>(stubs),
      static_cast<unsigned long long>(stub_at_destination), configurations, resyncs, divergent,
      seq_ties, vs_mismatches, static_cast<unsigned long long>(failed));
  if (expect_violation) {
    if (failed == runs) return 0;
    std::printf("expected a violation in every run; %llu of %llu runs passed\n",
                static_cast<unsigned long long>(runs - failed),
                static_cast<unsigned long long>(runs));
    return 1;
  }
  return failed == 0 ? 0 : 1;
}
