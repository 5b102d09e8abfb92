// Unit tests of the deterministic simulator itself: the random source is
// pinned and bounded, a seed replays to the identical digest and trace,
// different seeds differ, and faults injected between the cores and the
// checker are caught (the checker cannot pass silently).
#include "totem/sim/simulator.h"

#include <gtest/gtest.h>

#include <set>
#include <sstream>
#include <string>

#include "totem/sim/random.h"

namespace totem::sim {
namespace {

SimOptions Lossy(uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.nodes = 4;
  o.messages = 60;
  o.loss = 0.05;
  o.dup = 0.05;
  o.reorder = 0.1;
  o.corrupt = 0.02;
  return o;
}

TEST(RandomTest, Next_IsPinnedForSeed) {
  // Replays must not depend on the platform: these values are part of the
  // contract of a seed. Changing the generator invalidates every pinned seed.
  Random pinned(1);
  EXPECT_EQ(pinned.Next(), 0xB3F2AF6D0FC710C5ull);
  EXPECT_EQ(pinned.Next(), 0x853B559647364CEAull);
  EXPECT_EQ(pinned.Next(), 0x92F89756082A4514ull);
  EXPECT_EQ(pinned.Below(1000), 383u);
  Random a(1);
  Random b(1);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.Next(), b.Next());
  Random c(12345);
  EXPECT_EQ(c.Next(), Random(12345).Next());
  EXPECT_NE(Random(1).Next(), Random(2).Next());
}

TEST(RandomTest, Below_StaysInRangeAndCoversIt) {
  Random r(42);
  std::set<uint64_t> seen;
  for (int i = 0; i < 10000; ++i) {
    uint64_t v = r.Below(7);
    ASSERT_LT(v, 7u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 7u);
  EXPECT_EQ(r.Below(1), 0u);
  for (int i = 0; i < 1000; ++i) {
    uint64_t v = r.Range(10, 12);
    ASSERT_GE(v, 10u);
    ASSERT_LE(v, 12u);
  }
}

TEST(RandomTest, Chance_ExtremesAndRate) {
  Random r(3);
  int hits = 0;
  for (int i = 0; i < 100000; ++i) hits += r.Chance(0.25) ? 1 : 0;
  EXPECT_GT(hits, 24000);
  EXPECT_LT(hits, 26000);
  EXPECT_FALSE(r.Chance(0));
  EXPECT_TRUE(r.Chance(1));
  for (int i = 0; i < 1000; ++i) {
    double u = r.Unit();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

TEST(SimulatorTest, RunSimulation_CleanRunPasses) {
  SimOptions o;
  o.nodes = 3;
  o.messages = 50;
  RunResult r = RunSimulation(o);
  EXPECT_TRUE(r.ok) << r.first_violation;
  EXPECT_EQ(r.submitted, 50u);
  EXPECT_EQ(r.deliveries, 150u);
}

TEST(SimulatorTest, RunSimulation_LossyRunPasses) {
  RunResult r = RunSimulation(Lossy(11));
  EXPECT_TRUE(r.ok) << r.first_violation;
  EXPECT_GT(r.dropped, 0u);
  // Loss may change the membership, after which partitions of the ring need
  // not deliver each other's messages; everyone delivers at least its own.
  EXPECT_GE(r.deliveries, 60u);
}

SimOptions Faulty(uint64_t seed) {
  SimOptions o;
  o.seed = seed;
  o.nodes = 5;
  o.messages = 60;
  o.faults = kFaultAll;
  o.fault_count = 4;
  return o;
}

TEST(SimulatorTest, RunSimulation_FaultRunsPassAndTerminate) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    RunResult r = RunSimulation(Faulty(seed));
    EXPECT_TRUE(r.ok) << "seed " << seed << ": " << r.first_violation;
    EXPECT_EQ(r.faults, 4u) << "seed " << seed;
    EXPECT_NE(r.converged_us, 0u) << "seed " << seed;
    EXPECT_LE(r.converged_us, r.stable_us + r.bound_us) << "seed " << seed;
  }
}

TEST(SimulatorTest, RunSimulation_FaultRunSameSeedSameDigest) {
  for (uint64_t seed : {3u, 17u}) {
    SimOptions o = Faulty(seed);
    o.loss = 0.02;
    o.reorder = 0.05;
    RunResult a = RunSimulation(o);
    RunResult b = RunSimulation(o);
    EXPECT_EQ(a.digest, b.digest);
    EXPECT_EQ(a.events, b.events);
    EXPECT_EQ(a.crashes, b.crashes);
    EXPECT_EQ(a.configuration_events, b.configuration_events);
    o.seed += 1000;
    EXPECT_NE(RunSimulation(o).digest, a.digest);
  }
}

TEST(SimulatorTest, RunSimulation_FaultsDoNotPerturbTheWorkloadDraws) {
  // A run without faults draws exactly what it drew before faults existed:
  // turning faults off must not consume the fault stream.
  SimOptions a;
  a.seed = 4;
  SimOptions b = a;
  b.fault_count = 3;  // ignored without --faults
  EXPECT_EQ(RunSimulation(a).digest, RunSimulation(b).digest);
}

TEST(SimulatorTest, ParseFaults_RoundTrips) {
  uint32_t mask = 0;
  ASSERT_TRUE(ParseFaults("crash,restart", &mask));
  EXPECT_EQ(mask, kFaultCrash | kFaultRestart);
  EXPECT_EQ(FaultsString(mask), "crash,restart");
  ASSERT_TRUE(ParseFaults("all", &mask));
  EXPECT_EQ(mask, static_cast<uint32_t>(kFaultAll));
  EXPECT_EQ(FaultsString(mask), "all");
  EXPECT_FALSE(ParseFaults("crash,explode", &mask));
  ASSERT_TRUE(ParseFaults("", &mask));
  EXPECT_EQ(mask, 0u);
}

TEST(SimulatorTest, ConvergenceBoundUs_FollowsTheTimeouts) {
  SimOptions o;
  o.nodes = 7;
  const RingConfig rc;
  const uint64_t token = rc.token_timeout_us + 4ull * rc.token_timeout_per_node_us;
  EXPECT_EQ(ConvergenceBoundUs(o), 2 * (token + rc.consensus_timeout_us + rc.merge_timeout_us) +
                                       4ull * rc.join_timeout_us + 50'000);
  o.converge_ms = 7;
  EXPECT_EQ(ConvergenceBoundUs(o), 7000u);
}

TEST(SimulatorTest, RunSimulation_SameSeedSameDigest) {
  RunResult a = RunSimulation(Lossy(5));
  RunResult b = RunSimulation(Lossy(5));
  EXPECT_EQ(a.digest, b.digest);
  EXPECT_EQ(a.events, b.events);
  EXPECT_EQ(a.virtual_us, b.virtual_us);
  EXPECT_EQ(a.deliveries, b.deliveries);
}

TEST(SimulatorTest, RunSimulation_DifferentSeedDifferentDigest) {
  std::set<uint64_t> digests;
  for (uint64_t seed = 1; seed <= 5; ++seed) digests.insert(RunSimulation(Lossy(seed)).digest);
  EXPECT_EQ(digests.size(), 5u);
}

TEST(SimulatorTest, RunSimulation_TraceReplaysByteForByteAndDoesNotPerturb) {
  std::ostringstream t1, t2;
  SimOptions o = Lossy(9);
  const uint64_t untraced = RunSimulation(o).digest;
  o.trace = &t1;
  const uint64_t d1 = RunSimulation(o).digest;
  o.trace = &t2;
  const uint64_t d2 = RunSimulation(o).digest;
  EXPECT_EQ(d1, untraced);
  EXPECT_EQ(d1, d2);
  EXPECT_FALSE(t1.str().empty());
  EXPECT_EQ(t1.str(), t2.str());
}

TEST(SimulatorTest, RunSimulation_OptionsChangeTheRun) {
  SimOptions a = Lossy(2);
  SimOptions b = Lossy(2);
  b.packing = false;
  EXPECT_NE(RunSimulation(a).digest, RunSimulation(b).digest);
}

class InjectedFaultTest : public ::testing::TestWithParam<InjectedFault> {};

TEST_P(InjectedFaultTest, RunSimulation_CheckerCatchesIt) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    SimOptions o;
    o.seed = seed;
    o.nodes = 3;
    o.messages = 30;
    o.max_time_ms = 500;  // a dropped delivery is found at the limit
    o.inject = GetParam();
    RunResult r = RunSimulation(o);
    EXPECT_FALSE(r.ok) << "seed " << seed << " fault " << InjectedFaultName(GetParam());
    EXPECT_FALSE(r.first_violation.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(AllFaults, InjectedFaultTest,
                         ::testing::Values(InjectedFault::kDropDelivery,
                                           InjectedFault::kCorruptPayload,
                                           InjectedFault::kSwapDeliveries,
                                           InjectedFault::kFalseSafe),
                         [](const auto& param_info) {
                           std::string n = InjectedFaultName(param_info.param);
                           for (char& c : n) {
                             if (c == '-') c = '_';
                           }
                           return n;
                         });

TEST(SimulatorTest, ValidateOptions_RejectsTotalLoss) {
  SimOptions o;
  o.loss = 1.0;
  EXPECT_FALSE(ValidateOptions(o).empty());
  o.loss = 0.1;
  EXPECT_TRUE(ValidateOptions(o).empty());
}

}  // namespace
}  // namespace totem::sim
