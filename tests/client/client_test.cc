// Tests of the totemkv_client library against a real etcd v3 API server
// (see server_harness.h): KV, txn, watch (iterator and callback), leases,
// cluster/maintenance calls, failover and error statuses; and, against
// in-process fake endpoints, the op id every write carries and keeps across
// retries.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

#include "server_harness.h"

namespace totemkv::testing {
namespace {

using client::Client;
using client::ClientOptions;
using client::StatusCode;

class ClientTest : public ServerSuite<ClientTest> {
 protected:
  void SetUp() override {
    ServerSuite::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    ClientOptions o;
    o.endpoints = {server_->endpoint()};
    client_ = std::make_unique<Client>(o);
  }

  std::unique_ptr<Client> client_;
};

TEST(ClientHelpers, ParseEndpointsAndPrefixRangeEnd) {
  EXPECT_EQ(client::ParseEndpoints(" http://a:1, b:2/ ,,c:3"),
            (std::vector<std::string>{"a:1", "b:2", "c:3"}));
  EXPECT_EQ(client::PrefixRangeEnd("abc"), "abd");
  EXPECT_EQ(client::PrefixRangeEnd(std::string("a\xff", 2)), "b");
  EXPECT_EQ(client::PrefixRangeEnd(""), std::string(1, '\0'));
}

TEST_F(ClientTest, PutGetDelete_RoundTrip) {
  auto put = client_->Put("c/a", "1");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_GT(put->header().revision(), 0);
  ASSERT_TRUE(client_->Put("c/b", "2").ok());
  auto get = client_->Get("c/", {.prefix = true});
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  ASSERT_EQ(get->kvs_size(), 2);
  EXPECT_EQ(get->kvs(0).key(), "c/a");
  EXPECT_EQ(get->kvs(1).value(), "2");
  auto count = client_->Get("c/", {.prefix = true, .count_only = true});
  EXPECT_EQ(count->count(), 2);
  auto limited = client_->Get("c/", {.prefix = true, .limit = 1, .keys_only = true});
  ASSERT_EQ(limited->kvs_size(), 1);
  EXPECT_TRUE(limited->more());
  EXPECT_EQ(limited->kvs(0).value(), "");
  auto old = client_->Get("c/a", {.revision = put->header().revision()});
  EXPECT_EQ(old->kvs(0).value(), "1");
  auto del = client_->Delete("c/", {.prefix = true});
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->deleted(), 2);
}

TEST_F(ClientTest, Txn_ComparesPickTheBranch) {
  ASSERT_TRUE(client_->Put("t/k", "v1").ok());
  etcdserverpb::TxnRequest req;
  *req.add_compare() = client::txn::Value("t/k", etcdserverpb::Compare::EQUAL, "v1");
  *req.add_success() = client::txn::Put("t/k", "v2");
  *req.add_failure() = client::txn::Get("t/k");
  auto r = client_->Txn(req);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->succeeded());
  r = client_->Txn(req);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->succeeded());
  EXPECT_EQ(r->responses(0).response_range().kvs(0).value(), "v2");
}

TEST_F(ClientTest, Watch_IteratorAndCallbackSeeEvents) {
  auto put = client_->Put("w/a", "1");
  ASSERT_TRUE(put.ok());
  ASSERT_TRUE(client_->Delete("w/a").ok());
  auto w = client_->Watch("w/", {.prefix = true, .start_revision = put->header().revision()});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::vector<std::string> seen;
  while (seen.size() < 2) {
    auto r = w.value()->Next();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    for (const auto& ev : r->events()) {
      seen.push_back(std::string(ev.type() == mvccpb::Event::PUT ? "PUT " : "DELETE ") +
                     ev.kv().key());
    }
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"PUT w/a", "DELETE w/a"}));
  // Cancel from another thread ends a blocked Next with CANCELLED.
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    w.value()->Cancel();
  });
  EXPECT_EQ(w.value()->Next().status().code(), StatusCode::CANCELLED);
  canceller.join();

  int events = 0;
  client::Status s = client_->Watch("w/a", {.start_revision = put->header().revision()},
                                    [&](const etcdserverpb::WatchResponse& r) {
                                      events += r.events_size();
                                      return events < 2;
                                    });
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(events, 2);
}

TEST_F(ClientTest, Lease_GrantKeepAliveTimeToLiveRevoke) {
  auto g = client_->LeaseGrant(30);
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  ASSERT_TRUE(client_->Put("l/k", "v", {.lease = g->id()}).ok());
  auto ka = client_->LeaseKeepAliveOnce(g->id());
  ASSERT_TRUE(ka.ok()) << ka.status().ToString();
  EXPECT_EQ(ka->ttl(), 30);
  auto ttl = client_->LeaseTimeToLive(g->id(), true);
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl->grantedttl(), 30);
  ASSERT_EQ(ttl->keys_size(), 1);
  EXPECT_EQ(ttl->keys(0), "l/k");
  ASSERT_TRUE(client_->LeaseRevoke(g->id()).ok());
  EXPECT_EQ(client_->Get("l/k")->kvs_size(), 0);
  EXPECT_EQ(client_->LeaseRevoke(g->id()).status().code(), StatusCode::NOT_FOUND);
  EXPECT_LE(client_->LeaseKeepAliveOnce(g->id())->ttl(), 0);
}

TEST_F(ClientTest, MemberListAndStatus) {
  auto m = client_->MemberList();
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  ASSERT_EQ(m->members_size(), 1);
  auto s = client_->ServerStatus();
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->header().member_id(), m->members(0).id());
  EXPECT_FALSE(s->version().empty());
}

TEST_F(ClientTest, Failover_SkipsDeadEndpointAndRemembersGoodOne) {
  const std::string dead = "127.0.0.1:" + std::to_string(FreeTcpPort());
  Client c({.endpoints = {dead, server_->endpoint()}});
  ASSERT_TRUE(c.Put("f/k", "v").ok());
  EXPECT_EQ(c.current_endpoint(), server_->endpoint());
  EXPECT_EQ(c.Get("f/k")->kvs(0).value(), "v");
  EXPECT_EQ(c.Get("f/k")->kvs(0).version(), 1);  // applied once
}

TEST_F(ClientTest, Errors_CarryGrpcCodeAndMessage) {
  const std::string dead = "127.0.0.1:" + std::to_string(FreeTcpPort());
  Client c({.endpoints = {dead}, .dial_timeout = std::chrono::milliseconds(500)});
  const auto start = std::chrono::steady_clock::now();
  auto r = c.Get("x");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  EXPECT_EQ(r.status().code(), StatusCode::UNAVAILABLE);
  EXPECT_NE(r.status().message().find(dead), std::string::npos) << r.status().message();
  // A server-side rejection comes back as the server's code: empty key.
  auto bad = client_->Put("", "v");
  EXPECT_EQ(bad.status().code(), StatusCode::INVALID_ARGUMENT) << bad.status().ToString();
}

// An in-process etcd KV endpoint whose Put answers as told (UNAVAILABLE,
// OK, or nothing until the caller gives up) and which records the op id
// metadata of every request it gets.
class FakeKv final : public etcdserverpb::KV::Service {
 public:
  enum class Mode { kUnavailable, kOk, kHang };
  explicit FakeKv(Mode mode) : mode_(mode) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~FakeKv() override { server_->Shutdown(std::chrono::system_clock::now()); }

  grpc::Status Put(grpc::ServerContext* ctx, const etcdserverpb::PutRequest*,
                   etcdserverpb::PutResponse* resp) override {
    Record(*ctx);
    switch (mode_) {
      case Mode::kUnavailable:
        return {grpc::StatusCode::UNAVAILABLE, "fake: unavailable"};
      case Mode::kHang:
        while (!ctx->IsCancelled() && std::chrono::system_clock::now() < ctx->deadline()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return {grpc::StatusCode::DEADLINE_EXCEEDED, "fake: no answer"};
      case Mode::kOk:
        resp->mutable_header()->set_revision(42);
        return grpc::Status::OK;
    }
    return grpc::Status::OK;
  }
  grpc::Status Range(grpc::ServerContext* ctx, const etcdserverpb::RangeRequest*,
                     etcdserverpb::RangeResponse*) override {
    Record(*ctx);
    return grpc::Status::OK;
  }

  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  // The op id of each request so far ("" for none).
  std::vector<std::string> ids() {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }

 private:
  void Record(const grpc::ServerContext& ctx) {
    std::string id;
    const auto it = ctx.client_metadata().find(client::kOpIdMetadataKey);
    if (it != ctx.client_metadata().end()) id.assign(it->second.data(), it->second.size());
    std::lock_guard<std::mutex> lock(mu_);
    ids_.push_back(id);
  }

  Mode mode_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::mutex mu_;
  std::vector<std::string> ids_;
};

bool IsOpId(const std::string& id) {
  return id.size() == 32 && id.find_first_not_of("0123456789abcdef") == std::string::npos &&
         id.find_first_not_of('0') != std::string::npos;
}

TEST(ClientOpId, NewOpId_Is32HexDigitsAndFresh) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const std::string id = client::NewOpId();
    EXPECT_TRUE(IsOpId(id)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 1000u);
}

TEST(ClientOpId, Write_RetriedOnNextEndpointWithTheSameId) {
  FakeKv down(FakeKv::Mode::kUnavailable);
  FakeKv up(FakeKv::Mode::kOk);
  Client c({.endpoints = {down.endpoint(), up.endpoint()}});
  auto put = c.Put("k", "v");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->header().revision(), 42);
  ASSERT_EQ(down.ids().size(), 1u);
  ASSERT_EQ(up.ids().size(), 1u);
  EXPECT_TRUE(IsOpId(down.ids()[0])) << down.ids()[0];
  EXPECT_EQ(up.ids()[0], down.ids()[0]);
  EXPECT_EQ(c.current_endpoint(), up.endpoint());

  // The next write is another op: a new id.
  ASSERT_TRUE(c.Put("k", "w").ok());
  ASSERT_EQ(up.ids().size(), 2u);
  EXPECT_TRUE(IsOpId(up.ids()[1]));
  EXPECT_NE(up.ids()[1], up.ids()[0]);
}

TEST(ClientOpId, Write_AttemptWithNoAnswerMovesOnWithTheSameId) {
  FakeKv hung(FakeKv::Mode::kHang);
  FakeKv up(FakeKv::Mode::kOk);
  Client c({.endpoints = {hung.endpoint(), up.endpoint()},
            .command_timeout = std::chrono::milliseconds(10000),
            .attempt_timeout = std::chrono::milliseconds(300)});
  const auto start = std::chrono::steady_clock::now();
  auto put = c.Put("k", "v");
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  ASSERT_EQ(hung.ids().size(), 1u);
  ASSERT_EQ(up.ids().size(), 1u);
  EXPECT_TRUE(IsOpId(up.ids()[0]));
  EXPECT_EQ(up.ids()[0], hung.ids()[0]);
}

TEST(ClientOpId, Write_NotRetriedWhenRetryWritesIsOff) {
  FakeKv down(FakeKv::Mode::kUnavailable);
  FakeKv up(FakeKv::Mode::kOk);
  Client c({.endpoints = {down.endpoint(), up.endpoint()}, .retry_writes = false});
  auto put = c.Put("k", "v");
  EXPECT_EQ(put.status().code(), StatusCode::UNAVAILABLE) << put.status().ToString();
  EXPECT_NE(put.status().message().find(down.endpoint()), std::string::npos);
  EXPECT_EQ(down.ids().size(), 1u);
  EXPECT_TRUE(up.ids().empty());
}

TEST(ClientOpId, Read_CarriesNoOpId) {
  FakeKv up(FakeKv::Mode::kOk);
  Client c({.endpoints = {up.endpoint()}});
  ASSERT_TRUE(c.Get("k").ok());
  ASSERT_EQ(up.ids().size(), 1u);
  EXPECT_EQ(up.ids()[0], "");
}

}  // namespace
}  // namespace totemkv::testing
