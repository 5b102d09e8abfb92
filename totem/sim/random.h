// The simulator's one seeded random source. Every random decision of a run
// (network fate of each datagram, delays, workload) is drawn from a single
// Random seeded from the run's seed, so a seed names a run exactly. The
// generator (xoshiro256**, seeded through splitmix64) and the bounded
// helpers are written out here rather than taken from <random>, whose
// distributions are implementation-defined: a seed must replay identically
// with any standard library on any platform.
#ifndef TOTEM_SIM_RANDOM_H_
#define TOTEM_SIM_RANDOM_H_

#include <cstdint>

namespace totem::sim {

// splitmix64 step: also used on its own to derive values from a key without
// consuming the main stream (e.g. payload filler bytes).
inline uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A stateless mix of one 64-bit key.
inline uint64_t Mix64(uint64_t key) { return SplitMix64(key); }

class Random {
 public:
  explicit Random(uint64_t seed) {
    uint64_t sm = seed;
    for (uint64_t& s : s_) s = SplitMix64(sm);
  }

  // xoshiro256** (Blackman & Vigna).
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, n). Precondition: n > 0. Unbiased (rejection sampling).
  uint64_t Below(uint64_t n) {
    const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
    for (;;) {
      const uint64_t r = Next();
      if (r >= threshold) return r % n;
    }
  }

  // Uniform in [lo, hi]. Precondition: lo <= hi.
  uint64_t Range(uint64_t lo, uint64_t hi) {
    if (hi - lo == UINT64_MAX) return Next();
    return lo + Below(hi - lo + 1);
  }

  // Uniform in [0, 1) with 53 random bits; exact in IEEE double arithmetic.
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

  // True with probability p (p <= 0: never, p >= 1: always). Consumes one
  // draw only when 0 < p < 1, so switching a fault off does not disturb the
  // rest of the stream more than necessary.
  bool Chance(double p) {
    if (p <= 0) return false;
    if (p >= 1) return true;
    return Unit() < p;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace totem::sim

#endif  // TOTEM_SIM_RANDOM_H_
