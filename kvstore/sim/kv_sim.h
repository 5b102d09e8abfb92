// The store's deterministic simulation (issue 5): the replication engine
// (kvstore/replication.h) on every node of the simulated Totem ring
// (totem/sim/simulator.h), each with an InMemoryStorage as its disk, under
// the simulator's seeded faults, driven by sequential clients doing puts
// and gets on a few keys; and a checker of the store's guarantees:
//  a) committed lineage: once any replica's commit_index covers index i,
//     the op at i is fixed; no replica serving in an installed primary ever
//     holds another lineage (checked through the engine's hash chain);
//  b) no acknowledged op is lost: an ack for index i names the op fixed at
//     i, and it is in the final replicas' order;
//  c) linearizability, through a stronger invariant: the final order is a
//     legal sequential history (replayed on a fresh state machine, every
//     acknowledged result equals the replayed one), and it respects real
//     time (a acknowledged before b was first invoked => a is ordered
//     before b's first occurrence);
//  d) a client is never told success for an op that is not in the order
//     at the acknowledged index, and two acks of one op id agree;
//  e) replicas of one installed primary at the same green index have the
//     same green hash and state checksum;
//  f) liveness: after the final heal, if a majority of the configured set
//     is up with its data, every live node serves in one primary of all of
//     them, with identical state, within a bound.
// The trap (ARCHITECTURE.md section 4) is a scripted scenario: a put acked
// at node A, then at once a partition {A} {B,C} {D,E}, then {B,C,D} without
// A must form a primary that holds the put.
#ifndef KVSTORE_SIM_KV_SIM_H_
#define KVSTORE_SIM_KV_SIM_H_

#include <cstdint>
#include <ostream>
#include <string>

#include "totem/sim/simulator.h"

namespace kvstore::sim {

// Faults injected at the harness level to prove the checker can fail.
enum class KvInjectedFault : uint8_t {
  kNone = 0,
  kAckRejectedOp,   // the first op with an unknown outcome (rejected or timed out) is
                    // reported to its client as ok
  kDropReplicaOp,   // one replica's storage silently skips one op
  kWrongGetResult,  // the first acked get returns a wrong value
};
const char* KvInjectedFaultName(KvInjectedFault f);
bool ParseKvInjectedFault(const std::string& name, KvInjectedFault* out);

struct KvSimOptions {
  totem::sim::SimOptions sim;  // seed, nodes, network, faults (app is set by RunKvSim)
  uint32_t clients = 4;
  uint32_t ops_per_client = 20;
  uint32_t keys = 3;
  uint64_t client_timeout_ms = 500;
  uint64_t think_max_ms = 20;  // pause between a client's ops, uniform in [0, this]
  uint32_t retry_same_id_percent = 20;
  size_t log_retention = 32;  // ops in each replica's op log
  size_t snapshot_chunk_bytes = 256;
  uint32_t transfer_window = 4;
  uint64_t liveness_ms = 3000;  // (f): bound after the final heal
  bool trap = false;            // the scripted trap scenario (needs 5 nodes)
  KvInjectedFault inject = KvInjectedFault::kNone;
  std::ostream* trace = nullptr;
};

struct KvSimResult {
  totem::sim::RunResult sim;
  bool ok = true;
  std::string first_violation;
  uint64_t ops_invoked = 0;
  uint64_t acked = 0;
  uint64_t unknown = 0;
  uint64_t final_green = 0;
  uint64_t primaries = 0;  // installs, over all nodes
  uint64_t snapshots = 0;  // snapshots installed, over all nodes
  uint64_t yellow_adopted = 0;
  bool liveness_required = false;
  bool amnesia = false;  // a primary formed from wiped replicas only (data loss outside the model)
};

// Validates the options; empty if fine.
std::string ValidateKvSimOptions(const KvSimOptions& options);

// Runs one seed. Deterministic.
KvSimResult RunKvSim(const KvSimOptions& options);

}  // namespace kvstore::sim

#endif  // KVSTORE_SIM_KV_SIM_H_
