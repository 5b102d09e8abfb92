// The store simulation (see kv_sim.h): KvApp, the totem::sim::App that runs
// one replication engine per node with its InMemoryStorage, the clients,
// the trap script, and the checker of the store's guarantees.
#include "kvstore/sim/kv_sim.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <tuple>
#include <utility>
#include <vector>

#include "kvstore/replication.h"
#include "kvstore/sim/in_memory_storage.h"
#include "totem/sim/random.h"

namespace kvstore::sim {

const char* KvInjectedFaultName(KvInjectedFault f) {
  switch (f) {
    case KvInjectedFault::kNone:
      return "none";
    case KvInjectedFault::kAckRejectedOp:
      return "ack-rejected-op";
    case KvInjectedFault::kDropReplicaOp:
      return "drop-replica-op";
    case KvInjectedFault::kWrongGetResult:
      return "wrong-get-result";
  }
  return "unknown";
}

bool ParseKvInjectedFault(const std::string& name, KvInjectedFault* out) {
  for (KvInjectedFault f : {KvInjectedFault::kNone, KvInjectedFault::kAckRejectedOp,
                            KvInjectedFault::kDropReplicaOp, KvInjectedFault::kWrongGetResult}) {
    if (name == KvInjectedFaultName(f)) {
      *out = f;
      return true;
    }
  }
  return false;
}

std::string ValidateKvSimOptions(const KvSimOptions& o) {
  if (o.clients == 0 || o.clients > 64) return "--clients must be in [1, 64]";
  if (o.keys == 0 || o.keys > 1000) return "--keys must be in [1, 1000]";
  if (o.client_timeout_ms == 0) return "--client-timeout-ms must be positive";
  if (o.retry_same_id_percent > 100) return "--retry-percent must be in [0, 100]";
  if (o.log_retention == 0) return "--log-retention must be positive";
  if (o.snapshot_chunk_bytes == 0) return "--chunk-bytes must be positive";
  if (o.transfer_window == 0) return "--transfer-window must be positive";
  if (o.trap && (o.sim.nodes != 5 || o.sim.faults != 0)) {
    return "--trap needs --nodes 5 and no drawn faults";
  }
  totem::sim::SimOptions s = o.sim;
  s.app = reinterpret_cast<totem::sim::App*>(1);  // only validated, never called
  s.app_final_heal = o.trap;
  return totem::sim::ValidateOptions(s);
}

namespace {

using repl::Effects;
using repl::Engine;
using repl::EngineOptions;
using repl::Input;
using repl::Role;
using totem::ConfigurationEvent;
using totem::Delivery;
using totem::NodeId;
using totem::RingId;
using totem::Status;
using totem::StatusCode;
using totem::sim::AppContext;
using totem::sim::FaultSpec;

std::string IdString(const OpId& id) {
  // Ids are (client, counter): print them so.
  const uint32_t client = static_cast<uint32_t>(id[0]) | (static_cast<uint32_t>(id[1]) << 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(id[8 + i]) << (8 * i);
  return "c" + std::to_string(client) + "#" + std::to_string(n);
}

OpId MakeId(uint32_t client, uint64_t n) {
  OpId id{};
  id[0] = static_cast<uint8_t>(client);
  id[1] = static_cast<uint8_t>(client >> 8);
  id[2] = 0x4B;  // never all zero
  for (int i = 0; i < 8; ++i) id[8 + i] = static_cast<uint8_t>(n >> (8 * i));
  return id;
}

std::string DescribeOp(const OpRecord& op) {
  std::optional<KvOp> kv = DecodeKvOp(op.payload);
  std::string s = IdString(op.op_id) + "@" + std::to_string(op.origin) + " ";
  if (!kv) return s + "?";
  return s + (kv->is_get ? "get " + kv->key : "put " + kv->key + "=" + kv->value);
}

enum TimerType : uint64_t {
  kFlush = 1,
  kClientIssue = 2,
  kClientTimeout = 3,
  kLiveness = 4,
  kScript = 5,
};
uint64_t Token(TimerType type, uint64_t a, uint64_t b) { return (type << 56) | (a << 32) | b; }

class KvApp final : public totem::sim::App {
 public:
  explicit KvApp(const KvSimOptions& o) : opt_(o), n_(o.sim.nodes), nodes_(o.sim.nodes + 1) {}

  KvSimResult& result() { return result_; }

  // ---- App ----------------------------------------------------------------
  void Attach(AppContext* ctx) override {
    ctx_ = ctx;
    const uint32_t count = opt_.clients + (opt_.trap ? 1 : 0);
    for (uint32_t c = 0; c < count; ++c) {
      Client cl;
      cl.id = c;
      cl.node = static_cast<NodeId>(c % n_ + 1);
      cl.scripted = opt_.trap && c == opt_.clients;
      clients_.push_back(cl);
      if (!cl.scripted) ctx_->ScheduleTimer(Rand(1000, 20'000), Token(kClientIssue, c, 0));
    }
    if (opt_.trap) ctx_->ScheduleTimer(5'000, Token(kScript, 0, 0));
  }

  void OnNodeStart(NodeId node, bool wiped) override {
    Node& nd = nodes_[node];
    if (wiped || nd.disk == nullptr) {
      if (nd.disk != nullptr) ++wiped_disks_;
      nd.disk = std::make_unique<InMemoryStorage>(opt_.log_retention, opt_.snapshot_chunk_bytes);
      nd.wiped = wiped;
      shadow_[node].clear();
      InMemoryStorage::Observer ob;
      ob.applied = [this, node](uint64_t index, uint64_t hash, uint64_t prev, const OpRecord& op) {
        chain_.try_emplace({index, hash}, op, prev);
        shadow_[node][index] = hash;
      };
      ob.installed = [this, node](const Meta& m) {
        shadow_[node].clear();
        shadow_[node][m.green] = m.green_hash;
      };
      nd.disk->set_observer(std::move(ob));
      if (opt_.inject == KvInjectedFault::kDropReplicaOp && node == n_ && !drop_armed_) {
        drop_armed_ = true;
        nd.disk->InjectDropNextOp();
      }
    }
    EngineOptions eo;
    eo.self = node;
    for (NodeId m = 1; m <= n_; ++m) eo.bootstrap_members.push_back(m);
    eo.transfer_chunk_bytes = opt_.snapshot_chunk_bytes;
    eo.transfer_window = opt_.transfer_window;
    nd.engine = std::make_unique<Engine>(eo, nd.disk.get());
    nd.outbox.clear();
    ++nd.incarnation;
    nd.was_primary = false;
    Trace(node, std::string("kv start") + (wiped ? " WIPED" : "") +
                    " green=" + std::to_string(nd.disk->meta().green));
  }

  void OnNodeCrash(NodeId node) override {
    Node& nd = nodes_[node];
    nd.engine.reset();
    nd.outbox.clear();
    waiting_at_[node].clear();  // the clients find out by their timeout
    Trace(node, "kv crash");
  }

  void OnConfiguration(NodeId node, const ConfigurationEvent& event) override {
    Input in;
    in.kind = Input::Kind::kConfiguration;
    in.configuration = event;
    Feed(node, in);
  }

  void OnDelivery(NodeId node, const Delivery& d) override {
    Input in;
    in.kind = Input::Kind::kDelivery;
    in.sender = d.sender;
    in.config_kind = d.config_kind;
    in.ring = d.config_id;
    in.payload.assign(d.payload.begin(), d.payload.end());
    Feed(node, in);
  }

  void OnTimer(uint64_t token) override {
    const uint64_t type = token >> 56;
    const uint32_t a = static_cast<uint32_t>((token >> 32) & 0xFFFFFF);
    const uint32_t b = static_cast<uint32_t>(token);
    switch (type) {
      case kFlush:
        Flush(a, b);
        break;
      case kClientIssue:
        Issue(clients_[a]);
        break;
      case kClientTimeout: {
        Client& c = clients_[a];
        if (c.waiting && c.serial == b) {
          if (opt_.inject == KvInjectedFault::kAckRejectedOp && !ack_reject_done_) {
            ack_reject_done_ = true;
            RecordAck(c.at, c.op_id, 0, kPutOk);
            return;
          }
          waiting_at_[c.at].erase(c.op_id);
          Complete(c, Outcome::kUnknown, "client timeout", 0);
        }
        break;
      }
      case kLiveness:
        deadline_passed_ = true;
        CheckConverged();
        if (liveness_required_ && !converged_) {
          Fail("liveness: " + std::to_string(opt_.liveness_ms) +
               " ms after the final heal the live replicas do not serve in one primary: " +
               ReplicaSummary());
        }
        break;
      case kScript:
        Script();
        break;
      default:
        Fail("unknown timer token");
    }
  }

  void OnStable(uint64_t stable_us) override {
    stable_ = true;
    // (f) applies if a majority of the configured set is up with its data,
    // or every member is up (then they go on together whatever their
    // disks hold: replication.h).
    uint32_t with_data = 0, live = 0;
    for (NodeId m = 1; m <= n_; ++m) {
      if (!ctx_->IsUp(m)) continue;
      ++live;
      if (nodes_[m].disk && nodes_[m].disk->meta().prim_number > 0) ++with_data;
    }
    liveness_required_ = with_data * 2 > n_ || live == n_;
    result_.liveness_required = liveness_required_;
    ctx_->ScheduleTimer(stable_us + opt_.liveness_ms * 1000, Token(kLiveness, 0, 0));
    Trace(0, std::string("kv stable; liveness ") + (liveness_required_ ? "required" : "exempt"));
  }

  bool Done() const override {
    if (!stable_) return false;
    for (const Client& c : clients_) {
      if (!c.scripted && c.done_ops < opt_.ops_per_client) return false;
    }
    if (opt_.trap && script_step_ < 100) return false;
    return liveness_required_ ? converged_ : deadline_passed_;
  }

  std::string NotDoneReason() const override {
    uint32_t busy = 0;
    for (const Client& c : clients_) busy += !c.scripted && c.done_ops < opt_.ops_per_client;
    return "store: " + std::to_string(busy) + " clients busy, stable=" + std::to_string(stable_) +
           " converged=" + std::to_string(converged_) +
           " script_step=" + std::to_string(script_step_) + "; " + ReplicaSummary();
  }

  void OnEnd() override {
    CheckConverged();
    if (liveness_required_ && !converged_) {
      Fail("liveness: the live replicas do not serve in one primary at the end: " +
           ReplicaSummary());
      return;
    }
    FinalChecks();
    for (NodeId m = 1; m <= n_; ++m) {
      if (!nodes_[m].disk) continue;
      result_.snapshots += nodes_[m].disk->snapshots_installed();
    }
  }

 private:
  enum class Outcome { kPending, kOk, kUnknown };
  struct Node {
    std::unique_ptr<InMemoryStorage> disk;
    std::unique_ptr<Engine> engine;
    std::deque<Effects::Message> outbox;
    uint32_t incarnation = 0;
    bool flush_scheduled = false;
    bool wiped = false;
    bool was_primary = false;
    uint64_t installs = 0;
  };
  struct Client {
    uint32_t id = 0;
    NodeId node = 1;  // where the next op goes
    NodeId at = 0;    // where the pending op went
    bool scripted = false;
    bool waiting = false;
    bool last_unknown = false;
    uint32_t done_ops = 0;
    uint64_t counter = 0;
    uint32_t serial = 0;
    OpId op_id{};
    OpRecord op;
    size_t invocation = 0;
  };
  struct Invocation {
    OpId id{};
    uint32_t client = 0;
    NodeId node = 0;
    uint64_t invoke_us = 0;
    uint64_t response_us = 0;
    Outcome outcome = Outcome::kPending;
    std::string result;
    uint64_t index = 0;
  };
  // One op id over its retries.
  struct Logical {
    OpRecord op;
    uint64_t first_invoke_us = 0;
    bool acked = false;
    uint64_t first_ack_us = 0;
    std::string result;
    uint64_t index = 0;
  };

  uint64_t Rand(uint64_t lo, uint64_t hi) { return ctx_->random().Range(lo, hi); }
  uint64_t now() const { return ctx_->now_us(); }

  void Fail(const std::string& what) {
    if (!result_.ok) return;
    result_.ok = false;
    result_.first_violation = what;
    ctx_->Fail("store: " + what);
  }

  void Trace(NodeId node, const std::string& what) {
    if (ctx_ != nullptr && ctx_->tracing()) ctx_->Trace(node, what);
  }

  // ---- the engine ------------------------------------------------------------
  void Feed(NodeId node, const Input& in) {
    Node& nd = nodes_[node];
    if (!nd.engine) return;
    Effects fx;
    Status s = nd.engine->Step(in, &fx);
    if (!s.ok()) {
      Fail("node " + std::to_string(node) + " engine failed: " + s.ToString());
      return;
    }
    if (fx.role_changed) {
      Trace(node, std::string("kv role ") + repl::RoleName(nd.engine->role()) + " green=" +
                      std::to_string(nd.engine->meta().green) + " " + nd.engine->reason());
    }
    for (Effects::Message& m : fx.send) nd.outbox.push_back(std::move(m));
    if (!nd.outbox.empty() && !nd.flush_scheduled) {
      nd.flush_scheduled = true;
      ctx_->ScheduleTimer(now(), Token(kFlush, node, nd.incarnation));
    }
    CheckNode(node);
    for (const Effects::Ack& a : fx.acks) OnAck(node, a);
    for (const Effects::Reject& r : fx.rejects) OnReject(node, r);
    if (stable_) CheckConverged();
  }

  void Flush(NodeId node, uint32_t incarnation) {
    Node& nd = nodes_[node];
    if (nd.incarnation != incarnation || !ctx_->IsUp(node)) return;
    nd.flush_scheduled = false;
    while (!nd.outbox.empty()) {
      const Effects::Message& m = nd.outbox.front();
      Status s = ctx_->Submit(node,
                              std::span<const uint8_t>(
                                  reinterpret_cast<const uint8_t*>(m.bytes.data()), m.bytes.size()),
                              m.guarantee);
      if (s.ok()) {
        nd.outbox.pop_front();
        continue;
      }
      if (s.code() == StatusCode::kWouldBlock) {
        nd.flush_scheduled = true;
        ctx_->ScheduleTimer(now() + 1000, Token(kFlush, node, nd.incarnation));
        return;
      }
      Fail("submit at node " + std::to_string(node) + ": " + s.ToString());
      return;
    }
  }

  // ---- clients -------------------------------------------------------------
  NodeId NextNode(NodeId from) const { return static_cast<NodeId>(from % n_ + 1); }

  void Issue(Client& c) {
    if (c.waiting || (!c.scripted && c.done_ops >= opt_.ops_per_client)) return;
    NodeId node = c.node;
    for (uint32_t i = 0; i < n_ && !ctx_->IsUp(node); ++i) node = NextNode(node);
    if (!ctx_->IsUp(node)) {
      ctx_->ScheduleTimer(now() + 10'000, Token(kClientIssue, c.id, 0));
      return;
    }
    c.node = node;
    const bool retry =
        c.last_unknown && !c.scripted && ctx_->random().Below(100) < opt_.retry_same_id_percent;
    if (!retry && !c.scripted) {
      KvOp kv;
      kv.is_get = ctx_->random().Chance(0.4);
      kv.key = "k" + std::to_string(ctx_->random().Below(opt_.keys));
      ++c.counter;
      if (!kv.is_get) kv.value = "v" + std::to_string(c.id) + "." + std::to_string(c.counter);
      c.op_id = MakeId(c.id, c.counter);
      c.op = OpRecord{};
      c.op.op_id = c.op_id;
      c.op.payload = EncodeKvOp(kv);
    }
    c.op.origin = node;  // the node answering this attempt
    Submit(c, node);
  }

  void Submit(Client& c, NodeId node) {
    Node& nd = nodes_[node];
    c.waiting = true;
    c.at = node;
    ++c.serial;
    Invocation inv;
    inv.id = c.op_id;
    inv.client = c.id;
    inv.node = node;
    inv.invoke_us = now();
    c.invocation = invocations_.size();
    invocations_.push_back(inv);
    ++result_.ops_invoked;
    auto [it, fresh] = logical_.try_emplace(c.op_id);
    if (fresh) {
      it->second.op = c.op;
      it->second.first_invoke_us = now();
    }
    waiting_at_[node][c.op_id] = c.id;
    nd.outbox.push_back({Engine::EncodeOp(c.op), totem::Guarantee::kSafe});
    if (!nd.flush_scheduled) {
      nd.flush_scheduled = true;
      ctx_->ScheduleTimer(now(), Token(kFlush, node, nd.incarnation));
    }
    ctx_->ScheduleTimer(now() + opt_.client_timeout_ms * 1000,
                        Token(kClientTimeout, c.id, c.serial));
    Trace(node, "kv invoke " + DescribeOp(c.op));
  }

  void Complete(Client& c, Outcome outcome, const std::string& result, uint64_t index) {
    Invocation& inv = invocations_[c.invocation];
    inv.response_us = now();
    inv.outcome = outcome;
    inv.result = result;
    inv.index = index;
    c.waiting = false;
    ++c.done_ops;
    Trace(c.at, "kv " + std::string(outcome == Outcome::kOk ? "ok " : "unknown ") +
                    IdString(c.op_id) + " -> " + result);
    if (outcome == Outcome::kOk) {
      ++result_.acked;
      c.last_unknown = false;
    } else {
      ++result_.unknown;
      c.last_unknown = true;
      c.node = NextNode(c.at);
    }
    if (c.scripted) {
      ScriptOpDone(outcome == Outcome::kOk);
      return;
    }
    if (c.done_ops < opt_.ops_per_client) {
      ctx_->ScheduleTimer(now() + Rand(0, opt_.think_max_ms * 1000), Token(kClientIssue, c.id, 0));
    }
  }

  Client* WaitingClient(NodeId node, const OpId& id) {
    auto it = waiting_at_[node].find(id);
    if (it == waiting_at_[node].end()) return nullptr;
    Client& c = clients_[it->second];
    waiting_at_[node].erase(it);
    if (!c.waiting || c.at != node || c.op_id != id) return nullptr;
    return &c;
  }

  void OnAck(NodeId node, const Effects::Ack& a) {
    {
      const Meta& m = nodes_[node].engine->meta();
      acked_rings_.insert(m.prim_ring);
      for (const RingId& r : prim_rings_[m.prim_number]) {
        if (r.seq > m.prim_ring.seq) {
          Fail("node " + std::to_string(node) + " acknowledged an op in primary #" +
               std::to_string(m.prim_number) + " of ring " + m.prim_ring.ToString() +
               ", superseded by ring " + r.ToString() + " with the same number");
          return;
        }
      }
    }
    std::optional<std::string> r = nodes_[node].disk->state().ResultOf(a.op_id);
    if (!r) {
      Fail("node " + std::to_string(node) + " acknowledged " + IdString(a.op_id) + " at index " +
           std::to_string(a.index) + " but its state machine never applied it");
      return;
    }
    std::string result = *r;
    if (opt_.inject == KvInjectedFault::kWrongGetResult && !wrong_get_done_ &&
        DecodeKvOp(logical_[a.op_id].op.payload).value_or(KvOp{}).is_get) {
      wrong_get_done_ = true;
      result = "v-never-written";
    }
    RecordAck(node, a.op_id, a.index, result);
  }

  void RecordAck(NodeId node, const OpId& id, uint64_t index, const std::string& result) {
    if (result_.amnesia) return;  // see CheckNode
    // (b)/(d): the acknowledged index holds this op in the committed lineage.
    if (index == 0 || index > fixed_upto_ || fixed_ops_[index].op_id != id) {
      Fail("node " + std::to_string(node) + " told a client " + IdString(id) +
           " succeeded at index " + std::to_string(index) + " but the committed lineage (up to " +
           std::to_string(fixed_upto_) + ") has " +
           (index >= 1 && index <= fixed_upto_ ? DescribeOp(fixed_ops_[index]) : "nothing") +
           " there");
      return;
    }
    Logical& l = logical_[id];
    if (l.acked && l.result != result) {
      Fail("two acks of " + IdString(id) + " disagree: '" + l.result + "' and '" + result + "'");
      return;
    }
    if (!l.acked) {
      l.acked = true;
      l.first_ack_us = now();
      l.result = result;
      l.index = index;
    }
    if (Client* c = WaitingClient(node, id)) Complete(*c, Outcome::kOk, result, index);
  }

  void OnReject(NodeId node, const Effects::Reject& r) {
    if (opt_.inject == KvInjectedFault::kAckRejectedOp && !ack_reject_done_) {
      ack_reject_done_ = true;
      RecordAck(node, r.op_id, nodes_[node].disk->meta().green + 1, kPutOk);
      return;
    }
    if (Client* c = WaitingClient(node, r.op_id)) Complete(*c, Outcome::kUnknown, r.message, 0);
  }

  // ---- checks after each step ----------------------------------------------------
  // The op at (index, hash) and the hash before it, from any replica's
  // applications; nullptr if nobody applied it.
  const std::pair<OpRecord, uint64_t>* Chain(uint64_t index, uint64_t hash) const {
    auto it = chain_.find({index, hash});
    return it == chain_.end() ? nullptr : &it->second;
  }

  // Walks back from (index, hash) to `down_to` (exclusive): the ops in
  // order. False if the chain has a hole or does not pass through
  // fixed_hash_[down_to].
  bool Walk(uint64_t index, uint64_t hash, uint64_t down_to, std::vector<OpRecord>* ops,
            std::vector<uint64_t>* hashes, std::string* why) const {
    std::vector<OpRecord> rev_ops;
    std::vector<uint64_t> rev_hashes;
    uint64_t i = index, h = hash;
    while (i > down_to) {
      const auto* e = Chain(i, h);
      if (e == nullptr) {
        *why = "no replica applied index " + std::to_string(i) + " with hash " + std::to_string(h);
        return false;
      }
      rev_ops.push_back(e->first);
      rev_hashes.push_back(h);
      h = e->second;
      --i;
    }
    if (h != fixed_hash_[down_to]) {
      *why = "its hash at index " + std::to_string(down_to) + " differs from the committed one";
      return false;
    }
    if (ops != nullptr) ops->assign(rev_ops.rbegin(), rev_ops.rend());
    if (hashes != nullptr) hashes->assign(rev_hashes.rbegin(), rev_hashes.rend());
    return true;
  }

  void CheckNode(NodeId node) {
    Node& nd = nodes_[node];
    const Engine& e = *nd.engine;
    const bool primary = e.role() == Role::kPrimary;
    if (primary && !nd.was_primary) OnInstall(node);
    nd.was_primary = primary;
    // Every disk holding data was wiped (outside the fault model): the
    // history starts over and the lineage checks stop.
    if (!primary || result_.amnesia) return;
    const Meta& m = e.meta();
    // A phantom primary (superseded by a later ring with the same number,
    // see OnInstall) may hold ops off the committed lineage: it can never
    // acknowledge them (OnAck checks that), and its members are rebuilt
    // when they meet the later primary's lineage.
    for (const RingId& r : prim_rings_[m.prim_number]) {
      if (r.seq > m.prim_ring.seq) return;
    }
    // (a) the lineage this replica serves extends the committed one.
    std::string why;
    if (m.green <= fixed_upto_) {
      if (fixed_hash_[m.green] != m.green_hash) {
        Fail("node " + std::to_string(node) + " serves in primary " +
             e.configuration().id.ToString() + " at index " + std::to_string(m.green) +
             " off the committed lineage");
        return;
      }
    } else if (!Walk(m.green, m.green_hash, fixed_upto_, nullptr, nullptr, &why)) {
      Fail("node " + std::to_string(node) + " serves in primary " +
           e.configuration().id.ToString() + " a lineage (green " + std::to_string(m.green) +
           ") that does not extend the committed one: " + why);
      return;
    }
    // Fix what its commit index covers.
    const uint64_t c = std::min(e.commit_index(), m.green);
    if (c > fixed_upto_) {
      auto sh = shadow_[node].find(c);
      uint64_t hash = m.green_hash;
      if (c != m.green) {
        if (sh == shadow_[node].end()) return;  // rebuilt past it; another replica will fix it
        hash = sh->second;
      }
      std::vector<OpRecord> ops;
      std::vector<uint64_t> hashes;
      if (!Walk(c, hash, fixed_upto_, &ops, &hashes, &why)) {
        Fail("committed lineage broken at node " + std::to_string(node) + ": " + why);
        return;
      }
      for (size_t i = 0; i < ops.size(); ++i) {
        fixed_ops_.push_back(ops[i]);
        fixed_hash_.push_back(hashes[i]);
      }
      fixed_upto_ = c;
    }
    // (e) replicas of this primary at the same index are identical.
    const auto key = std::make_tuple(e.configuration().id, m.green);
    const auto value = std::make_pair(m.green_hash, nd.disk->state().checksum());
    auto [it, fresh] = same_index_.try_emplace(key, value, node);
    if (!fresh && it->second.first != value) {
      Fail("replicas " + std::to_string(it->second.second) + " and " + std::to_string(node) +
           " of primary " + e.configuration().id.ToString() + " differ at index " +
           std::to_string(m.green) + " (green hash " + std::to_string(it->second.first.first) +
           " vs " + std::to_string(value.first) + ", state checksum " +
           std::to_string(it->second.first.second) + " vs " + std::to_string(value.second) + ")");
    }
  }

  void OnInstall(NodeId node) {
    ++result_.primaries;
    const Engine& e = *nodes_[node].engine;
    const Meta& m = e.meta();
    // Primaries are numbered consecutively along one history. Two rings
    // may install the same number only when the earlier one was a
    // "phantom": installed by the minority that delivered the install
    // point in its regular configuration, so it acknowledged nothing
    // (replication.cc, MoreAdvanced); the later ring (higher ring seq)
    // supersedes it. A superseded ring that acknowledged ops means two
    // histories.
    std::set<RingId>& rings = prim_rings_[m.prim_number];
    rings.insert(m.prim_ring);
    for (const RingId& r : rings) {
      if (r.seq < m.prim_ring.seq && acked_rings_.count(r) != 0) {
        // Excusable only as amnesia: primary #1 again because every
        // replica holding data was wiped (outside the fault model).
        std::string holders;
        for (NodeId q = 1; q <= n_; ++q) {
          if (nodes_[q].disk && nodes_[q].disk->meta().prim_number > 0 &&
              !Contains(e.configuration().members, q)) {
            holders += " " + std::to_string(q);
          }
        }
        if (m.prim_number != 1 || !holders.empty()) {
          Fail("primary number " + std::to_string(m.prim_number) + " installed by ring " +
               m.prim_ring.ToString() + " (node " + std::to_string(node) + ") after ring " +
               r.ToString() +
               " had installed it and acknowledged ops; nodes holding primary data outside "
               "the new one:" +
               holders);
          return;
        }
        result_.amnesia = true;
      }
    }
    Trace(node, "kv INSTALLED primary " + e.configuration().id.ToString() + " #" +
                    std::to_string(m.prim_number) + " green=" + std::to_string(m.green));
  }

  static bool Contains(const std::vector<NodeId>& v, NodeId x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  }

  // ---- liveness ------------------------------------------------------------
  std::string ReplicaSummary() const {
    std::string s;
    for (NodeId m = 1; m <= n_; ++m) {
      const Node& nd = nodes_[m];
      s += " [" + std::to_string(m) + ":";
      if (!nd.engine) {
        s += "down]";
        continue;
      }
      s += std::string(repl::RoleName(nd.engine->role())) + " " +
           nd.engine->configuration().id.ToString() +
           " green=" + std::to_string(nd.engine->meta().green) + " prim#" +
           std::to_string(nd.engine->meta().prim_number) + " " + nd.engine->reason() + "]";
    }
    return s;
  }

  void CheckConverged() {
    if (!stable_ || converged_ || !liveness_required_) return;
    std::vector<NodeId> live;
    for (NodeId m = 1; m <= n_; ++m) {
      if (ctx_->IsUp(m)) live.push_back(m);
    }
    const Node& first = nodes_[live.front()];
    for (NodeId m : live) {
      const Node& nd = nodes_[m];
      if (!nd.engine || nd.engine->role() != Role::kPrimary ||
          nd.engine->configuration().members != live ||
          nd.engine->configuration().id != first.engine->configuration().id) {
        return;
      }
    }
    converged_ = true;
    Trace(0, "kv CONVERGED");
  }

  // ---- the trap -------------------------------------------------------------
  std::vector<NodeId> Others() const {
    std::vector<NodeId> v;
    for (NodeId m = 1; m <= n_; ++m) {
      if (m != trap_node_) v.push_back(m);
    }
    return v;
  }

  bool AllPrimaryIn(const std::vector<NodeId>& members) const {
    for (NodeId m : members) {
      const Node& nd = nodes_[m];
      if (!nd.engine || nd.engine->role() != Role::kPrimary ||
          nd.engine->configuration().members != members) {
        return false;
      }
    }
    return true;
  }

  void Partition(const std::vector<std::vector<NodeId>>& groups) {
    FaultSpec f;
    f.kind = totem::sim::kFaultPartition;
    f.components.assign(n_, 0);
    for (size_t g = 0; g < groups.size(); ++g) {
      for (NodeId m : groups[g]) f.components[m - 1] = static_cast<uint32_t>(g);
    }
    Status s = ctx_->ApplyFault(f);
    if (!s.ok()) Fail("trap: " + s.ToString());
  }

  void Script() {
    std::vector<NodeId> all;
    for (NodeId m = 1; m <= n_; ++m) all.push_back(m);
    switch (script_step_) {
      case 0:  // wait for the primary of all five, then put at A
        if (!AllPrimaryIn(all)) {
          if (now() > 5'000'000) Fail("trap: no primary of all five nodes after 5 s");
          ctx_->ScheduleTimer(now() + 5'000, Token(kScript, 0, 0));
          return;
        }
        trap_node_ = static_cast<NodeId>(1 + ctx_->random().Below(n_));
        script_step_ = 1;
        [[fallthrough]];
      case 1: {
        Client& c = clients_[opt_.clients];
        ++c.counter;
        KvOp kv{false, "trap", "t" + std::to_string(c.counter)};
        c.op_id = MakeId(c.id, c.counter);
        c.op = OpRecord{};
        c.op.op_id = c.op_id;
        c.op.origin = trap_node_;
        c.op.payload = EncodeKvOp(kv);
        trap_value_ = kv.value;
        trap_id_ = c.op_id;
        Trace(trap_node_, "TRAP put at node " + std::to_string(trap_node_));
        Submit(c, trap_node_);
        return;
      }
      case 2: {  // right after the ack: {A} {B,C} {D,E}
        const std::vector<NodeId> o = Others();
        Trace(0, "TRAP three-way partition");
        Partition({{trap_node_}, {o[0], o[1]}, {o[2], o[3]}});
        script_step_ = 3;
        ctx_->ScheduleTimer(now() + Rand(50'000, 400'000), Token(kScript, 0, 0));
        return;
      }
      case 3: {  // A crashes or stays cut off; {B,C,D} form a majority
        const std::vector<NodeId> o = Others();
        if (ctx_->random().Chance(0.5)) {
          FaultSpec f;
          f.kind = totem::sim::kFaultCrash;
          f.node = trap_node_;
          trap_crashed_ = true;
          if (Status s = ctx_->ApplyFault(f); !s.ok()) Fail("trap: " + s.ToString());
        }
        Trace(0, "TRAP majority without A");
        Partition({{trap_node_}, {o[0], o[1], o[2]}, {o[3]}});
        script_step_ = 4;
        script_deadline_ = now() + 3'000'000;
        ctx_->ScheduleTimer(now() + 5'000, Token(kScript, 0, 0));
        return;
      }
      case 4: {
        const std::vector<NodeId> o = Others();
        const std::vector<NodeId> majority = {o[0], o[1], o[2]};
        if (!AllPrimaryIn(majority)) {
          if (now() > script_deadline_) {
            Fail("trap: {" + std::to_string(o[0]) + "," + std::to_string(o[1]) + "," +
                 std::to_string(o[2]) + "} did not form a primary within 3 s:" + ReplicaSummary());
            return;
          }
          ctx_->ScheduleTimer(now() + 5'000, Token(kScript, 0, 0));
          return;
        }
        for (NodeId m : majority) {
          const KvStateMachine& st = nodes_[m].disk->state();
          auto it = st.data().find("trap");
          if (it == st.data().end() || it->second != trap_value_ || !st.ResultOf(trap_id_)) {
            Fail("trap: the put acknowledged at node " + std::to_string(trap_node_) +
                 " is missing from node " + std::to_string(m) + " in the primary without it");
            return;
          }
        }
        Trace(0, "TRAP the majority without A holds the put");
        script_step_ = 5;
        ctx_->ScheduleTimer(now() + Rand(10'000, 200'000), Token(kScript, 0, 0));
        return;
      }
      case 5:
        if (trap_crashed_) {
          FaultSpec f;
          f.kind = totem::sim::kFaultRestart;
          f.node = trap_node_;
          if (Status s = ctx_->ApplyFault(f); !s.ok()) Fail("trap: " + s.ToString());
        }
        ctx_->FinalHeal();
        script_step_ = 100;
        return;
      default:
        return;
    }
  }

  void ScriptOpDone(bool ok) {
    if (script_step_ != 1) return;
    if (!ok) {  // not acknowledged (e.g. the ring was still changing): another put
      ctx_->ScheduleTimer(now() + 5'000, Token(kScript, 0, 0));
      return;
    }
    script_step_ = 2;
    ctx_->ScheduleTimer(now() + Rand(0, 2'000), Token(kScript, 0, 0));
  }

  // ---- end of run ------------------------------------------------------------
  void FinalChecks() {
    if (result_.amnesia) return;  // see CheckNode
    // The final order: the committed lineage, extended by the most
    // advanced live primary replica.
    std::vector<OpRecord> order(fixed_ops_.begin() + 1, fixed_ops_.end());
    uint64_t best = 0;
    NodeId best_node = 0;
    for (NodeId m = 1; m <= n_; ++m) {
      const Node& nd = nodes_[m];
      if (!ctx_->IsUp(m) || !nd.engine || nd.engine->role() != Role::kPrimary) continue;
      if (nd.engine->meta().green >= best) {
        best = nd.engine->meta().green;
        best_node = m;
      }
    }
    if (best_node != 0 && best > fixed_upto_) {
      std::vector<OpRecord> tail;
      std::string why;
      const Meta& m = nodes_[best_node].engine->meta();
      if (!Walk(m.green, m.green_hash, fixed_upto_, &tail, nullptr, &why)) {
        Fail("final: node " + std::to_string(best_node) +
             " does not extend the committed lineage: " + why);
        return;
      }
      order.insert(order.end(), tail.begin(), tail.end());
    }
    result_.final_green = order.size();
    // (e) at the end: the live primary replicas are identical.
    if (best_node != 0) {
      const Node& b = nodes_[best_node];
      for (NodeId m = 1; m <= n_; ++m) {
        const Node& nd = nodes_[m];
        if (!ctx_->IsUp(m) || !nd.engine || nd.engine->role() != Role::kPrimary) continue;
        if (nd.engine->configuration().id != b.engine->configuration().id) continue;
        if (nd.engine->meta().green != b.engine->meta().green ||
            nd.engine->meta().green_hash != b.engine->meta().green_hash ||
            nd.disk->state().checksum() != b.disk->state().checksum()) {
          Fail("final: replicas " + std::to_string(best_node) + " and " + std::to_string(m) +
               " of one primary differ:" + ReplicaSummary());
          return;
        }
      }
      for (NodeId m = 1; m <= n_; ++m) {
        if (nodes_[m].engine) result_.yellow_adopted += nodes_[m].engine->counters().yellow_adopted;
      }
    }
    // Replay the final order on a fresh state machine.
    KvStateMachine replay;
    std::map<OpId, uint64_t> first_index;
    for (size_t i = 0; i < order.size(); ++i) {
      replay.Apply(order[i]);
      first_index.try_emplace(order[i].op_id, i + 1);
    }
    if (best_node != 0 && best == order.size() &&
        replay.checksum() != nodes_[best_node].disk->state().checksum()) {
      Fail("final: node " + std::to_string(best_node) +
           "'s state differs from the replay of its own order (nondeterministic apply or a "
           "dropped op)");
      return;
    }
    // (b) + (c): every acknowledged op is in the order with the replayed
    // result, and real time is respected.
    struct Acked {
      uint64_t ack_us;
      uint64_t index;
      OpId id;
    };
    std::vector<Acked> acked;
    for (const auto& [id, l] : logical_) {
      if (!l.acked) continue;
      auto fi = first_index.find(id);
      if (fi == first_index.end()) {
        Fail("acknowledged op " + DescribeOp(l.op) + " is not in the final order");
        return;
      }
      std::optional<std::string> r = replay.ResultOf(id);
      if (!r || *r != l.result) {
        Fail("acknowledged op " + DescribeOp(l.op) + " returned '" + l.result +
             "' but at its place " + std::to_string(fi->second) + " in the final order it gives '" +
             r.value_or("?") + "'");
        return;
      }
      acked.push_back({l.first_ack_us, fi->second, id});
    }
    std::sort(acked.begin(), acked.end(),
              [](const Acked& a, const Acked& b) { return a.ack_us < b.ack_us; });
    for (const auto& [id, l] : logical_) {
      auto fi = first_index.find(id);
      if (fi == first_index.end()) continue;
      for (const Acked& a : acked) {
        if (a.ack_us >= l.first_invoke_us) break;
        if (a.index >= fi->second) {
          Fail("real-time order: " + IdString(a.id) +
               " was acknowledged at t=" + std::to_string(a.ack_us) + "us before " +
               DescribeOp(l.op) + " was invoked (t=" + std::to_string(l.first_invoke_us) +
               "us), yet it is ordered at " + std::to_string(a.index) +
               " >= " + std::to_string(fi->second));
          return;
        }
      }
    }
  }

  const KvSimOptions opt_;
  const uint32_t n_;
  AppContext* ctx_ = nullptr;
  std::vector<Node> nodes_;  // [node id]; [0] unused
  std::vector<Client> clients_;
  std::vector<Invocation> invocations_;
  std::map<OpId, Logical> logical_;
  std::map<NodeId, std::map<OpId, uint32_t>> waiting_at_;  // node -> op id -> client

  // Checker state.
  std::map<std::pair<uint64_t, uint64_t>, std::pair<OpRecord, uint64_t>> chain_;
  std::map<NodeId, std::map<uint64_t, uint64_t>> shadow_;  // node -> index -> hash it holds
  uint64_t fixed_upto_ = 0;
  std::vector<uint64_t> fixed_hash_{0};
  std::vector<OpRecord> fixed_ops_{OpRecord{}};
  std::map<std::tuple<RingId, uint64_t>, std::pair<std::pair<uint64_t, uint64_t>, NodeId>>
      same_index_;
  std::map<uint64_t, std::set<RingId>> prim_rings_;  // prim number -> rings that installed it
  std::set<RingId> acked_rings_;                     // primaries that acknowledged an op
  uint64_t wiped_disks_ = 0;

  bool stable_ = false;
  bool liveness_required_ = false;
  bool converged_ = false;
  bool deadline_passed_ = false;

  // Trap script.
  int script_step_ = 0;
  NodeId trap_node_ = 0;
  bool trap_crashed_ = false;
  std::string trap_value_;
  OpId trap_id_{};
  uint64_t script_deadline_ = 0;

  // Injection.
  bool drop_armed_ = false;
  bool wrong_get_done_ = false;
  bool ack_reject_done_ = false;

  KvSimResult result_;
};

}  // namespace

KvSimResult RunKvSim(const KvSimOptions& options) {
  KvApp app(options);
  totem::sim::SimOptions s = options.sim;
  s.app = &app;
  s.app_final_heal = options.trap;
  s.trace = options.trace;
  totem::sim::RunResult r = totem::sim::RunSimulation(s);
  KvSimResult out = app.result();
  out.sim = r;
  out.ok = r.ok && out.ok;
  if (!r.ok && out.first_violation.empty()) out.first_violation = r.first_violation;
  if (!r.ok) out.first_violation = r.first_violation;
  return out;
}

}  // namespace kvstore::sim
