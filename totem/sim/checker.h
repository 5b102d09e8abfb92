// The simulator's checker: judges everything a set of Totem cores delivers
// against extended virtual synchrony (Moser, Amir, Melliar-Smith, Agarwal,
// ICDCS 1994; ARCHITECTURE.md section 3.2; protocol notes section 2.7).
//
// The unit of judgement is a PROCESS: one incarnation of a node, from its
// start to its crash (a restarted node is a new process with an empty
// history). On every run it verifies:
//  - integrity: no invented message (payload byte for byte as submitted,
//    same sender and guarantee), no duplicate within a process, per-sender
//    order (indices strictly increase);
//  - configuration structure: a process starts with a regular
//    configuration; after that every regular configuration R is followed by
//    a transitional one T (id = the next regular id, members a subset of R
//    that contains the process, left = R - T) and then by that regular
//    configuration (joined = new - T, left = R - new); the representative is
//    the lowest member; ring seqs strictly increase within a process and a
//    node never installs the same ring id twice, across restarts;
//  - every delivery names the configuration the process is in;
//  - consensus: every process that installs configuration X reports the
//    same member list (a transitional configuration is identified by its id
//    AND the regular configuration it follows);
//  - basic delivery: a message is delivered in one regular configuration, or
//    in a transitional configuration that follows that one, never in two;
//  - regular configurations deliver without gaps: the deliveries of all
//    processes in regular configuration C are prefixes of one sequence;
//  - one total order: the per-process histories (messages AND configuration
//    events) merge into one order (pairwise, then acyclic globally);
//  - failure atomicity: processes that deliver the same configuration event
//    after the same configuration X delivered the same set of messages in
//    X; processes that end the run in the same configuration too;
//  - self-delivery: a process that does not crash delivers every message it
//    accepted (messages accepted by a process that crashed are exempt for
//    it; they may still be delivered by others);
//  - safe delivery (two checks): (a) at delivery time in the regular
//    configuration the process is still in, every member that is still in
//    that configuration (alive, same ring id, latest configuration event is
//    it) has the frame (the simulator evaluates HasReceived), and the
//    frame is at most safe_up_to; (b) at the end, every process that
//    installed that regular configuration and did not crash delivered it.
//    Members that crashed, or that never installed the configuration, are
//    exempt: only (b) can see members that moved on, and only from their
//    deliveries; a frame in a transitional configuration is not checkable
//    by HasReceived because the members have moved on to the new ring;
//  - agreed delivery never past a gap and safe_up_to bounded by every
//    member's aru, from the core's observers while Operational in the ring
//    the delivery names;
//  - termination (Unconverged): every live node Operational in one ring of
//    exactly the live nodes, with every process having installed it.
//
// In static-membership mode (the single-ring runs of the previous release,
// and runs that must not change membership) it also requires exactly one
// configuration event per process, regular with every member, per-sender
// FIFO without gaps, and every message delivered at every node.
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
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "totem/types.h"

namespace totem::sim {

// Identity of one submitted message: who submitted it and its index among
// that sender's accepted submissions (1, 2, 3, ...), counted across the
// node's restarts.
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

// Membership state of a core (mirrors core::MembershipState).
enum class MemberState : uint8_t { kOperational = 0, kGather, kCommit, kRecovery };
const char* MemberStateName(MemberState s);

// What the checker may observe of a core (SingleRing observers). All
// sequence numbers refer to the core's CURRENT ring.
struct CoreView {
  RingId ring_id;
  MemberState state = MemberState::kOperational;
  uint64_t aru = 0;
  uint64_t delivered_up_to = 0;
  uint64_t safe_up_to = 0;
  uint64_t high_seq = 0;
  size_t buffered_frames = 0;
  std::vector<NodeId> ring_members;  // sorted; the current ring
};

// One line describing a view (reports).
std::string ViewString(const CoreView& v);

class Checker {
 public:
  // `members`: every node that may run (any order); each starts as process
  // (incarnation) 1. `receive_buffer_frames`: the bound buffered_frames must
  // respect. `static_membership`: see the file comment.
  Checker(std::vector<NodeId> members, uint32_t receive_buffer_frames,
          bool static_membership = false);

  // Prefixes violation messages with the virtual time.
  void set_now(uint64_t now_us) { now_us_ = now_us; }

  // The node's current process crashed (it is exempt from self-delivery,
  // safe delivery and final agreement from now on). Restart begins a new
  // process; `with_state`: it kept its ring-seq state file (so its ring ids
  // must keep increasing).
  void OnCrash(NodeId node);
  void OnRestart(NodeId node, bool with_state);
  bool IsUp(NodeId node) const;

  // Registers a message about to be submitted at `key.sender`'s current
  // process. It must be called before the core sees the message (a core may
  // deliver during Submit). Withdraw undoes it when Submit refuses the
  // message; only the latest key of a sender may be withdrawn.
  void OnSubmitted(MessageKey key, Guarantee guarantee, std::vector<uint8_t> payload);
  void Withdraw(MessageKey key);

  void OnConfiguration(NodeId node, const ConfigurationEvent& event, const CoreView& core);
  // `all_members_received`: whether every member of the delivery's regular
  // configuration that is still in it reports HasReceived(frame_seq) (see
  // the file comment); ignored for agreed deliveries.
  void OnDelivery(NodeId node, const Delivery& delivery, const CoreView& core,
                  bool all_members_received);
  // After each input a core handled: state invariants. `min_aru` is the
  // lowest aru() over the live nodes whose ring id equals this node's, and
  // `min_aru_who` describes that node (for the report).
  void OnStep(NodeId node, const CoreView& core, uint64_t min_aru,
              const std::string& min_aru_who = "");
  // Termination: "" if the live nodes (views given, one per live node) form
  // one Operational ring of exactly themselves that every one of their
  // processes has installed; otherwise what is missing.
  std::string Unconverged(const std::map<NodeId, CoreView>& live) const;
  // True if `node` is up and its latest configuration event is the regular
  // configuration `id`.
  bool InRegular(NodeId node, const RingId& id) const;
  // Every live process delivered all its own messages, and live processes
  // that end in the same configuration delivered the same messages in it.
  bool Quiescent() const;
  // End of run: self-delivery, failure atomicity, safe delivery, total order
  // (and, in static mode, every message at every node).
  void Finish();

  // Records a violation found outside the checker (e.g. by the simulator).
  void Fail(const std::string& what);

  bool ok() const { return violations_ == 0; }
  uint64_t violations() const { return violations_; }
  const std::string& first_violation() const { return first_violation_; }

  uint64_t submitted() const { return submitted_count_; }
  uint64_t deliveries() const { return deliveries_; }
  uint64_t configurations() const { return configs_.size(); }
  uint64_t configuration_events() const { return configuration_events_; }
  // True once every registered message was delivered by every process
  // (static-membership runs).
  bool AllDelivered() const;

 private:
  struct Submitted {
    Guarantee guarantee = Guarantee::kAgreed;
    std::vector<uint8_t> payload;
    size_t process = 0;  // the submitting process
  };
  // (kind, id, previous regular id): a transitional configuration is named
  // by its id and the regular configuration it follows.
  using ConfigKey = std::tuple<ConfigurationKind, RingId, RingId>;
  struct Config {
    ConfigKey key;
    std::vector<NodeId> members;
    std::vector<size_t> installers;  // processes that delivered the event
    std::vector<MessageKey> order;   // regular: the common delivery sequence
    std::vector<MessageKey> safe;    // regular: delivered as safe in it
  };
  // One entry of a process history: a configuration event or a message.
  struct Item {
    bool is_config = false;
    size_t config = 0;
    MessageKey key;
    friend auto operator<=>(const Item&, const Item&) = default;
  };
  struct Segment {
    size_t config = 0;
    std::vector<MessageKey> delivered;
  };
  struct Process {
    NodeId node = kNoNode;
    uint32_t incarnation = 1;
    bool crashed = false;
    std::vector<Item> history;
    std::vector<Segment> segments;       // one per configuration event
    std::optional<size_t> last_regular;  // config index
    std::set<MessageKey> delivered;
    std::map<NodeId, uint64_t> last_index;  // per sender: highest index delivered
    uint64_t last_frame_seq = 0;            // since the last regular configuration
    std::vector<MessageKey> own;            // accepted submissions
    std::optional<CoreView> last_view;
  };

  Process* Current(NodeId node, const char* what);
  const Process* CurrentConst(NodeId node) const;
  std::string Name(const Process& p) const;
  std::string ConfigName(size_t config) const;
  void Violation(NodeId node, const std::string& what);
  void CheckStructure(Process& p, const ConfigurationEvent& e);
  void CheckTotalOrder();
  void CheckAtomicity();

  const bool static_;
  std::vector<NodeId> members_;  // sorted ascending
  uint32_t receive_buffer_frames_;
  std::vector<Process> processes_;
  std::map<NodeId, size_t> current_;  // node -> its latest process
  std::map<NodeId, std::set<RingId>> installed_by_node_;
  std::map<NodeId, uint64_t> max_seq_by_node_;  // highest regular seq, state-file lineage

  std::vector<Config> configs_;
  std::map<ConfigKey, size_t> config_index_;
  std::map<MessageKey, size_t> origin_;  // message -> regular config it belongs to

  std::map<NodeId, std::vector<Submitted>> submitted_;  // [sender][index - 1]
  uint64_t submitted_count_ = 0;
  uint64_t deliveries_ = 0;
  uint64_t configuration_events_ = 0;
  uint64_t now_us_ = 0;
  uint64_t violations_ = 0;
  std::string first_violation_;
};

}  // namespace totem::sim

#endif  // TOTEM_SIM_CHECKER_H_
