// The replication engine (see include/kvstore/replication.h for the model):
// message encoding, the state exchange and its deterministic decision, the
// donor's windowed transfer (op log, then snapshot), install, green / yellow
// / red classification and majority-durable acknowledgements.
#include "kvstore/replication.h"

#include <algorithm>
#include <cstring>

namespace kvstore::repl {
namespace {

// Every engine message starts with kMagic, kVersion and a type byte.
constexpr uint8_t kMagic = 0xE7;
constexpr uint8_t kVersion = 1;
enum class MsgType : uint8_t {
  kOp = 1,         // a client op
  kState = 2,      // state exchange: this member's position
  kApplied = 3,    // this member durably applied up to an index
  kPlan = 4,       // donor: who gets the log from where, who a snapshot
  kLogOps = 5,     // donor: ops of its log
  kSnapBegin = 6,  // donor: snapshot meta
  kSnapChunk = 7,  // donor: snapshot bytes
  kSnapEnd = 8,    // donor: snapshot complete (chunk count)
  kReady = 9,      // laggard: caught up to the target
};

class Writer {
 public:
  explicit Writer(MsgType type) {
    out_.push_back(static_cast<char>(kMagic));
    out_.push_back(static_cast<char>(kVersion));
    out_.push_back(static_cast<char>(type));
  }
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void U64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void Bytes(std::string_view b) {
    U32(static_cast<uint32_t>(b.size()));
    out_.append(b);
  }
  void Ring(const RingId& r) {
    U32(r.rep);
    U64(r.seq);
  }
  void Op(const OpRecord& op) {
    out_.append(reinterpret_cast<const char*>(op.op_id.data()), op.op_id.size());
    U32(op.origin);
    U8(static_cast<uint8_t>(op.kind));
    U32(op.member);
    Bytes(op.payload);
  }
  std::string Take() { return std::move(out_); }
  size_t size() const { return out_.size(); }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool U8(uint8_t* v) {
    if (in_.size() < 1) return Bad();
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool U32(uint32_t* v) {
    if (in_.size() < 4) return Bad();
    *v = 0;
    for (int i = 0; i < 4; ++i)
      *v |= static_cast<uint32_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    in_.remove_prefix(4);
    return true;
  }
  bool U64(uint64_t* v) {
    if (in_.size() < 8) return Bad();
    *v = 0;
    for (int i = 0; i < 8; ++i)
      *v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    in_.remove_prefix(8);
    return true;
  }
  bool Bytes(std::string* b) {
    uint32_t n = 0;
    if (!U32(&n) || in_.size() < n) return Bad();
    b->assign(in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  bool Ring(RingId* r) { return U32(&r->rep) && U64(&r->seq); }
  bool Op(OpRecord* op) {
    if (in_.size() < op->op_id.size()) return Bad();
    std::memcpy(op->op_id.data(), in_.data(), op->op_id.size());
    in_.remove_prefix(op->op_id.size());
    uint8_t kind = 0;
    if (!U32(&op->origin) || !U8(&kind) || !U32(&op->member) || !Bytes(&op->payload)) return false;
    if (kind > static_cast<uint8_t>(OpKind::kMemberRemove)) return Bad();
    op->kind = static_cast<OpKind>(kind);
    return true;
  }
  bool ok() const { return ok_; }
  bool done() const { return ok_ && in_.empty(); }

 private:
  bool Bad() {
    ok_ = false;
    return false;
  }
  std::string_view in_;
  bool ok_ = true;
};

uint64_t Fnv(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 1099511628211ull;
  }
  return h;
}

bool Contains(const std::vector<NodeId>& v, NodeId id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

}  // namespace

uint64_t ChainHash(uint64_t previous, const OpRecord& op) {
  uint64_t h = 14695981039346656037ull;
  h = Fnv(h, &previous, sizeof(previous));
  h = Fnv(h, op.op_id.data(), op.op_id.size());
  const uint32_t origin = op.origin;
  const uint8_t kind = static_cast<uint8_t>(op.kind);
  const uint32_t member = op.member;
  h = Fnv(h, &origin, sizeof(origin));
  h = Fnv(h, &kind, sizeof(kind));
  h = Fnv(h, &member, sizeof(member));
  const uint64_t n = op.payload.size();
  h = Fnv(h, &n, sizeof(n));
  h = Fnv(h, op.payload.data(), op.payload.size());
  return h == 0 ? 1 : h;  // 0 is h(0), the empty order
}

const char* RoleName(Role r) {
  switch (r) {
    case Role::kStarting:
      return "starting";
    case Role::kExchanging:
      return "exchanging";
    case Role::kPrimary:
      return "primary";
    case Role::kNonPrimary:
      return "non-primary";
    case Role::kTransition:
      return "transition";
    case Role::kFailed:
      return "failed";
  }
  return "?";
}

std::string Engine::EncodeOp(const OpRecord& op) {
  Writer w(MsgType::kOp);
  w.Op(op);
  return w.Take();
}

// A member's State message.
struct StateMsg {
  uint64_t green = 0;
  uint64_t green_hash = 0;
  uint64_t prim_number = 0;
  RingId prim_ring;
  uint64_t yellow_count = 0;
  uint64_t known_hash = 0;  // h(green + yellow_count): the chain over its yellow ops
  uint64_t log_first = 1;
  std::vector<NodeId> configured;
  uint64_t known() const { return green + yellow_count; }
};

class Engine::Impl {
 public:
  Impl(const EngineOptions& options, Storage* storage) : opt_(options), storage_(storage) {
    meta_ = storage_->LoadMeta();
    yellow_ = storage_->LoadYellow();
    std::sort(opt_.bootstrap_members.begin(), opt_.bootstrap_members.end());
  }

  Status Step(std::span<const Input> inputs, Effects* out) {
    if (role_ == Role::kFailed) return failure_;
    out_ = out;
    const Role before = role_;
    for (const Input& in : inputs) {
      if (in.kind == Input::Kind::kConfiguration) {
        OnConfiguration(in.configuration);
      } else {
        OnDelivery(in);
      }
      if (role_ == Role::kFailed) break;
    }
    if (role_ != Role::kFailed) Flush();
    if (role_ != Role::kFailed) AfterFlush();
    if (role_ != before) out->role_changed = true;
    out_ = nullptr;
    return role_ == Role::kFailed ? failure_ : Status::Ok();
  }

  const std::vector<NodeId>& Configured() const {
    return meta_.configured.empty() ? opt_.bootstrap_members : meta_.configured;
  }

  EngineOptions opt_;
  Storage* storage_;
  Effects* out_ = nullptr;
  Role role_ = Role::kStarting;
  std::string reason_ = "this member has not joined a configuration yet";
  Status failure_;
  Meta meta_;
  std::vector<OpRecord> yellow_;
  uint64_t commit_ = 0;
  EngineCounters counters_;
  totem::ConfigurationEvent config_;

 private:
  // ---- storage -------------------------------------------------------
  void Fail(const Status& s) {
    if (role_ == Role::kFailed) return;
    failure_ = s;
    role_ = Role::kFailed;
    reason_ = "storage failed: " + s.message();
  }

  // Queues op as the next green op (index meta_.green + 1).
  void AddGreen(const OpRecord& op) {
    if (!pending_green_.empty() && pending_meta_.green != meta_.green) return;  // unreachable
    const uint64_t index = meta_.green + 1;
    meta_.green_hash = ChainHash(meta_.green_hash, op);
    meta_.green = index;
    if (op.kind == OpKind::kMemberAdd || op.kind == OpKind::kMemberRemove) {
      std::vector<NodeId> set = Configured();
      const bool present = Contains(set, op.member);
      if (op.kind == OpKind::kMemberAdd && !present && op.member != totem::kNoNode) {
        set.push_back(op.member);
        std::sort(set.begin(), set.end());
      } else if (op.kind == OpKind::kMemberRemove && present && set.size() > 1) {
        set.erase(std::find(set.begin(), set.end(), op.member));
      }
      meta_.configured = set;
    }
    pending_green_.push_back(op);
    pending_hashes_.push_back(meta_.green_hash);
    pending_meta_ = meta_;
    ++counters_.green_applied;
    if (op.origin == opt_.self) {
      if (waiting_.erase(op.op_id) > 0 || role_ == Role::kPrimary) applied_mine_[index] = op.op_id;
    }
  }

  void Flush() {
    if (pending_green_.empty()) return;
    Status s = storage_->ApplyGreen(pending_green_, pending_hashes_, pending_meta_);
    pending_green_.clear();
    pending_hashes_.clear();
    if (!s.ok()) Fail(s);
  }

  void SaveYellow() {
    Flush();
    if (role_ == Role::kFailed) return;
    Status s = storage_->SaveYellow(yellow_, meta_);
    if (!s.ok()) Fail(s);
  }

  void SaveMeta() {
    Flush();
    if (role_ == Role::kFailed) return;
    Status s = storage_->SaveMeta(meta_);
    if (!s.ok()) Fail(s);
  }

  // After the step's writes are durable: report progress, acknowledge.
  void AfterFlush() {
    if (yellow_dirty_) {
      yellow_dirty_ = false;
      SaveYellow();
      if (role_ == Role::kFailed) return;
    }
    if (role_ == Role::kPrimary && meta_.green > reported_) {
      reported_ = meta_.green;
      reports_[opt_.self] = meta_.green;
      Writer w(MsgType::kApplied);
      w.Ring(config_.id);
      w.U64(meta_.green);
      Send(w.Take(), totem::Guarantee::kAgreed);
      RecomputeCommit();
    }
  }

  void Send(std::string bytes, totem::Guarantee g = totem::Guarantee::kSafe) {
    out_->send.push_back({std::move(bytes), g});
  }

  void Reject(const OpId& id, const std::string& message) {
    out_->rejects.push_back({id, message});
    ++counters_.rejects;
  }

  void RejectAllWaiting(const std::string& message) {
    for (const OpId& id : waiting_) Reject(id, message);
    waiting_.clear();
    for (const auto& [index, id] : applied_mine_) Reject(id, message);
    applied_mine_.clear();
  }

  void RecomputeCommit() {
    if (role_ != Role::kPrimary) return;
    const std::vector<NodeId>& set = Configured();
    std::vector<uint64_t> levels;
    levels.reserve(set.size());
    for (NodeId m : set) {
      auto it = reports_.find(m);
      levels.push_back(it == reports_.end() ? 0 : it->second);
    }
    std::sort(levels.rbegin(), levels.rend());
    const size_t majority = set.size() / 2 + 1;
    const uint64_t c = levels.size() >= majority ? levels[majority - 1] : 0;
    if (c > commit_) commit_ = c;
    while (!applied_mine_.empty() && applied_mine_.begin()->first <= commit_) {
      out_->acks.push_back({applied_mine_.begin()->second, applied_mine_.begin()->first});
      ++counters_.acks;
      applied_mine_.erase(applied_mine_.begin());
    }
  }

  // ---- configurations ---------------------------------------------------
  void OnConfiguration(const totem::ConfigurationEvent& e) {
    Flush();
    AbortTransfer();
    if (e.kind == totem::ConfigurationKind::kTransitional) {
      was_primary_ = role_ == Role::kPrimary;
      if (role_ == Role::kExchanging) ++counters_.exchanges_aborted;
      RedBuffered("the configuration changed before the primary component was installed");
      role_ = Role::kTransition;
      reason_ = "the configuration is changing";
      commit_ = 0;
      return;
    }
    config_ = e;
    was_primary_ = false;
    RedBuffered("the configuration changed before the primary component was installed");
    states_.clear();
    decided_ = false;
    pending_ready_.clear();
    reports_.clear();
    reported_ = 0;
    commit_ = 0;
    role_ = Role::kExchanging;
    reason_ = "state exchange in progress";
    ++counters_.exchanges_started;
    // Announce this member's state (after every earlier write is durable).
    Flush();
    uint64_t known_hash = meta_.green_hash;
    for (const OpRecord& op : yellow_) known_hash = ChainHash(known_hash, op);
    Writer w(MsgType::kState);
    w.Ring(e.id);
    w.U64(meta_.green);
    w.U64(meta_.green_hash);
    w.U64(meta_.prim_number);
    w.Ring(meta_.prim_ring);
    w.U64(yellow_.size());
    w.U64(known_hash);
    w.U64(storage_->LogFirst());
    const std::vector<NodeId>& set = Configured();
    w.U32(static_cast<uint32_t>(set.size()));
    for (NodeId id : set) w.U32(id);
    Send(w.Take());
  }

  void RedBuffered(const std::string& why) {
    for (const OpRecord& op : buffered_) {
      ++counters_.red_ops;
      if (op.origin == opt_.self) {
        waiting_.erase(op.op_id);
        Reject(op.op_id, "outcome unknown: " + why);
      }
    }
    buffered_.clear();
  }

  // ---- deliveries -------------------------------------------------------
  void OnDelivery(const Input& in) {
    Reader r(in.payload);
    uint8_t magic = 0, version = 0, type = 0;
    if (!r.U8(&magic) || !r.U8(&version) || !r.U8(&type) || magic != kMagic ||
        version != kVersion) {
      ++counters_.malformed_messages;
      return;
    }
    const bool regular = in.config_kind == totem::ConfigurationKind::kRegular;
    if (static_cast<MsgType>(type) == MsgType::kOp) {
      OpRecord op;
      if (!r.Op(&op) || !r.done()) {
        ++counters_.malformed_messages;
        return;
      }
      OnOp(std::move(op), regular);
      return;
    }
    // Control messages count only in the regular configuration they belong
    // to (the exchange restarts with the next one otherwise).
    RingId ring;
    if (!r.Ring(&ring)) {
      ++counters_.malformed_messages;
      return;
    }
    if (!regular || ring != config_.id || in.ring != config_.id ||
        !Contains(config_.members, in.sender)) {
      return;
    }
    bool ok = true;
    switch (static_cast<MsgType>(type)) {
      case MsgType::kState:
        ok = OnState(in.sender, r);
        break;
      case MsgType::kApplied:
        ok = OnApplied(in.sender, r);
        break;
      case MsgType::kPlan:
        ok = OnPlan(in.sender, r);
        break;
      case MsgType::kLogOps:
        ok = OnLogOps(in.sender, r);
        break;
      case MsgType::kSnapBegin:
        ok = OnSnapBegin(in.sender, r);
        break;
      case MsgType::kSnapChunk:
        ok = OnSnapChunk(in.sender, r);
        break;
      case MsgType::kSnapEnd:
        ok = OnSnapEnd(in.sender, r);
        break;
      case MsgType::kReady:
        ok = OnReady(in.sender, r);
        break;
      default:
        ok = false;
    }
    if (!ok) ++counters_.malformed_messages;
  }

  void OnOp(OpRecord op, bool regular) {
    const bool mine = op.origin == opt_.self;
    if (regular && role_ == Role::kPrimary) {
      AddGreen(op);
      return;
    }
    if (!regular && was_primary_) {
      // Yellow: delivered in the transitional configuration ending a
      // primary. Kept durably; the next primary decides.
      ++counters_.yellow_received;
      if (mine) waiting_.insert(op.op_id);
      yellow_.push_back(std::move(op));
      yellow_dirty_ = true;
      return;
    }
    if (regular && role_ == Role::kExchanging && buffered_.size() < opt_.max_buffered_ops) {
      if (mine) waiting_.insert(op.op_id);
      buffered_.push_back(std::move(op));
      return;
    }
    ++counters_.red_ops;
    if (mine) {
      waiting_.erase(op.op_id);
      Reject(op.op_id, std::string("outcome unknown: delivered outside the primary component (") +
                           reason_ + ")");
    }
  }

  bool OnState(NodeId from, Reader& r) {
    StateMsg s;
    uint32_t n = 0;
    if (!r.U64(&s.green) || !r.U64(&s.green_hash) || !r.U64(&s.prim_number) ||
        !r.Ring(&s.prim_ring) || !r.U64(&s.yellow_count) || !r.U64(&s.known_hash) ||
        !r.U64(&s.log_first) || !r.U32(&n) || n > 100000) {
      return false;
    }
    for (uint32_t i = 0; i < n; ++i) {
      NodeId id = 0;
      if (!r.U32(&id)) return false;
      s.configured.push_back(id);
    }
    if (!r.done()) return false;
    if (decided_ || states_.count(from) != 0) return true;
    states_[from] = std::move(s);
    if (states_.size() == config_.members.size()) Decide();
    return true;
  }

  // The donor order: the most recent primary first, then the longest known
  // order. Two primaries can carry the same number: members that deliver
  // the install point in R's regular configuration install R, those that
  // deliver it only in the transitional configuration after R do not, and
  // may install another primary with the same number later. Such a
  // "phantom" was installed by a minority (a majority would include a
  // member of the later one, which would then count one higher), so no op
  // was acknowledged in it; the later primary, whose ring has the higher
  // sequence number (some voting member was in both rings, and ring
  // numbers only grow), is the one to follow.
  static bool MoreAdvanced(const StateMsg& a, const StateMsg& b) {
    if (a.prim_number != b.prim_number) return a.prim_number > b.prim_number;
    if (a.prim_ring != b.prim_ring)
      return a.prim_ring.seq > b.prim_ring.seq ||
             (a.prim_ring.seq == b.prim_ring.seq && a.prim_ring.rep > b.prim_ring.rep);
    return a.known() > b.known();
  }

  // Every member's state is in: the same decision everywhere.
  void Decide() {
    decided_ = true;
    NodeId donor = totem::kNoNode;
    for (const auto& [id, s] : states_) {
      if (donor == totem::kNoNode) {
        donor = id;
        continue;
      }
      const StateMsg& d = states_[donor];
      if (MoreAdvanced(s, d)) donor = id;
    }
    const StateMsg& d = states_[donor];
    std::vector<NodeId> set = d.configured.empty() ? opt_.bootstrap_members : d.configured;
    // Members count toward the quorum only with their data: a member that
    // lost its disk (or never held any) cannot outvote the others. When
    // every configured member is here, no other history can exist, so
    // they may go on (or start: a brand-new cluster) together.
    size_t votes = 0, present = 0;
    for (NodeId m : config_.members) {
      if (!Contains(set, m)) continue;
      ++present;
      if (states_[m].prim_number > 0) ++votes;
    }
    const bool everyone = !set.empty() && present == set.size();
    if (!everyone && votes * 2 <= set.size()) {
      role_ = Role::kNonPrimary;
      reason_ = "no quorum: " + std::to_string(votes) + " of " + std::to_string(set.size()) +
                " members reachable";
      if (present > votes) {
        reason_ += " (" + std::to_string(present - votes) +
                   " more without data, which count only once all members are reachable)";
      }
      RedBuffered(reason_);
      return;
    }
    donor_ = donor;
    target_ = d.known();
    target_hash_ = d.known_hash;
    new_prim_ = 0;
    for (const auto& [id, s] : states_) new_prim_ = std::max(new_prim_, s.prim_number);
    ++new_prim_;
    pending_ready_.clear();
    for (const auto& [id, s] : states_) {
      if (s.green != target_ || s.green_hash != target_hash_) pending_ready_.insert(id);
    }
    // The donor reaches the target by turning its own yellow ops green.
    pending_ready_.erase(donor_);
    if (opt_.self == donor_) {
      // The donor's yellow ops become green: clear them durably first
      // (losing them in a crash only makes this member know less).
      std::vector<OpRecord> yellow = std::move(yellow_);
      yellow_.clear();
      yellow_dirty_ = false;
      SaveYellow();
      for (const OpRecord& op : yellow) {
        AddGreen(op);
        ++counters_.yellow_adopted;
      }
      Flush();
      if (role_ == Role::kFailed) return;
      if (meta_.green != target_ || meta_.green_hash != target_hash_) {
        Fail(Status(totem::StatusCode::kInternal,
                    "replication: donor state does not match its own announcement"));
        return;
      }
      if (!pending_ready_.empty()) StartTransfer();
    }
    if (pending_ready_.empty()) Install();
  }

  // ---- the donor's transfer ---------------------------------------------
  void StartTransfer() {
    log_next_ = 0;
    log_end_ = target_;
    std::vector<NodeId> snapshot_for;
    uint64_t log_from = target_ + 1;
    const uint64_t first = storage_->LogFirst();
    for (NodeId m : pending_ready_) {
      const StateMsg& s = states_[m];
      bool prefix = false;
      if (s.green < target_) {
        if (s.green == 0) {
          prefix = first == 1;
        } else if (s.green >= first) {
          OpRecord op;
          uint64_t hash = 0;
          prefix = storage_->ReadLog(s.green, &op, &hash) && hash == s.green_hash;
        }
      }
      if (prefix) {
        log_from = std::min(log_from, s.green + 1);
      } else {
        snapshot_for.push_back(m);
      }
    }
    Writer w(MsgType::kPlan);
    w.Ring(config_.id);
    w.U64(log_from);
    w.U64(target_);
    w.U32(static_cast<uint32_t>(snapshot_for.size()));
    for (NodeId m : snapshot_for) w.U32(m);
    Send(w.Take());
    ++in_flight_;
    transferring_ = true;
    log_next_ = log_from;
    snapshot_needed_ = !snapshot_for.empty();
    snapshot_phase_ = 0;
    FillWindow();
  }

  void FillWindow() {
    while (transferring_ && in_flight_ < opt_.transfer_window && role_ != Role::kFailed) {
      if (log_next_ <= log_end_) {
        Writer w(MsgType::kLogOps);
        w.Ring(config_.id);
        w.U64(log_next_);
        const size_t count_at = w.size();
        w.U32(0);
        uint32_t count = 0;
        std::string body;
        while (log_next_ <= log_end_ && (count == 0 || w.size() < opt_.transfer_chunk_bytes)) {
          OpRecord op;
          uint64_t hash = 0;
          if (!storage_->ReadLog(log_next_, &op, &hash)) {
            Fail(Status(totem::StatusCode::kInternal,
                        "replication: op " + std::to_string(log_next_) + " left the log"));
            return;
          }
          w.U64(hash);
          w.Op(op);
          ++count;
          ++log_next_;
          ++counters_.transfer_ops_sent;
        }
        std::string msg = w.Take();
        for (int i = 0; i < 4; ++i) msg[count_at + i] = static_cast<char>(count >> (8 * i));
        Send(std::move(msg));
        ++in_flight_;
        continue;
      }
      if (!snapshot_needed_) {
        transferring_ = false;
        return;
      }
      if (snapshot_phase_ == 0) {
        auto reader = storage_->OpenSnapshot();
        if (!reader.ok()) {
          Fail(reader.status());
          return;
        }
        snapshot_ = std::move(*reader);
        Writer w(MsgType::kSnapBegin);
        w.Ring(config_.id);
        WriteMeta(w, meta_);
        Send(w.Take());
        ++in_flight_;
        snapshot_phase_ = 1;
        snapshot_chunks_ = 0;
        ++counters_.snapshots_sent;
        continue;
      }
      if (snapshot_phase_ == 1) {
        std::string chunk;
        StatusOr<bool> more = snapshot_->Next(opt_.transfer_chunk_bytes, &chunk);
        if (!more.ok()) {
          Fail(more.status());
          return;
        }
        if (*more) {
          Writer w(MsgType::kSnapChunk);
          w.Ring(config_.id);
          w.U32(snapshot_chunks_++);
          w.Bytes(chunk);
          Send(w.Take());
          ++in_flight_;
          ++counters_.snapshot_chunks_sent;
          continue;
        }
        Writer w(MsgType::kSnapEnd);
        w.Ring(config_.id);
        w.U32(snapshot_chunks_);
        Send(w.Take());
        ++in_flight_;
        snapshot_.reset();
        snapshot_phase_ = 2;
        continue;
      }
      transferring_ = false;
    }
  }

  // The donor delivered one of its own transfer messages: send more.
  void TransferProgress(NodeId from) {
    if (from != opt_.self || !transferring_) return;
    if (in_flight_ > 0) --in_flight_;
    FillWindow();
  }

  void AbortTransfer() {
    transferring_ = false;
    in_flight_ = 0;
    snapshot_.reset();
    install_writer_.reset();
    expect_snapshot_ = false;
    plan_seen_ = false;
  }

  static void WriteMeta(Writer& w, const Meta& m) {
    w.U64(m.green);
    w.U64(m.green_hash);
    w.U64(m.prim_number);
    w.Ring(m.prim_ring);
    w.U32(static_cast<uint32_t>(m.configured.size()));
    for (NodeId id : m.configured) w.U32(id);
  }
  static bool ReadMeta(Reader& r, Meta* m) {
    uint32_t n = 0;
    if (!r.U64(&m->green) || !r.U64(&m->green_hash) || !r.U64(&m->prim_number) ||
        !r.Ring(&m->prim_ring) || !r.U32(&n) || n > 100000) {
      return false;
    }
    m->configured.clear();
    for (uint32_t i = 0; i < n; ++i) {
      NodeId id = 0;
      if (!r.U32(&id)) return false;
      m->configured.push_back(id);
    }
    return true;
  }

  // ---- a laggard's side ---------------------------------------------------
  bool Lagging() const {
    return decided_ && role_ == Role::kExchanging && pending_ready_.count(opt_.self) != 0;
  }

  bool OnPlan(NodeId from, Reader& r) {
    uint64_t log_from = 0, target = 0;
    uint32_t n = 0;
    if (!r.U64(&log_from) || !r.U64(&target) || !r.U32(&n) || n > 100000) return false;
    std::vector<NodeId> snapshot_for;
    for (uint32_t i = 0; i < n; ++i) {
      NodeId id = 0;
      if (!r.U32(&id)) return false;
      snapshot_for.push_back(id);
    }
    if (!r.done()) return false;
    TransferProgress(from);
    if (!decided_ || from != donor_ || !Lagging()) return true;
    plan_seen_ = true;
    expect_snapshot_ = Contains(snapshot_for, opt_.self);
    // Whatever this member had as yellow is superseded by the donor's order.
    if (!yellow_.empty()) {
      yellow_.clear();
      yellow_dirty_ = false;
      SaveYellow();
    }
    return true;
  }

  bool OnLogOps(NodeId from, Reader& r) {
    uint64_t first = 0;
    uint32_t count = 0;
    if (!r.U64(&first) || !r.U32(&count)) return false;
    std::vector<std::pair<uint64_t, OpRecord>> ops;
    for (uint32_t i = 0; i < count; ++i) {
      uint64_t hash = 0;
      OpRecord op;
      if (!r.U64(&hash) || !r.Op(&op)) return false;
      ops.emplace_back(hash, std::move(op));
    }
    if (!r.done()) return false;
    TransferProgress(from);
    if (!decided_ || from != donor_ || !Lagging() || !plan_seen_ || expect_snapshot_) return true;
    for (uint64_t i = 0; i < ops.size(); ++i) {
      const uint64_t index = first + i;
      if (index != meta_.green + 1) continue;  // already have it
      if (ChainHash(meta_.green_hash, ops[i].second) != ops[i].first) {
        // Not a prefix after all: wait for the next exchange (the donor
        // will then send a snapshot).
        ++counters_.malformed_messages;
        return true;
      }
      AddGreen(ops[i].second);
      ++counters_.transfer_ops_applied;
    }
    if (meta_.green == target_) {
      Flush();
      meta_.prim_number = states_[donor_].prim_number;
      meta_.prim_ring = states_[donor_].prim_ring;
      SaveMeta();
      SendReady();
    }
    return true;
  }

  bool OnSnapBegin(NodeId from, Reader& r) {
    Meta m;
    if (!ReadMeta(r, &m) || !r.done()) return false;
    TransferProgress(from);
    if (!decided_ || from != donor_ || !Lagging() || !expect_snapshot_) return true;
    Flush();
    auto writer = storage_->BeginSnapshotInstall();
    if (!writer.ok()) {
      Fail(writer.status());
      return true;
    }
    install_writer_ = std::move(*writer);
    install_meta_ = m;
    install_chunks_ = 0;
    return true;
  }

  bool OnSnapChunk(NodeId from, Reader& r) {
    uint32_t seq = 0;
    std::string chunk;
    if (!r.U32(&seq) || !r.Bytes(&chunk) || !r.done()) return false;
    TransferProgress(from);
    if (install_writer_ == nullptr || from != donor_) return true;
    if (seq != install_chunks_) {
      install_writer_.reset();  // cannot happen in a total order; start over next time
      return true;
    }
    ++install_chunks_;
    Status s = install_writer_->Add(chunk);
    if (!s.ok()) Fail(s);
    return true;
  }

  bool OnSnapEnd(NodeId from, Reader& r) {
    uint32_t chunks = 0;
    if (!r.U32(&chunks) || !r.done()) return false;
    TransferProgress(from);
    if (install_writer_ == nullptr || from != donor_) return true;
    std::unique_ptr<Storage::SnapshotWriter> writer = std::move(install_writer_);
    if (chunks != install_chunks_) return true;
    if (install_meta_.green != target_ || install_meta_.green_hash != target_hash_) return true;
    Status s = writer->Commit(install_meta_);
    if (!s.ok()) {
      Fail(s);
      return true;
    }
    meta_ = install_meta_;
    yellow_.clear();
    ++counters_.snapshots_installed;
    // This member's earlier order is gone: its waiting clients cannot be
    // told what happened to their ops.
    RejectAllWaiting("outcome unknown: this member was rebuilt from a snapshot");
    SendReady();
    return true;
  }

  void SendReady() {
    Writer w(MsgType::kReady);
    w.Ring(config_.id);
    w.U64(meta_.green);
    w.U64(meta_.green_hash);
    Send(w.Take());
  }

  bool OnReady(NodeId from, Reader& r) {
    uint64_t green = 0, hash = 0;
    if (!r.U64(&green) || !r.U64(&hash) || !r.done()) return false;
    if (!decided_ || role_ != Role::kExchanging) return true;
    if (green == target_ && hash == target_hash_ && pending_ready_.erase(from) > 0 &&
        pending_ready_.empty()) {
      Install();
    }
    return true;
  }

  bool OnApplied(NodeId from, Reader& r) {
    uint64_t green = 0;
    if (!r.U64(&green) || !r.done()) return false;
    if (role_ != Role::kPrimary) return true;
    uint64_t& level = reports_[from];
    level = std::max(level, green);
    RecomputeCommit();
    return true;
  }

  // ---- install --------------------------------------------------------
  void Install() {
    Flush();
    if (role_ == Role::kFailed) return;
    if (meta_.green != target_ || meta_.green_hash != target_hash_) {
      // Cannot happen: every member announced it reached the target.
      Fail(Status(totem::StatusCode::kInternal, "replication: install without the target state"));
      return;
    }
    transferring_ = false;
    meta_.prim_number = new_prim_;
    meta_.prim_ring = config_.id;
    if (meta_.configured.empty()) meta_.configured = Configured();
    yellow_.clear();
    yellow_dirty_ = false;
    SaveYellow();  // also stores the new meta
    if (role_ == Role::kFailed) return;
    role_ = Role::kPrimary;
    reason_.clear();
    ++counters_.primaries_installed;
    reports_.clear();
    for (NodeId m : config_.members) reports_[m] = target_;
    reported_ = target_;
    // Own ops that were yellow and did not make it into the order: unknown.
    std::set<OpId> buffered_mine;
    for (const OpRecord& op : buffered_) {
      if (op.origin == opt_.self) buffered_mine.insert(op.op_id);
    }
    for (const OpId& id : waiting_) {
      if (buffered_mine.count(id) == 0) {
        Reject(id, "outcome unknown: the op was delivered while the configuration changed");
      }
    }
    waiting_ = std::move(buffered_mine);
    // Ops delivered in this configuration before the install point.
    std::vector<OpRecord> buffered = std::move(buffered_);
    buffered_.clear();
    for (const OpRecord& op : buffered) {
      AddGreen(op);
      ++counters_.buffered_applied;
    }
    RecomputeCommit();
  }

  // ---- state ------------------------------------------------------------
  std::map<NodeId, StateMsg> states_;
  bool decided_ = false;
  NodeId donor_ = totem::kNoNode;
  uint64_t target_ = 0;
  uint64_t target_hash_ = 0;
  uint64_t new_prim_ = 0;
  std::set<NodeId> pending_ready_;
  bool was_primary_ = false;

  std::vector<OpRecord> buffered_;
  bool yellow_dirty_ = false;

  std::vector<OpRecord> pending_green_;
  std::vector<uint64_t> pending_hashes_;
  Meta pending_meta_;

  std::map<NodeId, uint64_t> reports_;
  uint64_t reported_ = 0;
  std::map<uint64_t, OpId> applied_mine_;  // index -> own op waiting for commit
  std::set<OpId> waiting_;                 // own ops delivered, not applied yet

  // Donor.
  bool transferring_ = false;
  uint32_t in_flight_ = 0;
  uint64_t log_next_ = 0;
  uint64_t log_end_ = 0;
  bool snapshot_needed_ = false;
  int snapshot_phase_ = 0;
  uint32_t snapshot_chunks_ = 0;
  std::unique_ptr<Storage::SnapshotReader> snapshot_;

  // Laggard.
  bool plan_seen_ = false;
  bool expect_snapshot_ = false;
  std::unique_ptr<Storage::SnapshotWriter> install_writer_;
  Meta install_meta_;
  uint32_t install_chunks_ = 0;

  friend class Engine;
};

Engine::Engine(const EngineOptions& options, Storage* storage)
    : impl_(std::make_unique<Impl>(options, storage)) {}
Engine::~Engine() = default;

Status Engine::Step(std::span<const Input> inputs, Effects* out) {
  return impl_->Step(inputs, out);
}
Role Engine::role() const { return impl_->role_; }
const std::string& Engine::reason() const { return impl_->reason_; }
const Meta& Engine::meta() const { return impl_->meta_; }
const std::vector<NodeId>& Engine::configured() const { return impl_->Configured(); }
uint64_t Engine::commit_index() const { return impl_->commit_; }
const EngineCounters& Engine::counters() const { return impl_->counters_; }
const totem::ConfigurationEvent& Engine::configuration() const { return impl_->config_; }

}  // namespace kvstore::repl
