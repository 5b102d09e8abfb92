// Wire formats of the single-ring protocol: versioned binary frames with a
// fixed header, explicit little-endian fields (no struct overlays, no byte
// swapping), and decoders that bounds-check every field before the protocol
// sees it. Authentication is added outside the core by the transport.
//
// Header (20 bytes): magic u16 "TK" | version u8 | type u8 | sender u32 |
//                    ring rep u32 | ring seq u64
// Token body:        token_seq u64 | seq u64 | aru u64 | aru_id u32 | fcc u32 |
//                    backlog u32 | flags u8 | rtr_count u16 | rtr_count x seq u64
// Data body:         seq u64 | guarantee u8 | flags u8 | chunk_count u16 |
//                    chunks; chunk = kind u8 | guarantee u8 | len u16 |
//                    [total_len u32 if kind == kFirst] | len bytes
//                    With flags & kDataRecovery the body after chunk_count (0)
//                    is one whole data frame of an old ring, encapsulated.
// HoldCancel body:   empty
// Join body:         ring_seq u64 | proc_count u16 | fail_count u16 |
//                    proc ids u32... | fail ids u32...   (ascending, no dups)
// CommitToken body:  rotation u8 | index u16 | count u16 | count x entry;
//                    entry = node u32 | old ring rep u32 | old ring seq u64 |
//                    aru u64 | high_seq u64 | safe u64 | filled u8
//                    (the header's ring id is the NEW ring's id)
// MergeDetect body:  empty (the header names the sender's ring)
// TokenAck body:     empty; answers a retransmitted token, so the sender
//                    knows its successor is alive
#ifndef TOTEM_CORE_WIRE_H_
#define TOTEM_CORE_WIRE_H_

#include <cstdint>
#include <span>
#include <vector>

#include "totem/types.h"

namespace totem::core {

inline constexpr uint16_t kMagic = 0x4B54;  // bytes 'T','K' on the wire
inline constexpr uint8_t kWireVersion = 1;
inline constexpr size_t kHeaderBytes = 20;
inline constexpr size_t kTokenFixedBytes = 8 + 8 + 8 + 4 + 4 + 4 + 1 + 2;
inline constexpr size_t kDataFixedBytes = 8 + 1 + 1 + 2;
inline constexpr size_t kChunkHeaderBytes = 4;
inline constexpr size_t kFirstChunkExtraBytes = 4;

enum class FrameType : uint8_t {
  kToken = 1,
  kData = 2,
  kHoldCancel = 3,
  kJoin = 4,
  kCommitToken = 5,
  kMergeDetect = 6,
  kTokenAck = 7,
};

inline constexpr uint8_t kTokenRetransFlag = 0x01;  // some member still has recovery frames
inline constexpr uint8_t kDataRecovery = 0x01;      // data frame carries an old-ring frame
inline constexpr size_t kMaxMembers = 256;
// Bytes an encapsulating recovery frame adds to the old frame it carries.
inline constexpr size_t kEncapsulationBytes = 20 + 12;

enum class ChunkKind : uint8_t {
  kWhole = 1,   // a complete message
  kFirst = 2,   // first fragment; carries the message's total length
  kMiddle = 3,  // continuation fragment
  kLast = 4,    // final fragment
};

struct Header {
  FrameType type = FrameType::kData;
  NodeId sender = kNoNode;
  RingId ring_id;
};

struct Token {
  RingId ring_id;
  uint64_t token_seq = 0;     // incremented at every forward; older ones are duplicates
  uint64_t seq = 0;           // highest sequence number assigned on this ring
  uint64_t aru = 0;           // all-received-up-to, as lowered by the slowest member
  NodeId aru_id = kNoNode;    // who lowered aru (kNoNode: nobody is holding it down)
  uint32_t fcc = 0;           // frames (new + retransmitted) sent in the last rotation
  uint32_t backlog = 0;       // sum of members' queued frames
  uint8_t flags = 0;          // kTokenRetransFlag
  std::vector<uint64_t> rtr;  // retransmission requests
};

struct Join {
  uint64_t ring_seq = 0;     // highest ring sequence number the sender knows
  std::vector<NodeId> proc;  // processors the sender wants in the ring
  std::vector<NodeId> fail;  // processors the sender considers failed
};

struct CommitEntry {
  NodeId node = kNoNode;
  RingId old_ring;        // {0,0}: the node had no regular configuration
  uint64_t aru = 0;       // on the old ring
  uint64_t high_seq = 0;  // highest seq received on the old ring
  uint64_t safe = 0;      // old ring's safe point as this node knew it
  bool filled = false;
};

struct CommitToken {
  RingId ring_id;        // the new ring
  uint8_t rotation = 1;  // 1: members fill entries; 2: members enter recovery; 3: back at rep
  uint16_t index = 0;    // position of the member that processes it next
  std::vector<CommitEntry> entries;  // one per member, ascending node id
};

enum class DecodeResult { kOk, kTruncated, kBadMagicOrVersion, kMalformed };

// Appends little-endian fields to a byte vector.
class Writer {
 public:
  explicit Writer(std::vector<uint8_t>& out) : out_(out) {}
  void U8(uint8_t v) { out_.push_back(v); }
  void U16(uint16_t v);
  void U32(uint32_t v);
  void U64(uint64_t v);
  void Bytes(std::span<const uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
  size_t size() const { return out_.size(); }
  // Overwrites a previously written u16 at `offset`.
  void PatchU16(size_t offset, uint16_t v);

 private:
  std::vector<uint8_t>& out_;
};

// Reads little-endian fields; any read past the end sets !ok() and returns 0.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> in) : in_(in) {}
  uint8_t U8();
  uint16_t U16();
  uint32_t U32();
  uint64_t U64();
  std::span<const uint8_t> Bytes(size_t n);
  bool ok() const { return ok_; }
  size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }
  size_t position() const { return pos_; }

 private:
  bool Need(size_t n);
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

void EncodeHeader(Writer& w, const Header& h);
DecodeResult DecodeHeader(Reader& r, Header& h);

// Encodes a whole token frame into `out` (cleared first).
void EncodeToken(NodeId sender, const Token& token, std::vector<uint8_t>& out);
// Decodes the token body that follows the header. At most `max_rtr` requests
// are accepted; a longer list is malformed. Reuses token.rtr's capacity.
DecodeResult DecodeTokenBody(Reader& r, size_t max_rtr, Token& token);

void EncodeHoldCancel(NodeId sender, const RingId& ring_id, std::vector<uint8_t>& out);
void EncodeMergeDetect(NodeId sender, const RingId& ring_id, std::vector<uint8_t>& out);
void EncodeTokenAck(NodeId sender, const RingId& ring_id, std::vector<uint8_t>& out);

// `ring_id` in the header: the sender's current (or last) ring.
void EncodeJoin(NodeId sender, const RingId& ring_id, const Join& join, std::vector<uint8_t>& out);
// Lists must be ascending, duplicate-free, without node 0 and at most
// kMaxMembers long; anything else is malformed.
DecodeResult DecodeJoinBody(Reader& r, Join& join);

void EncodeCommitToken(NodeId sender, const CommitToken& token, std::vector<uint8_t>& out);
// Entries must be ascending by node id, at most kMaxMembers, rotation in
// 1..3 and index <= count.
DecodeResult DecodeCommitTokenBody(Reader& r, CommitToken& token);

// A validated data frame: `chunks` points into the frame's bytes.
struct ChunkView {
  ChunkKind kind = ChunkKind::kWhole;
  Guarantee guarantee = Guarantee::kAgreed;
  uint32_t total_len = 0;  // kFirst only
  std::span<const uint8_t> data;
};
struct DataFrameInfo {
  uint64_t seq = 0;
  Guarantee guarantee = Guarantee::kAgreed;  // strongest guarantee of any chunk
  uint16_t chunk_count = 0;
  bool recovery = false;                  // carries an encapsulated old-ring frame
  std::span<const uint8_t> encapsulated;  // that frame (header included), validated
};

// Decodes and validates the data body following the header: every chunk's
// kind, guarantee and length is checked, and no byte may follow the last
// chunk. Does not allocate.
DecodeResult DecodeDataBody(Reader& r, DataFrameInfo& info);

// Iterates over the chunks of a frame already validated by DecodeDataBody.
class ChunkIterator {
 public:
  // `frame` is the whole frame, header included.
  explicit ChunkIterator(std::span<const uint8_t> frame);
  bool Next(ChunkView& chunk);

 private:
  Reader r_;
  uint16_t left_ = 0;
};

const char* DecodeResultName(DecodeResult r);

}  // namespace totem::core

#endif  // TOTEM_CORE_WIRE_H_
