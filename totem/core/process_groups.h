// The process group layer (the paper's "Totem Process Group Interface";
// corosync's totempg/CPG): named groups over ONE totally ordered delivery
// stream with extended-virtual-synchrony configuration events. It is a pure
// state machine: fed the stream's deliveries and configuration events in
// order, it emits group deliveries and group membership views in that same
// order, plus the state message a driver must submit. It does not care
// whether the stream comes from the single ring or the multiple-ring layer.
//
// Protocol (every processor delivering the stream runs this layer):
//  - Join, leave and multicast are ordered messages (see Encode*). Every
//    processor tracks the membership of every group, so all apply each join
//    and leave at the same point of the order; a multicast is delivered to
//    this processor iff it is a member of at least one addressed group there.
//  - Transitional configuration: processors not in it leave all their groups
//    at that event (the point is the same at every member of the
//    transitional configuration, by EVS).
//  - Regular configuration: its members may come from different partitions
//    with different group states, so each sends a state ("sync") message
//    with the groups it is in (as its own ordered joins/leaves left them).
//    Group messages delivered before every member's state message are held;
//    once the last one is delivered the state becomes the union of the
//    declarations (views for the differences are emitted) and the held
//    messages are applied in order. As corosync's CPG, but instead of a
//    sync barrier that stops senders, the layer holds deliveries: the point
//    of completion is the same at every member. If the configuration changes
//    before the sync completes, it is completed at the transitional event
//    with the state messages delivered so far (processors whose message
//    is missing count as in no group until the next sync).
// Deviation from the paper: members are processors, not processes; groups
// are open (senders need not be members).
//
// Gateway filtering hook: AddressedGroups(message) tells which groups a
// message addresses (or that it is membership traffic every processor
// needs); with HasMembers / MembersOf a multiple-ring gateway can forward a
// multicast only toward rings where one of its groups has a member. Over
// multiple rings the origin computes those rings (group_routing.h) and the
// multiple-ring layer filters; this layer is fed the global configurations
// as EVS events (global_evs.h) and is otherwise unchanged.
#ifndef TOTEM_CORE_PROCESS_GROUPS_H_
#define TOTEM_CORE_PROCESS_GROUPS_H_

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "totem/group_types.h"
#include "totem/status.h"
#include "totem/types.h"

namespace totem::core {

// ---- Wire format of group messages (the payload of one stream message) ----
// header:    magic u8 0xA7 | version u8 1 | type u8
// kJoin/kLeave: name_len u8 | name
// kMulticast:   group_count u8 | group_count x (name_len u8 | name) | payload
// kSync:        config rep u32 | config seq u64 | group_count u16 |
//               group_count x (name_len u8 | name)
// Integers little-endian. Names are validated (ValidateGroupName); a
// multicast's groups are distinct; a sync's groups are distinct and at most
// kMaxGroupsPerProcessor.
inline constexpr uint8_t kGroupMagic = 0xA7;
inline constexpr uint8_t kGroupWireVersion = 1;
enum class GroupMessageType : uint8_t { kJoin = 1, kLeave = 2, kMulticast = 3, kSync = 4 };
// The largest sync message (kMaxGroupsPerProcessor names of maximal size):
// the stream must accept messages of at least this size.
inline constexpr size_t kMaxGroupSyncBytes =
    3 + 4 + 8 + 2 + kMaxGroupsPerProcessor * (1 + kMaxGroupNameBytes);

Status ValidateGroupName(std::string_view name);
StatusOr<std::vector<uint8_t>> EncodeGroupJoin(std::string_view group);
StatusOr<std::vector<uint8_t>> EncodeGroupLeave(std::string_view group);
// Errors: kInvalidArgument (no groups, more than kMaxGroupsPerMessage, a
// bad or repeated name).
StatusOr<std::vector<uint8_t>> EncodeGroupMulticast(const std::vector<std::string>& groups,
                                                    std::span<const uint8_t> payload);
StatusOr<std::vector<uint8_t>> EncodeGroupSync(ConfigurationId config,
                                               const std::vector<std::string>& groups);

// A decoded group message; `payload` points into the decoded bytes.
struct GroupMessage {
  GroupMessageType type = GroupMessageType::kJoin;
  std::vector<std::string> groups;   // join/leave: one; multicast: 1..16; sync: 0..256
  ConfigurationId sync_config;       // kSync only
  std::span<const uint8_t> payload;  // kMulticast only
};
// Errors: kInvalidArgument with what is wrong (truncated, bad magic/version/
// type, bad name, repeated group, too many groups, trailing bytes).
StatusOr<GroupMessage> DecodeGroupMessage(std::span<const uint8_t> bytes);

// The filtering hook for gateways: which groups a message addresses.
// `to_all` is set for membership traffic (join, leave, sync), which every
// processor of every ring needs because every processor (and every gateway
// filter) tracks every group's membership. Errors as DecodeGroupMessage.
struct GroupAddress {
  bool to_all = false;
  std::vector<std::string> groups;  // multicast: the addressed groups
};
StatusOr<GroupAddress> AddressedGroups(std::span<const uint8_t> message);

// ---- The layer ----

// What a call emits, in order. A GroupDeliveryEvent owns a copy of its
// payload (deliveries may be held across inputs during a sync).
struct GroupDeliveryEvent {
  std::vector<std::string> groups;
  NodeId sender = kNoNode;
  Guarantee guarantee = Guarantee::kAgreed;
  ConfigurationId config_id;
  ConfigurationKind config_kind = ConfigurationKind::kRegular;
  std::vector<uint8_t> payload;
};
using GroupEvent = std::variant<GroupView, GroupDeliveryEvent>;

struct GroupOutput {
  std::vector<GroupEvent> events;
  // A state message the driver must submit to the stream (agreed is enough).
  // Submitting it late is fine; losing it stalls group delivery until the
  // next configuration.
  std::optional<std::vector<uint8_t>> send;
};

class ProcessGroups {
 public:
  // `max_held_bytes` bounds the payload bytes held during a sync; beyond it
  // messages are dropped (drop_hold_full), identically at every member.
  explicit ProcessGroups(NodeId self, uint64_t max_held_bytes = 64u << 20);

  // Feed the stream in order. Never fails: malformed input is counted.
  GroupOutput OnConfiguration(const ConfigurationEvent& event);
  GroupOutput OnDelivery(const Delivery& delivery);

  // The ordered state as of the last input.
  std::vector<NodeId> MembersOf(std::string_view group) const;  // sorted; empty if none
  bool HasMembers(const std::vector<std::string>& groups) const;
  std::map<std::string, std::vector<NodeId>> Snapshot() const;  // every non-empty group
  // The groups this processor is in by its own ordered joins and leaves.
  const std::set<std::string, std::less<>>& own_groups() const { return own_groups_; }
  bool syncing() const { return syncing_; }
  const GroupCounters& counters() const { return counters_; }
  NodeId self() const { return self_; }

 private:
  struct Held {
    NodeId sender = kNoNode;
    Guarantee guarantee = Guarantee::kAgreed;
    ConfigurationId config_id;
    ConfigurationKind config_kind = ConfigurationKind::kRegular;
    std::vector<uint8_t> bytes;  // the whole group message
  };

  void Apply(const GroupMessage& m, NodeId sender, Guarantee guarantee, ConfigurationId config_id,
             ConfigurationKind config_kind, GroupOutput& out);
  // Sets the membership of `group` and emits a view if this processor is a
  // member before or after.
  void SetMembers(const std::string& group, std::set<NodeId> members, GroupViewReason reason,
                  GroupOutput& out);
  void RemoveProcessorsNotIn(const std::vector<NodeId>& members, GroupOutput& out);
  // Installs the union of the declarations, emits views, replays held messages.
  void CompleteSync(bool forced, GroupOutput& out);
  void CheckInvariants() const;

  const NodeId self_;
  const uint64_t max_held_bytes_;
  // Ordered state: group -> members (never an empty set).
  std::map<std::string, std::set<NodeId>, std::less<>> groups_;
  // Groups per processor, for the per-processor bound.
  std::map<NodeId, size_t> groups_per_node_;
  std::set<std::string, std::less<>> own_groups_;
  ConfigurationId config_id_;
  ConfigurationKind config_kind_ = ConfigurationKind::kRegular;

  // Sync of the regular configuration sync_config_ (valid while syncing_).
  bool syncing_ = false;
  ConfigurationId sync_config_;
  std::vector<NodeId> sync_members_;
  std::map<NodeId, std::vector<std::string>> declared_;
  std::deque<Held> held_;
  uint64_t held_bytes_ = 0;

  GroupCounters counters_;
};

}  // namespace totem::core

#endif  // TOTEM_CORE_PROCESS_GROUPS_H_
