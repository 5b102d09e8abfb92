// The Totem membership protocol and extended virtual synchrony (Moser et
// al., CACM 1996, "membership protocol"; Amir et al., TOCS 1995; EVS: Moser,
// Amir, Melliar-Smith, Agarwal, ICDCS 1994): Gather (joins, consensus),
// Commit (the commit token's two rotations), Recovery (old-ring frames
// re-sent on the new ring) and installation (old messages, the transitional
// configuration, the regular configuration). The ordering half of the
// processor is in single_ring.cc; single_ring.h lists the deviations.
#include <algorithm>

#include "totem/core/single_ring.h"

namespace totem::core {

namespace {

bool Contains(const std::vector<NodeId>& sorted, NodeId n) {
  return std::binary_search(sorted.begin(), sorted.end(), n);
}

void Insert(std::vector<NodeId>& sorted, NodeId n) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), n);
  if (it == sorted.end() || *it != n) sorted.insert(it, n);
}

void Erase(std::vector<NodeId>& sorted, NodeId n) {
  auto it = std::lower_bound(sorted.begin(), sorted.end(), n);
  if (it != sorted.end() && *it == n) sorted.erase(it);
}

std::vector<NodeId> Union(const std::vector<NodeId>& a, const std::vector<NodeId>& b) {
  std::vector<NodeId> out;
  std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

std::vector<NodeId> Minus(const std::vector<NodeId>& a, const std::vector<NodeId>& b) {
  std::vector<NodeId> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

bool Subset(const std::vector<NodeId>& a, const std::vector<NodeId>& b) {
  return std::includes(b.begin(), b.end(), a.begin(), a.end());
}

}  // namespace

std::vector<NodeId> SingleRing::Agreed() const { return Minus(proc_set_, fail_set_); }

void SingleRing::PersistRingSeq(uint64_t seq, Output& out) {
  max_ring_seq_ = std::max(max_ring_seq_, seq);
  if (seq > persisted_ring_seq_) {
    out.PersistRingSeq(seq);
    persisted_ring_seq_ = seq;
  }
}

void SingleRing::HandleForeign(const Header& h, Output& out) {
  // Stale frames of a ring this node has left with the same members, or
  // our own representative's announcement, mean nothing.
  const bool member = Contains(ring_members_, h.sender);
  if (state_ != MembershipState::kOperational || h.ring_id == ring_id_ ||
      (member && h.ring_id.seq <= ring_id_.seq)) {
    ++counters_.drop_foreign_ring;
    return;
  }
  // A processor outside this ring, or a member already in a newer ring:
  // merge. Our joins bring it into the gather too.
  ++counters_.merges_detected;
  proc_set_ = ring_members_;
  Insert(proc_set_, h.sender);
  fail_set_.clear();
  EnterGather(out);
}

void SingleRing::HandleJoin(const Header& h, Reader& r, Output& out) {
  Join join;
  if (DecodeJoinBody(r, join) != DecodeResult::kOk) {
    ++counters_.drop_malformed;
    return;
  }
  for (NodeId n : join.proc) {
    if (!IsConfigured(n)) {
      ++counters_.drop_unknown_sender;
      return;
    }
  }
  const NodeId s = h.sender;
  const NodeId me = config_.node_id;
  max_ring_seq_ = std::max(max_ring_seq_, join.ring_seq);
  switch (state_) {
    case MembershipState::kOperational:
      // Joins from the gather that formed this ring are stale; a processor
      // that excludes this one will form its own ring and merge later.
      if ((Contains(ring_members_, s) && join.ring_seq < ring_id_.seq) || Contains(join.fail, me)) {
        return;
      }
      proc_set_ = ring_members_;
      Insert(proc_set_, s);
      fail_set_.clear();
      EnterGather(out);
      break;
    case MembershipState::kCommit:
    case MembershipState::kRecovery: {
      // A member of the ring being formed that went back to Gather dooms
      // it; joins from elsewhere wait until the ring is installed.
      const RingId& forming = commit_.ring_id;
      bool in_forming = false;
      for (const CommitEntry& e : commit_.entries) in_forming |= e.node == s;
      if (!in_forming || join.ring_seq < forming.seq) return;
      EnterGather(out);
      break;
    }
    case MembershipState::kGather:
      break;
  }
  MergeJoin(s, join, out);
}

void SingleRing::MergeJoin(NodeId s, const Join& join, Output& out) {
  const NodeId me = config_.node_id;
  if (Contains(fail_set_, s)) return;
  if (join.proc == proc_set_ && join.fail == fail_set_) {
    Insert(consensus_, s);
    CheckConsensus(out);
    return;
  }
  if (Subset(join.proc, proc_set_) && Subset(join.fail, fail_set_)) return;
  proc_set_ = Union(proc_set_, join.proc);
  if (Contains(join.fail, me)) {
    Insert(fail_set_, s);  // it will not have me: it cannot be in my ring
  } else {
    // Adopt the failures a member of my own last ring saw; from outsiders
    // only failures of processors outside that ring (an outsider's stale
    // verdict must not split a healthy ring).
    const std::vector<NodeId>& mine = have_old_ ? old_.members : ring_members_;
    fail_set_ = Union(fail_set_, Contains(mine, s) ? join.fail : Minus(join.fail, mine));
  }
  Erase(fail_set_, me);
  consensus_ = {me};
  SendJoin(out);
  out.SetTimer(TimerId::kJoin, config_.join_timeout_us);
  out.SetTimer(TimerId::kConsensus, config_.consensus_timeout_us);
  if (join.proc == proc_set_ && join.fail == fail_set_) {
    Insert(consensus_, s);
    CheckConsensus(out);
  }
}

void SingleRing::CheckConsensus(Output& out) {
  const std::vector<NodeId> agreed = Agreed();
  if (!Subset(agreed, consensus_)) return;
  if (agreed.front() == config_.node_id) CreateCommitToken(out);
}

void SingleRing::EnterGather(Output& out) {
  const NodeId me = config_.node_id;
  // A successor that never showed it had the token (no newer frame, no
  // TokenAck for two retransmissions, no frame at all) is named failed at once, which spares
  // everyone the consensus timeout when a node crashes.
  if (state_ == MembershipState::kOperational && retransmit_armed_ &&
      unanswered_retransmits_ >= 2 && !heard_from_next_ && next_ != me) {
    Insert(fail_set_, next_);
  }
  if (state_ == MembershipState::kOperational && !ring_members_.empty()) {
    // Keep the regular configuration's frames until the next one installs.
    std::swap(old_, cur_);
    have_old_ = true;
    packer_.RestartPartial();
  }
  cur_.Reset(RingId{me, 0}, {});
  state_ = MembershipState::kGather;
  holding_ = false;
  retransmit_armed_ = false;
  unanswered_retransmits_ = 0;
  recovery_queue_.clear();
  install_seq_set_ = false;
  last_commit_.clear();
  out.CancelTimer(TimerId::kTokenRetransmit);
  out.CancelTimer(TimerId::kTokenHold);
  out.CancelTimer(TimerId::kTokenLoss);
  out.CancelTimer(TimerId::kMerge);
  Insert(proc_set_, me);
  Erase(fail_set_, me);
  consensus_ = {me};
  ++counters_.gathers;
  SendJoin(out);
  out.SetTimer(TimerId::kJoin, config_.join_timeout_us);
  out.SetTimer(TimerId::kConsensus, config_.consensus_timeout_us);
  // A ring of one forms only when the consensus timeout has failed the
  // others; a fresh gather always waits for answers first. A gather that
  // already names every other processor failed (a crashed successor) can
  // proceed as soon as the rest agree.
  if (Agreed().size() > 1) CheckConsensus(out);
}

void SingleRing::SendJoin(Output& out) {
  Join join;
  join.ring_seq = std::max(max_ring_seq_, ring_id_.seq);
  join.proc = proc_set_;
  join.fail = fail_set_;
  const RingId header_ring = ring_id_.rep == kNoNode ? RingId{config_.node_id, 0} : ring_id_;
  EncodeJoin(config_.node_id, header_ring, join, scratch_);
  out.Multicast(scratch_);
}

void SingleRing::CreateCommitToken(Output& out) {
  const std::vector<NodeId> members = Agreed();
  uint64_t seq = std::max({max_ring_seq_, ring_id_.seq, old_.ring_id.seq}) + 1;
  PersistRingSeq(seq, out);
  CommitToken t;
  t.ring_id = RingId{config_.node_id, seq};
  t.rotation = 1;
  t.index = 0;
  for (NodeId n : members) {
    CommitEntry e;
    e.node = n;
    t.entries.push_back(e);
  }
  ProcessCommitToken(t, out);
}

void SingleRing::HandleCommitToken(const Header& h, Reader& r, Output& out) {
  CommitToken t;
  if (DecodeCommitTokenBody(r, t) != DecodeResult::kOk) {
    ++counters_.drop_malformed;
    return;
  }
  t.ring_id = h.ring_id;
  for (const CommitEntry& e : t.entries) {
    if (!IsConfigured(e.node)) {
      ++counters_.drop_unknown_sender;
      return;
    }
  }
  ProcessCommitToken(t, out);
}

void SingleRing::ProcessCommitToken(CommitToken& t, Output& out) {
  const NodeId me = config_.node_id;
  const size_t n = t.entries.size();
  size_t my_index = n;
  for (size_t i = 0; i < n; ++i) {
    if (t.entries[i].node == me) my_index = i;
  }
  if (my_index == n || t.index != my_index || t.ring_id.rep != t.entries.front().node) {
    ++counters_.drop_foreign_ring;
    return;
  }
  switch (t.rotation) {
    case 1: {
      std::vector<NodeId> members;
      for (const CommitEntry& e : t.entries) members.push_back(e.node);
      if (state_ != MembershipState::kGather || members != Agreed() ||
          t.ring_id.seq <= std::max(ring_id_.seq, old_.ring_id.seq)) {
        ++counters_.drop_foreign_ring;
        return;
      }
      PersistRingSeq(t.ring_id.seq, out);
      CommitEntry& e = t.entries[my_index];
      e.filled = true;
      if (have_old_) {
        e.old_ring = old_.ring_id;
        e.aru = old_.aru;
        e.high_seq = old_.high;
        e.safe = old_.safe;
      }
      state_ = MembershipState::kCommit;
      out.CancelTimer(TimerId::kJoin);
      out.CancelTimer(TimerId::kConsensus);
      out.SetTimer(TimerId::kTokenLoss, config_.TokenTimeoutUs(n));
      if (++t.index == n) {
        t.rotation = 2;
        t.index = 0;
      }
      break;
    }
    case 2:
      if (state_ != MembershipState::kCommit || t.ring_id != commit_.ring_id) {
        ++counters_.drop_foreign_ring;
        return;
      }
      for (const CommitEntry& e : t.entries) {
        if (!e.filled) {
          ++counters_.drop_malformed;
          return;
        }
      }
      commit_ = t;
      EnterRecovery(out);
      if (++t.index == n) {
        t.rotation = 3;
        t.index = 0;
      }
      break;
    case 3:
      if (state_ != MembershipState::kRecovery || t.ring_id != ring_id_ || seen_token_) {
        ++counters_.drop_foreign_ring;
        return;
      }
      OriginateRegularToken(out);
      return;
    default:
      return;
  }
  commit_ = t;
  const NodeId to = t.entries[t.index].node;
  if (to == me) {
    ProcessCommitToken(t, out);  // a ring of one passes the token to itself
    return;
  }
  // Kept and re-sent on the retransmit timer until the next rotation (or
  // the first regular token) shows it arrived: a lost commit token would
  // otherwise cost a token loss timeout and a whole new gather.
  EncodeCommitToken(me, t, last_commit_);
  last_commit_to_ = to;
  out.Unicast(to, last_commit_);
  retransmit_backoff_ = 1;
  out.SetTimer(TimerId::kTokenRetransmit, config_.token_retransmit_us);
}

void SingleRing::EnterRecovery(Output& out) {
  const NodeId me = config_.node_id;
  state_ = MembershipState::kRecovery;
  ring_id_ = commit_.ring_id;
  ring_members_.clear();
  for (const CommitEntry& e : commit_.entries) ring_members_.push_back(e.node);
  auto pos = std::find(ring_members_.begin(), ring_members_.end(), me);
  next_ = (pos + 1 == ring_members_.end()) ? ring_members_.front() : *(pos + 1);
  is_rep_ = ring_members_.front() == me;
  cur_.Reset(ring_id_, ring_members_);

  token_ = Token{};
  last_token_.clear();
  seen_token_ = false;
  last_token_seq_ = 0;
  have_forwarded_aru_ = false;
  forwarded_aru_ = 0;
  my_fcc_ = 0;
  my_backlog_ = 0;
  last_visit_seq_ = 0;
  idle_rotations_ = 0;
  holding_ = false;
  cancel_sent_ = false;
  cancel_seen_ = false;
  retransmit_armed_ = false;
  unanswered_retransmits_ = 0;
  recovery_visits_ = 0;
  install_seq_set_ = false;
  install_seq_ = 0;
  my_set_retrans_ = false;

  trans_members_.clear();
  if (have_old_) {
    for (const CommitEntry& e : commit_.entries) {
      if (e.old_ring == old_.ring_id) trans_members_.push_back(e.node);
    }
  }
  QueueRecoveryFrames();
  ArmTokenLoss(out);
}

void SingleRing::QueueRecoveryFrames() {
  recovery_queue_.clear();
  old_safe_cut_ = have_old_ ? old_.safe : 0;
  if (!have_old_) return;
  std::vector<const CommitEntry*> trans;
  for (const CommitEntry& e : commit_.entries) {
    if (e.old_ring == old_.ring_id) trans.push_back(&e);
  }
  uint64_t low = UINT64_MAX, max_aru = 0, high = 0;
  for (const CommitEntry* e : trans) {
    low = std::min(low, e->aru);
    max_aru = std::max(max_aru, e->aru);
    high = std::max(high, e->high_seq);
    old_safe_cut_ = std::max(old_safe_cut_, e->safe);
  }
  for (uint64_t s = low + 1; s <= high; ++s) {
    if (!old_.Has(s)) continue;
    if (s <= max_aru) {
      // Someone surely has it: the lowest-id member whose aru covers it
      // sends it, nobody else.
      NodeId sender = kNoNode;
      for (const CommitEntry* e : trans) {
        if (e->aru >= s) {
          sender = e->node;
          break;
        }
      }
      if (sender != config_.node_id) continue;
    }
    recovery_queue_.push_back(s);
  }
}

void SingleRing::OriginateRegularToken(Output& out) {
  token_ = Token{};
  token_.ring_id = ring_id_;
  seen_token_ = true;
  last_token_seq_ = 0;
  ArmTokenLoss(out);
  VisitToken(out);
}

void SingleRing::StoreRecoveredFrame(std::span<const uint8_t> inner) {
  if (!have_old_ || inner.empty()) return;
  Reader r(inner);
  Header h;
  DataFrameInfo info;
  if (DecodeHeader(r, h) != DecodeResult::kOk || DecodeDataBody(r, info) != DecodeResult::kOk) {
    return;  // validated with the carrier; cannot happen
  }
  if (h.ring_id != old_.ring_id || old_.Has(info.seq) || !old_.InWindow(info.seq)) return;
  old_.Store(info.seq, h.sender, info.guarantee, info.recovery, inner);
}

void SingleRing::Install(Output& out) {
  if (have_old_) {
    const ConfigurationId old_id = old_.ring_id;
    // 1. What can still be delivered in the old regular configuration:
    //    contiguous frames, safe ones only up to the highest safe point any
    //    member moving with us reached. Every such member computes the same
    //    cut from the same frames.
    const uint64_t safe_cut = std::max(old_.safe, old_safe_cut_);
    while (old_.delivered < old_.aru) {
      const uint64_t s = old_.delivered + 1;
      const Slot& slot = old_.At(s);
      if (!slot.recovery && slot.guarantee == Guarantee::kSafe && s > safe_cut) break;
      old_.delivered = s;
      if (!slot.recovery) DeliverFrame(slot, s, ConfigurationKind::kRegular, old_id, out);
    }
    // 2. The transitional configuration.
    ConfigurationEvent trans;
    trans.kind = ConfigurationKind::kTransitional;
    trans.id = ring_id_;
    trans.members = trans_members_;
    trans.left = Minus(old_.members, trans_members_);
    out.DeliverConfiguration(trans);
    // 3. The rest of the old ring's messages: contiguous ones from anyone,
    //    past a gap only from senders that moved with us (a message from
    //    elsewhere may depend on the missing one).
    bool past_gap = false;
    for (uint64_t s = old_.delivered + 1; s <= old_.high; ++s) {
      if (!old_.Has(s)) {
        past_gap = true;
        continue;
      }
      const Slot& slot = old_.At(s);
      if (slot.recovery || (past_gap && !Contains(trans_members_, slot.sender))) continue;
      DeliverFrame(slot, s, ConfigurationKind::kTransitional, ring_id_, out);
    }
    reassembler_.Reset();
  }
  // 4. The new regular configuration.
  ConfigurationEvent reg;
  reg.kind = ConfigurationKind::kRegular;
  reg.id = ring_id_;
  reg.members = ring_members_;
  reg.joined = have_old_ ? Minus(ring_members_, trans_members_) : ring_members_;
  if (have_old_) reg.left = Minus(old_.members, ring_members_);
  out.DeliverConfiguration(reg);
  have_old_ = false;
  old_.Reset(RingId{}, {});
  state_ = MembershipState::kOperational;
  ++counters_.configurations_installed;
  if (is_rep_) out.SetTimer(TimerId::kMerge, config_.merge_timeout_us);
  DeliverReady(out);
}

}  // namespace totem::core
