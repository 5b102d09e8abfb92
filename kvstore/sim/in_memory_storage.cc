// InMemoryStorage and its state machine (see in_memory_storage.h).
#include "kvstore/sim/in_memory_storage.h"

#include <algorithm>

namespace kvstore::sim {
namespace {

uint64_t Fnv(uint64_t h, std::string_view s) {
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  return h;
}
uint64_t EntryHash(char tag, std::string_view a, std::string_view b) {
  uint64_t h = 14695981039346656037ull;
  h = Fnv(h, std::string_view(&tag, 1));
  h = Fnv(h, std::to_string(a.size()));
  h = Fnv(h, a);
  h = Fnv(h, b);
  return h * 0x9E3779B97F4A7C15ull;
}
std::string_view IdView(const OpId& id) {
  return std::string_view(reinterpret_cast<const char*>(id.data()), id.size());
}
void PutStr(std::string& out, std::string_view s) {
  const uint32_t n = static_cast<uint32_t>(s.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(n >> (8 * i)));
  out.append(s);
}
bool GetStr(std::string_view& in, std::string* s) {
  if (in.size() < 4) return false;
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  in.remove_prefix(4);
  if (in.size() < n) return false;
  s->assign(in.data(), n);
  in.remove_prefix(n);
  return true;
}

}  // namespace

std::string EncodeKvOp(const KvOp& op) {
  std::string out(op.is_get ? "G" : "P");
  PutStr(out, op.key);
  if (!op.is_get) PutStr(out, op.value);
  return out;
}

std::optional<KvOp> DecodeKvOp(const std::string& payload) {
  if (payload.empty() || (payload[0] != 'G' && payload[0] != 'P')) return std::nullopt;
  std::string_view in(payload);
  in.remove_prefix(1);
  KvOp op;
  op.is_get = payload[0] == 'G';
  if (!GetStr(in, &op.key)) return std::nullopt;
  if (!op.is_get && !GetStr(in, &op.value)) return std::nullopt;
  if (!in.empty()) return std::nullopt;
  return op;
}

void KvStateMachine::Set(const std::string& key, const std::string& value) {
  auto it = data_.find(key);
  if (it != data_.end()) checksum_ ^= EntryHash('d', key, it->second);
  data_[key] = value;
  checksum_ ^= EntryHash('d', key, value);
}

std::string KvStateMachine::Apply(const OpRecord& op) {
  const bool has_id = op.op_id != OpId{};
  if (has_id) {
    auto it = results_.find(op.op_id);
    if (it != results_.end()) return it->second;
  }
  if (op.kind != repl::OpKind::kData) return "";
  std::optional<KvOp> kv = DecodeKvOp(op.payload);
  if (!kv) return "";
  std::string result;
  if (kv->is_get) {
    auto it = data_.find(kv->key);
    result = it == data_.end() ? kNoValue : it->second;
  } else {
    Set(kv->key, kv->value);
    result = kPutOk;
  }
  if (has_id) {
    results_[op.op_id] = result;
    checksum_ ^= EntryHash('r', IdView(op.op_id), result);
  }
  return result;
}

std::optional<std::string> KvStateMachine::ResultOf(const OpId& id) const {
  auto it = results_.find(id);
  if (it == results_.end()) return std::nullopt;
  return it->second;
}

std::string KvStateMachine::Serialize() const {
  std::string out;
  PutStr(out, std::to_string(data_.size()));
  for (const auto& [k, v] : data_) {
    PutStr(out, k);
    PutStr(out, v);
  }
  PutStr(out, std::to_string(results_.size()));
  for (const auto& [id, r] : results_) {
    PutStr(out, IdView(id));
    PutStr(out, r);
  }
  return out;
}

bool KvStateMachine::Deserialize(const std::string& bytes) {
  KvStateMachine fresh;
  std::string_view in(bytes);
  std::string count;
  if (!GetStr(in, &count)) return false;
  const size_t n = std::stoul(count);
  for (size_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!GetStr(in, &k) || !GetStr(in, &v)) return false;
    fresh.Set(k, v);
  }
  if (!GetStr(in, &count)) return false;
  const size_t m = std::stoul(count);
  for (size_t i = 0; i < m; ++i) {
    std::string id, r;
    if (!GetStr(in, &id) || !GetStr(in, &r) || id.size() != sizeof(OpId)) return false;
    OpId op_id{};
    std::copy(id.begin(), id.end(), op_id.begin());
    fresh.results_[op_id] = r;
    fresh.checksum_ ^= EntryHash('r', IdView(op_id), r);
  }
  if (!in.empty()) return false;
  *this = std::move(fresh);
  return true;
}

InMemoryStorage::InMemoryStorage(size_t log_retention, size_t snapshot_chunk_bytes)
    : log_retention_(std::max<size_t>(1, log_retention)),
      chunk_bytes_(std::max<size_t>(1, snapshot_chunk_bytes)) {}

Status InMemoryStorage::ApplyGreen(const std::vector<OpRecord>& ops,
                                   const std::vector<uint64_t>& hashes, const Meta& meta_after) {
  if (ops.size() != hashes.size() || meta_after.green < ops.size() ||
      meta_after.green - ops.size() != meta_.green) {
    return Status(totem::StatusCode::kInternal, "ApplyGreen: indexes do not follow the log");
  }
  uint64_t prev = meta_.green_hash;
  for (size_t i = 0; i < ops.size(); ++i) {
    const uint64_t index = meta_.green + 1 + i;
    if (drop_next_ && ops[i].kind == repl::OpKind::kData) {
      drop_next_ = false;
    } else {
      state_.Apply(ops[i]);
    }
    log_.push_back({index, hashes[i], ops[i]});
    if (observer_.applied) observer_.applied(index, hashes[i], prev, ops[i]);
    prev = hashes[i];
  }
  while (log_.size() > log_retention_) log_.pop_front();
  meta_ = meta_after;
  return Status::Ok();
}

Status InMemoryStorage::SaveYellow(const std::vector<OpRecord>& yellow, const Meta& meta) {
  yellow_ = yellow;
  meta_ = meta;
  return Status::Ok();
}

Status InMemoryStorage::SaveMeta(const Meta& meta) {
  meta_ = meta;
  return Status::Ok();
}

uint64_t InMemoryStorage::LogFirst() { return log_.empty() ? meta_.green + 1 : log_.front().index; }

bool InMemoryStorage::ReadLog(uint64_t index, OpRecord* op, uint64_t* hash) {
  if (log_.empty() || index < log_.front().index || index > log_.back().index) return false;
  const LogEntry& e = log_[index - log_.front().index];
  *op = e.op;
  *hash = e.hash;
  return true;
}

class InMemoryStorage::Reader final : public SnapshotReader {
 public:
  Reader(std::string image, size_t chunk_bytes) : image_(std::move(image)), chunk_(chunk_bytes) {}
  StatusOr<bool> Next(size_t max_bytes, std::string* chunk) override {
    if (at_ >= image_.size()) return false;
    const size_t n = std::min({chunk_, std::max<size_t>(1, max_bytes), image_.size() - at_});
    chunk->assign(image_, at_, n);
    at_ += n;
    return true;
  }

 private:
  std::string image_;  // point in time: a copy
  size_t chunk_;
  size_t at_ = 0;
};

class InMemoryStorage::Writer final : public SnapshotWriter {
 public:
  explicit Writer(InMemoryStorage* s) : s_(s) {}
  Status Add(std::string_view chunk) override {
    image_.append(chunk);
    return Status::Ok();
  }
  Status Commit(const Meta& meta) override {
    KvStateMachine state;
    if (!state.Deserialize(image_)) {
      return Status(totem::StatusCode::kInternal, "snapshot image does not parse");
    }
    s_->state_ = std::move(state);
    s_->meta_ = meta;
    s_->log_.clear();
    s_->yellow_.clear();
    ++s_->snapshots_installed_;
    if (s_->observer_.installed) s_->observer_.installed(meta);
    return Status::Ok();
  }

 private:
  InMemoryStorage* s_;
  std::string image_;
};

StatusOr<std::unique_ptr<repl::Storage::SnapshotReader>> InMemoryStorage::OpenSnapshot() {
  return std::unique_ptr<SnapshotReader>(
      std::make_unique<Reader>(state_.Serialize(), chunk_bytes_));
}

StatusOr<std::unique_ptr<repl::Storage::SnapshotWriter>> InMemoryStorage::BeginSnapshotInstall() {
  return std::unique_ptr<SnapshotWriter>(std::make_unique<Writer>(this));
}

}  // namespace kvstore::sim
