// Gateway filtering for process groups over the multiple-ring network (the
// paper's "gateways forward a message only toward rings where its groups
// have members"): the destination rings of a group multicast, computed by
// the origin from its ordered group state and the rings' members of its
// last global configuration. The multiple-ring layer (multi_ring.h,
// "Filtering by destination") then forwards the payload only toward those
// rings; the other rings get a payload-less stub at the same place in the
// order. Joins, leaves and state messages are not routed: every processor
// needs them (AddressedGroups().to_all).
//
// What this guarantees, with the group layer deciding delivery by the
// group state at the message's point of the total order: a multicast M to
// groups G is delivered, in the one order, exactly to the processors that
// are members of some group of G at M's point AND are on a destination
// ring. The destinations cover every ring holding a member of G in the
// state the origin had delivered when it submitted M; since that state
// only lags M's point, the only members missed are those whose ring held
// no member of G in the origin's state: a processor whose join (or the
// state exchange adding it) the origin had not delivered yet, on a ring
// with no other member of G. Every multicast the origin submits after
// delivering that join reaches it. Members never see a different order or
// a message the group state does not give them; missing is the only
// difference (a documented gap, not a reorder).
#ifndef TOTEM_CORE_GROUP_ROUTING_H_
#define TOTEM_CORE_GROUP_ROUTING_H_

#include <map>
#include <vector>

#include "totem/core/multi_ring.h"
#include "totem/types.h"

namespace totem::core {

struct GroupRoute {
  // No destinations: deliver on every ring (a member whose ring is not
  // known yet, or more rings than a message may name).
  bool everywhere = false;
  std::vector<RingNumber> rings;  // sorted, distinct; valid unless everywhere
};

// `ring_members`: GlobalConfiguration::ring_members of the origin's last
// global configuration; `members`: the members of the addressed groups (any
// order, repeats allowed); `origin_ring`: the origin's first local ring.
// For each member in ascending id order, if none of its rings is chosen yet
// its lowest ring is added (a gateway member needs only one). No members:
// {origin_ring}, so the message keeps its place in the order but no other
// ring gets its payload.
GroupRoute RouteGroupMulticast(const std::map<RingNumber, std::vector<NodeId>>& ring_members,
                               std::vector<NodeId> members, RingNumber origin_ring);

}  // namespace totem::core

#endif  // TOTEM_CORE_GROUP_ROUTING_H_
