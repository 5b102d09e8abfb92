// A tiny in-memory network for unit tests of the single-ring core: each
// core's Output queues its packets in one global FIFO, timers are recorded
// but fire only when a test fires them, and deliveries are logged per node.
// The test decides which packet goes next, so every scenario is exact.
#ifndef TOTEM_TESTS_UNIT_FAKE_RING_H_
#define TOTEM_TESTS_UNIT_FAKE_RING_H_

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "totem/core/single_ring.h"

namespace totem::testing {

struct Packet {
  NodeId from = kNoNode;
  NodeId to = kNoNode;  // kNoNode for a multicast
  std::vector<uint8_t> bytes;
  bool is_token() const { return bytes.size() > 3 && bytes[3] == 1; }
};

struct Delivered {
  NodeId sender;
  Guarantee guarantee;
  uint64_t frame_seq;
  std::string payload;
};

class FakeRing {
 public:
  explicit FakeRing(std::vector<NodeId> members,
                    const std::function<void(RingConfig&)>& tweak = nullptr) {
    for (NodeId id : members) {
      RingConfig c;
      c.node_id = id;
      c.members = members;
      if (tweak) tweak(c);
      auto& n = nodes_[id];
      n.out = std::make_unique<Out>(this, id);
      n.ring = std::make_unique<core::SingleRing>(c);
    }
  }

  void StartAll() {
    for (auto& [id, n] : nodes_) n.ring->Start(now_, *n.out);
  }

  core::SingleRing& ring(NodeId id) { return *nodes_.at(id).ring; }
  const std::vector<Delivered>& delivered(NodeId id) { return nodes_.at(id).delivered; }
  std::vector<ConfigurationEvent>& configs(NodeId id) { return nodes_.at(id).configs; }
  bool timer_armed(NodeId id, core::TimerId t) { return nodes_.at(id).timers[static_cast<int>(t)]; }
  uint64_t timer_delay(NodeId id, core::TimerId t) {
    return nodes_.at(id).delays[static_cast<int>(t)];
  }

  Status Submit(NodeId id, const std::string& payload, Guarantee g = Guarantee::kAgreed) {
    auto& n = nodes_.at(id);
    return n.ring->Submit(
        std::span(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()), g, now_,
        *n.out);
  }

  // Delivers the next queued packet (to every recipient for a multicast).
  // `drop(packet, recipient)` may discard it for one recipient.
  bool Step(const std::function<bool(const Packet&, NodeId)>& drop = nullptr) {
    if (queue_.empty()) return false;
    Packet p = std::move(queue_.front());
    queue_.pop_front();
    for (auto& [id, n] : nodes_) {
      if (id == p.from && p.to != id) continue;
      if (p.to != kNoNode && p.to != id) continue;
      if (drop && drop(p, id)) continue;
      n.ring->HandleFrame(p.bytes, now_, *n.out);
    }
    return true;
  }

  // Runs until `done()` or `max_steps` packets were moved.
  bool RunUntil(const std::function<bool()>& done, int max_steps = 100000,
                const std::function<bool(const Packet&, NodeId)>& drop = nullptr) {
    for (int i = 0; i < max_steps; ++i) {
      if (done()) return true;
      if (!Step(drop)) {
        // Nothing in flight: fire the armed timers (virtual time passes).
        bool fired = false;
        for (auto& [id, n] : nodes_) {
          for (int t = 0; t < static_cast<int>(core::TimerId::kCount); ++t) {
            if (n.timers[t]) {
              n.timers[t] = false;
              n.ring->HandleTimer(static_cast<core::TimerId>(t), now_, *n.out);
              fired = true;
            }
          }
        }
        if (!fired) return done();
      }
    }
    return done();
  }

  void Fire(NodeId id, core::TimerId t) {
    auto& n = nodes_.at(id);
    n.timers[static_cast<int>(t)] = false;
    n.ring->HandleTimer(t, now_, *n.out);
  }

  std::deque<Packet>& queue() { return queue_; }

 private:
  class Out : public core::Output {
   public:
    Out(FakeRing* net, NodeId id) : net_(net), id_(id) {}
    void Unicast(NodeId to, std::span<const uint8_t> f) override {
      net_->queue_.push_back(Packet{id_, to, {f.begin(), f.end()}});
    }
    void Multicast(std::span<const uint8_t> f) override {
      net_->queue_.push_back(Packet{id_, kNoNode, {f.begin(), f.end()}});
    }
    void SetTimer(core::TimerId t, uint64_t delay_us) override {
      net_->nodes_.at(id_).timers[static_cast<int>(t)] = true;
      net_->nodes_.at(id_).delays[static_cast<int>(t)] = delay_us;
    }
    void CancelTimer(core::TimerId t) override {
      net_->nodes_.at(id_).timers[static_cast<int>(t)] = false;
    }
    void Deliver(const Delivery& d) override {
      net_->nodes_.at(id_).delivered.push_back(Delivered{
          d.sender, d.guarantee, d.frame_seq, std::string(d.payload.begin(), d.payload.end())});
    }
    void DeliverConfiguration(const ConfigurationEvent& e) override {
      net_->nodes_.at(id_).configs.push_back(e);
    }

   private:
    FakeRing* net_;
    NodeId id_;
  };
  struct NodeState {
    std::unique_ptr<Out> out;
    std::unique_ptr<core::SingleRing> ring;
    bool timers[static_cast<int>(core::TimerId::kCount)] = {};
    uint64_t delays[static_cast<int>(core::TimerId::kCount)] = {};
    std::vector<Delivered> delivered;
    std::vector<ConfigurationEvent> configs;
  };
  std::map<NodeId, NodeState> nodes_;
  std::deque<Packet> queue_;
  uint64_t now_ = 0;
};

}  // namespace totem::testing

#endif  // TOTEM_TESTS_UNIT_FAKE_RING_H_
