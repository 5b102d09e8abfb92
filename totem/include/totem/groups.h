// The public process group API: GroupNode, a totem::Node with named groups on
// top (the paper's "Totem Process Group Interface"; corosync's CPG). Join,
// leave and multicast are ordered messages of the ring, so group deliveries
// and group membership views come in the one total order, consistently
// across intersecting groups. The protocol is in totem/core/process_groups.h;
// the data types and limits in totem/group_types.h.
//
// Over the multiple-ring network (StartMultiRing): the same layer runs on
// the EVS stream of the global configurations (core/global_evs.h; sender =
// the message's origin), so the contract below holds across every ring, with
// "ring configuration" read as "global configuration". Multicasts are
// routed: gateways forward the payload only toward rings with a member of
// an addressed group (core/group_routing.h states exactly what that
// guarantees: a member whose join the sender had not delivered yet, on a
// ring with no other member, can miss the sender's multicasts until then).
// The multiple-ring layer may drop messages around a ring's configuration
// change (multi_ring.h, "Deliberate limits"), a processor's own included, so
// the node re-submits, at each new global configuration, the joins and
// leaves of this node that its ordered state does not show yet; multicasts
// are not re-sent. Deliveries before this processor's first global
// configuration carry config_id {}.
//
// Contract:
//  - Every processor of the ring must run a GroupNode: after each
//    configuration change every member sends a state message, and group
//    traffic is held until all of them are delivered.
//  - Join, Leave and Multicast may be called from any thread (and from the
//    callbacks). They never block: they return once the message is queued,
//    and take effect when it is delivered in the total order (the view with
//    this node in `joined`/`left` is the confirmation). Messages submitted
//    by one GroupNode are ordered in submit order. Errors: kInvalidArgument
//    (bad group name or group list, see group_types.h), kWouldBlock (submit
//    queue full; WaitWritable), kResourceExhausted (larger than
//    max_message_bytes with its group header), kUnavailable (stopped).
//    Joining a group twice or leaving one this node is not in is harmless.
//  - A multicast is delivered (on_group_deliver) at every processor that is
//    a member of at least one addressed group at that point of the order;
//    the sender need not be a member. Views (on_group_view) come to the
//    processors that are members before or after the change.
//  - A processor that leaves the ring configuration (crash, partition,
//    Stop) leaves all its groups at the same point of the order at every
//    remaining member (GroupViewReason::kConfiguration).
//  - Callbacks run on the node's I/O thread, one at a time, in the total
//    order, with Node's rules: no long blocking, no Stop() from inside.
//  - Stop (or the destructor) stops the node; no callback runs after it
//    returns.
#ifndef TOTEM_GROUPS_H_
#define TOTEM_GROUPS_H_

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "totem/config.h"
#include "totem/counters.h"
#include "totem/group_types.h"
#include "totem/multi_ring_node.h"
#include "totem/node.h"
#include "totem/status.h"
#include "totem/types.h"

namespace totem {

struct GroupCallbacks {
  std::function<void(const GroupDelivery&)> on_group_deliver;
  std::function<void(const GroupView&)> on_group_view;
  // Optional: the ring's configuration events, before the group layer acts
  // on them.
  std::function<void(const ConfigurationEvent&)> on_configuration;
};

class GroupNode {
 public:
  // Starts a Node (see Node::Start) with the group layer on top. Besides
  // Node's errors: kInvalidArgument if config.ring.max_message_bytes is
  // below the largest group state message (kMaxGroupSyncBytes in core).
  static StatusOr<std::unique_ptr<GroupNode>> Start(const NodeConfig& config,
                                                    GroupCallbacks callbacks);
  // Starts a MultiRingNode (see MultiRingNode::Start) with the group layer on
  // top; on_configuration gets the global configurations as EVS events.
  // Every processor of every ring must run one. Besides MultiRingNode's
  // errors: kInvalidArgument if a local ring's max_message_bytes is below
  // the largest group state message plus the multiple-ring envelope.
  static StatusOr<std::unique_ptr<GroupNode>> StartMultiRing(const MultiRingNodeConfig& config,
                                                             GroupCallbacks callbacks);
  virtual ~GroupNode() = default;

  virtual Status Join(std::string_view group) = 0;
  virtual Status Leave(std::string_view group) = 0;
  virtual Status Multicast(const std::vector<std::string>& groups, std::span<const uint8_t> payload,
                           Guarantee guarantee) = 0;
  virtual bool WaitWritable(std::chrono::milliseconds timeout) = 0;

  // The members of `group` in the ordered state (thread-safe). Tracks every
  // group, not only this node's. Updated per ring message, just before that
  // message's group events are handed to the callbacks.
  virtual std::vector<NodeId> Members(std::string_view group) const = 0;
  // True while group traffic is held for a configuration's state exchange.
  virtual bool Syncing() const = 0;
  virtual GroupCounters GetGroupCounters() const = 0;
  // Single ring: the ring's counters; multiple rings: the first local ring's.
  virtual Counters GetCounters() const = 0;
  // The multiple-ring layer's counters (all zero on a single ring).
  virtual core::MultiRingCounters GetMultiRingCounters() const = 0;
  virtual ConfigurationView CurrentConfiguration() const = 0;
  virtual void Stop() = 0;
};

}  // namespace totem

#endif  // TOTEM_GROUPS_H_
