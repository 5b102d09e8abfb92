// HashKV (server/hash_kv.h) on a real MvccStore in a temp dir, against
// hashes a real etcd (3.4.23) answered to `etcdctl endpoint hashkv --rev=N`
// after the same requests: puts, an overwrite, a two-put txn, a delete,
// compaction, deleting every key, and a put after that; plus etcd's errors
// for compacted and future revisions.
#include "hash_kv.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "../integration/test_util.h"
#include "convert.h"

namespace totemkv::server {
namespace {

class HashKvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::kvstore::StoreOptions options;
    options.sync = false;
    auto s = ::kvstore::MvccStore::Open(dir_.path() + "/db", options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s.value());
  }

  int64_t Apply(::kvstore::Op op) {
    auto r = store_->ApplyBatch({op}, {"test", ++seq_});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return 0;
    EXPECT_TRUE(r.value()[0].status.ok()) << r.value()[0].status.ToString();
    return r.value()[0].revision;
  }
  static ::kvstore::RequestOp PutOp(const std::string& key, const std::string& value) {
    ::kvstore::PutRequest put;
    put.key = key;
    put.value = value;
    return {put};
  }
  int64_t Put(const std::string& key, const std::string& value) {
    ::kvstore::Op op;
    op.request = std::get<::kvstore::PutRequest>(PutOp(key, value).request);
    return Apply(op);
  }
  int64_t Delete(const std::string& key, const std::string& range_end = "") {
    ::kvstore::DeleteRangeRequest del;
    del.key = key;
    del.range_end = range_end;
    ::kvstore::Op op;
    op.request = del;
    return Apply(op);
  }
  // (hash, compact_revision) at `revision`; fails the test on an error.
  std::pair<uint32_t, int64_t> Hash(int64_t revision) {
    totem::StatusOr<KvHash> h = HashKv(*store_, revision);
    EXPECT_TRUE(h.ok()) << "revision " << revision << ": " << h.status().ToString();
    if (!h.ok()) return {0, 0};
    return {h.value().hash, h.value().compact_revision};
  }

  totem::testing::TempDir dir_;
  std::unique_ptr<::kvstore::MvccStore> store_;
  uint64_t seq_ = 0;
};

TEST(Crc32cTest, Crc32c_CheckValueAndContinuation) {
  EXPECT_EQ(Crc32c(0, "123456789"), 0xE3069283u);  // the CRC-32C check value
  EXPECT_EQ(Crc32c(Crc32c(0, "1234"), "56789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(0, ""), 0u);
}

TEST_F(HashKvTest, HashKv_MatchesEtcdThroughCompactionAndDeletes) {
  using P = std::pair<uint32_t, int64_t>;
  EXPECT_EQ(Hash(0), P(1084519789u, -1));  // empty store, revision 1

  EXPECT_EQ(Put("a", "1"), 2);
  EXPECT_EQ(Put("b", "2"), 3);
  EXPECT_EQ(Put("a", "3"), 4);
  ::kvstore::TxnRequest txn;  // no compares: the success branch, one revision
  txn.success = {PutOp("c", "4"), PutOp("d", "5")};
  ::kvstore::Op op;
  op.request = txn;
  EXPECT_EQ(Apply(op), 5);
  EXPECT_EQ(Delete("b"), 6);
  EXPECT_EQ(Put("e", "6"), 7);
  EXPECT_EQ(Hash(0), P(1298002858u, -1));
  EXPECT_EQ(Hash(7), P(1298002858u, -1));
  EXPECT_EQ(Hash(4), P(2069675932u, -1));
  EXPECT_EQ(Hash(5), P(2055243766u, -1));

  ::kvstore::CompactionRequest compact;
  compact.revision = 5;
  op.request = compact;
  Apply(op);
  EXPECT_EQ(Hash(7), P(3872688691u, 5));
  EXPECT_EQ(Hash(6), P(1986775135u, 5));

  // No key live: the records compaction kept count again.
  EXPECT_EQ(Delete(std::string(1, '\0'), std::string(1, '\0')), 8);
  EXPECT_EQ(Hash(8), P(2665816819u, 5));
  EXPECT_EQ(Hash(0), P(2665816819u, 5));
  EXPECT_EQ(Put("f", "7"), 9);
  EXPECT_EQ(Hash(9), P(2765049058u, 5));
}

TEST_F(HashKvTest, HashKv_CompactedAndFutureRevisionsAreEtcdErrors) {
  for (int i = 0; i < 4; ++i) Put("k", std::to_string(i));  // revisions 2..5
  ::kvstore::CompactionRequest compact;
  compact.revision = 3;
  ::kvstore::Op op;
  op.request = compact;
  Apply(op);
  for (int64_t rev : {int64_t{2}, int64_t{3}}) {
    totem::StatusOr<KvHash> h = HashKv(*store_, rev);
    ASSERT_FALSE(h.ok()) << rev;
    const grpc::Status g = ToGrpcStatus(h.status());
    EXPECT_EQ(g.error_code(), grpc::StatusCode::OUT_OF_RANGE);
    EXPECT_EQ(g.error_message(), "etcdserver: mvcc: required revision has been compacted");
  }
  totem::StatusOr<KvHash> future = HashKv(*store_, 6);
  ASSERT_FALSE(future.ok());
  EXPECT_EQ(ToGrpcStatus(future.status()).error_message(),
            "etcdserver: mvcc: required revision is a future revision");
  EXPECT_TRUE(HashKv(*store_, 4).ok());
  EXPECT_EQ(HashKv(*store_, 0).value().hash_revision, 5);
}

}  // namespace
}  // namespace totemkv::server
