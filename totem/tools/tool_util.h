// Small helpers shared by the Totem test/demo tools (totem-node,
// totem-mring-node): flag numbers, the host-wide monotonic clock, id lists
// and little-endian message headers.
#ifndef TOTEM_TOOLS_TOOL_UTIL_H_
#define TOTEM_TOOLS_TOOL_UTIL_H_

#include <time.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace totem::tools {

// `s` as an integer in [0, max]; otherwise calls `usage` (which exits) with
// a message naming `what`.
inline uint64_t ParseU64(const std::string& what, const std::string& s, uint64_t max,
                         [[noreturn]] void (*usage)(const std::string&)) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos) {
    usage(what + " needs a non-negative integer, got '" + s + "'");
  }
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
  if (errno != 0 || v > max) usage(what + " value " + s + " is out of range");
  return v;
}

// CLOCK_MONOTONIC in microseconds: the same clock in every process of a host.
inline uint64_t MonotonicUs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

// "1,2,3".
inline std::string IdList(const std::vector<uint32_t>& ids) {
  std::string s;
  for (uint32_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

// `bytes` little-endian bytes at p.
inline uint64_t ReadLE(const uint8_t* p, size_t bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(p[i]) << (8 * i);
  return v;
}
inline void WriteLE(uint8_t* p, uint64_t v, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

}  // namespace totem::tools

#endif  // TOTEM_TOOLS_TOOL_UTIL_H_
