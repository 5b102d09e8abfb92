// MultiRingNode's persisted Lamport clock (MultiRingNodeConfig::clock_file):
// a processor restarted with the same clock file stamps its messages above
// everything it delivered before, even when it is alone on its ring (so the
// network's clock restarts from nothing); a corrupt file is a precise
// start-up error; without a file the clock restarts (the test can fail).
#include "totem/multi_ring_node.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "test_util.h"

namespace totem {
namespace {

using std::chrono::milliseconds;

struct Run {
  std::mutex mu;
  std::vector<uint64_t> timestamps;
  size_t configurations = 0;
};

MultiRingNodeConfig OneProcessor(uint16_t port, const std::string& clock_file) {
  MultiRingNodeConfig config;
  MultiRingNodeConfig::LocalRing lr;
  lr.ring = 1;
  lr.node.ring.node_id = 1;
  lr.node.ring.members = {1};
  lr.node.transport.peers.push_back(Peer{1, "127.0.0.1", port});
  lr.node.transport.key = "multi-ring-node-test-key-0123456789";
  config.local.push_back(lr);
  config.rings = {1};
  config.clock_file = clock_file;
  config.clock_reserve = 64;
  return config;
}

// Starts a processor, submits `n` messages, waits for their delivery and
// returns their timestamps.
std::vector<uint64_t> SubmitAndCollect(const MultiRingNodeConfig& config, int n,
                                       uint32_t incarnation) {
  auto run = std::make_shared<Run>();
  MultiRingCallbacks cb;
  cb.on_deliver = [run](const core::MultiDelivery& d) {
    std::lock_guard<std::mutex> lock(run->mu);
    run->timestamps.push_back(d.key.timestamp);
  };
  MultiRingNodeConfig c = config;
  c.incarnation = incarnation;
  auto node = MultiRingNode::Start(c, std::move(cb));
  EXPECT_TRUE(node.ok()) << node.status().ToString();
  if (!node.ok()) return {};
  for (int i = 0; i < n; ++i) {
    const std::vector<uint8_t> payload(16, static_cast<uint8_t>(i));
    EXPECT_TRUE((*node)->Submit(payload, Guarantee::kAgreed).ok());
  }
  EXPECT_TRUE(testing::WaitFor(
      [&] {
        std::lock_guard<std::mutex> lock(run->mu);
        return run->timestamps.size() >= static_cast<size_t>(n);
      },
      milliseconds(10000)));
  (*node)->Stop();
  std::lock_guard<std::mutex> lock(run->mu);
  return run->timestamps;
}

TEST(MultiRingNodeClock, RestartStampsAboveEverythingDeliveredBefore) {
  testing::TempDir dir;
  const std::string file = dir.path() + "/mring-clock";
  const MultiRingNodeConfig config = OneProcessor(testing::FreeUdpPorts(1).at(0), file);
  // 100 messages: the clock passes the 64-wide reserve, so the mark is
  // raised while running, not only at start.
  const std::vector<uint64_t> first = SubmitAndCollect(config, 100, 1);
  ASSERT_EQ(first.size(), 100u);
  const std::vector<uint64_t> second = SubmitAndCollect(config, 3, 2);
  ASSERT_EQ(second.size(), 3u);
  EXPECT_GT(second.front(), first.back());
  std::ifstream in(file);
  uint64_t mark = 0;
  in >> mark;
  EXPECT_GE(mark, second.back());
}

TEST(MultiRingNodeClock, WithoutAFileTheClockRestarts) {
  const MultiRingNodeConfig config = OneProcessor(testing::FreeUdpPorts(1).at(0), "");
  const std::vector<uint64_t> first = SubmitAndCollect(config, 10, 1);
  const std::vector<uint64_t> second = SubmitAndCollect(config, 1, 2);
  ASSERT_EQ(first.size(), 10u);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_LE(second.front(), first.back());
}

TEST(MultiRingNodeClock, CorruptFileIsAPreciseError) {
  testing::TempDir dir;
  const std::string file = dir.path() + "/mring-clock";
  std::ofstream(file) << "12x4\n";
  auto node = MultiRingNode::Start(OneProcessor(testing::FreeUdpPorts(1).at(0), file), {});
  ASSERT_FALSE(node.ok());
  EXPECT_NE(node.status().message().find("not a decimal number"), std::string::npos)
      << node.status().ToString();
  MultiRingNodeConfig bad = OneProcessor(testing::FreeUdpPorts(1).at(0), file);
  bad.clock_reserve = 1;
  EXPECT_FALSE(MultiRingNode::Start(bad, {}).ok());
}

}  // namespace
}  // namespace totem
