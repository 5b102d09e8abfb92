// The multiple-ring runtime: MultiRingNode, a processor on one ring (an
// ordinary processor) or on two or more rings (a gateway), each ring a
// totem::Node with its own peers and ports, with the pure multiple-ring
// ordering layer (totem/core/multi_ring.h) on top. Messages submitted
// anywhere in the ring graph are delivered everywhere in one global total
// order (by timestamp, source ring, origin); topology changes (gateways
// joining or leaving rings) come in that order too.
//
// Contract:
//  - Start validates the config (every local ring's NodeConfig has the same
//    node id, each ring number once, the topology passes
//    core::MultiRingConfig::Validate), starts one Node per local ring and one
//    ordering thread; any failure is returned and nothing keeps running.
//  - Every processor of every ring must run a MultiRingNode with the same
//    `rings` and `links` (the layer's Sync round waits for each member).
//  - The ring Nodes' callbacks only copy their deliveries and configuration
//    events into one queue; the ordering thread feeds them, the application's
//    submits and the layer's timer to the core in that order, so the core is
//    only ever touched by one thread.
//  - Submit may be called from any thread and never blocks: kWouldBlock when
//    the bounded submit queue is full (WaitWritable waits for room),
//    kResourceExhausted when larger than the first ring's max_message_bytes
//    minus the layer's envelope, kInvalidArgument for destinations the core
//    rejects (core::MultiRing::Submit), kUnavailable once stopped. The message
//    originates on the first local ring.
//  - Callbacks run on the ordering thread, one at a time, in the global
//    order; they must not block for long and must not call Stop().
//  - The incarnation distinguishes message ids of successive runs of the
//    same node id; it must grow across restarts. 0 picks the wall clock in
//    seconds (so restarts less than a second apart need an explicit one).
//  - Stop (or the destructor) stops the ordering thread and the ring Nodes;
//    no callback runs after it returns.
#ifndef TOTEM_MULTI_RING_NODE_H_
#define TOTEM_MULTI_RING_NODE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "totem/config.h"
#include "totem/core/multi_ring.h"
#include "totem/counters.h"
#include "totem/node.h"
#include "totem/status.h"
#include "totem/types.h"

namespace totem {

struct MultiRingNodeConfig {
  struct LocalRing {
    core::RingNumber ring = 0;
    NodeConfig node;  // this processor on that ring (its own peers, port, state dir)
  };
  std::vector<LocalRing> local;          // >= 1; the first one originates Submit
  std::vector<core::RingNumber> rings;   // every ring of the network
  std::vector<core::GatewayLink> links;  // every gateway edge
  uint64_t guarantee_interval_us = 20000;
  uint32_t incarnation = 0;           // 0: seconds since the epoch
  size_t max_pending_submits = 8192;  // bound of the submit queue (messages)
  // Persists the Lamport clock across restarts (core MultiRingConfig::
  // initial_clock), so timestamps and global configuration ids keep growing
  // even when every processor restarts. The file holds a high-water mark
  // reserved ahead of the clock: read at Start (absent: 0) and raised by
  // clock_reserve (written atomically, synced) whenever the clock comes
  // within half of it; a restart starts above the last mark written.
  // Empty: not persisted (timestamps restart from the network's clock).
  std::string clock_file;
  uint64_t clock_reserve = uint64_t{1} << 20;

  Status Validate() const;
};

struct MultiRingCallbacks {
  std::function<void(const core::MultiDelivery&)> on_deliver;
  std::function<void(const core::TopologyEvent&)> on_topology;
  // Optional: the global configuration (core::GlobalConfiguration), in the
  // total order; MultiDelivery::config names the one a message is in.
  std::function<void(const core::GlobalConfiguration&)> on_configuration;
  // Optional: a local ring's configuration events (on the ordering thread,
  // just before the layer sees them).
  std::function<void(core::RingNumber, const ConfigurationEvent&)> on_ring_configuration;
};

class MultiRingNode {
 public:
  static StatusOr<std::unique_ptr<MultiRingNode>> Start(const MultiRingNodeConfig& config,
                                                        MultiRingCallbacks callbacks);
  virtual ~MultiRingNode() = default;

  virtual Status Submit(std::span<const uint8_t> payload, Guarantee guarantee) = 0;
  // Delivered only on the rings `destinations` (empty: everywhere); see
  // core::MultiRing::Submit.
  virtual Status Submit(std::span<const uint8_t> payload, Guarantee guarantee,
                        std::span<const core::RingNumber> destinations) = 0;
  virtual bool WaitWritable(std::chrono::milliseconds timeout) = 0;

  // Snapshots (thread-safe), as of the last unit of ordering-thread work.
  virtual core::MultiRingCounters GetCounters() const = 0;
  virtual std::vector<core::RingNumber> Reachable() const = 0;
  virtual size_t Queued() const = 0;  // messages waiting in the receive queues
  // Why the head of the receive queues is not delivered ("" if it is not blocked).
  virtual std::string BlockedReason() const = 0;
  // The ring Node of local ring index `i` (order of config.local).
  virtual Counters GetRingCounters(size_t i) const = 0;
  virtual RingStatus GetRingStatus(size_t i) const = 0;
  virtual uint32_t incarnation() const = 0;

  virtual void Stop() = 0;
};

}  // namespace totem

#endif  // TOTEM_MULTI_RING_NODE_H_
