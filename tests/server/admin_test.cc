// End-to-end tests of totemkvd's Admin service (proto/admin/admin.proto)
// and its configuration sources, on three real totemkvd processes on
// loopback (tests/server/cluster_harness.h):
//  - GetRing / GetCounters / ListConfigurations over gRPC on a live ring:
//    members 1,2,3, operational, primary, a measured token rotation time,
//    every totem::Counters field by name, nonzero token_rotations and
//    ops_applied; after kill -9 of node 3, node 1's history shows a
//    transitional configuration and then a new regular one without 3.
//  - The tkv admin commands (ring, configurations --limit, counters) as a
//    child process, simple and JSON output.
//  - A ring over the multicast transport (--totem-transport=multicast).
//  - Nodes started with a config file and TOTEMKVD_* settings serve, with
//    the file's --totem-* values in effect; a bad config file stops
//    totemkvd at start with the line named.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "admin/admin.grpc.pb.h"
#include "cluster_harness.h"
#include "totem/counters.h"

namespace totemkv {
namespace {

namespace pb = totemkv::admin::v1;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::Cluster;
using testing::Put;
using totem::testing::Child;
using totem::testing::ReadFile;
using totem::testing::WaitFor;

constexpr const char* kTkvBin = TKV_BIN;

class AdminTest : public testing::ThreeNodeClusterTest {
 protected:
  std::unique_ptr<pb::Admin::Stub> Admin(size_t i) const {
    return pb::Admin::NewStub(
        grpc::CreateChannel(cluster_.Endpoint(i), grpc::InsecureChannelCredentials()));
  }
  static std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + seconds(5));
    return ctx;
  }
  pb::GetRingResponse Ring(size_t i) const {
    pb::GetRingResponse resp;
    grpc::Status s = Admin(i)->GetRing(Ctx().get(), pb::GetRingRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  pb::ListConfigurationsResponse Configurations(size_t i, uint32_t limit = 0) const {
    pb::ListConfigurationsRequest req;
    req.set_limit(limit);
    pb::ListConfigurationsResponse resp;
    grpc::Status s = Admin(i)->ListConfigurations(Ctx().get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  pb::GetCountersResponse Counters(size_t i) const {
    pb::GetCountersResponse resp;
    grpc::Status s = Admin(i)->GetCounters(Ctx().get(), pb::GetCountersRequest(), &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  // Runs tkv against node `i`; returns {exit code, stdout+stderr}.
  std::pair<int, std::string> Tkv(size_t i, const std::vector<std::string>& args) {
    const std::string out = cluster_.dir() + "/tkv" + std::to_string(tkv_runs_++) + ".out";
    std::vector<std::string> argv{kTkvBin, "--endpoints=" + cluster_.Endpoint(i)};
    argv.insert(argv.end(), args.begin(), args.end());
    Child child(argv, out);
    const std::optional<int> rc = child.Wait(seconds(15));
    return {rc.value_or(-1), ReadFile(out)};
  }

  std::string WriteFile(const std::string& name, const std::string& text) const {
    const std::string path = cluster_.dir() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }

  int tkv_runs_ = 0;
};

std::vector<uint32_t> Ids(const google::protobuf::RepeatedField<uint32_t>& ids) {
  return {ids.begin(), ids.end()};
}

TEST_F(AdminTest, GetRingCountersAndConfigurations_LiveRingThenKillNode3) {
  StartCluster();
  auto kv = cluster_.Kv(0);
  for (int i = 0; i < 5; ++i) {
    etcdserverpb::PutResponse resp;
    grpc::Status s = Put(*kv, "k" + std::to_string(i), "v", &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  // The ring: the same on every node, and the rotation time gets measured.
  for (size_t i = 0; i < 3; ++i) {
    pb::GetRingResponse ring;
    ASSERT_TRUE(WaitFor(
        [&] {
          ring = Ring(i);
          return ring.state() == pb::RING_STATE_OPERATIONAL && ring.token_rotation_us() > 0 &&
                 ring.primary();
        },
        seconds(10)))
        << ring.DebugString();
    EXPECT_EQ(ring.node_id(), i + 1);
    EXPECT_EQ(Ids(ring.members()), (std::vector<uint32_t>{1, 2, 3}));
    EXPECT_EQ(ring.representative(), 1u);
    EXPECT_EQ(ring.ring_id().representative(), 1u);
    EXPECT_GT(ring.ring_id().seq(), 0u);
    EXPECT_FALSE(ring.in_transition());
    EXPECT_LT(ring.token_rotation_us(), 5'000'000u);
  }

  // Counters: every totem::Counters field by name, and real activity.
  const pb::GetCountersResponse counters = Counters(0);
  EXPECT_EQ(counters.node_id(), 1u);
  const totem::Counters zero;
  EXPECT_EQ(static_cast<size_t>(counters.totem().size()), zero.Fields().size());
  for (const auto& [name, value] : zero.Fields()) {
    EXPECT_EQ(counters.totem().count(std::string(name)), 1u) << name;
  }
  EXPECT_GT(counters.totem().at("token_rotations"), 0u);
  EXPECT_GT(counters.totem().at("configurations_installed"), 0u);
  EXPECT_GE(counters.store().at("ops_applied"), 5u);
  EXPECT_GE(counters.store().at("ops_proposed"), 5u);
  EXPECT_GT(counters.uptime_ms(), 0u);
  // Node 2 applied node 1's writes too.
  EXPECT_GE(Counters(1).store().at("ops_applied"), 5u);

  // History: the newest event is the regular configuration 1,2,3.
  pb::ListConfigurationsResponse before = Configurations(0);
  ASSERT_GE(before.events_size(), 1);
  const pb::ConfigurationEvent& last = before.events(before.events_size() - 1);
  EXPECT_EQ(last.kind(), pb::CONFIGURATION_KIND_REGULAR);
  EXPECT_EQ(Ids(last.members()), (std::vector<uint32_t>{1, 2, 3}));
  EXPECT_GT(last.time_unix_us(), 1'600'000'000'000'000);
  EXPECT_EQ(before.dropped(), 0u);

  cluster_.Kill(2);
  ASSERT_TRUE(cluster_.WaitForRing("1,2", seconds(30))) << cluster_.Logs();

  const pb::ListConfigurationsResponse after = Configurations(0);
  ASSERT_GE(after.events_size(), before.events_size() + 2);
  // Find the last regular 1,2,3 and check what follows it.
  int i3 = -1;
  for (int i = 0; i < after.events_size(); ++i) {
    if (after.events(i).kind() == pb::CONFIGURATION_KIND_REGULAR &&
        Ids(after.events(i).members()) == std::vector<uint32_t>{1, 2, 3}) {
      i3 = i;
    }
  }
  ASSERT_GE(i3, 0);
  ASSERT_EQ(after.events_size(), i3 + 3) << after.DebugString();
  const pb::ConfigurationEvent& trans = after.events(i3 + 1);
  const pb::ConfigurationEvent& reg = after.events(i3 + 2);
  EXPECT_EQ(trans.kind(), pb::CONFIGURATION_KIND_TRANSITIONAL);
  EXPECT_EQ(Ids(trans.members()), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(Ids(trans.left()), std::vector<uint32_t>{3});
  EXPECT_EQ(reg.kind(), pb::CONFIGURATION_KIND_REGULAR);
  EXPECT_EQ(Ids(reg.members()), (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(Ids(reg.left()), std::vector<uint32_t>{3});
  // The transitional configuration carries the id of the regular one after it.
  EXPECT_EQ(trans.id().representative(), reg.id().representative());
  EXPECT_EQ(trans.id().seq(), reg.id().seq());
  EXPECT_GT(reg.id().seq(), after.events(i3).id().seq());

  // limit: the newest events, the rest counted as dropped.
  const pb::ListConfigurationsResponse two = Configurations(0, 2);
  ASSERT_EQ(two.events_size(), 2);
  EXPECT_EQ(two.events(0).kind(), pb::CONFIGURATION_KIND_TRANSITIONAL);
  EXPECT_EQ(two.dropped(), static_cast<uint64_t>(after.events_size() - 2));

  // Two of three configured members still make a majority: primary once
  // the state exchange of the new configuration is done.
  pb::GetRingResponse ring;
  ASSERT_TRUE(WaitFor(
      [&] {
        ring = Ring(0);
        return ring.state() == pb::RING_STATE_OPERATIONAL && ring.members_size() == 2 &&
               ring.primary();
      },
      seconds(10)))
      << ring.DebugString();
  EXPECT_EQ(ring.ring_id().seq(), reg.id().seq());
  EXPECT_GT(Counters(0).totem().at("token_losses") + Counters(0).totem().at("gathers"), 0u);
}

TEST_F(AdminTest, TkvRingConfigurationsCounters) {
  StartCluster();
  ASSERT_TRUE(WaitFor([&] { return Ring(1).token_rotation_us() > 0; }, seconds(10)));

  auto [rc, out] = Tkv(1, {"ring"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("node_id: 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("members: 1,2,3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("state: operational\n"), std::string::npos) << out;
  EXPECT_NE(out.find("primary: true\n"), std::string::npos) << out;

  std::tie(rc, out) = Tkv(1, {"ring", "-w", "json"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out.rfind("{\"node_id\":2,\"ring_id\":{\"representative\":1,\"seq\":", 0), 0u) << out;
  EXPECT_NE(out.find("\"members\":[1,2,3],\"state\":\"operational\",\"representative\":1,"
                     "\"in_transition\":false,\"primary\":true,\"token_rotation_us\":"),
            std::string::npos)
      << out;

  std::tie(rc, out) = Tkv(0, {"configurations", "--limit=1"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find(" regular 1:"), std::string::npos) << out;
  EXPECT_NE(out.find(" members=1,2,3 "), std::string::npos) << out;
  const bool has_dropped_line = out.find("older events not shown") != std::string::npos;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), has_dropped_line ? 2 : 1) << out;

  std::tie(rc, out) = Tkv(0, {"configurations", "-w", "json"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(out.rfind("{\"events\":[{\"kind\":\"regular\",\"ring_id\":{", 0), 0u) << out;
  EXPECT_NE(out.find("\"dropped\":0}"), std::string::npos) << out;

  std::tie(rc, out) = Tkv(2, {"counters"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("node_id: 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("totem.token_rotations: "), std::string::npos) << out;
  EXPECT_NE(out.find("store.ops_applied: "), std::string::npos) << out;

  std::tie(rc, out) = Tkv(2, {"counters", "-w", "json"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("\"totem\":{\"bytes_delivered\":"), std::string::npos) << out;
  EXPECT_NE(out.find("\"store\":{"), std::string::npos) << out;

  std::tie(rc, out) = Tkv(0, {"configurations", "--limit=-1"});
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("--limit must be in [0, 4294967295]"), std::string::npos) << out;
}

TEST_F(AdminTest, ConfigFileAndEnvironment_ClusterServes) {
  // Every node gets the same file with --totem-* settings; the harness's
  // flags (name, ports, key) override nothing in it.
  const std::string config = WriteFile("totemkvd.yaml",
                                       "# totem settings for the test\n"
                                       "sync: false\n"
                                       "totem-token-timeout-ms: 400   # generous\n"
                                       "totem-consensus-timeout-ms: '500'\n"
                                       "totem-window-size: \"128\"\n"
                                       "totem-max-messages: 32\n"
                                       "totem-packing: true\n");
  ::setenv("TOTEMKVD_TOTEM_MERGE_TIMEOUT_MS", "150", 1);  // inherited by the children
  StartCluster({"--config-file", config});
  ::unsetenv("TOTEMKVD_TOTEM_MERGE_TIMEOUT_MS");
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NE(ReadFile(cluster_.Log(i))
                  .find(" config_file=" + config +
                        " totem_transport=unicast totem_encryption=false token_timeout_ms=400 "
                        "join_timeout_ms=10 consensus_timeout_ms=500 merge_timeout_ms=150 "
                        "window_size=128 max_messages=32 packing=true"),
              std::string::npos)
        << "node " << i + 1;
  }
  auto kv = cluster_.Kv(2);
  etcdserverpb::PutResponse resp;
  grpc::Status s = Put(*kv, "from-config", "ok", &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_TRUE(Ring(0).primary());
}

TEST_F(AdminTest, MulticastTransport_ClusterServes) {
  // A group of our own (random within 239.255.0.0/16) on a free port, on
  // the loopback interface, so parallel tests do not hear each other.
  const std::vector<uint16_t> port = totem::testing::FreeUdpPorts(1);
  ASSERT_EQ(port.size(), 1u);
  const unsigned salt = static_cast<unsigned>(::getpid()) ^ port[0];
  const std::string group =
      "239.255." + std::to_string((salt >> 8) % 256) + "." + std::to_string(salt % 254 + 1);
  StartCluster({"--totem-transport=multicast", "--totem-mcast-addr", group, "--totem-mcast-port",
                std::to_string(port[0]), "--totem-mcast-interface", "127.0.0.1"});
  EXPECT_NE(ReadFile(cluster_.Log(0)).find(" totem_transport=multicast "), std::string::npos);
  auto kv = cluster_.Kv(1);
  etcdserverpb::PutResponse resp;
  grpc::Status s = Put(*kv, "over", "multicast", &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  std::map<std::string, std::pair<std::string, int64_t>> got;
  s = testing::RangePrefix(*cluster_.Kv(2), "over", false, &got);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(got["over"].first, "multicast");
}

TEST_F(AdminTest, BadConfigFile_ExitsWithTheLine) {
  ASSERT_TRUE(cluster_.Init());
  const std::string config = WriteFile("bad.yaml", "name: n1\ntotem-window: 3\n");
  const std::string log = cluster_.dir() + "/bad.log";
  Child child({testing::kServerBin, "--config-file", config}, log);
  const std::optional<int> rc = child.Wait(seconds(10));
  ASSERT_TRUE(rc.has_value()) << ReadFile(log);
  EXPECT_EQ(*rc, 2);
  EXPECT_NE(ReadFile(log).find("config file " + config + " line 2: unknown key 'totem-window'"),
            std::string::npos)
      << ReadFile(log);
}

}  // namespace
}  // namespace totemkv
