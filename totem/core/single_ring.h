// The Totem single-ring protocol (Moser et al., CACM 1996; Amir et al., TOCS
// 1995) as a pure state machine: ordering (single_ring.cc) and membership
// with extended virtual synchrony (membership.cc) in one processor object.
//
// Ordering: a token circulates among the members in ascending node-id order.
// Only the holder multicasts: it serves retransmission requests it can, sends
// up to its flow-control allowance of new frames (each numbered ++seq), adds
// its own gaps to the token's request list, lowers aru if it lacks something
// and forwards the token. Agreed delivery: a frame once it and every earlier
// frame are here. Safe delivery: once seq <= the token's aru on two
// consecutive visits (every member then has it); buffers are freed there.
//
// Membership: states Operational, Gather, Commit, Recovery. Token loss (or a
// join / frame from outside the ring) sends a processor to Gather, where
// joins carrying proc and fail sets are exchanged until every live member of
// proc - fail sent identical sets (consensus) or the consensus timeout fails
// the silent ones. The lowest member then sends a commit token around twice:
// rotation 1 collects each member's old ring id, aru, highest seq and safe
// point; in rotation 2 each member enters Recovery. In Recovery the new ring
// runs the ordering protocol on recovery frames only: old-ring frames that
// some member of the same old ring may lack, encapsulated. Once every member
// has every recovery frame (safe on the new ring) a member installs the new
// ring: it delivers the old ring's remaining messages (first those still
// deliverable in the old regular configuration, then a transitional
// configuration and the rest past gaps, from senders in it), then the new
// regular configuration.
//
// Deliberate deviations and additions:
//  - Flow control adds a bound that keeps new sequence numbers inside every
//    member's receive buffer (as corosync's fcc_rtr_limit does).
//  - A gap is requested only once it has had a whole rotation to arrive.
//  - Token retransmission backs off (x2, up to x8) and stops at the first
//    evidence that the successor has the token: a frame numbered above the
//    seq this node forwarded.
//  - Token hold (a corosync idea): on an idle ring the representative keeps
//    the token for token_hold_us; a member with something to send multicasts
//    a HoldCancel and the token moves at once.
//  - A processor whose token retransmissions went unanswered (no newer
//    frame, no TokenAck, not a single frame of any kind from its successor)
//    names the successor failed in its first join, which spares everyone
//    the consensus timeout when a node crashes.
//  - Old-ring frames are re-sent in Recovery by one member each where the
//    commit token shows who surely has them (the lowest-id member whose aru
//    covers them), by every holder only above every member's aru.
//  - New ring ids come from the persisted ring sequence (PersistRingSeq).
//  - Failure to receive is judged by time (fail_to_recv_us without any
//    progress of the aru a member holds down), not by a rotation count;
//    the member that notices excludes the laggard.
//  - A token loss timeout that fires far later than it was due means this
//    process was paused: it is counted and given a short grace instead of
//    being taken as the others' failure.
#ifndef TOTEM_CORE_SINGLE_RING_H_
#define TOTEM_CORE_SINGLE_RING_H_

#include <cstdint>
#include <deque>
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

enum class MembershipState : uint8_t { kOperational, kGather, kCommit, kRecovery };
const char* MembershipStateName(MembershipState s);

class SingleRing {
 public:
  // Precondition: config.Validate() is OK (aborts otherwise). `ring_seq` is
  // the highest ring sequence number this node persisted before (0 if none).
  explicit SingleRing(const RingConfig& config, uint64_t ring_seq = 0);

  // Enters Gather alone and announces itself; the ring forms from the
  // processors that answer. Call once, before any other input.
  void Start(uint64_t now_us, Output& out);

  // Queues an application message for the total order (sent once the node
  // is in an operational ring). Errors: kResourceExhausted (larger than
  // max_message_bytes), kWouldBlock (the submit queue holds
  // max_pending_bytes; retry after deliveries drain it).
  Status Submit(std::span<const uint8_t> data, Guarantee guarantee, uint64_t now_us, Output& out);

  // Handles one frame received from the network (already authenticated by
  // the transport). Malformed or foreign frames are counted and dropped.
  void HandleFrame(std::span<const uint8_t> frame, uint64_t now_us, Output& out);

  void HandleTimer(TimerId id, uint64_t now_us, Output& out);

  // Observers (for counters, the simulator's checker and tests). aru(),
  // safe_up_to(), HasReceived() etc. refer to the current ring.
  const Counters& counters() const { return counters_; }
  Counters& mutable_counters() { return counters_; }  // the runtime adds its own counts
  MembershipState membership_state() const { return state_; }
  const RingId& ring_id() const { return ring_id_; }
  const std::vector<NodeId>& ring_members() const { return ring_members_; }
  NodeId node_id() const { return config_.node_id; }
  uint64_t aru() const { return cur_.aru; }
  uint64_t delivered_up_to() const { return cur_.delivered; }
  uint64_t safe_up_to() const { return cur_.safe; }
  uint64_t high_seq_received() const { return cur_.high; }
  // True if this node has (or had, before freeing it) frame `seq` of the
  // current ring.
  bool HasReceived(uint64_t seq) const { return cur_.Has(seq); }
  uint64_t pending_bytes() const { return packer_.pending_bytes(); }
  bool holding_token() const { return holding_; }
  size_t buffered_frames() const { return cur_.buffered + old_.buffered; }
  uint64_t max_ring_seq() const { return max_ring_seq_; }

 private:
  struct Slot {
    bool present = false;
    bool recovery = false;  // carries an old-ring frame; nothing to deliver
    uint64_t seq = 0;
    NodeId sender = kNoNode;
    Guarantee guarantee = Guarantee::kAgreed;
    std::vector<uint8_t> bytes;  // the whole frame, header included
  };

  // The frames of one ring. Holds frames in (released, released + size].
  // Invariant: released <= delivered <= aru <= high; safe <= aru.
  struct RingStore {
    RingId ring_id;
    std::vector<NodeId> members;
    std::vector<Slot> slots;
    uint64_t mask = 0;
    size_t buffered = 0;
    uint64_t aru = 0;        // every frame <= aru is (or was) here
    uint64_t high = 0;       // highest seq received or sent
    uint64_t delivered = 0;  // every frame <= delivered was delivered
    uint64_t safe = 0;       // every member has every frame <= safe
    uint64_t released = 0;   // frames <= released are freed

    void Init(size_t size);
    void Reset(const RingId& id, const std::vector<NodeId>& ring_members);
    bool Has(uint64_t seq) const;
    bool InWindow(uint64_t seq) const { return seq > released && seq <= released + slots.size(); }
    Slot& At(uint64_t seq) { return slots[seq & mask]; }
    const Slot& At(uint64_t seq) const { return slots[seq & mask]; }
    void Store(uint64_t seq, NodeId sender, Guarantee g, bool recovery,
               std::span<const uint8_t> bytes);
    void ReleaseUpTo(uint64_t seq);
  };

  // --- ordering (single_ring.cc) ---
  void HandleToken(const Header& h, Reader& r, Output& out);
  void HandleData(const Header& h, Reader& r, std::span<const uint8_t> frame, Output& out);
  void HandleHoldCancel(Output& out);
  void VisitToken(Output& out);
  void ForwardToken(Output& out);
  void DeliverReady(Output& out);
  void DeliverFrame(const Slot& slot, uint64_t seq, ConfigurationKind kind,
                    const ConfigurationId& config_id, Output& out);
  void ArmTokenLoss(Output& out);
  bool IsConfigured(NodeId id) const;
  void CheckInvariants() const;

  // --- membership (membership.cc) ---
  // Frames of another ring, or from a processor outside this one.
  void HandleForeign(const Header& h, Output& out);
  void HandleJoin(const Header& h, Reader& r, Output& out);
  void HandleCommitToken(const Header& h, Reader& r, Output& out);
  void ProcessCommitToken(CommitToken& token, Output& out);
  void EnterGather(Output& out);
  void SendJoin(Output& out);
  void MergeJoin(NodeId sender, const Join& join, Output& out);
  void CheckConsensus(Output& out);
  void CreateCommitToken(Output& out);
  void EnterRecovery(Output& out);
  void QueueRecoveryFrames();
  void OriginateRegularToken(Output& out);
  void StoreRecoveredFrame(std::span<const uint8_t> inner);
  void Install(Output& out);
  void PersistRingSeq(uint64_t seq, Output& out);
  std::vector<NodeId> Agreed() const;  // proc - fail

  const RingConfig config_;
  std::vector<NodeId> configured_;  // every processor that may join, sorted
  bool started_ = false;

  // --- membership state ---
  MembershipState state_ = MembershipState::kGather;
  RingId ring_id_;                    // the ring this node is in (or forming)
  std::vector<NodeId> ring_members_;  // its members, sorted
  NodeId next_ = kNoNode;             // successor on the ring
  bool is_rep_ = false;
  uint64_t max_ring_seq_ = 0;         // highest ring seq seen or persisted
  uint64_t persisted_ring_seq_ = 0;   // highest ring seq handed to PersistRingSeq
  std::vector<NodeId> proc_set_;      // Gather: processors to include (sorted)
  std::vector<NodeId> fail_set_;      // Gather: processors considered failed (sorted)
  std::vector<NodeId> consensus_;     // Gather: who sent joins equal to my sets (sorted)
  CommitToken commit_;                // Commit/Recovery: the token of the ring being formed
  std::vector<uint8_t> last_commit_;  // the commit token as last forwarded, for retransmission
  NodeId last_commit_to_ = kNoNode;
  std::vector<NodeId> trans_members_;    // members moving with me from my old ring (sorted)
  uint64_t old_safe_cut_ = 0;            // highest old-ring safe point among trans members
  std::deque<uint64_t> recovery_queue_;  // old-ring seqs this node re-sends
  bool my_set_retrans_ = false;
  uint32_t recovery_visits_ = 0;
  bool install_seq_set_ = false;
  uint64_t install_seq_ = 0;
  uint64_t now_us_ = 0;  // time of the input being handled
  uint64_t token_loss_deadline_us_ = 0;
  NodeId stuck_aru_id_ = kNoNode;  // who held the token's aru down, since when
  uint64_t stuck_aru_ = 0;
  uint64_t stuck_since_us_ = 0;
  NodeId fail_to_recv_node_ = kNoNode;  // member to exclude at the end of this visit

  // --- ordering state ---
  Packer packer_;
  Reassembler reassembler_;
  RingStore cur_;  // the current ring (new ring during Recovery)
  RingStore old_;  // the last regular configuration's ring, kept until installing the next
  bool have_old_ = false;

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
  uint32_t unanswered_retransmits_ = 0;
  bool heard_from_next_ = false;  // any frame from the successor since the last forward
  uint32_t idle_rotations_ = 0;   // consecutive visits that saw nothing new
  bool holding_ = false;          // representative keeps an idle token
  bool cancel_sent_ = false;      // HoldCancel sent since our last visit
  bool cancel_seen_ = false;      // HoldCancel received while not holding (a race)

  std::vector<uint8_t> scratch_;  // frame being built

  // Hands reassembled messages of the frame being delivered to the Output.
  class DeliverySink : public Reassembler::Sink {
   public:
    explicit DeliverySink(SingleRing& ring) : ring_(ring) {}
    void OnMessage(Guarantee guarantee, std::span<const uint8_t> payload) override;
    Output* out = nullptr;
    NodeId sender = kNoNode;
    uint64_t frame_seq = 0;
    ConfigurationKind kind = ConfigurationKind::kRegular;
    ConfigurationId config_id;

   private:
    SingleRing& ring_;
  };
  DeliverySink sink_{*this};
  Counters counters_;
};

}  // namespace totem::core

#endif  // TOTEM_CORE_SINGLE_RING_H_
