// The public runtime API of the Totem library: a processor on a ring, driven
// by Boost.Asio on one thread of its own, over real UDP (unicast node list or
// multicast group), with every frame authenticated by the cluster key.
//
// Contract:
//  - Node::Start validates the config, reads the key, binds the sockets and
//    starts the node's I/O thread; any failure is returned, nothing leaks.
//  - Submit may be called from any thread. It never blocks: when the bounded
//    submit queue is full it returns kWouldBlock (WaitWritable waits for
//    room). Messages submitted by one node are delivered in submit order.
//  - Callbacks run on the node's I/O thread, one at a time, in the total
//    order. They must not block for long (the token waits for them) and must
//    not call Stop(). They may call Submit.
//  - Deliveries and configuration changes follow extended virtual synchrony
//    (types.h: Delivery, ConfigurationEvent): every delivery names the
//    configuration it is delivered in; members of a configuration deliver
//    its messages in one total order; kSafe messages are delivered in a
//    regular configuration only once every member has received them.
//  - The ring forms dynamically from the configured processors that answer:
//    a node may start alone, others join it, a crashed or partitioned one
//    is excluded and a restarted or reconnected one merged back. Submit
//    keeps working while the ring re-forms: messages are queued (within the
//    same bound) and sent once the node is operational again.
//  - The ring sequence number is persisted in NodeConfig::state_dir before
//    the core uses it (written atomically and durably, see config.h), so
//    ring ids keep increasing across restarts. If such a write fails the
//    node cannot keep that promise and the process aborts with a message
//    (fail-stop), since a node that reuses a ring id breaks the guarantees
//    for everyone.
//  - Stop (or the destructor) stops the thread; no callback runs after it
//    returns. Stop sends no goodbye: the others see a failed processor.
#ifndef TOTEM_NODE_H_
#define TOTEM_NODE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>

#include "totem/config.h"
#include "totem/counters.h"
#include "totem/status.h"
#include "totem/types.h"

namespace totem {

// What a node knows about its configuration, as of the last configuration
// event its callback was given (or is about to be given).
struct ConfigurationView {
  // The last regular configuration installed; id.seq == 0 and no members
  // before the first one.
  ConfigurationEvent regular;
  // A transitional configuration was delivered after `regular`: the node is
  // finishing the old configuration and the next regular one is coming.
  bool in_transition = false;
  uint64_t regular_installs = 0;       // regular configurations since Start
  uint64_t transitional_installs = 0;  // transitional configurations since Start
};

// Where a node stands in the membership protocol (the paper's states).
enum class RingState : uint8_t { kOperational, kGather, kCommit, kRecovery };
const char* RingStateName(RingState s);  // "operational", "gather", ...

// The ring as the runtime sees it, for operators.
struct RingStatus {
  RingState state = RingState::kGather;
  // Mean time between consecutive token arrivals at this node over the last
  // (up to kRotationWindow) rotations of the current ring, by the runtime's
  // steady clock; includes the time an idle representative holds the token.
  // 0 until two tokens of the current operational ring have arrived.
  uint64_t mean_token_rotation_us = 0;
  uint32_t rotations_measured = 0;  // rotations the mean is over
  static constexpr uint32_t kRotationWindow = 32;
};

struct Callbacks {
  std::function<void(const Delivery&)> on_deliver;
  std::function<void(const ConfigurationEvent&)> on_configuration;
};

class Node {
 public:
  static StatusOr<std::unique_ptr<Node>> Start(const NodeConfig& config, Callbacks callbacks);
  virtual ~Node() = default;

  // Queues `data` for totally ordered delivery to every member (this node
  // included). Errors: kWouldBlock (queue full, nothing queued),
  // kResourceExhausted (larger than max_message_bytes), kUnavailable (stopped).
  virtual Status Submit(std::span<const uint8_t> data, Guarantee guarantee) = 0;

  // Waits until the submit queue has room or `timeout` passes. Returns true
  // if there is room.
  virtual bool WaitWritable(std::chrono::milliseconds timeout) = 0;

  // A consistent snapshot of the counters (thread-safe).
  virtual Counters GetCounters() const = 0;

  // A snapshot of the node's configuration (thread-safe, cheap: no call
  // into the I/O thread). Updated just before on_configuration runs.
  virtual ConfigurationView CurrentConfiguration() const = 0;

  // The membership state and the measured token rotation time
  // (thread-safe, cheap: no call into the I/O thread). Updated after every
  // unit of I/O-thread work.
  virtual RingStatus GetRingStatus() const = 0;

  // The ring sequence number this node started from (the persisted value,
  // or the clock-derived one; see config.h NodeConfig::state_dir).
  virtual uint64_t initial_ring_seq() const = 0;

  // The UDP port this node's unicast socket is bound to.
  virtual uint16_t bound_port() const = 0;

  virtual void Stop() = 0;
};

// Reads a key file written by WriteKeyFile / `totem-keygen`.
StatusOr<std::string> ReadKeyFile(const std::string& path);
// Writes `bytes` of fresh random key (from the OS) to `path`, mode 0600.
Status WriteKeyFile(const std::string& path, size_t bytes = 32);

}  // namespace totem

#endif  // TOTEM_NODE_H_
