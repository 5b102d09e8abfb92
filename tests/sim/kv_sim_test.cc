// Tests of the store simulation (kvstore/sim): the in-memory storage's
// state machine and snapshots, determinism of a seed, clean runs pass, the
// trap passes, and the checker reports each kind of fault injected at the
// harness level (it cannot pass silently).
#include "kvstore/sim/kv_sim.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "kvstore/sim/in_memory_storage.h"

namespace kvstore::sim {
namespace {

OpRecord Op(uint8_t id, const KvOp& kv) {
  OpRecord op;
  op.op_id[0] = id;
  op.op_id[15] = 1;
  op.payload = EncodeKvOp(kv);
  return op;
}

TEST(KvStateMachineTest, Apply_GetSeesLastPutAndDuplicatesReturnFirstResult) {
  KvStateMachine sm;
  EXPECT_EQ(sm.Apply(Op(1, {true, "a", ""})), kNoValue);
  EXPECT_EQ(sm.Apply(Op(2, {false, "a", "x"})), kPutOk);
  EXPECT_EQ(sm.Apply(Op(3, {true, "a", ""})), "x");
  EXPECT_EQ(sm.Apply(Op(4, {false, "a", "y"})), kPutOk);
  // A retry of op 3 (same id) is not applied again: first result.
  EXPECT_EQ(sm.Apply(Op(3, {true, "a", ""})), "x");
  // A retried put does not overwrite a later value.
  EXPECT_EQ(sm.Apply(Op(2, {false, "a", "x"})), kPutOk);
  EXPECT_EQ(sm.data().at("a"), "y");
}

TEST(KvStateMachineTest, Serialize_RoundTripKeepsChecksum) {
  KvStateMachine sm;
  for (uint8_t i = 1; i < 40; ++i) {
    sm.Apply(Op(i, {i % 3 == 0, "k" + std::to_string(i % 4), "v" + std::to_string(i)}));
  }
  KvStateMachine copy;
  ASSERT_TRUE(copy.Deserialize(sm.Serialize()));
  EXPECT_EQ(copy.checksum(), sm.checksum());
  EXPECT_EQ(copy.data(), sm.data());
  EXPECT_FALSE(copy.Deserialize("garbage"));
}

TEST(InMemoryStorageTest, Snapshot_StreamsInSmallChunksAndTrimsLog) {
  InMemoryStorage a(4, 64);
  std::vector<OpRecord> ops;
  std::vector<uint64_t> hashes;
  uint64_t h = 0;
  for (uint8_t i = 1; i <= 10; ++i) {
    ops.push_back(Op(i, {false, "key" + std::to_string(i), std::string(20, 'x')}));
    h = repl::ChainHash(h, ops.back());
    hashes.push_back(h);
  }
  Meta m;
  m.green = 10;
  m.green_hash = h;
  ASSERT_TRUE(a.ApplyGreen(ops, hashes, m).ok());
  EXPECT_EQ(a.LogFirst(), 7u);  // retention 4: 7..10
  OpRecord got;
  uint64_t got_hash = 0;
  EXPECT_FALSE(a.ReadLog(6, &got, &got_hash));
  ASSERT_TRUE(a.ReadLog(10, &got, &got_hash));
  EXPECT_EQ(got_hash, h);

  auto reader = a.OpenSnapshot();
  ASSERT_TRUE(reader.ok());
  InMemoryStorage b(4, 64);
  auto writer = b.BeginSnapshotInstall();
  ASSERT_TRUE(writer.ok());
  int chunks = 0;
  std::string chunk;
  for (;;) {
    auto more = (*reader)->Next(1000, &chunk);
    ASSERT_TRUE(more.ok());
    if (!*more) break;
    EXPECT_LE(chunk.size(), 64u);
    ASSERT_TRUE((*writer)->Add(chunk).ok());
    ++chunks;
  }
  EXPECT_GT(chunks, 3);
  ASSERT_TRUE((*writer)->Commit(m).ok());
  EXPECT_EQ(b.state().checksum(), a.state().checksum());
  EXPECT_EQ(b.meta(), m);
  EXPECT_EQ(b.LogFirst(), 11u);
}

KvSimOptions Faulty(uint64_t seed) {
  KvSimOptions o;
  o.sim.seed = seed;
  o.sim.nodes = 5;
  o.sim.faults = totem::sim::kFaultAll;
  o.ops_per_client = 10;
  o.log_retention = 8;
  return o;
}

TEST(KvSimTest, Run_IsDeterministicPerSeed) {
  const KvSimResult a = RunKvSim(Faulty(7));
  const KvSimResult b = RunKvSim(Faulty(7));
  EXPECT_EQ(a.sim.digest, b.sim.digest);
  EXPECT_EQ(a.acked, b.acked);
  EXPECT_EQ(a.final_green, b.final_green);
  EXPECT_NE(RunKvSim(Faulty(8)).sim.digest, a.sim.digest);
}

TEST(KvSimTest, Run_CleanClusterAcksEverything) {
  KvSimOptions o;
  o.sim.seed = 3;
  o.sim.nodes = 3;
  const KvSimResult r = RunKvSim(o);
  EXPECT_TRUE(r.ok) << r.first_violation;
  EXPECT_EQ(r.acked, o.clients * o.ops_per_client);
  EXPECT_EQ(r.unknown, 0u);
  EXPECT_GE(r.final_green, r.acked);
}

TEST(KvSimTest, Trap_AckedPutSurvivesAMajorityWithoutItsNode) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    KvSimOptions o;
    o.sim.seed = seed;
    o.sim.nodes = 5;
    o.trap = true;
    o.ops_per_client = 5;
    const KvSimResult r = RunKvSim(o);
    EXPECT_TRUE(r.ok) << "seed " << seed << ": " << r.first_violation;
  }
}

// Each injected fault must be reported (on every seed tried).
class KvSimInjectTest : public ::testing::TestWithParam<KvInjectedFault> {};

TEST_P(KvSimInjectTest, Run_ReportsInjectedFault) {
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    KvSimOptions o = Faulty(seed);
    o.inject = GetParam();
    if (GetParam() == KvInjectedFault::kAckRejectedOp) {
      // Partitions of two nodes: plenty of red ops and timeouts.
      o.sim.nodes = 2;
      o.sim.faults = totem::sim::kFaultPartition | totem::sim::kFaultHeal |
                     totem::sim::kFaultCrash | totem::sim::kFaultRestart;
      o.sim.fault_count = 6;
    } else {
      o.sim.faults = 0;  // a clean network: the fault alone must be caught
      o.sim.nodes = 3;
    }
    const KvSimResult r = RunKvSim(o);
    EXPECT_FALSE(r.ok) << KvInjectedFaultName(GetParam()) << " went unnoticed with seed " << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(Faults, KvSimInjectTest,
                         ::testing::Values(KvInjectedFault::kAckRejectedOp,
                                           KvInjectedFault::kDropReplicaOp,
                                           KvInjectedFault::kWrongGetResult),
                         [](const auto& param_info) {
                           std::string n = KvInjectedFaultName(param_info.param);
                           for (char& c : n) c = c == '-' ? '_' : c;
                           return n;
                         });

}  // namespace
}  // namespace kvstore::sim
