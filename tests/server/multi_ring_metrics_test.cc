// The multiple-ring families of /metrics (issue 7): three real totemkvd,
// ring 1 = n1 and the gateway n3, ring 2 = n2 and n3, each with
// --listen-metrics-urls. After a put through n1 the gateway's scrape shows
// the layer's counters as totemkv_mring_events_total{counter=...}
// (delivered and forwarded above zero), two local and two reachable rings,
// and at least one global configuration; n1 shows one local ring. Then n2
// is killed, puts go on (2 of 3 is a quorum), and n2 restarted catches up:
// it logs state_transfer_started / state_transfer_finished as the receiver
// (outcome=completed) and a member logs them as the donor.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cluster_harness.h"
#include "http_get.h"

namespace totemkv::testing {
namespace {

// Samples by series ("name{labels}"), and the families with a TYPE line.
struct Scrape {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  double Get(const std::string& series) const {
    auto it = samples.find(series);
    return it == samples.end() ? -1 : it->second;
  }
};

Scrape Parse(const std::string& text) {
  Scrape s;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream f(line.substr(7));
      std::string name, type;
      f >> name >> type;
      s.types[name] = type;
    } else if (!line.empty() && line[0] != '#') {
      const size_t sp = line.rfind(' ');
      if (sp != std::string::npos) s.samples[line.substr(0, sp)] = std::atof(line.c_str() + sp + 1);
    }
  }
  return s;
}

TEST(MultiRingMetricsTest, GatewayExposesLayerCounters_RestartedMemberLogsStateTransfer) {
  Cluster cluster(3);
  ASSERT_TRUE(cluster.Init());
  ASSERT_TRUE(cluster.SetRings({{1}, {2}, {1, 2}}));
  const std::vector<uint16_t> metrics = {FreeTcpPort(), FreeTcpPort(), FreeTcpPort()};
  for (size_t i = 0; i < 3; ++i) {
    cluster.Start(i, {"--listen-metrics-urls", "http://127.0.0.1:" + std::to_string(metrics[i])});
  }
  ASSERT_TRUE(cluster.WaitForRing("1,2,3", seconds(60))) << cluster.Logs();

  auto kv = cluster.Kv(0);
  grpc::Status last;
  ASSERT_TRUE(WaitFor(
      [&] {
        etcdserverpb::PutResponse resp;
        last = Put(*kv, "mring-metrics/k", "v", &resp, milliseconds(2000));
        return last.ok();
      },
      seconds(30)))
      << last.error_message() << "\n"
      << cluster.Logs();

  // The gateway forwarded the put from ring 1 to ring 2 and delivered it.
  Scrape gw;
  const bool seen = WaitFor(
      [&] {
        gw = Parse(HttpGetBody(metrics[2], "/metrics"));
        return gw.Get("totemkv_mring_events_total{counter=\"forwarded\"}") > 0 &&
               gw.Get("totemkv_mring_events_total{counter=\"delivered\"}") > 0;
      },
      seconds(10));
  ASSERT_TRUE(seen) << "gateway scrape without forwarded/delivered counters";
  EXPECT_EQ(gw.types["totemkv_mring_events_total"], "counter");
  EXPECT_EQ(gw.types["totemkv_global_configurations_total"], "counter");
  EXPECT_EQ(gw.types["totemkv_mring_reachable_rings"], "gauge");
  EXPECT_GE(gw.Get("totemkv_global_configurations_total"), 1);
  EXPECT_EQ(gw.Get("totemkv_mring_local_rings"), 2);
  EXPECT_EQ(gw.Get("totemkv_mring_reachable_rings"), 2);
  EXPECT_GE(gw.Get("totemkv_mring_queued"), 0);
  EXPECT_GE(gw.Get("totemkv_mring_events_total{counter=\"late_dropped\"}"), 0);
  EXPECT_GE(gw.Get("totemkv_mring_events_total{counter=\"unsynced_dropped\"}"), 0);
  EXPECT_GE(gw.Get("totemkv_mring_events_total{counter=\"stubs_forwarded\"}"), 0);
  // The "_current" counters are gauges of their own, not in the family.
  EXPECT_EQ(gw.Get("totemkv_mring_events_total{counter=\"queued_current\"}"), -1);

  const Scrape n1 = Parse(HttpGetBody(metrics[0], "/metrics"));
  EXPECT_EQ(n1.Get("totemkv_mring_local_rings"), 1);
  EXPECT_EQ(n1.Get("totemkv_mring_reachable_rings"), 2);
  EXPECT_GE(n1.Get("totemkv_mring_events_total{counter=\"delivered\"}"), 1);

  // A laggard catches up: state transfer events on both sides.
  cluster.Kill(1);
  for (int i = 0; i < 5; ++i) {
    const std::string key = "mring-metrics/while-down/" + std::to_string(i);
    ASSERT_TRUE(WaitFor(
        [&] {
          etcdserverpb::PutResponse resp;
          last = Put(*kv, key, "v", &resp, milliseconds(2000));
          return last.ok();
        },
        seconds(30)))
        << last.error_message() << "\n"
        << cluster.Logs();
  }
  cluster.Start(1, {"--listen-metrics-urls", "http://127.0.0.1:" + std::to_string(metrics[1])});
  auto finished = [&](size_t i, const std::string& role) {
    const std::string log = ReadFile(cluster.Log(i));
    const size_t pos = log.find("event=state_transfer_finished role=" + role);
    return pos != std::string::npos &&
           log.substr(pos, log.find('\n', pos) - pos).find("outcome=completed") !=
               std::string::npos &&
           log.rfind("event=state_transfer_started role=" + role, pos) != std::string::npos;
  };
  EXPECT_TRUE(WaitFor([&] { return finished(1, "receiver"); }, seconds(30)))
      << "no state transfer logged by the restarted member\n"
      << cluster.Logs();
  // The donor installs (and logs the end of its transfer) when it delivers
  // the last Ready, which can be a moment after the receiver did.
  EXPECT_TRUE(WaitFor([&] { return finished(0, "donor") || finished(2, "donor"); }, seconds(30)))
      << "no state transfer logged by a donor\n"
      << cluster.Logs();
}

}  // namespace
}  // namespace totemkv::testing
