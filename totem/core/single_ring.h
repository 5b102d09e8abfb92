// The Totem single-ring ordering protocol (Moser et al., CACM 1996, "The
// single-ring protocol"; Amir et al., TOCS 1995) as a pure state machine.
//
// A token circulates among the members in ascending node-id order. Only the
// holder multicasts: it serves retransmission requests it can, sends up to
// its flow-control allowance of new frames (each numbered ++seq), adds its
// own gaps to the token's request list, lowers aru if it lacks something and
// forwards the token. Agreed delivery: a frame once it and every earlier
// frame are here. Safe delivery: once seq <= the token's aru on two
// consecutive visits (every member then has it); buffers are freed at that
// point. The last forwarded token is re-sent on a short timer until a newer
// one returns; older tokens are discarded by token_seq.
//
// Deviations and additions, all deliberate:
//  - Membership is static in this release: the ring is formed at Start()
//    from the configured list and never changes. Ring ids and configuration
//    ids are already carried everywhere for the membership protocol.
//  - Flow control follows the paper (window per rotation, max per visit,
//    share by backlog) plus a bound that keeps new sequence numbers inside
//    every member's receive buffer, as corosync's fcc_rtr_limit does.
//  - A gap is requested only once it has had a whole rotation to arrive
//    (its seq was assigned before this node's previous visit), so a frame
//    that is merely late behind the token is not retransmitted for nothing.
//  - Token retransmission backs off (x2 per retransmission, up to x8) and
//    stops at the first evidence that the successor has the token: a data
//    frame numbered above the seq this node forwarded.
//  - Token hold (a corosync idea): on an idle ring the representative keeps
//    the token for token_hold_us instead of spinning it; a member with
//    something to send multicasts a HoldCancel and the token moves at once.
#ifndef TOTEM_CORE_SINGLE_RING_H_
#define TOTEM_CORE_SINGLE_RING_H_

#include <cstdint>
#include <span>
#include <vector>

#include "totem/config.h"
#include "totem/core/output.h"
#include "totem/core/packing.h"
#include "totem/core/wire.h"
#include "totem/counters.h"
#include "totem/status.h"
#include "totem/types.h"

namespace totem::core {

class SingleRing {
 public:
  // Precondition: config.Validate() is OK (aborts otherwise).
  // `ring_seq` is the ring sequence number of the ring this node forms.
  explicit SingleRing(const RingConfig& config, uint64_t ring_seq = 1);

  // Delivers the initial regular configuration; the representative creates
  // the first token. Call once, before any other input.
  void Start(uint64_t now_us, Output& out);

  // Queues an application message for the total order. Errors:
  // kResourceExhausted (larger than max_message_bytes), kWouldBlock (the
  // submit queue holds max_pending_bytes; retry after deliveries drain it).
  Status Submit(std::span<const uint8_t> data, Guarantee guarantee, uint64_t now_us, Output& out);

  // Handles one frame received from the network (already authenticated by
  // the transport). Malformed or foreign frames are counted and dropped.
  void HandleFrame(std::span<const uint8_t> frame, uint64_t now_us, Output& out);

  void HandleTimer(TimerId id, uint64_t now_us, Output& out);

  // Observers (for counters, the simulator's checker and tests).
  const Counters& counters() const { return counters_; }
  Counters& mutable_counters() { return counters_; }  // the runtime adds its own counts
  const RingId& ring_id() const { return ring_id_; }
  NodeId node_id() const { return config_.node_id; }
  uint64_t aru() const { return my_aru_; }
  uint64_t delivered_up_to() const { return delivered_; }
  uint64_t safe_up_to() const { return safe_up_to_; }
  uint64_t high_seq_received() const { return high_seq_; }
  // True if this node has (or had, before freeing it) the frame `seq`.
  bool HasReceived(uint64_t seq) const;
  uint64_t pending_bytes() const { return packer_.pending_bytes(); }
  bool holding_token() const { return holding_; }
  size_t buffered_frames() const { return buffered_; }

 private:
  struct Slot {
    bool present = false;
    uint64_t seq = 0;
    NodeId sender = kNoNode;
    Guarantee guarantee = Guarantee::kAgreed;
    std::vector<uint8_t> bytes;  // the whole frame, header included
  };

  void HandleToken(const Header& h, Reader& r, uint64_t now_us, Output& out);
  void HandleData(const Header& h, Reader& r, std::span<const uint8_t> frame, Output& out);
  void HandleHoldCancel(const Header& h, Output& out);
  // One token visit: retransmit, broadcast, request, update aru, forward.
  void VisitToken(Output& out);
  void ForwardToken(Output& out);
  void StoreFrame(uint64_t seq, NodeId sender, Guarantee g, std::span<const uint8_t> bytes);
  void DeliverReady(Output& out);
  void ReleaseUpTo(uint64_t seq);
  Slot& SlotFor(uint64_t seq) { return buffer_[seq & mask_]; }
  const Slot& SlotFor(uint64_t seq) const { return buffer_[seq & mask_]; }
  bool IsMember(NodeId id) const;
  void CheckInvariants() const;

  const RingConfig config_;
  std::vector<NodeId> members_;  // sorted ascending
  NodeId next_ = kNoNode;        // successor on the ring
  RingId ring_id_;
  bool is_rep_ = false;
  bool started_ = false;

  Packer packer_;
  Reassembler reassembler_;

  // Receive / retransmission buffer, indexed by seq & mask_. Holds frames in
  // (released_, released_ + size]. Invariant: released_ <= delivered_ <= my_aru_.
  std::vector<Slot> buffer_;
  uint64_t mask_ = 0;
  size_t buffered_ = 0;
  uint64_t my_aru_ = 0;      // every frame <= my_aru_ is (or was) here
  uint64_t high_seq_ = 0;    // highest seq received or sent
  uint64_t delivered_ = 0;   // every frame <= delivered_ was delivered
  uint64_t safe_up_to_ = 0;  // every member has every frame <= safe_up_to_
  uint64_t released_ = 0;    // frames <= released_ are freed

  // Token state.
  Token token_;                      // the token being processed / held
  Token incoming_;                   // decode target, so a duplicate cannot clobber token_
  std::vector<uint8_t> last_token_;  // encoded copy of the last forwarded token
  bool seen_token_ = false;
  uint64_t last_token_seq_ = 0;  // token_seq of the newest token accepted
  bool have_forwarded_aru_ = false;
  uint64_t forwarded_aru_ = 0;       // aru on the token as this node last forwarded it
  uint32_t my_fcc_ = 0;              // this node's contribution to token.fcc
  uint32_t my_backlog_ = 0;          // this node's contribution to token.backlog
  uint64_t last_visit_seq_ = 0;      // token.seq when this node last forwarded it
  uint32_t retransmit_backoff_ = 1;  // multiplier of token_retransmit_us, doubles to 8
  bool retransmit_armed_ = false;    // kTokenRetransmit pending for last_token_
  uint32_t idle_rotations_ = 0;      // consecutive visits that saw nothing new
  bool holding_ = false;             // representative keeps an idle token
  bool cancel_sent_ = false;         // HoldCancel sent since our last visit
  bool cancel_seen_ = false;         // HoldCancel received while not holding (a race)

  std::vector<uint8_t> scratch_;  // frame being built

  // Hands reassembled messages of the frame being delivered to the Output.
  class DeliverySink : public Reassembler::Sink {
   public:
    explicit DeliverySink(SingleRing& ring) : ring_(ring) {}
    void OnMessage(Guarantee guarantee, std::span<const uint8_t> payload) override;
    Output* out = nullptr;
    NodeId sender = kNoNode;
    uint64_t frame_seq = 0;

   private:
    SingleRing& ring_;
  };
  DeliverySink sink_{*this};
  Counters counters_;
};

}  // namespace totem::core

#endif  // TOTEM_CORE_SINGLE_RING_H_
