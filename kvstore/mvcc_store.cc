// MvccStore: etcd MVCC semantics on RocksDB, applied batch by batch in one
// WriteBatchWithIndex (ops of a batch read their predecessors through the
// batch's index). Layout and revision rules are documented in mvcc_store.h.
#include "kvstore/mvcc_store.h"

#include <rocksdb/db.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/utilities/write_batch_with_index.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <map>
#include <system_error>
#include <utility>

#include "encoding.h"

namespace kvstore {
namespace {

using internal::Record;
using internal::Revision;
using totem::InvalidArgument;
using totem::IoError;

Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::Ok();
  return IoError("rocksdb: " + s.ToString());
}

Status FailedPrecondition(std::string m) {
  return Status(StatusCode::kFailedPrecondition, std::move(m));
}

Status Corrupt(const std::string& what) {
  return Status(StatusCode::kInternal, "kvstore: corrupt record: " + what);
}

constexpr char kFormat[] = "totemkv-mvcc-1";
constexpr char kStagingDir[] = "snapshot-staging";

std::string AuxKey(bool replicated, std::string_view key) {
  std::string out(1, replicated ? internal::kReplicatedAuxPrefix : internal::kLocalAuxPrefix);
  out.append(key);
  return out;
}

// Checks every aux write before anything is written.
Status ValidateAux(const std::vector<AuxWrite>& aux) {
  for (const AuxWrite& w : aux) {
    if (w.key.empty()) return InvalidArgument("kvstore: aux write with an empty key");
    if (!w.range_end.empty() && (w.value || w.range_end <= w.key)) {
      return InvalidArgument("kvstore: aux range delete [" + w.key + ", " + w.range_end +
                             ") is empty or carries a value");
    }
  }
  return Status::Ok();
}

// Appends validated aux writes to `batch`.
Status AddAux(const std::vector<AuxWrite>& aux, rocksdb::WriteBatch* batch) {
  for (const AuxWrite& w : aux) {
    rocksdb::Status s;
    if (w.value) {
      s = batch->Put(AuxKey(w.replicated, w.key), *w.value);
    } else if (w.range_end.empty()) {
      s = batch->Delete(AuxKey(w.replicated, w.key));
    } else {
      s = batch->DeleteRange(AuxKey(w.replicated, w.key), AuxKey(w.replicated, w.range_end));
    }
    Status st = FromRocks(s);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

uint64_t Fnv1a64(std::string_view data, uint64_t h = 14695981039346656037ULL) {
  for (char c : data) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

// Advances `it` past local aux records (which sort last).
void SkipLocalAux(rocksdb::Iterator* it) {
  if (it->Valid() && it->key().size() > 0 && it->key()[0] == internal::kLocalAuxPrefix) {
    it->Seek(std::string(1, internal::kLocalAuxPrefix + 1));
  }
}

// Snapshot chunk framing (mvcc_store.h, SnapshotExport).
constexpr char kChunkMagic[] = "TKS1";
constexpr size_t kChunkHeaderBytes = 4 + 8 + 4 + 1 + 4;
constexpr size_t kChunkTrailerBytes = 8;
constexpr uint8_t kChunkLast = 1;

// A key span with etcd's range_end conventions.
struct Span {
  Span(const std::string& key, const std::string& range_end) : begin(key), end(range_end) {
    single = range_end.empty();
    unbounded = range_end.size() == 1 && range_end[0] == '\0';
  }
  bool Contains(const std::string& k) const {
    if (single) return k == begin;
    if (k < begin) return false;
    return unbounded || k < end;
  }
  std::string begin;
  std::string end;
  bool single = false;
  bool unbounded = false;
};

// Reads committed state (batch == nullptr, optionally at a snapshot) or
// committed state overlaid with a batch being built.
class View {
 public:
  View(rocksdb::DB* db, rocksdb::WriteBatchWithIndex* batch, const rocksdb::Snapshot* snapshot)
      : db_(db), batch_(batch) {
    read_options_.snapshot = snapshot;
  }

  Status Get(const std::string& key, std::string* value, bool* found) const {
    rocksdb::Status s = batch_ != nullptr
                            ? batch_->GetFromBatchAndDB(db_, read_options_, key, value)
                            : db_->Get(read_options_, key, value);
    *found = s.ok();
    if (s.IsNotFound()) return Status::Ok();
    return FromRocks(s);
  }

  std::unique_ptr<rocksdb::Iterator> NewIterator() const {
    rocksdb::Iterator* base = db_->NewIterator(read_options_);
    if (batch_ == nullptr) return std::unique_ptr<rocksdb::Iterator>(base);
    return std::unique_ptr<rocksdb::Iterator>(
        batch_->NewIteratorWithBase(db_->DefaultColumnFamily(), base));
  }

 private:
  rocksdb::DB* db_;
  rocksdb::WriteBatchWithIndex* batch_;
  rocksdb::ReadOptions read_options_;
};

KeyValue ToKeyValue(const std::string& key, Revision rev, const Record& r) {
  KeyValue kv;
  kv.key = key;
  kv.create_revision = r.create_revision;
  kv.mod_revision = rev.main;
  kv.version = r.version;
  kv.value = r.value;
  kv.lease = r.lease;
  return kv;
}

// The record of `key` with the greatest revision <= `at`, if any.
Status LatestAt(rocksdb::Iterator* it, const std::string& key, Revision at,
                std::optional<std::pair<Revision, Record>>* out) {
  out->reset();
  it->SeekForPrev(internal::IndexKey(key, at));
  if (!it->Valid()) return FromRocks(it->status());
  std::string found;
  Revision rev;
  rocksdb::Slice k = it->key();
  if (k.size() == 0 || k[0] != internal::kIndexPrefix) return Status::Ok();
  if (!internal::ParseIndexKey(std::string_view(k.data(), k.size()), &found, &rev)) {
    return Corrupt("index key");
  }
  if (found != key) return Status::Ok();
  Record r;
  rocksdb::Slice v = it->value();
  if (!internal::DecodeRecord(std::string_view(v.data(), v.size()), &r)) return Corrupt("record");
  out->emplace(rev, std::move(r));
  return Status::Ok();
}

// The live (non-tombstone) value of `key` at main revision `rev`.
Status LiveAt(rocksdb::Iterator* it, const std::string& key, int64_t rev,
              std::optional<KeyValue>* out) {
  out->reset();
  std::optional<std::pair<Revision, Record>> latest;
  Status s = LatestAt(it, key, Revision{rev, internal::kMaxSub}, &latest);
  if (!s.ok()) return s;
  if (latest && !latest->second.tombstone)
    out->emplace(ToKeyValue(key, latest->first, latest->second));
  return Status::Ok();
}

// Calls `fn(kv)` for every live key of `span` at main revision `rev`, in
// key order.
template <typename Fn>
Status ForEachLive(const View& view, const Span& span, int64_t rev, Fn&& fn) {
  std::unique_ptr<rocksdb::Iterator> it = view.NewIterator();
  if (span.single) {
    std::optional<KeyValue> kv;
    Status s = LiveAt(it.get(), span.begin, rev, &kv);
    if (!s.ok()) return s;
    if (kv) fn(std::move(*kv));
    return Status::Ok();
  }
  if (!span.unbounded && span.end <= span.begin) return Status::Ok();
  it->Seek(internal::IndexKeyPrefix(span.begin));
  std::string key;
  while (it->Valid()) {
    rocksdb::Slice k = it->key();
    if (k.size() == 0 || k[0] != internal::kIndexPrefix) break;
    Revision ignored;
    if (!internal::ParseIndexKey(std::string_view(k.data(), k.size()), &key, &ignored)) {
      return Corrupt("index key");
    }
    if (!span.Contains(key)) break;
    std::optional<KeyValue> kv;
    Status s = LiveAt(it.get(), key, rev, &kv);
    if (!s.ok()) return s;
    if (kv) fn(std::move(*kv));
    it->Seek(internal::IndexKeyEnd(key));
  }
  return FromRocks(it->status());
}

int64_t SortField(const KeyValue& kv, RangeRequest::SortTarget target) {
  switch (target) {
    case RangeRequest::SortTarget::kVersion:
      return kv.version;
    case RangeRequest::SortTarget::kCreate:
      return kv.create_revision;
    case RangeRequest::SortTarget::kMod:
      return kv.mod_revision;
    default:
      return 0;
  }
}

// etcd's Range: revision checks, filters, sort, limit, keys/count only.
StatusOr<RangeResponse> DoRange(const View& view, const RangeRequest& req, int64_t current,
                                int64_t compacted) {
  int64_t rev = req.revision <= 0 ? current : req.revision;
  if (rev > current) return FailedPrecondition(kErrFutureRev);
  if (rev < compacted) return FailedPrecondition(kErrCompacted);
  using SO = RangeRequest::SortOrder;
  using ST = RangeRequest::SortTarget;
  SO order = req.sort_order;
  if (order == SO::kNone && req.sort_target != ST::kKey) order = SO::kAscend;
  bool filtered = req.min_mod_revision != 0 || req.max_mod_revision != 0 ||
                  req.min_create_revision != 0 || req.max_create_revision != 0;
  bool key_order = order == SO::kNone || (order == SO::kAscend && req.sort_target == ST::kKey);
  size_t keep_max = std::numeric_limits<size_t>::max();
  if (req.count_only) {
    keep_max = 0;
  } else if (req.limit > 0 && key_order && !filtered) {
    keep_max = static_cast<size_t>(req.limit) + 1;
  }
  RangeResponse resp;
  Status s = ForEachLive(view, Span(req.key, req.range_end), rev, [&](KeyValue kv) {
    ++resp.count;
    if (resp.kvs.size() >= keep_max) return;
    if (req.min_mod_revision != 0 && kv.mod_revision < req.min_mod_revision) return;
    if (req.max_mod_revision != 0 && kv.mod_revision > req.max_mod_revision) return;
    if (req.min_create_revision != 0 && kv.create_revision < req.min_create_revision) return;
    if (req.max_create_revision != 0 && kv.create_revision > req.max_create_revision) return;
    resp.kvs.push_back(std::move(kv));
  });
  if (!s.ok()) return s;
  if (!key_order) {
    if (req.sort_target == ST::kKey) {
      std::reverse(resp.kvs.begin(), resp.kvs.end());
    } else {
      bool descend = order == SO::kDescend;
      ST target = req.sort_target;
      std::stable_sort(resp.kvs.begin(), resp.kvs.end(), [&](const KeyValue& a, const KeyValue& b) {
        if (target == ST::kValue) return descend ? b.value < a.value : a.value < b.value;
        return descend ? SortField(b, target) < SortField(a, target)
                       : SortField(a, target) < SortField(b, target);
      });
    }
  }
  if (req.limit > 0 && resp.kvs.size() > static_cast<size_t>(req.limit)) {
    resp.kvs.resize(static_cast<size_t>(req.limit));
    resp.more = true;
  }
  if (req.keys_only) {
    for (KeyValue& kv : resp.kvs) kv.value.clear();
  }
  return resp;
}

// ---- validation (pure; runs before anything is applied) ----

struct Limits {
  const StoreOptions& o;
  size_t bytes = 0;

  Status Key(const std::string& key, const std::string& range_end) {
    if (key.empty()) return InvalidArgument(kErrEmptyKey);
    if (key.size() > o.max_key_bytes) {
      return InvalidArgument("kvstore: key is too large: " + std::to_string(key.size()) +
                             " bytes, limit " + std::to_string(o.max_key_bytes));
    }
    if (range_end.size() > o.max_key_bytes) {
      return InvalidArgument(
          "kvstore: range_end is too large: " + std::to_string(range_end.size()) +
          " bytes, limit " + std::to_string(o.max_key_bytes));
    }
    bytes += key.size() + range_end.size();
    return Status::Ok();
  }

  Status Value(const std::string& value) {
    if (value.size() > o.max_value_bytes) {
      return InvalidArgument("kvstore: value is too large: " + std::to_string(value.size()) +
                             " bytes, limit " + std::to_string(o.max_value_bytes));
    }
    bytes += value.size();
    return Status::Ok();
  }

  Status Put(const PutRequest& p) {
    Status s = Key(p.key, "");
    if (!s.ok()) return s;
    if (p.ignore_value && !p.value.empty()) return InvalidArgument(kErrValueProvided);
    if (p.ignore_lease && p.lease != 0) return InvalidArgument(kErrLeaseProvided);
    return Value(p.value);
  }

  Status Txn(const TxnRequest& t) {
    if (t.compare.size() > o.max_txn_ops || t.success.size() > o.max_txn_ops ||
        t.failure.size() > o.max_txn_ops) {
      return InvalidArgument(std::string(kErrTooManyOps) + " (limit " +
                             std::to_string(o.max_txn_ops) + " per list)");
    }
    for (const Compare& c : t.compare) {
      Status s = Key(c.key, c.range_end);
      if (!s.ok()) return s;
      s = Value(c.value);
      if (!s.ok()) return s;
    }
    for (const auto* list : {&t.success, &t.failure}) {
      for (const RequestOp& op : *list) {
        Status s = Request(op.request);
        if (!s.ok()) return s;
      }
      std::vector<std::string> puts;
      std::vector<Span> dels;
      Status s = Intervals(*list, &puts, &dels);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  // etcd's checkIntervals: within the ops that can run together, a key is
  // put at most once and never both put and deleted (then/else branches of
  // a nested txn are exclusive, so the same put in both is fine).
  static Status Intervals(const std::vector<RequestOp>& reqs, std::vector<std::string>* puts,
                          std::vector<Span>* dels) {
    const Status dup = InvalidArgument(kErrDuplicateKey);
    auto deleted = [&](const std::string& k) {
      return std::any_of(dels->begin(), dels->end(), [&](const Span& d) { return d.Contains(k); });
    };
    auto put_before = [&](const std::string& k) {
      return std::find(puts->begin(), puts->end(), k) != puts->end();
    };
    for (const RequestOp& op : reqs) {
      if (const auto* d = std::get_if<DeleteRangeRequest>(&op.request)) {
        dels->emplace_back(d->key, d->range_end);
      }
    }
    for (const RequestOp& op : reqs) {
      const auto* t = std::get_if<TxnRequest>(&op.request);
      if (t == nullptr) continue;
      std::vector<std::string> puts_then, puts_else;
      std::vector<Span> dels_then, dels_else;
      Status s = Intervals(t->success, &puts_then, &dels_then);
      if (!s.ok()) return s;
      s = Intervals(t->failure, &puts_else, &dels_else);
      if (!s.ok()) return s;
      for (const std::string& k : puts_then) {
        if (put_before(k) || deleted(k)) return dup;
        puts->push_back(k);
      }
      for (const std::string& k : puts_else) {
        bool in_then = std::find(puts_then.begin(), puts_then.end(), k) != puts_then.end();
        if ((put_before(k) && !in_then) || deleted(k)) return dup;
        puts->push_back(k);
      }
      dels->insert(dels->end(), dels_then.begin(), dels_then.end());
      dels->insert(dels->end(), dels_else.begin(), dels_else.end());
    }
    for (const RequestOp& op : reqs) {
      const auto* p = std::get_if<PutRequest>(&op.request);
      if (p == nullptr) continue;
      if (put_before(p->key) || deleted(p->key)) return dup;
      puts->push_back(p->key);
    }
    return Status::Ok();
  }

  template <typename Variant>
  Status Request(const Variant& v) {
    return std::visit(
        [&](const auto& r) -> Status {
          using T = std::decay_t<decltype(r)>;
          if constexpr (std::is_same_v<T, RangeRequest> || std::is_same_v<T, DeleteRangeRequest>) {
            return Key(r.key, r.range_end);
          } else if constexpr (std::is_same_v<T, PutRequest>) {
            return Put(r);
          } else if constexpr (std::is_same_v<T, TxnRequest>) {
            return Txn(r);
          } else if constexpr (std::is_same_v<T, LeaseGrantRequest>) {
            if (r.id == 0) return InvalidArgument("kvstore: lease id 0 is reserved (no lease)");
            if (r.ttl > 9000000000LL) return InvalidArgument("etcdserver: too large lease TTL");
            return Status::Ok();
          } else {
            return Status::Ok();
          }
        },
        v);
  }

  Status Check(const Op& op) {
    Status s = Request(op.request);
    if (!s.ok()) return s;
    if (bytes > o.max_request_bytes) {
      return InvalidArgument(std::string(kErrRequestTooLarge) + ": " + std::to_string(bytes) +
                             " bytes of keys and values, limit " +
                             std::to_string(o.max_request_bytes));
    }
    return Status::Ok();
  }
};

bool CompareKv(const Compare& c, const KeyValue& kv) {
  int r = 0;
  auto cmp = [](int64_t a, int64_t b) { return a < b ? -1 : (a > b ? 1 : 0); };
  switch (c.target) {
    case Compare::Target::kValue:
      r = kv.value.compare(c.value);
      r = r < 0 ? -1 : (r > 0 ? 1 : 0);
      break;
    case Compare::Target::kVersion:
      r = cmp(kv.version, c.version);
      break;
    case Compare::Target::kCreate:
      r = cmp(kv.create_revision, c.create_revision);
      break;
    case Compare::Target::kMod:
      r = cmp(kv.mod_revision, c.mod_revision);
      break;
    case Compare::Target::kLease:
      r = cmp(kv.lease, c.lease);
      break;
  }
  switch (c.result) {
    case Compare::Result::kEqual:
      return r == 0;
    case Compare::Result::kNotEqual:
      return r != 0;
    case Compare::Result::kGreater:
      return r > 0;
    case Compare::Result::kLess:
      return r < 0;
  }
  return false;
}

// Which branch each txn in a tree takes, decided before any write (etcd
// evaluates every compare of the chosen path against the pre-txn state).
struct TxnPath {
  bool succeeded = false;
  std::vector<TxnPath> nested;  // one per TxnRequest in the chosen branch, in order
};

}  // namespace

// ---- the per-batch apply context ----

class MvccStore::Apply {
 public:
  explicit Apply(MvccStore* store)
      : store_(store),
        batch_(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true),
        view_(store->db_.get(), &batch_, nullptr),
        rev_(store->revision_),
        compacted_(store->compacted_),
        dedup_seq_(store->dedup_seq_),
        generation_(store->generation_) {}

  StatusOr<std::vector<OpResult>> Run(const std::vector<Op>& ops, const AppliedPosition& pos,
                                      const std::vector<AuxWrite>& aux) {
    Status valid = ValidateAux(aux);
    if (!valid.ok()) return valid;
    std::vector<OpResult> results(ops.size());
    uint64_t writes = store_->applied_writes_;
    for (size_t i = 0; i < ops.size(); ++i) {
      const uint32_t records_before = batch_.GetWriteBatch()->Count();
      Status s = ApplyOne(ops[i], &results[i]);
      if (!s.ok()) return s;  // storage failure: nothing of the batch is written
      if (batch_.GetWriteBatch()->Count() != records_before) ++writes;
    }
    Status s = PutMeta(pos);
    if (!s.ok()) return s;
    if (writes != store_->applied_writes_) {
      std::string count;
      internal::PutBe64(&count, writes);
      s = Put(internal::MetaKey("writes"), count);
      if (!s.ok()) return s;
    }
    // Nothing reads the batch after this, so aux range deletes (which the
    // index does not support) go straight into the underlying batch.
    s = AddAux(aux, batch_.GetWriteBatch());
    if (!s.ok()) return s;
    rocksdb::WriteOptions wo;
    wo.sync = store_->options_.sync;
    s = FromRocks(store_->db_->Write(wo, batch_.GetWriteBatch()));
    if (!s.ok()) return s;
    store_->revision_ = rev_;
    store_->compacted_ = compacted_;
    store_->dedup_seq_ = dedup_seq_;
    store_->generation_ = generation_;
    store_->position_ = pos;
    store_->applied_writes_ = writes;
    if (store_->callback_ && !events_.empty()) store_->callback_(events_, rev_);
    return results;
  }

 private:
  // Storage errors are returned; the op's own failure goes into `result`.
  Status ApplyOne(const Op& op, OpResult* result) {
    bool dedup = std::any_of(op.op_id.begin(), op.op_id.end(), [](uint8_t b) { return b != 0; });
    if (dedup) {
      std::string raw;
      bool found = false;
      Status s = view_.Get(internal::DedupKey(op.op_id), &raw, &found);
      if (!s.ok()) return s;
      if (found) {
        internal::DedupRecord d;
        if (!internal::DecodeDedup(raw, &d)) return Corrupt("dedup record");
        result->duplicate = true;
        result->revision = d.revision;
        result->status = Status(static_cast<StatusCode>(d.code), d.message);
        return Status::Ok();
      }
    }
    Limits limits{store_->options_};
    Status op_status = limits.Check(op);
    if (op_status.ok()) {
      // Everything an op changes is undone if it fails half-way.
      const int64_t saved_rev = rev_, saved_compacted = compacted_;
      const uint64_t saved_generation = generation_;
      const size_t saved_events = events_.size();
      batch_.SetSavePoint();
      new_rev_ = rev_ + 1;
      sub_ = 0;
      Status io;
      op_status = std::visit([&](const auto& r) { return Do(r, result, &io); }, op.request);
      if (!io.ok()) return io;
      if (op_status.ok()) {
        if (sub_ > 0) rev_ = new_rev_;
        Status p = FromRocks(batch_.PopSavePoint());
        if (!p.ok()) return p;
      } else {
        Status r = FromRocks(batch_.RollbackToSavePoint());
        if (!r.ok()) return r;
        rev_ = saved_rev;
        compacted_ = saved_compacted;
        generation_ = saved_generation;
        events_.resize(saved_events);
        result->response = std::monostate{};
      }
    }
    result->status = op_status;
    result->revision = rev_;
    if (dedup) return Remember(op.op_id, *result);
    return Status::Ok();
  }

  Status Remember(const OpId& id, const OpResult& result) {
    internal::DedupRecord d;
    d.seq = ++dedup_seq_;
    d.revision = result.revision;
    d.code = static_cast<int32_t>(result.status.code());
    d.message = result.status.message();
    Status s = Put(internal::DedupKey(id), internal::EncodeDedup(d));
    if (!s.ok()) return s;
    s = Put(internal::WindowKey(d.seq), internal::DedupKey(id));
    if (!s.ok()) return s;
    uint64_t window = store_->options_.dedup_window;
    if (d.seq <= window) return Status::Ok();
    std::string old_key = internal::WindowKey(d.seq - window);
    std::string old_id;
    bool found = false;
    s = view_.Get(old_key, &old_id, &found);
    if (!s.ok() || !found) return s;
    s = Delete(old_id);
    if (!s.ok()) return s;
    return Delete(old_key);
  }

  Status PutMeta(const AppliedPosition& pos) {
    std::string v;
    internal::PutBe64(&v, static_cast<uint64_t>(rev_));
    internal::PutBe64(&v, static_cast<uint64_t>(compacted_));
    internal::PutBe64(&v, dedup_seq_);
    internal::PutBe64(&v, generation_);
    Status s = Put(internal::MetaKey("state"), v);
    if (!s.ok()) return s;
    std::string p;
    internal::PutBe64(&p, pos.seq);
    p.append(pos.config_id);
    return Put(internal::MetaKey("position"), p);
  }

  Status Put(const std::string& k, const std::string& v) { return FromRocks(batch_.Put(k, v)); }
  Status Delete(const std::string& k) { return FromRocks(batch_.Delete(k)); }

  // The revision reads inside the current op see (its own writes included).
  int64_t Visible() const { return sub_ > 0 ? new_rev_ : rev_; }

  // Appends one change of the current op to history and the event log.
  Status Write(const std::string& key, const Record& record, Event event) {
    Revision r{new_rev_, sub_++};
    Status s = Put(internal::IndexKey(key, r), internal::EncodeRecord(record));
    if (!s.ok()) return s;
    s = Put(internal::EventKey(r), key);
    if (!s.ok()) return s;
    event.kv.mod_revision = new_rev_;
    events_.push_back(std::move(event));
    return Status::Ok();
  }

  Status LeaseExists(int64_t id, bool* exists, internal::LeaseRecord* lease = nullptr) {
    std::string raw;
    Status s = view_.Get(internal::LeaseKey(id), &raw, exists);
    if (!s.ok() || !*exists || lease == nullptr) return s;
    if (!internal::DecodeLease(raw, lease)) return Corrupt("lease");
    return Status::Ok();
  }

  // Each Do() returns the op's outcome; storage errors go to *io.
  Status Do(const RangeRequest& r, OpResult* result, Status* io) {
    StatusOr<RangeResponse> resp = DoRange(view_, r, Visible(), compacted_);
    if (!resp.ok()) {
      if (resp.status().code() == StatusCode::kIoError) *io = resp.status();
      return resp.status();
    }
    result->response = std::move(resp.value());
    return Status::Ok();
  }

  Status Do(const PutRequest& r, OpResult* result, Status* io) {
    PutResponse resp;
    Status s = DoPut(r, &resp, io);
    if (s.ok()) result->response = std::move(resp);
    return s;
  }

  Status DoPut(const PutRequest& r, PutResponse* resp, Status* io) {
    std::unique_ptr<rocksdb::Iterator> it = view_.NewIterator();
    std::optional<KeyValue> prev;
    if (!(*io = LiveAt(it.get(), r.key, Visible(), &prev)).ok()) return *io;
    it.reset();
    Record rec;
    rec.value = r.value;
    rec.lease = r.lease;
    if ((r.ignore_value || r.ignore_lease) && !prev) return FailedPrecondition(kErrKeyNotFound);
    if (r.ignore_value) rec.value = prev->value;
    if (r.ignore_lease) rec.lease = prev->lease;
    if (rec.lease != 0) {
      bool exists = false;
      if (!(*io = LeaseExists(rec.lease, &exists)).ok()) return *io;
      if (!exists) return FailedPrecondition(kErrLeaseNotFound);
    }
    rec.create_revision = prev ? prev->create_revision : new_rev_;
    rec.version = prev ? prev->version + 1 : 1;
    if (prev && prev->lease != 0 && prev->lease != rec.lease) {
      if (!(*io = Delete(internal::AttachKey(prev->lease, r.key))).ok()) return *io;
    }
    if (rec.lease != 0) {
      if (!(*io = Put(internal::AttachKey(rec.lease, r.key), "")).ok()) return *io;
    }
    Event ev;
    ev.type = Event::Type::kPut;
    ev.kv = ToKeyValue(r.key, Revision{new_rev_, 0}, rec);
    ev.prev_kv = prev;
    if (r.prev_kv) resp->prev_kv = prev;
    if (!(*io = Write(r.key, rec, std::move(ev))).ok()) return *io;
    return Status::Ok();
  }

  Status Do(const DeleteRangeRequest& r, OpResult* result, Status* io) {
    DeleteRangeResponse resp;
    Status s = DoDelete(r, &resp, io);
    if (s.ok()) result->response = std::move(resp);
    return s;
  }

  Status DeleteKeys(std::vector<KeyValue> victims, DeleteRangeResponse* resp, bool want_prev,
                    Status* io) {
    for (KeyValue& kv : victims) {
      if (kv.lease != 0) {
        if (!(*io = Delete(internal::AttachKey(kv.lease, kv.key))).ok()) return *io;
      }
      Record tomb;
      tomb.tombstone = true;
      Event ev;
      ev.type = Event::Type::kDelete;
      ev.kv.key = kv.key;
      if (want_prev) resp->prev_kvs.push_back(kv);
      std::string key = kv.key;
      ev.prev_kv = std::move(kv);
      if (!(*io = Write(key, tomb, std::move(ev))).ok()) return *io;
      ++resp->deleted;
    }
    return Status::Ok();
  }

  Status DoDelete(const DeleteRangeRequest& r, DeleteRangeResponse* resp, Status* io) {
    std::vector<KeyValue> victims;
    *io = ForEachLive(view_, Span(r.key, r.range_end), Visible(),
                      [&](KeyValue kv) { victims.push_back(std::move(kv)); });
    if (!io->ok()) return *io;
    return DeleteKeys(std::move(victims), resp, r.prev_kv, io);
  }

  Status EvalPath(const TxnRequest& t, TxnPath* path, Status* io) {
    path->succeeded = true;
    for (const Compare& c : t.compare) {
      std::vector<KeyValue> kvs;
      *io = ForEachLive(view_, Span(c.key, c.range_end), Visible(),
                        [&](KeyValue kv) { kvs.push_back(std::move(kv)); });
      if (!io->ok()) return *io;
      bool ok = true;
      if (kvs.empty()) {
        ok = c.target != Compare::Target::kValue && CompareKv(c, KeyValue{});
      } else {
        for (const KeyValue& kv : kvs) ok = ok && CompareKv(c, kv);
      }
      if (!ok) {
        path->succeeded = false;
        break;
      }
    }
    for (const RequestOp& op : path->succeeded ? t.success : t.failure) {
      if (const auto* nested = std::get_if<TxnRequest>(&op.request)) {
        path->nested.emplace_back();
        Status s = EvalPath(*nested, &path->nested.back(), io);
        if (!s.ok()) return s;
      }
    }
    return Status::Ok();
  }

  Status Do(const TxnRequest& t, OpResult* result, Status* io) {
    TxnPath path;
    Status s = EvalPath(t, &path, io);
    if (!s.ok()) return s;
    TxnResponse resp;
    s = RunTxn(t, path, &resp, io);
    if (s.ok()) result->response = std::move(resp);
    return s;
  }

  Status RunTxn(const TxnRequest& t, const TxnPath& path, TxnResponse* resp, Status* io) {
    resp->succeeded = path.succeeded;
    size_t nested = 0;
    for (const RequestOp& op : path.succeeded ? t.success : t.failure) {
      ResponseOp out;
      Status s = std::visit(
          [&](const auto& r) -> Status {
            using T = std::decay_t<decltype(r)>;
            if constexpr (std::is_same_v<T, RangeRequest>) {
              StatusOr<RangeResponse> rr = DoRange(view_, r, Visible(), compacted_);
              if (!rr.ok()) {
                if (rr.status().code() == StatusCode::kIoError) *io = rr.status();
                return rr.status();
              }
              out.response = std::move(rr.value());
              return Status::Ok();
            } else if constexpr (std::is_same_v<T, PutRequest>) {
              PutResponse pr;
              Status ps = DoPut(r, &pr, io);
              out.response = std::move(pr);
              return ps;
            } else if constexpr (std::is_same_v<T, DeleteRangeRequest>) {
              DeleteRangeResponse dr;
              Status ds = DoDelete(r, &dr, io);
              out.response = std::move(dr);
              return ds;
            } else {
              TxnResponse tr;
              Status ts = RunTxn(r, path.nested[nested++], &tr, io);
              out.response = std::move(tr);
              return ts;
            }
          },
          op.request);
      if (!s.ok()) return s;
      resp->responses.push_back(std::move(out));
    }
    return Status::Ok();
  }

  Status Do(const CompactionRequest& r, OpResult* result, Status* io) {
    if (r.revision <= compacted_) return FailedPrecondition(kErrCompacted);
    if (r.revision > rev_) return FailedPrecondition(kErrFutureRev);
    // Walk the event log up to and including the new floor R. An event of
    // key k at revision r <= R supersedes every older record of k, so those
    // go (the first time k is seen, that includes records kept by earlier
    // compactions, whose events are already gone). Records at R itself are
    // all kept, and so is the event log from R on. A tombstone that is the
    // latest record of its key below R goes too.
    std::vector<std::string> drop;
    std::map<std::string, std::pair<Revision, bool>> latest;  // key -> (rev, tombstone)
    {
      std::unique_ptr<rocksdb::Iterator> events = view_.NewIterator();
      std::unique_ptr<rocksdb::Iterator> index = view_.NewIterator();
      const std::string stop = internal::EventKey(Revision{r.revision + 1, 0});
      for (events->Seek(std::string(1, internal::kEventPrefix)); events->Valid(); events->Next()) {
        std::string ek = events->key().ToString();
        if (ek >= stop) break;
        Revision rev;
        if (!internal::ParseEventKey(ek, &rev)) return *io = Corrupt("event key");
        std::string key = events->value().ToString();
        if (rev.main < r.revision) drop.push_back(ek);
        std::string raw;
        bool found = false;
        if (!(*io = view_.Get(internal::IndexKey(key, rev), &raw, &found)).ok()) return *io;
        Record rec;
        if (!found || !internal::DecodeRecord(raw, &rec))
          return *io = Corrupt("event without record");
        auto it = latest.find(key);
        if (it != latest.end()) {
          if (it->second.first.main < r.revision) {
            drop.push_back(internal::IndexKey(key, it->second.first));
          }
          it->second = {rev, rec.tombstone};
          continue;
        }
        latest.emplace(key, std::make_pair(rev, rec.tombstone));
        const std::string first = internal::IndexKey(key, rev);
        for (index->Seek(internal::IndexKeyPrefix(key)); index->Valid(); index->Next()) {
          std::string ik = index->key().ToString();
          if (ik >= first) break;
          drop.push_back(ik);
        }
        if (!index->status().ok()) return *io = FromRocks(index->status());
      }
      if (!events->status().ok()) return *io = FromRocks(events->status());
    }
    for (const auto& [key, last] : latest) {
      if (last.second && last.first.main < r.revision) {
        drop.push_back(internal::IndexKey(key, last.first));
      }
    }
    for (const std::string& k : drop) {
      if (!(*io = Delete(k)).ok()) return *io;
    }
    compacted_ = r.revision;
    result->response = CompactionResponse{};
    return Status::Ok();
  }

  Status Do(const LeaseGrantRequest& r, OpResult* result, Status* io) {
    bool exists = false;
    if (!(*io = LeaseExists(r.id, &exists)).ok()) return *io;
    if (exists) return FailedPrecondition(kErrLeaseExists);
    internal::LeaseRecord lease{std::max<int64_t>(r.ttl, 1), ++generation_};
    if (!(*io = Put(internal::LeaseKey(r.id), internal::EncodeLease(lease))).ok()) return *io;
    result->response = LeaseGrantResponse{r.id, lease.ttl, lease.generation};
    return Status::Ok();
  }

  Status Revoke(int64_t id, Status* io) {
    std::vector<std::string> attached;
    {
      std::unique_ptr<rocksdb::Iterator> it = view_.NewIterator();
      const std::string prefix = internal::AttachPrefix(id);
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        attached.push_back(it->key().ToString().substr(prefix.size()));
      }
      if (!(*io = FromRocks(it->status())).ok()) return *io;
    }
    std::vector<KeyValue> victims;
    {
      std::unique_ptr<rocksdb::Iterator> it = view_.NewIterator();
      for (const std::string& key : attached) {
        std::optional<KeyValue> kv;
        if (!(*io = LiveAt(it.get(), key, Visible(), &kv)).ok()) return *io;
        if (kv && kv->lease == id) victims.push_back(std::move(*kv));
      }
    }
    DeleteRangeResponse ignored;
    Status s = DeleteKeys(std::move(victims), &ignored, false, io);
    if (!s.ok()) return s;
    for (const std::string& key : attached) {
      if (!(*io = Delete(internal::AttachKey(id, key))).ok()) return *io;
    }
    if (!(*io = Delete(internal::LeaseKey(id))).ok()) return *io;
    return Status::Ok();
  }

  Status Do(const LeaseRevokeRequest& r, OpResult* result, Status* io) {
    bool exists = false;
    if (!(*io = LeaseExists(r.id, &exists)).ok()) return *io;
    if (!exists) return FailedPrecondition(kErrLeaseNotFound);
    Status s = Revoke(r.id, io);
    if (s.ok()) result->response = LeaseRevokeResponse{};
    return s;
  }

  Status Do(const LeaseKeepAliveRequest& r, OpResult* result, Status* io) {
    bool exists = false;
    internal::LeaseRecord lease;
    if (!(*io = LeaseExists(r.id, &exists, &lease)).ok()) return *io;
    if (!exists) return FailedPrecondition(kErrLeaseNotFound);
    lease.generation = ++generation_;
    if (!(*io = Put(internal::LeaseKey(r.id), internal::EncodeLease(lease))).ok()) return *io;
    result->response = LeaseKeepAliveResponse{r.id, lease.ttl, lease.generation};
    return Status::Ok();
  }

  Status Do(const LeaseExpireRequest& r, OpResult* result, Status* io) {
    bool exists = false;
    internal::LeaseRecord lease;
    if (!(*io = LeaseExists(r.id, &exists, &lease)).ok()) return *io;
    LeaseExpireResponse resp;
    if (exists && lease.generation == r.generation) {
      Status s = Revoke(r.id, io);
      if (!s.ok()) return s;
      resp.expired = true;
    }
    result->response = resp;
    return Status::Ok();
  }

  MvccStore* store_;
  rocksdb::WriteBatchWithIndex batch_;
  View view_;
  int64_t rev_;          // the store revision after the ops applied so far
  int64_t new_rev_ = 0;  // the revision the current op writes at
  uint32_t sub_ = 0;     // changes made by the current op so far
  int64_t compacted_;
  uint64_t dedup_seq_;
  uint64_t generation_;
  std::vector<Event> events_;
};

// ---- MvccStore ----

MvccStore::MvccStore(std::unique_ptr<rocksdb::DB> db, const std::string& path,
                     const StoreOptions& options)
    : options_(options), path_(path), db_(std::move(db)) {}

MvccStore::~MvccStore() = default;

StatusOr<std::unique_ptr<MvccStore>> MvccStore::Open(const std::string& path,
                                                     const StoreOptions& options) {
  rocksdb::Options ro;
  ro.create_if_missing = options.create_if_missing;
  rocksdb::DB* raw = nullptr;
  Status s = FromRocks(rocksdb::DB::Open(ro, path, &raw));
  if (!s.ok()) return s;
  std::unique_ptr<MvccStore> store(new MvccStore(std::unique_ptr<rocksdb::DB>(raw), path, options));
  // Staging files of an install that a crash interrupted are garbage.
  std::error_code ec;
  std::filesystem::remove_all(std::filesystem::path(path) / kStagingDir, ec);
  if (ec) return IoError("kvstore: removing stale snapshot staging: " + ec.message());
  s = store->LoadMeta();
  if (!s.ok()) return s;
  return store;
}

Status MvccStore::LoadMeta() {
  std::string format;
  rocksdb::Status rs = db_->Get(rocksdb::ReadOptions(), internal::MetaKey("format"), &format);
  if (rs.IsNotFound()) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    it->SeekToFirst();
    if (it->Valid()) return FailedPrecondition("kvstore: directory holds a non-totemkv database");
    rocksdb::WriteBatch batch;
    std::string state;
    internal::PutBe64(&state, 1);  // a fresh store is at revision 1, as etcd
    internal::PutBe64(&state, 0);
    internal::PutBe64(&state, 0);
    internal::PutBe64(&state, 0);
    batch.Put(internal::MetaKey("format"), kFormat);
    batch.Put(internal::MetaKey("state"), state);
    std::string pos(8, '\0');
    batch.Put(internal::MetaKey("position"), pos);
    rocksdb::WriteOptions wo;
    wo.sync = options_.sync;
    return FromRocks(db_->Write(wo, &batch));
  }
  Status s = FromRocks(rs);
  if (!s.ok()) return s;
  if (format != kFormat)
    return FailedPrecondition("kvstore: unknown store format '" + format + "'");
  std::string state, pos;
  s = FromRocks(db_->Get(rocksdb::ReadOptions(), internal::MetaKey("state"), &state));
  if (!s.ok()) return s;
  s = FromRocks(db_->Get(rocksdb::ReadOptions(), internal::MetaKey("position"), &pos));
  if (!s.ok()) return s;
  if (state.size() != 32 || pos.size() < 8) return Corrupt("meta");
  std::string_view st(state);
  revision_ = static_cast<int64_t>(internal::GetBe64(st));
  compacted_ = static_cast<int64_t>(internal::GetBe64(st.substr(8)));
  dedup_seq_ = internal::GetBe64(st.substr(16));
  generation_ = internal::GetBe64(st.substr(24));
  position_.seq = internal::GetBe64(pos);
  position_.config_id = pos.substr(8);
  std::string writes;
  rs = db_->Get(rocksdb::ReadOptions(), internal::MetaKey("writes"), &writes);
  if (rs.IsNotFound()) {
    applied_writes_ = 0;  // no write applied yet
  } else if (s = FromRocks(rs); !s.ok()) {
    return s;
  } else if (writes.size() != 8) {
    return Corrupt("meta writes");
  } else {
    applied_writes_ = internal::GetBe64(writes);
  }
  return Status::Ok();
}

StatusOr<std::vector<OpResult>> MvccStore::ApplyBatch(const std::vector<Op>& ops,
                                                      const AppliedPosition& position,
                                                      const std::vector<AuxWrite>& aux) {
  std::lock_guard<std::mutex> lock(mu_);
  Apply apply(this);
  return apply.Run(ops, position, aux);
}

Status MvccStore::WriteAux(const std::vector<AuxWrite>& aux) {
  Status s = ValidateAux(aux);
  if (!s.ok()) return s;
  rocksdb::WriteBatch batch;
  s = AddAux(aux, &batch);
  if (!s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  return FromRocks(db_->Write(wo, &batch));
}

StatusOr<std::optional<std::string>> MvccStore::ReadAux(bool replicated,
                                                        const std::string& key) const {
  std::string value;
  rocksdb::Status rs = db_->Get(rocksdb::ReadOptions(), AuxKey(replicated, key), &value);
  if (rs.IsNotFound()) return std::optional<std::string>();
  Status s = FromRocks(rs);
  if (!s.ok()) return s;
  return std::optional<std::string>(std::move(value));
}

StatusOr<std::vector<std::pair<std::string, std::string>>> MvccStore::ScanAux(
    bool replicated, const std::string& prefix, size_t limit) const {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string start = AuxKey(replicated, prefix);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->Seek(start); it->Valid() && it->key().starts_with(start); it->Next()) {
    if (limit != 0 && out.size() >= limit) break;
    out.emplace_back(it->key().ToString().substr(1), it->value().ToString());
  }
  Status s = FromRocks(it->status());
  if (!s.ok()) return s;
  return out;
}

namespace {
// A consistent read: the revision mirrors and a RocksDB snapshot taken
// together under the store mutex, so reads do not block apply.
struct Snapshot {
  explicit Snapshot(rocksdb::DB* d) : db(d), snap(d->GetSnapshot()) {}
  ~Snapshot() { db->ReleaseSnapshot(snap); }
  Snapshot(const Snapshot&) = delete;
  Snapshot& operator=(const Snapshot&) = delete;
  rocksdb::DB* db;
  const rocksdb::Snapshot* snap;
};
}  // namespace

StatusOr<RangeResponse> MvccStore::Range(const RangeRequest& request) const {
  Limits limits{options_};
  Status s = limits.Key(request.key, request.range_end);
  if (!s.ok()) return s;
  int64_t current, compacted;
  std::unique_ptr<Snapshot> snap;
  {
    std::lock_guard<std::mutex> lock(mu_);
    current = revision_;
    compacted = compacted_;
    snap = std::make_unique<Snapshot>(db_.get());
  }
  View view(db_.get(), nullptr, snap->snap);
  return DoRange(view, request, current, compacted);
}

StatusOr<std::vector<Event>> MvccStore::History(const HistoryRequest& request) const {
  int64_t current, compacted;
  std::unique_ptr<Snapshot> snap;
  {
    std::lock_guard<std::mutex> lock(mu_);
    current = revision_;
    compacted = compacted_;
    snap = std::make_unique<Snapshot>(db_.get());
  }
  std::vector<Event> out;
  int64_t start = request.start_revision <= 0 ? current + 1 : request.start_revision;
  if (start < compacted) return FailedPrecondition(kErrCompacted);
  if (start > current) return out;
  View view(db_.get(), nullptr, snap->snap);
  Span span(request.key, request.range_end);
  std::unique_ptr<rocksdb::Iterator> events = view.NewIterator();
  std::unique_ptr<rocksdb::Iterator> index = view.NewIterator();
  int64_t last_main = 0;
  for (events->Seek(internal::EventKey(Revision{start, 0})); events->Valid(); events->Next()) {
    Revision rev;
    if (!internal::ParseEventKey(events->key().ToString(), &rev)) break;  // past the log
    if (request.max_events != 0 && out.size() >= request.max_events && rev.main != last_main) break;
    std::string key = events->value().ToString();
    if (!span.Contains(key)) continue;
    std::string raw;
    bool found = false;
    Status s = view.Get(internal::IndexKey(key, rev), &raw, &found);
    if (!s.ok()) return s;
    if (!found) continue;  // compacted away concurrently with an old start
    Record rec;
    if (!internal::DecodeRecord(raw, &rec)) return Corrupt("record");
    Event ev;
    ev.type = rec.tombstone ? Event::Type::kDelete : Event::Type::kPut;
    if (rec.tombstone) {
      ev.kv.key = key;
      ev.kv.mod_revision = rev.main;
    } else {
      ev.kv = ToKeyValue(key, rev, rec);
    }
    if (request.prev_kv) {
      Revision before =
          rev.sub > 0 ? Revision{rev.main, rev.sub - 1} : Revision{rev.main - 1, internal::kMaxSub};
      std::optional<std::pair<Revision, Record>> prev;
      s = LatestAt(index.get(), key, before, &prev);
      if (!s.ok()) return s;
      if (prev && !prev->second.tombstone) ev.prev_kv = ToKeyValue(key, prev->first, prev->second);
    }
    last_main = rev.main;
    out.push_back(std::move(ev));
  }
  Status s = FromRocks(events->status());
  if (!s.ok()) return s;
  return out;
}

StatusOr<LeaseInfo> MvccStore::TimeToLive(int64_t id, bool keys) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string raw;
  rocksdb::Status rs = db_->Get(rocksdb::ReadOptions(), internal::LeaseKey(id), &raw);
  if (rs.IsNotFound()) return FailedPrecondition(kErrLeaseNotFound);
  Status s = FromRocks(rs);
  if (!s.ok()) return s;
  internal::LeaseRecord lease;
  if (!internal::DecodeLease(raw, &lease)) return Corrupt("lease");
  LeaseInfo info{id, lease.ttl, lease.generation, {}};
  if (keys) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    const std::string prefix = internal::AttachPrefix(id);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      info.keys.push_back(it->key().ToString().substr(prefix.size()));
    }
    s = FromRocks(it->status());
    if (!s.ok()) return s;
  }
  return info;
}

StatusOr<std::vector<LeaseInfo>> MvccStore::Leases() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<LeaseInfo> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  const std::string prefix(1, internal::kLeasePrefix);
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    internal::LeaseRecord lease;
    std::string k = it->key().ToString();
    if (k.size() != 9 || !internal::DecodeLease(it->value().ToString(), &lease)) {
      return Corrupt("lease");
    }
    out.push_back(LeaseInfo{static_cast<int64_t>(internal::GetBe64(std::string_view(k).substr(1))),
                            lease.ttl,
                            lease.generation,
                            {}});
  }
  Status s = FromRocks(it->status());
  if (!s.ok()) return s;
  return out;
}

int64_t MvccStore::CurrentRevision() const {
  std::lock_guard<std::mutex> lock(mu_);
  return revision_;
}

int64_t MvccStore::CompactedRevision() const {
  std::lock_guard<std::mutex> lock(mu_);
  return compacted_;
}

AppliedPosition MvccStore::Position() const {
  std::lock_guard<std::mutex> lock(mu_);
  return position_;
}

uint64_t MvccStore::AppliedWrites() const {
  std::lock_guard<std::mutex> lock(mu_);
  return applied_writes_;
}

StatusOr<uint64_t> MvccStore::Checksum() const {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t h = 14695981039346656037ULL;
  auto mix = [&h](const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      h ^= static_cast<uint8_t>(p[i]);
      h *= 1099511628211ULL;
    }
  };
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
  for (it->SeekToFirst(), SkipLocalAux(it.get()); it->Valid(); it->Next(), SkipLocalAux(it.get())) {
    std::string len;
    internal::PutBe32(&len, static_cast<uint32_t>(it->key().size()));
    internal::PutBe32(&len, static_cast<uint32_t>(it->value().size()));
    mix(len.data(), len.size());
    mix(it->key().data(), it->key().size());
    mix(it->value().data(), it->value().size());
  }
  Status s = FromRocks(it->status());
  if (!s.ok()) return s;
  return h;
}

void MvccStore::SetEventCallback(EventCallback callback) {
  std::lock_guard<std::mutex> lock(mu_);
  callback_ = std::move(callback);
}

// ---- snapshots ----

namespace {

class ExportImpl : public SnapshotExport {
 public:
  ExportImpl(rocksdb::DB* db, const rocksdb::Snapshot* snapshot)
      : db_(db), snapshot_(snapshot), tag_(snapshot->GetSequenceNumber()) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snapshot_;
    ro.fill_cache = false;  // a full scan would evict the working set
    it_.reset(db_->NewIterator(ro));
    it_->SeekToFirst();
    SkipLocalAux(it_.get());
  }
  ~ExportImpl() override {
    it_.reset();
    db_->ReleaseSnapshot(snapshot_);
  }

  StatusOr<bool> Next(size_t max_bytes, std::string* chunk) override {
    if (done_) return false;
    chunk->clear();
    chunk->append(kChunkMagic, 4);
    internal::PutBe64(chunk, tag_);
    internal::PutBe32(chunk, index_++);
    chunk->push_back('\0');       // flags, patched below
    internal::PutBe32(chunk, 0);  // count, patched below
    uint32_t count = 0;
    while (it_->Valid() && (count == 0 || chunk->size() < max_bytes)) {
      internal::PutBe32(chunk, static_cast<uint32_t>(it_->key().size()));
      chunk->append(it_->key().data(), it_->key().size());
      internal::PutBe32(chunk, static_cast<uint32_t>(it_->value().size()));
      chunk->append(it_->value().data(), it_->value().size());
      ++count;
      it_->Next();
      SkipLocalAux(it_.get());
    }
    Status s = FromRocks(it_->status());
    if (!s.ok()) return s;
    done_ = !it_->Valid();
    (*chunk)[16] = static_cast<char>(done_ ? kChunkLast : 0);
    std::string c;
    internal::PutBe32(&c, count);
    chunk->replace(17, 4, c);
    internal::PutBe64(chunk, Fnv1a64(*chunk));
    return true;
  }

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snapshot_;
  const uint64_t tag_;
  std::unique_ptr<rocksdb::Iterator> it_;
  uint32_t index_ = 0;
  bool done_ = false;
};

}  // namespace

StatusOr<std::unique_ptr<SnapshotExport>> MvccStore::ExportSnapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  const rocksdb::Snapshot* snap = db_->GetSnapshot();
  if (snap == nullptr) return IoError("kvstore: rocksdb refused a snapshot");
  return std::unique_ptr<SnapshotExport>(new ExportImpl(db_.get(), snap));
}

class MvccStore::Installer : public SnapshotInstaller {
 public:
  Installer(MvccStore* store, std::string file)
      : store_(store), file_(std::move(file)), writer_(rocksdb::EnvOptions(), rocksdb::Options()) {}
  ~Installer() override {
    std::error_code ec;
    std::filesystem::remove(file_, ec);  // gone already after a commit (moved)
  }

  Status Open() { return FromRocks(writer_.Open(file_)); }

  Status Add(std::string_view chunk) override {
    if (!failed_.ok()) return failed_;
    Status s = Stage(chunk);
    if (!s.ok()) failed_ = s;
    return s;
  }

  Status Commit(const std::vector<AuxWrite>& local_aux) override {
    if (!failed_.ok()) return failed_;
    if (committed_) return FailedPrecondition("kvstore: snapshot already committed");
    if (!got_last_) {
      return FailedPrecondition("kvstore: snapshot incomplete: " + std::to_string(next_index_) +
                                " chunks received, the last one missing");
    }
    if (format_ != kFormat || !has_state_) {
      return InvalidArgument("kvstore: snapshot holds no store meta (format '" + format_ + "')");
    }
    std::vector<AuxWrite> aux = local_aux;
    for (const AuxWrite& w : aux) {
      if (w.replicated || !w.value || w.key.empty()) {
        return InvalidArgument("kvstore: snapshot commit takes only local aux puts (key '" + w.key +
                               "')");
      }
    }
    std::sort(aux.begin(), aux.end(),
              [](const AuxWrite& a, const AuxWrite& b) { return a.key < b.key; });
    for (size_t i = 1; i < aux.size(); ++i) {
      if (aux[i].key == aux[i - 1].key) {
        return InvalidArgument("kvstore: snapshot commit writes aux key '" + aux[i].key +
                               "' twice");
      }
    }
    Status s;
    for (const AuxWrite& w : aux) {
      s = FromRocks(writer_.Put(AuxKey(false, w.key), *w.value));
      if (!s.ok()) return failed_ = s;
    }
    // Covers every record already in the store (all prefixes sort below
    // 0xFF). A range tombstone in an ingested file does not delete the
    // file's own point records, which share its sequence number.
    s = FromRocks(writer_.DeleteRange(rocksdb::Slice(), rocksdb::Slice("\xFF", 1)));
    if (!s.ok()) return failed_ = s;
    s = FromRocks(writer_.Finish());
    if (!s.ok()) return failed_ = s;
    std::lock_guard<std::mutex> lock(store_->mu_);
    rocksdb::IngestExternalFileOptions io;
    io.move_files = true;
    s = FromRocks(store_->db_->IngestExternalFile({file_}, io));
    if (!s.ok()) return failed_ = s;
    committed_ = true;
    // A failure here leaves the new records on disk with stale mirrors:
    // the caller must treat it as fatal (reopening reloads them).
    s = store_->LoadMeta();
    if (!s.ok()) return failed_ = s;
    return Status::Ok();
  }

 private:
  Status Stage(std::string_view chunk) {
    if (committed_) return FailedPrecondition("kvstore: snapshot already committed");
    const std::string where = "snapshot chunk " + std::to_string(next_index_) + ": ";
    if (chunk.size() < kChunkHeaderBytes + kChunkTrailerBytes ||
        chunk.substr(0, 4) != std::string_view(kChunkMagic, 4)) {
      return InvalidArgument("kvstore: " + where + "not a version 1 snapshot chunk (" +
                             std::to_string(chunk.size()) + " bytes)");
    }
    std::string_view body = chunk.substr(0, chunk.size() - kChunkTrailerBytes);
    if (Fnv1a64(body) != internal::GetBe64(chunk.substr(body.size()))) {
      return InvalidArgument("kvstore: " + where + "checksum mismatch (corrupt chunk)");
    }
    const uint64_t tag = internal::GetBe64(body.substr(4));
    const uint32_t index = internal::GetBe32(body.substr(12));
    const uint8_t flags = static_cast<uint8_t>(body[16]);
    uint32_t count = internal::GetBe32(body.substr(17));
    if (got_last_) return InvalidArgument("kvstore: " + where + "arrived after the last chunk");
    if (index != next_index_) {
      return InvalidArgument("kvstore: " + where + "out of order (chunk index " +
                             std::to_string(index) + ")");
    }
    if (index == 0) {
      tag_ = tag;
    } else if (tag != tag_) {
      return InvalidArgument("kvstore: " + where + "belongs to another snapshot");
    }
    if ((flags & ~kChunkLast) != 0) {
      return InvalidArgument("kvstore: " + where + "unknown flags " + std::to_string(flags));
    }
    std::string_view rest = body.substr(kChunkHeaderBytes);
    for (; count > 0; --count) {
      std::string_view key, value;
      if (!Field(&rest, &key) || !Field(&rest, &value)) {
        return InvalidArgument("kvstore: " + where + "truncated record");
      }
      if (key.empty() ||
          static_cast<uint8_t>(key[0]) >= static_cast<uint8_t>(internal::kLocalAuxPrefix)) {
        return InvalidArgument("kvstore: " + where + "holds a node-local or unknown record");
      }
      if (!last_key_.empty() && key <= last_key_) {
        return InvalidArgument("kvstore: " + where + "records out of key order");
      }
      last_key_.assign(key);
      if (key == internal::MetaKey("format")) format_.assign(value);
      if (key == internal::MetaKey("state")) has_state_ = true;
      Status s = FromRocks(writer_.Put(rocksdb::Slice(key.data(), key.size()),
                                       rocksdb::Slice(value.data(), value.size())));
      if (!s.ok()) return s;
    }
    if (!rest.empty()) return InvalidArgument("kvstore: " + where + "trailing bytes");
    ++next_index_;
    got_last_ = (flags & kChunkLast) != 0;
    return Status::Ok();
  }

  static bool Field(std::string_view* in, std::string_view* out) {
    if (in->size() < 4) return false;
    const uint32_t n = internal::GetBe32(*in);
    if (in->size() - 4 < n) return false;
    *out = in->substr(4, n);
    in->remove_prefix(4 + static_cast<size_t>(n));
    return true;
  }

  MvccStore* store_;
  const std::string file_;
  rocksdb::SstFileWriter writer_;
  Status failed_;  // sticky: the first error of Add/Commit
  uint32_t next_index_ = 0;
  uint64_t tag_ = 0;
  bool got_last_ = false;
  bool committed_ = false;
  std::string last_key_;
  std::string format_;
  bool has_state_ = false;
};

StatusOr<std::unique_ptr<SnapshotInstaller>> MvccStore::BeginInstall() {
  uint64_t n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    n = next_staging_++;
  }
  const std::filesystem::path dir = std::filesystem::path(path_) / kStagingDir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return IoError("kvstore: creating " + dir.string() + ": " + ec.message());
  auto installer =
      std::make_unique<Installer>(this, (dir / ("staging-" + std::to_string(n) + ".sst")).string());
  Status s = installer->Open();
  if (!s.ok()) return s;
  return std::unique_ptr<SnapshotInstaller>(std::move(installer));
}

}  // namespace kvstore
