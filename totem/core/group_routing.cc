// Destination rings of a group multicast (group_routing.h).
#include "totem/core/group_routing.h"

#include <algorithm>
#include <set>

namespace totem::core {

GroupRoute RouteGroupMulticast(const std::map<RingNumber, std::vector<NodeId>>& ring_members,
                               std::vector<NodeId> members, RingNumber origin_ring) {
  std::sort(members.begin(), members.end());
  members.erase(std::unique(members.begin(), members.end()), members.end());
  GroupRoute route;
  std::set<RingNumber> chosen;
  for (NodeId m : members) {
    bool covered = false;
    bool found = false;
    RingNumber lowest = 0;
    for (const auto& [ring, ring_nodes] : ring_members) {  // ascending ring numbers
      if (std::find(ring_nodes.begin(), ring_nodes.end(), m) == ring_nodes.end()) continue;
      if (!found) lowest = ring;
      found = true;
      covered = covered || chosen.count(ring) != 0;
    }
    if (!found) {
      route.everywhere = true;
      return route;
    }
    if (!covered) chosen.insert(lowest);
  }
  if (members.empty()) chosen.insert(origin_ring);
  if (chosen.size() > MultiRing::kMaxDestinations) {
    route.everywhere = true;
    return route;
  }
  route.rings.assign(chosen.begin(), chosen.end());
  return route;
}

}  // namespace totem::core
