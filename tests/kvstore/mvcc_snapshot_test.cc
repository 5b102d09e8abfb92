// Unit tests of MvccStore's aux records (local and replicated namespaces)
// and of snapshot export / install, against real RocksDB in per-test temp
// dirs: atomicity with ApplyBatch, checksum coverage, round trips that must
// reproduce the donor's checksum and reads exactly, abandoned and corrupt
// installs that must leave the target untouched.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kvstore/mvcc_store.h"
#include "store_test_util.h"

namespace kvstore {
namespace {

using testing::MakeOp;
using testing::Put;

RangeRequest All() {
  RangeRequest r;
  r.key = std::string(1, '\0');
  r.range_end = std::string(1, '\0');
  return r;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/kvstore_snapshot_test_XXXXXX";
    if (mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    if (!path_.empty()) std::filesystem::remove_all(path_);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<MvccStore> OpenStore(const std::string& path) {
  StoreOptions options;
  options.sync = false;  // keep the suite fast; durability is RocksDB's
  auto s = MvccStore::Open(path, options);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s.value()) : nullptr;
}

uint64_t Sum(const MvccStore& store) {
  auto c = store.Checksum();
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return c.ok() ? *c : 0;
}

// Every chunk of a fresh export of `store`.
std::vector<std::string> Export(const MvccStore& store, size_t max_bytes) {
  std::vector<std::string> chunks;
  auto e = store.ExportSnapshot();
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  if (!e.ok()) return chunks;
  for (;;) {
    std::string chunk;
    auto more = (*e)->Next(max_bytes, &chunk);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

Status Install(MvccStore* store, const std::vector<std::string>& chunks,
               const std::vector<AuxWrite>& aux) {
  auto in = store->BeginInstall();
  if (!in.ok()) return in.status();
  for (const std::string& c : chunks) {
    Status s = (*in)->Add(c);
    if (!s.ok()) return s;
  }
  return (*in)->Commit(aux);
}

class MvccSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(donor_dir_.path().empty());
    ASSERT_FALSE(target_dir_.path().empty());
    donor_ = OpenStore(donor_dir_.path());
    target_ = OpenStore(target_dir_.path());
    ASSERT_NE(donor_, nullptr);
    ASSERT_NE(target_, nullptr);
  }

  void Apply(MvccStore* store, std::vector<Op> ops, uint64_t seq,
             const std::vector<AuxWrite>& aux = {}) {
    auto r = store->ApplyBatch(ops, AppliedPosition{"", seq}, aux);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    for (const OpResult& res : *r) ASSERT_TRUE(res.status.ok()) << res.status.ToString();
  }

  // A donor with history, a compaction, leases with attached keys, dedup
  // ids and both kinds of aux records.
  void Populate() {
    Apply(donor_.get(), {MakeOp(LeaseGrantRequest{7, 30}, 1), MakeOp(Put("a", "1"), 2)}, 1);
    Apply(donor_.get(), {MakeOp(Put("b", "1", 7), 3), MakeOp(Put("a", "2"), 4)}, 2,
          {AuxWrite::Put(true, "member/1", "m1"), AuxWrite::Put(false, "log/1", "op1")});
    Apply(donor_.get(), {MakeOp(DeleteRangeRequest{"a", "", false}, 5)}, 3);
    Apply(donor_.get(), {MakeOp(CompactionRequest{3})}, 4);
    std::vector<Op> many;
    for (int i = 0; i < 50; ++i) {
      many.push_back(MakeOp(Put("k" + std::to_string(i), std::string(40, 'v'))));
    }
    Apply(donor_.get(), std::move(many), 5);
  }

  TempDir donor_dir_, target_dir_;
  std::unique_ptr<MvccStore> donor_, target_;
};

TEST_F(MvccSnapshotTest, Aux_WrittenWithBatchAndReadBack) {
  Apply(donor_.get(), {MakeOp(Put("a", "1"))}, 1,
        {AuxWrite::Put(false, "log/1", "x1"), AuxWrite::Put(false, "log/2", "x2"),
         AuxWrite::Put(true, "member/1", "m1")});
  auto local = donor_->ReadAux(false, "log/1");
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(*local, std::optional<std::string>("x1"));
  auto replicated = donor_->ReadAux(true, "member/1");
  ASSERT_TRUE(replicated.ok());
  EXPECT_EQ(*replicated, std::optional<std::string>("m1"));
  // The namespaces are separate.
  auto absent = donor_->ReadAux(true, "log/1");
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());
  auto scan = donor_->ScanAux(false, "log/");
  ASSERT_TRUE(scan.ok());
  ASSERT_EQ(scan->size(), 2u);
  EXPECT_EQ((*scan)[0].first, "log/1");
  EXPECT_EQ((*scan)[1].second, "x2");
  auto limited = donor_->ScanAux(false, "log/", 1);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ(limited->size(), 1u);

  // Survives a reopen.
  donor_.reset();
  donor_ = OpenStore(donor_dir_.path());
  ASSERT_NE(donor_, nullptr);
  local = donor_->ReadAux(false, "log/2");
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(*local, std::optional<std::string>("x2"));
}

TEST_F(MvccSnapshotTest, Aux_InvalidWriteRejectsTheWholeBatch) {
  const uint64_t before = Sum(*donor_);
  auto r = donor_->ApplyBatch({MakeOp(Put("a", "1"))}, AppliedPosition{"", 1},
                              {AuxWrite::Put(false, "", "v")});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(donor_->CurrentRevision(), 1);
  EXPECT_EQ(Sum(*donor_), before);
  Status s = donor_->WriteAux({AuxWrite::DeleteRange(false, "b", "a")});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
}

TEST_F(MvccSnapshotTest, Aux_DeleteAndDeleteRange) {
  std::vector<AuxWrite> puts;
  for (char c = 'a'; c <= 'e'; ++c) puts.push_back(AuxWrite::Put(false, std::string(1, c), "v"));
  ASSERT_TRUE(donor_->WriteAux(puts).ok());
  ASSERT_TRUE(
      donor_->WriteAux({AuxWrite::DeleteRange(false, "b", "d"), AuxWrite::Delete(false, "e")})
          .ok());
  auto scan = donor_->ScanAux(false, "");
  ASSERT_TRUE(scan.ok());
  std::vector<std::string> keys;
  for (const auto& [k, v] : *scan) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "d"}));
}

TEST_F(MvccSnapshotTest, Checksum_CoversReplicatedAuxButNotLocalAux) {
  const uint64_t base = Sum(*donor_);
  ASSERT_TRUE(donor_->WriteAux({AuxWrite::Put(false, "meta", "anything")}).ok());
  EXPECT_EQ(Sum(*donor_), base);
  ASSERT_TRUE(donor_->WriteAux({AuxWrite::Put(true, "member/1", "m")}).ok());
  const uint64_t with_member = Sum(*donor_);
  EXPECT_NE(with_member, base);
  ASSERT_TRUE(donor_->WriteAux({AuxWrite::Put(true, "member/1", "changed")}).ok());
  EXPECT_NE(Sum(*donor_), with_member);
}

TEST_F(MvccSnapshotTest, Install_RoundTripReproducesDonor) {
  Populate();
  const std::vector<std::string> chunks = Export(*donor_, 200);
  ASSERT_GT(chunks.size(), 3u);  // small chunks: many of them
  ASSERT_TRUE(Install(target_.get(), chunks, {AuxWrite::Put(false, "meta", "engine")}).ok());

  EXPECT_EQ(Sum(*target_), Sum(*donor_));
  EXPECT_EQ(target_->CurrentRevision(), donor_->CurrentRevision());
  EXPECT_EQ(target_->CompactedRevision(), donor_->CompactedRevision());
  EXPECT_EQ(target_->Position(), donor_->Position());
  EXPECT_EQ(target_->AppliedWrites(), donor_->AppliedWrites());
  auto want = donor_->Range(All());
  auto got = target_->Range(All());
  ASSERT_TRUE(want.ok() && got.ok());
  ASSERT_EQ(got->kvs.size(), want->kvs.size());
  for (size_t i = 0; i < want->kvs.size(); ++i) {
    EXPECT_EQ(got->kvs[i].key, want->kvs[i].key);
    EXPECT_EQ(got->kvs[i].mod_revision, want->kvs[i].mod_revision);
    EXPECT_EQ(got->kvs[i].value, want->kvs[i].value);
  }
  HistoryRequest h;
  h.key = std::string(1, '\0');
  h.range_end = std::string(1, '\0');
  h.start_revision = donor_->CompactedRevision();
  auto hw = donor_->History(h);
  auto hg = target_->History(h);
  ASSERT_TRUE(hw.ok() && hg.ok());
  EXPECT_EQ(hg->size(), hw->size());
  auto lw = donor_->TimeToLive(7, true);
  auto lg = target_->TimeToLive(7, true);
  ASSERT_TRUE(lw.ok() && lg.ok()) << lg.status().ToString();
  EXPECT_EQ(lg->keys, lw->keys);
  EXPECT_EQ(lg->generation, lw->generation);
  auto member = target_->ReadAux(true, "member/1");
  ASSERT_TRUE(member.ok());
  EXPECT_EQ(*member, std::optional<std::string>("m1"));
  // Local aux: only what the commit wrote, none of the donor's.
  auto local = target_->ScanAux(false, "");
  ASSERT_TRUE(local.ok());
  ASSERT_EQ(local->size(), 1u);
  EXPECT_EQ((*local)[0].first, "meta");

  // Dedup ids came along: a retry of op id 2 is a duplicate on both.
  auto dw = donor_->ApplyBatch({MakeOp(Put("a", "again"), 2)}, AppliedPosition{"", 6});
  auto dg = target_->ApplyBatch({MakeOp(Put("a", "again"), 2)}, AppliedPosition{"", 6});
  ASSERT_TRUE(dw.ok() && dg.ok());
  EXPECT_TRUE((*dg)[0].duplicate);
  // Revisions continue from the donor's, identically.
  Apply(donor_.get(), {MakeOp(Put("z", "1"))}, 7);
  Apply(target_.get(), {MakeOp(Put("z", "1"))}, 7);
  EXPECT_EQ(target_->CurrentRevision(), donor_->CurrentRevision());
  EXPECT_EQ(Sum(*target_), Sum(*donor_));

  // And the install is durable.
  const uint64_t sum = Sum(*target_);
  target_.reset();
  target_ = OpenStore(target_dir_.path());
  ASSERT_NE(target_, nullptr);
  EXPECT_EQ(Sum(*target_), sum);
  EXPECT_EQ(target_->CurrentRevision(), donor_->CurrentRevision());
}

TEST_F(MvccSnapshotTest, Install_ReplacesEverythingInNonEmptyStore) {
  Populate();
  // The target has its own, longer history, leases and aux records.
  Apply(target_.get(), {MakeOp(LeaseGrantRequest{9, 30}), MakeOp(Put("only-here", "x", 9))}, 1,
        {AuxWrite::Put(true, "member/5", "m5"), AuxWrite::Put(false, "log/9", "op9")});
  for (uint64_t i = 2; i < 100; ++i) Apply(target_.get(), {MakeOp(Put("t", "v"))}, i);
  ASSERT_TRUE(Install(target_.get(), Export(*donor_, 64 * 1024), {}).ok());
  EXPECT_EQ(Sum(*target_), Sum(*donor_));
  EXPECT_EQ(target_->CurrentRevision(), donor_->CurrentRevision());
  RangeRequest r;
  r.key = "only-here";
  auto gone = target_->Range(r);
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(gone->count, 0);
  EXPECT_EQ(target_->TimeToLive(9, false).status().code(), StatusCode::kFailedPrecondition);
  auto member = target_->ReadAux(true, "member/5");
  ASSERT_TRUE(member.ok());
  EXPECT_FALSE(member->has_value());
  auto local = target_->ScanAux(false, "");
  ASSERT_TRUE(local.ok());
  EXPECT_TRUE(local->empty());
}

TEST_F(MvccSnapshotTest, Export_IsPointInTime) {
  Populate();
  const uint64_t at_export = Sum(*donor_);
  auto e = donor_->ExportSnapshot();
  ASSERT_TRUE(e.ok());
  std::vector<std::string> chunks;
  std::string chunk;
  auto more = (*e)->Next(100, &chunk);
  ASSERT_TRUE(more.ok() && *more);
  chunks.push_back(chunk);
  // Writes after the export started are not in it.
  Apply(donor_.get(), {MakeOp(Put("later", "1"))}, 10, {AuxWrite::Put(true, "member/2", "m2")});
  for (;;) {
    more = (*e)->Next(100, &chunk);
    ASSERT_TRUE(more.ok());
    if (!*more) break;
    chunks.push_back(chunk);
  }
  ASSERT_TRUE(Install(target_.get(), chunks, {}).ok());
  EXPECT_EQ(Sum(*target_), at_export);
  EXPECT_NE(Sum(*target_), Sum(*donor_));
}

TEST_F(MvccSnapshotTest, Install_AbandonedLeavesStoreUntouched) {
  Populate();
  Apply(target_.get(), {MakeOp(Put("mine", "1"))}, 1, {AuxWrite::Put(false, "meta", "m")});
  const uint64_t before = Sum(*target_);
  const std::vector<std::string> chunks = Export(*donor_, 200);
  ASSERT_GT(chunks.size(), 2u);
  {
    auto in = target_->BeginInstall();
    ASSERT_TRUE(in.ok());
    ASSERT_TRUE((*in)->Add(chunks[0]).ok());
    ASSERT_TRUE((*in)->Add(chunks[1]).ok());
    // Without the last chunk, Commit refuses.
    Status s = (*in)->Commit({});
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  }  // destroyed without a commit
  EXPECT_EQ(Sum(*target_), before);
  EXPECT_EQ(target_->CurrentRevision(), 2);
  auto meta = target_->ReadAux(false, "meta");
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(*meta, std::optional<std::string>("m"));
  // No staging file is left behind.
  const auto staging = std::filesystem::path(target_dir_.path()) / "snapshot-staging";
  if (std::filesystem::exists(staging)) {
    EXPECT_TRUE(std::filesystem::is_empty(staging));
  }
}

TEST_F(MvccSnapshotTest, Install_RejectsCorruptMisorderedAndForeignChunks) {
  Populate();
  const uint64_t before = Sum(*target_);
  const std::vector<std::string> chunks = Export(*donor_, 200);
  ASSERT_GT(chunks.size(), 2u);

  auto expect_rejected = [&](std::vector<std::string> sequence, const std::string& message) {
    auto in = target_->BeginInstall();
    ASSERT_TRUE(in.ok());
    Status s;
    for (const std::string& c : sequence) {
      s = (*in)->Add(c);
      if (!s.ok()) break;
    }
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
    EXPECT_NE(s.message().find(message), std::string::npos) << s.message();
    // The installer stays unusable.
    EXPECT_FALSE((*in)->Commit({}).ok());
  };

  std::string flipped = chunks[1];
  flipped[flipped.size() / 2] ^= 0x01;
  expect_rejected({chunks[0], flipped}, "checksum mismatch");
  expect_rejected({chunks[0], chunks[1].substr(0, 10)}, "not a version 1 snapshot chunk");
  expect_rejected({chunks[0], chunks[2]}, "out of order");
  expect_rejected({chunks[1]}, "out of order");
  // A chunk of a later export of the same store carries another tag.
  Apply(donor_.get(), {MakeOp(Put("new", "1"))}, 20);
  const std::vector<std::string> other = Export(*donor_, 200);
  expect_rejected({chunks[0], other[1]}, "another snapshot");
  std::vector<std::string> extra = chunks;
  extra.push_back(chunks.back());
  expect_rejected(extra, "after the last chunk");
  EXPECT_EQ(Sum(*target_), before);

  // Commit takes only local aux puts.
  auto in = target_->BeginInstall();
  ASSERT_TRUE(in.ok());
  for (const std::string& c : chunks) ASSERT_TRUE((*in)->Add(c).ok());
  Status s = (*in)->Commit({AuxWrite::Put(true, "member/1", "m")});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_EQ(Sum(*target_), before);
}

TEST_F(MvccSnapshotTest, Open_RemovesStaleStagingFiles) {
  // What a crash in the middle of an install leaves behind.
  const auto staging = std::filesystem::path(target_dir_.path()) / "snapshot-staging";
  std::filesystem::create_directories(staging);
  { std::ofstream(staging / "staging-0.sst") << "partial"; }
  target_.reset();
  target_ = OpenStore(target_dir_.path());
  ASSERT_NE(target_, nullptr);
  EXPECT_FALSE(std::filesystem::exists(staging));
}

}  // namespace
}  // namespace kvstore
