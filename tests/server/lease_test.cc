// End-to-end tests of the etcd Lease service on three real totemkvd
// processes (loopback, free ports, per-test dirs): a lease granted at one
// node, used at another and kept alive from the third outlives its TTL,
// then expires on every node once the keep-alives stop; revoke deletes the
// keys everywhere; TimeToLive / Leases / etcd's error answers; a lease still
// expires after kill -9 of the lowest-id node (the next rank proposes);
// etcdctl's lease commands. Every wait polls with a deadline.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>

#include "cluster_harness.h"
#include "etcd/rpc.grpc.pb.h"

namespace totemkv {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Cluster;
using testing::Etcdctl;
using testing::RangePrefix;
using totem::testing::ReadFile;
using totem::testing::WaitFor;

std::unique_ptr<etcdserverpb::Lease::Stub> LeaseStub(const Cluster& c, size_t i) {
  return etcdserverpb::Lease::NewStub(
      grpc::CreateChannel(c.Endpoint(i), grpc::InsecureChannelCredentials()));
}

void SetDeadline(grpc::ClientContext* ctx, milliseconds timeout = milliseconds(10000)) {
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
}

grpc::Status Grant(etcdserverpb::Lease::Stub& stub, int64_t ttl, int64_t id,
                   etcdserverpb::LeaseGrantResponse* resp) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  etcdserverpb::LeaseGrantRequest req;
  req.set_ttl(ttl);
  req.set_id(id);
  return stub.LeaseGrant(&ctx, req, resp);
}

grpc::Status Revoke(etcdserverpb::Lease::Stub& stub, int64_t id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  etcdserverpb::LeaseRevokeRequest req;
  req.set_id(id);
  etcdserverpb::LeaseRevokeResponse resp;
  return stub.LeaseRevoke(&ctx, req, &resp);
}

grpc::Status TimeToLive(etcdserverpb::Lease::Stub& stub, int64_t id, bool keys,
                        etcdserverpb::LeaseTimeToLiveResponse* resp) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  etcdserverpb::LeaseTimeToLiveRequest req;
  req.set_id(id);
  req.set_keys(keys);
  return stub.LeaseTimeToLive(&ctx, req, resp);
}

grpc::Status PutWithLease(etcdserverpb::KV::Stub& kv, const std::string& key, int64_t lease) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  etcdserverpb::PutRequest req;
  req.set_key(key);
  req.set_value("v");
  req.set_lease(lease);
  etcdserverpb::PutResponse resp;
  return kv.Put(&ctx, req, &resp);
}

// A keep-alive stream to one node.
class KeepAliveStream {
 public:
  KeepAliveStream(const Cluster& c, size_t i) : stub_(LeaseStub(c, i)) {
    stream_ = stub_->LeaseKeepAlive(&ctx_);
  }
  ~KeepAliveStream() {
    stream_->WritesDone();
    ctx_.TryCancel();
  }
  // Sends one request and reads its answer; false if the stream broke.
  bool Once(int64_t id, etcdserverpb::LeaseKeepAliveResponse* resp) {
    etcdserverpb::LeaseKeepAliveRequest req;
    req.set_id(id);
    return stream_->Write(req) && stream_->Read(resp);
  }

 private:
  std::unique_ptr<etcdserverpb::Lease::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                           etcdserverpb::LeaseKeepAliveResponse>>
      stream_;
};

class LeaseTest : public testing::ThreeNodeClusterTest {
 protected:
  // Whether `key` exists at node i (serializable: this node's own state).
  bool Has(size_t i, const std::string& key) {
    std::map<std::string, std::pair<std::string, int64_t>> kvs;
    auto kv = cluster_.Kv(i);
    const grpc::Status s = RangePrefix(*kv, key, /*serializable=*/true, &kvs);
    return s.ok() && kvs.count(key) == 1;
  }
};

TEST_F(LeaseTest, KeepAliveFromAnotherNodeOutlivesTtl_ThenExpiresEverywhere) {
  StartCluster();
  auto lease1 = LeaseStub(cluster_, 0);
  etcdserverpb::LeaseGrantResponse grant;
  ASSERT_TRUE(Grant(*lease1, 2, 0, &grant).ok());
  const int64_t id = grant.id();
  ASSERT_GT(id, 0);
  EXPECT_EQ(grant.ttl(), 2);
  auto kv2 = cluster_.Kv(1);
  ASSERT_TRUE(PutWithLease(*kv2, "ka/k", id).ok());

  // Keep alive from node 3 every 400 ms for 3.2 s (> TTL); the key stays
  // on every node all along.
  KeepAliveStream keep(cluster_, 2);
  const auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < 8; ++round) {
    etcdserverpb::LeaseKeepAliveResponse resp;
    ASSERT_TRUE(keep.Once(id, &resp));
    EXPECT_EQ(resp.id(), id);
    EXPECT_EQ(resp.ttl(), 2);
    for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(Has(i, "ka/k")) << "node " << i + 1;
    // Pacing the client (not waiting for a state): one keep-alive per tick.
    std::this_thread::sleep_until(start + milliseconds(400) * (round + 1));
  }
  ASSERT_GT(std::chrono::steady_clock::now() - start, seconds(3));
  etcdserverpb::LeaseTimeToLiveResponse ttl;
  ASSERT_TRUE(TimeToLive(*lease1, id, false, &ttl).ok());
  EXPECT_EQ(ttl.grantedttl(), 2);
  EXPECT_GE(ttl.ttl(), 0);
  EXPECT_LE(ttl.ttl(), 2);

  // No more keep-alives: gone on every node, from the expiry alone.
  const auto stopped = std::chrono::steady_clock::now();
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_TRUE(WaitFor([&] { return !Has(i, "ka/k"); }, seconds(10))) << "node " << i + 1;
  }
  EXPECT_GT(std::chrono::steady_clock::now() - stopped, milliseconds(1000));
  // Staggered: node 1 (rank 0) proposed the expiry; not every node did.
  // (It logs once its proposal is applied, a moment after the delete.)
  EXPECT_TRUE(WaitFor(
      [&] { return ReadFile(cluster_.Log(0)).find("rank=0 outcome=expired") != std::string::npos; },
      seconds(5)));
  size_t proposals = 0;
  for (size_t i = 0; i < 3; ++i) {
    const std::string log = ReadFile(cluster_.Log(i));
    // lease_expired and lease_expire_failed: every proposal this node made.
    for (size_t p = log.find("event=lease_expire"); p != std::string::npos;
         p = log.find("event=lease_expire", p + 1)) {
      ++proposals;
    }
  }
  EXPECT_GE(proposals, 1u);
  EXPECT_LT(proposals, 3u);
  for (size_t i = 0; i < 3; ++i) {
    auto stub = LeaseStub(cluster_, i);
    ASSERT_TRUE(TimeToLive(*stub, id, false, &ttl).ok());
    EXPECT_EQ(ttl.ttl(), -1) << "node " << i + 1;
  }
  // A keep-alive now answers TTL 0 and the stream stays usable.
  etcdserverpb::LeaseKeepAliveResponse resp;
  ASSERT_TRUE(keep.Once(id, &resp));
  EXPECT_EQ(resp.ttl(), 0);
  ASSERT_TRUE(keep.Once(id, &resp));
  EXPECT_EQ(resp.ttl(), 0);
}

TEST_F(LeaseTest, RevokeDeletesKeysEverywhere_TimeToLiveLeasesAndErrors) {
  StartCluster();
  auto lease1 = LeaseStub(cluster_, 0);
  auto lease2 = LeaseStub(cluster_, 1);
  auto lease3 = LeaseStub(cluster_, 2);
  constexpr int64_t kId = 0x1234;
  etcdserverpb::LeaseGrantResponse grant;
  ASSERT_TRUE(Grant(*lease1, 60, kId, &grant).ok());
  EXPECT_EQ(grant.id(), kId);
  EXPECT_EQ(grant.ttl(), 60);
  EXPECT_EQ(grant.header().member_id(), 1u);
  grpc::Status s = Grant(*lease2, 60, kId, &grant);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), "etcdserver: lease already exists");
  s = Grant(*lease2, 9000000001LL, 0, &grant);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(s.error_message(), "etcdserver: too large lease TTL");

  auto kv2 = cluster_.Kv(1);
  ASSERT_TRUE(PutWithLease(*kv2, "rv/b", kId).ok());
  ASSERT_TRUE(PutWithLease(*kv2, "rv/a", kId).ok());
  s = PutWithLease(*kv2, "rv/c", 0x999);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "etcdserver: requested lease not found");

  etcdserverpb::LeaseTimeToLiveResponse ttl;
  ASSERT_TRUE(TimeToLive(*lease3, kId, true, &ttl).ok());
  EXPECT_EQ(ttl.id(), kId);
  EXPECT_EQ(ttl.grantedttl(), 60);
  EXPECT_GE(ttl.ttl(), 55);
  EXPECT_LE(ttl.ttl(), 60);
  ASSERT_EQ(ttl.keys_size(), 2);
  EXPECT_EQ(ttl.keys(0), "rv/a");
  EXPECT_EQ(ttl.keys(1), "rv/b");
  ASSERT_TRUE(TimeToLive(*lease3, kId, false, &ttl).ok());
  EXPECT_EQ(ttl.keys_size(), 0);

  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    etcdserverpb::LeaseLeasesResponse leases;
    ASSERT_TRUE(lease2->LeaseLeases(&ctx, etcdserverpb::LeaseLeasesRequest(), &leases).ok());
    ASSERT_EQ(leases.leases_size(), 1);
    EXPECT_EQ(leases.leases(0).id(), kId);
  }

  ASSERT_TRUE(Revoke(*lease3, kId).ok());
  for (size_t i = 0; i < 3; ++i) {
    std::map<std::string, std::pair<std::string, int64_t>> kvs;
    auto kv = cluster_.Kv(i);
    ASSERT_TRUE(RangePrefix(*kv, "rv/", /*serializable=*/false, &kvs).ok());
    EXPECT_TRUE(kvs.empty()) << "node " << i + 1;
    auto stub = LeaseStub(cluster_, i);
    ASSERT_TRUE(TimeToLive(*stub, kId, true, &ttl).ok());
    EXPECT_EQ(ttl.ttl(), -1);
    EXPECT_EQ(ttl.id(), kId);
  }
  s = Revoke(*lease1, kId);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(s.error_message(), "etcdserver: requested lease not found");

  // ID 0: the server picks distinct positive ids.
  etcdserverpb::LeaseGrantResponse g1, g2;
  ASSERT_TRUE(Grant(*lease1, 0, 0, &g1).ok());
  ASSERT_TRUE(Grant(*lease2, 30, 0, &g2).ok());
  EXPECT_GT(g1.id(), 0);
  EXPECT_GT(g2.id(), 0);
  EXPECT_NE(g1.id(), g2.id());
  EXPECT_EQ(g1.ttl(), 1);  // raised to the minimum
}

TEST_F(LeaseTest, KillLowestNode_LeaseStillExpires) {
  StartCluster();
  auto lease2 = LeaseStub(cluster_, 1);
  etcdserverpb::LeaseGrantResponse grant;
  ASSERT_TRUE(Grant(*lease2, 1, 0, &grant).ok());
  auto kv3 = cluster_.Kv(2);
  ASSERT_TRUE(PutWithLease(*kv3, "kill/k", grant.id()).ok());
  cluster_.Kill(0);  // node 1 would have proposed the expiry
  for (size_t i : {1u, 2u}) {
    EXPECT_TRUE(WaitFor([&] { return !Has(i, "kill/k"); }, seconds(20))) << "node " << i + 1;
  }
  // Proposed by node 2 or 3 (logged once applied, a moment after the delete).
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string logs = ReadFile(cluster_.Log(1)) + ReadFile(cluster_.Log(2));
        return logs.find(" event=lease_expired ") != std::string::npos &&
               logs.find(" outcome=expired") != std::string::npos;
      },
      seconds(5)));
}

TEST_F(LeaseTest, EtcdctlLeaseCommands) {
  StartCluster();
  auto [rc, out] = Etcdctl(cluster_, cluster_.Endpoint(0), "lease grant 60");
  ASSERT_EQ(rc, 0) << out;
  char hex[17] = {};
  ASSERT_EQ(std::sscanf(out.c_str(), "lease %16s granted with TTL(60s)", hex), 1) << out;
  const std::string id(hex);
  EXPECT_EQ(out, "lease " + id + " granted with TTL(60s)\n");

  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(1), "put --lease=" + id + " ec/k v");
  ASSERT_EQ(rc, 0) << out;
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(2), "lease timetolive " + id + " --keys");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out.rfind("lease " + id + " granted with TTL(60s), remaining(", 0), 0u) << out;
  EXPECT_NE(out.find("s), attached keys([ec/k])\n"), std::string::npos) << out;
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(2), "lease keep-alive --once " + id);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "lease " + id + " keepalived with TTL(60)\n");
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(1), "lease list");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "found 1 leases\n" + id + "\n");
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(0), "lease revoke " + id);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "lease " + id + " revoked\n");
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(2), "get ec/k");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "");
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(1), "lease timetolive " + id);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "lease " + id + " already expired\n");
  std::tie(rc, out) = Etcdctl(cluster_, cluster_.Endpoint(1), "lease revoke " + id);
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("etcdserver: requested lease not found"), std::string::npos) << out;
}

}  // namespace
}  // namespace totemkv
