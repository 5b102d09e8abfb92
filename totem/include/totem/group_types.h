// Plain data of the process group interface (the paper's "Totem Process Group
// Interface"): the limits on group names and messages, the group membership
// views and group deliveries the layer hands to the application, and its
// counters. The behaviour lives in totem/core/process_groups.h (the pure
// layer) and totem/groups.h (GroupNode, the runtime API).
//
// A group member is a processor (NodeId): one process group endpoint per
// Totem node, as in the paper's one-process-per-processor examples. Groups
// are open: any processor may multicast to a group without being a member.
#ifndef TOTEM_GROUP_TYPES_H_
#define TOTEM_GROUP_TYPES_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "totem/types.h"

namespace totem {

// A group name is 1..kMaxGroupNameBytes bytes of printable ASCII without
// spaces (0x21..0x7E).
inline constexpr size_t kMaxGroupNameBytes = 128;
// One multicast addresses 1..kMaxGroupsPerMessage distinct groups.
inline constexpr size_t kMaxGroupsPerMessage = 16;
// A processor is a member of at most this many groups; further joins are
// dropped (identically at every processor, and counted).
inline constexpr size_t kMaxGroupsPerProcessor = 256;
// Distinct non-empty groups tracked in total; joins that would create more
// are dropped and counted.
inline constexpr size_t kMaxGroups = 4096;

// Why a group view changed.
enum class GroupViewReason : uint8_t {
  kJoin = 1,           // an ordered join message
  kLeave = 2,          // an ordered leave message
  kConfiguration = 3,  // processors left the ring configuration
  kSync = 4,           // a new configuration merged other processors' memberships
};
const char* GroupViewReasonName(GroupViewReason r);

// A group membership change, delivered in the total order to the processors
// that are members of the group before or after the change. `members` is
// the same at every such processor at the same point of the order; `joined`
// and `left` are relative to this processor's previous view of the group
// (after a partition heals, processors from different sides had different
// previous views).
struct GroupView {
  std::string group;
  std::vector<NodeId> members;  // sorted ascending; empty: the group is gone
  std::vector<NodeId> joined;   // sorted ascending
  std::vector<NodeId> left;     // sorted ascending
  GroupViewReason reason = GroupViewReason::kJoin;
  ConfigurationId config_id;  // the ring configuration it happened in
};

// One multicast delivered to this processor because it is a member of at
// least one of the addressed groups at that point of the total order.
// `payload` (and `groups`, in the runtime callback) are valid only for the
// duration of the callback.
struct GroupDelivery {
  std::vector<std::string> groups;  // every group the sender addressed, as sent
  NodeId sender = kNoNode;
  Guarantee guarantee = Guarantee::kAgreed;
  ConfigurationId config_id;
  ConfigurationKind config_kind = ConfigurationKind::kRegular;
  std::span<const uint8_t> payload;
};

// Totals since start, like totem::Counters. Every message the layer does not
// act on is counted under a drop reason.
struct GroupCounters {
  uint64_t joins_applied = 0;
  uint64_t leaves_applied = 0;
  uint64_t joins_redundant = 0;   // join of a group the sender was already in
  uint64_t leaves_redundant = 0;  // leave of a group the sender was not in
  uint64_t multicasts_delivered = 0;
  uint64_t multicasts_not_member = 0;  // addressed only to groups this processor is not in
  uint64_t views_delivered = 0;
  uint64_t syncs_sent = 0;       // state messages this processor asked to send
  uint64_t syncs_completed = 0;  // every member's state message arrived
  uint64_t syncs_forced = 0;     // the configuration changed before they all did
  uint64_t messages_held = 0;    // delivered while syncing, applied after it

  uint64_t drop_malformed = 0;        // not a valid group message
  uint64_t drop_stale_sync = 0;       // state message of another configuration
  uint64_t drop_duplicate_sync = 0;   // second state message of a sender
  uint64_t drop_too_many_groups = 0;  // join beyond kMaxGroups / kMaxGroupsPerProcessor
  uint64_t drop_hold_full = 0;        // held messages beyond the hold bound

  std::vector<std::pair<std::string_view, uint64_t>> Fields() const;
  std::string ToString() const;  // "key=value key=value ..."
};

}  // namespace totem

#endif  // TOTEM_GROUP_TYPES_H_
