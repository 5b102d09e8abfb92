// ReplicatedStorage: the replication engine's Storage on the RocksDB
// MvccStore (layout and apply rules in replicated_storage.h).
#include "replicated_storage.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <algorithm>
#include <string_view>
#include <utility>

#include "convert.h"

namespace totemkv::server {
namespace {

using ::kvstore::AuxWrite;
using ::kvstore::repl::Meta;
using ::kvstore::repl::OpKind;
using ::kvstore::repl::OpRecord;
using totem::Status;
using totem::StatusCode;
using totem::StatusOr;

constexpr uint8_t kVersion = 1;
constexpr char kMetaKey[] = "meta";
constexpr char kLogPrefix[] = "log/";
constexpr char kLogEnd[] = "log0";  // '/' + 1: after every "log/" key
constexpr char kYellowPrefix[] = "yellow/";
constexpr char kYellowEnd[] = "yellow0";
constexpr char kMemberPrefix[] = "member/";

Status Corrupt(const std::string& what) {
  return Status(StatusCode::kInternal, "replicated storage: corrupt record: " + what);
}

void PutBe64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((v >> shift) & 0xFF));
}
void PutBe32(std::string* out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out->push_back(static_cast<char>((v >> shift) & 0xFF));
}

// Reads big-endian integers off the front of `in`; false if too short.
bool GetBe64(std::string_view* in, uint64_t* v) {
  if (in->size() < 8) return false;
  *v = 0;
  for (size_t i = 0; i < 8; ++i) *v = (*v << 8) | static_cast<uint8_t>((*in)[i]);
  in->remove_prefix(8);
  return true;
}
bool GetBe32(std::string_view* in, uint32_t* v) {
  if (in->size() < 4) return false;
  *v = 0;
  for (size_t i = 0; i < 4; ++i) *v = (*v << 8) | static_cast<uint8_t>((*in)[i]);
  in->remove_prefix(4);
  return true;
}

std::string LogKey(uint64_t index) {
  std::string k = kLogPrefix;
  PutBe64(&k, index);
  return k;
}

std::string MemberKey(totem::NodeId id) {
  std::string k = kMemberPrefix;
  PutBe32(&k, id);
  return k;
}

void EncodeRecord(const OpRecord& op, std::string* out) {
  out->push_back(static_cast<char>(kVersion));
  out->append(reinterpret_cast<const char*>(op.op_id.data()), op.op_id.size());
  PutBe32(out, op.origin);
  out->push_back(static_cast<char>(op.kind));
  PutBe32(out, op.member);
  out->append(op.payload);
}

bool DecodeRecord(std::string_view in, OpRecord* op) {
  if (in.size() < 1 + 16 + 4 + 1 + 4 || static_cast<uint8_t>(in[0]) != kVersion) return false;
  in.remove_prefix(1);
  std::copy(in.begin(), in.begin() + 16, op->op_id.begin());
  in.remove_prefix(16);
  uint32_t origin = 0, member = 0;
  GetBe32(&in, &origin);
  const uint8_t kind = static_cast<uint8_t>(in[0]);
  in.remove_prefix(1);
  GetBe32(&in, &member);
  if (kind > static_cast<uint8_t>(OpKind::kMemberRemove)) return false;
  op->origin = origin;
  op->kind = static_cast<OpKind>(kind);
  op->member = member;
  op->payload.assign(in);
  return true;
}

std::string EncodeLogEntry(const OpRecord& op, uint64_t hash) {
  std::string out(1, static_cast<char>(kVersion));
  PutBe64(&out, hash);
  EncodeRecord(op, &out);
  return out;
}

bool DecodeLogEntry(std::string_view in, OpRecord* op, uint64_t* hash) {
  if (in.empty() || static_cast<uint8_t>(in[0]) != kVersion) return false;
  in.remove_prefix(1);
  return GetBe64(&in, hash) && DecodeRecord(in, op);
}

std::string EncodeMeta(const Meta& m) {
  std::string out(1, static_cast<char>(kVersion));
  PutBe64(&out, m.green);
  PutBe64(&out, m.green_hash);
  PutBe64(&out, m.prim_number);
  PutBe32(&out, m.prim_ring.rep);
  PutBe64(&out, m.prim_ring.seq);
  PutBe32(&out, static_cast<uint32_t>(m.configured.size()));
  for (totem::NodeId id : m.configured) PutBe32(&out, id);
  return out;
}

bool DecodeMeta(std::string_view in, Meta* m) {
  if (in.empty() || static_cast<uint8_t>(in[0]) != kVersion) return false;
  in.remove_prefix(1);
  uint32_t rep = 0, n = 0;
  if (!GetBe64(&in, &m->green) || !GetBe64(&in, &m->green_hash) || !GetBe64(&in, &m->prim_number) ||
      !GetBe32(&in, &rep) || !GetBe64(&in, &m->prim_ring.seq) || !GetBe32(&in, &n) ||
      in.size() != 4 * static_cast<size_t>(n)) {
    return false;
  }
  m->prim_ring.rep = rep;
  m->configured.resize(n);
  for (uint32_t i = 0; i < n; ++i) GetBe32(&in, &m->configured[i]);
  return true;
}

bool NonZero(const ::kvstore::repl::OpId& id) {
  return std::any_of(id.begin(), id.end(), [](uint8_t b) { return b != 0; });
}

std::string SerializeMember(const totemkv::kvstore::v1::MemberInfo& m) {
  std::string out;
  google::protobuf::io::StringOutputStream stream(&out);
  google::protobuf::io::CodedOutputStream coded(&stream);
  coded.SetSerializationDeterministic(true);  // equal bytes on every replica
  m.SerializeToCodedStream(&coded);
  return out;
}

}  // namespace

// ---- snapshots ----

class ReplicatedStorage::Reader : public SnapshotReader {
 public:
  explicit Reader(std::unique_ptr<::kvstore::SnapshotExport> e) : export_(std::move(e)) {}
  StatusOr<bool> Next(size_t max_bytes, std::string* chunk) override {
    return export_->Next(max_bytes, chunk);
  }

 private:
  std::unique_ptr<::kvstore::SnapshotExport> export_;
};

class ReplicatedStorage::Writer : public SnapshotWriter {
 public:
  Writer(ReplicatedStorage* storage, std::unique_ptr<::kvstore::SnapshotInstaller> installer)
      : storage_(storage), installer_(std::move(installer)) {}
  Status Add(std::string_view chunk) override { return installer_->Add(chunk); }
  Status Commit(const Meta& meta) override {
    // The install drops every local aux record (op log, yellow ops, the
    // old meta) and writes the new meta in the same atomic step.
    Status s = installer_->Commit({AuxWrite::Put(false, kMetaKey, EncodeMeta(meta))});
    if (!s.ok()) return s;
    storage_->AfterInstall(meta);
    return Status::Ok();
  }

 private:
  ReplicatedStorage* storage_;
  std::unique_ptr<::kvstore::SnapshotInstaller> installer_;
};

// ---- ReplicatedStorage ----

ReplicatedStorage::ReplicatedStorage(std::shared_ptr<::kvstore::MvccStore> store,
                                     const ReplicatedStorageOptions& options)
    : options_(options), store_(std::move(store)) {}

ReplicatedStorage::~ReplicatedStorage() = default;

StatusOr<std::unique_ptr<ReplicatedStorage>> ReplicatedStorage::Open(
    std::shared_ptr<::kvstore::MvccStore> store, const ReplicatedStorageOptions& options) {
  if (store == nullptr) return totem::InvalidArgument("replicated storage: no store");
  if (options.log_retention_ops == 0 || options.log_retention_bytes == 0 ||
      options.result_retention_ops == 0) {
    return totem::InvalidArgument("replicated storage: retention bounds must be positive");
  }
  std::unique_ptr<ReplicatedStorage> s(new ReplicatedStorage(std::move(store), options));
  Status st = s->Load();
  if (!st.ok()) return st;
  return s;
}

Status ReplicatedStorage::Load() {
  auto raw = store_->ReadAux(false, kMetaKey);
  if (!raw.ok()) return raw.status();
  meta_ = Meta{};
  if (raw->has_value() && !DecodeMeta(**raw, &meta_)) return Corrupt("engine meta");

  auto yellow = store_->ScanAux(false, kYellowPrefix);
  if (!yellow.ok()) return yellow.status();
  yellow_.clear();
  for (const auto& [key, value] : *yellow) {
    OpRecord op;
    if (!DecodeRecord(value, &op)) return Corrupt("yellow op " + key);
    yellow_.push_back(std::move(op));
  }

  auto log = store_->ScanAux(false, kLogPrefix);
  if (!log.ok()) return log.status();
  log_sizes_.clear();
  log_bytes_ = 0;
  log_first_ = meta_.green + 1;
  uint64_t expect = 0;
  for (const auto& [key, value] : *log) {
    std::string_view k(key);
    k.remove_prefix(sizeof(kLogPrefix) - 1);
    uint64_t index = 0;
    if (!GetBe64(&k, &index) || !k.empty()) return Corrupt("op log key");
    if (expect == 0) log_first_ = index;
    if (expect != 0 && index != expect)
      return Corrupt("op log gap at index " + std::to_string(expect));
    expect = index + 1;
    log_sizes_.push_back(value.size());
    log_bytes_ += value.size();
  }
  if (expect != 0 && expect != meta_.green + 1) {
    return Corrupt("op log ends at " + std::to_string(expect - 1) + ", green is " +
                   std::to_string(meta_.green));
  }

  auto members = store_->ScanAux(true, kMemberPrefix, 1);
  if (!members.ok()) return members.status();
  members_stored_ = !members->empty();
  return Status::Ok();
}

Meta ReplicatedStorage::LoadMeta() { return meta_; }

std::vector<OpRecord> ReplicatedStorage::LoadYellow() { return yellow_; }

Status ReplicatedStorage::ApplyGreen(const std::vector<OpRecord>& ops,
                                     const std::vector<uint64_t>& hashes, const Meta& meta_after) {
  if (hashes.size() != ops.size()) {
    return Status(StatusCode::kFailedPrecondition,
                  "replicated storage: " + std::to_string(ops.size()) + " ops but " +
                      std::to_string(hashes.size()) + " hashes");
  }
  if (meta_after.green != meta_.green + ops.size()) {
    return Status(StatusCode::kFailedPrecondition,
                  "replicated storage: " + std::to_string(ops.size()) + " ops ending at index " +
                      std::to_string(meta_after.green) + " do not continue green " +
                      std::to_string(meta_.green));
  }
  const uint64_t first_index = meta_.green + 1;

  // Decode: which ops are store ops, and the aux writes of membership ops.
  std::vector<::kvstore::Op> store_ops;
  std::vector<int> store_index(ops.size(), -1);
  std::vector<bool> undecodable(ops.size(), false);
  std::vector<AuxWrite> aux;
  bool members_stored = members_stored_;
  uint64_t skipped = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    const OpRecord& op = ops[i];
    switch (op.kind) {
      case OpKind::kData: {
        totemkv::kvstore::v1::Op proto;
        if (!proto.ParseFromString(op.payload)) {
          undecodable[i] = true;
          ++skipped;
          break;
        }
        std::optional<::kvstore::Op> converted = FromOpProto(proto);
        if (converted) {
          store_index[i] = static_cast<int>(store_ops.size());
          store_ops.push_back(std::move(*converted));
        }
        break;
      }
      case OpKind::kMemberAdd:
      case OpKind::kMemberRemove: {
        if (!members_stored) {
          for (const auto& m : options_.bootstrap_members) {
            aux.push_back(AuxWrite::Put(true, MemberKey(m.id()), SerializeMember(m)));
          }
          members_stored = true;
        }
        if (op.kind == OpKind::kMemberRemove) {
          aux.push_back(AuxWrite::Delete(true, MemberKey(op.member)));
          break;
        }
        totemkv::kvstore::v1::MemberInfo info;
        if (!info.ParseFromString(op.payload)) info.Clear();  // the id alone still counts
        info.set_id(op.member);
        aux.push_back(AuxWrite::Put(true, MemberKey(op.member), SerializeMember(info)));
        break;
      }
    }
  }

  // The op log: append, then trim the oldest beyond the bounds (in steps,
  // so most batches add no range tombstone).
  std::deque<uint64_t> sizes = log_sizes_;
  uint64_t bytes = log_bytes_;
  uint64_t log_first = sizes.empty() ? first_index : log_first_;
  for (size_t i = 0; i < ops.size(); ++i) {
    std::string entry = EncodeLogEntry(ops[i], hashes[i]);
    sizes.push_back(entry.size());
    bytes += entry.size();
    aux.push_back(AuxWrite::Put(false, LogKey(first_index + i), std::move(entry)));
  }
  const uint64_t max_ops = options_.log_retention_ops;
  const uint64_t max_bytes = options_.log_retention_bytes;
  if (sizes.size() > max_ops + max_ops / 16 || bytes > max_bytes + max_bytes / 16) {
    const uint64_t old_first = log_first;
    while (!sizes.empty() && (sizes.size() > max_ops || bytes > max_bytes)) {
      bytes -= sizes.front();
      sizes.pop_front();
      ++log_first;
    }
    aux.push_back(AuxWrite::DeleteRange(false, LogKey(old_first), LogKey(log_first)));
  }
  aux.push_back(AuxWrite::Put(false, kMetaKey, EncodeMeta(meta_after)));

  const int64_t revision_before = store_->CurrentRevision();
  auto applied =
      store_->ApplyBatch(store_ops, ::kvstore::AppliedPosition{"", meta_after.green}, aux);
  if (!applied.ok()) return applied.status();
  std::vector<::kvstore::OpResult>& results = *applied;

  meta_ = meta_after;
  log_sizes_ = std::move(sizes);
  log_bytes_ = bytes;
  log_first_ = log_sizes_.empty() ? meta_.green + 1 : log_first;
  members_stored_ = members_stored;
  undecodable_ops_ += skipped;

  // Results for this node's ops; non-store ops report the revision at
  // their place in the order.
  int64_t revision = revision_before;
  for (size_t i = 0; i < ops.size(); ++i) {
    ::kvstore::OpResult result;
    if (store_index[i] >= 0) {
      result = results[static_cast<size_t>(store_index[i])];
      revision = result.revision;
    } else {
      result.revision = revision;
      if (undecodable[i]) {
        result.status = totem::InvalidArgument("totemkv: the op could not be decoded; skipped");
      }
    }
    if (ops[i].origin == options_.self && NonZero(ops[i].op_id)) {
      KeepResult(ops[i].op_id, first_index + i, std::move(result));
    }
  }
  {
    std::lock_guard<std::mutex> lock(results_mu_);
    while (!kept_order_.empty() &&
           kept_order_.front().first + options_.result_retention_ops < meta_.green) {
      auto it = results_.find(kept_order_.front().second);
      if (it != results_.end() && it->second.index == kept_order_.front().first) results_.erase(it);
      kept_order_.pop_front();
    }
  }
  if (observer_ && !store_ops.empty()) observer_(store_ops, results);
  return Status::Ok();
}

void ReplicatedStorage::KeepResult(const ::kvstore::repl::OpId& id, uint64_t index,
                                   ::kvstore::OpResult result) {
  std::lock_guard<std::mutex> lock(results_mu_);
  // The first application of an id is the one its client waits for; a
  // later copy (a retry) is a duplicate with the same outcome.
  if (results_.try_emplace(id, Kept{index, std::move(result)}).second) {
    kept_order_.emplace_back(index, id);
  }
}

std::optional<::kvstore::OpResult> ReplicatedStorage::TakeResult(const ::kvstore::repl::OpId& id) {
  std::lock_guard<std::mutex> lock(results_mu_);
  auto it = results_.find(id);
  if (it == results_.end()) return std::nullopt;
  ::kvstore::OpResult r = std::move(it->second.result);
  results_.erase(it);  // its kept_order_ entry goes when it ages out
  return r;
}

Status ReplicatedStorage::SaveYellow(const std::vector<OpRecord>& yellow, const Meta& meta) {
  std::vector<AuxWrite> aux;
  aux.push_back(AuxWrite::DeleteRange(false, kYellowPrefix, kYellowEnd));
  for (size_t i = 0; i < yellow.size(); ++i) {
    std::string key = kYellowPrefix;
    PutBe64(&key, i);
    std::string value;
    EncodeRecord(yellow[i], &value);
    aux.push_back(AuxWrite::Put(false, std::move(key), std::move(value)));
  }
  aux.push_back(AuxWrite::Put(false, kMetaKey, EncodeMeta(meta)));
  Status s = store_->WriteAux(aux);
  if (!s.ok()) return s;
  yellow_ = yellow;
  meta_ = meta;
  return Status::Ok();
}

Status ReplicatedStorage::SaveMeta(const Meta& meta) {
  Status s = store_->WriteAux({AuxWrite::Put(false, kMetaKey, EncodeMeta(meta))});
  if (!s.ok()) return s;
  meta_ = meta;
  return Status::Ok();
}

uint64_t ReplicatedStorage::LogFirst() { return log_sizes_.empty() ? meta_.green + 1 : log_first_; }

bool ReplicatedStorage::ReadLog(uint64_t index, OpRecord* op, uint64_t* hash) {
  if (index < LogFirst() || index > meta_.green) return false;
  auto raw = store_->ReadAux(false, LogKey(index));
  if (!raw.ok() || !raw->has_value()) return false;
  return DecodeLogEntry(**raw, op, hash);
}

StatusOr<std::unique_ptr<ReplicatedStorage::SnapshotReader>> ReplicatedStorage::OpenSnapshot() {
  auto e = store_->ExportSnapshot();
  if (!e.ok()) return e.status();
  return std::unique_ptr<SnapshotReader>(new Reader(std::move(*e)));
}

StatusOr<std::unique_ptr<ReplicatedStorage::SnapshotWriter>>
ReplicatedStorage::BeginSnapshotInstall() {
  auto in = store_->BeginInstall();
  if (!in.ok()) return in.status();
  return std::unique_ptr<SnapshotWriter>(new Writer(this, std::move(*in)));
}

void ReplicatedStorage::AfterInstall(const Meta& meta) {
  meta_ = meta;
  yellow_.clear();
  log_sizes_.clear();
  log_bytes_ = 0;
  log_first_ = meta_.green + 1;
  auto members = store_->ScanAux(true, kMemberPrefix, 1);
  members_stored_ = members.ok() && !members->empty();
  std::lock_guard<std::mutex> lock(results_mu_);
  results_.clear();
  kept_order_.clear();
}

void ReplicatedStorage::SetApplyObserver(ApplyObserver observer) {
  observer_ = std::move(observer);
}

std::vector<totemkv::kvstore::v1::MemberInfo> ReplicatedStorage::Members() const {
  std::vector<totemkv::kvstore::v1::MemberInfo> out;
  auto stored = store_->ScanAux(true, kMemberPrefix);
  if (!stored.ok()) return out;
  if (stored->empty()) {
    out = options_.bootstrap_members;
  } else {
    for (const auto& [key, value] : *stored) {
      totemkv::kvstore::v1::MemberInfo m;
      if (m.ParseFromString(value)) out.push_back(std::move(m));
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id() < b.id(); });
  return out;
}

}  // namespace totemkv::server
