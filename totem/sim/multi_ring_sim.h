// Deterministic simulator of the multiple-ring protocol: 2-4 rings of
// 2-4 processors each, joined by gateways in a chain, a tree (a star around
// ring 1) or a cycle, every processor running one real SingleRing core per
// ring it is on and one MultiRing above them, over a simulated network
// (one LAN per ring: latency, jitter, optional loss), in virtual time with
// ONE seeded random source, like totem-sim (simulator.h).
//
// Faults come in episodes drawn from the seed: crash a processor that is
// not a gateway and restart it; crash a gateway and restart it; split one
// ring's members into two components and heal it. Each is repaired before
// the next starts, or (overlap) they overlap: the next starts 50-300 ms
// after the previous one started.
//
// The checker: every processor (each run of a node counts as one) delivers
// every message at most once, with the bytes that were submitted, in
// strictly increasing key order, and every message and topology change has
// the same key (so the same logical point) and content everywhere; for any
// two processors the messages both delivered come in the same relative order
// (checked directly, not only through the keys). Liveness: after the last
// repair, each ring's probe (re-sent every 200 ms: one message may be lost
// at a configuration change, see multi_ring.h) must reach every processor
// that is up. Destinations: a share of the messages (and one probe per
// ring) name random destination rings; such a message must be delivered
// only by processors on one of them (checked at every delivery) and, like
// any other, by every such processor in strict runs and for the probes.
// Strict runs (no faults, no loss: the rings never change after
// they formed) must deliver every message everywhere and drop nothing after
// the workload starts.
//
// Global configurations (multi_ring.h): every processor's configurations are
// recorded and checked: (a) two processors that deliver the same id deliver
// it at the same key with the same members and ring members (and each
// processor is in its own); (b) ids (their seq) increase at each processor
// (ties of one timestamp and source ring are counted: seq_ties), and every
// message carries the processor's current id; (c) processors that
// both delivered configurations C and then C' delivered the same messages
// between them (of those destined to both; the order is checked above):
// mismatches are counted (vs_set_mismatches: messages dropped as late
// around topology changes, a documented limit) and fail only strict runs;
// (d) liveness: the run ends only once every processor that is up has the
// same last configuration, whose members are exactly the nodes that are up.
//
// Process groups (--groups): every processor also runs a ProcessGroups
// layer on its MultiRing exactly like GroupNode::StartMultiRing (global
// configurations as EVS events, sender = the key's origin, multicasts routed
// by group_routing.h, joins and leaves not yet applied re-sent at each new
// configuration, state messages submitted); random live processors join and
// leave 3-4 groups and multicast to one or two of them. group_checker.h
// lists the checks; with --groups the run also waits for every live layer
// to finish its state exchange (for at most 1 s of virtual time: a lost
// state message stalls it until the next configuration; counted).
#ifndef TOTEM_SIM_MULTI_RING_SIM_H_
#define TOTEM_SIM_MULTI_RING_SIM_H_

#include <cstdint>
#include <ostream>
#include <string>

namespace totem::sim {

enum class MultiTopology : uint8_t { kChain, kTree, kCycle };
const char* MultiTopologyName(MultiTopology t);
bool ParseMultiTopology(const std::string& name, MultiTopology* out);

enum MultiFaultKind : uint32_t {
  kMultiFaultCrash = 1u << 0,      // a processor that is not a gateway
  kMultiFaultGateway = 1u << 1,    // a gateway
  kMultiFaultPartition = 1u << 2,  // split one ring
  kMultiFaultAll = (1u << 3) - 1,
};
// "crash,gateway,partition" / "all" / "none" <-> mask.
bool ParseMultiFaults(const std::string& list, uint32_t* mask);

// Deliberate faults between the cores and the checker, to prove the checker
// does not pass silently (--inject; such runs must all report a violation).
enum class MultiInjection : uint8_t {
  kNone = 0,
  kSwapDeliveries,  // one processor's two consecutive deliveries reach the checker swapped
  kSkewForwarded,   // one gateway forwards one message with its timestamp lowered
  kDropDelivery,    // one delivery at one processor never reaches the checker
  // One message with destinations is submitted to the core without them
  // (the checker still expects them): it reaches processors it must not.
  kIgnoreDestinations,
  // Global configurations: the first configuration a second processor
  // delivers reaches the checker with one member fewer (check a); one
  // processor's first configuration reaches it twice (check b); from the
  // first configuration after the workload starts, one node's
  // configurations never reach it (liveness d; needs faults).
  kConfigMembers,
  kRepeatConfiguration,
  kStopConfigurations,
  // --groups: one processor applies the first join it delivers after the
  // workload starts to another group than the one named (one nobody joins).
  kWrongGroupJoin,
};
const char* MultiInjectionName(MultiInjection i);
bool ParseMultiInjection(const std::string& name, MultiInjection* out);

struct MultiSimOptions {
  uint64_t seed = 1;
  MultiTopology topology = MultiTopology::kChain;
  uint32_t rings = 3;              // 2-4 (a cycle needs 3)
  uint32_t min_ring_nodes = 2;     // processors per ring, gateways included,
  uint32_t max_ring_nodes = 4;     // drawn per ring in [min, max]
  uint32_t messages = 100;         // workload messages
  double safe_fraction = 0.3;      // share submitted as kSafe
  double filter_fraction = 0.3;    // share submitted with random destination rings
  double loss = 0;                 // per datagram copy
  uint32_t faults = 0;             // MultiFaultKind mask
  uint32_t max_episodes = 3;       // fault episodes per run: [1, max_episodes]
  bool redundant_gateway = false;  // two gateways between rings 1 and 2
  bool overlap = false;            // the next episode may start before the last is repaired
  uint64_t guarantee_interval_us = 20000;
  uint64_t max_time_ms = 20000;  // virtual-time limit (a liveness violation)
  MultiInjection inject = MultiInjection::kNone;
  // Process groups (group_checker.h): a ProcessGroups layer on every
  // processor over its MultiRing, as GroupNode::StartMultiRing runs it, with
  // `group_ops` random joins, leaves and group multicasts of 3-4 groups.
  bool groups = false;
  uint32_t group_ops = 80;
  std::ostream* trace = nullptr;
};

struct MultiRunResult {
  bool ok = true;
  std::string first_violation;
  uint64_t violations = 0;
  uint64_t digest = 0;  // over every delivery (node, key) in order
  uint64_t virtual_us = 0;
  uint64_t events = 0;
  uint64_t processors = 0;  // runs of nodes
  uint64_t submitted = 0;
  uint64_t deliveries = 0;
  uint64_t topology_events = 0;
  uint64_t forwarded = 0;
  uint64_t episodes = 0;
  uint64_t late_dropped = 0;
  // Messages (workload and probes) that a processor up for the whole run
  // never delivered.
  uint64_t incomplete = 0;
  uint64_t unsynced_dropped = 0;  // own-ring messages dropped at configuration changes
  uint64_t unreachable_accepted = 0;
  uint64_t filtered_skipped = 0;     // deliveries skipped: not for that processor
  uint64_t stubs_forwarded = 0;      // payload-less copies sent by gateways
  uint64_t stub_at_destination = 0;  // for a processor that got only a stub
  // Global configurations delivered (all processors), Resyncs sent, and
  // how often two processors that delivered the same two consecutive
  // configurations delivered different sets of messages (both destined)
  // between them: the layer's documented limit around topology changes,
  // reported; a violation in strict runs.
  uint64_t configurations = 0;
  uint64_t resyncs = 0;
  uint64_t vs_set_mismatches = 0;
  // Keys at which processors delivered configurations with different ids
  // (differing views, allowed; counted once per key).
  uint64_t divergent_keys = 0;
  // (b) exceptions: a configuration whose seq is not above the previous one
  // at the same processor, both at keys of one (timestamp, source ring):
  // only two parts of a partitioned ring stamp one timestamp; the id's
  // digest then orders them arbitrarily (multi_ring.h).
  uint64_t seq_ties = 0;
  // --groups (group_checker.h): submitted joins/leaves/multicasts, joins
  // and leaves re-sent at new configurations, group views and deliveries,
  // members that missed a group message (no stream copy: routing gap or a
  // multi-ring drop; or the layer did not deliver it), syncs forced by a
  // configuration change, and processors whose joined groups at the end are
  // not the ones asked for (a lost join or leave not re-sent yet).
  uint64_t group_joins = 0;
  uint64_t group_leaves = 0;
  uint64_t group_multicasts = 0;
  uint64_t group_resubmits = 0;
  uint64_t group_views = 0;
  uint64_t group_deliveries = 0;
  uint64_t group_missed_no_stream = 0;
  uint64_t group_missed_by_layer = 0;
  uint64_t group_syncs_forced = 0;
  uint64_t group_hold_dropped = 0;
  uint64_t group_unmet = 0;
  // Group views (a) and end states (e) that differ between two processors
  // the stream brought different membership messages (group_checker.h).
  uint64_t group_views_diverged = 0;
  uint64_t group_states_diverged = 0;
  // Live processors still in a state exchange at the end: one lost a state
  // message around a ring change and waits for the next configuration
  // (process_groups.h); (e) skips them.
  uint64_t group_stalled_syncs = 0;
};

// Empty if `o` can run; else what is wrong with it.
std::string ValidateMultiOptions(const MultiSimOptions& o);

// Runs one seed. Deterministic. Precondition: ValidateMultiOptions is empty.
MultiRunResult RunMultiRingSimulation(const MultiSimOptions& o);

}  // namespace totem::sim

#endif  // TOTEM_SIM_MULTI_RING_SIM_H_
