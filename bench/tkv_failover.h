// tkv-bench --failover: how long clients of a store cluster (totemkvd or
// etcd, spawned by the benchmark itself) cannot write after one member is
// killed with SIGKILL, over several trials. See tkv_failover.cc and
// bench/README.md.
#ifndef TOTEMKV_BENCH_TKV_FAILOVER_H_
#define TOTEMKV_BENCH_TKV_FAILOVER_H_

namespace totemkv::bench {

// Runs the failover benchmark with the command line of `tkv-bench
// --failover ...`; returns the process exit code (0 every trial completed,
// 1 a cluster could not be started, 2 bad flags, 4 some trial did not
// complete: puts did not resume or the restarted victim did not serve).
int RunTkvFailover(int argc, char** argv);

}  // namespace totemkv::bench

#endif  // TOTEMKV_BENCH_TKV_FAILOVER_H_
