// tkv's Admin printers; formats in admin_output.h.
#include "admin_output.h"

#include <cstdio>
#include <ctime>
#include <map>

#include "output.h"

namespace totemkv::tkv {
namespace {

namespace pb = totemkv::admin::v1;

template <typename Ids>
std::string IdList(const Ids& ids) {
  std::string s;
  for (uint32_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

template <typename Ids>
void WriteIds(JsonWriter& w, const char* key, const Ids& ids) {
  w.Key(key).BeginArray();
  for (uint32_t id : ids) w.Uint(id);
  w.EndArray();
}

void WriteRingId(JsonWriter& w, const char* key, const pb::RingId& id) {
  w.Key(key).BeginObject();
  w.Key("representative").Uint(id.representative()).Key("seq").Uint(id.seq());
  w.EndObject();
}

std::string RingIdText(const pb::RingId& id) {
  return std::to_string(id.representative()) + ":" + std::to_string(id.seq());
}

std::string KindName(pb::ConfigurationKind kind) {
  switch (kind) {
    case pb::CONFIGURATION_KIND_REGULAR:
      return "regular";
    case pb::CONFIGURATION_KIND_TRANSITIONAL:
      return "transitional";
    default:
      return "unspecified";
  }
}

// 2026-11-22T07:36:21.123456Z
std::string UtcTime(int64_t unix_us) {
  const int64_t secs = unix_us >= 0 ? unix_us / 1000000 : (unix_us - 999999) / 1000000;
  const int64_t micros = unix_us - secs * 1000000;
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  const size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  char frac[16];
  std::snprintf(frac, sizeof(frac), ".%06lldZ", static_cast<long long>(micros));
  return std::string(buf, n) + frac;
}

template <typename Map>
std::map<std::string, uint64_t> Sorted(const Map& m) {
  return std::map<std::string, uint64_t>(m.begin(), m.end());
}

}  // namespace

std::string RingStateName(pb::RingState state) {
  switch (state) {
    case pb::RING_STATE_OPERATIONAL:
      return "operational";
    case pb::RING_STATE_GATHER:
      return "gather";
    case pb::RING_STATE_COMMIT:
      return "commit";
    case pb::RING_STATE_RECOVERY:
      return "recovery";
    default:
      return "unspecified";
  }
}

std::string JsonRing(const pb::GetRingResponse& r) {
  JsonWriter w;
  w.BeginObject();
  w.Key("node_id").Uint(r.node_id());
  WriteRingId(w, "ring_id", r.ring_id());
  WriteIds(w, "members", r.members());
  w.Key("state").String(RingStateName(r.state()));
  w.Key("representative").Uint(r.representative());
  w.Key("in_transition").Bool(r.in_transition());
  w.Key("primary").Bool(r.primary());
  w.Key("token_rotation_us").Uint(r.token_rotation_us());
  if (r.local_rings_size() > 0) {  // several rings
    WriteIds(w, "local_rings", r.local_rings());
    WriteIds(w, "reachable_rings", r.reachable_rings());
  }
  w.EndObject();
  return w.str();
}

std::string SimpleRing(const pb::GetRingResponse& r) {
  std::string s;
  s += "node_id: " + std::to_string(r.node_id()) + "\n";
  s += "ring_id: " + RingIdText(r.ring_id()) + "\n";
  s += "members: " + IdList(r.members()) + "\n";
  s += "state: " + RingStateName(r.state()) + "\n";
  s += "representative: " + std::to_string(r.representative()) + "\n";
  s += std::string("in_transition: ") + (r.in_transition() ? "true" : "false") + "\n";
  s += std::string("primary: ") + (r.primary() ? "true" : "false") + "\n";
  s += "token_rotation_us: " + std::to_string(r.token_rotation_us()) + "\n";
  if (r.local_rings_size() > 0) {  // several rings
    s += "local_rings: " + IdList(r.local_rings()) + "\n";
    s += "reachable_rings: " + IdList(r.reachable_rings()) + "\n";
  }
  return s;
}

std::string JsonConfigurations(const pb::ListConfigurationsResponse& r) {
  JsonWriter w;
  w.BeginObject();
  w.Key("events").BeginArray();
  for (const pb::ConfigurationEvent& e : r.events()) {
    w.BeginObject();
    w.Key("kind").String(KindName(e.kind()));
    WriteRingId(w, "ring_id", e.id());
    WriteIds(w, "members", e.members());
    WriteIds(w, "joined", e.joined());
    WriteIds(w, "left", e.left());
    w.Key("time_unix_us").Int(e.time_unix_us());
    w.EndObject();
  }
  w.EndArray();
  w.Key("dropped").Uint(r.dropped());
  w.EndObject();
  return w.str();
}

std::string SimpleConfigurations(const pb::ListConfigurationsResponse& r) {
  std::string s;
  if (r.dropped() > 0) s += "(" + std::to_string(r.dropped()) + " older events not shown)\n";
  for (const pb::ConfigurationEvent& e : r.events()) {
    s += UtcTime(e.time_unix_us()) + " " + KindName(e.kind()) + " " + RingIdText(e.id()) +
         " members=" + IdList(e.members()) + " joined=" + IdList(e.joined()) +
         " left=" + IdList(e.left()) + "\n";
  }
  return s;
}

std::string JsonCounters(const pb::GetCountersResponse& r) {
  JsonWriter w;
  w.BeginObject();
  w.Key("node_id").Uint(r.node_id());
  w.Key("uptime_ms").Uint(r.uptime_ms());
  w.Key("totem").BeginObject();
  for (const auto& [name, value] : Sorted(r.totem())) w.Key(name).Uint(value);
  w.EndObject();
  w.Key("store").BeginObject();
  for (const auto& [name, value] : Sorted(r.store())) w.Key(name).Uint(value);
  w.EndObject();
  w.EndObject();
  return w.str();
}

std::string SimpleCounters(const pb::GetCountersResponse& r) {
  std::string s;
  s += "node_id: " + std::to_string(r.node_id()) + "\n";
  s += "uptime_ms: " + std::to_string(r.uptime_ms()) + "\n";
  for (const auto& [name, value] : Sorted(r.totem())) {
    s += "totem." + name + ": " + std::to_string(value) + "\n";
  }
  for (const auto& [name, value] : Sorted(r.store())) {
    s += "store." + name + ": " + std::to_string(value) + "\n";
  }
  return s;
}

}  // namespace totemkv::tkv
