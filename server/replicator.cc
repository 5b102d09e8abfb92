// The Replicator's implementation: Totem node setup, the input queue, the
// apply thread that runs the replication engine and carries out its
// effects, op-id matching and shared read barriers. See replicator.h for the contract.
#include "replicator.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "convert.h"
#include "log.h"

namespace totemkv::server {
namespace {

using totem::Status;
using totem::StatusCode;
using totem::StatusOr;

Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }

std::string IdList(const std::vector<totem::NodeId>& ids) {
  std::string s;
  for (totem::NodeId id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

// The multiple-ring layer tells successive runs of one node apart by an
// incarnation that must grow across restarts: the stored one plus one, or
// the wall clock in seconds if larger (a wiped data dir), kept in
// DIR/mring-incarnation (written to a temp file, synced, renamed).
StatusOr<uint32_t> NextIncarnation(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return totem::IoError("create " + dir + ": " + ec.message());
  const std::string path = dir + "/mring-incarnation";
  uint64_t stored = 0;
  if (FILE* f = std::fopen(path.c_str(), "r"); f != nullptr) {
    unsigned long long v = 0;
    if (std::fscanf(f, "%llu", &v) == 1) stored = v;
    std::fclose(f);
  }
  const uint64_t now =
      static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  const uint64_t next = std::max(stored + 1, now);
  if (next > UINT32_MAX) return totem::IoError(path + ": incarnation exhausted");
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return totem::IoError("write " + tmp);
  const bool ok = std::fprintf(f, "%llu\n", static_cast<unsigned long long>(next)) > 0 &&
                  std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  if (std::fclose(f) != 0 || !ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    return totem::IoError("write " + path);
  }
  return static_cast<uint32_t>(next);
}

}  // namespace

Replicator::Replicator(totem::NodeId node_id, std::unique_ptr<ReplicatedStorage> storage)
    : node_id_(node_id), storage_(std::move(storage)), rng_(std::random_device{}()) {
  // Mix a second draw in: two nodes seeded at the same instant from a weak
  // random_device still diverge by node id.
  rng_.seed(rng_() ^ (static_cast<uint64_t>(std::random_device{}()) << 32) ^ node_id);
}

StatusOr<std::unique_ptr<Replicator>> Replicator::Start(const ServerConfig& config,
                                                        const std::string& key) {
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return totem::IoError("create data dir " + config.data_dir + ": " + ec.message());

  ::kvstore::StoreOptions options;
  options.sync = config.sync;
  std::vector<totemkv::kvstore::v1::MemberInfo> bootstrap;
  std::vector<totem::NodeId> bootstrap_ids;
  for (const ClusterMember& m : config.cluster) {
    totemkv::kvstore::v1::MemberInfo info;
    info.set_id(m.id);
    info.set_name(m.name);
    info.add_peer_urls("udp://" + m.host + ":" + std::to_string(m.port));
    // A gateway's addresses on its other rings.
    for (size_t i = 1; i < m.rings.size(); ++i) {
      info.add_peer_urls("udp://" + m.rings[i].host + ":" + std::to_string(m.rings[i].port));
    }
    for (const std::string& u : m.client_urls) info.add_client_urls(u);
    bootstrap.push_back(std::move(info));
    bootstrap_ids.push_back(m.id);
  }
  StatusOr<std::unique_ptr<::kvstore::MvccStore>> opened =
      ::kvstore::MvccStore::Open(config.data_dir + "/db", options);
  if (!opened.ok()) return opened.status();
  std::shared_ptr<::kvstore::MvccStore> store(std::move(*opened));
  ReplicatedStorageOptions so;
  so.self = config.node_id;
  so.bootstrap_members = bootstrap;
  so.log_retention_ops = config.replication_log_ops;
  StatusOr<std::unique_ptr<ReplicatedStorage>> storage = ReplicatedStorage::Open(store, so);
  if (!storage.ok()) return storage.status();
  std::unique_ptr<Replicator> r(new Replicator(config.node_id, std::move(*storage)));
  r->store_ = std::move(store);
  r->storage_->SetApplyObserver([p = r.get()](const std::vector<::kvstore::Op>& ops,
                                              const std::vector<::kvstore::OpResult>& results) {
    p->applied_ops_ += ops.size();
    ++p->batches_applied_;
    for (const ::kvstore::OpResult& res : results) {
      if (res.duplicate) ++p->duplicates_applied_;
    }
    std::lock_guard<std::mutex> l(p->observers_mu_);
    for (const ApplyObserver& o : p->apply_observers_) o(ops, results);
  });
  ::kvstore::repl::EngineOptions eo;
  eo.self = config.node_id;
  eo.bootstrap_members = bootstrap_ids;
  r->engine_ = std::make_unique<::kvstore::repl::Engine>(eo, r->storage_.get());
  {
    std::lock_guard<std::mutex> l(r->status_mu_);
    r->status_.role = r->engine_->role();
    r->status_.reason = r->engine_->reason();
    r->status_.meta = r->engine_->meta();
    r->status_.configured = r->engine_->configured();
  }
  r->applied_seq_ = r->engine_->meta().green;

  // Members, peers and the --totem-* settings (validated by ParseConfig).
  // An envelope carries a request of up to kMaxRequestBytes plus a few
  // bytes of framing; the submit queue holds several of them.
  const auto ring_settings = [&key](totem::NodeConfig& nc, const std::string& state_dir) {
    nc.ring.max_message_bytes = 2u << 20;
    nc.ring.max_pending_bytes = 8u << 20;
    nc.transport.key = key;
    nc.state_dir = state_dir;
  };
  OrderingCallbacks cb;
  cb.on_deliver = [p = r.get()](const totem::Delivery& d) { p->OnDeliver(d); };
  cb.on_configuration = [p = r.get()](const totem::ConfigurationEvent& e) {
    p->OnConfiguration(e);
  };
  const auto start = [&]() -> StatusOr<std::unique_ptr<Ordering>> {
    if (!config.MultiRing()) {
      totem::NodeConfig nc = config.TotemNodeConfig();
      ring_settings(nc, config.data_dir + "/totem");
      return StartSingleRingOrdering(nc, std::move(cb));
    }
    totem::MultiRingNodeConfig mc = config.MultiRingConfig();
    for (totem::MultiRingNodeConfig::LocalRing& lr : mc.local) {
      ring_settings(lr.node, config.data_dir + "/totem/ring-" + std::to_string(lr.ring));
    }
    StatusOr<uint32_t> incarnation = NextIncarnation(config.data_dir + "/totem");
    if (!incarnation.ok()) return incarnation.status();
    mc.incarnation = *incarnation;
    // Lamport timestamps (and so global configuration ids, which the engine
    // orders primaries by) keep growing even if every member restarts.
    mc.clock_file = config.data_dir + "/totem/mring-clock";
    return StartMultiRingOrdering(mc, std::move(cb));
  };
  r->apply_thread_ = std::thread([p = r.get()] { p->ApplyLoop(); });
  StatusOr<std::unique_ptr<Ordering>> node = start();
  if (!node.ok()) {
    r->Stop();
    return node.status();
  }
  {
    // The apply thread may submit only once the node exists.
    std::lock_guard<std::mutex> l(r->queue_mu_);
    r->node_ = std::move(*node);
  }
  r->queue_cv_.notify_all();
  return r;
}

Replicator::~Replicator() { Stop(); }

void Replicator::Stop() {
  if (stopped_.exchange(true)) return;
  if (node_) node_->Stop();  // no callback runs after this
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (apply_thread_.joinable()) apply_thread_.join();
  std::lock_guard<std::mutex> l(pending_mu_);
  for (auto& [id, pending] : pending_) {
    ::kvstore::OpResult failed;
    failed.status = Unavailable("etcdserver: server stopped");
    pending->promise.set_value(std::move(failed));
  }
  pending_.clear();
}

void Replicator::Enqueue(::kvstore::repl::Input input) {
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    if (queue_.empty()) queue_oldest_ = std::chrono::steady_clock::now();
    queue_.push_back(std::move(input));
  }
  queue_cv_.notify_one();
}

void Replicator::OnConfiguration(const totem::ConfigurationEvent& e) {
  // members= is followed by more fields: tests match " members=1,2,3 ".
  LogInfo(Event::kRingConfiguration, {{"kind", totem::ConfigurationKindName(e.kind)},
                                      {"ring", e.id.ToString()},
                                      {"members", IdList(e.members)},
                                      {"joined", IdList(e.joined)},
                                      {"left", IdList(e.left)}});
  {
    std::lock_guard<std::mutex> l(history_mu_);
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    history_.push_back({e, std::chrono::duration_cast<std::chrono::microseconds>(now).count()});
    if (history_.size() > kConfigurationHistory) {
      history_.pop_front();
      ++history_dropped_;
    }
  }
  ::kvstore::repl::Input in;
  in.kind = ::kvstore::repl::Input::Kind::kConfiguration;
  in.configuration = e;
  Enqueue(std::move(in));
  std::lock_guard<std::mutex> l(observers_mu_);
  for (const ConfigurationObserver& o : configuration_observers_) o(e);
}

void Replicator::OnDeliver(const totem::Delivery& d) {
  // Totem I/O thread: copy and hand off, nothing else.
  ::kvstore::repl::Input in;
  in.kind = ::kvstore::repl::Input::Kind::kDelivery;
  in.sender = d.sender;
  in.config_kind = d.config_kind;
  in.ring = d.config_id;
  in.payload.assign(reinterpret_cast<const char*>(d.payload.data()), d.payload.size());
  Enqueue(std::move(in));
}

void Replicator::AddApplyObserver(ApplyObserver observer) {
  std::lock_guard<std::mutex> l(observers_mu_);
  apply_observers_.push_back(std::move(observer));
}

void Replicator::AddResetObserver(ResetObserver observer) {
  std::lock_guard<std::mutex> l(observers_mu_);
  reset_observers_.push_back(std::move(observer));
}

void Replicator::AddConfigurationObserver(ConfigurationObserver observer) {
  std::lock_guard<std::mutex> l(observers_mu_);
  configuration_observers_.push_back(std::move(observer));
}

std::vector<Replicator::ConfigurationRecord> Replicator::ConfigurationHistory(
    uint64_t* dropped) const {
  std::lock_guard<std::mutex> l(history_mu_);
  if (dropped != nullptr) *dropped = history_dropped_;
  return {history_.begin(), history_.end()};
}

std::map<std::string, uint64_t> Replicator::StoreCounters() const {
  std::map<std::string, uint64_t> c;
  c["ops_proposed"] = ops_proposed_.load();
  c["proposals_failed"] = proposals_failed_.load();
  c["proposals_outcome_unknown"] = outcome_unknown_.load();
  c["ops_applied"] = applied_ops_.load();
  c["duplicates_applied"] = duplicates_applied_.load();
  c["batches_applied"] = batches_applied_.load();
  c["barriers_proposed"] = barriers_proposed_.load();
  c["engine_submit_retries"] = submit_retries_.load();
  c["applied_seq_current"] = applied_seq_.load();
  c["revision_current"] = static_cast<uint64_t>(store().CurrentRevision());
  c["compacted_revision_current"] = static_cast<uint64_t>(store().CompactedRevision());
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    c["apply_queue_current"] = queue_.size();
  }
  {
    std::lock_guard<std::mutex> l(pending_mu_);
    c["proposals_in_flight_current"] = pending_.size();
  }
  const ReplicationStatus st = Replication();
  const ::kvstore::repl::EngineCounters& e = st.counters;
  c["green_applied"] = e.green_applied;
  c["yellow_received"] = e.yellow_received;
  c["yellow_adopted"] = e.yellow_adopted;
  c["red_ops"] = e.red_ops;
  c["buffered_applied"] = e.buffered_applied;
  c["exchanges_started"] = e.exchanges_started;
  c["exchanges_aborted"] = e.exchanges_aborted;
  c["primaries_installed"] = e.primaries_installed;
  c["transfer_ops_sent"] = e.transfer_ops_sent;
  c["transfer_ops_applied"] = e.transfer_ops_applied;
  c["snapshots_sent"] = e.snapshots_sent;
  c["snapshot_chunks_sent"] = e.snapshot_chunks_sent;
  c["snapshots_installed"] = e.snapshots_installed;
  c["malformed_engine_messages"] = e.malformed_messages;
  c["engine_acks"] = e.acks;
  c["engine_rejects"] = e.rejects;
  c["global_index_current"] = st.meta.green;
  c["commit_index_current"] = st.commit_index;
  c["primary_number_current"] = st.meta.prim_number;
  return c;
}

Replicator::ReplicationStatus Replicator::Replication() const {
  std::lock_guard<std::mutex> l(status_mu_);
  return status_;
}

std::vector<totemkv::kvstore::v1::MemberInfo> Replicator::Members() const {
  return storage_->Members();
}

Replicator::Standing Replicator::GetStanding(std::string* message) const {
  std::lock_guard<std::mutex> l(status_mu_);
  if (message != nullptr) {
    *message = status_.reason.empty() ? std::string() : "totemkv: " + status_.reason;
  }
  switch (status_.role) {
    case ::kvstore::repl::Role::kPrimary:
      return Standing::kCurrent;
    case ::kvstore::repl::Role::kNonPrimary:
    case ::kvstore::repl::Role::kFailed:
      return Standing::kNoQuorum;
    default:
      return Standing::kUnconfirmed;
  }
}

Status Replicator::CheckStanding() const {
  std::string message;
  if (GetStanding(&message) == Standing::kNoQuorum) return Unavailable(message);
  return Status::Ok();
}

void Replicator::ApplyLoop() {
  std::vector<::kvstore::repl::Input> inputs;
  for (;;) {
    std::chrono::steady_clock::time_point oldest;
    {
      std::unique_lock<std::mutex> l(queue_mu_);
      queue_cv_.wait(l, [this] {
        return stopping_ || (!queue_.empty() && node_ != nullptr) ||
               (!outbox_.empty() && node_ != nullptr);
      });
      if (stopping_) return;
      inputs.swap(queue_);
      oldest = queue_oldest_;
    }
    if (!inputs.empty()) {
      RunEngine(inputs);
      apply_latency_.Observe(std::chrono::steady_clock::now() - oldest);
    }
    inputs.clear();
    FlushOutbox();
    if (!outbox_.empty()) {
      // Totem's submit queue is full: wait for room (or for more input).
      ++submit_retries_;
      node_->WaitWritable(std::chrono::milliseconds(20));
    }
  }
}

void Replicator::RunEngine(std::vector<::kvstore::repl::Input>& inputs) {
  ::kvstore::repl::Effects fx;
  const ::kvstore::repl::EngineCounters before = engine_->counters();
  const uint64_t installs_before = before.snapshots_installed;
  Status s = engine_->Step(inputs, &fx);
  if (!s.ok()) {
    // A replica that cannot store the total order must not go on serving
    // as if it had (fail-stop).
    LogError(Event::kReplicationFailed, {{"error", s.ToString()}});
    std::abort();
  }
  for (::kvstore::repl::Effects::Message& m : fx.send) outbox_.push_back(std::move(m));
  applied_seq_ = engine_->meta().green;
  if (engine_->counters().snapshots_installed != installs_before) {
    LogWarn(Event::kSnapshotInstalled, {{"global_index", engine_->meta().green}});
    std::lock_guard<std::mutex> l(observers_mu_);
    for (const ResetObserver& o : reset_observers_) o();
  }
  {
    std::lock_guard<std::mutex> l(status_mu_);
    status_.role = engine_->role();
    status_.reason = engine_->reason();
    status_.meta = engine_->meta();
    status_.commit_index = engine_->commit_index();
    status_.configured = engine_->configured();
    status_.counters = engine_->counters();
  }
  LogStateTransfer(before, fx.role_changed);
  if (fx.role_changed) {
    const ::kvstore::repl::Role role = engine_->role();
    const bool primary = role == ::kvstore::repl::Role::kPrimary;
    const Event event = primary        ? Event::kPrimaryInstalled
                        : was_primary_ ? Event::kPrimaryLost
                                       : Event::kReplicationRole;
    LogEvent(event == Event::kPrimaryLost ? LogLevel::kWarn : LogLevel::kInfo, event,
             {{"role", ::kvstore::repl::RoleName(role)},
              {"reason", engine_->reason()},
              {"global_index", engine_->meta().green},
              {"primary_number", engine_->meta().prim_number}});
    was_primary_ = primary;
  }
  for (const ::kvstore::repl::Effects::Ack& a : fx.acks) {
    std::optional<::kvstore::OpResult> result = storage_->TakeResult(a.op_id);
    if (!result) {
      ::kvstore::OpResult unknown;
      unknown.status = Unavailable(
          "etcdserver: request outcome unknown (applied, but its result is no longer kept)");
      result = std::move(unknown);
    }
    Complete(a.op_id, std::move(*result));
  }
  for (const ::kvstore::repl::Effects::Reject& rj : fx.rejects) {
    storage_->TakeResult(rj.op_id);
    ++outcome_unknown_;
    ::kvstore::OpResult failed;
    failed.status =
        Unavailable("totemkv: " + rj.message + "; retrying with the same op id is safe");
    Complete(rj.op_id, std::move(failed));
  }
}

void Replicator::LogStateTransfer(const ::kvstore::repl::EngineCounters& before,
                                  bool role_changed) {
  const ::kvstore::repl::EngineCounters& now = engine_->counters();
  const bool sent_log = now.transfer_ops_sent > before.transfer_ops_sent;
  const bool sent_snapshot = now.snapshot_chunks_sent > before.snapshot_chunks_sent;
  // A receiver sees a snapshot only once it is installed (the engine counts
  // no chunks received), log catch-up as each transferred op is applied.
  const bool got_log = now.transfer_ops_applied > before.transfer_ops_applied;
  const bool got_snapshot = now.snapshots_installed > before.snapshots_installed;
  TransferLog& t = transfer_log_;
  if (!t.active && (sent_log || sent_snapshot || got_log || got_snapshot)) {
    t.active = true;
    t.donor = sent_log || sent_snapshot;
    t.snapshot = sent_snapshot || got_snapshot;
    t.start = before;
    t.started = std::chrono::steady_clock::now();
    LogInfo(Event::kStateTransferStarted, {{"role", t.donor ? "donor" : "receiver"},
                                           {"kind", t.snapshot ? "snapshot" : "log"},
                                           {"global_index", engine_->meta().green}});
  } else if (t.active) {
    t.snapshot = t.snapshot || sent_snapshot || got_snapshot;
  }
  if (!t.active || !role_changed) return;
  const ::kvstore::repl::Role role = engine_->role();
  if (role == ::kvstore::repl::Role::kExchanging) return;  // still under way
  t.active = false;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - t.started)
                      .count();
  LogInfo(Event::kStateTransferFinished,
          {{"role", t.donor ? "donor" : "receiver"},
           {"kind", t.snapshot ? "snapshot" : "log"},
           {"outcome", role == ::kvstore::repl::Role::kPrimary ? "completed" : "interrupted"},
           {"ops", t.donor ? now.transfer_ops_sent - t.start.transfer_ops_sent
                           : now.transfer_ops_applied - t.start.transfer_ops_applied},
           {"snapshot_chunks", now.snapshot_chunks_sent - t.start.snapshot_chunks_sent},
           {"global_index", engine_->meta().green},
           {"duration_ms", static_cast<int64_t>(ms)}});
}

void Replicator::FlushOutbox() {
  while (!outbox_.empty()) {
    const ::kvstore::repl::Effects::Message& m = outbox_.front();
    const Status s = node_->Submit(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(m.bytes.data()), m.bytes.size()),
        m.guarantee);
    if (s.code() == StatusCode::kWouldBlock) return;
    if (!s.ok()) LogWarn(Event::kSubmitFailed, {{"error", s.ToString()}});
    outbox_.pop_front();
  }
}

void Replicator::Complete(const OpId& id, ::kvstore::OpResult result) {
  std::lock_guard<std::mutex> l(pending_mu_);
  auto it = pending_.find(id);
  if (it == pending_.end()) return;  // timed out already, or another node's client
  it->second->promise.set_value(std::move(result));
  pending_.erase(it);
}

Replicator::OpId Replicator::NewOpId() {
  OpId id{};
  for (size_t i = 0; i < id.size(); i += 8) {
    const uint64_t v = rng_();
    for (size_t j = 0; j < 8; ++j) id[i + j] = static_cast<uint8_t>(v >> (8 * j));
  }
  return id;
}

void Replicator::Fail(const OpId& id, const std::shared_ptr<Pending>& pending) {
  ++proposals_failed_;
  std::lock_guard<std::mutex> l(pending_mu_);
  auto it = pending_.find(id);
  // Only the last waiter of this very entry removes it.
  if (it != pending_.end() && it->second == pending && --pending->waiters == 0) pending_.erase(it);
}

StatusOr<::kvstore::OpResult> Replicator::Propose(totemkv::kvstore::v1::Op op,
                                                  std::chrono::milliseconds timeout,
                                                  const std::string& client_op_id) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ::kvstore::repl::OpRecord record;
  if (!client_op_id.empty()) {
    if (client_op_id.size() != record.op_id.size()) {
      return totem::InvalidArgument("op id must be 16 bytes, got " +
                                    std::to_string(client_op_id.size()));
    }
    std::copy(client_op_id.begin(), client_op_id.end(), record.op_id.begin());
  }
  op.set_origin_node(node_id_);
  record.kind = ::kvstore::repl::OpKind::kData;
  // The op id travels in the record; the payload carries it too so the
  // store's dedup window sees it (filled in by Submit).
  record.payload = op.SerializeAsString();
  return Submit(std::move(record), deadline);
}

Status Replicator::ProposeMemberChange(bool add, const totemkv::kvstore::v1::MemberInfo& info,
                                       std::chrono::milliseconds timeout) {
  ::kvstore::repl::OpRecord record;
  record.kind = add ? ::kvstore::repl::OpKind::kMemberAdd : ::kvstore::repl::OpKind::kMemberRemove;
  record.member = info.id();
  record.payload = info.SerializeAsString();
  StatusOr<::kvstore::OpResult> r =
      Submit(std::move(record), std::chrono::steady_clock::now() + timeout);
  if (!r.ok()) return r.status();
  return r->status;
}

StatusOr<::kvstore::OpResult> Replicator::Submit(::kvstore::repl::OpRecord record,
                                                 std::chrono::steady_clock::time_point deadline) {
  if (stopped_) return Unavailable("etcdserver: server stopped");
  if (Status standing = CheckStanding(); !standing.ok()) {
    ++proposals_failed_;
    return standing;
  }
  const bool client_chosen = record.op_id != OpId{};
  std::shared_ptr<Pending> pending;
  {
    std::lock_guard<std::mutex> l(pending_mu_);
    if (!client_chosen) {
      do {
        record.op_id = NewOpId();
      } while (pending_.count(record.op_id) != 0);
    }
    std::shared_ptr<Pending>& slot = pending_[record.op_id];
    if (slot == nullptr) {
      slot = std::make_shared<Pending>();
      slot->future = slot->promise.get_future().share();
    }
    pending = slot;
    ++pending->waiters;
  }
  const OpId id = record.op_id;
  ++ops_proposed_;
  std::shared_future<::kvstore::OpResult> done = pending->future;
  record.origin = node_id_;
  if (record.kind == ::kvstore::repl::OpKind::kData) {
    totemkv::kvstore::v1::Op op;
    if (op.ParseFromString(record.payload)) {
      op.set_op_id(std::string(id.begin(), id.end()));
      record.payload = op.SerializeAsString();
    }
  }
  const std::string bytes = ::kvstore::repl::Engine::EncodeOp(record);
  const std::span<const uint8_t> data(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  for (;;) {
    Status s = node_->Submit(data, totem::Guarantee::kSafe);
    if (s.ok()) break;
    const auto now = std::chrono::steady_clock::now();
    if (s.code() == StatusCode::kWouldBlock && now < deadline) {
      node_->WaitWritable(std::min<std::chrono::milliseconds>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
              std::chrono::milliseconds(1),
          std::chrono::milliseconds(100)));
      continue;
    }
    Fail(id, pending);
    if (s.code() == StatusCode::kWouldBlock) {
      return Unavailable("etcdserver: request timed out (the ordering queue stayed full)");
    }
    if (s.code() == StatusCode::kResourceExhausted) {
      return totem::InvalidArgument(std::string(::kvstore::kErrRequestTooLarge) + " (" +
                                    s.message() + ")");
    }
    return s;
  }
  if (done.wait_until(deadline) != std::future_status::ready) {
    Fail(id, pending);
    // Completed between the timeout and the erase: take the result.
    if (done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      std::string standing;
      GetStanding(&standing);
      return Unavailable("etcdserver: request timed out" +
                         (standing.empty() ? std::string() : " (" + standing + ")"));
    }
  }
  ::kvstore::OpResult result = done.get();
  if (!result.status.ok() && result.status.code() == StatusCode::kUnavailable) {
    return result.status;
  }
  return result;
}

Status Replicator::ReadBarrier(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::unique_lock<std::mutex> l(barrier_mu_);
  std::shared_ptr<BarrierGroup> group = open_group_;
  if (group == nullptr) {
    group = std::make_shared<BarrierGroup>();
    group->future = group->promise.get_future().share();
    open_group_ = group;
    // Leader: keep the group open while the previous barrier is in flight
    // so that readers arriving meanwhile share the next one.
    barrier_cv_.wait_until(l, deadline, [this] { return barriers_in_flight_ == 0; });
    open_group_ = nullptr;  // closed BEFORE submitting: every member arrived earlier
    ++barriers_in_flight_;
    l.unlock();
    totemkv::kvstore::v1::Op op;
    op.mutable_barrier();
    ++barriers_proposed_;
    const auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    StatusOr<::kvstore::OpResult> r =
        Propose(std::move(op), std::max(remaining, std::chrono::milliseconds(1)));
    l.lock();
    --barriers_in_flight_;
    barrier_cv_.notify_all();
    l.unlock();
    group->promise.set_value(r.ok() ? r->status : r.status());
  } else {
    l.unlock();
  }
  if (group->future.wait_until(deadline) != std::future_status::ready) {
    return Unavailable("etcdserver: request timed out (read barrier)");
  }
  return group->future.get();
}

}  // namespace totemkv::server
