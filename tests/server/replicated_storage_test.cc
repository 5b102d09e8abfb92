// Unit tests of ReplicatedStorage (the replication engine's Storage on the
// RocksDB MvccStore) against real stores in per-test temp dirs: apply and
// results, restart, op log retention, yellow ops, the replicated member
// list, snapshot transfer between storages, undecodable payloads.
#include "replicated_storage.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

namespace totemkv::server {
namespace {

using ::kvstore::repl::Meta;
using ::kvstore::repl::OpId;
using ::kvstore::repl::OpKind;
using ::kvstore::repl::OpRecord;
using totemkv::kvstore::v1::MemberInfo;

OpId Id(uint8_t n) {
  OpId id{};
  id[0] = 0xAB;
  id[15] = n;
  return id;
}

OpRecord PutOp(totem::NodeId origin, uint8_t id, const std::string& key, const std::string& value) {
  totemkv::kvstore::v1::Op op;
  op.set_op_id(std::string(reinterpret_cast<const char*>(Id(id).data()), 16));
  op.set_origin_node(origin);
  op.mutable_put()->set_key(key);
  op.mutable_put()->set_value(value);
  OpRecord r;
  r.op_id = Id(id);
  r.origin = origin;
  r.payload = op.SerializeAsString();
  return r;
}

OpRecord BarrierOp(totem::NodeId origin, uint8_t id) {
  totemkv::kvstore::v1::Op op;
  op.set_origin_node(origin);
  op.mutable_barrier();
  OpRecord r;
  r.op_id = Id(id);
  r.origin = origin;
  r.payload = op.SerializeAsString();
  return r;
}

OpRecord MemberOp(OpKind kind, totem::NodeId member, const std::string& name) {
  OpRecord r;
  r.op_id = Id(static_cast<uint8_t>(200 + member));
  r.origin = 2;
  r.kind = kind;
  r.member = member;
  MemberInfo info;
  info.set_id(member);
  info.set_name(name);
  info.add_peer_urls("127.0.0.1:700" + std::to_string(member));
  r.payload = info.SerializeAsString();
  return r;
}

MemberInfo Member(totem::NodeId id) {
  MemberInfo m;
  m.set_id(id);
  m.set_name("n" + std::to_string(id));
  return m;
}

// One storage in its own temp dir, reopenable.
class Node {
 public:
  explicit Node(ReplicatedStorageOptions options) : options_(std::move(options)) {
    char tmpl[] = "/tmp/replicated_storage_test_XXXXXX";
    if (mkdtemp(tmpl) != nullptr) dir_ = tmpl;
    Reopen();
  }
  ~Node() {
    storage_.reset();
    store_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  void Reopen() {
    storage_.reset();
    store_.reset();
    ::kvstore::StoreOptions so;
    so.sync = false;  // keep the suite fast; durability is RocksDB's
    auto store = ::kvstore::MvccStore::Open(dir_, so);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store.value());
    auto storage = ReplicatedStorage::Open(store_, options_);
    ASSERT_TRUE(storage.ok()) << storage.status().ToString();
    storage_ = std::move(storage.value());
  }

  // Applies `ops` as the next green indexes (hash of index i: i * 1000 + 7).
  void Apply(const std::vector<OpRecord>& ops) {
    Meta m = storage_->LoadMeta();
    std::vector<uint64_t> hashes;
    for (size_t i = 0; i < ops.size(); ++i) hashes.push_back((m.green + 1 + i) * 1000 + 7);
    m.green += ops.size();
    m.green_hash = m.green * 1000 + 7;
    totem::Status s = storage_->ApplyGreen(ops, hashes, m);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  uint64_t Checksum() const {
    auto c = store_->Checksum();
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : 0;
  }

  ReplicatedStorage& storage() { return *storage_; }
  const std::string& dir() const { return dir_; }

 private:
  ReplicatedStorageOptions options_;
  std::string dir_;
  std::shared_ptr<::kvstore::MvccStore> store_;
  std::unique_ptr<ReplicatedStorage> storage_;
};

ReplicatedStorageOptions Options(totem::NodeId self) {
  ReplicatedStorageOptions o;
  o.self = self;
  o.bootstrap_members = {Member(1), Member(2), Member(3)};
  return o;
}

std::vector<totem::NodeId> Ids(const std::vector<MemberInfo>& members) {
  std::vector<totem::NodeId> out;
  for (const MemberInfo& m : members) out.push_back(m.id());
  return out;
}

// Streams a snapshot of `from` into `to` with small chunks.
void Transfer(ReplicatedStorage& from, ReplicatedStorage& to, const Meta& meta) {
  auto reader = from.OpenSnapshot();
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  auto writer = to.BeginSnapshotInstall();
  ASSERT_TRUE(writer.ok()) << writer.status().ToString();
  int chunks = 0;
  for (;;) {
    std::string chunk;
    auto more = (*reader)->Next(256, &chunk);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    ++chunks;
    totem::Status s = (*writer)->Add(chunk);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  EXPECT_GT(chunks, 1);
  totem::Status s = (*writer)->Commit(meta);
  ASSERT_TRUE(s.ok()) << s.ToString();
}

TEST(ReplicatedStorageTest, ApplyGreen_KeepsResultsOfOwnOpsOnly) {
  Node n(Options(1));
  std::vector<::kvstore::Op> observed;
  n.storage().SetApplyObserver(
      [&](const std::vector<::kvstore::Op>& ops, const std::vector<::kvstore::OpResult>& results) {
        EXPECT_EQ(ops.size(), results.size());
        observed.insert(observed.end(), ops.begin(), ops.end());
      });
  n.Apply({PutOp(1, 1, "a", "1"), PutOp(2, 2, "b", "1"), BarrierOp(1, 3), PutOp(1, 4, "c", "1")});
  EXPECT_EQ(observed.size(), 3u);  // the barrier is not a store op

  auto a = n.storage().TakeResult(Id(1));
  ASSERT_TRUE(a.has_value());
  EXPECT_TRUE(a->status.ok());
  EXPECT_EQ(a->revision, 2);
  EXPECT_FALSE(n.storage().TakeResult(Id(1)).has_value());  // taken
  EXPECT_FALSE(n.storage().TakeResult(Id(2)).has_value());  // node 2's op
  auto barrier = n.storage().TakeResult(Id(3));
  ASSERT_TRUE(barrier.has_value());
  EXPECT_EQ(barrier->revision, 3);  // after "a" and "b", before "c"
  auto c = n.storage().TakeResult(Id(4));
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->revision, 4);

  EXPECT_EQ(n.storage().store().Position(), (::kvstore::AppliedPosition{"", 4}));
  EXPECT_EQ(n.storage().LoadMeta().green, 4u);
}

TEST(ReplicatedStorageTest, ApplyGreen_BatchingDoesNotChangeTheState) {
  Node a(Options(1)), b(Options(2));
  const std::vector<OpRecord> ops = {PutOp(1, 1, "a", "1"), BarrierOp(2, 2),
                                     MemberOp(OpKind::kMemberAdd, 4, "n4"), PutOp(2, 3, "a", "2"),
                                     PutOp(1, 1, "a", "retry")};
  a.Apply(ops);
  for (const OpRecord& op : ops) b.Apply({op});
  EXPECT_EQ(a.Checksum(), b.Checksum());
  EXPECT_EQ(a.storage().LoadMeta(), b.storage().LoadMeta());
  EXPECT_EQ(a.storage().store().CurrentRevision(), 3);
}

TEST(ReplicatedStorageTest, ApplyGreen_RejectsOpsThatDoNotContinueTheOrder) {
  Node n(Options(1));
  n.Apply({PutOp(1, 1, "a", "1")});
  const uint64_t before = n.Checksum();
  Meta m = n.storage().LoadMeta();
  m.green += 2;  // claims two ops, gives one
  totem::Status s = n.storage().ApplyGreen({PutOp(1, 2, "b", "1")}, {1}, m);
  EXPECT_EQ(s.code(), totem::StatusCode::kFailedPrecondition) << s.ToString();
  m.green -= 1;
  s = n.storage().ApplyGreen({PutOp(1, 2, "b", "1")}, {}, m);
  EXPECT_EQ(s.code(), totem::StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_EQ(n.Checksum(), before);
  EXPECT_EQ(n.storage().LoadMeta().green, 1u);
}

TEST(ReplicatedStorageTest, Restart_MetaAndLogSurviveResultsDoNot) {
  Node n(Options(1));
  n.Apply({PutOp(1, 1, "a", "1"), PutOp(1, 2, "b", "1")});
  Meta m = n.storage().LoadMeta();
  m.prim_number = 5;
  m.prim_ring = totem::RingId{2, 88};
  m.configured = {1, 2, 3};
  ASSERT_TRUE(n.storage().SaveMeta(m).ok());
  const uint64_t sum = n.Checksum();

  n.Reopen();
  EXPECT_EQ(n.storage().LoadMeta(), m);
  EXPECT_EQ(n.Checksum(), sum);
  EXPECT_EQ(n.storage().LogFirst(), 1u);
  OpRecord op;
  uint64_t hash = 0;
  ASSERT_TRUE(n.storage().ReadLog(2, &op, &hash));
  EXPECT_EQ(op, PutOp(1, 2, "b", "1"));
  EXPECT_EQ(hash, 2007u);
  EXPECT_FALSE(n.storage().ReadLog(3, &op, &hash));
  EXPECT_FALSE(n.storage().ReadLog(0, &op, &hash));
  EXPECT_FALSE(n.storage().TakeResult(Id(1)).has_value());  // results are memory only
  n.Apply({PutOp(1, 3, "c", "1")});
  EXPECT_EQ(n.storage().LoadMeta().green, 3u);
}

TEST(ReplicatedStorageTest, Log_TrimmedByOpCount) {
  ReplicatedStorageOptions o = Options(1);
  o.log_retention_ops = 10;
  Node n(o);
  for (int i = 0; i < 30; ++i) n.Apply({PutOp(1, static_cast<uint8_t>(i + 1), "k", "v")});
  const uint64_t first = n.storage().LogFirst();
  EXPECT_GE(first, 21u);  // at most 10 (+ the trim step) retained
  EXPECT_LE(first, 30u);
  OpRecord op;
  uint64_t hash = 0;
  EXPECT_FALSE(n.storage().ReadLog(first - 1, &op, &hash));
  for (uint64_t i = first; i <= 30; ++i) {
    ASSERT_TRUE(n.storage().ReadLog(i, &op, &hash)) << i;
    EXPECT_EQ(hash, i * 1000 + 7);
  }
  n.Reopen();
  EXPECT_EQ(n.storage().LogFirst(), first);
  EXPECT_FALSE(n.storage().ReadLog(first - 1, &op, &hash));
  EXPECT_TRUE(n.storage().ReadLog(30, &op, &hash));
}

TEST(ReplicatedStorageTest, Log_TrimmedByBytes) {
  ReplicatedStorageOptions o = Options(1);
  o.log_retention_bytes = 2000;
  Node n(o);
  // Each entry is a little over 300 bytes: at most 6 fit in 2000 + 1/16.
  for (int i = 0; i < 20; ++i) {
    n.Apply({PutOp(1, static_cast<uint8_t>(i + 1), "k", std::string(300, 'v'))});
  }
  const uint64_t retained = 20 - n.storage().LogFirst() + 1;
  EXPECT_GE(retained, 5u);
  EXPECT_LE(retained, 6u);
  OpRecord op;
  uint64_t hash = 0;
  EXPECT_TRUE(n.storage().ReadLog(20, &op, &hash));
}

TEST(ReplicatedStorageTest, Yellow_SaveLoadAndClear) {
  Node n(Options(1));
  n.Apply({PutOp(1, 1, "a", "1")});
  const uint64_t sum = n.Checksum();
  Meta m = n.storage().LoadMeta();
  m.prim_number = 3;
  std::vector<OpRecord> yellow = {PutOp(2, 7, "y", "1"), MemberOp(OpKind::kMemberAdd, 4, "n4")};
  ASSERT_TRUE(n.storage().SaveYellow(yellow, m).ok());
  EXPECT_EQ(n.storage().LoadYellow(), yellow);
  EXPECT_EQ(n.Checksum(), sum);  // node-local, not replicated state
  n.Reopen();
  EXPECT_EQ(n.storage().LoadYellow(), yellow);
  EXPECT_EQ(n.storage().LoadMeta(), m);
  // A shorter list replaces, an empty one clears.
  ASSERT_TRUE(n.storage().SaveYellow({yellow[1]}, m).ok());
  n.Reopen();
  EXPECT_EQ(n.storage().LoadYellow(), std::vector<OpRecord>{yellow[1]});
  ASSERT_TRUE(n.storage().SaveYellow({}, m).ok());
  n.Reopen();
  EXPECT_TRUE(n.storage().LoadYellow().empty());
}

TEST(ReplicatedStorageTest, Members_AddAndRemoveAreReplicatedState) {
  Node a(Options(1)), b(Options(2)), c(Options(3));
  EXPECT_EQ(Ids(a.storage().Members()), (std::vector<totem::NodeId>{1, 2, 3}));
  a.Apply({MemberOp(OpKind::kMemberAdd, 4, "n4")});
  b.Apply({MemberOp(OpKind::kMemberAdd, 4, "n4")});
  c.Apply({MemberOp(OpKind::kMemberAdd, 5, "n5")});
  EXPECT_EQ(a.Checksum(), b.Checksum());
  EXPECT_NE(a.Checksum(), c.Checksum());
  std::vector<MemberInfo> members = a.storage().Members();
  ASSERT_EQ(Ids(members), (std::vector<totem::NodeId>{1, 2, 3, 4}));
  EXPECT_EQ(members[3].name(), "n4");
  EXPECT_EQ(members[3].peer_urls_size(), 1);
  EXPECT_EQ(members[0].name(), "n1");  // bootstrap entries recorded too

  a.Apply({MemberOp(OpKind::kMemberRemove, 2, "")});
  EXPECT_NE(a.Checksum(), b.Checksum());
  a.Reopen();
  EXPECT_EQ(Ids(a.storage().Members()), (std::vector<totem::NodeId>{1, 3, 4}));
}

TEST(ReplicatedStorageTest, Snapshot_InstallsIntoFreshAndNonEmptyStorage) {
  Node donor(Options(1)), fresh(Options(2)), stale(Options(3));
  for (int i = 0; i < 20; ++i) {
    donor.Apply({PutOp(1, static_cast<uint8_t>(i + 1), "k" + std::to_string(i), "v")});
  }
  donor.Apply({MemberOp(OpKind::kMemberAdd, 4, "n4")});
  // The stale one diverged: other ops, a longer log, yellow ops.
  for (int i = 0; i < 30; ++i) stale.Apply({PutOp(3, static_cast<uint8_t>(i + 1), "s", "x")});
  ASSERT_TRUE(
      stale.storage().SaveYellow({PutOp(3, 99, "y", "y")}, stale.storage().LoadMeta()).ok());

  Meta meta = donor.storage().LoadMeta();
  meta.prim_number = 9;
  meta.configured = {1, 2, 3, 4};
  for (Node* target : {&fresh, &stale}) {
    Transfer(donor.storage(), target->storage(), meta);
    EXPECT_EQ(target->Checksum(), donor.Checksum());
    EXPECT_EQ(target->storage().LoadMeta(), meta);
    EXPECT_EQ(target->storage().LogFirst(), meta.green + 1);
    EXPECT_TRUE(target->storage().LoadYellow().empty());
    EXPECT_EQ(Ids(target->storage().Members()), (std::vector<totem::NodeId>{1, 2, 3, 4}));
    OpRecord op;
    uint64_t hash = 0;
    EXPECT_FALSE(target->storage().ReadLog(meta.green, &op, &hash));
    target->Reopen();
    EXPECT_EQ(target->storage().LoadMeta(), meta);
    EXPECT_EQ(target->storage().LogFirst(), meta.green + 1);
    EXPECT_TRUE(target->storage().LoadYellow().empty());
    EXPECT_EQ(target->Checksum(), donor.Checksum());
  }
  // Applying continues identically everywhere.
  ASSERT_TRUE(donor.storage().SaveMeta(meta).ok());
  for (Node* n : {&donor, &fresh, &stale}) n->Apply({PutOp(2, 150, "after", "1")});
  EXPECT_EQ(fresh.Checksum(), donor.Checksum());
  EXPECT_EQ(stale.Checksum(), donor.Checksum());
  EXPECT_EQ(fresh.storage().LogFirst(), meta.green + 1);
  EXPECT_EQ(fresh.storage().store().CurrentRevision(), donor.storage().store().CurrentRevision());
}

TEST(ReplicatedStorageTest, Snapshot_AbandonedInstallChangesNothing) {
  Node donor(Options(1)), target(Options(2));
  for (int i = 0; i < 20; ++i) donor.Apply({PutOp(1, static_cast<uint8_t>(i + 1), "k", "v")});
  target.Apply({PutOp(2, 1, "mine", "1")});
  const uint64_t sum = target.Checksum();
  const Meta meta = target.storage().LoadMeta();
  {
    auto reader = donor.storage().OpenSnapshot();
    ASSERT_TRUE(reader.ok());
    auto writer = target.storage().BeginSnapshotInstall();
    ASSERT_TRUE(writer.ok());
    std::string chunk;
    auto more = (*reader)->Next(256, &chunk);
    ASSERT_TRUE(more.ok() && *more);
    ASSERT_TRUE((*writer)->Add(chunk).ok());
  }
  EXPECT_EQ(target.Checksum(), sum);
  EXPECT_EQ(target.storage().LoadMeta(), meta);
  OpRecord op;
  uint64_t hash = 0;
  EXPECT_TRUE(target.storage().ReadLog(1, &op, &hash));
}

TEST(ReplicatedStorageTest, Undecodable_SkippedIdenticallyEverywhere) {
  Node a(Options(1)), b(Options(2));
  OpRecord garbage;
  garbage.op_id = Id(9);
  garbage.origin = 1;
  garbage.payload = "\xFF\xFF\xFF not a protobuf";
  for (Node* n : {&a, &b}) n->Apply({garbage, PutOp(1, 10, "a", "1")});
  EXPECT_EQ(a.Checksum(), b.Checksum());
  EXPECT_EQ(a.storage().undecodable_ops(), 1u);
  auto skipped = a.storage().TakeResult(Id(9));
  ASSERT_TRUE(skipped.has_value());
  EXPECT_EQ(skipped->status.code(), totem::StatusCode::kInvalidArgument);
  auto put = a.storage().TakeResult(Id(10));
  ASSERT_TRUE(put.has_value());
  EXPECT_EQ(put->revision, 2);
  EXPECT_EQ(a.storage().LoadMeta().green, 2u);
  EXPECT_FALSE(b.storage().TakeResult(Id(9)).has_value());  // not b's op
}

TEST(ReplicatedStorageTest, Results_DroppedAfterRetention) {
  ReplicatedStorageOptions o = Options(1);
  o.result_retention_ops = 5;
  Node n(o);
  n.Apply({PutOp(1, 1, "a", "1")});
  for (int i = 0; i < 10; ++i) n.Apply({PutOp(2, static_cast<uint8_t>(i + 2), "b", "1")});
  EXPECT_FALSE(n.storage().TakeResult(Id(1)).has_value());
  n.Apply({PutOp(1, 50, "c", "1")});
  EXPECT_TRUE(n.storage().TakeResult(Id(50)).has_value());
}

}  // namespace
}  // namespace totemkv::server
