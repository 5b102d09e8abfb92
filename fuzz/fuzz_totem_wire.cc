// Fuzz target for the Totem frame decoder (totem/core/wire.h) and the
// single-ring state machine behind it. Frames come off UDP from anyone who
// holds the cluster key (or a bug in a peer), so every decoder must reject
// any byte string precisely, and the core must survive any sequence of
// frames that authenticate.
//
// Input:
//  1. The whole input is one frame: its header and the body of every frame
//     type are decoded; a frame that decodes is re-encoded and must give the
//     same bytes (token, join, commit token), and a data frame's chunks are
//     walked. Then the frame is handed to a fresh SingleRing core.
//  2. The input is also read as a sequence of records [len u16 LE][len bytes]
//     fed in order to a second core of a 3-node ring (node 2) with a no-op
//     Output; a record of length 0 fires the timer named by the next byte
//     instead, and time advances 7 ms per record. Seeds (fuzz/corpus/) hold
//     a real ring's frames in this form, so the fuzzer starts from a formed
//     ring and mutates from there.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "totem/config.h"
#include "totem/core/output.h"
#include "totem/core/single_ring.h"
#include "totem/core/wire.h"

namespace {

using totem::core::DecodeResult;
using totem::core::FrameType;

class NullOutput final : public totem::core::Output {
 public:
  void Unicast(totem::NodeId, std::span<const uint8_t>) override {}
  void Multicast(std::span<const uint8_t>) override {}
  void SetTimer(totem::core::TimerId, uint64_t) override {}
  void CancelTimer(totem::core::TimerId) override {}
  void Deliver(const totem::Delivery& d) override {
    // Touch every byte so ASan sees a dangling or short payload span.
    for (uint8_t b : d.payload) sum_ += b;
  }
  void DeliverConfiguration(const totem::ConfigurationEvent&) override {}

 private:
  uint64_t sum_ = 0;
};

void Check(bool ok) {
  if (!ok) std::abort();
}

totem::RingConfig MakeConfig() {
  totem::RingConfig c;
  c.node_id = 2;
  c.members = {1, 2, 3};
  c.receive_buffer_frames = 64;  // small: cheap to build, and wraps often
  c.window_size = 16;
  c.max_messages_per_visit = 8;
  c.max_rtr_entries = 16;
  c.max_message_bytes = 4096;
  c.max_pending_bytes = 16384;
  return c;
}

void DecodeOne(std::span<const uint8_t> frame) {
  totem::core::Reader r(frame);
  totem::core::Header h;
  if (totem::core::DecodeHeader(r, h) != DecodeResult::kOk) return;
  std::vector<uint8_t> again;
  switch (h.type) {
    case FrameType::kToken: {
      totem::core::Token t;
      if (totem::core::DecodeTokenBody(r, 1024, t) == DecodeResult::kOk) {
        t.ring_id = h.ring_id;
        totem::core::EncodeToken(h.sender, t, again);
        Check(std::equal(again.begin(), again.end(), frame.begin(), frame.end()));
      }
      break;
    }
    case FrameType::kJoin: {
      totem::core::Join j;
      if (totem::core::DecodeJoinBody(r, j) == DecodeResult::kOk) {
        totem::core::EncodeJoin(h.sender, h.ring_id, j, again);
        Check(std::equal(again.begin(), again.end(), frame.begin(), frame.end()));
      }
      break;
    }
    case FrameType::kCommitToken: {
      totem::core::CommitToken t;
      if (totem::core::DecodeCommitTokenBody(r, t) == DecodeResult::kOk) {
        t.ring_id = h.ring_id;
        totem::core::EncodeCommitToken(h.sender, t, again);
        Check(std::equal(again.begin(), again.end(), frame.begin(), frame.end()));
      }
      break;
    }
    case FrameType::kData: {
      totem::core::DataFrameInfo info;
      if (totem::core::DecodeDataBody(r, info) == DecodeResult::kOk && !info.recovery) {
        totem::core::ChunkIterator it(frame);
        totem::core::ChunkView c;
        uint16_t n = 0;
        while (it.Next(c)) ++n;
        Check(n == info.chunk_count);
      }
      break;
    }
    case FrameType::kHoldCancel:
    case FrameType::kMergeDetect:
    case FrameType::kTokenAck:
      break;
  }
  // Every body decoder must also cope with any other type's body.
  totem::core::Reader r2(frame);
  totem::core::Header h2;
  (void)totem::core::DecodeHeader(r2, h2);
  size_t pos = std::min(frame.size(), totem::core::kHeaderBytes);
  auto body = frame.subspan(pos);
  {
    totem::core::Reader b(body);
    totem::core::Token t;
    (void)totem::core::DecodeTokenBody(b, 128, t);
  }
  {
    totem::core::Reader b(body);
    totem::core::Join j;
    (void)totem::core::DecodeJoinBody(b, j);
  }
  {
    totem::core::Reader b(body);
    totem::core::CommitToken t;
    (void)totem::core::DecodeCommitTokenBody(b, t);
  }
  {
    totem::core::Reader b(body);
    totem::core::DataFrameInfo info;
    (void)totem::core::DecodeDataBody(b, info);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::span<const uint8_t> in(data, size);
  DecodeOne(in);

  const totem::RingConfig config = MakeConfig();
  NullOutput out;
  {
    totem::core::SingleRing core(config);
    core.Start(1000, out);
    core.HandleFrame(in, 2000, out);
  }

  totem::core::SingleRing core(config);
  uint64_t now_us = 1000;
  core.Start(now_us, out);
  size_t pos = 0;
  while (pos + 2 <= size) {
    size_t len = data[pos] | (static_cast<size_t>(data[pos + 1]) << 8);
    pos += 2;
    now_us += 7000;
    if (len == 0) {
      if (pos >= size) break;
      auto id = static_cast<totem::core::TimerId>(
          data[pos++] % static_cast<uint8_t>(totem::core::TimerId::kCount));
      core.HandleTimer(id, now_us, out);
      continue;
    }
    len = std::min(len, size - pos);
    auto frame = in.subspan(pos, len);
    pos += len;
    DecodeOne(frame);
    core.HandleFrame(frame, now_us, out);
    // Submit now and then so the core has its own frames to order too.
    if ((len & 7) == 0) {
      uint8_t msg[3] = {1, 2, 3};
      (void)core.Submit(msg, totem::Guarantee::kSafe, now_us, out);
    }
  }
  return 0;
}
