// The on-disk layout of MvccStore (see the table in mvcc_store.h): key
// builders and record codecs. Every integer is big-endian so RocksDB's
// bytewise order is numeric order; user keys are escaped so that one key's
// revision records are contiguous and keys keep their byte order.
#ifndef KVSTORE_ENCODING_H_
#define KVSTORE_ENCODING_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "kvstore/types.h"

namespace kvstore::internal {

inline constexpr char kIndexPrefix = 'i';
inline constexpr char kEventPrefix = 'e';
inline constexpr char kLeasePrefix = 'l';
inline constexpr char kAttachPrefix = 'a';
inline constexpr char kDedupPrefix = 'd';
inline constexpr char kWindowPrefix = 'q';
inline constexpr char kMetaPrefix = 'm';
inline constexpr char kReplicatedAuxPrefix = 'r';
inline constexpr char kLocalAuxPrefix = 'x';  // must stay the greatest prefix (snapshot install)
inline constexpr uint32_t kMaxSub = 0xFFFFFFFFu;

struct Revision {
  int64_t main = 0;
  uint32_t sub = 0;
};

void PutBe64(std::string* out, uint64_t v);
void PutBe32(std::string* out, uint32_t v);
uint64_t GetBe64(std::string_view in);  // precondition: in.size() >= 8
uint32_t GetBe32(std::string_view in);  // precondition: in.size() >= 4

// 'i' esc(key): every revision record of `key` starts with this.
std::string IndexKeyPrefix(std::string_view key);
std::string IndexKey(std::string_view key, Revision rev);
// Sorts after every record of `key` and before any other key's records.
std::string IndexKeyEnd(std::string_view key);
// Splits an index record key; false if malformed.
bool ParseIndexKey(std::string_view stored, std::string* key, Revision* rev);

std::string EventKey(Revision rev);
bool ParseEventKey(std::string_view stored, Revision* rev);

// One revision of one key.
struct Record {
  bool tombstone = false;
  int64_t create_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
  std::string value;
};
std::string EncodeRecord(const Record& record);
bool DecodeRecord(std::string_view in, Record* record);

std::string LeaseKey(int64_t id);
struct LeaseRecord {
  int64_t ttl = 0;
  uint64_t generation = 0;
};
std::string EncodeLease(const LeaseRecord& lease);
bool DecodeLease(std::string_view in, LeaseRecord* lease);
std::string AttachPrefix(int64_t id);
std::string AttachKey(int64_t id, std::string_view key);

std::string DedupKey(const OpId& id);
struct DedupRecord {
  uint64_t seq = 0;
  int64_t revision = 0;
  int32_t code = 0;
  std::string message;
};
std::string EncodeDedup(const DedupRecord& record);
bool DecodeDedup(std::string_view in, DedupRecord* record);
std::string WindowKey(uint64_t seq);

std::string MetaKey(std::string_view name);

}  // namespace kvstore::internal

#endif  // KVSTORE_ENCODING_H_
