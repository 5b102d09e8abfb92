// End-to-end tests of totemkvd: three real server processes on loopback
// (free ports, a fresh cluster key and data dirs per test) driven by the
// Debian `etcdctl` (API v3) and by a C++ gRPC client on the etcd protos.
// Checks: writes at one node are read at the others (linearizable reads),
// txn, endpoint status and member list through etcdctl; concurrent puts at
// all three nodes get distinct revisions that every node agrees on; etcd's
// error codes; and kill -9 of one node under write load loses no
// acknowledged write on the two survivors. Every wait has a deadline.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "admin/admin.grpc.pb.h"
#include "cluster_harness.h"
#include "etcd/rpc.grpc.pb.h"

namespace totemkv {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Cluster;
using testing::Etcdctl;
using testing::Put;
using testing::RangePrefix;
using totem::testing::WaitFor;

class ServerClusterTest : public testing::ThreeNodeClusterTest {};

TEST_F(ServerClusterTest, EtcdctlPutGetDelTxnStatusMemberList) {
  StartCluster();
  auto [rc, out] = Etcdctl(cluster_, cluster_.Endpoint(0), "put greeting hello");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "OK\n");
  for (size_t i : {1u, 2u}) {
    std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(i), "get greeting");
    ASSERT_EQ(rc, 0) << out;
    EXPECT_EQ(out, "greeting\nhello\n") << "node " << i + 1;
  }
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(1), "get greeting --consistency=s");
  EXPECT_EQ(out, "greeting\nhello\n");

  // A txn at node 2, seen at node 3.
  std::tie(rc, out) =
      Etcdctl(cluster_, cluster_.Endpoint(1), "txn",
              "value(\"greeting\") = \"hello\"\n\nput result yes\n\nput result no\n\n");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "SUCCESS\n\nOK\n");
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(2), "get result");
  EXPECT_EQ(out, "result\nyes\n");

  // Delete at node 3, gone at node 1.
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(2), "del greeting");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "1\n");
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(0), "get greeting");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "");

  // endpoint status against all three: same leader (the ring
  // representative, node 1), same raft term, version 3.5.0.
  std::string endpoints;
  for (size_t i = 0; i < 3; ++i) endpoints += (i ? "," : "") + cluster_.Endpoint(i);
  std::tie(rc, out) = Etcdctl(cluster_, endpoints, "endpoint status -w table");
  ASSERT_EQ(rc, 0) << out;
  std::fprintf(stderr, "%s", out.c_str());
  for (size_t i = 0; i < 3; ++i) EXPECT_NE(out.find(cluster_.Endpoint(i)), std::string::npos);
  EXPECT_NE(out.find("3.5.0"), std::string::npos) << out;
  std::tie(rc, out) = Etcdctl(cluster_, endpoints, "endpoint status -w json");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"leader\":1,"), std::string::npos) << out;

  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(1), "member list");
  ASSERT_EQ(rc, 0) << out;
  std::fprintf(stderr, "%s", out.c_str());
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NE(out.find(", n" + std::to_string(i + 1) + ", "), std::string::npos) << out;
    EXPECT_NE(out.find(cluster_.Url(i)), std::string::npos) << out;
  }

  // etcd's errors, as etcdctl prints them.
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(0), "compact 3");
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(1), "get result --rev=2");
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("Error: etcdserver: mvcc: required revision has been compacted"),
            std::string::npos)
      << out;
}

TEST_F(ServerClusterTest, ConcurrentGrpcPutsAtAllNodesAgree) {
  StartCluster();
  constexpr int kPerNode = 150;
  std::mutex mu;
  std::map<std::string, std::pair<std::string, int64_t>> acked;  // key -> (value, revision)
  std::set<uint64_t> member_ids;
  std::set<uint64_t> cluster_ids;
  std::atomic<int> failures{0};
  std::vector<std::thread> writers;
  for (size_t node = 0; node < 3; ++node) {
    for (int t = 0; t < 2; ++t) {  // two concurrent clients per node
      writers.emplace_back([&, node, t] {
        auto kv = cluster_.Kv(node);
        for (int i = 0; i < kPerNode / 2; ++i) {
          const std::string key =
              "c/" + std::to_string(node) + "/" + std::to_string(t) + "/" + std::to_string(i);
          const std::string value = "v" + std::to_string(i * 7 + static_cast<int>(node));
          etcdserverpb::PutResponse resp;
          grpc::Status s = Put(*kv, key, value, &resp);
          std::lock_guard<std::mutex> l(mu);
          if (!s.ok()) {
            ++failures;
            continue;
          }
          acked[key] = {value, resp.header().revision()};
          member_ids.insert(resp.header().member_id());
          cluster_ids.insert(resp.header().cluster_id());
        }
      });
    }
  }
  for (auto& w : writers) w.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_EQ(acked.size(), 3u * kPerNode);
  EXPECT_EQ(member_ids, (std::set<uint64_t>{1, 2, 3}));
  EXPECT_EQ(cluster_ids.size(), 1u);
  // Every put made its own revision: all distinct, 2..N+1.
  std::set<int64_t> revisions;
  for (const auto& [key, vr] : acked) revisions.insert(vr.second);
  EXPECT_EQ(revisions.size(), acked.size());
  EXPECT_EQ(*revisions.begin(), 2);
  EXPECT_EQ(*revisions.rbegin(), static_cast<int64_t>(acked.size()) + 1);

  // Each node (linearizable read) has exactly the acknowledged keys with the
  // revisions their writers were told.
  for (size_t node = 0; node < 3; ++node) {
    std::map<std::string, std::pair<std::string, int64_t>> got;
    int64_t header_rev = 0;
    ASSERT_TRUE(RangePrefix(*cluster_.Kv(node), "c/", false, &got, &header_rev).ok());
    EXPECT_EQ(got, acked) << "node " << node + 1;
    EXPECT_EQ(header_rev, static_cast<int64_t>(acked.size()) + 1) << "node " << node + 1;
  }

  // Errors: etcd's codes and messages; nothing changes.
  auto kv = cluster_.Kv(1);
  etcdserverpb::PutResponse resp;
  grpc::Status s = Put(*kv, "big", std::string(1600 * 1024, 'x'), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("etcdserver: request is too large"), std::string::npos)
      << s.error_message();
  s = Put(*kv, "", "x", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "etcdserver: key is not provided");
  {
    grpc::ClientContext ctx;
    etcdserverpb::PutRequest req;
    req.set_key("missing");
    req.set_ignore_value(true);
    s = kv->Put(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_EQ(s.error_message(), "etcdserver: key not found");
  }
  {
    grpc::ClientContext ctx;
    etcdserverpb::RangeRequest req;
    req.set_key("c/");
    req.set_revision(1000000);
    etcdserverpb::RangeResponse rr;
    s = kv->Range(&ctx, req, &rr);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
    EXPECT_EQ(s.error_message(), "etcdserver: mvcc: required revision is a future revision");
  }
  // Still exactly the same state everywhere.
  for (size_t node = 0; node < 3; ++node) {
    std::map<std::string, std::pair<std::string, int64_t>> got;
    int64_t header_rev = 0;
    ASSERT_TRUE(RangePrefix(*cluster_.Kv(node), "c/", false, &got, &header_rev).ok());
    EXPECT_EQ(header_rev, static_cast<int64_t>(acked.size()) + 1) << "node " << node + 1;
  }
}

TEST_F(ServerClusterTest, KillOneNodeUnderWriteLoadLosesNoAcknowledgedPut) {
  StartCluster();
  std::mutex mu;
  std::map<std::string, std::string> acked;
  std::atomic<bool> stop{false};
  std::atomic<bool> killed{false};
  std::atomic<int> acked_after_kill[3] = {0, 0, 0};
  std::vector<std::thread> writers;
  for (size_t node = 0; node < 3; ++node) {
    writers.emplace_back([&, node] {
      auto kv = cluster_.Kv(node);
      for (int i = 0; !stop; ++i) {
        const std::string key = "k/" + std::to_string(node) + "/" + std::to_string(i);
        const std::string value = "value-" + std::to_string(i);
        etcdserverpb::PutResponse resp;
        const bool after = killed;
        if (Put(*kv, key, value, &resp, milliseconds(3000)).ok()) {
          std::lock_guard<std::mutex> l(mu);
          acked[key] = value;
          if (after) ++acked_after_kill[node];
        } else if (node == 2 && killed) {
          return;  // the killed node's client gives up
        }
      }
    });
  }
  // Load for a while, then kill -9 node 3 mid-stream.
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard<std::mutex> l(mu);
        return acked.size() >= 200;
      },
      seconds(30)));
  cluster_.Kill(2);
  killed = true;
  // The survivors re-form a ring of two and keep serving writes.
  ASSERT_TRUE(WaitFor([&] { return acked_after_kill[0] >= 100 && acked_after_kill[1] >= 100; },
                      seconds(30)))
      << acked_after_kill[0] << " " << acked_after_kill[1];
  stop = true;
  for (auto& w : writers) w.join();
  EXPECT_TRUE(cluster_.WaitForRing("1,2", seconds(10)));

  std::map<std::string, std::string> expected;
  {
    std::lock_guard<std::mutex> l(mu);
    expected = acked;
  }
  std::map<std::string, std::pair<std::string, int64_t>> got[2];
  for (size_t node = 0; node < 2; ++node) {
    ASSERT_TRUE(RangePrefix(*cluster_.Kv(node), "k/", false, &got[node]).ok());
    size_t missing = 0;
    for (const auto& [key, value] : expected) {
      auto it = got[node].find(key);
      if (it == got[node].end() || it->second.first != value) ++missing;
    }
    EXPECT_EQ(missing, 0u) << "node " << node + 1 << " lost acknowledged puts (of "
                           << expected.size() << ")";
  }
  // And the two survivors hold the same data (including any write whose
  // ack was lost with node 3).
  EXPECT_EQ(got[0], got[1]);
}

// Checksum of every replicated record of node i's store, with its global
// index (Admin.GetStoreChecksum).
std::pair<uint64_t, uint64_t> StoreChecksum(const Cluster& c, size_t i) {
  auto channel = grpc::CreateChannel(c.Endpoint(i), grpc::InsecureChannelCredentials());
  auto admin = totemkv::admin::v1::Admin::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
  totemkv::admin::v1::GetStoreChecksumResponse resp;
  if (!admin->GetStoreChecksum(&ctx, {}, &resp).ok()) return {0, 0};
  return {resp.checksum(), resp.applied_seq()};
}

// One store counter of node i (Admin.GetCounters), or -1.
int64_t StoreCounter(const Cluster& c, size_t i, const std::string& name) {
  auto channel = grpc::CreateChannel(c.Endpoint(i), grpc::InsecureChannelCredentials());
  auto admin = totemkv::admin::v1::Admin::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
  totemkv::admin::v1::GetCountersResponse resp;
  if (!admin->GetCounters(&ctx, {}, &resp).ok()) return -1;
  auto it = resp.store().find(name);
  return it == resp.store().end() ? -1 : static_cast<int64_t>(it->second);
}

// A node restarted after missing writes catches up in the state exchange
// (here from a snapshot: the op log keeps only 8 ops) and serves again; so
// does a node whose data directory was wiped. A node alone (no majority of
// the three) refuses writes and linearizable reads, naming the reason, and
// marks the serializable reads it still answers as stale.
TEST_F(ServerClusterTest, RestartedAndWipedNodesCatchUpAndMinorityRefuses) {
  StartCluster({std::string("--replication-log-ops"), std::string("8")});
  etcdserverpb::PutResponse resp;
  ASSERT_TRUE(Put(*cluster_.Kv(2), "before", "1", &resp).ok());
  cluster_.Kill(2);
  ASSERT_TRUE(cluster_.WaitForRing("1,2", seconds(10))) << cluster_.Logs();
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(Put(*cluster_.Kv(i % 2), "missed/" + std::to_string(i), "v", &resp).ok());
  }
  cluster_.Start(2, {std::string("--replication-log-ops"), std::string("8")});
  ASSERT_TRUE(cluster_.WaitForRing("1,2,3", seconds(30))) << cluster_.Logs();
  grpc::Status s;
  ASSERT_TRUE(WaitFor(
      [&] {
        s = Put(*cluster_.Kv(2), "at-restarted-node", "x", &resp, milliseconds(2000));
        return s.ok();
      },
      seconds(10)))
      << s.error_code() << " " << s.error_message() << cluster_.Logs();
  std::map<std::string, std::pair<std::string, int64_t>> got;
  ASSERT_TRUE(RangePrefix(*cluster_.Kv(2), "missed/", true, &got).ok());
  EXPECT_EQ(got.size(), 20u);
  EXPECT_EQ(StoreCounter(cluster_, 2, "snapshots_installed"), 1);
  EXPECT_NE(totem::testing::ReadFile(cluster_.Log(2)).find("event=primary_installed"),
            std::string::npos);
  // Wipe node 3's data directory: it rejoins empty and is rebuilt.
  cluster_.Kill(2);
  std::filesystem::remove_all(cluster_.dir() + "/n3/db");
  ASSERT_TRUE(cluster_.WaitForRing("1,2", seconds(10))) << cluster_.Logs();
  ASSERT_TRUE(Put(*cluster_.Kv(0), "while-wiped", "y", &resp).ok());
  cluster_.Start(2, {std::string("--replication-log-ops"), std::string("8")});
  ASSERT_TRUE(cluster_.WaitForRing("1,2,3", seconds(30))) << cluster_.Logs();
  ASSERT_TRUE(WaitFor(
      [&] { return Put(*cluster_.Kv(2), "after-wipe", "z", &resp, milliseconds(2000)).ok(); },
      seconds(10)))
      << cluster_.Logs();
  ASSERT_TRUE(RangePrefix(*cluster_.Kv(2), "missed/", false, &got).ok());
  EXPECT_EQ(got.size(), 20u);
  ASSERT_TRUE(RangePrefix(*cluster_.Kv(2), "while-wiped", false, &got).ok());
  EXPECT_EQ(got.size(), 1u);
  ASSERT_TRUE(RangePrefix(*cluster_.Kv(2), "before", false, &got).ok());
  EXPECT_EQ(got.size(), 1u);
  // Byte-identical replicas once all applied the same prefix.
  std::pair<uint64_t, uint64_t> sums[3];
  ASSERT_TRUE(WaitFor(
      [&] {
        for (size_t i = 0; i < 3; ++i) sums[i] = StoreChecksum(cluster_, i);
        return sums[0].second == sums[1].second && sums[1].second == sums[2].second &&
               sums[0].first != 0;
      },
      seconds(10)));
  EXPECT_EQ(sums[0].first, sums[1].first);
  EXPECT_EQ(sums[0].first, sums[2].first);
  EXPECT_EQ(StoreCounter(cluster_, 2, "snapshots_installed"), 1);  // since its restart

  // Kill both others: node 3 alone has no quorum.
  cluster_.Kill(0);
  cluster_.Kill(1);
  ASSERT_TRUE(cluster_.WaitForRing("3", seconds(10))) << cluster_.Logs();
  ASSERT_TRUE(WaitFor(
      [&] {
        s = Put(*cluster_.Kv(2), "alone", "x", &resp, milliseconds(2000));
        return s.error_message().find("no quorum: 1 of 3 members reachable") != std::string::npos;
      },
      seconds(10)))
      << s.error_code() << " " << s.error_message();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  s = RangePrefix(*cluster_.Kv(2), "missed/", false, &got);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  // Serializable reads are answered, marked stale.
  {
    grpc::ClientContext ctx;
    etcdserverpb::RangeRequest req;
    req.set_key("before");
    req.set_serializable(true);
    etcdserverpb::RangeResponse range;
    ASSERT_TRUE(cluster_.Kv(2)->Range(&ctx, req, &range).ok());
    EXPECT_EQ(range.kvs_size(), 1);
    auto stale = ctx.GetServerInitialMetadata().find("totemkv-stale");
    ASSERT_NE(stale, ctx.GetServerInitialMetadata().end());
    EXPECT_NE(std::string(stale->second.data(), stale->second.size()).find("no quorum"),
              std::string::npos);
  }
  // etcdctl endpoint status names the problem.
  auto [rc, out] = Etcdctl(cluster_, cluster_.Endpoint(2), "endpoint status -w json");
  EXPECT_NE(out.find("no quorum"), std::string::npos) << out;
}

// Membership is replicated state changed by ordered ops: etcdctl member
// add / remove change the set the quorum is counted over.
TEST_F(ServerClusterTest, EtcdctlMemberAddRemoveChangesTheQuorum) {
  StartCluster();
  auto [rc, out] = Etcdctl(cluster_, cluster_.Endpoint(0),
                           "member add n4 --peer-urls=http://127.0.0.1:9 -w json");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("http://127.0.0.1:9"), std::string::npos) << out;
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(2), "member list");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("4, unstarted, , http://127.0.0.1:9"), std::string::npos) << out;
  // A duplicate peer URL and an unknown id are refused.
  std::tie(rc, out) =
      Etcdctl(cluster_, cluster_.Endpoint(1), "member add n5 --peer-urls=http://127.0.0.1:9");
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("Peer URLs already exists"), std::string::npos) << out;
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(1), "member remove 99");
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("member not found"), std::string::npos) << out;
  // Remove member 4 (never started) and member 3: the configured set is
  // {1, 2}, so after killing node 3 the two survivors are a majority.
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(1), "member remove 4");
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(1), "member remove 3");
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(0), "member list");
  EXPECT_EQ(out.find("n3"), std::string::npos) << out;
  cluster_.Kill(2);
  cluster_.Kill(1);
  ASSERT_TRUE(cluster_.WaitForRing("1", seconds(10))) << cluster_.Logs();
  // Node 1 alone: 1 of 2 configured members is no majority.
  etcdserverpb::PutResponse resp;
  grpc::Status s;
  ASSERT_TRUE(WaitFor(
      [&] {
        s = Put(*cluster_.Kv(0), "k", "v", &resp, milliseconds(2000));
        return s.error_message().find("no quorum: 1 of 2 members reachable") != std::string::npos;
      },
      seconds(10)))
      << s.error_message();
  cluster_.Start(1);
  ASSERT_TRUE(cluster_.WaitForRing("1,2", seconds(30))) << cluster_.Logs();
  ASSERT_TRUE(WaitFor(
      [&] { return Put(*cluster_.Kv(0), "k", "v", &resp, milliseconds(2000)).ok(); }, seconds(10)))
      << cluster_.Logs();
}

// etcdctl endpoint hashkv: every node answers the hash a real etcd (3.4.23)
// answered after the same requests (see tests/server/hash_kv_test.cc).
TEST_F(ServerClusterTest, EtcdctlEndpointHashKvEqualsEtcdOnEveryNode) {
  StartCluster();
  for (const char* args : {"put a 1", "put b 2", "put a 3"}) {
    auto [rc, out] = Etcdctl(cluster_, cluster_.Endpoint(0), args);
    ASSERT_EQ(rc, 0) << out;
  }
  auto [rc, out] =
      Etcdctl(cluster_, cluster_.Endpoint(1), "txn", "\nput c \"4\"\nput d \"5\"\n\n\n");
  ASSERT_EQ(rc, 0) << out;
  for (const char* args : {"del b", "put e 6", "compact 5"}) {
    std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(2), args);
    ASSERT_EQ(rc, 0) << out;
  }
  for (size_t i = 0; i < 3; ++i) {
    // Serializable on purpose (etcd's HashKV reads local state): wait
    // until the node applied the compaction.
    ASSERT_TRUE(WaitFor(
        [&] {
          std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(i), "endpoint hashkv -w json");
          return out.find("\"hash\":3872688691,\"compact_revision\":5") != std::string::npos;
        },
        seconds(10)))
        << "node " << i + 1 << ": " << out;
  }
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(0), "endpoint hashkv --rev=5");
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("required revision has been compacted"), std::string::npos) << out;
}

}  // namespace
}  // namespace totemkv
