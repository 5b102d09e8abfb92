// A latency histogram with fixed buckets for the Prometheus endpoint
// (metrics.h): lock-free Observe from any thread, a consistent-enough Read
// (each bucket is read atomically; a scrape racing an Observe may see the
// count one ahead of a bucket, which Prometheus tolerates).
#ifndef TOTEMKV_SERVER_HISTOGRAM_H_
#define TOTEMKV_SERVER_HISTOGRAM_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace totemkv::server {

class LatencyHistogram {
 public:
  // Bucket upper bounds in seconds: 100 µs .. ~13 s, doubling.
  static std::vector<double> DefaultBoundsSeconds() {
    std::vector<double> b;
    for (double s = 0.0001; s < 15; s *= 2) b.push_back(s);
    return b;
  }

  // `bounds_seconds` ascending, not empty.
  explicit LatencyHistogram(std::vector<double> bounds_seconds = DefaultBoundsSeconds())
      : bounds_(std::move(bounds_seconds)),
        counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

  void Observe(std::chrono::nanoseconds d) {
    const double s = std::chrono::duration<double>(d).count();
    size_t i = 0;
    while (i < bounds_.size() && s > bounds_[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_ns_.fetch_add(static_cast<uint64_t>(d.count() < 0 ? 0 : d.count()),
                      std::memory_order_relaxed);
  }

  struct Snapshot {
    std::vector<double> bounds_seconds;
    // Cumulative: cumulative[i] = observations <= bounds_seconds[i]; one
    // more entry at the end (+Inf) = count.
    std::vector<uint64_t> cumulative;
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  Snapshot Read() const {
    Snapshot s;
    s.bounds_seconds = bounds_;
    uint64_t total = 0;
    for (size_t i = 0; i <= bounds_.size(); ++i) {
      total += counts_[i].load(std::memory_order_relaxed);
      s.cumulative.push_back(total);
    }
    s.count = total;
    s.sum_seconds = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    return s;
  }

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1 (the last: +Inf)
  std::atomic<uint64_t> sum_ns_{0};
};

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_HISTOGRAM_H_
