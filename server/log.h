// Structured logs of totemkvd: one line per event on stderr, either
//   ts=2026-01-02T03:04:05.678Z level=info event=listening kind=client url=http://127.0.0.1:2379
// (--log-format text, the default: key=value, values quoted when they hold
// spaces, quotes, '=' or control characters) or one JSON object per line
// (--log-format json: {"ts":...,"level":...,"event":...,<fields>}).
// Events below --log-level are skipped. Each line is one write(2), so lines
// of concurrent threads never interleave.
//
// Event names are an interface (operators grep and alert on them): they are
// listed once, in Event / EventName, and are never renamed or reused; new
// events get new names, and fields may be added but not renamed.
#ifndef TOTEMKV_SERVER_LOG_H_
#define TOTEMKV_SERVER_LOG_H_

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace totemkv::server {

enum class LogLevel : uint8_t { kDebug, kInfo, kWarn, kError };
enum class LogFormat : uint8_t { kText, kJson };

// "debug", "info", "warn", "error" / "text", "json"; false for anything else.
bool ParseLogLevel(std::string_view s, LogLevel* out);
bool ParseLogFormat(std::string_view s, LogFormat* out);
const char* LogLevelName(LogLevel level);

// Every event totemkvd logs. README.md ("Logs") has the table with fields.
enum class Event : uint8_t {
  kServerStarted,      // info: serving; name, node_id, cluster, totem settings
  kListening,          // info: kind=client|metrics, url
  kRingConfiguration,  // info: kind=regular|transitional, ring, members, joined, left
  kMultiRingTopology,  // info: multi-ring: kind=bridge|ring-gateways, ring, other_ring, ...
  kPrimaryInstalled,   // info: this member is in the installed primary component
  kPrimaryLost,        // warn: it was, and no longer is (role, reason)
  kReplicationRole,    // info: other role changes (exchanging, non-primary, ...)
  kSnapshotInstalled,  // warn: state replaced by a snapshot from another member
  kReplicationFailed,  // error: the replication engine failed; the process aborts
  kSubmitFailed,       // warn: a replication message could not be submitted
  kLeasesLoaded,       // info: leases read from the store at start
  kLeaseExpired,       // info: this member's expiry proposal was applied
  kLeaseExpireFailed,  // warn: an expiry proposal was not applied
  kLeaseReloadFailed,  // error: lease timers not rebuilt after a snapshot
  kKeyGenerated,       // info: a cluster key was written to the data dir
  kTlsLoaded,          // info: TLS certificates read for https:// client URLs
  kConfigError,        // error: bad flag, config file, key or TLS file; exits
  kStartupFailed,      // error: cannot start (data dir, store, listen); exits
  kShutdown,           // info: stop signal received
  kStopped,            // info: clean exit
  // info: log catch-up or snapshot transfer begun (this member donor or receiver)
  kStateTransferStarted,
  // info: the transfer ended with the exchange (completed or interrupted)
  kStateTransferFinished,
};
// The last enumerator (tests walk 0..kLastEvent); move it when appending.
inline constexpr Event kLastEvent = Event::kStateTransferFinished;
const char* EventName(Event event);

// One key=value field. Numbers and booleans are JSON numbers / literals;
// everything else is a string.
struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(v == nullptr ? "" : v) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(std::string_view k, bool v) : key(k), value(v ? "true" : "false"), literal(true) {}
  template <std::integral T>
  LogField(std::string_view k, T v) : key(k), value(std::to_string(v)), literal(true) {}

  std::string_view key;
  std::string value;
  bool literal = false;  // emitted unquoted in JSON
};

// The line for one event, without the trailing newline. Pure (the tests'
// entry point); `ts` is the RFC 3339 timestamp to print.
std::string FormatLogLine(LogFormat format, std::string_view ts, LogLevel level, Event event,
                          std::initializer_list<LogField> fields);
// Now as RFC 3339 UTC with milliseconds: 2026-01-02T03:04:05.678Z.
std::string LogTimestamp();

// Sets the process-wide format and threshold; call once at start, before
// other threads log (later calls are safe but racy in which lines they hit).
void ConfigureLog(LogFormat format, LogLevel min_level);
bool LogEnabled(LogLevel level);
// Writes one line to stderr if `level` is enabled. Thread-safe.
void LogEvent(LogLevel level, Event event, std::initializer_list<LogField> fields = {});

inline void LogDebug(Event e, std::initializer_list<LogField> f = {}) {
  LogEvent(LogLevel::kDebug, e, f);
}
inline void LogInfo(Event e, std::initializer_list<LogField> f = {}) {
  LogEvent(LogLevel::kInfo, e, f);
}
inline void LogWarn(Event e, std::initializer_list<LogField> f = {}) {
  LogEvent(LogLevel::kWarn, e, f);
}
inline void LogError(Event e, std::initializer_list<LogField> f = {}) {
  LogEvent(LogLevel::kError, e, f);
}

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_LOG_H_
