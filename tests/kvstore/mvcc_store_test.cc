// Unit tests of kvstore::MvccStore against real RocksDB (one temp dir per
// test): etcd MVCC semantics of every op and compare, history, compaction,
// leases, limits, op-id dedup, the applied position and determinism.
#include "kvstore/mvcc_store.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <ostream>
#include <random>

#include "store_test_util.h"

namespace kvstore {

void PrintTo(const KeyValue& kv, std::ostream* os) {
  *os << "{" << kv.key << " c" << kv.create_revision << " m" << kv.mod_revision << " v"
      << kv.version << " '" << kv.value << "' l" << kv.lease << "}";
}

namespace {

using testing::MakeOp;
using testing::Put;

DeleteRangeRequest Del(std::string key, std::string range_end = "", bool prev_kv = false) {
  return DeleteRangeRequest{std::move(key), std::move(range_end), prev_kv};
}

RangeRequest Get(std::string key, std::string range_end = "", int64_t revision = 0) {
  RangeRequest r;
  r.key = std::move(key);
  r.range_end = std::move(range_end);
  r.revision = revision;
  return r;
}

Compare Cmp(std::string key, Compare::Target target, Compare::Result result) {
  Compare c;
  c.key = std::move(key);
  c.target = target;
  c.result = result;
  return c;
}

class MvccStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kvstore_test_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Reopen(StoreOptions options = {}) {
    store_.reset();
    options.sync = false;  // keep the suite fast; durability is RocksDB's
    auto s = MvccStore::Open(dir_, options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s.value());
  }

  std::vector<OpResult> Batch(const std::vector<Op>& ops) {
    auto r = store_->ApplyBatch(ops, AppliedPosition{"cfg", ++seq_});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r.value()) : std::vector<OpResult>(ops.size());
  }
  OpResult Apply(decltype(Op::request) request, uint8_t id = 0) {
    return Batch({MakeOp(std::move(request), id)})[0];
  }
  RangeResponse Read(const RangeRequest& r) {
    auto resp = store_->Range(r);
    EXPECT_TRUE(resp.ok()) << resp.status().ToString();
    return resp.ok() ? resp.value() : RangeResponse{};
  }
  std::optional<KeyValue> Kv(const std::string& key, int64_t rev = 0) {
    RangeResponse r = Read(Get(key, "", rev));
    if (r.kvs.empty()) return std::nullopt;
    return r.kvs[0];
  }
  std::vector<std::string> Keys(const RangeResponse& r) {
    std::vector<std::string> out;
    for (const KeyValue& kv : r.kvs) out.push_back(kv.key);
    return out;
  }
  uint64_t Sum() {
    auto s = store_->Checksum();
    EXPECT_TRUE(s.ok());
    return s.ok() ? s.value() : 0;
  }

  std::string dir_;
  uint64_t seq_ = 0;
  std::unique_ptr<MvccStore> store_;
};

TEST_F(MvccStoreTest, Put_RevisionsVersionsCreateMod) {
  EXPECT_EQ(store_->CurrentRevision(), 1);
  OpResult r = Apply(Put("a", "1"));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.revision, 2);
  EXPECT_EQ(Kv("a"), (KeyValue{"a", 2, 2, 1, "1", 0}));
  EXPECT_EQ(Apply(Put("a", "2")).revision, 3);
  EXPECT_EQ(Kv("a"), (KeyValue{"a", 2, 3, 2, "2", 0}));
  EXPECT_EQ(Apply(Put("b", "x")).revision, 4);
  EXPECT_EQ(Kv("b"), (KeyValue{"b", 4, 4, 1, "x", 0}));
  EXPECT_EQ(Kv("a", 2), (KeyValue{"a", 2, 2, 1, "1", 0}));
  EXPECT_FALSE(Kv("b", 3));
  EXPECT_EQ(store_->CurrentRevision(), 4);
}

TEST_F(MvccStoreTest, Put_PrevKvIgnoreValueIgnoreLease) {
  PutRequest p = Put("k", "v1");
  p.prev_kv = true;
  EXPECT_FALSE(std::get<PutResponse>(Apply(p).response).prev_kv);
  p.value = "v2";
  auto prev = std::get<PutResponse>(Apply(p).response).prev_kv;
  ASSERT_TRUE(prev);
  EXPECT_EQ(prev->value, "v1");

  PutRequest missing = Put("nope", "");
  missing.ignore_value = true;
  OpResult r = Apply(missing);
  EXPECT_EQ(r.status.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status.message(), kErrKeyNotFound);
  EXPECT_EQ(r.revision, 3);

  ASSERT_TRUE(Apply(LeaseGrantRequest{7, 10}).status.ok());
  ASSERT_TRUE(Apply(Put("k", "v3", 7)).status.ok());
  PutRequest iv = Put("k", "");
  iv.ignore_value = true;  // keeps v3, drops the lease (lease 0 given)
  ASSERT_TRUE(Apply(iv).status.ok());
  EXPECT_EQ(Kv("k")->value, "v3");
  EXPECT_EQ(Kv("k")->lease, 0);
  ASSERT_TRUE(Apply(Put("k", "v4", 7)).status.ok());
  PutRequest il = Put("k", "v5");
  il.ignore_lease = true;
  ASSERT_TRUE(Apply(il).status.ok());
  EXPECT_EQ(Kv("k")->value, "v5");
  EXPECT_EQ(Kv("k")->lease, 7);

  PutRequest bad = Put("k", "x");
  bad.ignore_value = true;
  EXPECT_EQ(Apply(bad).status.message(), kErrValueProvided);
  bad = Put("k", "", 7);
  bad.ignore_lease = true;
  EXPECT_EQ(Apply(bad).status.message(), kErrLeaseProvided);
}

TEST_F(MvccStoreTest, Range_PrefixRangeAllAndSingle) {
  const std::string nul_key("a/\0x", 4);
  for (const std::string& k : std::vector<std::string>{"a", "a/1", "a/2", nul_key, "b", "c"}) {
    Apply(Put(k, "v"));
  }
  EXPECT_EQ(Keys(Read(Get("a/", "a0"))), (std::vector<std::string>{nul_key, "a/1", "a/2"}));
  EXPECT_EQ(Keys(Read(Get("a/", "a/\x01"))), (std::vector<std::string>{std::string("a/\0x", 4)}));
  EXPECT_EQ(Keys(Read(Get("b", std::string(1, '\0')))), (std::vector<std::string>{"b", "c"}));
  EXPECT_EQ(Read(Get(std::string(1, '\0'), std::string(1, '\0'))).count, 6);
  EXPECT_EQ(Keys(Read(Get("a"))), (std::vector<std::string>{"a"}));
  EXPECT_TRUE(Read(Get("c", "a")).kvs.empty());
  EXPECT_EQ(Keys(Read(Get("a/1", "b"))).size(), 2u);
  EXPECT_EQ(store_->Range(Get("")).status().message(), kErrEmptyKey);
}

TEST_F(MvccStoreTest, Range_LimitSortFiltersCountKeysOnly) {
  Apply(Put("k3", "a"));  // rev 2
  Apply(Put("k1", "c"));  // rev 3
  Apply(Put("k2", "b"));  // rev 4
  Apply(Put("k1", "d"));  // rev 5, k1 version 2
  RangeRequest r = Get("k", "l");
  r.limit = 2;
  RangeResponse resp = Read(r);
  EXPECT_EQ(Keys(resp), (std::vector<std::string>{"k1", "k2"}));
  EXPECT_TRUE(resp.more);
  EXPECT_EQ(resp.count, 3);
  r.limit = 0;
  r.sort_order = RangeRequest::SortOrder::kDescend;
  EXPECT_EQ(Keys(Read(r)), (std::vector<std::string>{"k3", "k2", "k1"}));
  r.sort_target = RangeRequest::SortTarget::kValue;
  EXPECT_EQ(Keys(Read(r)), (std::vector<std::string>{"k1", "k2", "k3"}));  // d > b > a
  r.sort_order = RangeRequest::SortOrder::kNone;  // NONE with a non-key target = ascend
  r.sort_target = RangeRequest::SortTarget::kMod;
  EXPECT_EQ(Keys(Read(r)), (std::vector<std::string>{"k3", "k2", "k1"}));
  r.sort_target = RangeRequest::SortTarget::kCreate;
  EXPECT_EQ(Keys(Read(r)), (std::vector<std::string>{"k3", "k1", "k2"}));
  r.sort_order = RangeRequest::SortOrder::kDescend;
  r.sort_target = RangeRequest::SortTarget::kVersion;
  EXPECT_EQ(Read(r).kvs[0].key, "k1");
  r = Get("k", "l");
  r.min_mod_revision = 4;
  EXPECT_EQ(Keys(Read(r)), (std::vector<std::string>{"k1", "k2"}));
  EXPECT_EQ(Read(r).count, 3);  // count ignores filters, as etcd
  r = Get("k", "l");
  r.max_create_revision = 3;
  EXPECT_EQ(Keys(Read(r)), (std::vector<std::string>{"k1", "k3"}));
  r = Get("k", "l");
  r.min_create_revision = 4;
  r.max_mod_revision = 4;
  EXPECT_EQ(Keys(Read(r)), (std::vector<std::string>{"k2"}));
  r = Get("k", "l");
  r.count_only = true;
  resp = Read(r);
  EXPECT_TRUE(resp.kvs.empty());
  EXPECT_EQ(resp.count, 3);
  r = Get("k", "l");
  r.keys_only = true;
  resp = Read(r);
  ASSERT_EQ(resp.kvs.size(), 3u);
  EXPECT_EQ(resp.kvs[0].value, "");
  EXPECT_EQ(resp.kvs[0].version, 2);
}

TEST_F(MvccStoreTest, Range_PastRevisionsFutureAndCompacted) {
  Apply(Put("a", "1"));  // 2
  Apply(Put("a", "2"));  // 3
  Apply(Del("a"));       // 4
  Apply(Put("a", "3"));  // 5
  EXPECT_EQ(Kv("a", 2)->value, "1");
  EXPECT_EQ(Kv("a", 3)->value, "2");
  EXPECT_FALSE(Kv("a", 4));
  EXPECT_EQ(Kv("a", 5), (KeyValue{"a", 5, 5, 1, "3", 0}));
  EXPECT_FALSE(Kv("a", 1));
  auto future = store_->Range(Get("a", "", 6));
  EXPECT_EQ(future.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(future.status().message(), kErrFutureRev);
  ASSERT_TRUE(Apply(CompactionRequest{3}).status.ok());
  EXPECT_EQ(store_->Range(Get("a", "", 2)).status().message(), kErrCompacted);
  EXPECT_EQ(Kv("a", 3)->value, "2");  // the compaction revision itself stays readable
  EXPECT_FALSE(Kv("a", 4));
}

TEST_F(MvccStoreTest, DeleteRange_TombstonesCountsAndRevisions) {
  Apply(Put("a", "1"));
  Apply(Put("b", "2"));
  Apply(Put("c", "3"));  // rev 4
  OpResult none = Apply(Del("x"));
  EXPECT_EQ(std::get<DeleteRangeResponse>(none.response).deleted, 0);
  EXPECT_EQ(none.revision, 4);  // deleting nothing makes no revision
  OpResult r = Apply(Del("a", "c", true));
  auto& d = std::get<DeleteRangeResponse>(r.response);
  EXPECT_EQ(d.deleted, 2);
  ASSERT_EQ(d.prev_kvs.size(), 2u);
  EXPECT_EQ(d.prev_kvs[1], (KeyValue{"b", 3, 3, 1, "2", 0}));
  EXPECT_EQ(r.revision, 5);  // one revision for the whole range
  EXPECT_FALSE(Kv("a"));
  EXPECT_EQ(Kv("b", 4)->value, "2");
  Apply(Put("a", "again"));
  EXPECT_EQ(Kv("a"), (KeyValue{"a", 6, 6, 1, "again", 0}));
  EXPECT_EQ(Read(Get("a", std::string(1, '\0'))).count, 2);
}

TEST_F(MvccStoreTest, Txn_EveryCompareTargetAndResult) {
  ASSERT_TRUE(Apply(LeaseGrantRequest{5, 10}).status.ok());
  Apply(Put("k", "m", 5));  // rev 2: create 2, mod 2, version 1
  using T = Compare::Target;
  using R = Compare::Result;
  auto check = [&](Compare c, bool expect) {
    TxnRequest t;
    t.compare.push_back(c);
    OpResult r = Apply(t);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(std::get<TxnResponse>(r.response).succeeded, expect)
        << "target " << static_cast<int>(c.target) << " result " << static_cast<int>(c.result);
  };
  Compare c = Cmp("k", T::kValue, R::kEqual);
  c.value = "m";
  check(c, true);
  c.result = R::kGreater;
  c.value = "a";
  check(c, true);
  c.result = R::kLess;
  check(c, false);
  c.result = R::kNotEqual;
  check(c, true);
  c = Cmp("k", T::kVersion, R::kEqual);
  c.version = 1;
  check(c, true);
  c = Cmp("k", T::kCreate, R::kLess);
  c.create_revision = 3;
  check(c, true);
  c = Cmp("k", T::kMod, R::kGreater);
  c.mod_revision = 2;
  check(c, false);
  c = Cmp("k", T::kLease, R::kEqual);
  c.lease = 5;
  check(c, true);
  // A missing key: value compares fail, the others compare against zero.
  c = Cmp("missing", T::kValue, R::kNotEqual);
  c.value = "z";
  check(c, false);
  c = Cmp("missing", T::kVersion, R::kEqual);
  check(c, true);
  c = Cmp("missing", T::kCreate, R::kEqual);
  check(c, true);
  // range_end: every key in the range must satisfy.
  Apply(Put("k2", "m"));
  c = Cmp("k", T::kValue, R::kEqual);
  c.range_end = "l";
  c.value = "m";
  check(c, true);
  Apply(Put("k3", "other"));
  check(c, false);
  c = Cmp("k", T::kVersion, R::kGreater);
  c.range_end = std::string(1, '\0');
  check(c, true);
}

TEST_F(MvccStoreTest, Txn_ThenElseNestedOwnWritesOneRevision) {
  Apply(Put("flag", "on"));  // rev 2
  TxnRequest inner;
  Compare ic = Cmp("flag", Compare::Target::kValue, Compare::Result::kEqual);
  ic.value = "on";  // evaluated before the outer txn's writes
  inner.compare.push_back(ic);
  inner.success.push_back(RequestOp{Put("inner", "then")});
  inner.failure.push_back(RequestOp{Put("inner", "else")});
  TxnRequest t;
  Compare c = Cmp("flag", Compare::Target::kVersion, Compare::Result::kEqual);
  c.version = 1;
  t.compare.push_back(c);
  t.success.push_back(RequestOp{Put("flag", "off")});
  t.success.push_back(RequestOp{Put("x", "1")});
  t.success.push_back(RequestOp{Get("x")});
  t.success.push_back(RequestOp{inner});
  t.failure.push_back(RequestOp{Put("failed", "1")});
  OpResult r = Apply(t);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  auto& resp = std::get<TxnResponse>(r.response);
  EXPECT_TRUE(resp.succeeded);
  ASSERT_EQ(resp.responses.size(), 4u);
  auto& rr = std::get<RangeResponse>(resp.responses[2].response);
  ASSERT_EQ(rr.kvs.size(), 1u);  // the txn's range sees its own put
  EXPECT_EQ(rr.kvs[0].mod_revision, 3);
  EXPECT_TRUE(std::get<TxnResponse>(resp.responses[3].response).succeeded);
  EXPECT_EQ(r.revision, 3);  // one revision for the whole txn
  EXPECT_EQ(Kv("inner")->value, "then");
  EXPECT_EQ(Kv("x")->mod_revision, 3);
  EXPECT_FALSE(Kv("failed"));
  r = Apply(t);  // flag is now at version 2: the else branch
  EXPECT_FALSE(std::get<TxnResponse>(r.response).succeeded);
  EXPECT_EQ(Kv("failed")->value, "1");
  EXPECT_EQ(r.revision, 4);
  // A txn that only reads, or writes nothing, makes no revision.
  TxnRequest ro;
  ro.success.push_back(RequestOp{Get("x")});
  ro.success.push_back(RequestOp{Del("nothing")});
  EXPECT_EQ(Apply(ro).revision, 4);
}

TEST_F(MvccStoreTest, Txn_FailureHalfWayChangesNothing) {
  Apply(Put("a", "1"));
  Apply(Put("c", "1"));
  uint64_t before = Sum();
  int64_t rev = store_->CurrentRevision();
  TxnRequest t;
  t.success.push_back(RequestOp{Put("a", "2")});
  t.success.push_back(RequestOp{Del("c", "d")});
  t.success.push_back(RequestOp{Put("b", "x", 99)});  // no such lease
  auto results = store_->ApplyBatch({MakeOp(t)}, AppliedPosition{"cfg", seq_});
  ASSERT_TRUE(results.ok());
  EXPECT_EQ(results.value()[0].status.message(), kErrLeaseNotFound);
  EXPECT_EQ(results.value()[0].revision, rev);
  EXPECT_EQ(store_->CurrentRevision(), rev);
  EXPECT_EQ(Kv("a")->value, "1");
  EXPECT_TRUE(Kv("c"));
  EXPECT_EQ(Sum(), before);  // same position rewritten: byte-identical state
  EXPECT_EQ(store_->AppliedWrites(), 2u);
}

TEST_F(MvccStoreTest, Compact_DropsHistoryKeepsLatestAndErrors) {
  Apply(Put("a", "1"));  // 2
  Apply(Put("a", "2"));  // 3
  Apply(Put("b", "1"));  // 4
  Apply(Del("b"));       // 5
  Apply(Put("c", "1"));  // 6
  OpResult future = Apply(CompactionRequest{7});
  EXPECT_EQ(future.status.message(), kErrFutureRev);
  uint64_t before = Sum();
  OpResult ok = Apply(CompactionRequest{5});
  ASSERT_TRUE(ok.status.ok());
  EXPECT_EQ(ok.revision, 6);  // compaction makes no revision
  EXPECT_EQ(store_->CompactedRevision(), 5);
  EXPECT_NE(Sum(), before);
  EXPECT_EQ(Apply(CompactionRequest{5}).status.message(), kErrCompacted);
  EXPECT_EQ(Apply(CompactionRequest{4}).status.message(), kErrCompacted);
  EXPECT_EQ(Kv("a", 5)->value, "2");
  EXPECT_FALSE(Kv("b", 5));
  EXPECT_EQ(Kv("c")->value, "1");
  EXPECT_EQ(store_->Range(Get("a", "", 4)).status().message(), kErrCompacted);
  HistoryRequest h{"a", std::string(1, '\0'), 4, false, 0};
  EXPECT_EQ(store_->History(h).status().message(), kErrCompacted);
  h.start_revision = 5;
  auto events = store_->History(h);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events.value().size(), 2u);  // the delete at 5 (kept) and the put at 6
  EXPECT_EQ(events.value()[0].type, Event::Type::kDelete);
  Reopen();
  EXPECT_EQ(store_->CompactedRevision(), 5);
  EXPECT_EQ(Kv("a")->version, 2);
  Apply(Put("a", "3"));
  EXPECT_EQ(Kv("a"), (KeyValue{"a", 2, 7, 3, "3", 0}));
}

TEST_F(MvccStoreTest, Lease_AttachTimeToLiveRevoke) {
  EXPECT_EQ(Apply(Put("k", "v", 42)).status.message(), kErrLeaseNotFound);
  OpResult g = Apply(LeaseGrantRequest{42, 30});
  ASSERT_TRUE(g.status.ok());
  EXPECT_EQ(std::get<LeaseGrantResponse>(g.response).ttl, 30);
  EXPECT_EQ(g.revision, 1);  // grants make no revision
  EXPECT_EQ(Apply(LeaseGrantRequest{42, 30}).status.message(), kErrLeaseExists);
  Apply(LeaseGrantRequest{43, 30});
  Apply(Put("k1", "v", 42));
  Apply(Put("k2", "v", 42));
  Apply(Put("k3", "v", 42));
  Apply(Put("k3", "v", 43));  // moves to lease 43
  Apply(Put("k4", "v"));
  auto ttl = store_->TimeToLive(42, true);
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl.value().granted_ttl, 30);
  EXPECT_EQ(ttl.value().keys, (std::vector<std::string>{"k1", "k2"}));
  int64_t rev = store_->CurrentRevision();
  OpResult r = Apply(LeaseRevokeRequest{42});
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.revision, rev + 1);  // both keys in one revision
  EXPECT_FALSE(Kv("k1"));
  EXPECT_FALSE(Kv("k2"));
  EXPECT_TRUE(Kv("k3"));
  EXPECT_EQ(store_->TimeToLive(42, false).status().message(), kErrLeaseNotFound);
  EXPECT_EQ(Apply(LeaseRevokeRequest{42}).status.message(), kErrLeaseNotFound);
  auto leases = store_->Leases();
  ASSERT_TRUE(leases.ok());
  ASSERT_EQ(leases.value().size(), 1u);
  EXPECT_EQ(leases.value()[0].id, 43);
  // A lease without keys revokes without a revision.
  Apply(Del("k3"));
  rev = store_->CurrentRevision();
  EXPECT_EQ(Apply(LeaseRevokeRequest{43}).revision, rev);
  EXPECT_EQ(Apply(LeaseGrantRequest{0, 5}).status.code(), StatusCode::kInvalidArgument);
}

TEST_F(MvccStoreTest, Lease_ExpireAppliesOnlyCurrentGeneration) {
  uint64_t gen1 = std::get<LeaseGrantResponse>(Apply(LeaseGrantRequest{9, 5}).response).generation;
  Apply(Put("k", "v", 9));
  OpResult ka = Apply(LeaseKeepAliveRequest{9});
  uint64_t gen2 = std::get<LeaseKeepAliveResponse>(ka.response).generation;
  EXPECT_NE(gen1, gen2);
  int64_t rev = store_->CurrentRevision();
  OpResult stale = Apply(LeaseExpireRequest{9, gen1});
  ASSERT_TRUE(stale.status.ok());
  EXPECT_FALSE(std::get<LeaseExpireResponse>(stale.response).expired);
  EXPECT_EQ(stale.revision, rev);
  EXPECT_TRUE(Kv("k"));
  OpResult fresh = Apply(LeaseExpireRequest{9, gen2});
  EXPECT_TRUE(std::get<LeaseExpireResponse>(fresh.response).expired);
  EXPECT_EQ(fresh.revision, rev + 1);
  EXPECT_FALSE(Kv("k"));
  OpResult unknown = Apply(LeaseExpireRequest{9, gen2});
  EXPECT_TRUE(unknown.status.ok());
  EXPECT_FALSE(std::get<LeaseExpireResponse>(unknown.response).expired);
  // Re-granting the same id gets a new generation: the old expiry is stale.
  uint64_t gen3 = std::get<LeaseGrantResponse>(Apply(LeaseGrantRequest{9, 5}).response).generation;
  EXPECT_GT(gen3, gen2);
  EXPECT_FALSE(std::get<LeaseExpireResponse>(Apply(LeaseExpireRequest{9, gen2}).response).expired);
  EXPECT_EQ(Apply(LeaseKeepAliveRequest{1234}).status.message(), kErrLeaseNotFound);
}

TEST_F(MvccStoreTest, Limits_RejectWithPreciseErrorsAndChangeNothing) {
  StoreOptions o;
  o.max_key_bytes = 16;
  o.max_value_bytes = 32;
  o.max_request_bytes = 64;
  o.max_txn_ops = 3;
  Reopen(o);
  Apply(Put("a", "1"));
  uint64_t before = Sum();
  auto expect_invalid = [&](decltype(Op::request) req, const std::string& msg) {
    auto r = store_->ApplyBatch({MakeOp(std::move(req))}, AppliedPosition{"cfg", seq_});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value()[0].status.code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(r.value()[0].status.message(), msg);
    EXPECT_EQ(r.value()[0].revision, 2);
  };
  expect_invalid(Put(std::string(17, 'k'), "v"), "kvstore: key is too large: 17 bytes, limit 16");
  expect_invalid(Put("k", std::string(33, 'v')), "kvstore: value is too large: 33 bytes, limit 32");
  expect_invalid(Put("", "v"), kErrEmptyKey);
  TxnRequest big;
  for (int i = 0; i < 4; ++i) big.success.push_back(RequestOp{Put("k", "v")});
  expect_invalid(big, std::string(kErrTooManyOps) + " (limit 3 per list)");
  TxnRequest heavy;
  for (int i = 0; i < 3; ++i) {
    heavy.success.push_back(RequestOp{Put("k" + std::to_string(i), std::string(30, 'v'))});
  }
  expect_invalid(heavy,
                 std::string(kErrRequestTooLarge) + ": 96 bytes of keys and values, limit 64");
  TxnRequest nested;
  nested.failure.push_back(RequestOp{big});
  expect_invalid(nested, std::string(kErrTooManyOps) + " (limit 3 per list)");
  // etcd's duplicate-key rule for txns.
  TxnRequest twice;
  twice.success = {RequestOp{Put("k", "1")}, RequestOp{Put("k", "2")}};
  expect_invalid(twice, kErrDuplicateKey);
  TxnRequest put_and_delete;
  put_and_delete.failure = {RequestOp{Put("k2", "1")}, RequestOp{Del("k", "l")}};
  expect_invalid(put_and_delete, kErrDuplicateKey);
  TxnRequest in_nested;
  TxnRequest inner;
  inner.success = {RequestOp{Put("k", "1")}};
  in_nested.success = {RequestOp{Put("k", "0")}, RequestOp{inner}};
  expect_invalid(in_nested, kErrDuplicateKey);
  EXPECT_EQ(Sum(), before);
  EXPECT_EQ(store_->CurrentRevision(), 2);
  // Allowed: the same key in exclusive branches, or in then vs else.
  TxnRequest exclusive;
  inner.failure = {RequestOp{Put("k", "2")}};
  exclusive.success = {RequestOp{inner}};
  exclusive.failure = {RequestOp{Put("k", "3")}};
  EXPECT_TRUE(Apply(exclusive).status.ok());
}

TEST_F(MvccStoreTest, Dedup_RetryNotReappliedAcrossReopenWithinWindow) {
  StoreOptions o;
  o.dedup_window = 3;
  Reopen(o);
  OpResult first = Apply(Put("k", "v1"), /*id=*/1);
  EXPECT_FALSE(first.duplicate);
  // Same id in the same batch, then again after a reopen.
  std::vector<OpResult> r = Batch({MakeOp(Put("k", "v2"), 2), MakeOp(Put("k", "v2"), 2)});
  EXPECT_FALSE(r[0].duplicate);
  EXPECT_TRUE(r[1].duplicate);
  EXPECT_EQ(r[1].revision, 3);
  Reopen(o);
  OpResult retry = Apply(Put("k", "v1"), 1);
  EXPECT_TRUE(retry.duplicate);
  EXPECT_TRUE(retry.status.ok());
  EXPECT_EQ(retry.revision, 2);  // the original outcome's revision
  EXPECT_EQ(Kv("k")->version, 2);
  OpResult failed = Apply(LeaseRevokeRequest{5}, 3);  // failures are remembered too
  OpResult failed_retry = Apply(LeaseRevokeRequest{5}, 3);
  EXPECT_TRUE(failed_retry.duplicate);
  EXPECT_EQ(failed_retry.status.message(), kErrLeaseNotFound);
  // The window holds 3 ids: after id 4, id 1 is forgotten and applies again.
  Apply(Put("z", "z"), 4);
  EXPECT_FALSE(Apply(Put("k", "v1"), 1).duplicate);
  EXPECT_EQ(Kv("k")->version, 3);
  EXPECT_TRUE(Apply(Put("z", "z"), 4).duplicate);
}

TEST_F(MvccStoreTest, Batch_SeesEarlierOpsAndPersistsPositionAtomically) {
  TxnRequest t;
  Compare c = Cmp("a", Compare::Target::kVersion, Compare::Result::kEqual);
  c.version = 1;
  t.compare.push_back(c);
  t.success.push_back(RequestOp{Put("b", "seen")});
  auto r = store_->ApplyBatch({MakeOp(Put("a", "1")), MakeOp(t), MakeOp(Get("b"))},
                              AppliedPosition{"ring-7", 41});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(std::get<TxnResponse>(r.value()[1].response).succeeded);
  EXPECT_EQ(std::get<RangeResponse>(r.value()[2].response).kvs.size(), 1u);
  EXPECT_EQ(r.value()[2].revision, 3);
  uint64_t sum = Sum();
  EXPECT_EQ(store_->AppliedWrites(), 2u);
  Reopen();
  EXPECT_EQ(store_->Position(), (AppliedPosition{"ring-7", 41}));
  EXPECT_EQ(store_->AppliedWrites(), 2u);  // the read does not count
  EXPECT_EQ(store_->CurrentRevision(), 3);
  EXPECT_EQ(Kv("b")->value, "seen");
  EXPECT_EQ(Sum(), sum);
  // Durable default: a synced batch is there after reopen too.
  StoreOptions synced;
  store_.reset();
  auto s = MvccStore::Open(dir_, synced);
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(s.value()->ApplyBatch({MakeOp(Put("c", "1"))}, AppliedPosition{"ring-8", 1}).ok());
  s.value().reset();
  Reopen();
  EXPECT_EQ(store_->Position(), (AppliedPosition{"ring-8", 1}));
  EXPECT_EQ(store_->AppliedWrites(), 3u);
  EXPECT_TRUE(Kv("c"));
}

// A random op mix over a small keyspace, from a seed.
std::vector<std::vector<Op>> RandomBatches(uint32_t seed, int batches) {
  std::mt19937 rng(seed);
  auto key = [&] { return "k" + std::to_string(rng() % 12); };
  std::vector<std::vector<Op>> out;
  int64_t rev_guess = 1;
  for (int b = 0; b < batches; ++b) {
    std::vector<Op> ops;
    int n = 1 + static_cast<int>(rng() % 6);
    for (int i = 0; i < n; ++i) {
      Op op;
      op.op_id[0] = static_cast<uint8_t>(rng() % 4 == 0 ? 1 + rng() % 20 : 0);
      switch (rng() % 9) {
        case 0:
        case 1:
        case 2:
          op.request = Put(key(), std::to_string(rng()), rng() % 3 == 0 ? 1 + rng() % 3 : 0);
          ++rev_guess;
          break;
        case 3:
          op.request = Del(key(), rng() % 2 ? "" : key(), true);
          break;
        case 4: {
          TxnRequest t;
          Compare c = Cmp(key(), Compare::Target::kVersion, Compare::Result::kGreater);
          c.version = rng() % 3;
          t.compare.push_back(c);
          t.success.push_back(RequestOp{Put(key(), "t")});
          t.failure.push_back(RequestOp{Del(key())});
          op.request = t;
          break;
        }
        case 5:
          op.request = LeaseGrantRequest{static_cast<int64_t>(1 + rng() % 3), 10};
          break;
        case 6:
          op.request = LeaseRevokeRequest{static_cast<int64_t>(1 + rng() % 3)};
          break;
        case 7:
          op.request = LeaseExpireRequest{static_cast<int64_t>(1 + rng() % 3), rng() % 8};
          break;
        default:
          op.request = CompactionRequest{static_cast<int64_t>(rng() % (rev_guess + 1))};
          break;
      }
      ops.push_back(std::move(op));
    }
    out.push_back(std::move(ops));
  }
  return out;
}

TEST_F(MvccStoreTest, Determinism_SameOpsSameChecksum) {
  auto run = [&](const std::string& dir, const std::vector<std::vector<Op>>& batches,
                 std::vector<Event>* events) -> uint64_t {
    auto s = MvccStore::Open(dir, StoreOptions{.sync = false});
    EXPECT_TRUE(s.ok());
    s.value()->SetEventCallback([events](const std::vector<Event>& ev, int64_t) {
      events->insert(events->end(), ev.begin(), ev.end());
    });
    uint64_t seq = 0;
    for (const auto& b : batches) EXPECT_TRUE(s.value()->ApplyBatch(b, {"c", ++seq}).ok());
    EXPECT_GT(s.value()->CurrentRevision(), 40);  // the mix really writes
    EXPECT_GT(s.value()->CompactedRevision(), 0);
    return s.value()->Checksum().value();
  };
  auto batches = RandomBatches(7, 60);
  std::vector<Event> e1, e2, e3;
  uint64_t a = run(dir_ + "/one", batches, &e1);
  uint64_t b = run(dir_ + "/two", batches, &e2);
  EXPECT_EQ(a, b);
  EXPECT_EQ(e1, e2);
  EXPECT_FALSE(e1.empty());
  // The same ops in fewer, larger batches ending at the same position: the
  // same bytes (batching is invisible to the state).
  std::vector<std::vector<Op>> merged(1);
  for (size_t i = 0; i + 1 < batches.size(); ++i) {
    merged[0].insert(merged[0].end(), batches[i].begin(), batches[i].end());
  }
  for (size_t i = merged.size(); i < batches.size() - 1; ++i) merged.push_back({});
  merged.push_back(batches.back());
  std::vector<Event> e4;
  EXPECT_EQ(run(dir_ + "/four", merged, &e4), a);
  EXPECT_EQ(e4, e1);
  // One changed op: a different state.
  auto other = batches;
  other[30][0].request = Put("k0", "different");
  EXPECT_NE(run(dir_ + "/three", other, &e3), a);
}

// Model check: random puts, range deletes, compactions and in-batch reads
// against a map per revision; every revision >= the compacted one must read
// back exactly, through the batch overlay and from committed state.
class MvccStoreModelTest : public MvccStoreTest, public ::testing::WithParamInterface<uint32_t> {};

TEST_P(MvccStoreModelTest, RandomOpsReadBackAtEveryRevision) {
  using State = std::map<std::string, KeyValue>;
  std::vector<State> states(2);  // states[r] = the keyspace at revision r
  int64_t compacted = 0;
  std::mt19937 rng(GetParam());
  auto key = [&] { return std::string(1, static_cast<char>('a' + rng() % 10)); };
  auto expect_read = [&](const RangeResponse& got, int64_t rev, const std::string& where) {
    std::vector<KeyValue> want;
    for (const auto& [k, kv] : states[static_cast<size_t>(rev)]) want.push_back(kv);
    EXPECT_EQ(got.kvs, want) << where << " at revision " << rev;
  };
  std::vector<Event> all_events;
  store_->SetEventCallback([&](const std::vector<Event>& ev, int64_t) {
    all_events.insert(all_events.end(), ev.begin(), ev.end());
  });
  for (int b = 0; b < 60; ++b) {
    std::vector<Op> ops;
    std::vector<int64_t> read_revs;  // for Range ops: the revision expected
    int n = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < n; ++i) {
      int64_t rev = static_cast<int64_t>(states.size()) - 1;
      State next = states.back();
      uint32_t dice = rng() % 10;
      if (dice < 5) {
        std::string k = key(), v = std::to_string(rng() % 1000);
        KeyValue kv{k, rev + 1, rev + 1, 1, v, 0};
        if (auto it = next.find(k); it != next.end()) {
          kv.create_revision = it->second.create_revision;
          kv.version = it->second.version + 1;
        }
        next[k] = kv;
        ops.push_back(MakeOp(Put(k, v)));
        states.push_back(next);
      } else if (dice < 7) {
        std::string k1 = key(), k2 = key();
        if (k2 < k1) std::swap(k1, k2);
        auto first = next.lower_bound(k1), last = next.lower_bound(k2);
        bool any = first != last;
        next.erase(first, last);
        ops.push_back(MakeOp(Del(k1, k2)));
        if (any) states.push_back(next);
      } else if (dice < 8 && rev > compacted + 1) {
        int64_t at =
            compacted + 1 + static_cast<int64_t>(rng() % static_cast<uint32_t>(rev - compacted));
        ops.push_back(MakeOp(CompactionRequest{at}));
        compacted = at;
      } else {
        int64_t at =
            compacted + static_cast<int64_t>(rng() % static_cast<uint32_t>(rev - compacted + 1));
        if (at < 1) at = 1;
        ops.push_back(MakeOp(Get("a", std::string(1, '\0'), at)));
        read_revs.resize(ops.size());
        read_revs.back() = at;
      }
    }
    read_revs.resize(ops.size());
    std::vector<OpResult> results = Batch(ops);
    for (size_t i = 0; i < ops.size(); ++i) {
      ASSERT_TRUE(results[i].status.ok()) << results[i].status.ToString();
      if (std::holds_alternative<RangeRequest>(ops[i].request)) {
        expect_read(std::get<RangeResponse>(results[i].response), read_revs[i], "in batch");
      }
    }
    ASSERT_EQ(store_->CurrentRevision(), static_cast<int64_t>(states.size()) - 1);
    for (int64_t r = std::max<int64_t>(compacted, 1); r < static_cast<int64_t>(states.size());
         ++r) {
      expect_read(Read(Get("a", std::string(1, '\0'), r)), r, "committed");
    }
    if (compacted > 1) {
      EXPECT_EQ(store_->Range(Get("a", "", compacted - 1)).status().message(), kErrCompacted);
    }
  }
  // The history from the compacted revision on is the tail of what the
  // callback reported (the kept tombstones included).
  auto history = store_->History(HistoryRequest{"a", std::string(1, '\0'), compacted, true, 0});
  ASSERT_TRUE(history.ok());
  ASSERT_LE(history.value().size(), all_events.size());
  std::vector<Event> tail(all_events.end() - static_cast<std::ptrdiff_t>(history.value().size()),
                          all_events.end());
  ASSERT_FALSE(tail.empty());
  EXPECT_EQ(tail.front().kv.mod_revision, compacted);
  for (size_t i = 0; i < tail.size(); ++i) {
    EXPECT_EQ(history.value()[i].type, tail[i].type);
    EXPECT_EQ(history.value()[i].kv, tail[i].kv);
    // prev_kv may be compacted away in the history; when present it agrees.
    if (history.value()[i].prev_kv) {
      EXPECT_EQ(history.value()[i].prev_kv, tail[i].prev_kv);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, MvccStoreModelTest, ::testing::Range(1u, 9u));

// A process that dies without closing the store (no flush, no clean
// shutdown) loses nothing it applied with sync on: position and data agree.
TEST_F(MvccStoreTest, CrashSafety_PositionAndDataSurviveAbruptExit) {
  store_.reset();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto s = MvccStore::Open(dir_, StoreOptions{});  // sync on
    if (!s.ok()) _exit(2);
    for (uint64_t i = 1; i <= 25; ++i) {
      std::vector<Op> ops{MakeOp(Put("n", std::to_string(i))),
                          MakeOp(Put("m" + std::to_string(i), "x"))};
      if (!s.value()->ApplyBatch(ops, AppliedPosition{"ring", i}).ok()) _exit(3);
    }
    _exit(0);  // no destructors: the DB is never closed
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  Reopen();
  EXPECT_EQ(store_->Position(), (AppliedPosition{"ring", 25}));
  EXPECT_EQ(store_->CurrentRevision(), 51);
  EXPECT_EQ(Kv("n")->value, "25");
  EXPECT_EQ(Read(Get("m", "n")).count, 25);
}

TEST_F(MvccStoreTest, History_FromRevisionPrefixPrevKvAndCallback) {
  std::vector<std::pair<std::vector<Event>, int64_t>> seen;
  store_->SetEventCallback([&](const std::vector<Event>& ev, int64_t rev) {
    seen.push_back({ev, rev});
  });
  Batch({MakeOp(Put("w/a", "1")), MakeOp(Put("other", "x"))});  // 2, 3
  Apply(Put("w/a", "2"));                                       // 4
  Apply(Del("w/", "w0"));                                       // 5
  Apply(Put("w/b", "3"));                                       // 6
  ASSERT_EQ(seen.size(), 4u);
  EXPECT_EQ(seen[0].first.size(), 2u);
  EXPECT_EQ(seen[0].second, 3);
  HistoryRequest h{"w/", "w0", 3, true, 0};
  auto events = store_->History(h);
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events.value().size(), 3u);
  const Event& put = events.value()[0];
  EXPECT_EQ(put.type, Event::Type::kPut);
  EXPECT_EQ(put.kv, (KeyValue{"w/a", 2, 4, 2, "2", 0}));
  ASSERT_TRUE(put.prev_kv);
  EXPECT_EQ(put.prev_kv->value, "1");
  const Event& del = events.value()[1];
  EXPECT_EQ(del.type, Event::Type::kDelete);
  EXPECT_EQ(del.kv.key, "w/a");
  EXPECT_EQ(del.kv.mod_revision, 5);
  EXPECT_EQ(del.prev_kv->value, "2");
  EXPECT_FALSE(events.value()[2].prev_kv);
  // The callback's events (with prev_kv) equal the history's.
  EXPECT_EQ(seen[1].first[0], put);
  EXPECT_EQ(seen[2].first[0], del);
  h.prev_kv = false;
  h.start_revision = 1;
  h.max_events = 1;
  events = store_->History(h);
  ASSERT_EQ(events.value().size(), 1u);
  EXPECT_EQ(events.value()[0].kv.mod_revision, 2);
  EXPECT_FALSE(events.value()[0].prev_kv);
  h.start_revision = 7;
  EXPECT_TRUE(store_->History(h).value().empty());
  HistoryRequest single{"other", "", 1, false, 0};
  EXPECT_EQ(store_->History(single).value().size(), 1u);
}

}  // namespace
}  // namespace kvstore
