// Key builders and record codecs of the MvccStore layout (encoding.h).
#include "encoding.h"

namespace kvstore::internal {

void PutBe64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>((v >> shift) & 0xFF));
}

void PutBe32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out->push_back(static_cast<char>((v >> shift) & 0xFF));
}

uint64_t GetBe64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(in[static_cast<size_t>(i)]);
  return v;
}

uint32_t GetBe32(std::string_view in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(in[static_cast<size_t>(i)]);
  return v;
}

std::string IndexKeyPrefix(std::string_view key) {
  std::string out;
  out.reserve(key.size() + 3);
  out.push_back(kIndexPrefix);
  for (char c : key) {
    out.push_back(c);
    if (c == '\0') out.push_back('\xFF');
  }
  out.push_back('\0');
  out.push_back('\x01');
  return out;
}

std::string IndexKey(std::string_view key, Revision rev) {
  std::string out = IndexKeyPrefix(key);
  PutBe64(&out, static_cast<uint64_t>(rev.main));
  PutBe32(&out, rev.sub);
  return out;
}

std::string IndexKeyEnd(std::string_view key) {
  std::string out = IndexKeyPrefix(key);
  out.append(13, '\xFF');
  return out;
}

bool ParseIndexKey(std::string_view stored, std::string* key, Revision* rev) {
  if (stored.empty() || stored[0] != kIndexPrefix) return false;
  key->clear();
  size_t i = 1;
  for (;;) {
    if (i >= stored.size()) return false;
    char c = stored[i];
    if (c != '\0') {
      key->push_back(c);
      ++i;
      continue;
    }
    if (i + 1 >= stored.size()) return false;
    if (stored[i + 1] == '\xFF') {
      key->push_back('\0');
      i += 2;
      continue;
    }
    if (stored[i + 1] != '\x01') return false;
    i += 2;
    break;
  }
  if (stored.size() - i != 12) return false;
  rev->main = static_cast<int64_t>(GetBe64(stored.substr(i)));
  rev->sub = GetBe32(stored.substr(i + 8));
  return true;
}

std::string EventKey(Revision rev) {
  std::string out(1, kEventPrefix);
  PutBe64(&out, static_cast<uint64_t>(rev.main));
  PutBe32(&out, rev.sub);
  return out;
}

bool ParseEventKey(std::string_view stored, Revision* rev) {
  if (stored.size() != 13 || stored[0] != kEventPrefix) return false;
  rev->main = static_cast<int64_t>(GetBe64(stored.substr(1)));
  rev->sub = GetBe32(stored.substr(9));
  return true;
}

std::string EncodeRecord(const Record& record) {
  std::string out(1, record.tombstone ? 'D' : 'P');
  PutBe64(&out, static_cast<uint64_t>(record.create_revision));
  PutBe64(&out, static_cast<uint64_t>(record.version));
  PutBe64(&out, static_cast<uint64_t>(record.lease));
  out.append(record.value);
  return out;
}

bool DecodeRecord(std::string_view in, Record* record) {
  if (in.size() < 25 || (in[0] != 'D' && in[0] != 'P')) return false;
  record->tombstone = in[0] == 'D';
  record->create_revision = static_cast<int64_t>(GetBe64(in.substr(1)));
  record->version = static_cast<int64_t>(GetBe64(in.substr(9)));
  record->lease = static_cast<int64_t>(GetBe64(in.substr(17)));
  record->value.assign(in.substr(25));
  return true;
}

std::string LeaseKey(int64_t id) {
  std::string out(1, kLeasePrefix);
  PutBe64(&out, static_cast<uint64_t>(id));
  return out;
}

std::string EncodeLease(const LeaseRecord& lease) {
  std::string out;
  PutBe64(&out, static_cast<uint64_t>(lease.ttl));
  PutBe64(&out, lease.generation);
  return out;
}

bool DecodeLease(std::string_view in, LeaseRecord* lease) {
  if (in.size() != 16) return false;
  lease->ttl = static_cast<int64_t>(GetBe64(in));
  lease->generation = GetBe64(in.substr(8));
  return true;
}

std::string AttachPrefix(int64_t id) {
  std::string out(1, kAttachPrefix);
  PutBe64(&out, static_cast<uint64_t>(id));
  return out;
}

std::string AttachKey(int64_t id, std::string_view key) {
  std::string out = AttachPrefix(id);
  out.append(key);
  return out;
}

std::string DedupKey(const OpId& id) {
  std::string out(1, kDedupPrefix);
  for (uint8_t b : id) out.push_back(static_cast<char>(b));
  return out;
}

std::string EncodeDedup(const DedupRecord& record) {
  std::string out;
  PutBe64(&out, record.seq);
  PutBe64(&out, static_cast<uint64_t>(record.revision));
  PutBe32(&out, static_cast<uint32_t>(record.code));
  out.append(record.message);
  return out;
}

bool DecodeDedup(std::string_view in, DedupRecord* record) {
  if (in.size() < 20) return false;
  record->seq = GetBe64(in);
  record->revision = static_cast<int64_t>(GetBe64(in.substr(8)));
  record->code = static_cast<int32_t>(GetBe32(in.substr(16)));
  record->message.assign(in.substr(20));
  return true;
}

std::string WindowKey(uint64_t seq) {
  std::string out(1, kWindowPrefix);
  PutBe64(&out, seq);
  return out;
}

std::string MetaKey(std::string_view name) {
  std::string out(1, kMetaPrefix);
  out.append(name);
  return out;
}

}  // namespace kvstore::internal
