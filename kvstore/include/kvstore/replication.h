// The replication engine of totemkv (ARCHITECTURE.md §4, after Amir &
// Tutu, "From Total Order to Database Replication", ICDCS 2002): it turns
// Totem's extended virtual synchrony (every partition keeps running) into
// one global persistent order of ops that only a primary component extends.
//
// It is a PURE state machine: configuration events and delivered messages
// go in (Engine::Step), effects come out (messages to multicast, client ops
// to acknowledge or reject); durable state is read and written through the
// synchronous Storage interface. No sockets, clocks, threads or randomness,
// so the simulator drives it on top of simulated Totem with an in-memory
// Storage, and totemkvd drives it on top of the real ring with RocksDB.
//
// The model:
//  - The GLOBAL ORDER is the sequence of ops applied as green, numbered
//    1, 2, 3, ... (the index). Every replica's applied state is a prefix of
//    one lineage of that order; a running 64-bit hash chain over it
//    (ChainHash) lets two replicas tell "prefix of mine" from "diverged".
//  - The CONFIGURED MEMBER SET is replicated state: initially the bootstrap
//    list, changed only by ordered membership ops (OpKind::kMemberAdd /
//    kMemberRemove) when they are applied.
//  - A regular configuration R becomes PRIMARY when (1) its members hold a
//    majority of the configured set (of the most advanced member), counting
//    only members that ever belonged to a primary (a wiped replica cannot
//    outvote the data) — or R holds every configured member (then no
//    other history can exist: a brand-new cluster starts this way, and so
//    does a cluster whose majority lost its disks, once all are back),
//    (2) the state exchange
//    completed: every member multicast a State message, the most advanced
//    member (highest last-primary number, then longest known order) is the
//    donor, its yellow ops become green, and every laggard caught up from
//    the donor's retained op log or from a snapshot of its storage streamed
//    in chunks (the next chunk goes out when the donor delivers its
//    previous one: a window of transfer_window messages, so the transfer
//    never floods the ring), then announced Ready. The primary is installed
//    at the point in the total order where the last Ready is delivered.
//  - GREEN ops: client ops delivered in an installed primary's regular
//    configuration (also those delivered in R before the install point:
//    buffered, applied at install). Applied in delivery order.
//  - YELLOW ops: client ops delivered in the transitional configuration
//    that ends an installed primary. Stored durably, not applied; the next
//    primary's donor (the member knowing the longest order of the last
//    primary) turns its yellow ops green, every other yellow op is dropped.
//  - RED ops: client ops delivered anywhere else. Never applied; the
//    origin's client is told the outcome is unknown (it may retry with the
//    same op id; the store applies an id at most once).
//  - ACKNOWLEDGEMENT: a client op is acknowledged only once a MAJORITY of
//    the configured set has durably applied it (members multicast Applied
//    reports), so an acknowledged op is in the storage of at least one
//    member of every later primary, and survives any crash pattern that
//    leaves disks intact. Linearizable reads use a barrier op acknowledged
//    the same way.
//  - A replica whose order diverged (it applied ops a later primary
//    dropped, which were therefore never acknowledged) is detected by the
//    hash chain and rebuilt from a snapshot; so is a wiped replica.
// A configuration change interrupts an exchange or a transfer cleanly:
// partial snapshots are discarded, ops already caught up stay (they are a
// prefix of the donor's lineage), and the next regular configuration
// starts a new exchange.
#ifndef KVSTORE_REPLICATION_H_
#define KVSTORE_REPLICATION_H_

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "totem/status.h"
#include "totem/types.h"

namespace kvstore::repl {

using totem::NodeId;
using totem::RingId;
using totem::Status;
using totem::StatusOr;

using OpId = std::array<uint8_t, 16>;

enum class OpKind : uint8_t {
  kData = 0,          // opaque to the engine: the state machine's op
  kMemberAdd = 1,     // adds `member` to the configured set
  kMemberRemove = 2,  // removes `member` from the configured set
};

// One client op as ordered: an id chosen by the client or its server (all
// zero = none), the node that submitted it, and the payload the Storage's
// state machine interprets.
struct OpRecord {
  OpId op_id{};
  NodeId origin = totem::kNoNode;
  OpKind kind = OpKind::kData;
  NodeId member = totem::kNoNode;  // kMemberAdd / kMemberRemove
  std::string payload;
  bool operator==(const OpRecord&) const = default;
};

// The running hash of the global order: h(i) = ChainHash(h(i-1), op i),
// h(0) = 0.
uint64_t ChainHash(uint64_t previous, const OpRecord& op);

// What the engine keeps durably through Storage, besides the state
// machine itself.
struct Meta {
  uint64_t green = 0;              // ops of the global order applied
  uint64_t green_hash = 0;         // h(green)
  uint64_t prim_number = 0;        // last primary this replica's state comes from (0: none)
  RingId prim_ring;                // that primary's ring
  std::vector<NodeId> configured;  // the configured member set (sorted); empty: use bootstrap
  bool operator==(const Meta&) const = default;
};

// Durable storage: the state machine plus the engine's bookkeeping. Every
// call is synchronous and durable when it returns OK (the RocksDB
// implementation writes one WriteBatch, synced). A non-OK status is fatal
// for the replica (the engine stops and reports it).
class Storage {
 public:
  virtual ~Storage() = default;

  // The state at start (after a crash: the last durable write).
  virtual Meta LoadMeta() = 0;
  virtual std::vector<OpRecord> LoadYellow() = 0;

  // Applies ops green, in order, as indexes meta_after.green - ops.size() + 1
  // .. meta_after.green (hashes[i] = h(index of ops[i])), retains them in
  // the op log, and stores meta_after, atomically. Membership ops are in
  // `ops` too (the state machine may record them; meta_after.configured
  // already reflects them).
  virtual Status ApplyGreen(const std::vector<OpRecord>& ops, const std::vector<uint64_t>& hashes,
                            const Meta& meta_after) = 0;
  // Replaces the stored yellow ops (empty: clears) and stores `meta`.
  virtual Status SaveYellow(const std::vector<OpRecord>& yellow, const Meta& meta) = 0;
  virtual Status SaveMeta(const Meta& meta) = 0;

  // The retained op log: indexes [LogFirst(), meta.green]; LogFirst() =
  // green + 1 when nothing is retained. Trimming is the storage's choice.
  virtual uint64_t LogFirst() = 0;
  virtual bool ReadLog(uint64_t index, OpRecord* op, uint64_t* hash) = 0;

  // A point-in-time image of the state machine (not the op log), cut into
  // chunks of about max_bytes. Chunks are opaque to the engine.
  class SnapshotReader {
   public:
    virtual ~SnapshotReader() = default;
    // The next chunk; false when there is none left. Status: read error.
    virtual StatusOr<bool> Next(size_t max_bytes, std::string* chunk) = 0;
  };
  virtual StatusOr<std::unique_ptr<SnapshotReader>> OpenSnapshot() = 0;

  // Replaces the whole state machine by a snapshot: Add() every chunk in
  // order, then Commit(meta), which atomically installs it together with
  // `meta` and an empty op log and no yellow ops. Destroying a writer
  // without Commit discards everything it received.
  class SnapshotWriter {
   public:
    virtual ~SnapshotWriter() = default;
    virtual Status Add(std::string_view chunk) = 0;
    virtual Status Commit(const Meta& meta) = 0;
  };
  virtual StatusOr<std::unique_ptr<SnapshotWriter>> BeginSnapshotInstall() = 0;
};

struct EngineOptions {
  NodeId self = totem::kNoNode;
  // The configured member set while the storage has none (bootstrap).
  std::vector<NodeId> bootstrap_members;
  size_t transfer_chunk_bytes = 64 * 1024;  // per transfer message
  uint32_t transfer_window = 4;             // transfer messages in flight
  size_t max_buffered_ops = 100000;         // ops held before an install; beyond: red
};

// The outside world's input: what Totem delivered, in order.
struct Input {
  enum class Kind : uint8_t { kConfiguration, kDelivery };
  Kind kind = Kind::kDelivery;
  totem::ConfigurationEvent configuration;  // kConfiguration
  // kDelivery:
  NodeId sender = totem::kNoNode;
  totem::ConfigurationKind config_kind = totem::ConfigurationKind::kRegular;
  RingId ring;  // Delivery::config_id
  std::string payload;
};

enum class Role : uint8_t {
  kStarting,    // no regular configuration yet
  kExchanging,  // in a regular configuration with quorum, exchange under way
  kPrimary,     // installed primary: serving
  kNonPrimary,  // no quorum (or the exchange could not complete)
  kTransition,  // transitional configuration delivered; the next one is coming
  kFailed,      // storage failed: the replica must stop
};
const char* RoleName(Role r);

struct Effects {
  // Messages to multicast, in order, each with its delivery guarantee:
  // kSafe for everything that decides state; kAgreed for Applied reports,
  // which only state a fact about their sender and need no more than
  // the total order (it saves a token rotation on every acknowledgement).
  struct Message {
    std::string bytes;
    totem::Guarantee guarantee = totem::Guarantee::kSafe;
  };
  std::vector<Message> send;
  // This node's client ops now durable at a majority: answer with the
  // result the state machine produced when applying them.
  struct Ack {
    OpId op_id{};
    uint64_t index = 0;
  };
  std::vector<Ack> acks;
  // This node's client ops whose outcome the engine cannot report (red,
  // yellow not resolved, or the replica was rebuilt): tell the client the
  // outcome is unknown; a retry with the same id is safe.
  struct Reject {
    OpId op_id{};
    std::string message;
  };
  std::vector<Reject> rejects;
  bool role_changed = false;
};

// Counters for operators and tests.
struct EngineCounters {
  uint64_t green_applied = 0;
  uint64_t yellow_received = 0;
  uint64_t yellow_adopted = 0;  // yellow ops turned green as donor
  uint64_t red_ops = 0;
  uint64_t buffered_applied = 0;
  uint64_t exchanges_started = 0;
  uint64_t exchanges_aborted = 0;
  uint64_t primaries_installed = 0;
  uint64_t transfer_ops_sent = 0;
  uint64_t transfer_ops_applied = 0;
  uint64_t snapshots_sent = 0;
  uint64_t snapshot_chunks_sent = 0;
  uint64_t snapshots_installed = 0;
  uint64_t malformed_messages = 0;
  uint64_t acks = 0;
  uint64_t rejects = 0;
};

class Engine {
 public:
  // `storage` must outlive the engine. Reads the durable state.
  Engine(const EngineOptions& options, Storage* storage);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // The bytes to submit (Totem kSafe) for a client op. `op.origin` must be
  // this node for acks/rejects to reach it.
  static std::string EncodeOp(const OpRecord& op);

  // Feeds inputs in delivery order; appends effects. Applies green ops in
  // batches (one Storage::ApplyGreen per run of consecutive green ops in
  // `inputs`). Returns the storage error that made the engine kFailed.
  Status Step(std::span<const Input> inputs, Effects* out);
  Status Step(const Input& input, Effects* out) {
    return Step(std::span<const Input>(&input, 1), out);
  }

  Role role() const;
  // Why this replica does not serve writes (empty when primary), e.g.
  // "no quorum: 2 of 5 members reachable".
  const std::string& reason() const;
  const Meta& meta() const;
  // The effective configured member set (meta().configured, or the
  // bootstrap list while that is empty).
  const std::vector<NodeId>& configured() const;
  // Highest index known durable at a majority of the configured set in the
  // current primary (0 outside one).
  uint64_t commit_index() const;
  const EngineCounters& counters() const;
  // The current (or last) regular configuration.
  const totem::ConfigurationEvent& configuration() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kvstore::repl

#endif  // KVSTORE_REPLICATION_H_
