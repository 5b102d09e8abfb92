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
// that is up. Strict runs (no faults, no loss: the rings never change after
// they formed) must deliver every message everywhere and drop nothing after
// the workload starts.
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
  double loss = 0;                 // per datagram copy
  uint32_t faults = 0;             // MultiFaultKind mask
  uint32_t max_episodes = 3;       // fault episodes per run: [1, max_episodes]
  bool redundant_gateway = false;  // two gateways between rings 1 and 2
  bool overlap = false;            // the next episode may start before the last is repaired
  uint64_t guarantee_interval_us = 20000;
  uint64_t max_time_ms = 20000;  // virtual-time limit (a liveness violation)
  MultiInjection inject = MultiInjection::kNone;
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
};

// Empty if `o` can run; else what is wrong with it.
std::string ValidateMultiOptions(const MultiSimOptions& o);

// Runs one seed. Deterministic. Precondition: ValidateMultiOptions is empty.
MultiRunResult RunMultiRingSimulation(const MultiSimOptions& o);

}  // namespace totem::sim

#endif  // TOTEM_SIM_MULTI_RING_SIM_H_
