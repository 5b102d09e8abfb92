// Small helpers shared by the benchmark drivers (totem-bench --failover,
// tkv-bench --failover): where the binary lives, polling with a deadline,
// min/median/max, the load average.
#ifndef TOTEMKV_BENCH_BENCH_UTIL_H_
#define TOTEMKV_BENCH_BENCH_UTIL_H_

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace totemkv::bench {

// The directory of the running executable ("." if unknown).
inline std::string SelfDir() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string path(buf, static_cast<size_t>(n));
  return path.substr(0, path.rfind('/'));
}

// `s` as a decimal integer in [min, max] into *out; false otherwise.
inline bool ParseUint(const std::string& s, uint64_t min, uint64_t max, uint64_t* out) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) return false;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
  if (errno != 0 || v < min || v > max) return false;
  *out = v;
  return true;
}

// Polls `condition` every 2 ms until it holds or `timeout` passes.
inline bool WaitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

struct Stats {
  double min = 0, median = 0, max = 0;
};
inline Stats Summarize(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  s.median = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  return s;
}

// Latency percentiles of samples in nanoseconds, reported in µs (NaN when
// there are no samples).
struct Percentiles {
  double p50_us = NAN;
  double p99_us = NAN;
  size_t samples = 0;
};

inline Percentiles ComputePercentiles(std::vector<int64_t> ns) {
  Percentiles p;
  p.samples = ns.size();
  if (ns.empty()) return p;
  std::sort(ns.begin(), ns.end());
  auto at = [&ns](double q) {
    const size_t i = static_cast<size_t>(q * static_cast<double>(ns.size()));
    return static_cast<double>(ns[std::min(i, ns.size() - 1)]) / 1000.0;
  };
  p.p50_us = at(0.50);
  p.p99_us = at(0.99);
  return p;
}

// The 1-minute load average (-1 if unknown): printed next to timings.
inline double LoadAverage1() {
  std::ifstream in("/proc/loadavg");
  double v = -1;
  in >> v;
  return v;
}

}  // namespace totemkv::bench

#endif  // TOTEMKV_BENCH_BENCH_UTIL_H_
