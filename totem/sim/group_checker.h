// The process group checker of the multiple-ring simulator (--groups,
// multi_ring_sim.h): fed every group view and group delivery each simulated
// processor (one run of a node) emits, at the total-order point (the
// MessageKey of the stream message or global configuration being applied)
// where the layer emitted it, it checks:
//  (a) two processors whose last view of group g at one point includes
//      them (so they saw every change of g there: views come to members
//      before or after a change) show identical member lists,
//      unless the stream brought them different membership messages (joins,
//      leaves, state messages) or configurations since the last global
//      configuration both delivered before that point: the multiple-ring
//      layer may deliver differing configurations at one key and drop a
//      message at some processors around a ring change (multi_ring.h,
//      "Deliberate limits"), and the group states then differ until the next
//      state exchange; such differences are counted (views_diverged);
//  (b) each processor's group events come at non-decreasing points, its
//      group messages in strictly increasing message keys, none after its
//      point;
//  (c) a group message is delivered only at a processor that is a member of
//      an addressed group at that point by its own views;
//  (d) any two processors deliver the group messages both delivered in the
//      same relative order;
//  (e) at quiescence (every live processor done syncing) every live
//      processor has the same group state (same exception as (a), counted
//      as states_diverged), naming only live processors, and its own views
//      agree with that state for the groups it is in.
// It also counts (never fails on) what the documented limits allow: a
// processor that was a member of an addressed group at a message's point
// (by its views) but never delivered the message.
#ifndef TOTEM_SIM_GROUP_CHECKER_H_
#define TOTEM_SIM_GROUP_CHECKER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "totem/core/multi_ring.h"
#include "totem/group_types.h"
#include "totem/types.h"

namespace totem::sim {

struct GroupCheckCounts {
  uint64_t views = 0;
  uint64_t deliveries = 0;
  // Members (by their own views, at the message's key) that never delivered
  // a group message: the stream never brought it (routing gap / multi-ring
  // drop), or it did and the layer did not deliver it.
  uint64_t missed_no_stream = 0;
  uint64_t missed_by_layer = 0;
  uint64_t views_diverged = 0;
  uint64_t states_diverged = 0;
};

class GroupChecker {
 public:
  using FailFn = std::function<void(const std::string&)>;
  explicit GroupChecker(FailFn fail) : fail_(std::move(fail)) {}

  // A new processor (a run of `node`); processors are numbered from 0 in
  // start order.
  void AddProcessor(uint32_t proc, NodeId node);
  // The stream message of group multicast `gm` has key `key` (recorded at
  // its first stream delivery anywhere).
  void NoteMessageKey(uint64_t gm, const core::MessageKey& key) { key_of_.try_emplace(gm, key); }
  // The processor delivered the stream message of `gm` (whatever the layer
  // did with it).
  void NoteStreamDelivery(uint32_t proc, uint64_t gm) { procs_[proc].stream.insert(gm); }
  // The processor delivered a join, leave or state message at `key`.
  void NoteMembership(uint32_t proc, const core::MessageKey& key) {
    procs_[proc].membership.push_back(key);
  }
  // The processor delivered global configuration `id` at `key`.
  void NoteConfiguration(uint32_t proc, ConfigurationId id, const core::MessageKey& key) {
    procs_[proc].configs.emplace_back(id, key);
  }

  void OnView(uint32_t proc, const core::MessageKey& point, const GroupView& view);
  void OnDelivery(uint32_t proc, const core::MessageKey& point, uint64_t gm,
                  const std::vector<std::string>& groups);

  // (d) and the missed counts; once, at the end.
  void Finish(const std::map<uint64_t, std::vector<std::string>>& addressed);
  // (e): `states` of every live processor (proc -> group -> members).
  void CheckQuiescent(const std::map<uint32_t, std::map<std::string, std::vector<NodeId>>>& states,
                      const std::set<NodeId>& live);

  const GroupCheckCounts& counts() const { return counts_; }

 private:
  struct Proc {
    NodeId node = kNoNode;
    bool have_view_point = false;
    core::MessageKey view_point;
    // group -> members of its last view at view_point
    std::map<std::string, std::vector<NodeId>> last_at_point;
    bool have_point = false;
    core::MessageKey point;
    bool have_msg = false;
    core::MessageKey last_msg;
    // group -> members by this processor's last view.
    std::map<std::string, std::vector<NodeId>> members;
    // group -> (point, members) of every view, in order.
    std::map<std::string, std::vector<std::pair<core::MessageKey, std::vector<NodeId>>>> history;
    std::vector<uint64_t> delivered;
    std::set<uint64_t> delivered_set;
    std::set<uint64_t> stream;
    std::vector<core::MessageKey> membership;  // increasing
    std::vector<std::pair<ConfigurationId, core::MessageKey>> configs;
  };
  // Whether processors `a` and `b` delivered different membership messages
  // between the last configuration both delivered before `point` (or the
  // start) and `point` (exclusive; no point: to the end).
  bool StreamsDiffer(uint32_t a, uint32_t b, const core::MessageKey* point) const;
  struct Mismatch {
    uint32_t a = 0, b = 0;
    core::MessageKey point;
    std::string what;
  };
  std::vector<Mismatch> mismatches_;  // (a), judged at Finish
  std::string Name(uint32_t proc) const;
  void Advance(uint32_t proc, const core::MessageKey& point, const std::string& what);
  // (a) for the views `proc` emitted at its last view point.
  void FlushPoint(uint32_t proc);

  FailFn fail_;
  std::map<uint32_t, Proc> procs_;
  std::map<uint64_t, core::MessageKey> key_of_;
  // (a): (group, point) -> members at the end of the point and who saw them
  // first.
  std::map<std::pair<std::string, core::MessageKey>, std::pair<std::vector<NodeId>, uint32_t>>
      views_;
  GroupCheckCounts counts_;
};

}  // namespace totem::sim

#endif  // TOTEM_SIM_GROUP_CHECKER_H_
