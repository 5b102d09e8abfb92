// The view table and global configurations of the multiple-ring layer (see
// global_view.h and multi_ring.h, "Global configurations").
#include "totem/core/global_view.h"

#include <algorithm>
#include <deque>
#include <iterator>
#include <set>
#include <tuple>

namespace totem::core {

namespace {
bool Intersect(const std::vector<NodeId>& a, const std::vector<NodeId>& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] == b[j]) return true;
    if (a[i] < b[j]) {
      ++i;
    } else {
      ++j;
    }
  }
  return false;
}
// Which of two reports of one ring that share a member is newer: the ring's
// configuration seq orders them (it only grows, also across restarts, and a
// shared member was in both), not the key (a ring whose members all
// restarted stamps low timestamps again).
bool Newer(const RingReport& a, const RingReport& b) {
  return std::tie(a.config.seq, a.key) > std::tie(b.config.seq, b.key);
}
bool Holds(const RingReport& r, NodeId node) {
  return std::binary_search(r.members.begin(), r.members.end(), node);
}
}  // namespace

bool Covers(const ViewTable& table, RingNumber ring, const RingReport& report) {
  auto it = table.find(ring);
  if (it == table.end()) return false;
  for (const RingReport& e : it->second) {
    if (e.key == report.key) return true;
    if (Newer(e, report) && Intersect(e.members, report.members)) return true;
  }
  return false;
}

bool ApplyRingReport(RingNumber ring, const RingReport& report, ViewTable& table) {
  if (Covers(table, ring, report)) return false;
  std::vector<RingReport>& components = table[ring];
  std::erase_if(components,
                [&](const RingReport& e) { return Intersect(e.members, report.members); });
  auto at =
      std::lower_bound(components.begin(), components.end(), report,
                       [](const RingReport& x, const RingReport& y) { return x.key < y.key; });
  components.insert(at, report);
  return true;
}

bool MergeViewTable(const ViewTable& from, ViewTable& into) {
  std::vector<std::pair<RingNumber, const RingReport*>> reports;
  for (const auto& [ring, components] : from) {
    for (const RingReport& r : components) reports.emplace_back(ring, &r);
  }
  std::sort(reports.begin(), reports.end(),
            [](const auto& x, const auto& y) { return Newer(*y.second, *x.second); });
  bool changed = false;
  for (const auto& [ring, report] : reports) changed |= ApplyRingReport(ring, *report, into);
  return changed;
}

bool ComputeGlobalConfiguration(const ViewTable& table, const std::vector<RingNumber>& rings,
                                NodeId self, const std::vector<RingNumber>& local_rings,
                                const std::vector<GatewayLink>& links, const MessageKey& key,
                                GlobalConfiguration* out, ViewComponents* used) {
  // A component: (ring, index in the ring's entry).
  using Component = std::pair<RingNumber, size_t>;
  auto holding = [&](RingNumber ring, NodeId node, Component* c) {
    const std::vector<RingReport>& list = table.at(ring);
    for (size_t i = 0; i < list.size(); ++i) {
      if (Holds(list[i], node)) {
        *c = {ring, i};
        return true;
      }
    }
    return false;
  };
  std::set<Component> reach;
  std::deque<Component> frontier;
  for (RingNumber r : local_rings) {
    Component c;
    if (!table.count(r) || !holding(r, self, &c)) return false;
    if (reach.insert(c).second) frontier.push_back(c);
  }
  while (!frontier.empty()) {
    const auto [u, index] = frontier.front();
    frontier.pop_front();
    const RingReport& near = table.at(u)[index];
    for (const GatewayLink& l : links) {
      RingNumber v = 0;
      if (l.ring_a == u) {
        v = l.ring_b;
      } else if (l.ring_b == u) {
        v = l.ring_a;
      } else {
        continue;
      }
      if (!Holds(near, l.gateway)) continue;
      if (!table.count(v)) return false;  // the edge may be live: members unknown
      Component c;
      if (holding(v, l.gateway, &c) && reach.insert(c).second) frontier.push_back(c);
    }
  }
  GlobalConfiguration g;
  g.key = key;
  ViewComponents components;
  std::vector<std::vector<NodeId>> component_members;
  std::set<NodeId> all;
  for (const auto& [ring, index] : reach) {
    const RingReport& r = table.at(ring)[index];
    std::vector<NodeId>& m = g.ring_members[ring];
    std::vector<NodeId> merged;
    std::set_union(m.begin(), m.end(), r.members.begin(), r.members.end(),
                   std::back_inserter(merged));
    m = std::move(merged);
    all.insert(r.members.begin(), r.members.end());
    components.emplace_back(ring, r.config);
    component_members.push_back(r.members);
  }
  g.members.assign(all.begin(), all.end());
  std::vector<RingNumber> sorted = rings;
  std::sort(sorted.begin(), sorted.end());
  const auto pos = std::lower_bound(sorted.begin(), sorted.end(), key.source_ring) - sorted.begin();
  const uint64_t ring_index = std::min<uint64_t>(static_cast<uint64_t>(pos), 0xFF);
  g.id.rep = g.members.empty() ? kNoNode : g.members.front();
  // The digest also covers the rest of the key: two configurations of one
  // view at keys that differ only there (two parts of a partitioned ring
  // stamping the same timestamp) must not share an id.
  const uint16_t key_bits = static_cast<uint16_t>(
      (key.origin * 0x9E37u) ^ (key.origin_seq * 0x85EBCA6Bull >> 16) ^ (key.origin_seq >> 32));
  g.id.seq = (key.timestamp << 24) | (ring_index << 16) |
             static_cast<uint16_t>(ViewDigest(components, component_members) ^ key_bits);
  *out = std::move(g);
  *used = std::move(components);
  return true;
}

uint16_t ViewDigest(const ViewComponents& used, const std::vector<std::vector<NodeId>>& members) {
  uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a over 64-bit words
  auto mix = [&h](uint64_t v) {
    h ^= v;
    h *= 0x100000001B3ull;
    h ^= h >> 29;
  };
  for (size_t i = 0; i < used.size(); ++i) {
    mix(0x52000000ull | used[i].first);
    mix(used[i].second.rep);
    mix(used[i].second.seq);
    mix(members[i].size());
    for (NodeId n : members[i]) mix(n);
  }
  return static_cast<uint16_t>(h ^ (h >> 16) ^ (h >> 32) ^ (h >> 48));
}

void EncodeRingReport(const ConfigurationId& config, const std::vector<NodeId>& members,
                      Writer& w) {
  w.U32(config.rep);
  w.U64(config.seq);
  const size_t n = std::min(members.size(), kMaxReportMembers);
  w.U16(static_cast<uint16_t>(n));
  for (size_t i = 0; i < n; ++i) w.U32(members[i]);
}

bool DecodeRingReport(Reader& r, ConfigurationId* config, std::vector<NodeId>* members) {
  config->rep = r.U32();
  config->seq = r.U64();
  const uint16_t n = r.U16();
  if (!r.ok() || n == 0 || n > kMaxReportMembers) return false;
  members->clear();
  members->reserve(n);
  for (uint16_t i = 0; i < n; ++i) {
    const NodeId id = r.U32();
    if (!r.ok() || id == kNoNode || (!members->empty() && id <= members->back())) return false;
    members->push_back(id);
  }
  return true;
}

void EncodeViewTable(const ViewTable& table, Writer& w) {
  size_t n = 0;
  for (const auto& [ring, components] : table) n += components.size();
  n = std::min(n, kMaxTableEntries);
  w.U16(static_cast<uint16_t>(n));
  size_t i = 0;
  for (const auto& [ring, components] : table) {
    for (const RingReport& report : components) {
      if (i++ == n) return;
      w.U32(ring);
      w.U64(report.key.timestamp);
      w.U32(report.key.source_ring);
      w.U32(report.key.origin);
      w.U64(report.key.origin_seq);
      EncodeRingReport(report.config, report.members, w);
    }
  }
}

bool DecodeViewTable(Reader& r, const std::vector<RingNumber>& rings, ViewTable* table) {
  table->clear();
  const uint16_t n = r.U16();
  if (!r.ok() || n > kMaxTableEntries) return false;
  bool first = true;
  RingNumber last_ring = 0;
  MessageKey last_key;
  for (uint16_t i = 0; i < n; ++i) {
    const RingNumber ring = r.U32();
    RingReport report;
    report.key.timestamp = r.U64();
    report.key.source_ring = r.U32();
    report.key.origin = r.U32();
    report.key.origin_seq = r.U64();
    const bool ascending =
        first || ring > last_ring || (ring == last_ring && last_key < report.key);
    if (!r.ok() || !ascending || report.key.source_ring != ring ||
        std::find(rings.begin(), rings.end(), ring) == rings.end() ||
        !DecodeRingReport(r, &report.config, &report.members)) {
      return false;
    }
    std::vector<RingReport>& components = (*table)[ring];
    for (const RingReport& other : components) {
      if (Intersect(other.members, report.members)) return false;
    }
    first = false;
    last_ring = ring;
    last_key = report.key;
    components.push_back(std::move(report));
  }
  return true;
}

}  // namespace totem::core
