// WatchHub: the watchers of totemkvd's etcd v3 Watch service, served from
// the MVCC store's revision history (ARCHITECTURE.md §4 "Watch"). Every
// node applies every op, so every node's history — and so every node's
// watch events — agree revision for revision.
//
// Feeding: the store's event callback (MvccStore::SetEventCallback) calls
// OnEvents() after each durable batch, under the store mutex. OnEvents only
// appends matching events to bounded per-watcher queues and wakes the
// streams; it never calls back into the store. Lock order: store mutex, then
// the hub mutex; the hub never calls the store while holding its own.
//
// Semantics (etcd's, see etcd server/mvcc/watchable_store.go and
// server/etcdserver/api/v3rpc/watch.go):
//  - A watcher covers etcd's key ranges: empty range_end = the single key;
//    range_end "\0" = every key >= key; otherwise [key, range_end). An
//    empty key with a range_end means key "\0" (as etcd). An empty key
//    without a range_end, and key >= range_end, are rejected.
//  - start_revision 0 = from the next revision; a past revision replays
//    History from it; a future one waits for it. If the start (or, for a
//    watcher that fell behind, its next revision) is below the compacted
//    revision, the watcher is canceled with compact_revision set (the
//    created response has been sent first, as etcd does).
//  - Every watcher is "unsynced" until it has caught up from History, then
//    "synced" (fed by OnEvents). A catch-up round clears the live queue,
//    reads History from the watcher's next revision (at most
//    `history_batch_events` events per round, never splitting a revision),
//    and, if that read was complete and nothing overflowed, keeps only the
//    live events newer than what History returned: no gap and no duplicate
//    across the handover, because the store takes History's snapshot under
//    the same mutex that OnEvents runs under.
//  - A synced watcher whose queue would exceed `max_queued_events` (a slow
//    consumer) drops its queue and becomes unsynced again, catching up from
//    History from its first undelivered revision: memory stays bounded and
//    every event is still delivered exactly once (or the watcher is
//    canceled with compact_revision if that revision got compacted).
//  - Filters (NOPUT, NODELETE) drop events; prev_kv is sent only if asked.
//  - Events of one revision are never split across responses; a response
//    holds whole revisions up to about `max_response_bytes`.
//  - progress_notify: a synced watcher that got no events in the last
//    `progress_notify_interval` gets an empty response carrying the current
//    revision (etcd's default interval is 10 minutes).
//    RequestProgress(): one response with watch_id -1 (etcd 3.4/3.5's
//    clientv3.InvalidWatchID) once every watcher of the stream has been
//    handed everything up to the current revision.
//  - Watch ids are per stream: 0, 1, 2, ... unless the client picks one
//    (etcd 3.4+); a client id already in use on the stream is refused.
//  - At most `max_watches` watchers in the whole server; more are refused.
//
// Thread-safety: every method is safe to call from any thread. A Stream is
// meant for one gRPC Watch call: one thread calls Create/Cancel/
// RequestProgress (the request reader), one thread calls Next (the
// response writer).
#ifndef TOTEMKV_SERVER_WATCH_HUB_H_
#define TOTEMKV_SERVER_WATCH_HUB_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kvstore/mvcc_store.h"
#include "totem/status.h"

namespace totemkv::server {

struct WatchHubOptions {
  // Watchers in the whole server; a create beyond it is refused.
  size_t max_watches = 10000;
  // Live events queued for one watcher before it falls back to History.
  size_t max_queued_events = 4096;
  // Events read from History per catch-up round (a revision is never split,
  // so a round may return more).
  size_t history_batch_events = 1000;
  // A response holds whole revisions up to about this many bytes of keys
  // and values (at least one revision).
  size_t max_response_bytes = 1 << 20;
  // etcd's --experimental-watch-progress-notify-interval default.
  std::chrono::milliseconds progress_notify_interval{10 * 60 * 1000};
  // Fault-injection sites for tests: called on the Next() thread, without
  // the hub lock, right before and right after each catch-up History read
  // (a test lands writes there to exercise the History/live handover).
  std::function<void()> before_history_read;
  std::function<void()> after_history_read;
};

// A watch as the client asked for it (WatchCreateRequest).
struct WatchSpec {
  std::string key;
  std::string range_end;
  int64_t start_revision = 0;
  bool no_put = false;     // filter NOPUT
  bool no_delete = false;  // filter NODELETE
  bool prev_kv = false;
  bool progress_notify = false;
  int64_t watch_id = 0;  // 0 = the stream picks one (etcd's AutoWatchID)
};

// One response to send (WatchResponse without the proto).
struct WatchOutput {
  // kRefused: a create that failed (etcd: created and canceled, id -1).
  enum class Kind { kCreated, kRefused, kEvents, kCanceled, kProgress };
  Kind kind = Kind::kEvents;
  int64_t watch_id = 0;
  int64_t revision = 0;  // for the response header
  std::vector<::kvstore::Event> events;
  int64_t compact_revision = 0;  // kCanceled: the watcher fell below it
  std::string cancel_reason;     // kRefused, kCanceled on a store error
};

class WatchHub {
 public:
  class Stream;

  // `store` must outlive the hub; the caller routes the store's event
  // callback to OnEvents().
  WatchHub(const ::kvstore::MvccStore& store, WatchHubOptions options = {});
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // The store's event callback: events of one batch in revision order and
  // the store revision after it.
  void OnEvents(const std::vector<::kvstore::Event>& events, int64_t revision);

  // The store's state was replaced (a snapshot installed by state
  // transfer): no events were reported for the change, so every watcher
  // catches up from History from the first revision it has not been sent
  // (or is canceled as compacted), exactly like a slow consumer.
  void Resync(int64_t revision);

  // A new stream (one per gRPC Watch call).
  std::shared_ptr<Stream> OpenStream();

  // Closes every stream: blocked Next() calls return false at once and
  // later calls too. Idempotent.
  void Shutdown();

  size_t watcher_count() const;
  const WatchHubOptions& options() const { return options_; }

 private:
  friend class Stream;
  struct Watcher;

  const ::kvstore::MvccStore& store_;
  const WatchHubOptions options_;
  mutable std::mutex mu_;
  // Guarded by mu_. Streams unregister themselves in Close() (the hub must
  // outlive its streams).
  std::vector<Stream*> streams_;
  size_t watchers_ = 0;
  int64_t revision_ = 0;  // the latest store revision OnEvents saw
  bool shutdown_ = false;
};

class WatchHub::Stream {
 public:
  ~Stream();

  // Registers a watcher and queues its created response. A refused create
  // (malformed spec, id in use, too many watches) queues a response with
  // created and canceled set, watch_id -1 and the reason (as etcd) and
  // returns the error: INVALID_ARGUMENT (malformed), FAILED_PRECONDITION (id in
  // use), RESOURCE_EXHAUSTED (limit), UNAVAILABLE (closed).
  totem::Status Create(const WatchSpec& spec);

  // Removes the watcher and queues its canceled response. INVALID_ARGUMENT
  // (and nothing queued) for an unknown id, as etcd ignores those.
  totem::Status Cancel(int64_t watch_id);

  // Queues one progress response (watch_id -1) for when every watcher of
  // the stream has been handed everything up to the current revision.
  void RequestProgress();

  // Waits until there are responses to send, then moves them to `out` (in
  // the order to send them). Returns false once the stream or hub is
  // closed, and true with `out` empty if `max_wait` passed first. Runs
  // History catch-up rounds for watchers that need them (on this thread).
  bool Next(std::vector<WatchOutput>* out, std::chrono::milliseconds max_wait);

  // Drops every watcher of the stream and wakes Next(). Idempotent.
  void Close();

  size_t watcher_count() const;

 private:
  friend class WatchHub;
  explicit Stream(WatchHub* hub) : hub_(hub) {}
  // Under hub_->mu_: moves what is ready to `out`; lists the watchers that
  // need a catch-up round.
  void CollectLocked(std::vector<WatchOutput>* out, std::vector<std::shared_ptr<Watcher>>* unsynced,
                     std::chrono::steady_clock::time_point now);
  void CatchUp(const std::shared_ptr<Watcher>& w, std::vector<WatchOutput>* out);
  void RemoveLocked(int64_t watch_id);

  WatchHub* hub_;
  // Everything below is guarded by hub_->mu_.
  std::condition_variable cv_;
  std::map<int64_t, std::shared_ptr<Watcher>> watchers_;
  std::deque<WatchOutput> control_;  // created / canceled responses, in order
  int64_t next_id_ = 0;
  int pending_progress_ = 0;                           // RequestProgress calls not answered yet
  std::chrono::steady_clock::time_point next_tick_{};  // progress_notify
  bool closed_ = false;
};

}  // namespace totemkv::server

#endif  // TOTEMKV_SERVER_WATCH_HUB_H_
