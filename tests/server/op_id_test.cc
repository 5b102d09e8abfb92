// Client-chosen op ids against real totemkvd processes: a write sent again
// with the same "totemkv-op-id" metadata (at the same or another node) is
// applied once and answered with the original revision; a malformed id is
// INVALID_ARGUMENT; and the client library, whose first endpoint applies a
// Put but loses the answer, retries at the next endpoint with the same id
// without applying it twice.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <mutex>
#include <string>

#include "client/client.h"
#include "cluster_harness.h"

namespace totemkv::testing {
namespace {

constexpr size_t kNodes = 3;

class OpIdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new Cluster(kNodes);
    ASSERT_TRUE(cluster_->Init());
    for (size_t i = 0; i < kNodes; ++i) cluster_->Start(i);
    ASSERT_TRUE(cluster_->WaitForRing("1,2,3", seconds(30))) << cluster_->Logs();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  static grpc::Status PutWithId(size_t node, const std::string& op_id, const std::string& key,
                                const std::string& value, etcdserverpb::PutResponse* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
    ctx.AddMetadata(client::kOpIdMetadataKey, op_id);
    etcdserverpb::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    return cluster_->Kv(node)->Put(&ctx, req, resp);
  }

  // The key's version and value as node `node` sees them (0 if absent).
  static int64_t Version(size_t node, const std::string& key, std::string* value = nullptr) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
    etcdserverpb::RangeRequest req;
    req.set_key(key);
    etcdserverpb::RangeResponse resp;
    const grpc::Status s = cluster_->Kv(node)->Range(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    if (resp.kvs_size() == 0) return 0;
    if (value != nullptr) *value = resp.kvs(0).value();
    return resp.kvs(0).version();
  }

  static Cluster* cluster_;
};

Cluster* OpIdTest::cluster_ = nullptr;

TEST_F(OpIdTest, Put_SameIdTwiceAppliesOnceWithTheSameRevision) {
  const std::string id = client::NewOpId();
  etcdserverpb::PutResponse first, again, elsewhere;
  grpc::Status s = PutWithId(0, id, "op/once", "v1", &first);
  ASSERT_TRUE(s.ok()) << s.error_message();
  s = PutWithId(0, id, "op/once", "v1", &again);
  ASSERT_TRUE(s.ok()) << s.error_message();
  // The retry may land at another member: the id is cluster-wide.
  s = PutWithId(2, id, "op/once", "v1", &elsewhere);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(again.header().revision(), first.header().revision());
  EXPECT_EQ(elsewhere.header().revision(), first.header().revision());
  EXPECT_EQ(Version(1, "op/once"), 1);

  // A new id is a new write.
  etcdserverpb::PutResponse second;
  s = PutWithId(1, client::NewOpId(), "op/once", "v2", &second);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_GT(second.header().revision(), first.header().revision());
  std::string value;
  EXPECT_EQ(Version(0, "op/once", &value), 2);
  EXPECT_EQ(value, "v2");
}

TEST_F(OpIdTest, Put_MalformedIdIsInvalidArgumentAndWritesNothing) {
  for (const std::string& bad : {std::string("xyz"), std::string(31, 'a'), std::string(33, 'a'),
                                 std::string(32, '0'), std::string(30, 'a') + "g1"}) {
    etcdserverpb::PutResponse resp;
    const grpc::Status s = PutWithId(0, bad, "op/bad", "v", &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << "id '" << bad << "'";
    EXPECT_NE(s.error_message().find(client::kOpIdMetadataKey), std::string::npos)
        << s.error_message();
  }
  EXPECT_EQ(Version(0, "op/bad"), 0);
}

// A KV endpoint that forwards Put to a real node, with the caller's
// metadata, and then answers UNAVAILABLE: the write happened, its answer
// was lost. Records the op ids it saw.
class LosingProxy final : public etcdserverpb::KV::Service {
 public:
  explicit LosingProxy(std::unique_ptr<etcdserverpb::KV::Stub> target)
      : target_(std::move(target)) {}

  grpc::Status Put(grpc::ServerContext* ctx, const etcdserverpb::PutRequest* req,
                   etcdserverpb::PutResponse*) override {
    grpc::ClientContext fwd;
    fwd.set_deadline(ctx->deadline());
    std::string id;
    const auto it = ctx->client_metadata().find(client::kOpIdMetadataKey);
    if (it != ctx->client_metadata().end()) {
      id.assign(it->second.data(), it->second.size());
      fwd.AddMetadata(client::kOpIdMetadataKey, id);
    }
    etcdserverpb::PutResponse applied;
    const grpc::Status s = target_->Put(&fwd, *req, &applied);
    std::lock_guard<std::mutex> lock(mu_);
    ids_.push_back(id);
    if (s.ok()) applied_revision_ = applied.header().revision();
    return {grpc::StatusCode::UNAVAILABLE, "proxy: answer lost"};
  }

  std::vector<std::string> ids() {
    std::lock_guard<std::mutex> lock(mu_);
    return ids_;
  }
  int64_t applied_revision() {
    std::lock_guard<std::mutex> lock(mu_);
    return applied_revision_;
  }

 private:
  std::unique_ptr<etcdserverpb::KV::Stub> target_;
  std::mutex mu_;
  std::vector<std::string> ids_;
  int64_t applied_revision_ = 0;
};

TEST_F(OpIdTest, ClientRetry_AfterLostAnswerIsNotAppliedTwice) {
  LosingProxy proxy(cluster_->Kv(0));
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&proxy);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_NE(port, 0);

  client::ClientOptions options;
  options.endpoints = {"127.0.0.1:" + std::to_string(port), cluster_->Endpoint(1)};
  options.command_timeout = std::chrono::milliseconds(10000);
  client::Client c(options);
  auto put = c.Put("op/retried", "v");
  ASSERT_TRUE(put.ok()) << put.status().ToString();

  const std::vector<std::string> ids = proxy.ids();
  ASSERT_EQ(ids.size(), 1u);
  EXPECT_EQ(ids[0].size(), 32u) << ids[0];
  ASSERT_GT(proxy.applied_revision(), 0) << "the proxy's forward failed";
  // The retry at node 2 was answered from the first application.
  EXPECT_EQ(put->header().revision(), proxy.applied_revision());
  EXPECT_EQ(c.current_endpoint(), cluster_->Endpoint(1));
  EXPECT_EQ(Version(2, "op/retried"), 1);
  server->Shutdown(std::chrono::system_clock::now() + seconds(2));
}

}  // namespace
}  // namespace totemkv::testing
