// The two Orderings of totemkvd (see ordering.h): one totem::Node passed
// through, and a totem::MultiRingNode whose global configurations are
// turned into the transitional + regular EVS events the replication engine
// expects.
#include "ordering.h"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <mutex>
#include <utility>

#include "log.h"
#include "totem/core/global_evs.h"

namespace totemkv::server {
namespace {

using totem::Status;
using totem::StatusOr;

class SingleRingOrdering final : public Ordering {
 public:
  explicit SingleRingOrdering(std::unique_ptr<totem::Node> node) : node_(std::move(node)) {}
  ~SingleRingOrdering() override { Stop(); }

  Status Submit(std::span<const uint8_t> payload, totem::Guarantee guarantee) override {
    return node_->Submit(payload, guarantee);
  }
  bool WaitWritable(std::chrono::milliseconds timeout) override {
    return node_->WaitWritable(timeout);
  }
  totem::ConfigurationView CurrentConfiguration() const override {
    return node_->CurrentConfiguration();
  }
  totem::RingStatus GetRingStatus() const override { return node_->GetRingStatus(); }
  totem::Counters GetCounters() const override { return node_->GetCounters(); }
  std::map<std::string, uint64_t> LayerCounters() const override { return {}; }
  GlobalView Global() const override { return {}; }
  void Stop() override { node_->Stop(); }

 private:
  std::unique_ptr<totem::Node> node_;
};

class MultiRingOrdering final : public Ordering {
 public:
  MultiRingOrdering(std::vector<uint32_t> local_rings, OrderingCallbacks callbacks)
      : local_rings_(std::move(local_rings)), callbacks_(std::move(callbacks)) {}
  ~MultiRingOrdering() override { Stop(); }

  // Ordering thread of the MultiRingNode.
  void OnConfiguration(const totem::core::GlobalConfiguration& g) {
    std::vector<totem::ConfigurationEvent> events;
    {
      std::lock_guard<std::mutex> l(mu_);
      events = EngineEvents(have_config_ ? &view_.regular : nullptr, g);
      for (const totem::ConfigurationEvent& e : events) {
        if (e.kind == totem::ConfigurationKind::kTransitional) {
          ++view_.transitional_installs;
        } else {
          view_.regular = e;
          view_.in_transition = false;
          ++view_.regular_installs;
          have_config_ = true;
        }
      }
    }
    for (const totem::ConfigurationEvent& e : events) callbacks_.on_configuration(e);
  }

  void OnDeliver(const totem::core::MultiDelivery& d) {
    if (d.config == totem::ConfigurationId{}) {
      ++unconfigured_skipped_;
      return;
    }
    totem::Delivery out;
    out.config_id = d.config;
    out.sender = d.key.origin;
    out.config_kind = totem::ConfigurationKind::kRegular;
    out.guarantee = d.guarantee;
    out.payload = d.payload;
    callbacks_.on_deliver(out);
  }

  void set_node(std::unique_ptr<totem::MultiRingNode> node) { node_ = std::move(node); }

  Status Submit(std::span<const uint8_t> payload, totem::Guarantee guarantee) override {
    return node_->Submit(payload, guarantee);
  }
  bool WaitWritable(std::chrono::milliseconds timeout) override {
    return node_->WaitWritable(timeout);
  }
  totem::ConfigurationView CurrentConfiguration() const override {
    std::lock_guard<std::mutex> l(mu_);
    return view_;
  }
  totem::RingStatus GetRingStatus() const override { return node_->GetRingStatus(0); }
  totem::Counters GetCounters() const override { return node_->GetRingCounters(0); }
  std::map<std::string, uint64_t> LayerCounters() const override {
    const totem::core::MultiRingCounters c = node_->GetCounters();
    std::map<std::string, uint64_t> m;
    m["mring_submitted"] = c.submitted;
    m["mring_delivered"] = c.delivered;
    m["mring_topology_delivered"] = c.topology_delivered;
    m["mring_forwarded"] = c.forwarded;
    m["mring_reforwarded"] = c.reforwarded;
    m["mring_stubs_forwarded"] = c.stubs_forwarded;
    m["mring_filtered_skipped"] = c.filtered_skipped;
    m["mring_stub_at_destination"] = c.stub_at_destination;
    m["mring_retained_overflow"] = c.retained_overflow;
    m["mring_held_for_sync"] = c.held_for_sync;
    m["mring_unreachable_accepted"] = c.unreachable_accepted;
    m["mring_configurations_delivered"] = c.configurations_delivered;
    m["mring_resyncs_sent"] = c.resyncs_sent;
    m["mring_resyncs_delivered"] = c.resyncs_delivered;
    m["mring_clock_persist_errors"] = c.clock_persist_errors;
    m["mring_guarantee_vectors_sent"] = c.guarantee_vectors_sent;
    m["mring_duplicates_dropped"] = c.duplicates_dropped;
    m["mring_late_dropped"] = c.late_dropped;
    m["mring_malformed_dropped"] = c.malformed_dropped;
    m["mring_unsynced_dropped"] = c.unsynced_dropped;
    m["mring_transitional_dropped"] = c.transitional_dropped;
    m["mring_unconfigured_skipped"] = unconfigured_skipped_.load();
    m["mring_queued_current"] = node_->Queued();
    m["mring_reachable_rings_current"] = node_->Reachable().size();
    return m;
  }
  GlobalView Global() const override {
    GlobalView v;
    v.multi_ring = true;
    v.local_rings = local_rings_;
    v.reachable_rings = node_->Reachable();
    v.blocked_reason = node_->BlockedReason();
    return v;
  }
  void Stop() override {
    if (node_) node_->Stop();
  }

 private:
  const std::vector<uint32_t> local_rings_;
  const OrderingCallbacks callbacks_;
  std::unique_ptr<totem::MultiRingNode> node_;  // set once, right after Start
  mutable std::mutex mu_;
  totem::ConfigurationView view_;  // guarded by mu_
  bool have_config_ = false;       // guarded by mu_
  std::atomic<uint64_t> unconfigured_skipped_{0};
};

}  // namespace

std::vector<totem::ConfigurationEvent> EngineEvents(const totem::ConfigurationEvent* previous,
                                                    const totem::core::GlobalConfiguration& g) {
  return totem::core::GlobalEvsEvents(previous, g);
}

StatusOr<std::unique_ptr<Ordering>> StartSingleRingOrdering(const totem::NodeConfig& config,
                                                            OrderingCallbacks callbacks) {
  totem::Callbacks cb;
  cb.on_deliver = std::move(callbacks.on_deliver);
  cb.on_configuration = std::move(callbacks.on_configuration);
  StatusOr<std::unique_ptr<totem::Node>> node = totem::Node::Start(config, std::move(cb));
  if (!node.ok()) return node.status();
  return std::unique_ptr<Ordering>(new SingleRingOrdering(std::move(*node)));
}

StatusOr<std::unique_ptr<Ordering>> StartMultiRingOrdering(const totem::MultiRingNodeConfig& config,
                                                           OrderingCallbacks callbacks) {
  std::vector<uint32_t> local;
  for (const totem::MultiRingNodeConfig::LocalRing& lr : config.local) local.push_back(lr.ring);
  auto ordering = std::make_unique<MultiRingOrdering>(std::move(local), std::move(callbacks));
  totem::MultiRingCallbacks cb;
  MultiRingOrdering* p = ordering.get();
  cb.on_deliver = [p](const totem::core::MultiDelivery& d) { p->OnDeliver(d); };
  cb.on_topology = [](const totem::core::TopologyEvent& t) {
    std::string gateways, reachable;
    for (totem::NodeId g : t.gateways)
      gateways += (gateways.empty() ? "" : ",") + std::to_string(g);
    for (uint32_t r : t.reachable) reachable += (reachable.empty() ? "" : ",") + std::to_string(r);
    LogInfo(
        Event::kMultiRingTopology,
        {{"kind", t.kind == totem::core::TopologyChangeKind::kBridge ? "bridge" : "ring-gateways"},
         {"ring", t.ring},
         {"other_ring", t.other_ring},
         {"gateways", gateways},
         {"reachable", reachable}});
  };
  cb.on_configuration = [p](const totem::core::GlobalConfiguration& g) { p->OnConfiguration(g); };
  StatusOr<std::unique_ptr<totem::MultiRingNode>> node =
      totem::MultiRingNode::Start(config, std::move(cb));
  if (!node.ok()) return node.status();
  ordering->set_node(std::move(*node));
  return std::unique_ptr<Ordering>(std::move(ordering));
}

}  // namespace totemkv::server
