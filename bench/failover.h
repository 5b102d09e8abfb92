// totem-bench --failover: how long a ring of real processes takes to recover
// from a crashed member, and whether it stays in one configuration under
// saturating load. See failover.cc.
#ifndef TOTEMKV_BENCH_FAILOVER_H_
#define TOTEMKV_BENCH_FAILOVER_H_

namespace totem::bench {

// Runs the failover benchmark with the command line of `totem-bench
// --failover ...`; returns the process exit code.
int RunFailoverBench(int argc, char** argv);

}  // namespace totem::bench

#endif  // TOTEMKV_BENCH_FAILOVER_H_
