// Writes the seed corpora of the fuzz targets (fuzz/corpus/<target>/):
// valid inputs produced by the real encoders, so the fuzzers start from
// inputs that get past the decoders. Run from the regular build:
//   build/bin/fuzz_seeds fuzz/corpus
// totem_wire: one frame of each type and a 3-node ring forming and ordering
// a few messages as node 2 receives it; repl_engine: what engine 1 sees of
// a 3-node cluster bootstrapping, ordering ops and a laggard catching up;
// op_proto / grpc_validate: typical etcd requests; multi_ring: what gateway
// node 5 sees of a network of three rings forming, ordering messages and
// losing a gateway, and its view table.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "etcd/rpc.pb.h"
#include "kvstore/ops.pb.h"
#include "kvstore/replication.h"
#include "kvstore/sim/in_memory_storage.h"
#include "mring_input.h"
#include "repl_input.h"
#include "totem/config.h"
#include "totem/core/global_view.h"
#include "totem/core/multi_ring.h"
#include "totem/core/output.h"
#include "totem/core/single_ring.h"
#include "totem/core/wire.h"

namespace {

namespace fs = std::filesystem;

void WriteFile(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "fuzz_seeds: cannot write %s\n", (dir / name).c_str());
    std::exit(1);
  }
}

// ---- totem_wire -----------------------------------------------------------

struct Packet {
  totem::NodeId to;
  std::vector<uint8_t> frame;
};

class QueueOutput final : public totem::core::Output {
 public:
  QueueOutput(totem::NodeId self, std::deque<Packet>* queue) : self_(self), queue_(queue) {}
  void Unicast(totem::NodeId to, std::span<const uint8_t> f) override {
    queue_->push_back({to, {f.begin(), f.end()}});
  }
  void Multicast(std::span<const uint8_t> f) override {
    for (totem::NodeId n : {1u, 2u, 3u}) {
      if (n != self_) queue_->push_back({n, {f.begin(), f.end()}});
    }
  }
  void SetTimer(totem::core::TimerId id, uint64_t delay_us) override {
    timers_[id] = now_us + delay_us;
  }
  void CancelTimer(totem::core::TimerId id) override { timers_.erase(id); }
  void Deliver(const totem::Delivery&) override { ++delivered; }
  void DeliverConfiguration(const totem::ConfigurationEvent&) override {}

  uint64_t now_us = 0;
  size_t delivered = 0;
  std::map<totem::core::TimerId, uint64_t> timers_;  // armed: when due

 private:
  totem::NodeId self_;
  std::deque<Packet>* queue_;
};

void TotemWire(const fs::path& dir) {
  std::deque<Packet> queue;
  std::map<totem::NodeId, std::unique_ptr<totem::core::SingleRing>> cores;
  std::map<totem::NodeId, std::unique_ptr<QueueOutput>> outs;
  for (totem::NodeId n : {1u, 2u, 3u}) {
    totem::RingConfig c;
    c.node_id = n;
    c.members = {1, 2, 3};
    c.receive_buffer_frames = 64;
    c.window_size = 16;
    c.max_messages_per_visit = 8;
    c.max_rtr_entries = 16;
    c.max_message_bytes = 4096;
    c.max_pending_bytes = 16384;
    cores[n] = std::make_unique<totem::core::SingleRing>(c);
    outs[n] = std::make_unique<QueueOutput>(n, &queue);
  }
  uint64_t now_us = 1000;
  for (auto& [n, core] : cores) core->Start(now_us, *outs[n]);

  std::string stream;  // node 2's view, as fuzz_totem_wire reads it
  std::set<uint8_t> types_written;
  size_t records = 0;
  for (int step = 0; step < 400; ++step) {
    now_us += 100;
    for (auto& [n, out] : outs) out->now_us = now_us;
    if (queue.empty()) {
      // Nothing in flight: jump to the earliest armed timer and fire it.
      totem::NodeId who = 0;
      totem::core::TimerId id{};
      uint64_t due = UINT64_MAX;
      for (auto& [n, out] : outs) {
        for (auto [t, when] : out->timers_) {
          if (when < due) due = when, who = n, id = t;
        }
      }
      if (who == 0) break;
      now_us = std::max(now_us, due);
      outs[who]->now_us = now_us;
      outs[who]->timers_.erase(id);
      cores[who]->HandleTimer(id, now_us, *outs[who]);
      if (who == 2 && records < 120) {
        stream.push_back(0);
        stream.push_back(0);
        stream.push_back(static_cast<char>(id));
      }
      continue;
    }
    Packet p = std::move(queue.front());
    queue.pop_front();
    if (step == 60 || step == 90) {
      const uint8_t msg[] = {'h', 'e', 'l', 'l', 'o'};
      (void)cores[1]->Submit(msg, totem::Guarantee::kSafe, now_us, *outs[1]);
      (void)cores[3]->Submit(msg, totem::Guarantee::kAgreed, now_us, *outs[3]);
    }
    if (p.to == 2) {
      uint8_t type = p.frame.size() > 3 ? p.frame[3] : 0;
      if (types_written.insert(type).second) {
        WriteFile(dir, "frame_type_" + std::to_string(type),
                  std::string(p.frame.begin(), p.frame.end()));
      }
      if (records < 120 && stream.size() + p.frame.size() < 6000) {
        stream.push_back(static_cast<char>(p.frame.size() & 0xff));
        stream.push_back(static_cast<char>(p.frame.size() >> 8));
        stream.append(p.frame.begin(), p.frame.end());
        ++records;
      }
    }
    cores[p.to]->HandleFrame(p.frame, now_us, *outs[p.to]);
  }
  WriteFile(dir, "ring_of_three", stream);
  std::printf(
      "totem_wire: %zu frame types, %zu frames in the stream (%zu bytes), node 2 %s, %zu "
      "delivered\n",
      types_written.size(), records, stream.size(),
      totem::core::MembershipStateName(cores[2]->membership_state()), outs[2]->delivered);
}

// ---- repl_engine ----------------------------------------------------------

void ReplEngine(const fs::path& dir) {
  using kvstore::repl::Effects;
  using kvstore::repl::Engine;
  using kvstore::repl::Input;
  std::map<totem::NodeId, std::unique_ptr<kvstore::sim::InMemoryStorage>> storage;
  std::map<totem::NodeId, std::unique_ptr<Engine>> engines;
  for (totem::NodeId n : {1u, 2u, 3u}) {
    storage[n] = std::make_unique<kvstore::sim::InMemoryStorage>(4, 64);
    kvstore::repl::EngineOptions o;
    o.self = n;
    o.bootstrap_members = {1, 2, 3};
    o.transfer_chunk_bytes = 64;
    o.transfer_window = 2;
    o.max_buffered_ops = 64;
    engines[n] = std::make_unique<Engine>(o, storage[n].get());
  }
  std::string stream;
  uint64_t ring_seq = 4;
  totem::ConfigurationEvent config;

  // Delivers `inputs` to the engines in `members`, then every message they
  // sent, in a total order, until they are quiet.
  auto run = [&](std::vector<Input> inputs, const std::vector<totem::NodeId>& members) {
    for (int round = 0; round < 50 && !inputs.empty(); ++round) {
      std::vector<Input> next;
      for (const Input& in : inputs) {
        if (in.kind == Input::Kind::kConfiguration) {
          totemkv::fuzz::EncodeReplConfiguration(in.configuration, &stream);
        } else {
          totemkv::fuzz::EncodeReplDelivery(in.sender, in.config_kind, in.payload, &stream);
        }
        for (totem::NodeId n : members) {
          Effects fx;
          if (!engines[n]->Step(in, &fx).ok()) std::exit(1);
          for (const auto& m : fx.send) {
            Input d;
            d.kind = Input::Kind::kDelivery;
            d.sender = n;
            d.config_kind = totem::ConfigurationKind::kRegular;
            d.ring = config.id;
            d.payload = m.bytes;
            next.push_back(std::move(d));
          }
        }
      }
      inputs = std::move(next);
    }
  };
  auto configure = [&](std::vector<totem::NodeId> members) {
    Input in;
    in.kind = Input::Kind::kConfiguration;
    in.configuration.kind = totem::ConfigurationKind::kRegular;
    in.configuration.id = totem::RingId{members.front(), ring_seq};
    ring_seq += 4;
    in.configuration.members = members;
    config = in.configuration;
    run({in}, members);
  };
  auto op = [&](totem::NodeId origin, const std::string& key, const std::string& value) {
    kvstore::repl::OpRecord r;
    r.op_id[0] = static_cast<uint8_t>(stream.size());
    r.op_id[1] = static_cast<uint8_t>(origin);
    r.origin = origin;
    r.payload = kvstore::sim::EncodeKvOp({false, key, value});
    Input d;
    d.sender = origin;
    d.ring = config.id;
    d.payload = Engine::EncodeOp(r);
    return d;
  };

  configure({1, 2, 3});
  run({op(1, "a", "1"), op(2, "b", "2"), op(3, "a", "3")}, {1, 2, 3});
  WriteFile(dir, "bootstrap_and_ops", stream);
  // Node 3 drops out, ops go on without it, and it comes back: state
  // exchange and transfer (op log or snapshot).
  configure({1, 2});
  run({op(1, "c", "4"), op(2, "d", "5"), op(1, "e", "6"), op(2, "f", "7"), op(1, "g", "8")},
      {1, 2});
  configure({1, 2, 3});
  run({op(3, "h", "9")}, {1, 2, 3});
  WriteFile(dir, "partition_and_catch_up", stream);
  std::printf("repl_engine: %zu bytes, engine 1 role %s\n", stream.size(),
              kvstore::repl::RoleName(engines[1]->role()));
}

// ---- op_proto / grpc_validate -----------------------------------------------

void OpProto(const fs::path& op_dir, const fs::path& grpc_dir) {
  etcdserverpb::PutRequest put;
  put.set_key("foo");
  put.set_value("bar");
  put.set_prev_kv(true);
  etcdserverpb::RangeRequest range;
  range.set_key("a");
  range.set_range_end("z");
  range.set_limit(2);
  range.set_sort_order(etcdserverpb::RangeRequest::DESCEND);
  range.set_sort_target(etcdserverpb::RangeRequest::MOD);
  etcdserverpb::DeleteRangeRequest del;
  del.set_key("b");
  del.set_range_end("c");
  del.set_prev_kv(true);
  etcdserverpb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key("foo");
  cmp->set_result(etcdserverpb::Compare::EQUAL);
  cmp->set_target(etcdserverpb::Compare::VALUE);
  cmp->set_value("bar");
  *txn.add_success()->mutable_request_put() = put;
  *txn.add_success()->mutable_request_range() = range;
  *txn.add_failure()->mutable_request_delete_range() = del;
  *txn.add_failure()->mutable_request_txn()->add_success()->mutable_request_put() = put;

  auto with_kind = [](uint8_t kind, const google::protobuf::Message& m) {
    return std::string(1, static_cast<char>(kind)) + m.SerializeAsString();
  };
  WriteFile(grpc_dir, "range", with_kind(0, range));
  WriteFile(grpc_dir, "put", with_kind(1, put));
  WriteFile(grpc_dir, "delete_range", with_kind(2, del));
  WriteFile(grpc_dir, "txn", with_kind(3, txn));

  totemkv::kvstore::v1::OpBatch batch;
  auto add = [&batch](int i) {
    auto* op = batch.add_ops();
    op->set_op_id(std::string(16, static_cast<char>('A' + i)));
    op->set_origin_node(1);
    return op;
  };
  *add(0)->mutable_put() = put;
  *add(1)->mutable_delete_range() = del;
  *add(2)->mutable_txn() = txn;
  auto* grant = add(3)->mutable_lease_grant();
  grant->set_id(7);
  grant->set_ttl_seconds(60);
  auto* leased = add(4)->mutable_put();
  leased->set_key("leased");
  leased->set_lease(7);
  add(5)->mutable_lease_keep_alive()->set_id(7);
  auto* expire = add(6)->mutable_lease_expire();
  expire->set_id(7);
  expire->set_generation(1);
  add(7)->mutable_lease_revoke()->set_id(7);
  add(8)->mutable_compact()->set_revision(2);
  add(9)->mutable_barrier();
  WriteFile(op_dir, "all_kinds", batch.SerializeAsString());
  for (int i = 0; i < batch.ops_size(); ++i) {
    totemkv::kvstore::v1::OpBatch one;
    *one.add_ops() = batch.ops(i);
    WriteFile(op_dir, "op_" + std::to_string(i), one.SerializeAsString());
  }
  std::printf("op_proto, grpc_validate: written\n");
}

// ---- multi_ring -----------------------------------------------------------

// A perfect network of rings for MultiRing cores: each ring is one FIFO that
// delivers every frame to all of its members in order.
struct RingFrame {
  totem::NodeId sender;
  std::vector<uint8_t> bytes;
  totem::Guarantee guarantee;
};

class MringBus;

class MringNodeOutput final : public totem::core::MultiRingOutput {
 public:
  MringNodeOutput(totem::NodeId self, MringBus* bus) : self_(self), bus_(bus) {}
  void SubmitToRing(totem::core::RingNumber ring, std::span<const uint8_t> bytes,
                    totem::Guarantee guarantee) override;
  void Deliver(const totem::core::MultiDelivery&) override { ++delivered; }
  void DeliverTopology(const totem::core::TopologyEvent&) override {}
  void SetTimer(uint64_t) override {}
  size_t delivered = 0;

 private:
  totem::NodeId self_;
  MringBus* bus_;
};

class MringBus {
 public:
  MringBus() {
    Add(1, {1});
    Add(2, {2});
    Add(3, {3});
    Add(5, {1, 2});
    Add(6, {2, 3});
  }
  void Add(totem::NodeId id, std::vector<totem::core::RingNumber> rings) {
    auto& n = nodes_[id];
    n.core = std::make_unique<totem::core::MultiRing>(totemkv::fuzz::MringConfig(id, rings));
    n.out = std::make_unique<MringNodeOutput>(id, this);
    n.rings = std::move(rings);
    n.core->Start(now_, *n.out);
  }
  void Push(totem::core::RingNumber ring, RingFrame f) { queues_[ring].push_back(std::move(f)); }

  // A regular configuration (preceded by a transitional one if `members`
  // lost someone) of `ring` at every member.
  void Configure(totem::core::RingNumber ring, std::vector<totem::NodeId> members, uint8_t seq) {
    std::vector<totem::NodeId>& old = members_[ring];
    if (!old.empty()) {
      totem::ConfigurationEvent t;
      t.kind = totem::ConfigurationKind::kTransitional;
      t.id = {old.front(), config_[ring].seq};
      for (totem::NodeId n : old) {
        if (std::count(members.begin(), members.end(), n)) t.members.push_back(n);
      }
      for (totem::NodeId n : t.members) Event(ring, n, t);
    }
    totem::ConfigurationEvent e;
    e.id = {members.front(), seq};
    e.members = members;
    config_[ring] = e.id;
    old = members;
    queues_[ring].clear();
    for (totem::NodeId n : members) Event(ring, n, e);
  }
  // Delivers everything queued (and what that submits) on every ring.
  void Drain() {
    for (bool any = true; any;) {
      any = false;
      for (auto& [ring, q] : queues_) {
        if (q.empty()) continue;
        any = true;
        RingFrame f = std::move(q.front());
        q.pop_front();
        for (totem::NodeId n : members_[ring]) {
          if (n == totemkv::fuzz::kMringSelf) {
            totemkv::fuzz::EncodeMringDelivery(ring == 1 ? 0 : 1, false,
                                               f.guarantee == totem::Guarantee::kSafe, f.sender,
                                               f.bytes, &record);
          }
          totem::Delivery d;
          d.config_id = config_[ring];
          d.sender = f.sender;
          d.guarantee = f.guarantee;
          d.payload = f.bytes;
          nodes_[n].core->HandleRingDelivery(ring, d, now_, *nodes_[n].out);
        }
      }
    }
  }
  void Tick(uint8_t ms) {
    now_ += static_cast<uint64_t>(ms) * 1000;
    totemkv::fuzz::EncodeMringTimer(ms, &record);
    for (auto& [id, n] : nodes_) n.core->HandleTimer(now_, *n.out);
  }
  void Submit(totem::NodeId id, const std::string& payload,
              std::vector<totem::core::RingNumber> destinations, bool safe) {
    std::span<const uint8_t> p(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
    if (id == totemkv::fuzz::kMringSelf) {
      uint8_t mask = safe ? 0x80 : 0;
      for (auto r : destinations) mask = static_cast<uint8_t>(mask | (1u << (r - 1)));
      record.push_back(totemkv::fuzz::kMringSubmit);
      record.push_back(static_cast<char>(mask));
      record.push_back(static_cast<char>(payload.size()));
      record += payload;
    }
    auto g = safe ? totem::Guarantee::kSafe : totem::Guarantee::kAgreed;
    if (!nodes_[id].core->Submit(p, g, destinations, now_, *nodes_[id].out).ok()) std::exit(1);
  }
  const totem::core::MultiRing& core(totem::NodeId id) { return *nodes_[id].core; }

  std::string record;  // what node 5 saw, in the fuzz target's format

 private:
  struct Node {
    std::unique_ptr<totem::core::MultiRing> core;
    std::unique_ptr<MringNodeOutput> out;
    std::vector<totem::core::RingNumber> rings;
  };
  void Event(totem::core::RingNumber ring, totem::NodeId n, const totem::ConfigurationEvent& e) {
    if (n == totemkv::fuzz::kMringSelf) {
      totemkv::fuzz::EncodeMringConfiguration(ring == 1 ? 0 : 1,
                                              e.kind == totem::ConfigurationKind::kTransitional,
                                              static_cast<uint8_t>(e.id.seq), e.members, &record);
    }
    nodes_[n].core->HandleRingConfiguration(ring, e, now_, *nodes_[n].out);
  }

  uint64_t now_ = 1000000;
  std::map<totem::NodeId, Node> nodes_;
  std::map<totem::core::RingNumber, std::deque<RingFrame>> queues_;
  std::map<totem::core::RingNumber, std::vector<totem::NodeId>> members_;
  std::map<totem::core::RingNumber, totem::ConfigurationId> config_;
};

void MringNodeOutput::SubmitToRing(totem::core::RingNumber ring, std::span<const uint8_t> bytes,
                                   totem::Guarantee guarantee) {
  bus_->Push(ring, {self_, {bytes.begin(), bytes.end()}, guarantee});
}

void MultiRingSeeds(const fs::path& dir) {
  MringBus bus;
  bus.Configure(1, {1, 5}, 1);
  bus.Configure(2, {2, 5, 6}, 1);
  bus.Configure(3, {3, 6}, 1);
  bus.Drain();
  for (int round = 0; round < 6; ++round) {
    bus.Submit(1, "from ring 1 #" + std::to_string(round), {}, round % 2 == 0);
    bus.Submit(3, "to ring 2 #" + std::to_string(round), {2}, false);
    bus.Submit(5, "gateway #" + std::to_string(round), {3}, round % 3 == 0);
    bus.Submit(2, "ring 2 only", {2}, true);
    bus.Drain();
    bus.Tick(20);
    bus.Drain();
  }
  WriteFile(dir, "formed", bus.record);
  const size_t formed = bus.core(5).counters().delivered;
  // Gateway 6 leaves ring 2: ring 3 is cut off, then comes back.
  bus.Configure(2, {2, 5}, 2);
  bus.Drain();
  bus.Submit(1, "after the split", {}, true);
  bus.Drain();
  bus.Tick(20);
  bus.Drain();
  bus.Configure(2, {2, 5, 6}, 3);
  bus.Drain();
  bus.Submit(3, "after the heal", {1}, false);
  bus.Drain();
  bus.Tick(20);
  bus.Drain();
  bus.Tick(20);
  bus.Drain();
  WriteFile(dir, "split_heal", bus.record);

  std::vector<uint8_t> table;
  totem::core::Writer w(table);
  totem::core::EncodeViewTable(bus.core(5).view(), w);
  WriteFile(dir, "view_table", std::string(table.begin(), table.end()));
  std::printf("multi_ring: node 5 delivered %zu then %zu, %zu record bytes, view of %zu rings\n",
              formed, static_cast<size_t>(bus.core(5).counters().delivered), bus.record.size(),
              bus.core(5).view().size());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds <corpus dir, e.g. fuzz/corpus>\n");
    return 2;
  }
  fs::path root = argv[1];
  TotemWire(root / "totem_wire");
  ReplEngine(root / "repl_engine");
  OpProto(root / "op_proto", root / "grpc_validate");
  MultiRingSeeds(root / "multi_ring");
  return 0;
}
