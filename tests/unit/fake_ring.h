// A tiny in-memory network for unit tests of the single-ring core: each
// core's Output queues its packets in one global FIFO, timers are recorded
// but fire only when a test fires them, and deliveries are logged per node.
// The test decides which packet goes next, so every scenario is exact.
#ifndef TOTEM_TESTS_UNIT_FAKE_RING_H_
#define TOTEM_TESTS_UNIT_FAKE_RING_H_

#include <algorithm>
#include <cstdlib>
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
  bool is_data() const { return bytes.size() > 3 && bytes[3] == 2; }
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
      n.config = c;
      n.out = std::make_unique<Out>(this, id);
      n.ring = std::make_unique<core::SingleRing>(c);
    }
  }

  void StartAll() {
    for (auto& [id, n] : nodes_) n.ring->Start(now_, *n.out);
  }

  // Starts every node and runs until all of them installed one ring of all
  // members (joins, consensus, commit token, recovery).
  void FormRing() {
    StartAll();
    const size_t all = nodes_.size();
    bool ok = RunUntil([&] {
      for (auto& [id, n] : nodes_) {
        if (n.ring->membership_state() != core::MembershipState::kOperational ||
            n.ring->ring_members().size() != all) {
          return false;
        }
      }
      return true;
    });
    if (!ok) std::abort();
  }
  uint64_t now() const { return now_; }
  // Virtual time passes without any event (a process pause, say).
  void Advance(uint64_t us) { now_ += us; }
  static constexpr uint64_t kPacketUs = 10;  // each packet moved takes this long

  core::SingleRing& ring(NodeId id) { return *nodes_.at(id).ring; }

  // Moves packets until the only packet in flight is the token, addressed
  // to `to` (rings with holding disabled only).
  void SettleTokenTo(NodeId to) {
    for (int i = 0; i < 100000; ++i) {
      if (queue_.size() == 1 && queue_.front().is_token() && queue_.front().to == to) return;
      if (!Step()) FireNextTimer();
    }
    std::abort();
  }

  // A crashed node receives nothing and its timers never fire.
  void Crash(NodeId id) {
    auto& n = nodes_.at(id);
    n.crashed = true;
    for (bool& t : n.timers) t = false;
  }
  // Restarts a crashed node with the ring sequence it persisted.
  void Restart(NodeId id) {
    auto& n = nodes_.at(id);
    n.ring = std::make_unique<core::SingleRing>(n.config, n.persisted_ring_seq);
    n.crashed = false;
    n.delivered.clear();
    n.configs.clear();
    n.ring->Start(now_, *n.out);
  }
  // Packets between different groups are lost; nodes in no group are alone.
  void Partition(std::vector<std::vector<NodeId>> groups) { groups_ = std::move(groups); }
  void Heal() { groups_.clear(); }
  bool Connected(NodeId a, NodeId b) const {
    if (groups_.empty()) return true;
    for (const auto& g : groups_) {
      bool ha = std::find(g.begin(), g.end(), a) != g.end();
      bool hb = std::find(g.begin(), g.end(), b) != g.end();
      if (ha || hb) return ha && hb;
    }
    return false;
  }
  // True once the given nodes are all operational in one ring of exactly them.
  bool OneRing(const std::vector<NodeId>& ids) {
    std::vector<NodeId> want = ids;
    std::sort(want.begin(), want.end());
    for (NodeId id : ids) {
      const auto& r = *nodes_.at(id).ring;
      if (r.membership_state() != core::MembershipState::kOperational || r.ring_members() != want ||
          r.ring_id() != nodes_.at(ids[0]).ring->ring_id()) {
        return false;
      }
    }
    return true;
  }
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
    now_ += kPacketUs;
    if (nodes_.at(p.from).crashed) return true;  // never left the crashed node
    for (auto& [id, n] : nodes_) {
      if (id == p.from && p.to != id) continue;
      if (p.to != kNoNode && p.to != id) continue;
      if (n.crashed || !Connected(p.from, id)) continue;
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
      if (FireDueTimer()) continue;
      if (!Step(drop)) {
        // Nothing in flight: virtual time jumps to the earliest armed timer.
        if (!FireNextTimer()) return done();
      }
    }
    return done();
  }

  // Fires the earliest timer if it is already due (packets keep flowing on
  // a busy ring, but time passes and timers fire all the same).
  bool FireDueTimer() {
    for (auto& [id, n] : nodes_) {
      if (n.crashed) continue;
      for (int t = 0; t < static_cast<int>(core::TimerId::kCount); ++t) {
        if (n.timers[t] && n.deadlines[t] <= now_) {
          n.timers[t] = false;
          n.ring->HandleTimer(static_cast<core::TimerId>(t), now_, *n.out);
          return true;
        }
      }
    }
    return false;
  }

  bool FireNextTimer() {
    NodeState* best = nullptr;
    int best_t = 0;
    for (auto& [id, n] : nodes_) {
      if (n.crashed) continue;
      for (int t = 0; t < static_cast<int>(core::TimerId::kCount); ++t) {
        if (n.timers[t] && (best == nullptr || n.deadlines[t] < best->deadlines[best_t])) {
          best = &n;
          best_t = t;
        }
      }
    }
    if (best == nullptr) return false;
    now_ = std::max(now_, best->deadlines[best_t]);
    best->timers[best_t] = false;
    best->ring->HandleTimer(static_cast<core::TimerId>(best_t), now_, *best->out);
    return true;
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
      net_->nodes_.at(id_).deadlines[static_cast<int>(t)] = net_->now_ + delay_us;
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
    void PersistRingSeq(uint64_t seq) override { net_->nodes_.at(id_).persisted_ring_seq = seq; }

   private:
    FakeRing* net_;
    NodeId id_;
  };
  struct NodeState {
    RingConfig config;
    bool crashed = false;
    uint64_t persisted_ring_seq = 0;
    std::unique_ptr<Out> out;
    std::unique_ptr<core::SingleRing> ring;
    bool timers[static_cast<int>(core::TimerId::kCount)] = {};
    uint64_t delays[static_cast<int>(core::TimerId::kCount)] = {};
    uint64_t deadlines[static_cast<int>(core::TimerId::kCount)] = {};
    std::vector<Delivered> delivered;
    std::vector<ConfigurationEvent> configs;
  };
  std::map<NodeId, NodeState> nodes_;
  std::deque<Packet> queue_;
  std::vector<std::vector<NodeId>> groups_;
  uint64_t now_ = 0;
};

}  // namespace totem::testing

#endif  // TOTEM_TESTS_UNIT_FAKE_RING_H_
