// The Totem single-ring ordering protocol: token handling, broadcast,
// retransmission, agreed and safe delivery, flow control and token hold.
// The membership half of the processor is in membership.cc; see
// single_ring.h for the protocol summary and the deliberate deviations.
#include "totem/core/single_ring.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace totem::core {

namespace {
[[noreturn]] void Die(const char* what, const std::string& detail) {
  std::fprintf(stderr, "totem core invariant violated: %s (%s)\n", what, detail.c_str());
  std::abort();
}
}  // namespace

const char* MembershipStateName(MembershipState s) {
  switch (s) {
    case MembershipState::kOperational:
      return "operational";
    case MembershipState::kGather:
      return "gather";
    case MembershipState::kCommit:
      return "commit";
    case MembershipState::kRecovery:
      return "recovery";
  }
  return "unknown";
}

// --- RingStore ---

void SingleRing::RingStore::Init(size_t size) {
  slots.resize(size);
  mask = size - 1;
}

void SingleRing::RingStore::Reset(const RingId& id, const std::vector<NodeId>& ring_members) {
  ring_id = id;
  members = ring_members;
  for (Slot& s : slots) s.present = false;  // keeps each vector's capacity
  buffered = 0;
  aru = high = delivered = safe = released = 0;
}

bool SingleRing::RingStore::Has(uint64_t seq) const {
  if (seq == 0) return false;
  if (seq <= aru) return true;
  const Slot& s = At(seq);
  return s.present && s.seq == seq;
}

void SingleRing::RingStore::Store(uint64_t seq, NodeId sender, Guarantee g, bool recovery,
                                  std::span<const uint8_t> bytes) {
  Slot& slot = At(seq);
  if (slot.present || !InWindow(seq)) Die("receive buffer slot in use", std::to_string(seq));
  slot.present = true;
  slot.recovery = recovery;
  slot.seq = seq;
  slot.sender = sender;
  slot.guarantee = g;
  slot.bytes.assign(bytes.begin(), bytes.end());
  ++buffered;
  high = std::max(high, seq);
  while (aru < high) {
    const Slot& n = At(aru + 1);
    if (!n.present || n.seq != aru + 1) break;
    ++aru;
  }
}

void SingleRing::RingStore::ReleaseUpTo(uint64_t seq) {
  while (released < seq) {
    ++released;
    Slot& slot = At(released);
    if (slot.present && slot.seq == released) {
      slot.present = false;
      --buffered;
    }
  }
}

// --- SingleRing ---

SingleRing::SingleRing(const RingConfig& config, uint64_t ring_seq)
    : config_(config),
      packer_(config.max_frame_bytes - static_cast<uint32_t>(kEncapsulationBytes), config.packing,
              config.max_message_bytes, config.max_pending_bytes),
      reassembler_(config.max_message_bytes) {
  if (Status st = config.Validate(); !st.ok()) Die("config must be validated", st.ToString());
  configured_ = config.members;
  std::sort(configured_.begin(), configured_.end());
  max_ring_seq_ = ring_seq;
  cur_.Init(config.receive_buffer_frames);
  old_.Init(config.receive_buffer_frames);
}

bool SingleRing::IsConfigured(NodeId id) const {
  return std::binary_search(configured_.begin(), configured_.end(), id);
}

void SingleRing::Start(uint64_t now_us, Output& out) {
  now_us_ = now_us;
  if (started_) Die("Start called twice", ring_id_.ToString());
  started_ = true;
  proc_set_ = {config_.node_id};
  fail_set_.clear();
  EnterGather(out);
  CheckInvariants();
}

Status SingleRing::Submit(std::span<const uint8_t> data, Guarantee guarantee, uint64_t now_us,
                          Output& out) {
  now_us_ = std::max(now_us_, now_us);
  if (!started_) return Status(StatusCode::kFailedPrecondition, "ring not started");
  Status st = packer_.Push(data, guarantee);
  if (!st.ok()) {
    if (st.code() == StatusCode::kWouldBlock) ++counters_.submits_would_block;
    return st;
  }
  ++counters_.messages_submitted;
  counters_.bytes_submitted += data.size();
  if (state_ != MembershipState::kOperational) return Status::Ok();  // sent once installed
  if (holding_) {
    holding_ = false;
    out.CancelTimer(TimerId::kTokenHold);
    VisitToken(out);
  } else if (!is_rep_ && !cancel_sent_ && config_.idle_rotations_before_hold != 0 &&
             idle_rotations_ + 1 >= config_.idle_rotations_before_hold) {
    // The representative may be holding the idle token: ask for it.
    EncodeHoldCancel(config_.node_id, ring_id_, scratch_);
    out.Multicast(scratch_);
    cancel_sent_ = true;
  }
  CheckInvariants();
  return Status::Ok();
}

void SingleRing::HandleFrame(std::span<const uint8_t> frame, uint64_t now_us, Output& out) {
  now_us_ = std::max(now_us_, now_us);
  Reader r(frame);
  Header h;
  DecodeResult res = DecodeHeader(r, h);
  if (res == DecodeResult::kBadMagicOrVersion) {
    ++counters_.drop_bad_version;
    return;
  }
  if (res != DecodeResult::kOk) {
    ++counters_.drop_malformed;
    return;
  }
  if (!IsConfigured(h.sender)) {
    ++counters_.drop_unknown_sender;
    return;
  }
  // A ring of one passes its token to itself; any other frame of our own
  // that comes back (multicast loopback) is not news.
  if (h.sender == config_.node_id && h.type != FrameType::kToken) return;
  if (h.sender == next_) heard_from_next_ = true;  // alive, whatever it is doing
  if (!started_) {
    ++counters_.drop_foreign_ring;
    return;
  }
  switch (h.type) {
    case FrameType::kJoin:
      HandleJoin(h, r, out);
      break;
    case FrameType::kCommitToken:
      HandleCommitToken(h, r, out);
      break;
    case FrameType::kToken:
    case FrameType::kData:
    case FrameType::kHoldCancel:
    case FrameType::kTokenAck:
    case FrameType::kMergeDetect: {
      const bool in_ring =
          (state_ == MembershipState::kOperational || state_ == MembershipState::kRecovery) &&
          h.ring_id == ring_id_;
      if (!in_ring || h.type == FrameType::kMergeDetect) {
        HandleForeign(h, out);
        break;
      }
      if (h.type == FrameType::kToken) {
        HandleToken(h, r, out);
      } else if (h.type == FrameType::kData) {
        HandleData(h, r, frame, out);
      } else if (r.remaining() != 0) {
        ++counters_.drop_malformed;
      } else if (h.type == FrameType::kTokenAck) {
        // Nothing more to do: hearing from the successor was noted above.
      } else {
        HandleHoldCancel(out);
      }
      break;
    }
  }
  CheckInvariants();
}

void SingleRing::ArmTokenLoss(Output& out) {
  const uint64_t timeout = config_.TokenTimeoutUs(ring_members_.size());
  token_loss_deadline_us_ = now_us_ + timeout;
  out.SetTimer(TimerId::kTokenLoss, timeout);
}

void SingleRing::HandleToken(const Header& h, Reader& r, Output& out) {
  if (DecodeTokenBody(r, config_.max_rtr_entries, incoming_) != DecodeResult::kOk) {
    ++counters_.drop_malformed;
    return;
  }
  incoming_.ring_id = h.ring_id;
  if (seen_token_ && incoming_.token_seq <= last_token_seq_) {
    ++counters_.drop_duplicate_token;
    // The sender retransmits because it saw no sign we got it: say so, or
    // it would name us failed when the token is lost further on.
    if (h.sender != config_.node_id) {
      EncodeTokenAck(config_.node_id, ring_id_, scratch_);
      out.Unicast(h.sender, scratch_);
    }
    return;
  }
  // Every frame of the ring is numbered from a token first, so a new token
  // never announces fewer frames than this node already holds of the ring.
  // Acting on one would number new frames with sequence numbers in use
  // (found by fuzz/fuzz_totem_wire): the token is corrupt or forged.
  if (incoming_.seq < cur_.high) {
    ++counters_.drop_malformed;
    return;
  }
  seen_token_ = true;
  last_token_seq_ = incoming_.token_seq;
  std::swap(token_, incoming_);
  ++counters_.token_rotations;
  retransmit_armed_ = false;
  unanswered_retransmits_ = 0;
  out.CancelTimer(TimerId::kTokenRetransmit);
  ArmTokenLoss(out);

  const Token& t = token_;
  const bool idle_token = t.seq == last_visit_seq_ && t.rtr.empty() && t.aru == t.seq &&
                          t.backlog == 0 && t.flags == 0 && packer_.empty();
  if (is_rep_ && state_ == MembershipState::kOperational &&
      config_.idle_rotations_before_hold != 0 && idle_token && !cancel_seen_ &&
      idle_rotations_ >= config_.idle_rotations_before_hold) {
    holding_ = true;
    ++counters_.token_holds;
    out.SetTimer(TimerId::kTokenHold, config_.token_hold_us);
    return;
  }
  VisitToken(out);
}

void SingleRing::VisitToken(Output& out) {
  Token& t = token_;
  const NodeId me = config_.node_id;
  const uint32_t window = config_.window_size;
  const uint64_t aru_received = t.aru;
  const bool recovering = state_ == MembershipState::kRecovery;

  // Flow control: this node replaces its own contribution of last rotation.
  const uint32_t fcc_others = t.fcc >= my_fcc_ ? t.fcc - my_fcc_ : 0;
  uint32_t allowed = window > fcc_others ? window - fcc_others : 0;
  allowed = std::min(allowed, config_.max_messages_per_visit);
  uint32_t sent = 0;

  // 1. Serve the retransmission requests this node can serve.
  if (!t.rtr.empty()) {
    size_t keep = 0;
    for (uint64_t s : t.rtr) {
      if (s <= cur_.released) continue;  // stale: every member had it before we freed it
      const Slot& slot = cur_.At(s);
      if (sent < allowed && slot.present && slot.seq == s) {
        out.Multicast(slot.bytes);
        ++sent;
        ++counters_.retransmissions_sent;
      } else {
        t.rtr[keep++] = s;
      }
    }
    t.rtr.resize(keep);
  }

  // 2. Broadcast new frames within the allowance, the backlog share and
  //    the bound that keeps every member's receive buffer from overflowing.
  //    In Recovery the new frames carry old-ring frames, not new messages.
  const uint32_t my_backlog_now =
      recovering ? static_cast<uint32_t>(recovery_queue_.size()) : packer_.BacklogFrames();
  if (my_backlog_now > 0) {
    uint32_t new_allowed = allowed - sent;
    const uint64_t others = t.backlog >= my_backlog_ ? t.backlog - my_backlog_ : 0;
    const uint64_t total = others + my_backlog_now;
    const uint64_t share = (static_cast<uint64_t>(window) * my_backlog_now + total - 1) / total;
    new_allowed =
        static_cast<uint32_t>(std::min<uint64_t>(new_allowed, std::max<uint64_t>(share, 1)));
    const uint64_t limit = cur_.released + cur_.slots.size() - 2ull * window;
    const uint64_t room = limit > t.seq ? limit - t.seq : 0;
    new_allowed = static_cast<uint32_t>(std::min<uint64_t>(new_allowed, room));
    while (new_allowed > 0) {
      if (recovering) {
        if (recovery_queue_.empty()) break;
        const Slot& old = old_.At(recovery_queue_.front());
        recovery_queue_.pop_front();
        scratch_.clear();
        Writer w(scratch_);
        EncodeHeader(w, Header{FrameType::kData, me, ring_id_});
        w.U64(t.seq + 1);
        w.U8(static_cast<uint8_t>(old.guarantee));
        w.U8(kDataRecovery);
        w.U16(0);
        // The old ring's own recovery frames travel as fillers: only their
        // place in the old sequence matters now.
        w.Bytes(old.recovery
                    ? std::span<const uint8_t>(old.bytes).first(kHeaderBytes + kDataFixedBytes)
                    : std::span<const uint8_t>(old.bytes));
      } else if (!packer_.BuildFrame(me, ring_id_, t.seq + 1, scratch_,
                                     &counters_.fragments_sent)) {
        break;
      }
      ++t.seq;
      const auto g = static_cast<Guarantee>(scratch_[kHeaderBytes + 8]);
      cur_.Store(t.seq, me, g, recovering, scratch_);
      out.Multicast(scratch_);
      ++counters_.frames_sent;
      ++sent;
      --new_allowed;
    }
  }

  // 3. Request what this node is missing: frames assigned before its
  //    previous visit (a full rotation ago), not ones that may still be on
  //    their way behind the token.
  const uint64_t request_limit =
      std::min<uint64_t>(last_visit_seq_, cur_.released + cur_.slots.size());
  for (uint64_t s = cur_.aru + 1; s <= request_limit && t.rtr.size() < config_.max_rtr_entries;
       ++s) {
    if (cur_.Has(s)) continue;
    if (std::find(t.rtr.begin(), t.rtr.end(), s) != t.rtr.end()) continue;
    t.rtr.push_back(s);
    ++counters_.retransmit_requests;
  }

  // 4. aru: lower it if this node lacks something; raise it only if this
  //    node was the one holding it down (or nobody was).
  if (cur_.aru < t.aru || t.aru_id == me || t.aru_id == kNoNode) {
    t.aru = cur_.aru;
    t.aru_id = t.aru == t.seq ? kNoNode : me;
  }

  // 4b. A member that holds the aru down without progress for
  //     fail_to_recv_us keeps failing to receive: exclude it (time-based,
  //     not a rotation count, so fast and slow machines agree).
  if (t.aru < t.seq && t.aru_id != kNoNode) {
    if (t.aru_id != stuck_aru_id_ || t.aru != stuck_aru_) {
      stuck_aru_id_ = t.aru_id;
      stuck_aru_ = t.aru;
      stuck_since_us_ = now_us_;
    } else if (state_ == MembershipState::kOperational &&
               now_us_ - stuck_since_us_ >= config_.fail_to_recv_us && t.aru_id != me) {
      ++counters_.failed_to_receive;
      fail_to_recv_node_ = t.aru_id;
    }
  } else {
    stuck_aru_id_ = kNoNode;
  }

  // 5. Safe point: every member had every frame <= the aru this node
  //    forwarded last time if the aru is still that high one rotation later.
  if (have_forwarded_aru_) {
    cur_.safe = std::max(cur_.safe, std::min(forwarded_aru_, aru_received));
  }
  forwarded_aru_ = t.aru;
  have_forwarded_aru_ = true;

  // 6. Flow-control fields, and the recovery flag: set while this node has
  //    old-ring frames to re-send; cleared only by whoever set it.
  const uint32_t backlog_after =
      recovering ? static_cast<uint32_t>(recovery_queue_.size()) : packer_.BacklogFrames();
  t.fcc = fcc_others + sent;
  my_fcc_ = sent;
  t.backlog = (t.backlog >= my_backlog_ ? t.backlog - my_backlog_ : 0) + backlog_after;
  my_backlog_ = backlog_after;
  if (recovering) {
    if (!recovery_queue_.empty()) {
      t.flags |= kTokenRetransFlag;
      my_set_retrans_ = true;
    } else if (my_set_retrans_) {
      t.flags &= static_cast<uint8_t>(~kTokenRetransFlag);
      my_set_retrans_ = false;
    }
    // The backlog is the sum of every member's queue as of its last visit,
    // and recovery queues only shrink. From this node's second visit on,
    // every member has visited, so a zero backlog means every recovery
    // frame has been sent: all are numbered <= t.seq. (The flag alone is
    // not enough: a member that set it clears it when its own queue is
    // empty, while another member may still have frames to send.)
    ++recovery_visits_;
    if (recovery_visits_ >= 2 && t.backlog == 0 && !install_seq_set_) {
      install_seq_set_ = true;
      install_seq_ = t.seq;
    }
  }

  const bool idle = t.seq == last_visit_seq_ && t.rtr.empty() && t.aru == t.seq && t.backlog == 0 &&
                    sent == 0 && t.flags == 0;
  idle_rotations_ = idle ? idle_rotations_ + 1 : 0;
  last_visit_seq_ = t.seq;
  cancel_sent_ = false;
  cancel_seen_ = false;

  // 7. Forward, then deliver (the successor starts its visit meanwhile).
  ++t.token_seq;
  if (fail_to_recv_node_ != kNoNode) {
    // Leave the token with us: the ring is re-formed without that member.
    proc_set_ = ring_members_;
    fail_set_ = {fail_to_recv_node_};
    fail_to_recv_node_ = kNoNode;
    stuck_aru_id_ = kNoNode;
    EnterGather(out);
    return;
  }
  ForwardToken(out);
  if (recovering && install_seq_set_ && cur_.safe >= install_seq_) {
    Install(out);
  } else {
    DeliverReady(out);
  }
  cur_.ReleaseUpTo(std::min(cur_.safe, cur_.delivered));
}

void SingleRing::ForwardToken(Output& out) {
  EncodeToken(config_.node_id, token_, last_token_);
  out.Unicast(next_, last_token_);
  retransmit_backoff_ = 1;
  retransmit_armed_ = true;
  heard_from_next_ = false;
  out.SetTimer(TimerId::kTokenRetransmit, config_.token_retransmit_us);
}

void SingleRing::HandleData(const Header& h, Reader& r, std::span<const uint8_t> frame,
                            Output& out) {
  DataFrameInfo info;
  if (DecodeDataBody(r, info) != DecodeResult::kOk) {
    ++counters_.drop_malformed;
    return;
  }
  const uint64_t seq = info.seq;
  // Sequence numbers are assigned only by a token holder: a frame numbered
  // past the token this node forwarded proves the successor received it. (A
  // frame merely from the successor proves nothing: it may be a delayed
  // duplicate from an earlier rotation.)
  if (retransmit_armed_ && seq > token_.seq) {
    retransmit_armed_ = false;
    unanswered_retransmits_ = 0;
    out.CancelTimer(TimerId::kTokenRetransmit);
  }
  if (cur_.Has(seq)) {
    ++counters_.drop_duplicate_frame;
    return;
  }
  if (!cur_.InWindow(seq)) {
    ++counters_.drop_out_of_window;
    return;
  }
  cur_.Store(seq, h.sender, info.guarantee, info.recovery, frame);
  ++counters_.frames_received;
  if (info.recovery && state_ == MembershipState::kRecovery) {
    StoreRecoveredFrame(info.encapsulated);
  }
  DeliverReady(out);
}

void SingleRing::HandleHoldCancel(Output& out) {
  if (!holding_) {
    // The cancel overtook the token on its way here: do not hold it then.
    cancel_seen_ = true;
    return;
  }
  holding_ = false;
  out.CancelTimer(TimerId::kTokenHold);
  VisitToken(out);
}

void SingleRing::HandleTimer(TimerId id, uint64_t now_us, Output& out) {
  now_us_ = std::max(now_us_, now_us);
  if (!started_) return;
  switch (id) {
    case TimerId::kTokenRetransmit:
      if ((state_ == MembershipState::kCommit ||
           (state_ == MembershipState::kRecovery && !seen_token_)) &&
          !last_commit_.empty()) {
        // The commit token has not come round yet: re-send it.
        out.Unicast(last_commit_to_, last_commit_);
        ++counters_.tokens_retransmitted;
        retransmit_backoff_ = std::min<uint32_t>(retransmit_backoff_ * 2, 8);
        out.SetTimer(TimerId::kTokenRetransmit,
                     static_cast<uint64_t>(config_.token_retransmit_us) * retransmit_backoff_);
      } else if (retransmit_armed_ && !last_token_.empty() && !holding_) {
        out.Unicast(next_, last_token_);
        ++counters_.tokens_retransmitted;
        // Count the intervals in which the successor said nothing at all
        // (it answers a retransmitted token with a TokenAck): two of them
        // and it is named failed when the ring breaks. While it answers, keep
        // the short interval so a death right after an answer is noticed.
        if (heard_from_next_) {
          unanswered_retransmits_ = 0;
          retransmit_backoff_ = 1;
        } else {
          ++unanswered_retransmits_;
          retransmit_backoff_ = std::min<uint32_t>(retransmit_backoff_ * 2, 8);
        }
        heard_from_next_ = false;
        out.SetTimer(TimerId::kTokenRetransmit,
                     static_cast<uint64_t>(config_.token_retransmit_us) * retransmit_backoff_);
      }
      break;
    case TimerId::kTokenHold:
      if (holding_) {
        holding_ = false;
        VisitToken(out);
      }
      break;
    case TimerId::kTokenLoss:
      if (state_ == MembershipState::kOperational || state_ == MembershipState::kCommit ||
          state_ == MembershipState::kRecovery) {
        // Fired far later than asked: this process was not running (a VM
        // or scheduling pause), so silence proves nothing about the others.
        // Give what piled up in the socket a moment to be processed.
        const uint64_t timeout = config_.TokenTimeoutUs(ring_members_.size());
        if (now_us_ > token_loss_deadline_us_ + timeout / 2) {
          ++counters_.pauses_detected;
          token_loss_deadline_us_ = now_us_ + config_.token_retransmit_us;
          out.SetTimer(TimerId::kTokenLoss, config_.token_retransmit_us);
          break;
        }
        ++counters_.token_losses;
        if (state_ == MembershipState::kOperational) {
          proc_set_ = ring_members_;
          fail_set_.clear();
        }
        EnterGather(out);
      }
      break;
    case TimerId::kJoin:
      if (state_ == MembershipState::kGather) {
        SendJoin(out);
        out.SetTimer(TimerId::kJoin, config_.join_timeout_us);
      }
      break;
    case TimerId::kConsensus:
      if (state_ == MembershipState::kGather) {
        // Everyone who has not agreed by now is considered failed.
        ++counters_.consensus_timeouts;
        for (NodeId n : Agreed()) {
          if (!std::binary_search(consensus_.begin(), consensus_.end(), n)) {
            fail_set_.insert(std::upper_bound(fail_set_.begin(), fail_set_.end(), n), n);
          }
        }
        EnterGather(out);
        // Alone now? Then a ring of one forms at once.
        if (Agreed().size() == 1) CheckConsensus(out);
      }
      break;
    case TimerId::kMerge:
      if (state_ == MembershipState::kOperational && is_rep_) {
        EncodeMergeDetect(config_.node_id, ring_id_, scratch_);
        out.Multicast(scratch_);
        out.SetTimer(TimerId::kMerge, config_.merge_timeout_us);
      }
      break;
    case TimerId::kCount:
      break;
  }
  CheckInvariants();
}

void SingleRing::DeliverySink::OnMessage(Guarantee guarantee, std::span<const uint8_t> payload) {
  Delivery d;
  d.config_id = config_id;
  d.config_kind = kind;
  d.sender = sender;
  d.guarantee = guarantee;
  d.frame_seq = frame_seq;
  d.payload = payload;
  ++ring_.counters_.messages_delivered;
  ring_.counters_.bytes_delivered += payload.size();
  if (guarantee == Guarantee::kSafe) ++ring_.counters_.safe_messages_delivered;
  out->Deliver(d);
}

void SingleRing::DeliverFrame(const Slot& slot, uint64_t seq, ConfigurationKind kind,
                              const ConfigurationId& config_id, Output& out) {
  sink_.out = &out;
  sink_.sender = slot.sender;
  sink_.frame_seq = seq;
  sink_.kind = kind;
  sink_.config_id = config_id;
  counters_.drop_bad_fragment += reassembler_.Unpack(slot.sender, slot.bytes, sink_);
}

void SingleRing::DeliverReady(Output& out) {
  const bool operational = state_ == MembershipState::kOperational;
  if (!operational && state_ != MembershipState::kRecovery) return;
  while (cur_.delivered < cur_.aru) {
    const uint64_t s = cur_.delivered + 1;
    const Slot& slot = cur_.At(s);
    if (slot.recovery) {  // carried an old-ring frame: nothing to deliver here
      cur_.delivered = s;
      continue;
    }
    // New messages wait for the installation of the ring. Agreed frames go
    // as soon as they are contiguous; a frame holding a safe message waits
    // until every member has it (and holds back all frames after it).
    if (!operational) break;
    if (slot.guarantee == Guarantee::kSafe && s > cur_.safe) break;
    cur_.delivered = s;
    DeliverFrame(slot, s, ConfigurationKind::kRegular, ring_id_, out);
  }
}

void SingleRing::CheckInvariants() const {
  for (const RingStore* r : {&cur_, &old_}) {
    if (!(r->released <= r->delivered && r->delivered <= r->aru && r->aru <= r->high)) {
      Die("released <= delivered <= aru <= high_seq",
          std::to_string(r->released) + " " + std::to_string(r->delivered) + " " +
              std::to_string(r->aru) + " " + std::to_string(r->high));
    }
    if (r->safe > r->aru) {
      Die("safe_up_to <= aru", std::to_string(r->safe) + " > " + std::to_string(r->aru));
    }
    if (r->buffered > r->slots.size()) Die("buffered <= buffer size", std::to_string(r->buffered));
  }
  if (state_ == MembershipState::kOperational && holding_ && !is_rep_) {
    Die("only the representative holds the token", ring_id_.ToString());
  }
}

}  // namespace totem::core
