// Ordering: the total order the Replicator runs the replication engine on
// (kvstore/replication.h), as extended virtual synchrony presents it:
// deliveries, each in a configuration, and configuration events. Two
// implementations:
//  - single ring: one totem::Node, passed through unchanged (the events and
//    deliveries of the ring itself);
//  - multiple rings (Totem multiple-ring protocol): a totem::MultiRingNode
//    on this member's rings. Its global configurations (every processor of
//    every reachable ring, in the global total order) become the engine's
//    EVS inputs: a transitional event (previous ∩ new members, id of the new
//    one) then the regular one for each global configuration after the
//    first; every delivery is in the regular configuration it names
//    (MultiDelivery::config). The multiple-ring layer delivers nothing in a
//    transitional configuration (it drops those messages, see
//    totem/core/multi_ring.h), so none reaches the engine either; messages
//    it delivers before its first global configuration are skipped (counted
//    as mring_unconfigured_skipped), as the engine would ignore them.
//
// Contract (both):
//  - Callbacks run on one thread (the Totem I/O thread, or the multi-ring
//    ordering thread), one at a time, in the total order; they must not
//    block and must not call Stop().
//  - Submit never blocks: kWouldBlock when the submit queue is full
//    (WaitWritable waits for room), kResourceExhausted when too large,
//    kUnavailable once stopped.
//  - Snapshots (CurrentConfiguration, GetRingStatus, counters, GlobalView)
//    are thread-safe.
//  - Stop (or the destructor) returns once no callback runs any more.
#ifndef TOTEMKV_SERVER_ORDERING_H_
#define TOTEMKV_SERVER_ORDERING_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "totem/counters.h"
#include "totem/multi_ring_node.h"
#include "totem/node.h"
#include "totem/status.h"
#include "totem/types.h"

namespace totemkv::server {

struct OrderingCallbacks {
  std::function<void(const totem::Delivery&)> on_deliver;
  std::function<void(const totem::ConfigurationEvent&)> on_configuration;
};

class Ordering {
 public:
  virtual ~Ordering() = default;

  virtual totem::Status Submit(std::span<const uint8_t> payload, totem::Guarantee guarantee) = 0;
  virtual bool WaitWritable(std::chrono::milliseconds timeout) = 0;

  // The configuration the engine last got (single ring: the ring's; multiple
  // rings: the global one).
  virtual totem::ConfigurationView CurrentConfiguration() const = 0;
  // This member's (first) local ring, for operators.
  virtual totem::RingStatus GetRingStatus() const = 0;
  virtual totem::Counters GetCounters() const = 0;  // of the first local ring
  // The multiple-ring layer's counters by name ("mring_*"); empty for one ring.
  virtual std::map<std::string, uint64_t> LayerCounters() const = 0;

  // The ring network as this member sees it.
  struct GlobalView {
    bool multi_ring = false;
    std::vector<uint32_t> local_rings;      // rings this member is on
    std::vector<uint32_t> reachable_rings;  // rings waited for (multiple rings only)
    std::string blocked_reason;             // why delivery waits ("" if it does not)
  };
  virtual GlobalView Global() const = 0;

  virtual void Stop() = 0;
};

// The engine's EVS inputs for the global configuration `g`, given the last
// regular event fed (null before the first): nothing if `g` has the same id;
// else a transitional event (id of `g`, members previous ∩ new, left
// previous − new) unless this is the first, then the regular one (members
// of `g`, joined new − previous, left previous − new). Pure.
std::vector<totem::ConfigurationEvent> EngineEvents(const totem::ConfigurationEvent* previous,
                                                    const totem::core::GlobalConfiguration& g);

// Starts one totem::Node with `config`.
totem::StatusOr<std::unique_ptr<Ordering>> StartSingleRingOrdering(const totem::NodeConfig& config,
                                                                   OrderingCallbacks callbacks);

// Starts a totem::MultiRingNode with `config` (see MultiRingNodeConfig).
totem::StatusOr<std::unique_ptr<Ordering>> StartMultiRingOrdering(
    const totem::MultiRingNodeConfig& config, OrderingCallbacks callbacks);

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_ORDERING_H_
