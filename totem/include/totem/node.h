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
//  - Every node of the ring delivers the same messages in the same order.
//    kSafe messages are delivered only once every member has received them.
//  - Stop (or the destructor) stops the thread; no callback runs after it
//    returns.
#ifndef TOTEM_NODE_H_
#define TOTEM_NODE_H_

#include <chrono>
#include <functional>
#include <memory>
#include <span>

#include "totem/config.h"
#include "totem/counters.h"
#include "totem/status.h"
#include "totem/types.h"

namespace totem {

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
