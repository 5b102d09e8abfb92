// The simulator's checker: judges everything a set of single-ring cores
// delivers against the guarantees of the Totem single-ring protocol (Moser
// et al., CACM 1996; ARCHITECTURE.md section 3.1) as they stand in this
// release, where membership is static:
//  - one total order: every node delivers the identical sequence;
//  - no duplicates, no invented messages, payloads byte for byte as
//    submitted, per-sender FIFO;
//  - agreed delivery never past a gap (frame_seq non-decreasing, at most the
//    node's aru, deliveries contiguous over frames);
//  - safe delivery only once every member has the frame;
//  - every delivery carries the configuration id of the ring, after the
//    initial regular configuration with the full member list;
//  - liveness: every submitted message is delivered at every node;
//  - the receive buffer never holds more than receive_buffer_frames.
//
// The checker sees only plain data (deliveries plus a snapshot of the core's
// observable state), never a core itself, so tests can feed it fabricated
// histories and prove that it catches each kind of bad one. It keeps every
// violation's count and the first message; the simulator stops a run at the
// first violation.
#ifndef TOTEM_SIM_CHECKER_H_
#define TOTEM_SIM_CHECKER_H_

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "totem/types.h"

namespace totem::sim {

// Identity of one submitted message: who submitted it and its index among
// that sender's accepted submissions (1, 2, 3, ...).
struct MessageKey {
  NodeId sender = kNoNode;
  uint64_t index = 0;
  friend auto operator<=>(const MessageKey&, const MessageKey&) = default;
};

// Workload payload layout: magic u32 | sender u32 | index u64 | filler. The
// filler is derived from (seed, sender, index) so a payload is unique to its
// run and message.
inline constexpr size_t kPayloadHeaderBytes = 16;
inline constexpr uint32_t kPayloadMagic = 0x4D495354;  // "TSIM" little-endian
std::vector<uint8_t> MakePayload(uint64_t seed, MessageKey key, size_t size);
// Reads the key from a payload; nullopt if it is not a workload payload.
std::optional<MessageKey> ParsePayload(std::span<const uint8_t> payload);

// What the checker may observe of a core (all SingleRing observers).
struct CoreView {
  RingId ring_id;
  uint64_t aru = 0;
  uint64_t delivered_up_to = 0;
  uint64_t safe_up_to = 0;
  uint64_t high_seq = 0;
  size_t buffered_frames = 0;
};

class Checker {
 public:
  // `members`: the static membership (any order). `receive_buffer_frames`:
  // the bound buffered_frames must respect.
  Checker(std::vector<NodeId> members, uint32_t receive_buffer_frames);

  // Prefixes violation messages with the virtual time.
  void set_now(uint64_t now_us) { now_us_ = now_us; }

  // Registers a message about to be submitted. It must be called before the
  // core sees the message (a core may deliver during Submit). Withdraw undoes
  // it when Submit refuses the message; only the latest key of a sender may
  // be withdrawn.
  void OnSubmitted(MessageKey key, Guarantee guarantee, std::vector<uint8_t> payload);
  void Withdraw(MessageKey key);

  void OnConfiguration(NodeId node, const ConfigurationEvent& event, const CoreView& core);
  // `all_members_received`: whether every member's core reports
  // HasReceived(delivery.frame_seq) at the moment of this delivery.
  void OnDelivery(NodeId node, const Delivery& delivery, const CoreView& core,
                  bool all_members_received);
  // After each input a core handled: state invariants. `min_aru` is the
  // lowest aru() over all members at this moment.
  void OnStep(NodeId node, const CoreView& core, uint64_t min_aru);
  // End of run: liveness and agreement of the complete sequences.
  void Finish();

  // Records a violation found outside the checker (e.g. by the simulator).
  void Fail(const std::string& what);

  bool ok() const { return violations_ == 0; }
  uint64_t violations() const { return violations_; }
  const std::string& first_violation() const { return first_violation_; }

  uint64_t submitted() const { return submitted_count_; }
  uint64_t deliveries() const { return deliveries_; }
  // True once every registered message was delivered at every member.
  bool AllDelivered() const {
    return deliveries_ == submitted_count_ * static_cast<uint64_t>(nodes_.size());
  }

 private:
  struct Submitted {
    Guarantee guarantee = Guarantee::kAgreed;
    std::vector<uint8_t> payload;
  };
  struct NodeState {
    bool configured = false;
    RingId config_id;
    uint64_t delivered = 0;  // messages delivered: position in the total order
    uint64_t last_frame_seq = 0;
    std::map<NodeId, uint64_t> next_index;  // per sender: the index expected next
    std::optional<CoreView> last_view;
  };

  NodeState* StateOf(NodeId node, const char* what);
  void Violation(NodeId node, const std::string& what);

  std::vector<NodeId> members_;  // sorted ascending
  uint32_t receive_buffer_frames_;
  std::map<NodeId, NodeState> nodes_;
  std::map<NodeId, std::vector<Submitted>> submitted_;  // [sender][index - 1]
  uint64_t submitted_count_ = 0;
  // The total order as first observed: position -> message.
  std::vector<MessageKey> order_;
  uint64_t deliveries_ = 0;
  uint64_t now_us_ = 0;
  uint64_t violations_ = 0;
  std::string first_violation_;
};

}  // namespace totem::sim

#endif  // TOTEM_SIM_CHECKER_H_
