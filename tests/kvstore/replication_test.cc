// Unit tests of the replication engine (kvstore/replication.h) on a
// scripted, perfect ring: every message a member sends is delivered to every
// member of the current configuration in one FIFO order, and the test says
// when configurations change and which members deliver the tail of the old
// configuration in their transitional configuration. Storage is an
// in-memory map ("disk") that survives an engine being destroyed (a crash).
// The seeded simulator (kvstore/sim) covers random fault schedules; these
// cases pin the protocol's named scenarios.
#include "kvstore/replication.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace kvstore::repl {
namespace {

using totem::ConfigurationEvent;
using totem::ConfigurationKind;

// The state machine: payload "k=v" sets k to v.
class MemStorage : public Storage {
 public:
  explicit MemStorage(size_t retain = 1000) : retain_(retain) {}
  Meta LoadMeta() override { return meta_; }
  std::vector<OpRecord> LoadYellow() override { return yellow_; }
  Status ApplyGreen(const std::vector<OpRecord>& ops, const std::vector<uint64_t>& hashes,
                    const Meta& meta_after) override {
    uint64_t index = meta_after.green - ops.size();
    for (size_t i = 0; i < ops.size(); ++i) {
      ++index;
      const std::string& p = ops[i].payload;
      const size_t eq = p.find('=');
      if (ops[i].kind == OpKind::kData && eq != std::string::npos)
        data_[p.substr(0, eq)] = p.substr(eq + 1);
      log_[index] = {ops[i], hashes[i]};
    }
    while (log_.size() > retain_) log_.erase(log_.begin());
    meta_ = meta_after;
    return Status::Ok();
  }
  Status SaveYellow(const std::vector<OpRecord>& yellow, const Meta& meta) override {
    yellow_ = yellow;
    meta_ = meta;
    return Status::Ok();
  }
  Status SaveMeta(const Meta& meta) override {
    meta_ = meta;
    return Status::Ok();
  }
  uint64_t LogFirst() override { return log_.empty() ? meta_.green + 1 : log_.begin()->first; }
  bool ReadLog(uint64_t index, OpRecord* op, uint64_t* hash) override {
    auto it = log_.find(index);
    if (it == log_.end()) return false;
    *op = it->second.first;
    *hash = it->second.second;
    return true;
  }
  class Reader : public SnapshotReader {
   public:
    explicit Reader(std::map<std::string, std::string> data) : data_(std::move(data)) {}
    StatusOr<bool> Next(size_t, std::string* chunk) override {
      if (data_.empty()) return false;
      *chunk = data_.begin()->first + "=" + data_.begin()->second;
      data_.erase(data_.begin());
      return true;
    }
    std::map<std::string, std::string> data_;
  };
  StatusOr<std::unique_ptr<SnapshotReader>> OpenSnapshot() override {
    return std::unique_ptr<SnapshotReader>(new Reader(data_));
  }
  class Writer : public SnapshotWriter {
   public:
    explicit Writer(MemStorage* s) : s_(s) {}
    Status Add(std::string_view chunk) override {
      const size_t eq = chunk.find('=');
      staged_[std::string(chunk.substr(0, eq))] = std::string(chunk.substr(eq + 1));
      return Status::Ok();
    }
    Status Commit(const Meta& meta) override {
      s_->data_ = staged_;
      s_->log_.clear();
      s_->yellow_.clear();
      s_->meta_ = meta;
      ++s_->installs_;
      return Status::Ok();
    }
    MemStorage* s_;
    std::map<std::string, std::string> staged_;
  };
  StatusOr<std::unique_ptr<SnapshotWriter>> BeginSnapshotInstall() override {
    return std::unique_ptr<SnapshotWriter>(new Writer(this));
  }

  std::map<std::string, std::string> data_;
  std::map<uint64_t, std::pair<OpRecord, uint64_t>> log_;
  std::vector<OpRecord> yellow_;
  Meta meta_;
  size_t retain_;
  int installs_ = 0;
};

OpId Id(uint32_t n) {
  OpId id{};
  for (int i = 0; i < 4; ++i) id[i] = static_cast<uint8_t>(n >> (8 * i));
  return id;
}

class Group {
 public:
  Group(std::vector<NodeId> ids, size_t retain = 1000) : all_(ids) {
    for (NodeId id : ids) {
      disks_[id] = std::make_unique<MemStorage>(retain);
      Start(id);
    }
  }
  void Start(NodeId id) {
    EngineOptions o;
    o.self = id;
    o.bootstrap_members = all_;
    o.transfer_chunk_bytes = 16;
    o.transfer_window = 2;
    engines_[id] = std::make_unique<Engine>(o, disks_[id].get());
  }
  void Crash(NodeId id) { engines_.erase(id); }
  void Wipe(NodeId id) { disks_[id] = std::make_unique<MemStorage>(disks_[id]->retain_); }
  Engine& E(NodeId id) { return *engines_.at(id); }
  MemStorage& D(NodeId id) { return *disks_.at(id); }

  // Regular configuration `members` for everyone in it (ring seq++).
  void Regular(std::vector<NodeId> members) {
    ConfigurationEvent e;
    e.kind = ConfigurationKind::kRegular;
    e.id = {members.front(), ++seq_};
    e.members = members;
    ring_ = e.id;
    members_ = members;
    for (NodeId m : members) Feed(m, ConfigInput(e));
  }
  // Transitional configuration for `members`; the old ring's undelivered
  // messages are delivered to them in it (as EVS does for survivors).
  void Transitional(std::vector<NodeId> members, bool deliver_tail = true) {
    ConfigurationEvent e;
    e.kind = ConfigurationKind::kTransitional;
    e.id = {members.front(), seq_ + 1};
    e.members = members;
    for (NodeId m : members) Feed(m, ConfigInput(e));
    if (deliver_tail) {
      for (const auto& [from, bytes] : queue_) {
        for (NodeId m : members)
          Feed(m, DeliveryInput(from, bytes, ConfigurationKind::kTransitional));
      }
    }
  }
  void DropQueue() { queue_.clear(); }
  // Delivers queued messages in the regular configuration until quiet.
  void Pump(size_t max = 100000) {
    while (!queue_.empty() && max-- > 0) {
      auto [from, bytes] = queue_.front();
      queue_.pop_front();
      for (NodeId m : members_) Feed(m, DeliveryInput(from, bytes, ConfigurationKind::kRegular));
    }
  }
  // Delivers only the next queued message, and only to `to`.
  void DeliverNextTo(const std::vector<NodeId>& to) {
    auto [from, bytes] = queue_.front();
    for (NodeId m : to) Feed(m, DeliveryInput(from, bytes, ConfigurationKind::kRegular));
  }
  // Delivers every queued message (and what they trigger) to `to` only,
  // in the regular configuration; the queue keeps the originals.
  void DeliverAllTo(const std::vector<NodeId>& to) {
    std::deque<std::pair<NodeId, std::string>> original = queue_;
    for (size_t i = 0; i < original.size(); ++i) {
      for (NodeId m : to)
        Feed(m, DeliveryInput(original[i].first, original[i].second, ConfigurationKind::kRegular));
    }
    queue_ = std::move(original);
  }
  // Delivers only the last queued message, and only to `to`.
  void DeliverLastTo(const std::vector<NodeId>& to) {
    auto [from, bytes] = queue_.back();
    for (NodeId m : to) Feed(m, DeliveryInput(from, bytes, ConfigurationKind::kRegular));
  }
  void Submit(NodeId at, uint32_t n, const std::string& payload) {
    OpRecord op;
    op.op_id = Id(n);
    op.origin = at;
    op.payload = payload;
    queue_.push_back({at, Engine::EncodeOp(op)});
  }
  std::set<OpId> acked, rejected;

 private:
  Input ConfigInput(const ConfigurationEvent& e) {
    Input in;
    in.kind = Input::Kind::kConfiguration;
    in.configuration = e;
    return in;
  }
  Input DeliveryInput(NodeId from, const std::string& bytes, ConfigurationKind kind) {
    Input in;
    in.kind = Input::Kind::kDelivery;
    in.sender = from;
    in.config_kind = kind;
    in.ring = ring_;
    in.payload = bytes;
    return in;
  }
  void Feed(NodeId m, const Input& in) {
    auto it = engines_.find(m);
    if (it == engines_.end()) return;
    Effects fx;
    ASSERT_TRUE(it->second->Step(in, &fx).ok());
    for (Effects::Message& s : fx.send) queue_.push_back({m, std::move(s.bytes)});
    for (const auto& a : fx.acks) acked.insert(a.op_id);
    for (const auto& r : fx.rejects) rejected.insert(r.op_id);
  }

  std::vector<NodeId> all_;
  std::map<NodeId, std::unique_ptr<MemStorage>> disks_;
  std::map<NodeId, std::unique_ptr<Engine>> engines_;
  std::deque<std::pair<NodeId, std::string>> queue_;
  std::vector<NodeId> members_;
  totem::RingId ring_;
  uint64_t seq_ = 0;
};

TEST(ReplicationTest, BootstrapInstallsPrimaryAndAcksAfterMajorityApplied) {
  Group g({1, 2, 3});
  g.Regular({1, 2, 3});
  g.Pump();
  for (NodeId n : {1, 2, 3}) EXPECT_EQ(g.E(n).role(), Role::kPrimary) << n;
  g.Submit(1, 7, "a=1");
  g.Pump();
  EXPECT_TRUE(g.acked.count(Id(7)));
  for (NodeId n : {1, 2, 3}) {
    EXPECT_EQ(g.D(n).data_["a"], "1");
    EXPECT_EQ(g.E(n).meta().green, 1u);
  }
  EXPECT_EQ(g.E(1).meta().green_hash, g.E(3).meta().green_hash);
}

TEST(ReplicationTest, NotAckedUntilAMajorityReportedApplied) {
  Group g({1, 2, 3});
  g.Regular({1, 2, 3});
  g.Pump();
  g.Submit(1, 7, "a=1");
  g.DeliverNextTo({1, 2, 3});  // applied everywhere; the Applied reports are queued
  EXPECT_FALSE(g.acked.count(Id(7)));
  EXPECT_EQ(g.E(1).commit_index(), 0u);
}

TEST(ReplicationTest, MinorityRefusesAndRejectsItsOps) {
  Group g({1, 2, 3});
  g.Regular({1, 2, 3});
  g.Pump();
  g.Transitional({1});
  g.Regular({1});
  g.Pump();
  EXPECT_EQ(g.E(1).role(), Role::kNonPrimary);
  EXPECT_EQ(g.E(1).reason(), "no quorum: 1 of 3 members reachable");
  g.Submit(1, 9, "b=2");
  g.Pump();
  EXPECT_TRUE(g.rejected.count(Id(9)));
  EXPECT_FALSE(g.acked.count(Id(9)));
  EXPECT_EQ(g.D(1).data_.count("b"), 0u);
}

TEST(ReplicationTest, LaggardCatchesUpFromTheLog) {
  Group g({1, 2, 3});
  g.Regular({1, 2, 3});
  g.Pump();
  g.Transitional({1, 2});
  g.Regular({1, 2});
  g.Pump();
  ASSERT_EQ(g.E(1).role(), Role::kPrimary);
  for (uint32_t i = 0; i < 10; ++i) g.Submit(1 + i % 2, 100 + i, "k" + std::to_string(i) + "=v");
  g.Pump();
  EXPECT_EQ(g.acked.size(), 10u);
  g.Transitional({1, 2});
  g.Regular({1, 2, 3});
  g.Pump();
  for (NodeId n : {1, 2, 3}) EXPECT_EQ(g.E(n).role(), Role::kPrimary) << n;
  EXPECT_EQ(g.D(3).data_, g.D(1).data_);
  EXPECT_EQ(g.E(3).meta().green_hash, g.E(1).meta().green_hash);
  EXPECT_EQ(g.D(3).installs_, 0);
  EXPECT_GT(g.E(3).counters().transfer_ops_applied, 0u);
}

TEST(ReplicationTest, TrimmedLogMeansSnapshotAndWipedNodeIsRebuilt) {
  Group g({1, 2, 3}, /*retain=*/3);
  g.Regular({1, 2, 3});
  g.Pump();
  g.Crash(3);
  g.Transitional({1, 2});
  g.Regular({1, 2});
  g.Pump();
  for (uint32_t i = 0; i < 12; ++i)
    g.Submit(1, 100 + i, "k" + std::to_string(i) + "=v" + std::to_string(i));
  g.Pump();
  g.Wipe(3);
  g.Start(3);
  g.Transitional({1, 2});
  g.Regular({1, 2, 3});
  g.Pump();
  for (NodeId n : {1, 2, 3}) EXPECT_EQ(g.E(n).role(), Role::kPrimary) << n;
  EXPECT_EQ(g.D(3).installs_, 1);
  EXPECT_EQ(g.D(3).data_, g.D(1).data_);
  EXPECT_EQ(g.E(3).meta().green, g.E(1).meta().green);
  g.Submit(3, 500, "after=1");
  g.Pump();
  EXPECT_TRUE(g.acked.count(Id(500)));
  EXPECT_EQ(g.D(1).data_["after"], "1");
}

TEST(ReplicationTest, WipedMembersDoNotOutvoteTheData) {
  Group g({1, 2, 3});
  g.Regular({1, 2, 3});
  g.Pump();
  g.Submit(1, 1, "a=1");
  g.Pump();
  g.Crash(2);
  g.Crash(3);
  g.Wipe(3);
  g.Start(3);
  g.Transitional({1});
  g.Regular({1, 3});
  g.Pump();
  // 1 has data, 3 was wiped: one vote of three.
  EXPECT_EQ(g.E(1).role(), Role::kNonPrimary);
  EXPECT_NE(g.E(1).reason().find("no quorum: 1 of 3"), std::string::npos) << g.E(1).reason();
}

// Two of three members lost their disks while the third is down: they must
// not start a new history (which the third would later contradict), but
// wait for it and be rebuilt from its data.
TEST(ReplicationTest, WipedMajorityWaitsForTheMemberWithData) {
  Group g({1, 2, 3});
  g.Regular({1, 2, 3});
  g.Pump();
  g.Submit(1, 1, "a=1");
  g.Pump();
  ASSERT_TRUE(g.acked.count(Id(1)));
  for (NodeId n : {1, 2, 3}) g.Crash(n);
  for (NodeId n : {2, 3}) {
    g.Wipe(n);
    g.Start(n);
  }
  g.Regular({2, 3});
  g.Pump();
  EXPECT_EQ(g.E(2).role(), Role::kNonPrimary);
  EXPECT_NE(g.E(2).reason().find("0 of 3 members reachable (2 more without data"),
            std::string::npos)
      << g.E(2).reason();
  g.Start(1);
  g.Transitional({2, 3});
  g.Regular({1, 2, 3});
  g.Pump();
  for (NodeId n : {1, 2, 3}) {
    EXPECT_EQ(g.E(n).role(), Role::kPrimary) << n;
    EXPECT_EQ(g.D(n).data_["a"], "1") << n;
  }
}

TEST(ReplicationTest, ThreeWayPartitionTrapKeepsTheAcknowledgedWrite) {
  Group g({1, 2, 3, 4, 5});
  g.Regular({1, 2, 3, 4, 5});
  g.Pump();
  g.Submit(1, 42, "w=acked");
  g.Pump();
  ASSERT_TRUE(g.acked.count(Id(42)));
  // Another write reaches only the tail of the ring: delivered to node 1 in
  // the regular configuration, to the others in their transitional ones.
  g.Submit(1, 43, "y=yellow");
  g.DeliverNextTo({1});
  g.Transitional({1}, false);
  g.Transitional({2, 3});
  g.Transitional({4, 5});
  g.DropQueue();
  g.Crash(1);
  g.Regular({2, 3, 4});
  g.Pump();
  for (NodeId n : {2, 3, 4}) {
    EXPECT_EQ(g.E(n).role(), Role::kPrimary) << n;
    EXPECT_EQ(g.D(n).data_["w"], "acked") << n;
    EXPECT_EQ(g.D(n).data_["y"], "yellow") << n;  // yellow, adopted by the donor
  }
  // Node 1 comes back: it applied the same order, so it just rejoins.
  g.Start(1);
  g.Transitional({2, 3, 4});
  g.Regular({1, 2, 3, 4, 5});
  g.Pump();
  for (NodeId n : {1, 2, 3, 4, 5}) {
    EXPECT_EQ(g.E(n).role(), Role::kPrimary) << n;
    EXPECT_EQ(g.D(n).data_, g.D(2).data_) << n;
    EXPECT_EQ(g.E(n).meta().green_hash, g.E(2).meta().green_hash) << n;
  }
}

TEST(ReplicationTest, DivergedReplicaIsRebuilt) {
  Group g({1, 2, 3});
  g.Regular({1, 2, 3});
  g.Pump();
  // Node 1 alone applies an op as green that nobody else ever receives
  // (it crashed right after); it was never acknowledged.
  g.Submit(1, 5, "lost=1");
  g.DeliverNextTo({1});
  EXPECT_FALSE(g.acked.count(Id(5)));
  g.DropQueue();
  g.Crash(1);
  g.Transitional({2, 3});
  g.Regular({2, 3});
  g.Pump();
  g.Submit(2, 6, "other=1");
  g.Pump();
  ASSERT_TRUE(g.acked.count(Id(6)));
  g.Start(1);
  g.Transitional({2, 3});
  g.Regular({1, 2, 3});
  g.Pump();
  EXPECT_EQ(g.E(1).role(), Role::kPrimary);
  EXPECT_EQ(g.D(1).installs_, 1);
  EXPECT_EQ(g.D(1).data_, g.D(2).data_);
  EXPECT_EQ(g.D(1).data_.count("lost"), 0u);
}

// Node 3 delivers the install point of a ring {1,2,3} in its regular
// configuration and installs primary #2 there; nodes 1 and 2 deliver it only
// in their transitional configuration, do not install, and form primary #2
// of a later ring that acknowledges a write. When node 3 (holding a longer
// order from its phantom primary) meets node 1, node 1's later ring wins.
TEST(ReplicationTest, PhantomPrimaryWithTheSameNumberLosesToTheLaterRing) {
  Group g({1, 2, 3});
  g.Regular({1, 2, 3});
  g.Pump();  // primary #1 everywhere
  g.Transitional({1, 2, 3});
  g.Regular({1, 2, 3});
  g.DeliverAllTo({3});  // primary #2, at node 3 only
  ASSERT_EQ(g.E(3).role(), Role::kPrimary);
  ASSERT_EQ(g.E(3).meta().prim_number, 2u);
  g.Submit(3, 77, "phantom=1");  // green at node 3 only, never acknowledged
  g.DeliverLastTo({3});
  g.Submit(3, 79, "phantom2=1");
  g.DeliverLastTo({3});
  ASSERT_EQ(g.D(3).data_["phantom2"], "1");
  g.Transitional({3}, false);
  g.Transitional({1, 2});
  g.DropQueue();
  EXPECT_NE(g.E(1).role(), Role::kPrimary);
  g.Regular({1, 2});
  g.Pump();
  ASSERT_EQ(g.E(1).role(), Role::kPrimary);
  EXPECT_EQ(g.E(1).meta().prim_number, g.E(3).meta().prim_number);
  g.Submit(1, 78, "real=1");
  g.Pump();
  ASSERT_TRUE(g.acked.count(Id(78)));
  EXPECT_FALSE(g.acked.count(Id(77)));
  g.Transitional({1, 2});
  g.Regular({1, 2, 3});
  g.Pump();
  for (NodeId n : {1, 2, 3}) {
    EXPECT_EQ(g.E(n).role(), Role::kPrimary) << n;
    EXPECT_EQ(g.D(n).data_["real"], "1") << n;
    EXPECT_EQ(g.D(n).data_.count("phantom"), 0u) << n;
  }
}

TEST(ReplicationTest, MalformedMessagesAreCountedAndIgnored) {
  Group g({1});
  g.Regular({1});
  g.Pump();
  Input in;
  in.payload = "garbage";
  Effects fx;
  ASSERT_TRUE(g.E(1).Step(in, &fx).ok());
  in.payload = std::string("\xE7\x01\x01\x00", 4);
  ASSERT_TRUE(g.E(1).Step(in, &fx).ok());
  EXPECT_EQ(g.E(1).counters().malformed_messages, 2u);
  EXPECT_EQ(g.E(1).role(), Role::kPrimary);
}

}  // namespace
}  // namespace kvstore::repl
