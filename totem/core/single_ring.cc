// The Totem single-ring ordering protocol as a pure state machine; see
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

SingleRing::SingleRing(const RingConfig& config, uint64_t ring_seq)
    : config_(config),
      packer_(config.max_frame_bytes, config.packing, config.max_message_bytes,
              config.max_pending_bytes),
      reassembler_(config.max_message_bytes) {
  if (Status st = config.Validate(); !st.ok()) Die("config must be validated", st.ToString());
  members_ = config.members;
  std::sort(members_.begin(), members_.end());
  auto me = std::find(members_.begin(), members_.end(), config.node_id);
  next_ = (me + 1 == members_.end()) ? members_.front() : *(me + 1);
  ring_id_ = RingId{members_.front(), ring_seq};
  is_rep_ = config.node_id == members_.front();
  buffer_.resize(config.receive_buffer_frames);
  mask_ = config.receive_buffer_frames - 1;
}

bool SingleRing::IsMember(NodeId id) const {
  return std::binary_search(members_.begin(), members_.end(), id);
}

bool SingleRing::HasReceived(uint64_t seq) const {
  if (seq == 0) return false;
  if (seq <= my_aru_) return true;
  const Slot& s = SlotFor(seq);
  return s.present && s.seq == seq;
}

void SingleRing::Start(uint64_t /*now_us*/, Output& out) {
  if (started_) Die("Start called twice", ring_id_.ToString());
  started_ = true;
  ConfigurationEvent ev;
  ev.kind = ConfigurationKind::kRegular;
  ev.id = ring_id_;
  ev.members = members_;
  ev.joined = members_;
  out.DeliverConfiguration(ev);
  if (is_rep_) {
    // The representative originates the ring's first token.
    token_ = Token{};
    token_.ring_id = ring_id_;
    seen_token_ = true;
    last_token_seq_ = 0;
    VisitToken(out);
  }
  CheckInvariants();
}

Status SingleRing::Submit(std::span<const uint8_t> data, Guarantee guarantee, uint64_t /*now_us*/,
                          Output& out) {
  if (!started_) return Status(StatusCode::kFailedPrecondition, "ring not started");
  Status st = packer_.Push(data, guarantee);
  if (!st.ok()) {
    if (st.code() == StatusCode::kWouldBlock) ++counters_.submits_would_block;
    return st;
  }
  ++counters_.messages_submitted;
  counters_.bytes_submitted += data.size();
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
  if (!IsMember(h.sender)) {
    ++counters_.drop_unknown_sender;
    return;
  }
  if (h.ring_id != ring_id_ || !started_) {
    ++counters_.drop_foreign_ring;
    return;
  }
  switch (h.type) {
    case FrameType::kToken:
      HandleToken(h, r, now_us, out);
      break;
    case FrameType::kData:
      HandleData(h, r, frame, out);
      break;
    case FrameType::kHoldCancel:
      if (r.remaining() != 0) {
        ++counters_.drop_malformed;
        return;
      }
      HandleHoldCancel(h, out);
      break;
  }
  CheckInvariants();
}

void SingleRing::HandleToken(const Header& h, Reader& r, uint64_t /*now_us*/, Output& out) {
  if (DecodeTokenBody(r, config_.max_rtr_entries, incoming_) != DecodeResult::kOk) {
    ++counters_.drop_malformed;
    return;
  }
  incoming_.ring_id = h.ring_id;
  if (seen_token_ && incoming_.token_seq <= last_token_seq_) {
    ++counters_.drop_duplicate_token;
    return;
  }
  seen_token_ = true;
  last_token_seq_ = incoming_.token_seq;
  std::swap(token_, incoming_);
  ++counters_.token_rotations;
  retransmit_armed_ = false;
  out.CancelTimer(TimerId::kTokenRetransmit);

  const Token& t = token_;
  const bool idle_token = t.seq == last_visit_seq_ && t.rtr.empty() && t.aru == t.seq &&
                          t.backlog == 0 && packer_.empty();
  if (is_rep_ && config_.idle_rotations_before_hold != 0 && idle_token && !cancel_seen_ &&
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

  // Flow control: this node replaces its own contribution of last rotation.
  const uint32_t fcc_others = t.fcc >= my_fcc_ ? t.fcc - my_fcc_ : 0;
  uint32_t allowed = window > fcc_others ? window - fcc_others : 0;
  allowed = std::min(allowed, config_.max_messages_per_visit);
  uint32_t sent = 0;

  // 1. Serve the retransmission requests this node can serve.
  if (!t.rtr.empty()) {
    size_t keep = 0;
    for (uint64_t s : t.rtr) {
      if (s <= released_) continue;  // stale: every member had it before we freed it
      const Slot& slot = SlotFor(s);
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
  const uint32_t my_backlog_now = packer_.BacklogFrames();
  if (my_backlog_now > 0) {
    uint32_t new_allowed = allowed - sent;
    const uint64_t others = t.backlog >= my_backlog_ ? t.backlog - my_backlog_ : 0;
    const uint64_t total = others + my_backlog_now;
    const uint64_t share = (static_cast<uint64_t>(window) * my_backlog_now + total - 1) / total;
    new_allowed =
        static_cast<uint32_t>(std::min<uint64_t>(new_allowed, std::max<uint64_t>(share, 1)));
    const uint64_t limit = released_ + buffer_.size() - 2ull * window;
    const uint64_t room = limit > t.seq ? limit - t.seq : 0;
    new_allowed = static_cast<uint32_t>(std::min<uint64_t>(new_allowed, room));
    while (new_allowed > 0 &&
           packer_.BuildFrame(me, ring_id_, t.seq + 1, scratch_, &counters_.fragments_sent)) {
      ++t.seq;
      const auto g = static_cast<Guarantee>(scratch_[kHeaderBytes + 8]);
      StoreFrame(t.seq, me, g, scratch_);
      out.Multicast(scratch_);
      ++counters_.frames_sent;
      ++sent;
      --new_allowed;
    }
  }

  // 3. Request what this node is missing: frames assigned before its
  //    previous visit (a full rotation ago), not ones that may still be on
  //    their way behind the token.
  const uint64_t request_limit = std::min<uint64_t>(last_visit_seq_, released_ + buffer_.size());
  for (uint64_t s = my_aru_ + 1; s <= request_limit && t.rtr.size() < config_.max_rtr_entries;
       ++s) {
    if (HasReceived(s)) continue;
    if (std::find(t.rtr.begin(), t.rtr.end(), s) != t.rtr.end()) continue;
    t.rtr.push_back(s);
    ++counters_.retransmit_requests;
  }

  // 4. aru: lower it if this node lacks something; raise it only if this
  //    node was the one holding it down (or nobody was).
  if (my_aru_ < t.aru || t.aru_id == me || t.aru_id == kNoNode) {
    t.aru = my_aru_;
    t.aru_id = t.aru == t.seq ? kNoNode : me;
  }

  // 5. Safe point: every member had every frame <= the aru this node
  //    forwarded last time if the aru is still that high one rotation later.
  if (have_forwarded_aru_) {
    safe_up_to_ = std::max(safe_up_to_, std::min(forwarded_aru_, aru_received));
  }
  forwarded_aru_ = t.aru;
  have_forwarded_aru_ = true;

  // 6. Flow-control fields.
  const uint32_t backlog_after = packer_.BacklogFrames();
  t.fcc = fcc_others + sent;
  my_fcc_ = sent;
  t.backlog = (t.backlog >= my_backlog_ ? t.backlog - my_backlog_ : 0) + backlog_after;
  my_backlog_ = backlog_after;

  const bool idle =
      t.seq == last_visit_seq_ && t.rtr.empty() && t.aru == t.seq && t.backlog == 0 && sent == 0;
  idle_rotations_ = idle ? idle_rotations_ + 1 : 0;
  last_visit_seq_ = t.seq;
  cancel_sent_ = false;
  cancel_seen_ = false;

  // 7. Forward, then deliver (the successor starts its visit meanwhile).
  ++t.token_seq;
  ForwardToken(out);
  DeliverReady(out);
  ReleaseUpTo(std::min(safe_up_to_, delivered_));
}

void SingleRing::ForwardToken(Output& out) {
  EncodeToken(config_.node_id, token_, last_token_);
  out.Unicast(next_, last_token_);
  retransmit_backoff_ = 1;
  retransmit_armed_ = true;
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
    out.CancelTimer(TimerId::kTokenRetransmit);
  }
  if (HasReceived(seq)) {
    ++counters_.drop_duplicate_frame;
    return;
  }
  if (seq > released_ + buffer_.size()) {
    ++counters_.drop_out_of_window;
    return;
  }
  StoreFrame(seq, h.sender, info.guarantee, frame);
  ++counters_.frames_received;
  DeliverReady(out);
}

void SingleRing::HandleHoldCancel(const Header& /*h*/, Output& out) {
  if (!holding_) {
    // The cancel overtook the token on its way here: do not hold it then.
    cancel_seen_ = true;
    return;
  }
  holding_ = false;
  out.CancelTimer(TimerId::kTokenHold);
  VisitToken(out);
}

void SingleRing::HandleTimer(TimerId id, uint64_t /*now_us*/, Output& out) {
  switch (id) {
    case TimerId::kTokenRetransmit:
      if (retransmit_armed_ && !last_token_.empty() && !holding_) {
        out.Unicast(next_, last_token_);
        ++counters_.tokens_retransmitted;
        retransmit_backoff_ = std::min<uint32_t>(retransmit_backoff_ * 2, 8);
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
    case TimerId::kJoin:
    case TimerId::kConsensus:
    case TimerId::kMerge:
    case TimerId::kCount:
      break;
  }
  CheckInvariants();
}

void SingleRing::StoreFrame(uint64_t seq, NodeId sender, Guarantee g,
                            std::span<const uint8_t> bytes) {
  Slot& slot = SlotFor(seq);
  if (slot.present) Die("receive buffer slot in use", std::to_string(seq));
  slot.present = true;
  slot.seq = seq;
  slot.sender = sender;
  slot.guarantee = g;
  slot.bytes.assign(bytes.begin(), bytes.end());
  ++buffered_;
  high_seq_ = std::max(high_seq_, seq);
  while (my_aru_ < high_seq_) {
    const Slot& n = SlotFor(my_aru_ + 1);
    if (!n.present || n.seq != my_aru_ + 1) break;
    ++my_aru_;
  }
}

void SingleRing::DeliverySink::OnMessage(Guarantee guarantee, std::span<const uint8_t> payload) {
  Delivery d;
  d.config_id = ring_.ring_id_;
  d.sender = sender;
  d.guarantee = guarantee;
  d.frame_seq = frame_seq;
  d.payload = payload;
  ++ring_.counters_.messages_delivered;
  ring_.counters_.bytes_delivered += payload.size();
  if (guarantee == Guarantee::kSafe) ++ring_.counters_.safe_messages_delivered;
  out->Deliver(d);
}

void SingleRing::DeliverReady(Output& out) {
  while (delivered_ < my_aru_) {
    const uint64_t s = delivered_ + 1;
    const Slot& slot = SlotFor(s);
    // Agreed frames go as soon as they are contiguous; a frame holding a
    // safe message waits until every member has it (and holds back all
    // frames after it, which keeps delivery in the total order).
    if (slot.guarantee == Guarantee::kSafe && s > safe_up_to_) break;
    delivered_ = s;
    sink_.out = &out;
    sink_.sender = slot.sender;
    sink_.frame_seq = s;
    counters_.drop_bad_fragment += reassembler_.Unpack(slot.sender, slot.bytes, sink_);
  }
}

void SingleRing::ReleaseUpTo(uint64_t seq) {
  while (released_ < seq) {
    ++released_;
    Slot& slot = SlotFor(released_);
    if (slot.present && slot.seq == released_) {
      slot.present = false;  // keeps the vector's capacity for reuse
      --buffered_;
    }
  }
}

void SingleRing::CheckInvariants() const {
  if (!(released_ <= delivered_ && delivered_ <= my_aru_ && my_aru_ <= high_seq_)) {
    Die("released <= delivered <= aru <= high_seq",
        std::to_string(released_) + " " + std::to_string(delivered_) + " " +
            std::to_string(my_aru_) + " " + std::to_string(high_seq_));
  }
  if (safe_up_to_ > my_aru_) {
    Die("safe_up_to <= aru", std::to_string(safe_up_to_) + " > " + std::to_string(my_aru_));
  }
  if (buffered_ > buffer_.size()) Die("buffered <= buffer size", std::to_string(buffered_));
}

}  // namespace totem::core
