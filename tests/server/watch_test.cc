// End-to-end tests of the etcd v3 Watch service: three real totemkvd
// processes on loopback (tests/server/cluster_harness.h), watched through
// the etcd gRPC stubs and the Debian etcdctl. Checks: a watch on one node
// sees the puts and deletes made at the others in revision order; watches
// on all three nodes get identical event sequences; etcdctl watch --prefix
// prints events made at another node; a watch from a past revision replays
// the history; cancel; a compacted start revision; a refused create; and
// SIGTERM with an open watch stream stops the server promptly. Every wait
// has a deadline.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "cluster_harness.h"
#include "etcd/rpc.grpc.pb.h"

namespace totemkv {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Cluster;
using testing::Put;
using totem::testing::Child;
using totem::testing::ReadFile;
using totem::testing::WaitFor;

// (type 'P'/'D', key, value, mod revision)
using Flat = std::tuple<char, std::string, std::string, int64_t>;

// One Watch stream; a thread collects every response.
class WatchClient {
 public:
  explicit WatchClient(const std::string& endpoint)
      : stub_(etcdserverpb::Watch::NewStub(
            grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()))),
        stream_(Open(stub_.get(), &ctx_)) {
    reader_ = std::thread([this] {
      etcdserverpb::WatchResponse r;
      while (stream_->Read(&r)) {
        std::lock_guard<std::mutex> lock(mu_);
        responses_.push_back(r);
      }
      grpc::Status status = stream_->Finish();
      std::lock_guard<std::mutex> lock(mu_);
      status_ = status;
      done_ = true;
    });
  }
  ~WatchClient() {
    ctx_.TryCancel();
    reader_.join();
  }

  bool Create(const std::string& key, const std::string& range_end, int64_t start_revision = 0) {
    etcdserverpb::WatchRequest req;
    auto* c = req.mutable_create_request();
    c->set_key(key);
    c->set_range_end(range_end);
    c->set_start_revision(start_revision);
    return stream_->Write(req);
  }
  bool Send(const etcdserverpb::WatchRequest& req) { return stream_->Write(req); }
  bool Cancel(int64_t id) {
    etcdserverpb::WatchRequest req;
    req.mutable_cancel_request()->set_watch_id(id);
    return stream_->Write(req);
  }
  std::vector<etcdserverpb::WatchResponse> Responses() {
    std::lock_guard<std::mutex> lock(mu_);
    return responses_;
  }
  // The events of watcher `id`, flattened.
  std::vector<Flat> Events(int64_t id) {
    std::vector<Flat> out;
    for (const auto& r : Responses()) {
      if (r.watch_id() != id) continue;
      for (const auto& e : r.events()) {
        out.emplace_back(e.type() == mvccpb::Event::PUT ? 'P' : 'D', e.kv().key(), e.kv().value(),
                         e.kv().mod_revision());
      }
    }
    return out;
  }
  bool WaitForResponse(const std::function<bool(const etcdserverpb::WatchResponse&)>& pred,
                       milliseconds timeout = milliseconds(10000)) {
    return WaitFor(
        [&] {
          for (const auto& r : Responses()) {
            if (pred(r)) return true;
          }
          return false;
        },
        timeout);
  }
  bool WaitForEvents(int64_t id, size_t n, milliseconds timeout = milliseconds(10000)) {
    return WaitFor([&] { return Events(id).size() >= n; }, timeout);
  }
  bool done() {
    std::lock_guard<std::mutex> lock(mu_);
    return done_;
  }
  // The ring can form before a node's gRPC port listens: wait for it
  // (the destructor's cancel ends the wait).
  static std::unique_ptr<
      grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>>
  Open(etcdserverpb::Watch::Stub* stub, grpc::ClientContext* ctx) {
    ctx->set_wait_for_ready(true);
    return stub->Watch(ctx);
  }
  grpc::Status status() {  // once done()
    std::lock_guard<std::mutex> lock(mu_);
    return status_;
  }

 private:
  std::unique_ptr<etcdserverpb::Watch::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<etcdserverpb::WatchRequest, etcdserverpb::WatchResponse>>
      stream_;
  std::thread reader_;
  std::mutex mu_;
  std::vector<etcdserverpb::WatchResponse> responses_;
  bool done_ = false;
  grpc::Status status_;
};

bool IsCreated(const etcdserverpb::WatchResponse& r, int64_t id) {
  return r.created() && r.watch_id() == id;
}

grpc::Status Delete(etcdserverpb::KV::Stub& kv, const std::string& key, int64_t* revision) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
  etcdserverpb::DeleteRangeRequest req;
  req.set_key(key);
  etcdserverpb::DeleteRangeResponse resp;
  grpc::Status s = kv.DeleteRange(&ctx, req, &resp);
  *revision = resp.header().revision();
  return s;
}

class WatchTest : public testing::ThreeNodeClusterTest {};

TEST_F(WatchTest, Watch_EveryNodeSeesWritesFromOthersInIdenticalRevisionOrder) {
  StartCluster();
  std::vector<std::unique_ptr<WatchClient>> watches;
  for (size_t i = 0; i < 3; ++i) {
    watches.push_back(std::make_unique<WatchClient>(cluster_.Endpoint(i)));
    ASSERT_TRUE(watches[i]->Create("w/", "w0"));
    ASSERT_TRUE(watches[i]->WaitForResponse([](const auto& r) { return IsCreated(r, 0); }))
        << "node " << i + 1;
  }
  auto kv1 = cluster_.Kv(0);
  auto kv2 = cluster_.Kv(1);
  std::vector<Flat> want;
  for (int i = 0; i < 6; ++i) {
    etcdserverpb::PutResponse put;
    const std::string key = "w/" + std::to_string(i % 3);
    ASSERT_TRUE(Put(i % 2 == 0 ? *kv1 : *kv2, key, "v" + std::to_string(i), &put).ok());
    want.emplace_back('P', key, "v" + std::to_string(i), put.header().revision());
    if (i % 3 == 2) {
      int64_t rev = 0;
      ASSERT_TRUE(Delete(i % 2 == 0 ? *kv2 : *kv1, "w/0", &rev).ok());
      want.emplace_back('D', "w/0", "", rev);
    }
  }
  etcdserverpb::PutResponse other;
  ASSERT_TRUE(Put(*kv1, "x/outside", "v", &other).ok());  // not in the range
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(watches[i]->WaitForEvents(0, want.size())) << "node " << i + 1;
    EXPECT_EQ(watches[i]->Events(0), want) << "node " << i + 1;
  }
  // Header revisions never go backwards and cover the events.
  for (const auto& r : watches[2]->Responses()) {
    for (const auto& e : r.events()) EXPECT_GE(r.header().revision(), e.kv().mod_revision());
    EXPECT_EQ(r.header().member_id(), 3u);
  }
}

TEST_F(WatchTest, Watch_PastRevisionReplaysThenCancelStopsIt) {
  StartCluster();
  auto kv1 = cluster_.Kv(0);
  std::vector<Flat> want;
  for (int i = 0; i < 5; ++i) {
    etcdserverpb::PutResponse put;
    ASSERT_TRUE(Put(*kv1, "p/k", std::to_string(i), &put).ok());
    want.emplace_back('P', "p/k", std::to_string(i), put.header().revision());
  }
  WatchClient w(cluster_.Endpoint(1));
  ASSERT_TRUE(w.Create("p/k", "", std::get<3>(want[1])));
  ASSERT_TRUE(w.WaitForEvents(0, 4));
  EXPECT_EQ(w.Events(0), std::vector<Flat>(want.begin() + 1, want.end()));

  ASSERT_TRUE(w.Cancel(0));
  ASSERT_TRUE(w.WaitForResponse([](const auto& r) { return r.canceled() && r.watch_id() == 0; }));
  // A second watcher on the same stream sees the next put; the canceled
  // one does not.
  ASSERT_TRUE(w.Create("p/k", ""));
  ASSERT_TRUE(w.WaitForResponse([](const auto& r) { return IsCreated(r, 1); }));
  etcdserverpb::PutResponse put;
  ASSERT_TRUE(Put(*cluster_.Kv(2), "p/k", "after", &put).ok());
  ASSERT_TRUE(w.WaitForEvents(1, 1));
  EXPECT_EQ(w.Events(0).size(), 4u);

  // A refused create is answered on the stream, which stays usable.
  ASSERT_TRUE(w.Create("b", "a"));
  ASSERT_TRUE(w.WaitForResponse([](const auto& r) {
    return r.created() && r.canceled() && r.watch_id() == -1 &&
           r.cancel_reason() == "mvcc: watcher range is empty";
  }));
}

TEST_F(WatchTest, Watch_EmptyRequestEndsStreamWithInvalidArgument) {
  StartCluster();
  WatchClient w(cluster_.Endpoint(0));
  ASSERT_TRUE(w.Send(etcdserverpb::WatchRequest()));
  ASSERT_TRUE(WaitFor([&] { return w.done(); }, seconds(10)));
  EXPECT_EQ(w.status().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(w.status().error_message().find("no create_request"), std::string::npos)
      << w.status().error_message();
}

TEST_F(WatchTest, Watch_CompactedStartRevisionIsCanceledWithCompactRevision) {
  StartCluster();
  auto kv1 = cluster_.Kv(0);
  etcdserverpb::PutResponse put;
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(Put(*kv1, "c/k", std::to_string(i), &put).ok());
  const int64_t compact_at = put.header().revision() - 1;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(10));
    etcdserverpb::CompactionRequest req;
    req.set_revision(compact_at);
    etcdserverpb::CompactionResponse resp;
    ASSERT_TRUE(kv1->Compact(&ctx, req, &resp).ok());
  }
  WatchClient w(cluster_.Endpoint(2));
  ASSERT_TRUE(w.Create("c/k", "", 2));
  ASSERT_TRUE(w.WaitForResponse([&](const auto& r) {
    return r.canceled() && r.watch_id() == 0 && r.compact_revision() == compact_at;
  })) << w.Responses().size();
}

TEST_F(WatchTest, Etcdctl_WatchPrefixPrintsEventsMadeAtAnotherNode) {
  StartCluster();
  auto kv1 = cluster_.Kv(0);
  etcdserverpb::PutResponse first;
  ASSERT_TRUE(Put(*kv1, "e/a", "1", &first).ok());
  // From the first put's revision, so it does not matter whether etcdctl's
  // watch is established before or after the writes below.
  const std::string out = cluster_.dir() + "/etcdctl-watch.out";
  Child etcdctl({"/bin/sh", "-c",
                 "ETCDCTL_API=3 exec etcdctl --endpoints=" + cluster_.Endpoint(2) +
                     " watch --prefix e/ --rev=" + std::to_string(first.header().revision())},
                out);
  etcdserverpb::PutResponse put;
  ASSERT_TRUE(Put(*cluster_.Kv(1), "e/b", "2", &put).ok());
  int64_t rev = 0;
  ASSERT_TRUE(Delete(*kv1, "e/a", &rev).ok());
  const std::string want = "PUT\ne/a\n1\nPUT\ne/b\n2\nDELETE\ne/a\n\n";
  EXPECT_TRUE(WaitFor([&] { return ReadFile(out) == want; }, seconds(15))) << ReadFile(out);
  etcdctl.Kill();
}

// A single totemkvd stopped with SIGTERM while a client holds a watch
// stream open exits promptly, and the client's stream ends.
TEST(WatchShutdownTest, Sigterm_WithOpenWatchStreamExitsPromptly) {
  totem::testing::TempDir dir;
  const uint16_t tcp = testing::FreeTcpPort();
  const uint16_t udp = totem::testing::FreeUdpPort();
  ASSERT_NE(tcp, 0);
  ASSERT_NE(udp, 0);
  const std::string endpoint = "127.0.0.1:" + std::to_string(tcp);
  Child server({testing::kServerBin, "--name", "n1", "--data-dir", dir.path() + "/n1",
                "--listen-client-urls", "http://" + endpoint, "--initial-cluster",
                "n1=1@127.0.0.1:" + std::to_string(udp), "--sync=false"},
               dir.path() + "/n1.log");
  // Connect only once it listens: a refused first connect would put the
  // channel into reconnect backoff.
  ASSERT_TRUE(WaitFor(
      [&] {
        return ReadFile(dir.path() + "/n1.log").find("event=ring_configuration kind=regular") !=
               std::string::npos;
      },
      seconds(30)))
      << ReadFile(dir.path() + "/n1.log");
  auto kv =
      etcdserverpb::KV::NewStub(grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
  etcdserverpb::PutResponse put;
  ASSERT_TRUE(
      WaitFor([&] { return Put(*kv, "k", "v", &put, milliseconds(1000)).ok(); }, seconds(30)))
      << ReadFile(dir.path() + "/n1.log");
  WatchClient w(endpoint);
  ASSERT_TRUE(w.Create("k", ""));
  ASSERT_TRUE(w.WaitForResponse([](const auto& r) { return IsCreated(r, 0); }));
  const auto start = std::chrono::steady_clock::now();
  server.Signal(SIGTERM);
  // The hub ends the stream at once; without it grpc's Shutdown would
  // hold the call for its 2 s grace period.
  ASSERT_TRUE(WaitFor([&] { return w.done(); }, seconds(10)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(1500));
  const std::optional<int> rc = server.Wait(seconds(10));
  ASSERT_TRUE(rc.has_value()) << ReadFile(dir.path() + "/n1.log");
  EXPECT_EQ(*rc, 0) << ReadFile(dir.path() + "/n1.log");
}

}  // namespace
}  // namespace totemkv
