// Deterministic simulator for the single-ring protocol, in the style of
// FoundationDB's sim2: N totem::core::SingleRing cores in one process, one
// thread, virtual time in microseconds that jumps to the next event, and ONE
// seeded random source deciding everything (ARCHITECTURE.md section 6).
//
// Events are ordered by (virtual time, insertion counter), nothing is keyed
// by pointer and no wall clock is read, so a seed replays byte for byte; the
// run's digest (a hash over every event: time, node, kind, bytes) proves it.
//
// The network copies every datagram, per recipient of a multicast, and may
// drop it (independent loss plus occasional bursts during which a node hears
// nothing), duplicate it, delay it (base latency + jitter) and reorder it
// (an extra delay so later datagrams overtake it). Optional corruption only
// damages datagrams in ways the decoders must reject — truncation by at
// least one byte (every frame type has an exact length) or a damaged magic /
// version byte — because the core has no authentication of its own: a
// well-formed but altered frame would be "valid" to it, and the transport's
// HMAC is what rejects those in the real system. Each corrupted datagram a
// node receives must show up in its drop_malformed + drop_bad_version.
//
// Faults (--faults, simulator-level, drawn from the seed before the
// workload): crash (the core is destroyed: its timers and the datagrams it
// has in flight vanish; datagrams sent to it while down are lost), restart
// (a new core with the ring seq it persisted through PersistRingSeq: "with
// its state file"), restart-wiped (without it: the ring seq is derived from
// virtual time as the runtime derives it from wall-clock microseconds when
// the file is missing, i.e. kSimEpochSeconds * 10^6 + now_us; or 0 with
// wiped_seq_zero), partition (every node, up or down, is put into one of 2-3
// components; datagrams between components are dropped, also those already
// in flight), heal, loss-burst (for 5-100 ms, 30-80% of the datagrams to or
// from one node, or between all nodes, are lost: aimed at membership
// rounds) and slow (for 10-300 ms a node takes 0.2-5 ms to process each
// datagram, in order, so its input queues up). The first fault falls in the
// first 50 ms (during the initial ring formation); gaps between faults are
// short (a few join periods: faults during membership) or long (up to twice
// token timeout + consensus timeout). After the last fault comes the FINAL
// HEAL: partitions, loss bursts and slowness end; crashed nodes stay down.
// From the moment the network is stable (final heal, and every datagram a
// slow node had queued processed) the live nodes must converge into one
// Operational ring of exactly themselves, installed by all, within
//   bound = 2 x (token timeout(n) + consensus + merge) + 4 x join + 50 ms
// (a ring may first have to notice a crash, exclude the dead node after the
// consensus timeout and then merge with the rest; see ConvergenceBoundUs).
// The bound applies when the network itself is loss-free (--loss and
// --corrupt 0); with background loss every lost datagram may start another
// membership round, so there only eventual convergence (by the end of the
// run) is required. Once converged on a loss-free network, any further
// configuration change is a violation (spurious membership change).
//
// The workload submits `messages` messages from random nodes at random
// times, of random sizes (some larger than a frame, to exercise
// fragmentation) and random guarantee; a refused Submit (kWouldBlock) is
// retried later. The Checker judges every delivery and every step; a run
// ends when every message is delivered everywhere (plus a settling period in
// which nothing more may be delivered) or at the virtual-time limit, which
// is a liveness violation.
//
// Instead of that workload, an App (SimOptions::app) may run on top of the
// cores: it is told of node starts, crashes, configuration events and
// deliveries, submits its own messages, sets its own timers, draws from the
// same random source and may apply scripted faults; the checker judges its
// messages like the workload's (each carries the workload header in front
// of the app's bytes). Runs without an app are unchanged, digest for digest.
#ifndef TOTEM_SIM_SIMULATOR_H_
#define TOTEM_SIM_SIMULATOR_H_

#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "totem/config.h"
#include "totem/status.h"
#include "totem/types.h"

namespace totem::sim {

class Random;

// Deliberate faults injected between the cores and the checker, to prove
// that the checker does not pass silently (tests and --inject-fault).
enum class InjectedFault : uint8_t {
  kNone = 0,
  kDropDelivery,    // one delivery at one node never reaches the checker
  kCorruptPayload,  // one delivered payload has a byte flipped
  kSwapDeliveries,  // two consecutive deliveries at one node are swapped
  kFalseSafe,       // the checker is told a safe frame was not received by all
};
const char* InjectedFaultName(InjectedFault f);
bool ParseInjectedFault(const std::string& name, InjectedFault* out);

// Fault kinds (bit mask for SimOptions::faults).
enum FaultKind : uint32_t {
  kFaultCrash = 1u << 0,
  kFaultRestart = 1u << 1,
  kFaultRestartWiped = 1u << 2,
  kFaultPartition = 1u << 3,
  kFaultHeal = 1u << 4,
  kFaultLossBurst = 1u << 5,
  kFaultSlow = 1u << 6,
  kFaultAll = (1u << 7) - 1,
};
// "crash,restart,..." <-> mask; "all" is every kind, "none" or "" none.
bool ParseFaults(const std::string& list, uint32_t* mask);
std::string FaultsString(uint32_t mask);

// Virtual wall clock of a wiped restart, in seconds at virtual time 0.
inline constexpr uint64_t kSimEpochSeconds = 1'000'000'000;

// One fault an application applies itself (AppContext::ApplyFault), for
// scripted scenarios: kFaultCrash / kFaultRestart / kFaultRestartWiped name
// `node`; kFaultPartition puts node i + 1 into `components[i]` (one entry
// per node); kFaultHeal ends a partition; kFaultLossBurst and kFaultSlow as
// in the drawn schedule (`node` kNoNode: all links, for loss bursts).
struct FaultSpec {
  FaultKind kind = kFaultHeal;
  NodeId node = kNoNode;
  std::vector<uint32_t> components;
  uint64_t duration_us = 0;
  double loss = 0;
  uint64_t service_us = 0;
};

// What an application may do to the simulation. Everything it draws comes
// from the simulation's one seeded random source, so a seed still names a
// run exactly.
class AppContext {
 public:
  virtual ~AppContext() = default;
  virtual uint64_t now_us() const = 0;
  virtual uint32_t nodes() const = 0;
  // Whether `node` is running (not crashed).
  virtual bool IsUp(NodeId node) const = 0;
  // Submits `bytes` at `node` with guarantee `g`; the bytes come back in
  // App::OnDelivery exactly as given. Errors: kUnavailable if `node` is
  // down; kFailedPrecondition when called from inside OnConfiguration /
  // OnDelivery (a core is mid-step: schedule a timer at now_us() and submit
  // from OnTimer); otherwise what the core's Submit returns (kWouldBlock:
  // its queue is full, retry later).
  virtual Status Submit(NodeId node, std::span<const uint8_t> bytes, Guarantee g) = 0;
  // OnTimer(token) runs at virtual time max(at_us, now). Timers are never
  // cancelled: ignore stale tokens.
  virtual void ScheduleTimer(uint64_t at_us, uint64_t token) = 0;
  // THE simulation's random source.
  virtual Random& random() = 0;
  // Records a violation (prefixed with the virtual time); the run stops.
  virtual void Fail(const std::string& what) = 0;
  // Applies a fault now (scripted scenarios). Not from inside a core step
  // (kFailedPrecondition, as for Submit).
  virtual Status ApplyFault(const FaultSpec& fault) = 0;
  // With SimOptions::app_final_heal: ends the fault period like the drawn
  // schedule's final heal (partitions, bursts and slowness end; the
  // convergence bound starts).
  virtual void FinalHeal() = 0;
  virtual bool tracing() const = 0;
  virtual void Trace(NodeId node, const std::string& what) = 0;
};

// An application on top of the simulated ring (the store's replication
// engine in kvstore/sim): it replaces the built-in message workload. The
// simulator calls it on its one thread; `ctx` is valid from Attach until
// the run ends. Callbacks from inside a core step (OnConfiguration,
// OnDelivery) must not submit or apply faults (see AppContext).
class App {
 public:
  virtual ~App() = default;
  virtual void Attach(AppContext* ctx) = 0;
  // The node (re)starts; `wiped`: without its disk (restart-wiped). Called
  // before its core starts, also for the first start of every node.
  virtual void OnNodeStart(NodeId node, bool wiped) = 0;
  // The node crashed: its volatile state is gone, its disk stays.
  virtual void OnNodeCrash(NodeId node) = 0;
  virtual void OnConfiguration(NodeId node, const ConfigurationEvent& event) = 0;
  // `delivery.payload` holds the submitted bytes; valid during the call.
  virtual void OnDelivery(NodeId node, const Delivery& delivery) = 0;
  virtual void OnTimer(uint64_t token) = 0;
  // The network became stable at `stable_us` (final heal).
  virtual void OnStable(uint64_t stable_us) { (void)stable_us; }
  // The app's work is finished; the run ends after the settle period once
  // the ring has converged too.
  virtual bool Done() const = 0;
  // Why not Done (for the liveness report at the time limit).
  virtual std::string NotDoneReason() const { return "the application is not done"; }
  // End of a run that did not time out: final checks (report with Fail).
  virtual void OnEnd() = 0;
};

struct SimOptions {
  uint64_t seed = 1;
  uint32_t nodes = 3;
  uint32_t messages = 100;

  // Network.
  double loss = 0;                   // probability a datagram copy is dropped
  double dup = 0;                    // probability a datagram is delivered twice
  double reorder = 0;                // probability a datagram gets extra delay
  double corrupt = 0;                // probability a datagram copy is truncated / damaged
  bool burst_loss = true;            // with loss > 0: occasional deaf periods
  uint64_t latency_us = 100;         // base one-way delay
  uint64_t jitter_us = 50;           // uniform extra delay in [0, jitter_us]
  uint64_t reorder_delay_us = 2000;  // extra delay in [1, reorder_delay_us]

  // Ring configuration (RingConfig fields).
  bool packing = true;
  uint32_t window_size = 256;
  uint32_t max_messages_per_visit = 64;
  uint32_t max_frame_bytes = 1400;
  uint32_t receive_buffer_frames = 16384;
  uint64_t max_pending_bytes = 16u << 20;
  uint32_t max_message_bytes = 1u << 20;
  uint32_t max_rtr_entries = 128;
  uint32_t token_retransmit_us = 10000;
  uint32_t token_hold_us = 8000;
  // Membership timeouts (RingConfig defaults).
  uint32_t token_timeout_us = RingConfig().token_timeout_us;
  uint32_t token_timeout_per_node_us = RingConfig().token_timeout_per_node_us;
  uint32_t join_timeout_us = RingConfig().join_timeout_us;
  uint32_t consensus_timeout_us = RingConfig().consensus_timeout_us;
  uint32_t merge_timeout_us = RingConfig().merge_timeout_us;

  // Faults (see the file comment).
  uint32_t faults = 0;          // FaultKind mask
  uint32_t fault_count = 0;     // faults per run; 0: drawn from the seed in [1, 6]
  bool wiped_seq_zero = false;  // restart-wiped passes ring seq 0, not a time-based one
  uint64_t converge_ms = 0;     // termination bound; 0: ConvergenceBoundUs
  // Checker static-membership mode: exactly one configuration, with every
  // node, in the whole run (runs on a network that must not split the ring).
  bool static_membership = false;

  // Workload.
  uint64_t spread_ms = 0;         // submit times uniform in [0, spread]; 0: automatic
  uint32_t large_percent = 10;    // share of messages larger than a frame (besides
                                  // 5% at exact frame-capacity boundaries)
  uint32_t large_max_frames = 4;  // large messages span up to this many frames
  double safe_fraction = 0.5;     // share of kSafe messages

  // Run control.
  uint64_t max_time_ms = 60000;  // virtual-time limit
  uint64_t settle_ms = 50;       // after everything is delivered, run on this long
  uint64_t max_events = 50'000'000;
  InjectedFault inject = InjectedFault::kNone;

  std::ostream* trace = nullptr;  // every event, one line each (single runs)

  // Application (nullptr: the built-in message workload). With an app,
  // `messages` and the workload options are ignored, the Totem checker
  // still judges every delivery, and the run ends once the app is Done and
  // the ring converged (plus settle_ms), or at max_time_ms (a liveness
  // violation). Not owned.
  App* app = nullptr;
  // With an app and no drawn faults: the network counts as unstable until
  // the app calls AppContext::FinalHeal (scripted fault scenarios).
  bool app_final_heal = false;
};

struct RunResult {
  bool ok = true;
  uint64_t violations = 0;
  std::string first_violation;
  uint64_t digest = 0;
  uint64_t virtual_us = 0;  // time of the last event handled
  uint64_t events = 0;
  uint64_t submitted = 0;
  uint64_t deliveries = 0;   // message deliveries over all nodes
  uint64_t datagrams = 0;    // datagram copies put on the network
  uint64_t dropped = 0;      // copies lost (loss, bursts)
  uint64_t corrupted = 0;    // copies damaged
  uint64_t would_block = 0;  // refused submits, retried
  uint64_t token_retransmits = 0;
  uint64_t retransmissions = 0;  // data frames re-sent on request, all nodes
  uint64_t out_of_window = 0;    // frames dropped beyond a receive buffer, all nodes
  uint64_t faults = 0;           // fault events executed (final heal excluded)
  uint64_t crashes = 0;
  uint64_t restarts = 0;
  uint64_t configuration_events = 0;  // over all processes
  uint64_t stable_us = 0;             // when the network became stable (final heal)
  uint64_t converged_us = 0;          // first convergence after that (0: never)
  uint64_t bound_us = 0;              // termination bound that applied
};

// The termination bound for `options` (see the file comment).
uint64_t ConvergenceBoundUs(const SimOptions& options);

// Validates options a run can't work with; empty string if fine.
std::string ValidateOptions(const SimOptions& options);

// Runs one seed. Deterministic: the same options give the same result and
// digest. Precondition: ValidateOptions(options) is empty.
RunResult RunSimulation(const SimOptions& options);

}  // namespace totem::sim

#endif  // TOTEM_SIM_SIMULATOR_H_
