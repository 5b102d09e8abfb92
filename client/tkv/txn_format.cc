// Parser for etcdctl's txn text format; see txn_format.h.
#include "txn_format.h"

#include <cerrno>
#include <cstdlib>

#include "client/client.h"

namespace totemkv::tkv {
namespace {

using client::Status;
using client::StatusCode;

Status Invalid(const std::string& msg) { return Status(StatusCode::INVALID_ARGUMENT, msg); }

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

bool ParseInt(const std::string& text, int64_t* out) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

// Reads a Go-style double-quoted string starting at s[*pos] == '"'.
bool ReadQuoted(const std::string& s, size_t* pos, std::string* out) {
  size_t i = *pos + 1;
  out->clear();
  while (i < s.size()) {
    const char c = s[i];
    if (c == '"') {
      *pos = i + 1;
      return true;
    }
    if (c == '\\' && i + 1 < s.size()) {
      const char e = s[i + 1];
      i += 2;
      switch (e) {
        case 'n': out->push_back('\n'); break;
        case 't': out->push_back('\t'); break;
        case 'r': out->push_back('\r'); break;
        case '0': out->push_back('\0'); break;
        case 'x':
          if (i + 2 > s.size()) return false;
          out->push_back(static_cast<char>(std::strtol(s.substr(i, 2).c_str(), nullptr, 16)));
          i += 2;
          break;
        default: out->push_back(e); break;  // \" \\ and anything else literally
      }
      continue;
    }
    out->push_back(c);
    ++i;
  }
  return false;
}

}  // namespace

bool ParseLeaseId(const std::string& text, int64_t* id) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 16);
  if (errno != 0 || *end != '\0') return false;
  *id = static_cast<int64_t>(v);
  return true;
}

client::StatusOr<std::vector<std::string>> Argify(const std::string& line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    std::string word;
    bool quoted = false;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') {
      if (line[i] == '"') {
        std::string part;
        if (!ReadQuoted(line, &i, &part)) return Invalid("unterminated quote in: " + line);
        word += part;
        quoted = true;
      } else if (line[i] == '\'') {
        const size_t close = line.find('\'', i + 1);
        if (close == std::string::npos) return Invalid("unterminated quote in: " + line);
        word += line.substr(i + 1, close - i - 1);
        i = close + 1;
        quoted = true;
      } else {
        word.push_back(line[i++]);
      }
    }
    if (!word.empty() || quoted) words.push_back(word);
  }
  return words;
}

client::StatusOr<etcdserverpb::Compare> ParseCompare(const std::string& raw) {
  const std::string line = Trim(raw);
  const size_t lparen = line.find('(');
  if (lparen == std::string::npos || lparen + 1 >= line.size() || line[lparen + 1] != '"') {
    return Invalid("malformed comparison: " + line);
  }
  const std::string target = line.substr(0, lparen);
  size_t pos = lparen + 1;
  std::string key;
  if (!ReadQuoted(line, &pos, &key) || pos >= line.size() || line[pos] != ')') {
    return Invalid("malformed comparison: " + line);
  }
  auto rest_words = Argify(line.substr(pos + 1));
  if (!rest_words.ok()) return rest_words.status();
  const std::vector<std::string>& rest = *rest_words;
  if (rest.size() != 2) return Invalid("malformed comparison: " + line);
  etcdserverpb::Compare::CompareResult result;
  if (rest[0] == "=" || rest[0] == "==") {
    result = etcdserverpb::Compare::EQUAL;
  } else if (rest[0] == "!=") {
    result = etcdserverpb::Compare::NOT_EQUAL;
  } else if (rest[0] == "<") {
    result = etcdserverpb::Compare::LESS;
  } else if (rest[0] == ">") {
    result = etcdserverpb::Compare::GREATER;
  } else {
    return Invalid("unknown comparison operator " + rest[0] + " in: " + line);
  }
  const std::string& operand = rest[1];
  if (target == "val" || target == "value") return client::txn::Value(key, result, operand);
  int64_t n = 0;
  if (!ParseInt(operand, &n)) return Invalid("expected a number, got \"" + operand + "\" in: " + line);
  if (target == "ver" || target == "version") return client::txn::Version(key, result, n);
  if (target == "c" || target == "create") return client::txn::CreateRevision(key, result, n);
  if (target == "m" || target == "mod") return client::txn::ModRevision(key, result, n);
  if (target == "lease") return client::txn::Lease(key, result, n);
  return Invalid("unknown comparison target \"" + target + "\" in: " + line);
}

client::StatusOr<etcdserverpb::RequestOp> ParseRequestOp(const std::string& line) {
  auto words_or = Argify(line);
  if (!words_or.ok()) return words_or.status();
  std::vector<std::string> pos;
  std::vector<std::pair<std::string, std::string>> flags;
  for (const std::string& w : *words_or) {
    if (w.rfind("--", 0) == 0 && w.size() > 2) {
      const size_t eq = w.find('=');
      flags.emplace_back(w.substr(2, eq == std::string::npos ? std::string::npos : eq - 2),
                         eq == std::string::npos ? "" : w.substr(eq + 1));
    } else {
      pos.push_back(w);
    }
  }
  if (pos.empty()) return Invalid("empty request line");
  const std::string cmd = pos[0];
  auto bad_flag = [&](const std::string& f) {
    return Invalid("unknown flag --" + f + " for " + cmd + " in: " + line);
  };
  if (cmd == "put") {
    if (pos.size() != 3) return Invalid("put needs KEY VALUE: " + line);
    client::PutOptions o;
    for (const auto& [f, v] : flags) {
      if (f == "lease") {
        if (!ParseLeaseId(v, &o.lease)) return Invalid("bad lease id \"" + v + "\"");
      } else if (f == "prev-kv") {
        o.prev_kv = true;
      } else {
        return bad_flag(f);
      }
    }
    return client::txn::Put(pos[1], pos[2], o);
  }
  if (cmd == "get") {
    if (pos.size() < 2 || pos.size() > 3) return Invalid("get needs KEY [RANGE_END]: " + line);
    client::GetOptions o;
    if (pos.size() == 3) o.range_end = pos[2];
    for (const auto& [f, v] : flags) {
      if (f == "prefix") {
        o.prefix = true;
      } else if (f == "from-key") {
        o.from_key = true;
      } else if (f == "keys-only") {
        o.keys_only = true;
      } else if (f == "count-only") {
        o.count_only = true;
      } else if (f == "limit" || f == "rev") {
        int64_t n = 0;
        if (!ParseInt(v, &n)) return Invalid("--" + f + " needs a number in: " + line);
        (f == "limit" ? o.limit : o.revision) = n;
      } else {
        return bad_flag(f);
      }
    }
    return client::txn::Get(pos[1], o);
  }
  if (cmd == "del" || cmd == "delete") {
    if (pos.size() < 2 || pos.size() > 3) return Invalid("del needs KEY [RANGE_END]: " + line);
    client::DeleteOptions o;
    if (pos.size() == 3) o.range_end = pos[2];
    for (const auto& [f, v] : flags) {
      if (f == "prefix") {
        o.prefix = true;
      } else if (f == "from-key") {
        o.from_key = true;
      } else if (f == "prev-kv") {
        o.prev_kv = true;
      } else {
        return bad_flag(f);
      }
    }
    return client::txn::Delete(pos[1], o);
  }
  return Invalid("unknown request \"" + cmd + "\" (want put, get or del): " + line);
}

client::StatusOr<etcdserverpb::TxnRequest> ParseTxn(std::istream& in, std::ostream* prompts) {
  etcdserverpb::TxnRequest txn;
  static const char* const kPrompts[] = {"compares:", "success requests (get, put, del):",
                                         "failure requests (get, put, del):"};
  for (int section = 0; section < 3; ++section) {
    if (prompts != nullptr) *prompts << kPrompts[section] << std::endl;
    std::string line;
    while (std::getline(in, line)) {
      line = Trim(line);
      if (line.empty()) break;
      if (section == 0) {
        auto c = ParseCompare(line);
        if (!c.ok()) return c.status();
        *txn.add_compare() = *c;
      } else {
        auto op = ParseRequestOp(line);
        if (!op.ok()) return op.status();
        *(section == 1 ? txn.add_success() : txn.add_failure()) = *op;
      }
    }
    if (prompts != nullptr) *prompts << std::endl;
  }
  return txn;
}

}  // namespace totemkv::tkv
