// An offline checker of extended virtual synchrony over real processes'
// delivery logs (the `--delivery-log` format of totem-node, see
// totem/tools/totem_node_main.cc). Each log is one process incarnation: a
// restarted node is a new process and writes a new log. A log cut short by
// kill -9 is a prefix of what the process delivered, and is checked as such
// (a torn last line is ignored).
//
// Properties checked (ARCHITECTURE.md 3.2; the guarantees of Moser et al.,
// "Extended virtual synchrony", ICDCS 1994), as far as delivery logs can
// show them:
//  Per process
//   - the first event is a regular configuration; every delivery is in the
//     configuration most recently installed (same kind and id);
//   - the process is a member of every configuration it installs; member
//     lists are sorted and duplicate-free;
//   - a transitional configuration follows a regular one, is a subset of it,
//     and is followed by the regular configuration of the same id, which
//     contains it; regular configuration ids strictly increase;
//   - no message is delivered twice; a message delivered in a regular
//     configuration comes from a member of it, one delivered in a
//     transitional configuration from a member of the preceding regular one.
//  Across processes
//   - consensus: a regular configuration id has the same members everywhere;
//   - every process delivers a message in the same configuration of origin
//     (the regular configuration that ordered it);
//   - one total order: the union of all delivery sequences, configuration
//     events included (so configuration changes fall at the same point
//     relative to messages for every process that shares them), is acyclic;
//   - failure atomicity: processes that install the same regular
//     configuration C1 and then, as their next one, the same regular C2 went
//     through the same transitional configuration and delivered the same
//     set of messages in C1 and that transitional configuration.
// Not checkable from logs: safe delivery (needs receive state) and
// self-delivery of messages submitted just before a crash.
#ifndef TOTEMKV_TESTS_INTEGRATION_EVS_LOG_CHECKER_H_
#define TOTEMKV_TESTS_INTEGRATION_EVS_LOG_CHECKER_H_

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace totem::testing {

struct LogRingId {
  uint32_t rep = 0;
  uint64_t seq = 0;
  friend auto operator<=>(const LogRingId&, const LogRingId&) = default;
  std::string ToString() const { return std::to_string(rep) + ":" + std::to_string(seq); }
};

struct LogMessageKey {
  uint32_t sender = 0;
  uint64_t incarnation = 0;
  uint64_t index = 0;
  friend auto operator<=>(const LogMessageKey&, const LogMessageKey&) = default;
  std::string ToString() const {
    std::ostringstream s;
    s << "msg(" << sender << "/" << std::hex << incarnation << std::dec << "#" << index << ")";
    return s.str();
  }
};

struct LogEvent {
  bool is_config = false;
  bool transitional = false;
  LogRingId id;
  std::vector<uint32_t> members;  // configuration events
  LogMessageKey message;          // deliveries
  int line = 0;
};

struct ProcessLog {
  std::string name;  // for messages: e.g. "node3" or "node5#2"
  uint32_t node = 0;
  std::vector<LogEvent> events;
  bool complete = false;  // ends with the "# end" line of a clean exit
  std::vector<std::string> parse_errors;
};

namespace evs_detail {

inline bool ParseRingId(const std::string& s, LogRingId* id) {
  const size_t colon = s.find(':');
  if (colon == std::string::npos) return false;
  try {
    id->rep = static_cast<uint32_t>(std::stoul(s.substr(0, colon)));
    id->seq = std::stoull(s.substr(colon + 1));
  } catch (...) {
    return false;
  }
  return true;
}

inline bool ParseMembers(const std::string& s, std::vector<uint32_t>* out) {
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      out->push_back(static_cast<uint32_t>(std::stoul(item)));
    } catch (...) {
      return false;
    }
  }
  return true;
}

inline std::string Members(const std::vector<uint32_t>& m) {
  std::string s = "[";
  for (size_t i = 0; i < m.size(); ++i) s += (i ? "," : "") + std::to_string(m[i]);
  return s + "]";
}

inline bool Contains(const std::vector<uint32_t>& set, uint32_t x) {
  return std::find(set.begin(), set.end(), x) != set.end();
}

inline bool Subset(const std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
  return std::all_of(a.begin(), a.end(), [&](uint32_t x) { return Contains(b, x); });
}

}  // namespace evs_detail

// Parses one delivery log. `name` labels it in violation messages.
inline ProcessLog ParseDeliveryLog(const std::string& text, const std::string& name) {
  ProcessLog log;
  log.name = name;
  std::string body = text;
  if (!body.empty() && body.back() != '\n') body.erase(body.rfind('\n') + 1);  // torn last line
  std::istringstream in(body);
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty()) continue;
    std::istringstream f(line);
    std::string word;
    f >> word;
    if (word == "#") {
      std::string what;
      f >> what;
      if (what == "end") log.complete = true;
      if (what == "totem-node") {
        std::string rest;
        while (f >> rest) {
          if (rest.rfind("node=", 0) == 0)
            log.node = static_cast<uint32_t>(std::stoul(rest.substr(5)));
        }
      }
      continue;
    }
    LogEvent e;
    e.line = number;
    std::string kind, id;
    f >> kind >> id;
    e.transitional = kind == "transitional";
    const bool kind_ok = kind == "regular" || kind == "transitional";
    if (!kind_ok || !evs_detail::ParseRingId(id, &e.id)) {
      log.parse_errors.push_back(name + " line " + std::to_string(number) + ": " + line);
      continue;
    }
    if (word == "conf") {
      e.is_config = true;
      std::string members;
      f >> members;
      if (!evs_detail::ParseMembers(members, &e.members)) {
        log.parse_errors.push_back(name + " line " + std::to_string(number) + ": " + line);
        continue;
      }
    } else if (word == "msg") {
      std::string sender, inc, index;
      f >> sender >> inc >> index;
      try {
        e.message.sender = static_cast<uint32_t>(std::stoul(sender));
        e.message.incarnation = std::stoull(inc, nullptr, 16);
        e.message.index = std::stoull(index);
      } catch (...) {
        log.parse_errors.push_back(name + " line " + std::to_string(number) + ": " + line);
        continue;
      }
    } else {
      log.parse_errors.push_back(name + " line " + std::to_string(number) + ": " + line);
      continue;
    }
    log.events.push_back(std::move(e));
  }
  return log;
}

struct EvsReport {
  std::vector<std::string> violations;  // at most kMaxViolations are kept
  uint64_t violation_count = 0;
  uint64_t messages = 0;         // distinct messages delivered anywhere
  uint64_t deliveries = 0;       // delivery events over all logs
  uint64_t regular_configs = 0;  // distinct regular configurations
  bool ok() const { return violation_count == 0; }
  std::string Summary() const {
    std::string s = std::to_string(violation_count) + " violations, " + std::to_string(messages) +
                    " messages, " + std::to_string(deliveries) + " deliveries, " +
                    std::to_string(regular_configs) + " regular configurations";
    for (const std::string& v : violations) s += "\n  " + v;
    return s;
  }
};

inline EvsReport CheckEvs(const std::vector<ProcessLog>& logs) {
  using evs_detail::Contains;
  using evs_detail::Members;
  using evs_detail::Subset;
  constexpr size_t kMaxViolations = 25;
  EvsReport report;
  auto violation = [&report](const std::string& what) {
    ++report.violation_count;
    if (report.violations.size() < kMaxViolations) report.violations.push_back(what);
  };

  // Per process: structure, and what the cross-process checks need.
  struct Segment {  // one regular configuration at one process
    LogRingId regular;
    std::optional<std::vector<uint32_t>> transitional;  // members, if one followed
    std::optional<LogRingId> next_regular;              // the next regular installed
    std::set<LogMessageKey> delivered;                  // in the regular + transitional
  };
  std::vector<std::vector<Segment>> segments(logs.size());
  std::map<LogRingId, std::pair<std::vector<uint32_t>, std::string>> regular_members;
  std::map<LogMessageKey, std::pair<LogRingId, std::string>> origin;

  for (size_t p = 0; p < logs.size(); ++p) {
    const ProcessLog& log = logs[p];
    for (const std::string& e : log.parse_errors) violation("unparsable line: " + e);
    const std::string who = log.name;
    std::set<LogMessageKey> seen;
    std::optional<LogEvent> current;  // last configuration event
    std::optional<LogEvent> regular;  // last regular configuration
    for (const LogEvent& e : log.events) {
      const std::string at = who + " line " + std::to_string(e.line) + ": ";
      if (e.is_config) {
        if (!std::is_sorted(e.members.begin(), e.members.end()) ||
            std::adjacent_find(e.members.begin(), e.members.end()) != e.members.end()) {
          violation(at + "members " + Members(e.members) + " not sorted and unique");
        }
        if (log.node != 0 && !Contains(e.members, log.node)) {
          violation(at + "installs configuration " + e.id.ToString() + " " + Members(e.members) +
                    " without being a member");
        }
        if (e.transitional) {
          if (!regular) {
            violation(at + "transitional configuration with no regular one before it");
          } else {
            if (current && current->transitional) {
              violation(at + "two transitional configurations in a row");
            }
            if (!Subset(e.members, regular->members)) {
              violation(at + "transitional " + Members(e.members) +
                        " is not a subset of the regular " + Members(regular->members));
            }
            segments[p].back().transitional = e.members;
          }
        } else {
          if (current && current->transitional) {
            if (current->id != e.id) {
              violation(at + "regular " + e.id.ToString() + " follows transitional " +
                        current->id.ToString() + " (ids must match)");
            }
            if (!Subset(current->members, e.members)) {
              violation(at + "regular " + Members(e.members) +
                        " does not contain the transitional " + Members(current->members));
            }
          }
          if (regular && e.id.seq <= regular->id.seq) {
            violation(at + "regular configuration " + e.id.ToString() + " after " +
                      regular->id.ToString() + ": ring sequence did not increase");
          }
          auto [it, fresh] = regular_members.try_emplace(e.id, e.members, who);
          if (!fresh && it->second.first != e.members) {
            violation(at + "regular configuration " + e.id.ToString() + " has members " +
                      Members(e.members) + " but " + Members(it->second.first) + " at " +
                      it->second.second);
          }
          if (!segments[p].empty()) segments[p].back().next_regular = e.id;
          segments[p].push_back(Segment{e.id, std::nullopt, std::nullopt, {}});
          regular = e;
        }
        current = e;
        continue;
      }
      ++report.deliveries;
      if (!current) {
        violation(at + e.message.ToString() + " delivered before any configuration");
        continue;
      }
      if (current->transitional != e.transitional || current->id != e.id) {
        violation(at + e.message.ToString() + " delivered in " +
                  (e.transitional ? "transitional " : "regular ") + e.id.ToString() +
                  " but the current configuration is " +
                  (current->transitional ? "transitional " : "regular ") + current->id.ToString());
      }
      if (!seen.insert(e.message).second) {
        violation(at + e.message.ToString() + " delivered twice");
        continue;
      }
      if (!Contains(regular->members, e.message.sender)) {
        violation(at + e.message.ToString() + " from a sender outside the regular configuration " +
                  regular->id.ToString() + " " + Members(regular->members));
      }
      segments[p].back().delivered.insert(e.message);
      auto [it, fresh] = origin.try_emplace(e.message, regular->id, who);
      if (!fresh && it->second.first != regular->id) {
        violation(at + e.message.ToString() + " ordered in configuration " +
                  regular->id.ToString() + " here but in " + it->second.first.ToString() + " at " +
                  it->second.second);
      }
    }
  }
  report.messages = origin.size();
  report.regular_configs = regular_members.size();

  // One total order: consecutive events of every log are edges of a graph
  // over messages and configuration events, which must be acyclic.
  {
    std::unordered_map<std::string, size_t> index;
    std::vector<std::string> names;
    auto node_of = [&](const LogEvent& e) {
      std::string key;
      if (e.is_config) {
        key = std::string(e.transitional ? "transitional " : "regular ") + e.id.ToString();
        if (e.transitional) key += " " + Members(e.members);
      } else {
        key = e.message.ToString();
      }
      auto [it, fresh] = index.try_emplace(key, names.size());
      if (fresh) names.push_back(key);
      return it->second;
    };
    std::vector<std::vector<size_t>> out;
    std::vector<size_t> in_degree;
    std::set<std::pair<size_t, size_t>> edges;
    for (const ProcessLog& log : logs) {
      std::optional<size_t> prev;
      for (const LogEvent& e : log.events) {
        const size_t n = node_of(e);
        if (out.size() < names.size()) {
          out.resize(names.size());
          in_degree.resize(names.size(), 0);
        }
        if (prev && *prev != n && edges.insert({*prev, n}).second) {
          out[*prev].push_back(n);
          ++in_degree[n];
        }
        prev = n;
      }
    }
    std::vector<size_t> ready;
    for (size_t n = 0; n < names.size(); ++n) {
      if (in_degree[n] == 0) ready.push_back(n);
    }
    size_t sorted = 0;
    while (!ready.empty()) {
      const size_t n = ready.back();
      ready.pop_back();
      ++sorted;
      for (size_t m : out[n]) {
        if (--in_degree[m] == 0) ready.push_back(m);
      }
    }
    if (sorted != names.size()) {
      std::string sample;
      int shown = 0;
      for (size_t n = 0; n < names.size() && shown < 6; ++n) {
        if (in_degree[n] != 0) {
          sample += " " + names[n];
          ++shown;
        }
      }
      violation("no single total order: " + std::to_string(names.size() - sorted) +
                " events are on or behind an ordering cycle, e.g." + sample);
    }
  }

  // Failure atomicity between consecutive regular configurations.
  for (size_t p = 0; p < logs.size(); ++p) {
    for (size_t q = p + 1; q < logs.size(); ++q) {
      for (const Segment& a : segments[p]) {
        if (!a.next_regular) continue;
        for (const Segment& b : segments[q]) {
          if (b.regular != a.regular || b.next_regular != a.next_regular) continue;
          const std::string pair = logs[p].name + " and " + logs[q].name + " moving from " +
                                   a.regular.ToString() + " to " + a.next_regular->ToString();
          if (a.transitional != b.transitional) {
            violation(pair + ": different transitional configurations " +
                      (a.transitional ? Members(*a.transitional) : "none") + " vs " +
                      (b.transitional ? Members(*b.transitional) : "none"));
          }
          if (a.delivered != b.delivered) {
            std::vector<LogMessageKey> only_a, only_b;
            std::set_difference(a.delivered.begin(), a.delivered.end(), b.delivered.begin(),
                                b.delivered.end(), std::back_inserter(only_a));
            std::set_difference(b.delivered.begin(), b.delivered.end(), a.delivered.begin(),
                                a.delivered.end(), std::back_inserter(only_b));
            violation(pair + ": delivered different sets (" + std::to_string(only_a.size()) +
                      " only at the first" +
                      (only_a.empty() ? "" : ", e.g. " + only_a.front().ToString()) + "; " +
                      std::to_string(only_b.size()) + " only at the second" +
                      (only_b.empty() ? "" : ", e.g. " + only_b.front().ToString()) + ")");
          }
        }
      }
    }
  }
  return report;
}

}  // namespace totem::testing

#endif  // TOTEMKV_TESTS_INTEGRATION_EVS_LOG_CHECKER_H_
