// Message packing and fragmentation (Friedman & van Renesse, "Packing
// Messages as a Tool for Boosting the Performance of Total Ordering
// Protocols"; corosync's totempg does the same). Messages submitted between
// token visits wait in a bounded queue; at the visit, the Packer fills each
// data frame with as many of them as fit (one header, one datagram, one
// receive for many messages) and splits a message larger than a frame into
// fragments. The Reassembler undoes this on delivery, per sender, relying on
// the total order delivering each sender's frames in the order it sent them.
// Packing can be switched off to measure what it buys: then each frame
// carries one message or one fragment.
#ifndef TOTEM_CORE_PACKING_H_
#define TOTEM_CORE_PACKING_H_

#include <cstdint>
#include <deque>
#include <span>
#include <unordered_map>
#include <vector>

#include "totem/core/wire.h"
#include "totem/status.h"
#include "totem/types.h"

namespace totem::core {

class Packer {
 public:
  // Preconditions: max_frame_bytes leaves room for the headers and one byte.
  Packer(uint32_t max_frame_bytes, bool packing, uint32_t max_message_bytes,
         uint64_t max_pending_bytes);

  // Queues a copy of `data`. Errors: kResourceExhausted if data is larger
  // than max_message_bytes; kWouldBlock if the queue would exceed
  // max_pending_bytes (nothing is queued; retry once frames have gone out).
  Status Push(std::span<const uint8_t> data, Guarantee guarantee);

  bool empty() const { return queue_.empty(); }
  uint64_t pending_bytes() const { return pending_bytes_; }
  size_t pending_messages() const { return queue_.size(); }
  // Frames needed to send everything queued (the backlog of flow control).
  uint32_t BacklogFrames() const;

  // Writes the next data frame (header included) into `out`. Returns false,
  // leaving `out` untouched, when nothing is queued. `*fragments` is
  // increased by the number of fragment chunks in the frame.
  bool BuildFrame(NodeId sender, const RingId& ring_id, uint64_t seq, std::vector<uint8_t>& out,
                  uint64_t* fragments);

  // After a configuration change: a message whose first fragments went out
  // on the old ring is sent again whole (receivers drop the incomplete
  // copy), so it is delivered exactly once.
  void RestartPartial();

  // Payload bytes available in an empty frame.
  uint32_t frame_capacity() const { return frame_capacity_; }

 private:
  struct Pending {
    std::vector<uint8_t> data;
    Guarantee guarantee;
    size_t offset = 0;  // bytes already sent as fragments
  };
  const uint32_t max_frame_bytes_;
  const uint32_t frame_capacity_;
  const bool packing_;
  const uint32_t max_message_bytes_;
  const uint64_t max_pending_bytes_;
  std::deque<Pending> queue_;
  uint64_t pending_bytes_ = 0;  // unsent bytes
};

// Reassembles messages from delivered frames.
class Reassembler {
 public:
  // Receives the reassembled messages (an interface rather than
  // std::function so the delivery path does not allocate).
  class Sink {
   public:
    virtual ~Sink() = default;
    virtual void OnMessage(Guarantee guarantee, std::span<const uint8_t> payload) = 0;
  };
  explicit Reassembler(uint32_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

  // Calls `sink` for every message the frame completes, in order.
  // Returns the number of chunks rejected as inconsistent fragments (a
  // continuation with no start, a length mismatch); those messages are
  // dropped, never delivered corrupted. `frame` must have passed
  // DecodeDataBody.
  uint64_t Unpack(NodeId sender, std::span<const uint8_t> frame, Sink& sink);

  // Forgets partial messages (at a configuration change).
  void Reset() { partial_.clear(); }
  size_t partial_count() const { return partial_.size(); }

 private:
  struct Partial {
    std::vector<uint8_t> data;
    uint32_t total = 0;
    Guarantee guarantee = Guarantee::kAgreed;
  };
  const uint32_t max_message_bytes_;
  std::unordered_map<NodeId, Partial> partial_;
};

}  // namespace totem::core

#endif  // TOTEM_CORE_PACKING_H_
