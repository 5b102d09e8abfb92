// The Replicator's implementation: Totem node setup, the delivery queue,
// the apply thread with batch grouping, op-id matching and shared read
// barriers. See replicator.h for the contract.
#include "replicator.h"

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

std::string Members(const std::vector<totem::NodeId>& ids) {
  std::string s;
  for (totem::NodeId id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

}  // namespace

Replicator::Replicator(totem::NodeId node_id, std::unique_ptr<::kvstore::MvccStore> store)
    : node_id_(node_id), store_(std::move(store)), rng_(std::random_device{}()) {
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
  StatusOr<std::unique_ptr<::kvstore::MvccStore>> store =
      ::kvstore::MvccStore::Open(config.data_dir + "/db", options);
  if (!store.ok()) return store.status();

  std::unique_ptr<Replicator> r(new Replicator(config.node_id, std::move(*store)));
  r->cluster_ = config.cluster;

  // Members, peers and the --totem-* settings (validated by ParseConfig).
  totem::NodeConfig nc = config.TotemNodeConfig();
  // An envelope carries a request of up to kMaxRequestBytes plus a few
  // bytes of framing; the submit queue holds several of them.
  nc.ring.max_message_bytes = 2u << 20;
  nc.ring.max_pending_bytes = 8u << 20;
  nc.transport.key = key;
  nc.state_dir = config.data_dir + "/totem";

  r->apply_thread_ = std::thread([p = r.get()] { p->ApplyLoop(); });
  totem::Callbacks cb;
  cb.on_deliver = [p = r.get()](const totem::Delivery& d) { p->OnDeliver(d); };
  cb.on_configuration = [p = r.get()](const totem::ConfigurationEvent& e) {
    p->OnConfiguration(e);
  };
  StatusOr<std::unique_ptr<totem::Node>> node = totem::Node::Start(nc, std::move(cb));
  if (!node.ok()) {
    r->Stop();
    return node.status();
  }
  r->node_ = std::move(*node);
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
  standing_cv_.notify_all();
  if (apply_thread_.joinable()) apply_thread_.join();
  std::lock_guard<std::mutex> l(pending_mu_);
  for (auto& [id, pending] : pending_) {
    ::kvstore::OpResult failed;
    failed.status = Unavailable("etcdserver: server stopped");
    pending->promise.set_value(std::move(failed));
  }
  pending_.clear();
}

void Replicator::OnConfiguration(const totem::ConfigurationEvent& e) {
  Log("configuration %s ring=%s members=%s joined=%s left=%s",
      totem::ConfigurationKindName(e.kind), e.id.ToString().c_str(), Members(e.members).c_str(),
      Members(e.joined).c_str(), Members(e.left).c_str());
  {
    std::lock_guard<std::mutex> l(history_mu_);
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    history_.push_back(
        {e, std::chrono::duration_cast<std::chrono::microseconds>(now).count()});
    if (history_.size() > kConfigurationHistory) {
      history_.pop_front();
      ++history_dropped_;
    }
  }
  if (e.kind == totem::ConfigurationKind::kRegular) {
    Delivered marker;
    marker.marker = e;
    {
      std::lock_guard<std::mutex> l(queue_mu_);
      queue_.push_back(std::move(marker));
    }
    queue_cv_.notify_one();
  }
  std::lock_guard<std::mutex> l(observers_mu_);
  for (const ConfigurationObserver& o : configuration_observers_) o(e);
}

void Replicator::AddApplyObserver(ApplyObserver observer) {
  std::lock_guard<std::mutex> l(observers_mu_);
  apply_observers_.push_back(std::move(observer));
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
  c["ops_applied"] = applied_ops_.load();
  c["duplicates_applied"] = duplicates_applied_.load();
  c["batches_applied"] = batches_applied_.load();
  c["barriers_proposed"] = barriers_proposed_.load();
  c["undecodable_ops"] = undecodable_ops_.load();
  c["applied_seq_current"] = applied_seq_.load();
  c["revision_current"] = static_cast<uint64_t>(store_->CurrentRevision());
  c["compacted_revision_current"] = static_cast<uint64_t>(store_->CompactedRevision());
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    c["apply_queue_current"] = queue_.size();
  }
  {
    std::lock_guard<std::mutex> l(pending_mu_);
    c["proposals_in_flight_current"] = pending_.size();
  }
  return c;
}

void Replicator::OnConfigurationMarker(const totem::ConfigurationEvent& e) {
  // Apply thread; every delivery ordered before the configuration is
  // applied, so AppliedWrites() is the count at the boundary.
  const uint64_t writes = store_->AppliedWrites();
  const size_t configured = cluster_.size();
  const bool majority = HoldsMajority(e.members, cluster_);
  {
    std::lock_guard<std::mutex> l(standing_mu_);
    exchange_ = Exchange{};
    exchange_.ring = e.id;
    exchange_.members = e.members;
    exchange_.my_writes = writes;
    exchange_.open = majority;
    if (!majority) {
      standing_ = Standing::kNoQuorum;
      standing_message_ = "totemkv: no quorum: " + std::to_string(e.members.size()) + " of " +
                          std::to_string(configured) + " members reachable";
    } else if (standing_ == Standing::kNoQuorum) {
      // Back in a majority: current again only if the exchange says so.
      standing_ = Standing::kUnconfirmed;
      standing_message_ = "totemkv: this member has not confirmed it is up to date yet";
    }
  }
  standing_cv_.notify_all();
  if (!majority) return;
  // Announce: MemberState{ring, writes}, safe, without waiting for it.
  totemkv::kvstore::v1::Op op;
  op.set_origin_node(node_id_);
  auto* st = op.mutable_member_state();
  st->set_ring_representative(e.id.rep);
  st->set_ring_seq(e.id.seq);
  st->set_applied_writes(writes);
  const std::string bytes = op.SerializeAsString();
  const std::span<const uint8_t> data(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  for (int attempt = 0; attempt < 100; ++attempt) {
    const Status st_submit = node_->Submit(data, totem::Guarantee::kSafe);
    if (st_submit.ok()) return;
    if (st_submit.code() != StatusCode::kWouldBlock) {
      Log("cannot announce member state: %s", st_submit.ToString().c_str());
      return;
    }
    node_->WaitWritable(std::chrono::milliseconds(50));
  }
  Log("cannot announce member state: the ordering queue stayed full");
}

void Replicator::OnMemberState(totem::NodeId from,
                               const totemkv::kvstore::v1::MemberState& state) {
  std::lock_guard<std::mutex> l(standing_mu_);
  Exchange& x = exchange_;
  if (!x.open || state.ring_representative() != x.ring.rep || state.ring_seq() != x.ring.seq ||
      std::find(x.members.begin(), x.members.end(), from) == x.members.end()) {
    return;  // an older configuration's announcement, or not a member
  }
  x.writes[from] = state.applied_writes();
  if (x.writes.size() < x.members.size()) return;
  x.open = false;
  uint64_t most = 0;
  totem::NodeId most_id = totem::kNoNode;
  for (const auto& [id, w] : x.writes) {
    if (w > most) {
      most = w;
      most_id = id;
    }
  }
  if (x.my_writes < most) {
    // Sticky until this member is caught up (state transfer: a later
    // step); its writes since then were applied on a stale base.
    standing_ = Standing::kBehind;
    standing_message_ = "totemkv: this member is behind the cluster (it had applied " +
                        std::to_string(x.my_writes) + " writes, member " +
                        std::to_string(most_id) + " " + std::to_string(most) +
                        "); it serves only serializable reads until it is caught up";
    Log("member state exchange in ring %s: BEHIND (%llu writes, member %u has %llu)",
        x.ring.ToString().c_str(), static_cast<unsigned long long>(x.my_writes), most_id,
        static_cast<unsigned long long>(most));
  } else if (standing_ != Standing::kBehind) {
    standing_ = Standing::kCurrent;
    standing_message_.clear();
    Log("member state exchange in ring %s: current (%llu writes)", x.ring.ToString().c_str(),
        static_cast<unsigned long long>(x.my_writes));
  }
  standing_cv_.notify_all();
}

Status Replicator::CheckStanding(std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock<std::mutex> l(standing_mu_);
  // Not yet known (starting, or back from a minority): wait for the
  // exchange rather than fail a request that a moment later would succeed.
  standing_cv_.wait_until(l, deadline, [this] {
    return standing_ != Standing::kUnconfirmed || stopped_.load();
  });
  if (standing_ == Standing::kCurrent) return Status::Ok();
  return Unavailable(standing_message_);
}

Replicator::Standing Replicator::GetStanding(std::string* message) const {
  std::lock_guard<std::mutex> l(standing_mu_);
  if (message != nullptr) *message = standing_message_;
  return standing_;
}

void Replicator::OnDeliver(const totem::Delivery& d) {
  // Totem I/O thread: copy and hand off, nothing else. Only kSafe messages
  // are ever submitted; anything else is not ours and is ignored (the same
  // way on every node).
  if (d.guarantee != totem::Guarantee::kSafe) return;
  Delivered item;
  item.ring = d.config_id;
  item.frame_seq = d.frame_seq;
  item.payload.assign(reinterpret_cast<const char*>(d.payload.data()), d.payload.size());
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    queue_.push_back(std::move(item));
  }
  queue_cv_.notify_one();
}

void Replicator::ApplyLoop() {
  std::deque<Delivered> queued;
  std::deque<Delivered> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> l(queue_mu_);
      queue_cv_.wait(l, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      queued.swap(queue_);
    }
    // Deliveries up to each configuration marker form one batch; the
    // marker is handled once everything before it is applied.
    while (!queued.empty()) {
      if (queued.front().marker) {
        OnConfigurationMarker(*queued.front().marker);
        queued.pop_front();
        continue;
      }
      while (!queued.empty() && !queued.front().marker) {
        batch.push_back(std::move(queued.front()));
        queued.pop_front();
      }
      ApplyBatch(batch);
      batch.clear();
    }
  }
}

void Replicator::ApplyBatch(std::deque<Delivered>& batch) {
  {
    // Decode every delivery; ops that fail to parse are skipped by every
    // replica alike (their origin times out).
    struct Entry {
      OpId id{};
      bool mine = false;
      int store_index = -1;  // index into ops, or -1 (barrier / undecodable)
    };
    std::vector<Entry> entries(batch.size());
    std::vector<::kvstore::Op> ops;
    for (size_t i = 0; i < batch.size(); ++i) {
      totemkv::kvstore::v1::Op op;
      if (!op.ParseFromString(batch[i].payload)) {
        ++undecodable_ops_;
        Log("skipping an undecodable op (%zu bytes) at ring %s seq %llu", batch[i].payload.size(),
            batch[i].ring.ToString().c_str(), static_cast<unsigned long long>(batch[i].frame_seq));
        continue;
      }
      if (op.has_member_state()) {
        OnMemberState(op.origin_node(), op.member_state());
        continue;
      }
      Entry& e = entries[i];
      e.mine = op.origin_node() == node_id_ && op.op_id().size() == e.id.size();
      if (e.mine) std::copy(op.op_id().begin(), op.op_id().end(), e.id.begin());
      std::optional<::kvstore::Op> converted = FromOpProto(op);
      if (converted) {
        e.store_index = static_cast<int>(ops.size());
        ops.push_back(std::move(*converted));
      }
    }
    std::vector<::kvstore::OpResult> results;
    if (!ops.empty()) {
      const ::kvstore::AppliedPosition position{batch.back().ring.ToString(),
                                                batch.back().frame_seq};
      StatusOr<std::vector<::kvstore::OpResult>> applied = store_->ApplyBatch(ops, position);
      if (!applied.ok()) {
        // A replica that cannot apply the total order must not go on
        // serving as if it had (fail-stop).
        Log("FATAL: applying a batch of %zu ops failed: %s", ops.size(),
            applied.status().ToString().c_str());
        std::abort();
      }
      results = std::move(*applied);
      applied_ops_ += ops.size();
      ++batches_applied_;
      for (const ::kvstore::OpResult& r : results) {
        if (r.duplicate) ++duplicates_applied_;
      }
      std::lock_guard<std::mutex> l(observers_mu_);
      for (const ApplyObserver& o : apply_observers_) o(ops, results);
    }
    applied_seq_ = batch.back().frame_seq;
    const int64_t revision = store_->CurrentRevision();
    {
      std::lock_guard<std::mutex> l(pending_mu_);
      for (const Entry& e : entries) {
        if (!e.mine) continue;
        auto it = pending_.find(e.id);
        if (it == pending_.end()) continue;  // timed out already
        ::kvstore::OpResult result;
        if (e.store_index >= 0) {
          result = std::move(results[static_cast<size_t>(e.store_index)]);
        } else {
          result.revision = revision;
        }
        it->second->promise.set_value(std::move(result));
        pending_.erase(it);
      }
    }
    batch.clear();
  }
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
  if (stopped_) return Unavailable("etcdserver: server stopped");
  if (Status standing = CheckStanding(deadline); !standing.ok()) {
    ++proposals_failed_;
    return standing;
  }
  OpId id{};
  if (!client_op_id.empty() && client_op_id.size() != id.size()) {
    return totem::InvalidArgument("op id must be 16 bytes, got " +
                                  std::to_string(client_op_id.size()));
  }
  std::shared_ptr<Pending> pending;
  {
    std::lock_guard<std::mutex> l(pending_mu_);
    if (!client_op_id.empty()) {
      std::copy(client_op_id.begin(), client_op_id.end(), id.begin());
    } else {
      do {
        id = NewOpId();
      } while (pending_.count(id) != 0);
    }
    std::shared_ptr<Pending>& slot = pending_[id];
    if (slot == nullptr) {
      slot = std::make_shared<Pending>();
      slot->future = slot->promise.get_future().share();
    }
    pending = slot;
    ++pending->waiters;
  }
  ++ops_proposed_;
  std::shared_future<::kvstore::OpResult> done = pending->future;
  op.set_op_id(std::string(id.begin(), id.end()));
  op.set_origin_node(node_id_);
  const std::string bytes = op.SerializeAsString();
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
      return Unavailable("etcdserver: request timed out");
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
