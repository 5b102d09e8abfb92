// The simulator's checker (see checker.h): incremental checks per
// observation (integrity, configuration structure, consensus, gap-free
// regular delivery, safe delivery against the members still in the ring),
// then whole-history checks at Finish (self-delivery, failure atomicity,
// safe delivery at every member, one total order).
#include "totem/sim/checker.h"

#include <algorithm>
#include <functional>
#include <iterator>
#include <sstream>
#include <utility>

#include "totem/sim/random.h"

namespace totem::sim {

namespace {

void PutU32(std::vector<uint8_t>& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
void PutU64(std::vector<uint8_t>& b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t GetLE(std::span<const uint8_t> b, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(b[at + i]) << (8 * i);
  return v;
}

std::string KeyString(MessageKey k) {
  return "msg(" + std::to_string(k.sender) + "#" + std::to_string(k.index) + ")";
}

}  // namespace

std::string ViewString(const CoreView& v) {
  std::ostringstream s;
  s << MemberStateName(v.state) << " ring=" << v.ring_id.rep << "/" << v.ring_id.seq
    << " aru=" << v.aru << " delivered_up_to=" << v.delivered_up_to
    << " safe_up_to=" << v.safe_up_to << " high_seq=" << v.high_seq
    << " buffered=" << v.buffered_frames;
  return s.str();
}

std::vector<uint8_t> MakePayload(uint64_t seed, MessageKey key, size_t size) {
  size = std::max(size, kPayloadHeaderBytes);
  std::vector<uint8_t> p(size);
  PutU32(p, 0, kPayloadMagic);
  PutU32(p, 4, key.sender);
  PutU64(p, 8, key.index);
  uint64_t state = Mix64(seed ^ Mix64((static_cast<uint64_t>(key.sender) << 40) ^ key.index));
  for (size_t i = kPayloadHeaderBytes; i < size; i += 8) {
    uint64_t r = SplitMix64(state);
    for (size_t j = i; j < std::min(size, i + 8); ++j) {
      p[j] = static_cast<uint8_t>(r);
      r >>= 8;
    }
  }
  return p;
}

std::optional<MessageKey> ParsePayload(std::span<const uint8_t> payload) {
  if (payload.size() < kPayloadHeaderBytes) return std::nullopt;
  if (GetLE(payload, 0, 4) != kPayloadMagic) return std::nullopt;
  MessageKey k;
  k.sender = static_cast<NodeId>(GetLE(payload, 4, 4));
  k.index = GetLE(payload, 8, 8);
  return k;
}

const char* MemberStateName(MemberState s) {
  switch (s) {
    case MemberState::kOperational:
      return "operational";
    case MemberState::kGather:
      return "gather";
    case MemberState::kCommit:
      return "commit";
    case MemberState::kRecovery:
      return "recovery";
  }
  return "unknown";
}

namespace {

std::string ListString(const std::vector<NodeId>& v) {
  std::string s = "{";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "}";
}

std::vector<NodeId> Minus(const std::vector<NodeId>& a, const std::vector<NodeId>& b) {
  std::vector<NodeId> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

bool SortedUnique(const std::vector<NodeId>& v) {
  return std::adjacent_find(v.begin(), v.end(), std::greater_equal<NodeId>()) == v.end();
}

bool Contains(const std::vector<NodeId>& v, NodeId x) {
  return std::binary_search(v.begin(), v.end(), x);
}

}  // namespace

Checker::Checker(std::vector<NodeId> members, uint32_t receive_buffer_frames,
                 bool static_membership)
    : static_(static_membership),
      members_(std::move(members)),
      receive_buffer_frames_(receive_buffer_frames) {
  std::sort(members_.begin(), members_.end());
  for (NodeId m : members_) {
    Process p;
    p.node = m;
    current_[m] = processes_.size();
    processes_.push_back(std::move(p));
  }
}

void Checker::Violation(NodeId node, const std::string& what) {
  ++violations_;
  if (violations_ == 1) {
    first_violation_ =
        "t=" + std::to_string(now_us_) + "us node=" + std::to_string(node) + ": " + what;
  }
}

void Checker::Fail(const std::string& what) {
  ++violations_;
  if (violations_ == 1) first_violation_ = "t=" + std::to_string(now_us_) + "us: " + what;
}

Checker::Process* Checker::Current(NodeId node, const char* what) {
  auto it = current_.find(node);
  if (it == current_.end()) {
    Violation(node, std::string(what) + " at a node that is not a member");
    return nullptr;
  }
  Process& p = processes_[it->second];
  if (p.crashed) {
    Violation(node, std::string(what) + " at a crashed node");
    return nullptr;
  }
  return &p;
}

const Checker::Process* Checker::CurrentConst(NodeId node) const {
  auto it = current_.find(node);
  if (it == current_.end()) return nullptr;
  const Process& p = processes_[it->second];
  return p.crashed ? nullptr : &p;
}

std::string Checker::Name(const Process& p) const {
  return "node " + std::to_string(p.node) + "#" + std::to_string(p.incarnation);
}

std::string Checker::ConfigName(size_t config) const {
  const Config& c = configs_[config];
  const auto& [kind, id, prev] = c.key;
  std::string s = kind == ConfigurationKind::kRegular ? "regular " : "transitional ";
  s += id.ToString();
  if (kind == ConfigurationKind::kTransitional) s += " (after " + prev.ToString() + ")";
  return s + " " + ListString(c.members);
}

void Checker::OnCrash(NodeId node) {
  Process* p = Current(node, "crash");
  if (p != nullptr) p->crashed = true;
}

void Checker::OnRestart(NodeId node, bool with_state) {
  auto it = current_.find(node);
  if (it == current_.end() || !processes_[it->second].crashed) {
    Violation(node, "restart of a node that is up or unknown");
    return;
  }
  Process p;
  p.node = node;
  p.incarnation = processes_[it->second].incarnation + 1;
  it->second = processes_.size();
  processes_.push_back(std::move(p));
  if (!with_state) max_seq_by_node_.erase(node);
}

bool Checker::IsUp(NodeId node) const { return CurrentConst(node) != nullptr; }

bool Checker::InRegular(NodeId node, const RingId& id) const {
  const Process* p = CurrentConst(node);
  if (p == nullptr || p->segments.empty()) return false;
  const Config& c = configs_[p->segments.back().config];
  return std::get<0>(c.key) == ConfigurationKind::kRegular && std::get<1>(c.key) == id;
}

void Checker::OnSubmitted(MessageKey key, Guarantee guarantee, std::vector<uint8_t> payload) {
  auto& list = submitted_[key.sender];
  if (key.index != list.size() + 1) {
    Fail("workload bug: " + KeyString(key) + " registered out of sequence");
    return;
  }
  auto it = current_.find(key.sender);
  if (it == current_.end() || processes_[it->second].crashed) {
    Fail("workload bug: " + KeyString(key) + " submitted at a node that is down");
    return;
  }
  list.push_back(Submitted{guarantee, std::move(payload), it->second});
  processes_[it->second].own.push_back(key);
  ++submitted_count_;
}

void Checker::Withdraw(MessageKey key) {
  auto& list = submitted_[key.sender];
  if (key.index != list.size() || list.empty()) {
    Fail("workload bug: withdrawing " + KeyString(key) + " which is not the latest");
    return;
  }
  Process& submitter = processes_[list.back().process];
  if (!submitter.own.empty() && submitter.own.back() == key) submitter.own.pop_back();
  list.pop_back();
  --submitted_count_;
  // A core that delivered it during the refused Submit invented a message.
  for (const Process& p : processes_) {
    if (p.delivered.count(key)) {
      Violation(p.node, "delivered " + KeyString(key) + " although Submit refused it");
    }
  }
}

// The shape of a configuration event relative to the process's history.
void Checker::CheckStructure(Process& p, const ConfigurationEvent& e) {
  const NodeId node = p.node;
  if (!SortedUnique(e.members) || !SortedUnique(e.joined) || !SortedUnique(e.left)) {
    Violation(node, "configuration lists not sorted / unique: members " + ListString(e.members));
  }
  if (!Contains(e.members, node)) {
    Violation(node, "configuration " + e.id.ToString() + " " + ListString(e.members) +
                        " does not contain the node itself");
  }
  for (NodeId m : e.members) {
    if (!std::binary_search(members_.begin(), members_.end(), m)) {
      Violation(node, "configuration lists unknown node " + std::to_string(m));
    }
  }
  const Config* last = p.segments.empty() ? nullptr : &configs_[p.segments.back().config];
  const bool last_regular = last && std::get<0>(last->key) == ConfigurationKind::kRegular;
  if (e.kind == ConfigurationKind::kRegular) {
    if (e.members.empty() || e.id.rep != e.members.front()) {
      Violation(node, "regular configuration " + e.id.ToString() +
                          " is not represented by its lowest member " + ListString(e.members));
    }
    std::vector<NodeId> expect_joined = e.members;
    std::vector<NodeId> expect_left;
    if (last == nullptr) {
      // A fresh process: only the regular configuration, everyone joined.
    } else if (last_regular) {
      Violation(node, "regular configuration " + e.id.ToString() +
                          " without a transitional configuration after " +
                          ConfigName(p.segments.back().config));
    } else {
      if (std::get<1>(last->key) != e.id) {
        Violation(node, "regular configuration " + e.id.ToString() +
                            " after a transitional configuration announcing " +
                            std::get<1>(last->key).ToString());
      }
      const std::vector<NodeId>& trans = last->members;
      if (!std::includes(e.members.begin(), e.members.end(), trans.begin(), trans.end())) {
        Violation(node, "transitional members " + ListString(trans) +
                            " are not all in the regular configuration " + ListString(e.members));
      }
      expect_joined = Minus(e.members, trans);
      const Config& prev = configs_[*p.last_regular];
      expect_left = Minus(prev.members, e.members);
    }
    if (e.joined != expect_joined || e.left != expect_left) {
      Violation(node, "regular configuration " + e.id.ToString() + " " + ListString(e.members) +
                          ": joined " + ListString(e.joined) + " left " + ListString(e.left) +
                          ", expected joined " + ListString(expect_joined) + " left " +
                          ListString(expect_left));
    }
    if (p.last_regular) {
      const RingId& prev_id = std::get<1>(configs_[*p.last_regular].key);
      if (e.id.seq <= prev_id.seq) {
        Violation(node,
                  "ring seq did not increase: " + e.id.ToString() + " after " + prev_id.ToString());
      }
    }
    auto& seen = installed_by_node_[node];
    if (!seen.insert(e.id).second) {
      Violation(node, "installs ring id " + e.id.ToString() +
                          " a second time (ring ids must never be reused, also across "
                          "restarts)");
    }
    // The rings a node represents keep increasing across restarts with
    // its state file (other nodes' ring ids are theirs to keep unique).
    if (e.id.rep == node) {
      auto ms = max_seq_by_node_.find(node);
      if (ms != max_seq_by_node_.end() && e.id.seq <= ms->second) {
        Violation(node, "represents ring " + e.id.ToString() + " but had represented seq " +
                            std::to_string(ms->second) +
                            " before (ring seqs must increase, "
                            "also across a restart with the state file)");
      }
      max_seq_by_node_[node] = std::max(max_seq_by_node_[node], e.id.seq);
    }
  } else {
    if (!last_regular) {
      Violation(node, "transitional configuration " + e.id.ToString() +
                          " not preceded by a regular configuration");
      return;
    }
    if (!std::includes(last->members.begin(), last->members.end(), e.members.begin(),
                       e.members.end())) {
      Violation(node, "transitional members " + ListString(e.members) +
                          " are not a subset of the previous regular configuration " +
                          ConfigName(p.segments.back().config));
    }
    const std::vector<NodeId> expect_left = Minus(last->members, e.members);
    if (!e.joined.empty() || e.left != expect_left) {
      Violation(node, "transitional configuration " + e.id.ToString() + ": joined " +
                          ListString(e.joined) + " left " + ListString(e.left) +
                          ", expected joined {} left " + ListString(expect_left));
    }
    if (e.id.seq <= std::get<1>(last->key).seq) {
      Violation(node, "transitional configuration " + e.id.ToString() +
                          " does not announce a newer ring than " +
                          std::get<1>(last->key).ToString());
    }
  }
}

void Checker::OnConfiguration(NodeId node, const ConfigurationEvent& event, const CoreView& core) {
  Process* p = Current(node, "configuration");
  if (p == nullptr) return;
  ++configuration_events_;
  if (static_) {
    if (!p->segments.empty()) {
      Violation(node, "second configuration event (" +
                          std::string(ConfigurationKindName(event.kind)) + " " +
                          event.id.ToString() + "); membership must not change in this run");
      return;
    }
    if (event.kind != ConfigurationKind::kRegular) {
      Violation(node, "first configuration event is not regular");
    }
    if (event.members != members_) {
      Violation(node, "initial configuration does not list exactly the members (got " +
                          ListString(event.members) + ")");
    }
  }
  CheckStructure(*p, event);
  if (event.id != core.ring_id) {
    Violation(node, std::string(ConfigurationKindName(event.kind)) + " configuration id " +
                        event.id.ToString() + " != core ring id " + core.ring_id.ToString());
  }

  RingId prev;
  if (event.kind == ConfigurationKind::kTransitional && p->last_regular) {
    prev = std::get<1>(configs_[*p->last_regular].key);
  }
  const ConfigKey key{event.kind, event.id, prev};
  auto [it, fresh] = config_index_.try_emplace(key, configs_.size());
  if (fresh) {
    Config c;
    c.key = key;
    c.members = event.members;
    configs_.push_back(std::move(c));
  }
  Config& c = configs_[it->second];
  if (c.members != event.members) {
    Violation(node, "consensus: " + std::string(ConfigurationKindName(event.kind)) +
                        " configuration " + event.id.ToString() + " has members " +
                        ListString(event.members) + " here but " + ListString(c.members) + " at " +
                        Name(processes_[c.installers.front()]));
  }
  c.installers.push_back(current_[node]);
  p->history.push_back(Item{true, it->second, {}});
  p->segments.push_back(Segment{it->second, {}});
  if (event.kind == ConfigurationKind::kRegular) {
    p->last_regular = it->second;
    p->last_frame_seq = 0;
  }
}

void Checker::OnDelivery(NodeId node, const Delivery& d, const CoreView& core,
                         bool all_members_received) {
  Process* p = Current(node, "delivery");
  if (p == nullptr) return;
  ++deliveries_;
  if (p->segments.empty()) {
    Violation(node, "delivery before the initial configuration event");
    return;
  }
  const size_t config = p->segments.back().config;
  Config& c = configs_[config];
  const auto& [kind, id, prev] = c.key;
  if (d.config_id != id || d.config_kind != kind) {
    Violation(node, std::string("delivery marked ") + ConfigurationKindName(d.config_kind) + " " +
                        d.config_id.ToString() + " but the node is in " + ConfigName(config));
  }

  // Identity and integrity: the message must be one that was submitted,
  // byte for byte, with the sender and guarantee it was submitted with.
  std::optional<MessageKey> key = ParsePayload(d.payload);
  if (!key) {
    Violation(node, "invented message: unrecognisable payload of " +
                        std::to_string(d.payload.size()) +
                        " bytes (frame_seq=" + std::to_string(d.frame_seq) + ")");
    return;
  }
  auto sit = submitted_.find(key->sender);
  if (sit == submitted_.end() || key->index == 0 || key->index > sit->second.size()) {
    Violation(node, "invented message: " + KeyString(*key) + " was never submitted");
    return;
  }
  const Submitted& sub = sit->second[key->index - 1];
  if (!std::equal(d.payload.begin(), d.payload.end(), sub.payload.begin(), sub.payload.end())) {
    Violation(node, "payload of " + KeyString(*key) + " differs from what was submitted (" +
                        std::to_string(d.payload.size()) + " vs " +
                        std::to_string(sub.payload.size()) + " bytes)");
  }
  if (d.sender != key->sender) {
    Violation(node, KeyString(*key) + " delivered with sender=" + std::to_string(d.sender));
  }
  if (d.guarantee != sub.guarantee) {
    Violation(node, KeyString(*key) + " submitted " + GuaranteeName(sub.guarantee) +
                        " but delivered " + GuaranteeName(d.guarantee));
  }

  // No duplicates; per-sender order (and, static, no gap).
  if (!p->delivered.insert(*key).second) {
    Violation(node, "duplicate delivery of " + KeyString(*key));
    return;
  }
  uint64_t& last = p->last_index[key->sender];
  if (key->index <= last) {
    Violation(node, "sender order broken: " + KeyString(*key) + " after index " +
                        std::to_string(last) + " of that sender");
  } else if (static_ && key->index != last + 1) {
    Violation(node, "sender FIFO broken: delivered " + KeyString(*key) + " but expected index " +
                        std::to_string(last + 1) + " next from that sender");
  }
  last = std::max(last, key->index);
  p->history.push_back(Item{false, 0, *key});
  p->segments.back().delivered.push_back(*key);

  // Basic delivery: one regular configuration per message (delivered in it
  // or in a transitional configuration that follows it).
  const size_t origin =
      kind == ConfigurationKind::kRegular ? config : (p->last_regular ? *p->last_regular : config);
  auto [oit, first] = origin_.try_emplace(*key, origin);
  if (!first && oit->second != origin) {
    Violation(node, KeyString(*key) + " delivered in " + ConfigName(config) + " but belongs to " +
                        ConfigName(oit->second) + " elsewhere");
  }

  // Regular configurations deliver without gaps: one common sequence.
  if (kind == ConfigurationKind::kRegular) {
    const size_t pos = p->segments.back().delivered.size() - 1;
    if (pos < c.order.size()) {
      if (c.order[pos] != *key) {
        Violation(node, "total order: position " + std::to_string(pos) + " of " +
                            ConfigName(config) + " is " + KeyString(*key) + " here but " +
                            KeyString(c.order[pos]) + " at another node");
      }
    } else {
      c.order.push_back(*key);
    }
    if (d.guarantee == Guarantee::kSafe) c.safe.push_back(*key);
  }

  // Frame numbers never go back within one ring's stream.
  if (d.frame_seq == 0) Violation(node, KeyString(*key) + " delivered with frame_seq=0");
  if (d.frame_seq < p->last_frame_seq) {
    Violation(node, "frame_seq went backwards: " + KeyString(*key) + " in frame " +
                        std::to_string(d.frame_seq) + " after frame " +
                        std::to_string(p->last_frame_seq));
  }
  p->last_frame_seq = std::max(p->last_frame_seq, d.frame_seq);

  // While the node is still operating in the ring the delivery names, its
  // observers describe that ring: agreed never past a gap, safe only once
  // every member has the frame.
  if (kind != ConfigurationKind::kRegular || core.ring_id != id ||
      core.state != MemberState::kOperational) {
    return;
  }
  if (d.frame_seq > core.aru) {
    Violation(node, KeyString(*key) + " delivered from frame " + std::to_string(d.frame_seq) +
                        " beyond the node's aru: " + ViewString(core));
  }
  if (core.delivered_up_to + 1 < d.frame_seq || core.delivered_up_to > d.frame_seq) {
    Violation(node, KeyString(*key) + " delivered from frame " + std::to_string(d.frame_seq) +
                        " not contiguous with delivered_up_to: " + ViewString(core));
  }
  if (d.guarantee == Guarantee::kSafe) {
    if (!all_members_received) {
      Violation(node, "safe " + KeyString(*key) + " delivered from frame " +
                          std::to_string(d.frame_seq) + " before every member received it");
    }
    if (d.frame_seq > core.safe_up_to) {
      Violation(node, "safe " + KeyString(*key) + " delivered from frame " +
                          std::to_string(d.frame_seq) + " above safe_up_to: " + ViewString(core));
    }
  }
}

void Checker::OnStep(NodeId node, const CoreView& core, uint64_t min_aru,
                     const std::string& min_aru_who) {
  Process* p = Current(node, "step");
  if (p == nullptr) return;
  // Operational: one ring's buffer; during membership the old ring's frames
  // are kept besides the new ring's (one buffer each).
  const uint64_t bound = static_cast<uint64_t>(receive_buffer_frames_) *
                         (core.state == MemberState::kOperational ? 1 : 2);
  if (core.buffered_frames > bound) {
    Violation(node, "receive buffer holds " + std::to_string(core.buffered_frames) + " frames > " +
                        std::to_string(bound) +
                        " (receive_buffer_frames=" + std::to_string(receive_buffer_frames_) + ", " +
                        MemberStateName(core.state) + ")");
  }
  if (static_ && !p->segments.empty() &&
      core.ring_id != std::get<1>(configs_[p->segments.back().config].key)) {
    Violation(node, "ring id changed to " + core.ring_id.ToString());
  }
  if (core.state == MemberState::kOperational) {
    if (core.delivered_up_to > core.aru) {
      Violation(node, "delivered_up_to beyond aru: " + ViewString(core));
    }
    if (core.aru > core.high_seq) Violation(node, "aru beyond high_seq: " + ViewString(core));
    if (core.safe_up_to > min_aru) {
      Violation(node, "safe_up_to=" + std::to_string(core.safe_up_to) +
                          " but some member's aru is only " + std::to_string(min_aru) + " (" +
                          (min_aru_who.empty() ? "?" : min_aru_who) + "); here " +
                          ViewString(core));
    }
    if (p->last_view && p->last_view->state == MemberState::kOperational &&
        p->last_view->ring_id == core.ring_id) {
      const CoreView& v = *p->last_view;
      if (core.aru < v.aru || core.delivered_up_to < v.delivered_up_to ||
          core.safe_up_to < v.safe_up_to || core.high_seq < v.high_seq) {
        Violation(node, "a monotonic counter went backwards: before " + ViewString(v) + ", now " +
                            ViewString(core));
      }
    }
  }
  p->last_view = core;
}

std::string Checker::Unconverged(const std::map<NodeId, CoreView>& live) const {
  if (live.empty()) return "no live node";
  std::vector<NodeId> nodes;
  for (const auto& [n, v] : live) nodes.push_back(n);
  const RingId ring = live.begin()->second.ring_id;
  for (const auto& [n, v] : live) {
    const std::string who = "node " + std::to_string(n) + " ";
    if (v.state != MemberState::kOperational) {
      return who + "is in " + MemberStateName(v.state) + " (ring " + v.ring_id.ToString() + ")";
    }
    if (v.ring_id != ring) {
      return who + "is in ring " + v.ring_id.ToString() + ", node " +
             std::to_string(live.begin()->first) + " in " + ring.ToString();
    }
    if (v.ring_members != nodes) {
      return who + "has ring members " + ListString(v.ring_members) + ", live nodes are " +
             ListString(nodes);
    }
    if (!InRegular(n, ring))
      return who + "has not installed regular configuration " + ring.ToString();
  }
  return "";
}

bool Checker::Quiescent() const {
  std::map<size_t, size_t> count_in;  // last config -> messages delivered in it
  for (const auto& [node, index] : current_) {
    const Process& p = processes_[index];
    if (p.crashed) continue;
    for (const MessageKey& k : p.own) {
      if (!p.delivered.count(k)) return false;
    }
    if (p.segments.empty()) return false;  // still joining
    const Segment& s = p.segments.back();
    auto [it, fresh] = count_in.try_emplace(s.config, s.delivered.size());
    if (!fresh && it->second != s.delivered.size()) return false;
  }
  return true;
}

bool Checker::AllDelivered() const {
  for (const auto& [node, index] : current_) {
    if (processes_[index].delivered.size() != submitted_count_) return false;
  }
  return true;
}

// One total order: every two processes deliver the items they share in the
// same relative order, and all histories together are acyclic.
void Checker::CheckTotalOrder() {
  std::vector<std::map<Item, size_t>> pos(processes_.size());
  for (size_t i = 0; i < processes_.size(); ++i) {
    for (size_t j = 0; j < processes_[i].history.size(); ++j) pos[i][processes_[i].history[j]] = j;
  }
  auto item_name = [this](const Item& it) {
    return it.is_config ? ConfigName(it.config) : KeyString(it.key);
  };
  for (size_t a = 0; a < processes_.size(); ++a) {
    for (size_t b = a + 1; b < processes_.size(); ++b) {
      // Walk b's history; the positions in a of shared items must increase.
      const Item* prev_item = nullptr;
      size_t prev_pos = 0;
      for (const Item& it : processes_[b].history) {
        auto f = pos[a].find(it);
        if (f == pos[a].end()) continue;
        if (prev_item != nullptr && f->second < prev_pos) {
          Violation(processes_[b].node, "total order: " + Name(processes_[b]) + " delivered " +
                                            item_name(*prev_item) + " before " + item_name(it) +
                                            ", " + Name(processes_[a]) + " the other way round");
          return;
        }
        prev_item = &it;
        prev_pos = f->second;
      }
    }
  }
  // Global: Kahn's algorithm over the union of the histories.
  std::map<Item, size_t> id;
  for (const Process& p : processes_) {
    for (const Item& it : p.history) id.try_emplace(it, id.size());
  }
  std::vector<std::vector<size_t>> next(id.size());
  std::vector<size_t> indegree(id.size(), 0);
  for (const Process& p : processes_) {
    for (size_t j = 1; j < p.history.size(); ++j) {
      const size_t u = id[p.history[j - 1]], v = id[p.history[j]];
      next[u].push_back(v);
      ++indegree[v];
    }
  }
  std::vector<size_t> ready;
  for (size_t v = 0; v < indegree.size(); ++v) {
    if (indegree[v] == 0) ready.push_back(v);
  }
  size_t done = 0;
  while (!ready.empty()) {
    const size_t u = ready.back();
    ready.pop_back();
    ++done;
    for (size_t v : next[u]) {
      if (--indegree[v] == 0) ready.push_back(v);
    }
  }
  if (done != id.size()) {
    std::string example;
    for (const auto& [it, v] : id) {
      if (indegree[v] != 0) {
        example = item_name(it);
        break;
      }
    }
    Fail("total order: the processes' histories admit no common total order (" +
         std::to_string(id.size() - done) + " items on a cycle, e.g. " + example + ")");
  }
}

// Failure atomicity, and agreement of the processes that end together.
void Checker::CheckAtomicity() {
  // (configuration X, next configuration or none) -> (process, messages in X)
  std::map<std::pair<size_t, size_t>, std::pair<size_t, std::vector<MessageKey>>> seen;
  constexpr size_t kEnd = SIZE_MAX;
  for (size_t i = 0; i < processes_.size(); ++i) {
    const Process& p = processes_[i];
    for (size_t s = 0; s < p.segments.size(); ++s) {
      size_t next = kEnd;
      if (s + 1 < p.segments.size()) {
        next = p.segments[s + 1].config;
      } else if (p.crashed) {
        continue;  // a process's last configuration before it crashed
      }
      std::vector<MessageKey> set = p.segments[s].delivered;
      std::sort(set.begin(), set.end());
      auto [it, fresh] = seen.try_emplace({p.segments[s].config, next}, i, set);
      if (fresh || it->second.second == set) continue;
      const std::vector<MessageKey>& other = it->second.second;
      std::vector<MessageKey> only_here, only_there;
      std::set_difference(set.begin(), set.end(), other.begin(), other.end(),
                          std::back_inserter(only_here));
      std::set_difference(other.begin(), other.end(), set.begin(), set.end(),
                          std::back_inserter(only_there));
      const Process& q = processes_[it->second.first];
      std::string detail = only_here.empty() ? KeyString(only_there.front()) + " only at " + Name(q)
                                             : KeyString(only_here.front()) + " only at " + Name(p);
      if (next == kEnd) {
        Violation(p.node, "liveness / agreement: " + Name(p) + " and " + Name(q) +
                              " end the run in " + ConfigName(p.segments[s].config) +
                              " but delivered different messages in it (" +
                              std::to_string(set.size()) + " vs " + std::to_string(other.size()) +
                              "; " + detail + ")");
      } else {
        Violation(p.node, "failure atomicity: " + Name(p) + " and " + Name(q) + " move from " +
                              ConfigName(p.segments[s].config) + " to " + ConfigName(next) +
                              " but delivered different messages in the first (" + detail + ")");
      }
      return;
    }
  }
}

void Checker::Finish() {
  // Self-delivery.
  for (const Process& p : processes_) {
    if (p.crashed) continue;
    for (const MessageKey& k : p.own) {
      if (!p.delivered.count(k)) {
        Violation(p.node, "liveness / self-delivery: " + Name(p) + " never delivered its own " +
                              KeyString(k) + " (delivered " + std::to_string(p.delivered.size()) +
                              " messages" +
                              (p.last_view ? "; " + ViewString(*p.last_view) : std::string()) +
                              ")");
        break;
      }
    }
  }
  // Safe delivery (b): every member that installed the configuration and
  // did not crash delivered the message.
  for (size_t c = 0; c < configs_.size(); ++c) {
    for (const MessageKey& k : configs_[c].safe) {
      for (size_t i : configs_[c].installers) {
        const Process& p = processes_[i];
        if (!p.crashed && !p.delivered.count(k)) {
          Violation(p.node, "safe delivery: " + KeyString(k) + " was delivered as safe in " +
                                ConfigName(c) + " but member " + Name(p) +
                                ", which did not crash, never delivered it");
          break;
        }
      }
    }
  }
  if (static_) {
    for (const auto& [node, index] : current_) {
      const Process& p = processes_[index];
      if (p.segments.empty()) Violation(node, "never delivered the initial configuration");
      if (p.delivered.size() != submitted_count_) {
        std::string missing;
        for (const auto& [sender, list] : submitted_) {
          for (uint64_t i = 1; i <= list.size(); ++i) {
            if (!p.delivered.count(MessageKey{sender, i})) {
              missing = ", first missing " + KeyString(MessageKey{sender, i});
              break;
            }
          }
          if (!missing.empty()) break;
        }
        Violation(node, "liveness: delivered " + std::to_string(p.delivered.size()) + " of " +
                            std::to_string(submitted_count_) + " messages" + missing +
                            (p.last_view ? "; " + ViewString(*p.last_view) : std::string()));
      }
    }
  }
  CheckAtomicity();
  CheckTotalOrder();
}

}  // namespace totem::sim
