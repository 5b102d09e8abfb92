// The structured log formatter and writer of totemkvd. See log.h.
#include "log.h"

#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>

namespace totemkv::server {

namespace {

std::atomic<LogFormat> g_format{LogFormat::kText};
std::atomic<LogLevel> g_min_level{LogLevel::kInfo};

void AppendHex(std::string* out, const char* prefix, unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "%s%02x", prefix, c);
  *out += buf;
}

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one.
size_t Utf8Length(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n = 0;
  uint32_t cp = 0;
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  // No overlong forms, surrogates or code points beyond U+10FFFF.
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// JSON string contents: escapes quotes, backslashes and control characters;
// invalid UTF-8 bytes become U+FFFD, so the line is always valid JSON.
void AppendJsonString(std::string* out, std::string_view s) {
  *out += '"';
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      *out += '\\';
      *out += static_cast<char>(c);
    } else if (c == '\n') {
      *out += "\\n";
    } else if (c == '\t') {
      *out += "\\t";
    } else if (c == '\r') {
      *out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      AppendHex(out, "\\u00", c);
    } else if (c >= 0x80) {
      const size_t n = Utf8Length(s, i);
      if (n == 0) {
        *out += "\\ufffd";
        ++i;
        continue;
      }
      out->append(s.substr(i, n));
      i += n;
      continue;
    } else {
      *out += static_cast<char>(c);
    }
    ++i;
  }
  *out += '"';
}

bool NeedsQuotes(std::string_view s) {
  if (s.empty()) return true;
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7F) return true;
  }
  return false;
}

// A text value: as is, or quoted with \" \\ \n \t \r and \xHH escapes.
void AppendTextValue(std::string* out, std::string_view s) {
  if (!NeedsQuotes(s)) {
    out->append(s);
    return;
  }
  *out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      *out += '\\';
      *out += ch;
    } else if (c == '\n') {
      *out += "\\n";
    } else if (c == '\t') {
      *out += "\\t";
    } else if (c == '\r') {
      *out += "\\r";
    } else if (c < 0x20 || c == 0x7F) {
      AppendHex(out, "\\x", c);
    } else {
      *out += ch;
    }
  }
  *out += '"';
}

}  // namespace

bool ParseLogLevel(std::string_view s, LogLevel* out) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (s == LogLevelName(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

bool ParseLogFormat(std::string_view s, LogFormat* out) {
  if (s == "text") {
    *out = LogFormat::kText;
  } else if (s == "json") {
    *out = LogFormat::kJson;
  } else {
    return false;
  }
  return true;
}

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

const char* EventName(Event event) {
  switch (event) {
    case Event::kServerStarted:
      return "server_started";
    case Event::kListening:
      return "listening";
    case Event::kRingConfiguration:
      return "ring_configuration";
    case Event::kMultiRingTopology:
      return "multi_ring_topology";
    case Event::kPrimaryInstalled:
      return "primary_installed";
    case Event::kPrimaryLost:
      return "primary_lost";
    case Event::kReplicationRole:
      return "replication_role";
    case Event::kSnapshotInstalled:
      return "snapshot_installed";
    case Event::kReplicationFailed:
      return "replication_failed";
    case Event::kSubmitFailed:
      return "submit_failed";
    case Event::kLeasesLoaded:
      return "leases_loaded";
    case Event::kLeaseExpired:
      return "lease_expired";
    case Event::kLeaseExpireFailed:
      return "lease_expire_failed";
    case Event::kLeaseReloadFailed:
      return "lease_reload_failed";
    case Event::kKeyGenerated:
      return "key_generated";
    case Event::kTlsLoaded:
      return "tls_loaded";
    case Event::kConfigError:
      return "config_error";
    case Event::kStartupFailed:
      return "startup_failed";
    case Event::kShutdown:
      return "shutdown";
    case Event::kStopped:
      return "stopped";
    case Event::kStateTransferStarted:
      return "state_transfer_started";
    case Event::kStateTransferFinished:
      return "state_transfer_finished";
  }
  return "unknown";
}

std::string FormatLogLine(LogFormat format, std::string_view ts, LogLevel level, Event event,
                          std::initializer_list<LogField> fields) {
  std::string line;
  line.reserve(128);
  if (format == LogFormat::kJson) {
    line += "{\"ts\":";
    AppendJsonString(&line, ts);
    line += ",\"level\":";
    AppendJsonString(&line, LogLevelName(level));
    line += ",\"event\":";
    AppendJsonString(&line, EventName(event));
    for (const LogField& f : fields) {
      line += ',';
      AppendJsonString(&line, f.key);
      line += ':';
      if (f.literal) {
        line += f.value;
      } else {
        AppendJsonString(&line, f.value);
      }
    }
    line += '}';
    return line;
  }
  line += "ts=";
  line += ts;
  line += " level=";
  line += LogLevelName(level);
  line += " event=";
  line += EventName(event);
  for (const LogField& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    AppendTextValue(&line, f.value);
  }
  return line;
}

std::string LogTimestamp() {
  timeval tv{};
  ::gettimeofday(&tv, nullptr);
  tm t{};
  ::gmtime_r(&tv.tv_sec, &t);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900,
                t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                static_cast<int>(tv.tv_usec / 1000));
  return buf;
}

void ConfigureLog(LogFormat format, LogLevel min_level) {
  g_format.store(format, std::memory_order_relaxed);
  g_min_level.store(min_level, std::memory_order_relaxed);
}

bool LogEnabled(LogLevel level) { return level >= g_min_level.load(std::memory_order_relaxed); }

void LogEvent(LogLevel level, Event event, std::initializer_list<LogField> fields) {
  if (!LogEnabled(level)) return;
  std::string line =
      FormatLogLine(g_format.load(std::memory_order_relaxed), LogTimestamp(), level, event, fields);
  line += '\n';
  // One write per line (stderr is a pipe or file; short writes are retried).
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(STDERR_FILENO, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

}  // namespace totemkv::server
