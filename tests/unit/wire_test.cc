// Wire format: round trips, and every kind of truncated or malformed input
// rejected without crashing.
#include "totem/core/wire.h"

#include <gtest/gtest.h>

#include <random>

#include "totem/core/packing.h"

namespace totem::core {
namespace {

Token SampleToken() {
  Token t;
  t.ring_id = RingId{3, 77};
  t.token_seq = 12345;
  t.seq = 900;
  t.aru = 850;
  t.aru_id = 7;
  t.fcc = 40;
  t.backlog = 12;
  t.rtr = {851, 860, 899};
  return t;
}

TEST(Wire, TokenRoundTrip) {
  std::vector<uint8_t> buf;
  EncodeToken(5, SampleToken(), buf);
  Reader r(buf);
  Header h;
  ASSERT_EQ(DecodeHeader(r, h), DecodeResult::kOk);
  EXPECT_EQ(h.type, FrameType::kToken);
  EXPECT_EQ(h.sender, 5u);
  EXPECT_EQ(h.ring_id, (RingId{3, 77}));
  Token t;
  ASSERT_EQ(DecodeTokenBody(r, 128, t), DecodeResult::kOk);
  Token want = SampleToken();
  EXPECT_EQ(t.token_seq, want.token_seq);
  EXPECT_EQ(t.seq, want.seq);
  EXPECT_EQ(t.aru, want.aru);
  EXPECT_EQ(t.aru_id, want.aru_id);
  EXPECT_EQ(t.fcc, want.fcc);
  EXPECT_EQ(t.backlog, want.backlog);
  EXPECT_EQ(t.rtr, want.rtr);
}

TEST(Wire, HeaderIsLittleEndianWithMagicFirst) {
  std::vector<uint8_t> buf;
  EncodeHoldCancel(0x01020304, RingId{1, 2}, buf);
  ASSERT_EQ(buf.size(), kHeaderBytes);
  EXPECT_EQ(buf[0], 'T');
  EXPECT_EQ(buf[1], 'K');
  EXPECT_EQ(buf[2], kWireVersion);
  EXPECT_EQ(buf[3], static_cast<uint8_t>(FrameType::kHoldCancel));
  EXPECT_EQ(buf[4], 0x04);
  EXPECT_EQ(buf[7], 0x01);
}

TEST(Wire, TokenTruncatedAtEveryLengthIsRejected) {
  std::vector<uint8_t> buf;
  EncodeToken(5, SampleToken(), buf);
  for (size_t n = 0; n < buf.size(); ++n) {
    std::span<const uint8_t> part(buf.data(), n);
    Reader r(part);
    Header h;
    DecodeResult hr = DecodeHeader(r, h);
    if (hr != DecodeResult::kOk) {
      EXPECT_EQ(hr, DecodeResult::kTruncated) << n;
      continue;
    }
    Token t;
    EXPECT_NE(DecodeTokenBody(r, 128, t), DecodeResult::kOk) << n;
  }
}

TEST(Wire, BadMagicVersionAndType) {
  std::vector<uint8_t> buf;
  EncodeToken(5, SampleToken(), buf);
  for (int field : {0, 2}) {
    auto copy = buf;
    copy[field] ^= 0xFF;
    Reader r(copy);
    Header h;
    EXPECT_EQ(DecodeHeader(r, h), DecodeResult::kBadMagicOrVersion);
  }
  auto copy = buf;
  copy[3] = 9;
  Reader r(copy);
  Header h;
  EXPECT_EQ(DecodeHeader(r, h), DecodeResult::kMalformed);
}

TEST(Wire, TokenFieldChecks) {
  Token t = SampleToken();
  t.aru = t.seq + 1;  // aru above seq is impossible
  std::vector<uint8_t> buf;
  EncodeToken(5, t, buf);
  Reader r(buf);
  Header h;
  ASSERT_EQ(DecodeHeader(r, h), DecodeResult::kOk);
  Token out;
  EXPECT_EQ(DecodeTokenBody(r, 128, out), DecodeResult::kMalformed);

  t = SampleToken();
  EncodeToken(5, t, buf);
  Reader r2(buf);
  ASSERT_EQ(DecodeHeader(r2, h), DecodeResult::kOk);
  EXPECT_EQ(DecodeTokenBody(r2, 2, out), DecodeResult::kMalformed);  // too many requests

  buf.push_back(0);  // trailing garbage
  Reader r3(buf);
  ASSERT_EQ(DecodeHeader(r3, h), DecodeResult::kOk);
  EXPECT_EQ(DecodeTokenBody(r3, 128, out), DecodeResult::kMalformed);
}

std::vector<uint8_t> DataFrame(std::initializer_list<std::string> msgs) {
  Packer p(1400, true, 1 << 20, 1 << 20);
  for (const auto& m : msgs) {
    EXPECT_TRUE(
        p.Push(std::span(reinterpret_cast<const uint8_t*>(m.data()), m.size()), Guarantee::kAgreed)
            .ok());
  }
  std::vector<uint8_t> out;
  uint64_t frags = 0;
  EXPECT_TRUE(p.BuildFrame(2, RingId{1, 1}, 10, out, &frags));
  return out;
}

DecodeResult DecodeData(std::span<const uint8_t> buf) {
  Reader r(buf);
  Header h;
  DecodeResult hr = DecodeHeader(r, h);
  if (hr != DecodeResult::kOk) return hr;
  DataFrameInfo info;
  return DecodeDataBody(r, info);
}

TEST(Wire, DataFrameValidAndEveryTruncationRejected) {
  auto buf = DataFrame({"alpha", "beta", "gamma"});
  EXPECT_EQ(DecodeData(buf), DecodeResult::kOk);
  for (size_t n = 0; n < buf.size(); ++n) {
    EXPECT_NE(DecodeData(std::span<const uint8_t>(buf.data(), n)), DecodeResult::kOk) << n;
  }
}

TEST(Wire, DataFrameFieldChecks) {
  const auto good = DataFrame({"alpha", "beta"});
  const size_t body = kHeaderBytes;
  struct Case {
    const char* what;
    size_t offset;
    uint8_t value;
  } cases[] = {
      {"seq zero", body, 0},  // (all 8 bytes are patched below)
      {"bad frame guarantee", body + 8, 7},
      {"frame guarantee disagrees with chunks", body + 8, 2},
      {"zero chunks", body + 10, 0},
      {"bad chunk kind", body + 12, 9},
      {"bad chunk guarantee", body + 13, 0},
      {"chunk length past the end", body + 15, 0xFF},
  };
  for (const Case& c : cases) {
    auto buf = good;
    if (std::string(c.what) == "seq zero") {
      for (int i = 0; i < 8; ++i) buf[body + i] = 0;
    } else if (std::string(c.what) == "zero chunks") {
      buf[body + 10] = 0;
      buf[body + 11] = 0;
    } else {
      buf[c.offset] = c.value;
    }
    EXPECT_NE(DecodeData(buf), DecodeResult::kOk) << c.what;
  }
  auto longer = good;
  longer.push_back(1);
  EXPECT_EQ(DecodeData(longer), DecodeResult::kMalformed);
}

TEST(Wire, RandomBytesNeverCrashTheDecoders) {
  std::mt19937_64 rng(42);
  std::vector<uint8_t> buf;
  const auto good = DataFrame({"alpha", "beta"});
  for (int i = 0; i < 20000; ++i) {
    if (i % 2 == 0) {
      buf.resize(rng() % 200);
      for (auto& b : buf) b = static_cast<uint8_t>(rng());
      if (buf.size() >= 4) {
        buf[0] = 'T';
        buf[1] = 'K';
        buf[2] = kWireVersion;
        buf[3] = static_cast<uint8_t>(1 + rng() % 3);
      }
    } else {
      buf = good;  // flip a few bytes of a valid frame
      for (int k = 0; k < 3; ++k) buf[rng() % buf.size()] = static_cast<uint8_t>(rng());
    }
    Reader r(buf);
    Header h;
    if (DecodeHeader(r, h) != DecodeResult::kOk) continue;
    if (h.type == FrameType::kToken) {
      Token t;
      (void)DecodeTokenBody(r, 128, t);
    } else if (h.type == FrameType::kData) {
      DataFrameInfo info;
      if (DecodeDataBody(r, info) == DecodeResult::kOk) {
        ChunkIterator it(buf);
        ChunkView c;
        size_t n = 0;
        while (it.Next(c)) ++n;
        EXPECT_EQ(n, info.chunk_count);
      }
    }
  }
}

}  // namespace
}  // namespace totem::core
