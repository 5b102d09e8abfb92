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

  totem::NodeConfig nc;
  nc.ring.node_id = config.node_id;
  for (const ClusterMember& m : config.cluster) {
    nc.ring.members.push_back(m.id);
    nc.transport.peers.push_back({m.id, m.host, m.port});
  }
  // An envelope carries a request of up to kMaxRequestBytes plus a few
  // bytes of framing; the submit queue holds several of them.
  nc.ring.max_message_bytes = 2u << 20;
  nc.ring.max_pending_bytes = 8u << 20;
  nc.transport.key = key;
  nc.state_dir = config.data_dir + "/totem";

  r->apply_thread_ = std::thread([p = r.get()] { p->ApplyLoop(); });
  totem::Callbacks cb;
  cb.on_deliver = [p = r.get()](const totem::Delivery& d) { p->OnDeliver(d); };
  cb.on_configuration = [](const totem::ConfigurationEvent& e) {
    Log("configuration %s ring=%s members=%s joined=%s left=%s",
        totem::ConfigurationKindName(e.kind), e.id.ToString().c_str(), Members(e.members).c_str(),
        Members(e.joined).c_str(), Members(e.left).c_str());
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
  if (apply_thread_.joinable()) apply_thread_.join();
  std::lock_guard<std::mutex> l(pending_mu_);
  for (auto& [id, promise] : pending_) {
    ::kvstore::OpResult failed;
    failed.status = Unavailable("etcdserver: server stopped");
    promise.set_value(std::move(failed));
  }
  pending_.clear();
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
  std::deque<Delivered> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> l(queue_mu_);
      queue_cv_.wait(l, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      batch.swap(queue_);
    }
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
        Log("skipping an undecodable op (%zu bytes) at ring %s seq %llu", batch[i].payload.size(),
            batch[i].ring.ToString().c_str(), static_cast<unsigned long long>(batch[i].frame_seq));
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
        it->second.set_value(std::move(result));
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

void Replicator::Fail(const OpId& id) {
  std::lock_guard<std::mutex> l(pending_mu_);
  pending_.erase(id);
}

StatusOr<::kvstore::OpResult> Replicator::Propose(totemkv::kvstore::v1::Op op,
                                                  std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (stopped_) return Unavailable("etcdserver: server stopped");
  std::future<::kvstore::OpResult> done;
  OpId id;
  {
    std::lock_guard<std::mutex> l(pending_mu_);
    do {
      id = NewOpId();
    } while (pending_.count(id) != 0);
    done = pending_[id].get_future();
  }
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
    Fail(id);
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
    Fail(id);
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
