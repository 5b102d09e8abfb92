// Unit tests of totemkvd's structured log lines (server/log.h): the text
// format's quoting and escaping, and that every JSON line is one valid JSON
// object (checked by a small strict parser below) carrying the values back;
// and the --log-format, --log-level and --totem-encryption flags.
#include "log.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "server_config.h"

namespace totemkv::server {
namespace {

// A strict parser for the flat objects the logger writes: {"key": string |
// number | true | false, ...}. Returns the members (strings unescaped,
// literals as written) or nullopt for anything that is not valid JSON of
// that shape.
class FlatJson {
 public:
  static std::optional<std::map<std::string, std::string>> Parse(const std::string& text) {
    FlatJson p(text);
    std::map<std::string, std::string> out;
    if (!p.Eat('{')) return std::nullopt;
    for (bool first = true; !p.Peek('}'); first = false) {
      if (!first && !p.Eat(',')) return std::nullopt;
      std::optional<std::string> key = p.String();
      if (!key || !p.Eat(':')) return std::nullopt;
      std::optional<std::string> value = p.Peek('"') ? p.String() : p.Literal();
      if (!value || !out.emplace(*key, *value).second) return std::nullopt;
    }
    if (!p.Eat('}') || p.i_ != text.size()) return std::nullopt;
    return out;
  }

 private:
  explicit FlatJson(const std::string& s) : s_(s) {}
  bool Peek(char c) const { return i_ < s_.size() && s_[i_] == c; }
  bool Eat(char c) {
    if (!Peek(c)) return false;
    ++i_;
    return true;
  }
  std::optional<std::string> Literal() {
    static const std::regex kLiteral("^(true|false|-?(0|[1-9][0-9]*))");
    std::smatch m;
    const std::string rest = s_.substr(i_);
    if (!std::regex_search(rest, m, kLiteral)) return std::nullopt;
    i_ += static_cast<size_t>(m.length(0));
    return m.str(0);
  }
  std::optional<std::string> String() {
    if (!Eat('"')) return std::nullopt;
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      const auto c = static_cast<unsigned char>(s_[i_++]);
      if (c < 0x20) return std::nullopt;  // raw control characters are invalid
      if (c >= 0x80) {
        // Must be valid UTF-8 (lead byte + continuation bytes).
        const size_t n = (c & 0xE0) == 0xC0   ? 1
                         : (c & 0xF0) == 0xE0 ? 2
                         : (c & 0xF8) == 0xF0 ? 3
                                              : 9;
        if (n == 9 || i_ + n > s_.size()) return std::nullopt;
        out += static_cast<char>(c);
        for (size_t k = 0; k < n; ++k) {
          if ((static_cast<unsigned char>(s_[i_]) & 0xC0) != 0x80) return std::nullopt;
          out += s_[i_++];
        }
        continue;
      }
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (i_ >= s_.size()) return std::nullopt;
      const char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          if (i_ + 4 > s_.size()) return std::nullopt;
          const std::string hex = s_.substr(i_, 4);
          if (hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
            return std::nullopt;
          }
          i_ += 4;
          const unsigned long cp = std::stoul(hex, nullptr, 16);
          // Enough for the tests: ASCII as is, anything else as a marker.
          out += cp < 0x80 ? std::string(1, static_cast<char>(cp)) : "<U+" + hex + ">";
          break;
        }
        default:
          return std::nullopt;
      }
    }
    if (!Eat('"')) return std::nullopt;
    return out;
  }

  const std::string& s_;
  size_t i_ = 0;
};

constexpr std::string_view kTs = "2026-01-02T03:04:05.678Z";

TEST(LogFormatTest, Text_PlainValuesUnquoted_FieldsInOrder) {
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kTs, LogLevel::kInfo, Event::kRingConfiguration,
                          {{"kind", "regular"}, {"members", "1,2,3"}, {"n", 42}, {"ok", true}}),
            "ts=2026-01-02T03:04:05.678Z level=info event=ring_configuration kind=regular "
            "members=1,2,3 n=42 ok=true");
  EXPECT_EQ(FormatLogLine(LogFormat::kText, kTs, LogLevel::kWarn, Event::kStopped, {}),
            "ts=2026-01-02T03:04:05.678Z level=warn event=stopped");
}

TEST(LogFormatTest, Text_SpacesQuotesEqualsAndControlCharactersQuotedAndEscaped) {
  const std::string line =
      FormatLogLine(LogFormat::kText, kTs, LogLevel::kError, Event::kConfigError,
                    {{"error", "bad \"x\" = y"},
                     {"empty", ""},
                     {"path", "C:\\dir"},
                     {"multi", "a\nb\tc\x01"},
                     {"v", int64_t{-7}}});
  EXPECT_EQ(line,
            "ts=2026-01-02T03:04:05.678Z level=error event=config_error "
            "error=\"bad \\\"x\\\" = y\" empty=\"\" path=\"C:\\\\dir\" "
            "multi=\"a\\nb\\tc\\x01\" v=-7");
  EXPECT_EQ(line.find('\n'), std::string::npos);  // one event, one line
}

TEST(LogFormatTest, Json_EveryLineParses_ValuesRoundTrip_NumbersAndBoolsAreLiterals) {
  const std::string tricky = "quote\" backslash\\ newline\n tab\t bell\x07 del\x7f é ok";
  const std::string line = FormatLogLine(
      LogFormat::kJson, kTs, LogLevel::kInfo, Event::kServerStarted,
      {{"name", "n1"}, {"tricky", tricky}, {"node_id", 3u}, {"sync", false}, {"neg", -12}});
  EXPECT_EQ(line.find('\n'), std::string::npos);
  std::optional<std::map<std::string, std::string>> m = FlatJson::Parse(line);
  ASSERT_TRUE(m.has_value()) << line;
  EXPECT_EQ(m->at("ts"), kTs);
  EXPECT_EQ(m->at("level"), "info");
  EXPECT_EQ(m->at("event"), "server_started");
  EXPECT_EQ(m->at("name"), "n1");
  EXPECT_EQ(m->at("tricky"), "quote\" backslash\\ newline\n tab\t bell\x07 del\x7f é ok");
  EXPECT_EQ(m->at("node_id"), "3");
  EXPECT_EQ(m->at("sync"), "false");
  EXPECT_EQ(m->at("neg"), "-12");
  // Literals are not quoted; strings are.
  EXPECT_NE(line.find("\"node_id\":3,"), std::string::npos) << line;
  EXPECT_NE(line.find("\"sync\":false,"), std::string::npos) << line;
}

TEST(LogFormatTest, Json_InvalidUtf8BecomesReplacementCharacter_StillValid) {
  const std::string bad = std::string("a\xff") + "b\xc3" + "\xe2\x82" + "\xed\xa0\x80";
  const std::string line =
      FormatLogLine(LogFormat::kJson, kTs, LogLevel::kWarn, Event::kSubmitFailed, {{"e", bad}});
  std::optional<std::map<std::string, std::string>> m = FlatJson::Parse(line);
  ASSERT_TRUE(m.has_value()) << line;
  EXPECT_EQ(m->at("e").substr(0, 1), "a");
  EXPECT_NE(m->at("e").find("<U+fffd>"), std::string::npos) << m->at("e");
  // The checker itself rejects broken JSON (so the tests above can fail).
  EXPECT_FALSE(FlatJson::Parse("{\"a\":\"x\ny\"}").has_value());
  EXPECT_FALSE(FlatJson::Parse("{\"a\":\"\xff\"}").has_value());
  EXPECT_FALSE(FlatJson::Parse("{\"a\":1,}").has_value());
  EXPECT_FALSE(FlatJson::Parse("{\"a\":\"\\q\"}").has_value());
}

TEST(LogFormatTest, Timestamp_Rfc3339UtcMilliseconds) {
  EXPECT_TRUE(
      std::regex_match(LogTimestamp(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << LogTimestamp();
}

TEST(LogFormatTest, EventNames_UniqueStableSnakeCase) {
  std::set<std::string> seen;
  for (int e = 0; e <= static_cast<int>(kLastEvent); ++e) {
    const std::string name = EventName(static_cast<Event>(e));
    EXPECT_TRUE(std::regex_match(name, std::regex("[a-z]+(_[a-z]+)*"))) << name;
    EXPECT_TRUE(seen.insert(name).second) << "duplicate " << name;
  }
  // Pinned: these names are an interface (README "Logs").
  EXPECT_STREQ(EventName(Event::kServerStarted), "server_started");
  EXPECT_STREQ(EventName(Event::kRingConfiguration), "ring_configuration");
  EXPECT_STREQ(EventName(Event::kPrimaryInstalled), "primary_installed");
  EXPECT_STREQ(EventName(Event::kListening), "listening");
}

TEST(LogFormatTest, ParseLevelAndFormat_AcceptKnownNames_RejectOthers) {
  LogLevel level = LogLevel::kInfo;
  EXPECT_TRUE(ParseLogLevel("debug", &level));
  EXPECT_EQ(level, LogLevel::kDebug);
  EXPECT_TRUE(ParseLogLevel("error", &level));
  EXPECT_EQ(level, LogLevel::kError);
  EXPECT_FALSE(ParseLogLevel("verbose", &level));
  EXPECT_FALSE(ParseLogLevel("INFO", &level));
  LogFormat format = LogFormat::kText;
  EXPECT_TRUE(ParseLogFormat("json", &format));
  EXPECT_EQ(format, LogFormat::kJson);
  EXPECT_FALSE(ParseLogFormat("xml", &format));
}

TEST(LogFormatTest, Threshold_EventsBelowLevelSkipped) {
  ConfigureLog(LogFormat::kText, LogLevel::kWarn);
  EXPECT_FALSE(LogEnabled(LogLevel::kDebug));
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo));
  EXPECT_TRUE(LogEnabled(LogLevel::kWarn));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  ConfigureLog(LogFormat::kText, LogLevel::kInfo);
  EXPECT_TRUE(LogEnabled(LogLevel::kInfo));
}

// The flags that reach the logger and the transport (server_config.h).
totem::StatusOr<ServerConfig> Parse(std::vector<std::string> args) {
  ConfigSources sources;
  sources.args = std::move(args);
  return ParseConfig(sources);
}

TEST(LogFlagsTest, LogFormatLevelAndTotemEncryption_ParsedAndChecked) {
  totem::StatusOr<ServerConfig> d = Parse({});
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->log_format, LogFormat::kText);
  EXPECT_EQ(d->log_level, LogLevel::kInfo);
  EXPECT_FALSE(d->totem.encryption);
  EXPECT_FALSE(d->TotemNodeConfig().transport.encrypt);

  totem::StatusOr<ServerConfig> c =
      Parse({"--log-format", "json", "--log-level", "warn", "--totem-encryption", "true"});
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->log_format, LogFormat::kJson);
  EXPECT_EQ(c->log_level, LogLevel::kWarn);
  EXPECT_TRUE(c->totem.encryption);
  EXPECT_TRUE(c->TotemNodeConfig().transport.encrypt);

  EXPECT_EQ(Parse({"--log-format", "xml"}).status().message(),
            "--log-format: want text or json, got 'xml'");
  EXPECT_EQ(Parse({"--log-level", "trace"}).status().message(),
            "--log-level: want debug, info, warn or error, got 'trace'");
  EXPECT_EQ(Parse({"--totem-encryption", "maybe"}).status().message(),
            "--totem-encryption: want true or false");
  const std::string usage = Usage();
  for (const char* flag : {"--log-format", "--log-level", "--totem-encryption"}) {
    EXPECT_NE(usage.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace totemkv::server
