// totem::GroupNode (groups.h): a totem::Node whose deliveries and
// configuration events feed the pure process group layer
// (core/process_groups.h) on the node's I/O thread; the layer's group
// events go to the application callbacks in order, and its state messages
// are submitted to the ring.
//
// Design notes:
//  - The layer is touched under state_mu_, which is released before the
//    application callbacks run, so they may call Members() or Multicast().
//  - A state message is submitted from the I/O thread at once when the
//    submit queue has room; otherwise (or before Start has published the
//    node) it is left to a small sender thread that waits for room. Only the
//    newest one matters: a newer configuration replaces a pending one.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "totem/core/process_groups.h"
#include "totem/groups.h"

namespace totem {
namespace {

class GroupNodeImpl final : public GroupNode {
 public:
  GroupNodeImpl(NodeId self, GroupCallbacks callbacks)
      : layer_(self), callbacks_(std::move(callbacks)) {}
  ~GroupNodeImpl() override { Stop(); }

  Status StartNode(const NodeConfig& config) {
    Callbacks cb;
    cb.on_deliver = [this](const Delivery& d) {
      core::GroupOutput out;
      {
        std::lock_guard<std::mutex> lock(state_mu_);
        out = layer_.OnDelivery(d);
      }
      Dispatch(std::move(out));
    };
    cb.on_configuration = [this](const ConfigurationEvent& e) {
      if (callbacks_.on_configuration) callbacks_.on_configuration(e);
      core::GroupOutput out;
      {
        std::lock_guard<std::mutex> lock(state_mu_);
        out = layer_.OnConfiguration(e);
      }
      Dispatch(std::move(out));
    };
    StatusOr<std::unique_ptr<Node>> node = Node::Start(config, std::move(cb));
    if (!node.ok()) return node.status();
    node_ = std::move(node).value();
    sender_ = std::thread([this] { SendPendingSyncs(); });
    {
      std::lock_guard<std::mutex> lock(send_mu_);
      published_ = node_.get();
    }
    send_cv_.notify_all();
    return Status::Ok();
  }

  Status Join(std::string_view group) override {
    StatusOr<std::vector<uint8_t>> m = core::EncodeGroupJoin(group);
    return m.ok() ? node_->Submit(m.value(), Guarantee::kAgreed) : m.status();
  }

  Status Leave(std::string_view group) override {
    StatusOr<std::vector<uint8_t>> m = core::EncodeGroupLeave(group);
    return m.ok() ? node_->Submit(m.value(), Guarantee::kAgreed) : m.status();
  }

  Status Multicast(const std::vector<std::string>& groups, std::span<const uint8_t> payload,
                   Guarantee guarantee) override {
    StatusOr<std::vector<uint8_t>> m = core::EncodeGroupMulticast(groups, payload);
    return m.ok() ? node_->Submit(m.value(), guarantee) : m.status();
  }

  bool WaitWritable(std::chrono::milliseconds timeout) override {
    return node_->WaitWritable(timeout);
  }

  std::vector<NodeId> Members(std::string_view group) const override {
    std::lock_guard<std::mutex> lock(state_mu_);
    return layer_.MembersOf(group);
  }

  bool Syncing() const override {
    std::lock_guard<std::mutex> lock(state_mu_);
    return layer_.syncing();
  }

  GroupCounters GetGroupCounters() const override {
    std::lock_guard<std::mutex> lock(state_mu_);
    return layer_.counters();
  }

  Counters GetCounters() const override { return node_->GetCounters(); }
  ConfigurationView CurrentConfiguration() const override { return node_->CurrentConfiguration(); }

  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(send_mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    send_cv_.notify_all();
    if (node_) node_->Stop();  // also wakes a sender in WaitWritable
    if (sender_.joinable()) sender_.join();
  }

 private:
  void Dispatch(core::GroupOutput out) {
    if (out.send.has_value()) SubmitSync(std::move(*out.send));
    for (core::GroupEvent& e : out.events) {
      if (auto* view = std::get_if<GroupView>(&e)) {
        if (callbacks_.on_group_view) callbacks_.on_group_view(*view);
        continue;
      }
      auto& d = std::get<core::GroupDeliveryEvent>(e);
      if (!callbacks_.on_group_deliver) continue;
      GroupDelivery delivery;
      delivery.groups = std::move(d.groups);
      delivery.sender = d.sender;
      delivery.guarantee = d.guarantee;
      delivery.config_id = d.config_id;
      delivery.config_kind = d.config_kind;
      delivery.payload = d.payload;
      callbacks_.on_group_deliver(delivery);
    }
  }

  // On the I/O thread: submit now if possible, else hand to the sender.
  void SubmitSync(std::vector<uint8_t> sync) {
    std::unique_lock<std::mutex> lock(send_mu_);
    if (published_ != nullptr && !pending_sync_.has_value()) {
      if (published_->Submit(sync, Guarantee::kAgreed).code() != StatusCode::kWouldBlock) return;
    }
    pending_sync_ = std::move(sync);
    lock.unlock();
    send_cv_.notify_all();
  }

  void SendPendingSyncs() {
    std::unique_lock<std::mutex> lock(send_mu_);
    for (;;) {
      send_cv_.wait(
          lock, [&] { return stopping_ || (published_ != nullptr && pending_sync_.has_value()); });
      if (stopping_) return;
      std::vector<uint8_t> sync = *pending_sync_;
      Node* node = published_;
      lock.unlock();
      const Status st = node->Submit(sync, Guarantee::kAgreed);
      if (st.code() == StatusCode::kWouldBlock) node->WaitWritable(std::chrono::milliseconds(100));
      lock.lock();
      // Done unless it must be retried; a newer one replaced it meanwhile.
      if (st.code() != StatusCode::kWouldBlock && pending_sync_ == sync) pending_sync_.reset();
    }
  }

  mutable std::mutex state_mu_;
  core::ProcessGroups layer_;  // guarded by state_mu_
  const GroupCallbacks callbacks_;
  std::unique_ptr<Node> node_;  // set once by StartNode

  std::mutex send_mu_;
  std::condition_variable send_cv_;
  Node* published_ = nullptr;  // node_ once Start returned; guarded by send_mu_
  std::optional<std::vector<uint8_t>> pending_sync_;  // guarded by send_mu_
  bool stopping_ = false;                             // guarded by send_mu_
  std::thread sender_;
};

}  // namespace

StatusOr<std::unique_ptr<GroupNode>> GroupNode::Start(const NodeConfig& config,
                                                      GroupCallbacks callbacks) {
  if (config.ring.max_message_bytes < core::kMaxGroupSyncBytes) {
    return InvalidArgument("ring config: max_message_bytes " +
                           std::to_string(config.ring.max_message_bytes) +
                           " is below the largest group state message (" +
                           std::to_string(core::kMaxGroupSyncBytes) + " bytes)");
  }
  auto node = std::make_unique<GroupNodeImpl>(config.ring.node_id, std::move(callbacks));
  if (Status st = node->StartNode(config); !st.ok()) return st;
  return std::unique_ptr<GroupNode>(std::move(node));
}

}  // namespace totem
