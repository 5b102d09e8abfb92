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
// The workload submits `messages` messages from random nodes at random
// times, of random sizes (some larger than a frame, to exercise
// fragmentation) and random guarantee; a refused Submit (kWouldBlock) is
// retried later. The Checker judges every delivery and every step; a run
// ends when every message is delivered everywhere (plus a settling period in
// which nothing more may be delivered) or at the virtual-time limit, which
// is a liveness violation.
#ifndef TOTEM_SIM_SIMULATOR_H_
#define TOTEM_SIM_SIMULATOR_H_

#include <cstdint>
#include <ostream>
#include <string>

namespace totem::sim {

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
};

// Validates options a run can't work with; empty string if fine.
std::string ValidateOptions(const SimOptions& options);

// Runs one seed. Deterministic: the same options give the same result and
// digest. Precondition: ValidateOptions(options) is empty.
RunResult RunSimulation(const SimOptions& options);

}  // namespace totem::sim

#endif  // TOTEM_SIM_SIMULATOR_H_
