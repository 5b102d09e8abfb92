// Packing and fragmentation of application messages into data frames.
#include "totem/core/packing.h"

#include <algorithm>
#include <cstdlib>

namespace totem::core {

namespace {
constexpr size_t kDataPrefixBytes = kHeaderBytes + kDataFixedBytes;
constexpr size_t kMaxChunkBytes = 0xFFFF;
// Do not start a fragment in the tail of a frame smaller than this; start it
// in the next frame instead.
constexpr size_t kMinFragmentBytes = 32;
}  // namespace

Packer::Packer(uint32_t max_frame_bytes, bool packing, uint32_t max_message_bytes,
               uint64_t max_pending_bytes)
    : max_frame_bytes_(max_frame_bytes),
      frame_capacity_(
          static_cast<uint32_t>(max_frame_bytes - kDataPrefixBytes - kChunkHeaderBytes)),
      packing_(packing),
      max_message_bytes_(max_message_bytes),
      max_pending_bytes_(max_pending_bytes) {
  if (max_frame_bytes <=
      kDataPrefixBytes + kChunkHeaderBytes + kFirstChunkExtraBytes + kMinFragmentBytes) {
    std::abort();  // precondition: RingConfig::Validate enforces a sane frame size
  }
}

Status Packer::Push(std::span<const uint8_t> data, Guarantee guarantee) {
  if (data.size() > max_message_bytes_) {
    return Status(StatusCode::kResourceExhausted,
                  "message of " + std::to_string(data.size()) +
                      " bytes exceeds max_message_bytes=" + std::to_string(max_message_bytes_));
  }
  if (pending_bytes_ + data.size() > max_pending_bytes_ && !queue_.empty()) {
    return Status(StatusCode::kWouldBlock, "submit queue full (" + std::to_string(pending_bytes_) +
                                               " bytes pending, max_pending_bytes=" +
                                               std::to_string(max_pending_bytes_) + ")");
  }
  queue_.push_back(Pending{std::vector<uint8_t>(data.begin(), data.end()), guarantee, 0});
  pending_bytes_ += data.size();
  return Status::Ok();
}

void Packer::RestartPartial() {
  if (queue_.empty() || queue_.front().offset == 0) return;
  pending_bytes_ += queue_.front().offset;
  queue_.front().offset = 0;
}

uint32_t Packer::BacklogFrames() const {
  if (queue_.empty()) return 0;
  uint64_t frames =
      packing_ ? (pending_bytes_ + queue_.size() * kChunkHeaderBytes + frame_capacity_ - 1) /
                     frame_capacity_
               : queue_.size() + pending_bytes_ / frame_capacity_;
  frames = std::max<uint64_t>(frames, 1);
  return static_cast<uint32_t>(std::min<uint64_t>(frames, 0xFFFFFFFFu));
}

bool Packer::BuildFrame(NodeId sender, const RingId& ring_id, uint64_t seq,
                        std::vector<uint8_t>& out, uint64_t* fragments) {
  if (queue_.empty()) return false;
  out.clear();
  Writer w(out);
  EncodeHeader(w, Header{FrameType::kData, sender, ring_id});
  w.U64(seq);
  const size_t guarantee_offset = w.size();
  w.U8(static_cast<uint8_t>(Guarantee::kAgreed));
  w.U8(0);
  const size_t count_offset = w.size();
  w.U16(0);

  uint16_t count = 0;
  Guarantee strongest = Guarantee::kAgreed;
  while (!queue_.empty()) {
    Pending& m = queue_.front();
    const size_t space = max_frame_bytes_ - w.size();
    const size_t left = m.data.size() - m.offset;
    auto body = std::span<const uint8_t>(m.data).subspan(m.offset);
    if (m.offset == 0) {
      if (left + kChunkHeaderBytes <= space && left <= kMaxChunkBytes) {
        w.U8(static_cast<uint8_t>(ChunkKind::kWhole));
        w.U8(static_cast<uint8_t>(m.guarantee));
        w.U16(static_cast<uint16_t>(left));
        w.Bytes(body);
      } else {
        // Too big for what is left of this frame. If it would fit whole in a
        // fresh frame, send it there rather than splitting it.
        if (count > 0 && left <= frame_capacity_) break;
        if (space < kChunkHeaderBytes + kFirstChunkExtraBytes + kMinFragmentBytes) break;
        size_t n =
            std::min({space - kChunkHeaderBytes - kFirstChunkExtraBytes, left - 1, kMaxChunkBytes});
        w.U8(static_cast<uint8_t>(ChunkKind::kFirst));
        w.U8(static_cast<uint8_t>(m.guarantee));
        w.U16(static_cast<uint16_t>(n));
        w.U32(static_cast<uint32_t>(m.data.size()));
        w.Bytes(body.first(n));
        m.offset += n;
        pending_bytes_ -= n;
        ++*fragments;
        ++count;
        if (m.guarantee == Guarantee::kSafe) strongest = Guarantee::kSafe;
        break;  // the frame is full
      }
    } else {
      if (space < kChunkHeaderBytes + 1) break;
      size_t n = std::min({space - kChunkHeaderBytes, left, kMaxChunkBytes});
      bool last = n == left;
      w.U8(static_cast<uint8_t>(last ? ChunkKind::kLast : ChunkKind::kMiddle));
      w.U8(static_cast<uint8_t>(m.guarantee));
      w.U16(static_cast<uint16_t>(n));
      w.Bytes(body.first(n));
      ++*fragments;
      if (!last) {
        m.offset += n;
        pending_bytes_ -= n;
        ++count;
        if (m.guarantee == Guarantee::kSafe) strongest = Guarantee::kSafe;
        break;  // the frame is full
      }
    }
    if (m.guarantee == Guarantee::kSafe) strongest = Guarantee::kSafe;
    pending_bytes_ -= left;
    queue_.pop_front();
    ++count;
    if (!packing_) break;
  }
  out[guarantee_offset] = static_cast<uint8_t>(strongest);
  w.PatchU16(count_offset, count);
  return true;
}

uint64_t Reassembler::Unpack(NodeId sender, std::span<const uint8_t> frame, Sink& sink) {
  uint64_t bad = 0;
  ChunkIterator it(frame);
  ChunkView c;
  while (it.Next(c)) {
    auto found = partial_.find(sender);
    switch (c.kind) {
      case ChunkKind::kWhole:
        if (found != partial_.end()) {
          ++bad;  // an unfinished message was abandoned
          partial_.erase(found);
        }
        sink.OnMessage(c.guarantee, c.data);
        break;
      case ChunkKind::kFirst: {
        if (found != partial_.end()) ++bad;
        if (c.total_len > max_message_bytes_) {
          ++bad;
          if (found != partial_.end()) partial_.erase(found);
          break;
        }
        Partial& p = partial_[sender];
        p.data.assign(c.data.begin(), c.data.end());
        p.total = c.total_len;
        p.guarantee = c.guarantee;
        break;
      }
      case ChunkKind::kMiddle:
      case ChunkKind::kLast: {
        if (found == partial_.end()) {
          ++bad;
          break;
        }
        Partial& p = found->second;
        p.data.insert(p.data.end(), c.data.begin(), c.data.end());
        const bool last = c.kind == ChunkKind::kLast;
        if (p.data.size() > p.total || (!last && p.data.size() == p.total) ||
            (last && p.data.size() != p.total)) {
          ++bad;
          partial_.erase(found);
          break;
        }
        if (last) {
          sink.OnMessage(p.guarantee, p.data);
          partial_.erase(found);
        }
        break;
      }
    }
  }
  return bad;
}

}  // namespace totem::core
