// The effects interface of the pure protocol cores. A core never touches a
// socket, clock, thread or random source: each input (a frame, a timer that
// fired, a submitted message, plus the current time) is handled to
// completion, and everything the core wants done is emitted through an
// Output. The Boost.Asio runtime and the deterministic simulator are the two
// implementations. Spans passed to an Output are valid only during the call,
// and an Output must not call back into the core from inside a callback
// (queue the work and feed it in after the current input returns).
#ifndef TOTEM_CORE_OUTPUT_H_
#define TOTEM_CORE_OUTPUT_H_

#include <cstdint>
#include <span>

#include "totem/types.h"

namespace totem::core {

// Timers a core may arm. Each id has at most one pending instance: setting
// an armed timer re-arms it.
enum class TimerId : uint8_t {
  kTokenRetransmit = 0,  // re-send the last forwarded token
  kTokenHold = 1,        // the idle representative releases the held token
  kTokenLoss = 2,        // no token for too long: the ring is broken (membership)
  kJoin = 3,             // re-send the join message while gathering
  kConsensus = 4,        // give up on members that have not agreed
  kMerge = 5,            // the idle representative announces its ring
  kCount = 6,
};
const char* TimerName(TimerId id);

class Output {
 public:
  virtual ~Output() = default;
  // Send `frame` to one processor (the token goes this way).
  virtual void Unicast(NodeId to, std::span<const uint8_t> frame) = 0;
  // Send `frame` to every other processor of the ring (not to this one).
  virtual void Multicast(std::span<const uint8_t> frame) = 0;
  // Arm (or re-arm) a timer to fire `delay_us` microseconds from now.
  virtual void SetTimer(TimerId id, uint64_t delay_us) = 0;
  virtual void CancelTimer(TimerId id) = 0;
  // One application message in the total order.
  virtual void Deliver(const Delivery& delivery) = 0;
  virtual void DeliverConfiguration(const ConfigurationEvent& event) = 0;
  // The core is about to use ring sequence numbers up to `ring_seq`. A
  // driver that persists state writes it durably (atomically) before it
  // returns, so ring ids keep increasing across restarts; the core passes it
  // back to the constructor after a restart.
  virtual void PersistRingSeq(uint64_t ring_seq) { (void)ring_seq; }
};

}  // namespace totem::core

#endif  // TOTEM_CORE_OUTPUT_H_
