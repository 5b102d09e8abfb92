// HashKV (hash_kv.h): the records etcd's hashByRev visits, rebuilt from the
// store's public reads: the live keys at the hashed revision (or at the
// compacted revision) for the part at or below it, the event history for
// the part above it.
#include "hash_kv.h"

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "convert.h"
#include "etcd/kv.pb.h"

namespace totemkv::server {
namespace {

using ::kvstore::Event;
using ::kvstore::KeyValue;

const std::array<uint32_t, 256>& Crc32cTable() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// etcd's revision key: main and sub big-endian around '_', then 't' for a
// tombstone.
std::string RevisionKey(int64_t main, int64_t sub, bool tombstone) {
  std::string k;
  for (int shift = 56; shift >= 0; shift -= 8) {
    k.push_back(static_cast<char>(static_cast<uint64_t>(main) >> shift));
  }
  k.push_back('_');
  for (int shift = 56; shift >= 0; shift -= 8) {
    k.push_back(static_cast<char>(static_cast<uint64_t>(sub) >> shift));
  }
  if (tombstone) k.push_back('t');
  return k;
}

std::string Marshal(const KeyValue& kv) {
  mvccpb::KeyValue pb;
  ToProto(kv, &pb);
  std::string out;
  pb.SerializeToString(&out);
  return out;
}

// Every key live at `revision`, in key order (the whole keyspace, paged).
totem::StatusOr<std::vector<KeyValue>> LiveAt(const ::kvstore::MvccStore& store, int64_t revision) {
  std::vector<KeyValue> out;
  ::kvstore::RangeRequest req;
  req.key = std::string(1, '\0');
  req.range_end = std::string(1, '\0');
  req.revision = revision;
  req.limit = 1000;
  for (;;) {
    totem::StatusOr<::kvstore::RangeResponse> r = store.Range(req);
    if (!r.ok()) return r.status();
    for (KeyValue& kv : r.value().kvs) out.push_back(std::move(kv));
    if (!r.value().more || r.value().kvs.empty()) return out;
    req.key = out.back().key + std::string(1, '\0');
  }
}

}  // namespace

uint32_t Crc32c(uint32_t crc, std::string_view data) {
  const std::array<uint32_t, 256>& table = Crc32cTable();
  crc = ~crc;
  for (char ch : data) crc = table[(crc ^ static_cast<uint8_t>(ch)) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

totem::StatusOr<KvHash> HashKv(const ::kvstore::MvccStore& store, int64_t revision) {
  const int64_t compacted = store.CompactedRevision();
  const int64_t current = store.CurrentRevision();
  if (revision <= 0) revision = current;
  // As etcd: the compacted revision itself cannot be hashed any more.
  if (compacted > 0 && revision <= compacted) {
    return totem::Status(totem::StatusCode::kFailedPrecondition, ::kvstore::kErrCompacted);
  }
  if (revision > current) {
    return totem::Status(totem::StatusCode::kFailedPrecondition, ::kvstore::kErrFutureRev);
  }

  // At or below the compacted revision: the keys' live values at
  // `revision` that date from then (etcd's keep set), or, with none live,
  // what compaction kept (the live values at the compacted revision).
  std::vector<KeyValue> below;
  if (compacted > 0) {
    totem::StatusOr<std::vector<KeyValue>> live = LiveAt(store, revision);
    if (!live.ok()) return live.status();
    if (live.value().empty()) {
      live = LiveAt(store, compacted);
      if (!live.ok()) return live.status();
    }
    for (KeyValue& kv : live.value()) {
      if (kv.mod_revision <= compacted) below.push_back(std::move(kv));
    }
    std::stable_sort(below.begin(), below.end(), [](const KeyValue& a, const KeyValue& b) {
      return a.mod_revision < b.mod_revision;  // key order within a revision
    });
  }

  uint32_t crc = Crc32c(0, "key");
  int64_t last_main = -1;
  int64_t sub = 0;
  auto write = [&](int64_t main, bool tombstone, const KeyValue& kv) {
    sub = main == last_main ? sub + 1 : 0;
    last_main = main;
    crc = Crc32c(crc, RevisionKey(main, sub, tombstone));
    crc = Crc32c(crc, Marshal(kv));
  };
  for (const KeyValue& kv : below) write(kv.mod_revision, false, kv);

  // Above it: every change up to `revision`, in (revision, sub) order.
  ::kvstore::HistoryRequest req;
  req.key = std::string(1, '\0');
  req.range_end = std::string(1, '\0');
  req.start_revision = compacted + 1;
  req.max_events = 1000;
  while (req.start_revision <= revision) {
    totem::StatusOr<std::vector<Event>> events = store.History(req);
    if (!events.ok()) return events.status();
    if (events.value().empty()) break;
    for (const Event& e : events.value()) {
      if (e.kv.mod_revision > revision) break;
      if (e.type == Event::Type::kDelete) {
        KeyValue tombstone;
        tombstone.key = e.kv.key;
        write(e.kv.mod_revision, true, tombstone);
      } else {
        write(e.kv.mod_revision, false, e.kv);
      }
    }
    // A page never splits a revision: continue after its last one.
    req.start_revision = events.value().back().kv.mod_revision + 1;
  }

  if (store.CompactedRevision() != compacted) {
    return totem::Status(totem::StatusCode::kUnavailable,
                         "the store was compacted while hashing; retry");
  }
  return KvHash{crc, compacted > 0 ? compacted : -1, revision};
}

}  // namespace totemkv::server
