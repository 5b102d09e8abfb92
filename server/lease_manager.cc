// Lease expiry scheduling (ExpirySchedule, pure) and its runtime
// (LeaseManager: observers on the Replicator and one timer thread). See
// lease_manager.h for the expiry rule.
#include "lease_manager.h"

#include <algorithm>
#include <variant>

#include "log.h"

namespace totemkv::server {

namespace {
namespace pb = totemkv::kvstore::v1;

std::chrono::seconds DeadlineTtl(int64_t ttl_seconds) {
  return std::chrono::seconds(std::clamp<int64_t>(ttl_seconds, 0, kMaxDeadlineSeconds));
}
}  // namespace

void ExpirySchedule::Renewed(int64_t id, uint64_t generation, int64_t ttl_seconds, TimePoint now) {
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    if (it->second.generation > generation) return;
    waiting_.erase({it->second.deadline, id});
    proposed_.erase(id);
  }
  Entry& e = entries_[id];
  e.generation = generation;
  e.deadline = now + DeadlineTtl(ttl_seconds);
  e.last_proposed.reset();
  waiting_.insert({e.deadline, id});
}

void ExpirySchedule::Removed(int64_t id) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  waiting_.erase({it->second.deadline, id});
  proposed_.erase(id);
  entries_.erase(it);
}

std::optional<ExpirySchedule::TimePoint> ExpirySchedule::Deadline(int64_t id) const {
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.deadline;
}

std::optional<uint64_t> ExpirySchedule::Generation(int64_t id) const {
  auto it = entries_.find(id);
  if (it == entries_.end()) return std::nullopt;
  return it->second.generation;
}

ExpirySchedule::TimePoint ExpirySchedule::ProposeAt(const Entry& e, size_t rank) const {
  TimePoint at = e.deadline + options_.grace_period * static_cast<int64_t>(rank);
  if (e.last_proposed) at = std::max(at, *e.last_proposed + options_.retry_interval);
  return at;
}

std::optional<ExpirySchedule::TimePoint> ExpirySchedule::NextWake(size_t rank) const {
  std::optional<TimePoint> next;
  if (!waiting_.empty()) next = ProposeAt(entries_.at(waiting_.begin()->second), rank);
  for (int64_t id : proposed_) {
    const TimePoint at = ProposeAt(entries_.at(id), rank);
    if (!next || at < *next) next = at;
  }
  return next;
}

std::vector<ExpirySchedule::Expiry> ExpirySchedule::TakeDue(size_t rank, TimePoint now) {
  std::vector<Expiry> due;
  for (int64_t id : proposed_) {
    Entry& e = entries_.at(id);
    if (ProposeAt(e, rank) <= now) {
      e.last_proposed = now;
      due.push_back({id, e.generation});
    }
  }
  while (!waiting_.empty()) {
    const int64_t id = waiting_.begin()->second;
    Entry& e = entries_.at(id);
    if (ProposeAt(e, rank) > now) break;
    waiting_.erase(waiting_.begin());
    proposed_.insert(id);
    e.last_proposed = now;
    due.push_back({id, e.generation});
  }
  return due;
}

size_t RankOf(totem::NodeId self, const std::vector<totem::NodeId>& members) {
  auto it = std::lower_bound(members.begin(), members.end(), self);
  if (it == members.end() || *it != self) return members.size();
  return static_cast<size_t>(it - members.begin());
}

LeaseManager::LeaseManager(Replicator* replicator, LeaseExpiryOptions options)
    : replicator_(replicator), options_(options), schedule_(options) {}

LeaseManager::~LeaseManager() { Stop(); }

totem::Status LeaseManager::Start() {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (started_) return {totem::StatusCode::kFailedPrecondition, "lease manager: started twice"};
    started_ = true;
  }
  // Observers first, then the snapshots (configuration, leases): an event
  // in between is seen by both, and Renewed keeps the newer generation. A lease the snapshot
  // still holds but a revoke already removed gets a stale expiry at worst,
  // which OnApplied then drops.
  replicator_->AddApplyObserver(
      [this](const std::vector<::kvstore::Op>& ops,
             const std::vector<::kvstore::OpResult>& results) { OnApplied(ops, results); });
  replicator_->AddConfigurationObserver(
      [this](const totem::ConfigurationEvent& e) { OnConfiguration(e); });
  const totem::ConfigurationView view = replicator_->Configuration();
  {
    std::lock_guard<std::mutex> l(mu_);
    rank_ = RankOf(replicator_->node_id(), view.regular.members);
  }
  if (totem::Status s = Load(/*replace=*/false); !s.ok()) return s;
  timer_thread_ = std::thread([this] { TimerLoop(); });
  return totem::Status::Ok();
}

totem::Status LeaseManager::ReloadFromStore() { return Load(/*replace=*/true); }

totem::Status LeaseManager::Load(bool replace) {
  totem::StatusOr<std::vector<::kvstore::LeaseInfo>> leases = replicator_->store().Leases();
  if (!leases.ok()) return leases.status();
  {
    std::lock_guard<std::mutex> l(mu_);
    if (replace) schedule_ = ExpirySchedule(options_);
    const auto now = ExpirySchedule::Clock::now();
    for (const ::kvstore::LeaseInfo& info : *leases) {
      schedule_.Renewed(info.id, info.generation, info.granted_ttl, now);
    }
    LogInfo(Event::kLeasesLoaded, {{"leases", leases->size()}, {"rank", rank_}});
  }
  cv_.notify_all();
  return totem::Status::Ok();
}

void LeaseManager::Stop() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (timer_thread_.joinable()) timer_thread_.join();
}

std::optional<int64_t> LeaseManager::RemainingSeconds(int64_t id) const {
  std::lock_guard<std::mutex> l(mu_);
  const std::optional<ExpirySchedule::TimePoint> deadline = schedule_.Deadline(id);
  if (!deadline) return std::nullopt;
  const auto left = *deadline - ExpirySchedule::Clock::now();
  return std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>(left).count());
}

LeaseManager::Counters LeaseManager::GetCounters() const {
  return {expiries_proposed_.load(), proposals_failed_.load(), leases_expired_.load(),
          stale_expiries_.load()};
}

void LeaseManager::OnApplied(const std::vector<::kvstore::Op>& ops,
                             const std::vector<::kvstore::OpResult>& results) {
  const auto now = ExpirySchedule::Clock::now();
  bool changed = false;
  std::unique_lock<std::mutex> l(mu_);
  for (size_t i = 0; i < ops.size() && i < results.size(); ++i) {
    const ::kvstore::OpResult& r = results[i];
    if (r.duplicate || !r.status.ok()) continue;
    if (const auto* g = std::get_if<::kvstore::LeaseGrantResponse>(&r.response)) {
      schedule_.Renewed(g->id, g->generation, g->ttl, now);
      changed = true;
    } else if (const auto* k = std::get_if<::kvstore::LeaseKeepAliveResponse>(&r.response)) {
      schedule_.Renewed(k->id, k->generation, k->ttl, now);
      changed = true;
    } else if (const auto* rv = std::get_if<::kvstore::LeaseRevokeRequest>(&ops[i].request)) {
      schedule_.Removed(rv->id);
      changed = true;
    } else if (const auto* ex = std::get_if<::kvstore::LeaseExpireRequest>(&ops[i].request)) {
      const auto* resp = std::get_if<::kvstore::LeaseExpireResponse>(&r.response);
      if (resp != nullptr && resp->expired) {
        ++leases_expired_;
        schedule_.Removed(ex->id);
        changed = true;
        continue;
      }
      ++stale_expiries_;
      // Stale. If it carried the generation we hold, our view is older than
      // the store's (only possible for a lease loaded at startup while ops
      // were applying): re-read the lease. This runs on the apply thread,
      // so the store is exactly at this batch.
      if (schedule_.Generation(ex->id) == ex->generation) {
        totem::StatusOr<::kvstore::LeaseInfo> info =
            replicator_->store().TimeToLive(ex->id, /*keys=*/false);
        if (info.ok()) {
          schedule_.Renewed(ex->id, info->generation, info->granted_ttl, now);
        } else {
          schedule_.Removed(ex->id);
        }
        changed = true;
      }
    }
  }
  l.unlock();
  if (changed) cv_.notify_all();
}

void LeaseManager::OnConfiguration(const totem::ConfigurationEvent& e) {
  if (e.kind != totem::ConfigurationKind::kRegular) return;
  {
    std::lock_guard<std::mutex> l(mu_);
    rank_ = RankOf(replicator_->node_id(), e.members);
  }
  cv_.notify_all();
}

void LeaseManager::TimerLoop() {
  std::unique_lock<std::mutex> l(mu_);
  while (!stopping_) {
    const std::optional<ExpirySchedule::TimePoint> wake = schedule_.NextWake(rank_);
    if (!wake) {
      cv_.wait(l);
      continue;
    }
    if (*wake > ExpirySchedule::Clock::now()) {
      cv_.wait_until(l, *wake);
      continue;
    }
    const size_t rank = rank_;
    const std::vector<ExpirySchedule::Expiry> due =
        schedule_.TakeDue(rank, ExpirySchedule::Clock::now());
    l.unlock();
    for (const ExpirySchedule::Expiry& x : due) {
      pb::Op op;
      op.mutable_lease_expire()->set_id(x.id);
      op.mutable_lease_expire()->set_generation(x.generation);
      ++expiries_proposed_;
      totem::StatusOr<::kvstore::OpResult> r =
          replicator_->Propose(std::move(op), options_.propose_timeout);
      if (!r.ok()) {
        ++proposals_failed_;
        LogWarn(Event::kLeaseExpireFailed, {{"id", x.id},
                                            {"generation", x.generation},
                                            {"rank", rank},
                                            {"error", r.status().ToString()}});
        continue;
      }
      const auto* resp = std::get_if<::kvstore::LeaseExpireResponse>(&r->response);
      LogInfo(Event::kLeaseExpired,
              {{"id", x.id},
               {"generation", x.generation},
               {"rank", rank},
               {"outcome", resp != nullptr && resp->expired ? "expired" : "stale"}});
    }
    l.lock();
  }
}

}  // namespace totemkv::server
