// totem-bench --multi-ring: one big ring against two rings joined by a
// gateway, with and without filtering by destination. See multi_ring_bench.cc.
#ifndef TOTEMKV_BENCH_MULTI_RING_BENCH_H_
#define TOTEMKV_BENCH_MULTI_RING_BENCH_H_

namespace totem::bench {

// Runs the multi-ring benchmark with the command line of `totem-bench
// --multi-ring ...`; returns the process exit code (0: every configuration
// ran and delivered; 1: a configuration failed to form or to deliver; 2: a
// bad command line).
int RunMultiRingBench(int argc, char** argv);

}  // namespace totem::bench

#endif  // TOTEMKV_BENCH_MULTI_RING_BENCH_H_
