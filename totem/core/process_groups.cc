// The process group layer: group message encoding and validation, and the
// ordered group state machine (see process_groups.h for the protocol).
#include "totem/core/process_groups.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <utility>

#include "totem/counters.h"

namespace totem {

const char* GroupViewReasonName(GroupViewReason r) {
  switch (r) {
    case GroupViewReason::kJoin:
      return "join";
    case GroupViewReason::kLeave:
      return "leave";
    case GroupViewReason::kConfiguration:
      return "configuration";
    case GroupViewReason::kSync:
      return "sync";
  }
  return "unknown";
}

std::vector<std::pair<std::string_view, uint64_t>> GroupCounters::Fields() const {
  return {
      {"joins_applied", joins_applied},
      {"leaves_applied", leaves_applied},
      {"joins_redundant", joins_redundant},
      {"leaves_redundant", leaves_redundant},
      {"multicasts_delivered", multicasts_delivered},
      {"multicasts_not_member", multicasts_not_member},
      {"views_delivered", views_delivered},
      {"syncs_sent", syncs_sent},
      {"syncs_completed", syncs_completed},
      {"syncs_forced", syncs_forced},
      {"messages_held", messages_held},
      {"drop_malformed", drop_malformed},
      {"drop_stale_sync", drop_stale_sync},
      {"drop_duplicate_sync", drop_duplicate_sync},
      {"drop_too_many_groups", drop_too_many_groups},
      {"drop_hold_full", drop_hold_full},
  };
}

std::string GroupCounters::ToString() const { return FormatCounterFields(Fields()); }

}  // namespace totem

namespace totem::core {
namespace {

constexpr size_t kGroupHeaderBytes = 3;

void PutU8(std::vector<uint8_t>& out, uint8_t v) { out.push_back(v); }
void PutLe(std::vector<uint8_t>& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutName(std::vector<uint8_t>& out, std::string_view name) {
  PutU8(out, static_cast<uint8_t>(name.size()));
  out.insert(out.end(), name.begin(), name.end());
}
std::vector<uint8_t> Header(GroupMessageType type) {
  return {kGroupMagic, kGroupWireVersion, static_cast<uint8_t>(type)};
}

// Checks a list of names: each valid, none repeated, at most `max`.
Status ValidateGroupList(const std::vector<std::string>& groups, size_t min, size_t max) {
  if (groups.size() < min || groups.size() > max) {
    return InvalidArgument("group count " + std::to_string(groups.size()) + " is not in [" +
                           std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  std::set<std::string_view> seen;
  for (const std::string& g : groups) {
    if (Status st = ValidateGroupName(g); !st.ok()) return st;
    if (!seen.insert(g).second) return InvalidArgument("group '" + g + "' is named twice");
  }
  return Status::Ok();
}

// A bounds-checked reader over one message.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> b) : b_(b) {}
  bool Le(uint64_t& v, int bytes) {
    if (b_.size() - pos_ < static_cast<size_t>(bytes)) return false;
    v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | b_[pos_ + static_cast<size_t>(i)];
    pos_ += static_cast<size_t>(bytes);
    return true;
  }
  Status Name(std::string& name) {
    uint64_t len = 0;
    if (!Le(len, 1)) return InvalidArgument("truncated before a group name length");
    if (b_.size() - pos_ < len) return InvalidArgument("truncated group name");
    name.assign(reinterpret_cast<const char*>(b_.data() + pos_), len);
    pos_ += len;
    return ValidateGroupName(name);
  }
  std::span<const uint8_t> Rest() const { return b_.subspan(pos_); }
  bool AtEnd() const { return pos_ == b_.size(); }

 private:
  std::span<const uint8_t> b_;
  size_t pos_ = 0;
};

std::vector<NodeId> Sorted(const std::set<NodeId>& s) { return {s.begin(), s.end()}; }

std::vector<NodeId> Minus(const std::set<NodeId>& a, const std::set<NodeId>& b) {
  std::vector<NodeId> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

}  // namespace

Status ValidateGroupName(std::string_view name) {
  if (name.empty()) return InvalidArgument("group name is empty");
  if (name.size() > kMaxGroupNameBytes) {
    return InvalidArgument("group name of " + std::to_string(name.size()) +
                           " bytes exceeds the limit of " + std::to_string(kMaxGroupNameBytes));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x21 || c > 0x7E) {
      return InvalidArgument("group name has byte 0x" + std::to_string(c) + " at offset " +
                             std::to_string(i) + " (printable ASCII without spaces only)");
    }
  }
  return Status::Ok();
}

StatusOr<std::vector<uint8_t>> EncodeGroupJoin(std::string_view group) {
  if (Status st = ValidateGroupName(group); !st.ok()) return st;
  std::vector<uint8_t> out = Header(GroupMessageType::kJoin);
  PutName(out, group);
  return out;
}

StatusOr<std::vector<uint8_t>> EncodeGroupLeave(std::string_view group) {
  if (Status st = ValidateGroupName(group); !st.ok()) return st;
  std::vector<uint8_t> out = Header(GroupMessageType::kLeave);
  PutName(out, group);
  return out;
}

StatusOr<std::vector<uint8_t>> EncodeGroupMulticast(const std::vector<std::string>& groups,
                                                    std::span<const uint8_t> payload) {
  if (Status st = ValidateGroupList(groups, 1, kMaxGroupsPerMessage); !st.ok()) return st;
  std::vector<uint8_t> out = Header(GroupMessageType::kMulticast);
  PutU8(out, static_cast<uint8_t>(groups.size()));
  for (const std::string& g : groups) PutName(out, g);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

StatusOr<std::vector<uint8_t>> EncodeGroupSync(ConfigurationId config,
                                               const std::vector<std::string>& groups) {
  if (Status st = ValidateGroupList(groups, 0, kMaxGroupsPerProcessor); !st.ok()) return st;
  std::vector<uint8_t> out = Header(GroupMessageType::kSync);
  PutLe(out, config.rep, 4);
  PutLe(out, config.seq, 8);
  PutLe(out, groups.size(), 2);
  for (const std::string& g : groups) PutName(out, g);
  return out;
}

StatusOr<GroupMessage> DecodeGroupMessage(std::span<const uint8_t> bytes) {
  if (bytes.size() < kGroupHeaderBytes) {
    return InvalidArgument("group message of " + std::to_string(bytes.size()) +
                           " bytes is shorter than its header");
  }
  if (bytes[0] != kGroupMagic) return InvalidArgument("not a group message (bad magic)");
  if (bytes[1] != kGroupWireVersion) {
    return InvalidArgument("unsupported group message version " + std::to_string(bytes[1]));
  }
  GroupMessage m;
  Reader r(bytes.subspan(kGroupHeaderBytes));
  auto read_names = [&](size_t count) -> Status {
    m.groups.resize(count);
    for (std::string& g : m.groups) {
      if (Status st = r.Name(g); !st.ok()) return st;
    }
    return Status::Ok();
  };
  uint64_t count = 0;
  switch (bytes[2]) {
    case static_cast<uint8_t>(GroupMessageType::kJoin):
    case static_cast<uint8_t>(GroupMessageType::kLeave): {
      m.type = static_cast<GroupMessageType>(bytes[2]);
      if (Status st = read_names(1); !st.ok()) return st;
      if (!r.AtEnd()) return InvalidArgument("trailing bytes after a join/leave");
      return m;
    }
    case static_cast<uint8_t>(GroupMessageType::kMulticast): {
      m.type = GroupMessageType::kMulticast;
      if (!r.Le(count, 1)) return InvalidArgument("truncated before the group count");
      if (count == 0 || count > kMaxGroupsPerMessage) {
        return InvalidArgument("multicast addresses " + std::to_string(count) + " groups");
      }
      if (Status st = read_names(count); !st.ok()) return st;
      if (Status st = ValidateGroupList(m.groups, 1, kMaxGroupsPerMessage); !st.ok()) return st;
      m.payload = r.Rest();
      return m;
    }
    case static_cast<uint8_t>(GroupMessageType::kSync): {
      m.type = GroupMessageType::kSync;
      uint64_t rep = 0;
      uint64_t seq = 0;
      if (!r.Le(rep, 4) || !r.Le(seq, 8) || !r.Le(count, 2)) {
        return InvalidArgument("truncated sync header");
      }
      m.sync_config = ConfigurationId{static_cast<NodeId>(rep), seq};
      if (count > kMaxGroupsPerProcessor) {
        return InvalidArgument("sync declares " + std::to_string(count) + " groups");
      }
      if (Status st = read_names(count); !st.ok()) return st;
      if (Status st = ValidateGroupList(m.groups, 0, kMaxGroupsPerProcessor); !st.ok()) return st;
      if (!r.AtEnd()) return InvalidArgument("trailing bytes after a sync");
      return m;
    }
    default:
      return InvalidArgument("unknown group message type " + std::to_string(bytes[2]));
  }
}

StatusOr<GroupAddress> AddressedGroups(std::span<const uint8_t> message) {
  StatusOr<GroupMessage> m = DecodeGroupMessage(message);
  if (!m.ok()) return m.status();
  GroupAddress a;
  if (m->type == GroupMessageType::kMulticast) {
    a.groups = std::move(m->groups);
  } else {
    a.to_all = true;
  }
  return a;
}

ProcessGroups::ProcessGroups(NodeId self, uint64_t max_held_bytes)
    : self_(self), max_held_bytes_(max_held_bytes) {}

GroupOutput ProcessGroups::OnConfiguration(const ConfigurationEvent& event) {
  GroupOutput out;
  // A sync interrupted by this change completes now, before the change: its
  // held messages were delivered in the old configuration.
  if (syncing_) CompleteSync(/*forced=*/true, out);
  config_id_ = event.id;
  config_kind_ = event.kind;
  RemoveProcessorsNotIn(event.members, out);
  if (event.kind == ConfigurationKind::kRegular) {
    syncing_ = true;
    sync_config_ = event.id;
    sync_members_ = event.members;
    declared_.clear();
    StatusOr<std::vector<uint8_t>> sync =
        EncodeGroupSync(event.id, std::vector<std::string>(own_groups_.begin(), own_groups_.end()));
    if (!sync.ok()) {  // own_groups_ is bounded and validated on the way in
      std::fprintf(stderr, "process groups: own state does not encode: %s\n",
                   sync.status().ToString().c_str());
      std::abort();
    }
    out.send = std::move(sync).value();
    ++counters_.syncs_sent;
  }
  CheckInvariants();
  return out;
}

GroupOutput ProcessGroups::OnDelivery(const Delivery& delivery) {
  GroupOutput out;
  StatusOr<GroupMessage> decoded = DecodeGroupMessage(delivery.payload);
  if (!decoded.ok()) {
    ++counters_.drop_malformed;
    return out;
  }
  GroupMessage& m = decoded.value();
  if (m.type == GroupMessageType::kSync) {
    const bool member =
        std::binary_search(sync_members_.begin(), sync_members_.end(), delivery.sender);
    if (!syncing_ || m.sync_config != sync_config_ || !member) {
      ++counters_.drop_stale_sync;
    } else if (!declared_.emplace(delivery.sender, std::move(m.groups)).second) {
      ++counters_.drop_duplicate_sync;
    } else if (declared_.size() == sync_members_.size()) {
      CompleteSync(/*forced=*/false, out);
    }
  } else if (syncing_) {
    if (held_bytes_ + delivery.payload.size() > max_held_bytes_) {
      ++counters_.drop_hold_full;
    } else {
      held_.push_back(Held{delivery.sender,
                           delivery.guarantee,
                           delivery.config_id,
                           delivery.config_kind,
                           {delivery.payload.begin(), delivery.payload.end()}});
      held_bytes_ += delivery.payload.size();
      ++counters_.messages_held;
    }
  } else {
    Apply(m, delivery.sender, delivery.guarantee, delivery.config_id, delivery.config_kind, out);
  }
  if (m.type != GroupMessageType::kMulticast) CheckInvariants();  // O(state): not per multicast
  return out;
}

void ProcessGroups::Apply(const GroupMessage& m, NodeId sender, Guarantee guarantee,
                          ConfigurationId config_id, ConfigurationKind config_kind,
                          GroupOutput& out) {
  switch (m.type) {
    case GroupMessageType::kJoin: {
      const std::string& g = m.groups[0];
      auto it = groups_.find(g);
      if (it != groups_.end() && it->second.count(sender) != 0) {
        ++counters_.joins_redundant;
        if (sender == self_) own_groups_.insert(g);
        return;
      }
      auto per_node = groups_per_node_.find(sender);
      if ((it == groups_.end() && groups_.size() >= kMaxGroups) ||
          (per_node != groups_per_node_.end() && per_node->second >= kMaxGroupsPerProcessor)) {
        ++counters_.drop_too_many_groups;
        return;
      }
      // own_groups_ is bounded too: after a forced sync it may hold groups
      // the ordered state does not (yet) list.
      if (sender == self_ && own_groups_.count(g) == 0 &&
          own_groups_.size() >= kMaxGroupsPerProcessor) {
        ++counters_.drop_too_many_groups;
        return;
      }
      std::set<NodeId> members = it == groups_.end() ? std::set<NodeId>{} : it->second;
      members.insert(sender);
      SetMembers(g, std::move(members), GroupViewReason::kJoin, out);
      if (sender == self_) own_groups_.insert(g);
      ++counters_.joins_applied;
      return;
    }
    case GroupMessageType::kLeave: {
      const std::string& g = m.groups[0];
      if (sender == self_) own_groups_.erase(g);
      auto it = groups_.find(g);
      if (it == groups_.end() || it->second.count(sender) == 0) {
        ++counters_.leaves_redundant;
        return;
      }
      std::set<NodeId> members = it->second;
      members.erase(sender);
      SetMembers(g, std::move(members), GroupViewReason::kLeave, out);
      ++counters_.leaves_applied;
      return;
    }
    case GroupMessageType::kMulticast: {
      bool member = false;
      for (const std::string& g : m.groups) {
        auto it = groups_.find(g);
        member = member || (it != groups_.end() && it->second.count(self_) != 0);
      }
      if (!member) {
        ++counters_.multicasts_not_member;
        return;
      }
      out.events.push_back(GroupDeliveryEvent{m.groups,
                                              sender,
                                              guarantee,
                                              config_id,
                                              config_kind,
                                              {m.payload.begin(), m.payload.end()}});
      ++counters_.multicasts_delivered;
      return;
    }
    case GroupMessageType::kSync:
      break;  // never held nor applied
  }
}

void ProcessGroups::SetMembers(const std::string& group, std::set<NodeId> members,
                               GroupViewReason reason, GroupOutput& out) {
  auto it = groups_.find(group);
  const std::set<NodeId> old = it == groups_.end() ? std::set<NodeId>{} : it->second;
  if (old == members) return;
  std::vector<NodeId> joined = Minus(members, old);
  std::vector<NodeId> left = Minus(old, members);
  for (NodeId n : joined) ++groups_per_node_[n];
  for (NodeId n : left) {
    if (--groups_per_node_[n] == 0) groups_per_node_.erase(n);
  }
  const bool was_member = old.count(self_) != 0;
  const bool is_member = members.count(self_) != 0;
  std::vector<NodeId> sorted = Sorted(members);
  if (members.empty()) {
    groups_.erase(it);
  } else if (it == groups_.end()) {
    groups_.emplace(group, std::move(members));
  } else {
    it->second = std::move(members);
  }
  if (was_member || is_member) {
    GroupView view;
    view.group = group;
    view.members = std::move(sorted);
    view.joined = std::move(joined);
    view.left = std::move(left);
    view.reason = reason;
    view.config_id = config_id_;
    out.events.emplace_back(std::in_place_type<GroupView>, std::move(view));
    ++counters_.views_delivered;
  }
}

void ProcessGroups::RemoveProcessorsNotIn(const std::vector<NodeId>& members, GroupOutput& out) {
  const std::set<NodeId> keep(members.begin(), members.end());
  std::vector<std::pair<std::string, std::set<NodeId>>> changes;
  for (const auto& [group, group_members] : groups_) {
    std::set<NodeId> kept;
    std::set_intersection(group_members.begin(), group_members.end(), keep.begin(), keep.end(),
                          std::inserter(kept, kept.end()));
    if (kept != group_members) changes.emplace_back(group, std::move(kept));
  }
  for (auto& [group, kept] : changes) {
    SetMembers(group, std::move(kept), GroupViewReason::kConfiguration, out);
  }
}

void ProcessGroups::CompleteSync(bool forced, GroupOutput& out) {
  // The union of the declarations, built in one deterministic order (node
  // ids ascending, names sorted) so that the kMaxGroups bound cuts the same
  // joins at every member.
  std::map<std::string, std::set<NodeId>, std::less<>> next;
  for (const auto& [node, groups] : declared_) {
    std::vector<std::string> sorted = groups;
    std::sort(sorted.begin(), sorted.end());
    for (const std::string& g : sorted) {
      auto it = next.find(g);
      if (it == next.end()) {
        if (next.size() >= kMaxGroups) {
          ++counters_.drop_too_many_groups;
          continue;
        }
        it = next.emplace(g, std::set<NodeId>{}).first;
      }
      it->second.insert(node);
    }
  }
  std::set<std::string, std::less<>> names;
  for (const auto& [g, m] : groups_) names.insert(g);
  for (const auto& [g, m] : next) names.insert(g);
  for (const std::string& g : names) {
    auto it = next.find(g);
    SetMembers(g, it == next.end() ? std::set<NodeId>{} : it->second, GroupViewReason::kSync, out);
  }
  syncing_ = false;
  declared_.clear();
  ++(forced ? counters_.syncs_forced : counters_.syncs_completed);
  std::deque<Held> held;
  held.swap(held_);
  held_bytes_ = 0;
  for (const Held& h : held) {
    StatusOr<GroupMessage> m = DecodeGroupMessage(h.bytes);
    if (m.ok()) Apply(m.value(), h.sender, h.guarantee, h.config_id, h.config_kind, out);
  }
}

void ProcessGroups::CheckInvariants() const {
  std::map<NodeId, size_t> per_node;
  for (const auto& [group, members] : groups_) {
    if (members.empty()) {
      std::fprintf(stderr, "process groups: group '%s' is stored with no members\n", group.c_str());
      std::abort();
    }
    for (NodeId n : members) ++per_node[n];
  }
  if (per_node != groups_per_node_ || groups_.size() > kMaxGroups) {
    std::fprintf(stderr, "process groups: per-processor group counts out of step\n");
    std::abort();
  }
  if (!syncing_ && (!held_.empty() || held_bytes_ != 0)) {
    std::fprintf(stderr, "process groups: messages held outside a sync\n");
    std::abort();
  }
}

std::vector<NodeId> ProcessGroups::MembersOf(std::string_view group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? std::vector<NodeId>{} : Sorted(it->second);
}

bool ProcessGroups::HasMembers(const std::vector<std::string>& groups) const {
  for (const std::string& g : groups) {
    if (groups_.find(g) != groups_.end()) return true;
  }
  return false;
}

std::map<std::string, std::vector<NodeId>> ProcessGroups::Snapshot() const {
  std::map<std::string, std::vector<NodeId>> s;
  for (const auto& [g, m] : groups_) s.emplace(g, Sorted(m));
  return s;
}

}  // namespace totem::core
