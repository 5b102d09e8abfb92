// totemkvd across two rings joined by a gateway (issue 6, Totem multiple-ring
// protocol): five real totemkvd processes on loopback, ring 1 = n1, n2 and
// the gateway n5, ring 2 = n3, n4 and n5, each ring with its own UDP ports;
// all five are store members (a quorum is 3). Writes through every member
// are applied by all in one global order and read back linearizably
// through every member; killing the gateway (SIGKILL) leaves each ring a
// minority (2 of 5), so both sides refuse writes naming the missing quorum
// while still serving serializable reads; restarting the gateway brings
// writes back everywhere, and at the end every store is identical
// (Admin.GetStoreChecksum) and every acknowledged put is readable through
// every member.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "admin/admin.grpc.pb.h"
#include "cluster_harness.h"

namespace totemkv::testing {
namespace {

constexpr size_t kNodes = 5;
constexpr size_t kGateway = 4;  // n5
constexpr char kPrefix[] = "mring/";

struct Ack {
  std::string key;
  std::string value;
};

class MultiRingServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.Init());
    ASSERT_TRUE(cluster_.SetRings({{1}, {1}, {2}, {2}, {1, 2}}));
    for (size_t i = 0; i < kNodes; ++i) cluster_.Start(i);
    ASSERT_TRUE(cluster_.WaitForRing("1,2,3,4,5", seconds(60)))
        << "no global configuration of all five members";
  }
  void TearDown() override {
    if (HasFailure()) std::fprintf(stderr, "%s\n", cluster_.Logs().c_str());
  }

  // Puts `key` through node i, retrying while the member is not serving
  // yet (a configuration change or state exchange under way).
  bool PutEventually(size_t i, const std::string& key, const std::string& value, seconds timeout,
                     grpc::Status* last) {
    auto kv = cluster_.Kv(i);
    const bool ok = WaitFor(
        [&] {
          etcdserverpb::PutResponse resp;
          *last = Put(*kv, key, value, &resp, milliseconds(2000));
          return last->ok();
        },
        timeout);
    if (ok) acks_.push_back({key, value});
    return ok;
  }

  // Node i refuses a write for want of a quorum (UNAVAILABLE naming it) and
  // still serves a serializable read. Probe puts that succeed before the
  // node noticed the gateway is gone count as acknowledged.
  void ExpectRefusesWrites(size_t i) {
    auto kv = cluster_.Kv(i);
    grpc::Status last;
    int probe = 0;
    const bool refused = WaitFor(
        [&] {
          const std::string key = std::string(kPrefix) + "probe/n" + std::to_string(i + 1) + "/" +
                                  std::to_string(probe++);
          etcdserverpb::PutResponse resp;
          last = Put(*kv, key, "minority probe", &resp, milliseconds(2000));
          if (last.ok()) acks_.push_back({key, "minority probe"});
          return last.error_code() == grpc::StatusCode::UNAVAILABLE &&
                 last.error_message().find("quorum") != std::string::npos;
        },
        seconds(30));
    EXPECT_TRUE(refused) << "n" << i + 1
                         << " did not refuse a write for want of a quorum; last answer: code "
                         << last.error_code() << " " << last.error_message();
    std::map<std::string, std::pair<std::string, int64_t>> kvs;
    const grpc::Status s = RangePrefix(*kv, kPrefix, /*serializable=*/true, &kvs);
    EXPECT_TRUE(s.ok()) << "n" << i + 1 << " refused a serializable read: " << s.error_message();
  }

  // Every acknowledged put is readable (linearizable read) through node i.
  void ExpectAllAcked(size_t i) {
    auto kv = cluster_.Kv(i);
    std::map<std::string, std::pair<std::string, int64_t>> kvs;
    grpc::Status s;
    ASSERT_TRUE(WaitFor(
        [&] {
          s = RangePrefix(*kv, kPrefix, /*serializable=*/false, &kvs);
          return s.ok();
        },
        seconds(20)))
        << "n" << i + 1 << ": linearizable read failed: " << s.error_message();
    size_t missing = 0;
    std::string examples;
    for (const Ack& a : acks_) {
      auto it = kvs.find(a.key);
      if (it == kvs.end() || it->second.first != a.value) {
        if (++missing <= 5) examples += "  " + a.key + "\n";
      }
    }
    EXPECT_EQ(missing, 0u) << "n" << i + 1 << " lacks " << missing << " of " << acks_.size()
                           << " acknowledged puts, e.g.:\n"
                           << examples;
  }

  // Every member's Admin.GetStoreChecksum, as a table; true if all equal.
  bool ChecksumsEqual(std::string* table) {
    table->clear();
    bool same = true;
    uint64_t first = 0;
    for (size_t i = 0; i < kNodes; ++i) {
      auto admin = totemkv::admin::v1::Admin::NewStub(
          grpc::CreateChannel(cluster_.Endpoint(i), grpc::InsecureChannelCredentials()));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + seconds(5));
      totemkv::admin::v1::GetStoreChecksumResponse resp;
      const grpc::Status s = admin->GetStoreChecksum(&ctx, {}, &resp);
      if (i == 0) first = resp.checksum();
      same = same && s.ok() && resp.checksum() == first;
      *table += "  n" + std::to_string(i + 1) + ": " +
                (s.ok() ? "checksum=" + std::to_string(resp.checksum()) +
                              " revision=" + std::to_string(resp.revision())
                        : "error: " + s.error_message()) +
                "\n";
    }
    return same;
  }

  Cluster cluster_{kNodes};
  std::vector<Ack> acks_;
};

TEST_F(MultiRingServerTest, TwoRingsAndAGateway_GatewayLossIsMinority_Converges) {
  // Writes through every member, both rings and the gateway.
  for (size_t i = 0; i < kNodes; ++i) {
    grpc::Status last;
    for (int k = 0; k < 3; ++k) {
      const std::string key =
          std::string(kPrefix) + "a/n" + std::to_string(i + 1) + "/" + std::to_string(k);
      ASSERT_TRUE(PutEventually(i, key, "v" + std::to_string(k), seconds(20), &last))
          << "put through n" << i + 1 << ": " << last.error_message();
    }
  }
  // A write through one ring is seen by a linearizable read on the other.
  for (size_t i = 0; i < kNodes; ++i) ExpectAllAcked(i);

  // Operators see the global configuration and the multi-ring layer.
  for (size_t i : {size_t{0}, size_t{2}, kGateway}) {
    auto admin = totemkv::admin::v1::Admin::NewStub(
        grpc::CreateChannel(cluster_.Endpoint(i), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + seconds(5));
    totemkv::admin::v1::GetRingResponse ring;
    ASSERT_TRUE(admin->GetRing(&ctx, {}, &ring).ok());
    EXPECT_EQ(std::vector<uint32_t>(ring.members().begin(), ring.members().end()),
              (std::vector<uint32_t>{1, 2, 3, 4, 5}))
        << "n" << i + 1;
    EXPECT_TRUE(ring.primary()) << "n" << i + 1;
    const std::vector<uint32_t> local(ring.local_rings().begin(), ring.local_rings().end());
    const std::vector<uint32_t> want_local =
        i == kGateway ? std::vector<uint32_t>{1, 2} : std::vector<uint32_t>{i < 2 ? 1u : 2u};
    EXPECT_EQ(local, want_local) << "n" << i + 1;
    EXPECT_EQ(std::vector<uint32_t>(ring.reachable_rings().begin(), ring.reachable_rings().end()),
              (std::vector<uint32_t>{1, 2}))
        << "n" << i + 1;
    grpc::ClientContext ctx2;
    ctx2.set_deadline(std::chrono::system_clock::now() + seconds(5));
    totemkv::admin::v1::GetCountersResponse counters;
    ASSERT_TRUE(admin->GetCounters(&ctx2, {}, &counters).ok());
    EXPECT_GT(
        counters.totem().count("mring_delivered") ? counters.totem().at("mring_delivered") : 0, 0u)
        << "n" << i + 1;
  }

  // Without the gateway each ring is 2 of 5 members: no quorum anywhere.
  cluster_.Kill(kGateway);
  for (size_t i = 0; i < kNodes; ++i) {
    if (i != kGateway) ExpectRefusesWrites(i);
  }

  // The gateway comes back: one global configuration again, writes resume
  // through every member.
  cluster_.Start(kGateway);
  for (size_t i = 0; i < kNodes; ++i) {
    grpc::Status last;
    const std::string key = std::string(kPrefix) + "b/n" + std::to_string(i + 1);
    EXPECT_TRUE(PutEventually(i, key, "after", seconds(60), &last))
        << "put through n" << i + 1 << " after the gateway restarted: " << last.error_message();
  }
  for (size_t i = 0; i < kNodes; ++i) ExpectAllAcked(i);

  std::string table;
  const bool equal = WaitFor([&] { return ChecksumsEqual(&table); }, seconds(20));
  EXPECT_TRUE(equal) << "the stores differ:\n" << table;
  std::printf("%zu acknowledged puts; store checksums:\n%s", acks_.size(), table.c_str());
}

}  // namespace
}  // namespace totemkv::testing
