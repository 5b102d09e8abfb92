// Encoders and bounds-checked decoders for the single-ring frames (see wire.h).
#include "totem/core/wire.h"

namespace totem::core {

void Writer::U16(uint16_t v) {
  out_.push_back(static_cast<uint8_t>(v));
  out_.push_back(static_cast<uint8_t>(v >> 8));
}
void Writer::U32(uint32_t v) {
  for (int i = 0; i < 4; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void Writer::U64(uint64_t v) {
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void Writer::PatchU16(size_t offset, uint16_t v) {
  out_[offset] = static_cast<uint8_t>(v);
  out_[offset + 1] = static_cast<uint8_t>(v >> 8);
}

bool Reader::Need(size_t n) {
  if (!ok_ || in_.size() - pos_ < n) {
    ok_ = false;
    return false;
  }
  return true;
}
uint8_t Reader::U8() {
  if (!Need(1)) return 0;
  return in_[pos_++];
}
uint16_t Reader::U16() {
  if (!Need(2)) return 0;
  uint16_t v = static_cast<uint16_t>(in_[pos_] | (in_[pos_ + 1] << 8));
  pos_ += 2;
  return v;
}
uint32_t Reader::U32() {
  if (!Need(4)) return 0;
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(in_[pos_ + i]) << (8 * i);
  pos_ += 4;
  return v;
}
uint64_t Reader::U64() {
  if (!Need(8)) return 0;
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(in_[pos_ + i]) << (8 * i);
  pos_ += 8;
  return v;
}
std::span<const uint8_t> Reader::Bytes(size_t n) {
  if (!Need(n)) return {};
  auto s = in_.subspan(pos_, n);
  pos_ += n;
  return s;
}

void EncodeHeader(Writer& w, const Header& h) {
  w.U16(kMagic);
  w.U8(kWireVersion);
  w.U8(static_cast<uint8_t>(h.type));
  w.U32(h.sender);
  w.U32(h.ring_id.rep);
  w.U64(h.ring_id.seq);
}

DecodeResult DecodeHeader(Reader& r, Header& h) {
  uint16_t magic = r.U16();
  uint8_t version = r.U8();
  uint8_t type = r.U8();
  h.sender = r.U32();
  h.ring_id.rep = r.U32();
  h.ring_id.seq = r.U64();
  if (!r.ok()) return DecodeResult::kTruncated;
  if (magic != kMagic || version != kWireVersion) return DecodeResult::kBadMagicOrVersion;
  if (type < static_cast<uint8_t>(FrameType::kToken) ||
      type > static_cast<uint8_t>(FrameType::kTokenAck)) {
    return DecodeResult::kMalformed;
  }
  if (h.sender == kNoNode || h.ring_id.rep == kNoNode) return DecodeResult::kMalformed;
  h.type = static_cast<FrameType>(type);
  return DecodeResult::kOk;
}

void EncodeToken(NodeId sender, const Token& t, std::vector<uint8_t>& out) {
  out.clear();
  Writer w(out);
  EncodeHeader(w, Header{FrameType::kToken, sender, t.ring_id});
  w.U64(t.token_seq);
  w.U64(t.seq);
  w.U64(t.aru);
  w.U32(t.aru_id);
  w.U32(t.fcc);
  w.U32(t.backlog);
  w.U8(t.flags);
  w.U16(static_cast<uint16_t>(t.rtr.size()));
  for (uint64_t s : t.rtr) w.U64(s);
}

DecodeResult DecodeTokenBody(Reader& r, size_t max_rtr, Token& t) {
  t.token_seq = r.U64();
  t.seq = r.U64();
  t.aru = r.U64();
  t.aru_id = r.U32();
  t.fcc = r.U32();
  t.backlog = r.U32();
  t.flags = r.U8();
  uint16_t n = r.U16();
  if (!r.ok()) return DecodeResult::kTruncated;
  if (n > max_rtr) return DecodeResult::kMalformed;
  if (r.remaining() != static_cast<size_t>(n) * 8) {
    return r.remaining() < static_cast<size_t>(n) * 8 ? DecodeResult::kTruncated
                                                      : DecodeResult::kMalformed;
  }
  if (t.aru > t.seq || (t.flags & ~kTokenRetransFlag) != 0) return DecodeResult::kMalformed;
  t.rtr.clear();
  for (uint16_t i = 0; i < n; ++i) {
    uint64_t s = r.U64();
    if (s == 0 || s > t.seq) return DecodeResult::kMalformed;
    t.rtr.push_back(s);
  }
  return DecodeResult::kOk;
}

void EncodeHoldCancel(NodeId sender, const RingId& ring_id, std::vector<uint8_t>& out) {
  out.clear();
  Writer w(out);
  EncodeHeader(w, Header{FrameType::kHoldCancel, sender, ring_id});
}

void EncodeMergeDetect(NodeId sender, const RingId& ring_id, std::vector<uint8_t>& out) {
  out.clear();
  Writer w(out);
  EncodeHeader(w, Header{FrameType::kMergeDetect, sender, ring_id});
}

void EncodeTokenAck(NodeId sender, const RingId& ring_id, std::vector<uint8_t>& out) {
  out.clear();
  Writer w(out);
  EncodeHeader(w, Header{FrameType::kTokenAck, sender, ring_id});
}

void EncodeJoin(NodeId sender, const RingId& ring_id, const Join& join, std::vector<uint8_t>& out) {
  out.clear();
  Writer w(out);
  EncodeHeader(w, Header{FrameType::kJoin, sender, ring_id});
  w.U64(join.ring_seq);
  w.U16(static_cast<uint16_t>(join.proc.size()));
  w.U16(static_cast<uint16_t>(join.fail.size()));
  for (NodeId n : join.proc) w.U32(n);
  for (NodeId n : join.fail) w.U32(n);
}

namespace {
bool ReadNodeList(Reader& r, uint16_t count, std::vector<NodeId>& out) {
  out.clear();
  for (uint16_t i = 0; i < count; ++i) {
    NodeId n = r.U32();
    if (!r.ok() || n == kNoNode || (!out.empty() && n <= out.back())) return false;
    out.push_back(n);
  }
  return true;
}
}  // namespace

DecodeResult DecodeJoinBody(Reader& r, Join& join) {
  join.ring_seq = r.U64();
  uint16_t np = r.U16();
  uint16_t nf = r.U16();
  if (!r.ok()) return DecodeResult::kTruncated;
  if (np > kMaxMembers || nf > kMaxMembers || np == 0) return DecodeResult::kMalformed;
  if (r.remaining() != (static_cast<size_t>(np) + nf) * 4) {
    return r.remaining() < (static_cast<size_t>(np) + nf) * 4 ? DecodeResult::kTruncated
                                                              : DecodeResult::kMalformed;
  }
  if (!ReadNodeList(r, np, join.proc) || !ReadNodeList(r, nf, join.fail)) {
    return DecodeResult::kMalformed;
  }
  return DecodeResult::kOk;
}

void EncodeCommitToken(NodeId sender, const CommitToken& t, std::vector<uint8_t>& out) {
  out.clear();
  Writer w(out);
  EncodeHeader(w, Header{FrameType::kCommitToken, sender, t.ring_id});
  w.U8(t.rotation);
  w.U16(t.index);
  w.U16(static_cast<uint16_t>(t.entries.size()));
  for (const CommitEntry& e : t.entries) {
    w.U32(e.node);
    w.U32(e.old_ring.rep);
    w.U64(e.old_ring.seq);
    w.U64(e.aru);
    w.U64(e.high_seq);
    w.U64(e.safe);
    w.U8(e.filled ? 1 : 0);
  }
}

DecodeResult DecodeCommitTokenBody(Reader& r, CommitToken& t) {
  constexpr size_t kEntryBytes = 4 + 4 + 8 + 8 + 8 + 8 + 1;
  t.rotation = r.U8();
  t.index = r.U16();
  uint16_t n = r.U16();
  if (!r.ok()) return DecodeResult::kTruncated;
  if (n == 0 || n > kMaxMembers || t.rotation < 1 || t.rotation > 3 || t.index > n) {
    return DecodeResult::kMalformed;
  }
  if (r.remaining() != n * kEntryBytes) {
    return r.remaining() < n * kEntryBytes ? DecodeResult::kTruncated : DecodeResult::kMalformed;
  }
  t.entries.resize(n);
  for (uint16_t i = 0; i < n; ++i) {
    CommitEntry& e = t.entries[i];
    e.node = r.U32();
    e.old_ring.rep = r.U32();
    e.old_ring.seq = r.U64();
    e.aru = r.U64();
    e.high_seq = r.U64();
    e.safe = r.U64();
    uint8_t filled = r.U8();
    if (e.node == kNoNode || (i > 0 && e.node <= t.entries[i - 1].node) || filled > 1 ||
        e.aru > e.high_seq || e.safe > e.aru) {
      return DecodeResult::kMalformed;
    }
    e.filled = filled == 1;
  }
  return DecodeResult::kOk;
}

namespace {
bool ValidGuarantee(uint8_t g) {
  return g == static_cast<uint8_t>(Guarantee::kAgreed) ||
         g == static_cast<uint8_t>(Guarantee::kSafe);
}
bool ReadChunk(Reader& r, ChunkView& c) {
  uint8_t kind = r.U8();
  uint8_t g = r.U8();
  uint16_t len = r.U16();
  if (!r.ok()) return false;
  if (kind < static_cast<uint8_t>(ChunkKind::kWhole) ||
      kind > static_cast<uint8_t>(ChunkKind::kLast) || !ValidGuarantee(g)) {
    return false;
  }
  c.kind = static_cast<ChunkKind>(kind);
  c.guarantee = static_cast<Guarantee>(g);
  c.total_len = 0;
  if (c.kind == ChunkKind::kFirst) {
    c.total_len = r.U32();
    if (!r.ok() || c.total_len <= len) return false;  // a first fragment is never the whole
  }
  if (c.kind != ChunkKind::kWhole && len == 0) return false;
  c.data = r.Bytes(len);
  return r.ok();
}
}  // namespace

DecodeResult DecodeDataBody(Reader& r, DataFrameInfo& info) {
  info.seq = r.U64();
  uint8_t g = r.U8();
  uint8_t flags = r.U8();
  info.chunk_count = r.U16();
  if (!r.ok()) return DecodeResult::kTruncated;
  if (info.seq == 0 || !ValidGuarantee(g) || (flags & ~kDataRecovery) != 0) {
    return DecodeResult::kMalformed;
  }
  info.guarantee = static_cast<Guarantee>(g);
  info.recovery = (flags & kDataRecovery) != 0;
  info.encapsulated = {};
  if (info.recovery) {
    // Either nothing (a filler: the old ring's own recovery frame, whose
    // content does not matter any more) or one old-ring data frame, itself
    // valid and at most a filler.
    if (info.chunk_count != 0) return DecodeResult::kMalformed;
    info.encapsulated = r.Bytes(r.remaining());
    if (info.encapsulated.empty()) return DecodeResult::kOk;
    Reader inner(info.encapsulated);
    Header h;
    DataFrameInfo inner_info;
    if (DecodeHeader(inner, h) != DecodeResult::kOk || h.type != FrameType::kData ||
        DecodeDataBody(inner, inner_info) != DecodeResult::kOk ||
        (inner_info.recovery && !inner_info.encapsulated.empty()) ||
        inner_info.guarantee != info.guarantee) {
      return DecodeResult::kMalformed;
    }
    return DecodeResult::kOk;
  }
  if (info.chunk_count == 0) return DecodeResult::kMalformed;
  Guarantee strongest = Guarantee::kAgreed;
  ChunkView c;
  for (uint16_t i = 0; i < info.chunk_count; ++i) {
    if (!ReadChunk(r, c)) return DecodeResult::kMalformed;
    if (c.guarantee == Guarantee::kSafe) strongest = Guarantee::kSafe;
  }
  if (r.remaining() != 0 || strongest != info.guarantee) return DecodeResult::kMalformed;
  return DecodeResult::kOk;
}

ChunkIterator::ChunkIterator(std::span<const uint8_t> frame) : r_(frame) {
  r_.Bytes(kHeaderBytes + 10);
  left_ = r_.U16();
}

bool ChunkIterator::Next(ChunkView& chunk) {
  if (left_ == 0) return false;
  --left_;
  return ReadChunk(r_, chunk);
}

const char* DecodeResultName(DecodeResult r) {
  switch (r) {
    case DecodeResult::kOk:
      return "ok";
    case DecodeResult::kTruncated:
      return "truncated";
    case DecodeResult::kBadMagicOrVersion:
      return "bad_magic_or_version";
    case DecodeResult::kMalformed:
      return "malformed";
  }
  return "unknown";
}

}  // namespace totem::core
