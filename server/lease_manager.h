// Lease expiry for totemkvd: every node keeps a local deadline per lease
// and proposes LeaseExpire through the total order when it passes. The
// apply path never reads a clock; only the decision to propose does.
//
// Semantics (etcd's, with these choices):
//  - Deadline: a lease's deadline on a node = the local time at which that
//    node applied its latest grant or keep-alive + the granted TTL. After a
//    restart, every stored lease gets a full TTL from the moment the node
//    loaded it (etcd does the same after a leader change).
//  - Expiry rule: when the deadline passes, the node of rank k in the
//    current regular configuration (members sorted by node id, the lowest
//    id has rank 0) proposes LeaseExpire{id, generation} at deadline +
//    k * grace_period. The first one ordered revokes the lease (its keys
//    are deleted, watchers see the deletes); the rest, like any expiry
//    ordered after a keep-alive, carry an old generation and are ignored.
//    So a lease expires at deadline (+ ordering latency) while the lowest
//    node is alive, and at most k * grace_period later while the ring still
//    counts k dead lower-ranked nodes as members.
//  - A node proposes the expiry of one generation at most once per
//    retry_interval (a proposal that timed out, e.g. during a membership
//    change, is retried after it).
//  - TTL: granted TTLs below 1 s are raised to 1 s (the store does it);
//    above kMaxLeaseTtlSeconds (9e9, etcd's MaxLeaseTTL) a grant fails with
//    OUT_OF_RANGE "etcdserver: too large lease TTL". There is no larger
//    minimum TTL: with a 1 s lease a client should keep alive every ~300 ms.
//    Deadlines more than kMaxDeadlineSeconds (about 34 years) away are
//    treated as that far.
//  - Remaining TTL (LeaseTimeToLive) is by this node's clock: whole seconds
//    left until its deadline, truncated, never below 0.
//
// ExpirySchedule is the pure part (time passed in; no clock, thread or
// I/O), LeaseManager the runtime around it: one timer thread, one
// condition variable waiting until the next wake-up, apply and
// configuration observers on the Replicator.
#ifndef TOTEMKV_SERVER_LEASE_MANAGER_H_
#define TOTEMKV_SERVER_LEASE_MANAGER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "kvstore/types.h"
#include "replicator.h"
#include "totem/types.h"

namespace totemkv::server {

inline constexpr int64_t kMaxLeaseTtlSeconds = 9000000000LL;
inline constexpr int64_t kMaxDeadlineSeconds = int64_t{1} << 30;

struct LeaseExpiryOptions {
  // Extra wait per rank before a node proposes an expiry.
  std::chrono::milliseconds grace_period{500};
  // Minimum time between two proposals of the same expiry by one node.
  std::chrono::milliseconds retry_interval{2000};
  // How long the timer thread waits for one proposal to apply.
  std::chrono::milliseconds propose_timeout{2000};
};

// Which expiries a node should propose, and when. Not thread-safe (the
// LeaseManager guards it). Generations are the store's: each grant or
// keep-alive of any lease gets a larger one.
class ExpirySchedule {
 public:
  using Clock = std::chrono::steady_clock;
  using TimePoint = Clock::time_point;
  struct Expiry {
    int64_t id = 0;
    uint64_t generation = 0;
    bool operator==(const Expiry&) const = default;
  };

  explicit ExpirySchedule(LeaseExpiryOptions options) : options_(options) {}

  // A grant or keep-alive of `id` applied at `now` with this generation and
  // TTL: the deadline becomes now + ttl. Ignored if a newer generation of
  // the lease is already known (a stale snapshot loaded at startup).
  void Renewed(int64_t id, uint64_t generation, int64_t ttl_seconds, TimePoint now);
  // The lease is gone (revoked or expired).
  void Removed(int64_t id);

  // The deadline and generation of `id`, if it is scheduled.
  std::optional<TimePoint> Deadline(int64_t id) const;
  std::optional<uint64_t> Generation(int64_t id) const;
  size_t size() const { return entries_.size(); }

  // When a node of `rank` next has something to propose; nullopt when
  // nothing is scheduled.
  std::optional<TimePoint> NextWake(size_t rank) const;
  // The expiries a node of `rank` should propose at `now`, oldest deadline
  // first; each is recorded as proposed at `now`.
  std::vector<Expiry> TakeDue(size_t rank, TimePoint now);

 private:
  struct Entry {
    uint64_t generation = 0;
    TimePoint deadline;
    std::optional<TimePoint> last_proposed;
  };
  TimePoint ProposeAt(const Entry& e, size_t rank) const;

  LeaseExpiryOptions options_;
  std::map<int64_t, Entry> entries_;
  // Entries never proposed for their generation, by deadline.
  std::set<std::pair<TimePoint, int64_t>> waiting_;
  // Entries proposed at least once and not yet removed or renewed: normally
  // empty, since an expiry applies within milliseconds.
  std::set<int64_t> proposed_;
};

// The rank of `self` among `members` (sorted ascending): its index, or
// members.size() if it is not a member.
size_t RankOf(totem::NodeId self, const std::vector<totem::NodeId>& members);

// The runtime: keeps an ExpirySchedule up to date from the applied ops and
// proposes due expiries from one timer thread. Thread-safe.
class LeaseManager {
 public:
  LeaseManager(Replicator* replicator, LeaseExpiryOptions options);
  // Stops the timer thread. The replicator's apply thread must be stopped
  // first (it calls into this object).
  ~LeaseManager();
  LeaseManager(const LeaseManager&) = delete;
  LeaseManager& operator=(const LeaseManager&) = delete;

  // Registers the observers, loads the stored leases (full TTL from now)
  // and starts the timer thread. Call once, before serving clients.
  totem::Status Start();
  // Forgets every deadline and reloads the stored leases with a full TTL
  // from now. For when the store was replaced under the node (state
  // transfer); call it while no batch is being applied.
  totem::Status ReloadFromStore();
  // Stops the timer thread (a proposal in flight ends within
  // propose_timeout, at once if the replicator is stopped). Idempotent.
  void Stop();

  // Whole seconds left until this node's deadline for `id`; nullopt if the
  // lease is not scheduled here.
  std::optional<int64_t> RemainingSeconds(int64_t id) const;

  struct Counters {
    uint64_t expiries_proposed = 0;  // LeaseExpire proposals made here
    uint64_t proposals_failed = 0;   // of those, not applied in time
    uint64_t leases_expired = 0;     // expiries applied (from any node)
    uint64_t stale_expiries = 0;     // expiries applied that changed nothing
  };
  Counters GetCounters() const;

 private:
  void OnApplied(const std::vector<::kvstore::Op>& ops,
                 const std::vector<::kvstore::OpResult>& results);
  void OnConfiguration(const totem::ConfigurationEvent& e);
  void TimerLoop();
  // Loads MvccStore::Leases() into the schedule (after clearing it if
  // `replace`).
  totem::Status Load(bool replace);

  Replicator* const replicator_;
  const LeaseExpiryOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  ExpirySchedule schedule_;  // guarded by mu_
  size_t rank_ = 0;          // guarded by mu_
  bool stopping_ = false;    // guarded by mu_
  bool started_ = false;     // guarded by mu_
  std::thread timer_thread_;

  std::atomic<uint64_t> expiries_proposed_{0};
  std::atomic<uint64_t> proposals_failed_{0};
  std::atomic<uint64_t> leases_expired_{0};
  std::atomic<uint64_t> stale_expiries_{0};
};

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_LEASE_MANAGER_H_
