// Packing and fragmentation: frames filled up to the frame size, large
// messages split and reassembled byte for byte, bad fragments rejected.
#include "totem/core/packing.h"

#include <gtest/gtest.h>

#include <string>

namespace totem::core {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

struct Collect : Reassembler::Sink {
  std::vector<std::pair<Guarantee, std::string>> got;
  void OnMessage(Guarantee g, std::span<const uint8_t> p) override {
    got.emplace_back(g, std::string(p.begin(), p.end()));
  }
};

// Builds every frame the packer has queued.
std::vector<std::vector<uint8_t>> Drain(Packer& p, NodeId sender = 2) {
  std::vector<std::vector<uint8_t>> frames;
  std::vector<uint8_t> out;
  uint64_t frags = 0;
  uint64_t seq = 1;
  while (p.BuildFrame(sender, RingId{1, 1}, seq++, out, &frags)) {
    frames.push_back(out);
    Reader r(out);
    Header h;
    EXPECT_EQ(DecodeHeader(r, h), DecodeResult::kOk);
    DataFrameInfo info;
    EXPECT_EQ(DecodeDataBody(r, info), DecodeResult::kOk);
  }
  return frames;
}

TEST(Packer, PacksSmallMessagesIntoOneFrame) {
  Packer p(1400, true, 1 << 20, 1 << 20);
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(p.Push(Bytes(std::string(100, 'a' + i)), Guarantee::kAgreed).ok());
  EXPECT_EQ(p.BacklogFrames(), 1u);
  auto frames = Drain(p);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_LE(frames[0].size(), 1400u);
  Reassembler r(1 << 20);
  Collect c;
  EXPECT_EQ(r.Unpack(2, frames[0], c), 0u);
  ASSERT_EQ(c.got.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(c.got[i].second, std::string(100, 'a' + i));
}

TEST(Packer, NoPackingSendsOneMessagePerFrame) {
  Packer p(1400, false, 1 << 20, 1 << 20);
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(p.Push(Bytes(std::string(100, 'x')), Guarantee::kAgreed).ok());
  EXPECT_EQ(p.BacklogFrames(), 10u);
  EXPECT_EQ(Drain(p).size(), 10u);
}

TEST(Packer, FramesNeverExceedTheFrameSize) {
  for (uint32_t frame : {128u, 200u, 1400u, 9000u}) {
    Packer p(frame, true, 1 << 20, 64 << 20);
    for (int i = 0; i < 300; ++i) {
      ASSERT_TRUE(p.Push(Bytes(std::string((i * 37) % 3000, 'q')), Guarantee::kAgreed).ok());
    }
    for (const auto& f : Drain(p)) EXPECT_LE(f.size(), frame);
    EXPECT_EQ(p.pending_bytes(), 0u);
  }
}

TEST(Packer, FragmentsAndReassemblesLargeMessages) {
  Packer p(1400, true, 1 << 20, 4 << 20);
  std::string big(100000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + 3);
  ASSERT_TRUE(p.Push(Bytes("before"), Guarantee::kAgreed).ok());
  ASSERT_TRUE(p.Push(Bytes(big), Guarantee::kSafe).ok());
  ASSERT_TRUE(p.Push(Bytes("after"), Guarantee::kAgreed).ok());
  auto frames = Drain(p);
  EXPECT_GE(frames.size(), 100000u / 1400u);
  Reassembler r(1 << 20);
  Collect c;
  for (const auto& f : frames) EXPECT_EQ(r.Unpack(2, f, c), 0u);
  ASSERT_EQ(c.got.size(), 3u);
  EXPECT_EQ(c.got[0].second, "before");
  EXPECT_EQ(c.got[1].second, big);
  EXPECT_EQ(c.got[1].first, Guarantee::kSafe);
  EXPECT_EQ(c.got[2].second, "after");
  EXPECT_EQ(r.partial_count(), 0u);
}

TEST(Packer, EmptyMessageIsDelivered) {
  Packer p(1400, true, 1 << 20, 1 << 20);
  ASSERT_TRUE(p.Push({}, Guarantee::kAgreed).ok());
  auto frames = Drain(p);
  ASSERT_EQ(frames.size(), 1u);
  Reassembler r(1 << 20);
  Collect c;
  r.Unpack(2, frames[0], c);
  ASSERT_EQ(c.got.size(), 1u);
  EXPECT_TRUE(c.got[0].second.empty());
}

TEST(Packer, BackPressureAndSizeLimit) {
  Packer p(1400, true, 1000, 3000);
  EXPECT_EQ(p.Push(Bytes(std::string(1001, 'x')), Guarantee::kAgreed).code(),
            StatusCode::kResourceExhausted);
  EXPECT_TRUE(p.Push(Bytes(std::string(1000, 'x')), Guarantee::kAgreed).ok());
  EXPECT_TRUE(p.Push(Bytes(std::string(1000, 'x')), Guarantee::kAgreed).ok());
  EXPECT_TRUE(p.Push(Bytes(std::string(1000, 'x')), Guarantee::kAgreed).ok());
  Status st = p.Push(Bytes(std::string(1, 'x')), Guarantee::kAgreed);
  EXPECT_EQ(st.code(), StatusCode::kWouldBlock);
  EXPECT_NE(st.message().find("submit queue full"), std::string::npos);
  Drain(p);
  EXPECT_TRUE(p.Push(Bytes(std::string(1000, 'x')), Guarantee::kAgreed).ok());
}

TEST(Reassembler, InterleavedSendersAreKeptApart) {
  Packer a(200, true, 1 << 20, 1 << 20), b(200, true, 1 << 20, 1 << 20);
  std::string ma(1000, 'a'), mb(1000, 'b');
  ASSERT_TRUE(a.Push(Bytes(ma), Guarantee::kAgreed).ok());
  ASSERT_TRUE(b.Push(Bytes(mb), Guarantee::kAgreed).ok());
  auto fa = Drain(a, 2), fb = Drain(b, 3);
  Reassembler r(1 << 20);
  Collect c;
  for (size_t i = 0; i < std::max(fa.size(), fb.size()); ++i) {
    if (i < fa.size()) r.Unpack(2, fa[i], c);
    if (i < fb.size()) r.Unpack(3, fb[i], c);
  }
  ASSERT_EQ(c.got.size(), 2u);
  EXPECT_EQ(c.got[0].second + c.got[1].second, ma + mb);
}

TEST(Reassembler, ContinuationWithoutStartIsRejected) {
  Packer p(200, true, 1 << 20, 1 << 20);
  ASSERT_TRUE(p.Push(Bytes(std::string(1000, 'z')), Guarantee::kAgreed).ok());
  ASSERT_TRUE(p.Push(Bytes("next"), Guarantee::kAgreed).ok());
  auto frames = Drain(p);
  ASSERT_GE(frames.size(), 3u);
  Reassembler r(1 << 20);
  Collect c;
  uint64_t bad = 0;
  for (size_t i = 1; i < frames.size(); ++i) bad += r.Unpack(2, frames[i], c);  // first frame lost
  EXPECT_GT(bad, 0u);
  ASSERT_EQ(c.got.size(), 1u);  // only the intact message
  EXPECT_EQ(c.got[0].second, "next");
}

TEST(Reassembler, OversizedTotalIsRejected) {
  Packer p(200, true, 1 << 20, 1 << 20);
  ASSERT_TRUE(p.Push(Bytes(std::string(1000, 'z')), Guarantee::kAgreed).ok());
  auto frames = Drain(p);
  Reassembler r(500);  // receiver's limit is smaller than the message
  Collect c;
  uint64_t bad = 0;
  for (const auto& f : frames) bad += r.Unpack(2, f, c);
  EXPECT_GT(bad, 0u);
  EXPECT_TRUE(c.got.empty());
  EXPECT_EQ(r.partial_count(), 0u);
}

}  // namespace
}  // namespace totem::core
