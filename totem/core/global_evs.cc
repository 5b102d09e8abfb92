// Global configuration -> EVS transitional + regular events (global_evs.h).
#include "totem/core/global_evs.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace totem::core {
namespace {

std::vector<NodeId> Minus(const std::vector<NodeId>& a, const std::vector<NodeId>& b) {
  std::vector<NodeId> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

std::vector<NodeId> Intersect(const std::vector<NodeId>& a, const std::vector<NodeId>& b) {
  std::vector<NodeId> out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

}  // namespace

std::vector<ConfigurationEvent> GlobalEvsEvents(const ConfigurationEvent* previous,
                                                const GlobalConfiguration& g) {
  if (previous != nullptr && previous->id == g.id) return {};
  std::vector<NodeId> members = g.members;
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  const std::vector<NodeId> none;
  const std::vector<NodeId>& before = previous != nullptr ? previous->members : none;
  std::vector<ConfigurationEvent> events;
  if (previous != nullptr) {
    ConfigurationEvent t;
    t.kind = ConfigurationKind::kTransitional;
    t.id = g.id;
    t.members = Intersect(before, members);
    t.left = Minus(before, members);
    events.push_back(std::move(t));
  }
  ConfigurationEvent r;
  r.kind = ConfigurationKind::kRegular;
  r.id = g.id;
  r.members = members;
  r.joined = Minus(members, before);
  r.left = Minus(before, members);
  events.push_back(std::move(r));
  return events;
}

}  // namespace totem::core
