// Logging for totemkvd: one line per event on stderr, prefixed with the
// wall-clock time (UTC, milliseconds), printf-style. Thread-safe (one
// fprintf per line).
#ifndef TOTEMKV_SERVER_LOG_H_
#define TOTEMKV_SERVER_LOG_H_

#include <sys/time.h>

#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace totemkv::server {

__attribute__((format(printf, 1, 2))) inline void Log(const char* fmt, ...) {
  timeval tv{};
  ::gettimeofday(&tv, nullptr);
  tm t{};
  ::gmtime_r(&tv.tv_sec, &t);
  char line[4096];
  const int n = std::snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld totemkvd: ", t.tm_hour,
                              t.tm_min, t.tm_sec, static_cast<long>(tv.tv_usec / 1000));
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(line + n, sizeof(line) - static_cast<size_t>(n), fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "%s\n", line);
}

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_LOG_H_
