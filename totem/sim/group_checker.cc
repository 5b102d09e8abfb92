// The process group checker of the multiple-ring simulator (group_checker.h).
#include "totem/sim/group_checker.h"

#include <algorithm>
#include <iterator>
#include <unordered_map>
#include <utility>

namespace totem::sim {
namespace {

std::string KeyText(const core::MessageKey& k) {
  return std::to_string(k.timestamp) + "/" + std::to_string(k.source_ring) + "/" +
         std::to_string(k.origin) + "/" + std::to_string(k.origin_seq);
}

std::string List(const std::vector<NodeId>& ids) {
  std::string out = "{";
  for (NodeId id : ids) out += (out.size() > 1 ? "," : "") + std::to_string(id);
  return out + "}";
}

bool Contains(const std::vector<NodeId>& ids, NodeId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

void GroupChecker::AddProcessor(uint32_t proc, NodeId node) { procs_[proc].node = node; }

std::string GroupChecker::Name(uint32_t proc) const {
  return "n" + std::to_string(procs_.at(proc).node) + "/p" + std::to_string(proc);
}

void GroupChecker::Advance(uint32_t proc, const core::MessageKey& point, const std::string& what) {
  Proc& p = procs_[proc];
  if (p.have_point && point < p.point) {
    fail_("groups (b): " + Name(proc) + " " + what + " at point " + KeyText(point) + " after " +
          KeyText(p.point));
  }
  p.have_point = true;
  p.point = point;
}

void GroupChecker::OnView(uint32_t proc, const core::MessageKey& point, const GroupView& view) {
  counts_.views++;
  Proc& p = procs_[proc];
  Advance(proc, point, "view of " + view.group);
  if (!std::is_sorted(view.members.begin(), view.members.end())) {
    fail_("groups: " + Name(proc) + " view of " + view.group + " has unsorted members");
  }
  p.members[view.group] = view.members;
  p.history[view.group].emplace_back(point, view.members);
  // (a), once the point is over.
  if (p.have_view_point && p.view_point != point) FlushPoint(proc);
  p.have_view_point = true;
  p.view_point = point;
  p.last_at_point[view.group] = view.members;
}

void GroupChecker::FlushPoint(uint32_t proc) {
  Proc& p = procs_[proc];
  for (const auto& [group, members] : p.last_at_point) {
    // A processor whose last view of the point includes it saw every later
    // change there, so it shows the group as the point left it.
    if (!Contains(members, p.node)) continue;
    auto [it, fresh] = views_.try_emplace(std::make_pair(group, p.view_point), members, proc);
    if (!fresh && it->second.first != members) {
      mismatches_.push_back({proc, it->second.second, p.view_point,
                             "view of " + group + " at " + KeyText(p.view_point) + " has members " +
                                 List(members) + " at " + Name(proc) + " but " +
                                 List(it->second.first) + " at " + Name(it->second.second)});
    }
  }
  p.last_at_point.clear();
}

void GroupChecker::OnDelivery(uint32_t proc, const core::MessageKey& point, uint64_t gm,
                              const std::vector<std::string>& groups) {
  counts_.deliveries++;
  Proc& p = procs_[proc];
  const std::string what = "group message " + std::to_string(gm);
  Advance(proc, point, "delivered " + what);
  auto k = key_of_.find(gm);
  if (k == key_of_.end()) {
    fail_("groups: " + Name(proc) + " delivered " + what + " never delivered by the stream");
    return;
  }
  // (b)
  if (point < k->second) {
    fail_("groups (b): " + Name(proc) + " delivered " + what + " at " + KeyText(point) +
          ", before its key " + KeyText(k->second));
  }
  if (p.have_msg && !(p.last_msg < k->second)) {
    fail_("groups (b): " + Name(proc) + " delivered " + what + " (key " + KeyText(k->second) +
          ") after one with key " + KeyText(p.last_msg));
  }
  p.have_msg = true;
  p.last_msg = k->second;
  if (!p.delivered_set.insert(gm).second) {
    fail_("groups: " + Name(proc) + " delivered " + what + " twice");
  }
  p.delivered.push_back(gm);
  // (c)
  bool member = false;
  for (const std::string& g : groups) {
    auto m = p.members.find(g);
    if (m != p.members.end() && Contains(m->second, p.node)) member = true;
  }
  if (!member) {
    fail_("groups (c): " + Name(proc) + " delivered " + what +
          " but is in none of its groups by its own views");
  }
}

bool GroupChecker::StreamsDiffer(uint32_t a, uint32_t b, const core::MessageKey* point) const {
  const Proc& pa = procs_.at(a);
  const Proc& pb = procs_.at(b);
  // The last configuration both delivered before `point`.
  std::map<ConfigurationId, core::MessageKey> at_b(pb.configs.begin(), pb.configs.end());
  bool have_from = false;
  core::MessageKey from;
  for (const auto& [id, key] : pa.configs) {
    if (point != nullptr && !(key < *point)) break;
    auto it = at_b.find(id);
    if (it != at_b.end() && it->second == key) {
      have_from = true;
      from = key;
    }
  }
  // Membership messages and configurations (two processors may deliver
  // different configurations at one key: differing views, multi_ring.h).
  auto range = [&](const Proc& p) {
    std::vector<std::pair<core::MessageKey, ConfigurationId>> out;
    for (const core::MessageKey& k : p.membership) {
      if (have_from && !(from < k)) continue;
      if (point != nullptr && !(k < *point)) break;
      out.emplace_back(k, ConfigurationId{});
    }
    for (const auto& [id, k] : p.configs) {
      if (have_from && !(from < k)) continue;
      if (point != nullptr && !(k < *point)) break;
      out.emplace_back(k, id);
    }
    return out;
  };
  return range(pa) != range(pb);
}

void GroupChecker::Finish(const std::map<uint64_t, std::vector<std::string>>& addressed) {
  // (a)
  for (auto& [proc, p] : procs_) FlushPoint(proc);
  for (const Mismatch& m : mismatches_) {
    if (StreamsDiffer(m.a, m.b, &m.point)) {
      counts_.views_diverged++;
    } else {
      fail_("groups (a): " + m.what + " (both delivered the same membership messages)");
      return;
    }
  }
  // (d)
  for (auto a = procs_.begin(); a != procs_.end(); ++a) {
    for (auto b = std::next(a); b != procs_.end(); ++b) {
      std::unordered_map<uint64_t, size_t> pos;
      for (size_t i = 0; i < b->second.delivered.size(); ++i) pos[b->second.delivered[i]] = i;
      bool first = true;
      size_t last = 0;
      for (uint64_t gm : a->second.delivered) {
        auto it = pos.find(gm);
        if (it == pos.end()) continue;
        if (!first && it->second <= last) {
          fail_("groups (d): " + Name(a->first) + " and " + Name(b->first) +
                " deliver common group messages in different orders (at " + std::to_string(gm) +
                ")");
          return;
        }
        first = false;
        last = it->second;
      }
    }
  }
  // Missed: members by their views just before the key that never delivered.
  for (const auto& [gm, key] : key_of_) {
    auto groups = addressed.find(gm);
    if (groups == addressed.end()) continue;
    for (const auto& [proc, p] : procs_) {
      if (p.delivered_set.count(gm) || !p.have_point || p.point < key) continue;
      bool member = false;
      for (const std::string& g : groups->second) {
        auto h = p.history.find(g);
        if (h == p.history.end()) continue;
        const std::vector<NodeId>* at = nullptr;
        for (const auto& [point, members] : h->second) {
          if (!(point < key)) break;
          at = &members;
        }
        if (at != nullptr && Contains(*at, p.node)) member = true;
      }
      if (!member) continue;
      if (p.stream.count(gm)) {
        counts_.missed_by_layer++;
      } else {
        counts_.missed_no_stream++;
      }
    }
  }
}

void GroupChecker::CheckQuiescent(
    const std::map<uint32_t, std::map<std::string, std::vector<NodeId>>>& states,
    const std::set<NodeId>& live) {
  if (states.empty()) return;
  const auto& [first_proc, first] = *states.begin();
  for (const auto& [proc, state] : states) {
    if (state != first && StreamsDiffer(proc, first_proc, nullptr)) {
      counts_.states_diverged++;
    } else if (state != first) {
      std::string diff;
      for (const auto& [g, members] : state) {
        auto o = first.find(g);
        if (o == first.end() || o->second != members) {
          diff = g + " " + List(members) + " vs " +
                 (o == first.end() ? std::string("{}") : List(o->second));
          break;
        }
      }
      if (diff.empty()) {
        for (const auto& [g, members] : first) {
          if (!state.count(g)) diff = g + " {} vs " + List(members);
        }
      }
      fail_("groups (e): at quiescence " + Name(proc) + " and " + Name(first_proc) +
            " disagree on group state: " + diff);
      return;
    }
    const Proc& p = procs_[proc];
    for (const auto& [g, members] : state) {
      for (NodeId m : members) {
        if (!live.count(m)) {
          fail_("groups (e): at quiescence " + Name(proc) + " has node " + std::to_string(m) +
                ", which is down, in " + g);
          return;
        }
      }
      if (Contains(members, p.node)) {
        auto v = p.members.find(g);
        if (v == p.members.end() || v->second != members) {
          fail_("groups (e): " + Name(proc) + " is in " + g + " " + List(members) +
                " but its last view says " +
                (v == p.members.end() ? std::string("nothing") : List(v->second)));
          return;
        }
      }
    }
    for (const auto& [g, members] : p.members) {
      auto in_state = state.find(g);
      if (Contains(members, p.node) &&
          (in_state == state.end() || !Contains(in_state->second, p.node))) {
        fail_("groups (e): " + Name(proc) + "'s last view of " + g +
              " includes it but its state does not");
        return;
      }
    }
  }
}

}  // namespace totem::sim
