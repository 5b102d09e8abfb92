// totem::GroupNode (groups.h): a totem::Node, or a totem::MultiRingNode,
// whose deliveries and configuration events feed the pure process group
// layer (core/process_groups.h) in order; the layer's group events go to the
// application callbacks in order, and its state messages are submitted to
// the stream. Over multiple rings the global configurations become EVS
// events (core/global_evs.h) and multicasts carry destination rings
// (core/group_routing.h).
//
// Design notes:
//  - The layer is touched under state_mu_, which is released before the
//    application callbacks run, so they may call Members() or Multicast().
//  - Over multiple rings a message can be lost around a ring's
//    configuration change (multi_ring.h: "Deliberate limits"), its origin
//    included, which a single ring's EVS never does to its own messages. So
//    the node remembers the groups the application asked for and, at each
//    new global configuration (the only points where such losses happen),
//    re-submits the joins and leaves its ordered state does not show yet
//    (repeats are harmless: joins_redundant / leaves_redundant).
//  - A state message is submitted from the delivering thread at once when
//    the submit queue has room; otherwise (or before Start has published the
//    node) it is left to a small sender thread that waits for room. Only the
//    newest one matters: a newer configuration replaces a pending one.
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "totem/core/global_evs.h"
#include "totem/core/group_routing.h"
#include "totem/core/process_groups.h"
#include "totem/groups.h"

namespace totem {
namespace {

// Room for the multiple-ring envelope around a group state message.
constexpr size_t kMultiRingEnvelopeBytes = 64;

class GroupNodeImpl final : public GroupNode {
 public:
  GroupNodeImpl(NodeId self, GroupCallbacks callbacks)
      : layer_(self), callbacks_(std::move(callbacks)) {}
  ~GroupNodeImpl() override { Stop(); }

  Status StartNode(const NodeConfig& config) {
    Callbacks cb;
    cb.on_deliver = [this](const Delivery& d) { OnDelivery(d); };
    cb.on_configuration = [this](const ConfigurationEvent& e) { OnConfiguration(e); };
    StatusOr<std::unique_ptr<Node>> node = Node::Start(config, std::move(cb));
    if (!node.ok()) return node.status();
    node_ = std::move(node).value();
    Publish();
    return Status::Ok();
  }

  Status StartMultiRingNode(const MultiRingNodeConfig& config) {
    origin_ring_ = config.local.front().ring;
    MultiRingCallbacks cb;
    cb.on_deliver = [this](const core::MultiDelivery& d) {
      // Before this processor's first global configuration (config {}) the
      // layer still applies the stream (its own joins among it); the state
      // exchange of that configuration then installs the common state.
      Delivery delivery;
      delivery.config_id = d.config;
      delivery.config_kind = ConfigurationKind::kRegular;
      delivery.sender = d.key.origin;
      delivery.guarantee = d.guarantee;
      delivery.payload = d.payload;
      OnDelivery(delivery);
    };
    cb.on_configuration = [this](const core::GlobalConfiguration& g) {
      std::vector<ConfigurationEvent> events;
      {
        std::lock_guard<std::mutex> lock(state_mu_);
        events = core::GlobalEvsEvents(have_global_ ? &view_.regular : nullptr, g);
        ring_members_ = g.ring_members;
        for (const ConfigurationEvent& e : events) {
          if (e.kind == ConfigurationKind::kTransitional) {
            view_.in_transition = true;
            ++view_.transitional_installs;
          } else {
            view_.regular = e;
            view_.in_transition = false;
            ++view_.regular_installs;
            have_global_ = true;
          }
        }
      }
      for (const ConfigurationEvent& e : events) OnConfiguration(e);
      if (!events.empty()) ResubmitMissingJoinsAndLeaves();
    };
    StatusOr<std::unique_ptr<MultiRingNode>> node = MultiRingNode::Start(config, std::move(cb));
    if (!node.ok()) return node.status();
    multi_ = std::move(node).value();
    Publish();
    return Status::Ok();
  }

  Status Join(std::string_view group) override {
    StatusOr<std::vector<uint8_t>> m = core::EncodeGroupJoin(group);
    if (!m.ok()) return m.status();
    const Status st = SubmitToAll(m.value(), Guarantee::kAgreed);
    if (st.ok() && multi_) {
      std::lock_guard<std::mutex> lock(state_mu_);
      desired_.emplace(group);
    }
    return st;
  }

  Status Leave(std::string_view group) override {
    StatusOr<std::vector<uint8_t>> m = core::EncodeGroupLeave(group);
    if (!m.ok()) return m.status();
    const Status st = SubmitToAll(m.value(), Guarantee::kAgreed);
    if (st.ok() && multi_) {
      std::lock_guard<std::mutex> lock(state_mu_);
      desired_.erase(std::string(group));
    }
    return st;
  }

  Status Multicast(const std::vector<std::string>& groups, std::span<const uint8_t> payload,
                   Guarantee guarantee) override {
    StatusOr<std::vector<uint8_t>> m = core::EncodeGroupMulticast(groups, payload);
    if (!m.ok()) return m.status();
    if (!multi_) return node_->Submit(m.value(), guarantee);
    core::GroupRoute route;
    {
      std::lock_guard<std::mutex> lock(state_mu_);
      if (!have_global_) {
        route.everywhere = true;
      } else {
        std::vector<NodeId> members;
        for (const std::string& g : groups) {
          const std::vector<NodeId> of = layer_.MembersOf(g);
          members.insert(members.end(), of.begin(), of.end());
        }
        route = core::RouteGroupMulticast(ring_members_, std::move(members), origin_ring_);
      }
    }
    if (route.everywhere) return multi_->Submit(m.value(), guarantee);
    return multi_->Submit(m.value(), guarantee, route.rings);
  }

  bool WaitWritable(std::chrono::milliseconds timeout) override {
    return multi_ ? multi_->WaitWritable(timeout) : node_->WaitWritable(timeout);
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

  Counters GetCounters() const override {
    return multi_ ? multi_->GetRingCounters(0) : node_->GetCounters();
  }

  core::MultiRingCounters GetMultiRingCounters() const override {
    return multi_ ? multi_->GetCounters() : core::MultiRingCounters{};
  }

  ConfigurationView CurrentConfiguration() const override {
    if (!multi_) return node_->CurrentConfiguration();
    std::lock_guard<std::mutex> lock(state_mu_);
    return view_;
  }

  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(send_mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    send_cv_.notify_all();
    // Also wakes a sender in WaitWritable.
    if (node_) node_->Stop();
    if (multi_) multi_->Stop();
    if (sender_.joinable()) sender_.join();
  }

 private:
  void Publish() {
    sender_ = std::thread([this] { SendPendingSyncs(); });
    {
      std::lock_guard<std::mutex> lock(send_mu_);
      published_ = true;
    }
    send_cv_.notify_all();
  }

  // Membership traffic: every processor of every ring needs it.
  Status SubmitToAll(std::span<const uint8_t> bytes, Guarantee guarantee) {
    return multi_ ? multi_->Submit(bytes, guarantee) : node_->Submit(bytes, guarantee);
  }

  // Multiple rings, on the ordering thread. A submit that finds the queue
  // full is left to the next configuration.
  void ResubmitMissingJoinsAndLeaves() {
    std::vector<std::vector<uint8_t>> messages;
    {
      std::lock_guard<std::mutex> lock(state_mu_);
      const std::set<std::string, std::less<>>& own = layer_.own_groups();
      for (const std::string& g : desired_) {
        if (own.count(g) == 0) messages.push_back(core::EncodeGroupJoin(g).value());
      }
      for (const std::string& g : own) {
        if (desired_.count(g) == 0) messages.push_back(core::EncodeGroupLeave(g).value());
      }
    }
    std::lock_guard<std::mutex> lock(send_mu_);
    if (!published_) return;  // Start has not returned: Join cannot have been called
    for (const std::vector<uint8_t>& m : messages) (void)SubmitToAll(m, Guarantee::kAgreed);
  }

  void OnDelivery(const Delivery& d) {
    core::GroupOutput out;
    {
      std::lock_guard<std::mutex> lock(state_mu_);
      out = layer_.OnDelivery(d);
    }
    Dispatch(std::move(out));
  }

  void OnConfiguration(const ConfigurationEvent& e) {
    if (callbacks_.on_configuration) callbacks_.on_configuration(e);
    core::GroupOutput out;
    {
      std::lock_guard<std::mutex> lock(state_mu_);
      out = layer_.OnConfiguration(e);
    }
    Dispatch(std::move(out));
  }

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

  // On the delivering thread: submit now if possible, else hand to the sender.
  void SubmitSync(std::vector<uint8_t> sync) {
    std::unique_lock<std::mutex> lock(send_mu_);
    if (published_ && !pending_sync_.has_value()) {
      if (SubmitToAll(sync, Guarantee::kAgreed).code() != StatusCode::kWouldBlock) return;
    }
    pending_sync_ = std::move(sync);
    lock.unlock();
    send_cv_.notify_all();
  }

  void SendPendingSyncs() {
    std::unique_lock<std::mutex> lock(send_mu_);
    for (;;) {
      send_cv_.wait(lock, [&] { return stopping_ || (published_ && pending_sync_.has_value()); });
      if (stopping_) return;
      std::vector<uint8_t> sync = *pending_sync_;
      lock.unlock();
      const Status st = SubmitToAll(sync, Guarantee::kAgreed);
      if (st.code() == StatusCode::kWouldBlock) WaitWritable(std::chrono::milliseconds(100));
      lock.lock();
      // Done unless it must be retried; a newer one replaced it meanwhile.
      if (st.code() != StatusCode::kWouldBlock && pending_sync_ == sync) pending_sync_.reset();
    }
  }

  mutable std::mutex state_mu_;
  core::ProcessGroups layer_;  // guarded by state_mu_
  const GroupCallbacks callbacks_;
  // Exactly one is set, once, before Publish.
  std::unique_ptr<Node> node_;
  std::unique_ptr<MultiRingNode> multi_;

  // Multiple rings only (guarded by state_mu_): the first local ring, the
  // last global configuration as an EVS view, and its rings' members.
  core::RingNumber origin_ring_ = 0;
  bool have_global_ = false;
  ConfigurationView view_;
  std::map<core::RingNumber, std::vector<NodeId>> ring_members_;
  // The groups the application joined and did not leave since.
  std::set<std::string, std::less<>> desired_;

  std::mutex send_mu_;
  std::condition_variable send_cv_;
  bool published_ = false;                            // guarded by send_mu_
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

StatusOr<std::unique_ptr<GroupNode>> GroupNode::StartMultiRing(const MultiRingNodeConfig& config,
                                                               GroupCallbacks callbacks) {
  if (Status st = config.Validate(); !st.ok()) return st;
  for (const MultiRingNodeConfig::LocalRing& l : config.local) {
    if (l.node.ring.max_message_bytes < core::kMaxGroupSyncBytes + kMultiRingEnvelopeBytes) {
      return InvalidArgument("ring " + std::to_string(l.ring) + " config: max_message_bytes " +
                             std::to_string(l.node.ring.max_message_bytes) +
                             " is below the largest group state message with its envelope (" +
                             std::to_string(core::kMaxGroupSyncBytes + kMultiRingEnvelopeBytes) +
                             " bytes)");
    }
  }
  auto node =
      std::make_unique<GroupNodeImpl>(config.local.front().node.ring.node_id, std::move(callbacks));
  if (Status st = node->StartMultiRingNode(config); !st.ok()) return st;
  return std::unique_ptr<GroupNode>(std::move(node));
}

}  // namespace totem
