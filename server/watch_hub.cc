// WatchHub: watchers served from the store's revision history with live
// events pushed by the store's event callback (see watch_hub.h for the
// semantics and the no-gap/no-duplicate handover from History to live).
#include "watch_hub.h"

#include <algorithm>
#include <utility>

namespace totemkv::server {
namespace {

using ::kvstore::Event;
using std::chrono::steady_clock;

// etcd's texts where etcd has one (mvcc/watcher.go, v3rpc/rpctypes).
constexpr char kErrDuplicateId[] = "mvcc: duplicate watch ID provided on the WatchStream";
constexpr char kErrEmptyRange[] = "mvcc: watcher range is empty";

// The key range of a watcher (etcd conventions, as the store's History).
bool InRange(const WatchSpec& s, const std::string& key) {
  if (s.range_end.empty()) return key == s.key;
  if (s.range_end == std::string(1, '\0')) return key >= s.key;
  return key >= s.key && key < s.range_end;
}

bool Passes(const WatchSpec& s, const Event& e) {
  if (e.type == Event::Type::kPut && s.no_put) return false;
  if (e.type == Event::Type::kDelete && s.no_delete) return false;
  return true;
}

size_t EventBytes(const Event& e) {
  size_t n = e.kv.key.size() + e.kv.value.size() + 64;
  if (e.prev_kv) n += e.prev_kv->key.size() + e.prev_kv->value.size() + 48;
  return n;
}

// Appends `events` (revision order) as responses for `watch_id`, each
// holding whole revisions up to about `max_bytes`.
void AppendEvents(std::vector<Event>&& events, int64_t watch_id, int64_t header_revision,
                  size_t max_bytes, std::vector<WatchOutput>* out) {
  WatchOutput cur;
  size_t bytes = 0;
  for (Event& e : events) {
    const int64_t rev = e.kv.mod_revision;
    if (!cur.events.empty() && bytes >= max_bytes && cur.events.back().kv.mod_revision != rev) {
      out->push_back(std::move(cur));
      cur = WatchOutput();
      bytes = 0;
    }
    if (cur.events.empty()) {
      cur.kind = WatchOutput::Kind::kEvents;
      cur.watch_id = watch_id;
      cur.revision = header_revision;
    }
    bytes += EventBytes(e);
    cur.events.push_back(std::move(e));
  }
  if (!cur.events.empty()) out->push_back(std::move(cur));
}

}  // namespace

struct WatchHub::Watcher {
  int64_t id = 0;
  WatchSpec spec;  // normalized (see Create)
  // Events with a revision below next_rev have been handed to Next()'s
  // caller (or filtered out); `queue` holds events from next_rev on.
  int64_t next_rev = 0;
  // Fed by OnEvents. While unsynced, `queue` only buffers live events for
  // the end of the current catch-up round.
  bool synced = false;
  bool overflowed = false;  // the queue overflowed during this round
  bool removed = false;
  bool sent_since_tick = false;  // for progress_notify
  std::deque<Event> queue;
};

WatchHub::WatchHub(const ::kvstore::MvccStore& store, WatchHubOptions options)
    : store_(store), options_(std::move(options)), revision_(store.CurrentRevision()) {}

WatchHub::~WatchHub() { Shutdown(); }

void WatchHub::OnEvents(const std::vector<Event>& events, int64_t revision) {
  std::lock_guard<std::mutex> lock(mu_);
  revision_ = std::max(revision_, revision);
  for (Stream* stream : streams_) {
    bool woke = false;
    for (auto& [id, w] : stream->watchers_) {
      for (const Event& e : events) {
        if (e.kv.mod_revision < w->next_rev || !InRange(w->spec, e.kv.key) || !Passes(w->spec, e))
          continue;
        if (w->queue.size() >= options_.max_queued_events) {
          // A slow consumer: drop the queue and catch up from History from
          // the first revision not handed out yet (next_rev).
          w->queue.clear();
          w->overflowed = true;
          w->synced = false;
          woke = true;
          break;
        }
        if (w->overflowed) break;  // this round is lost anyway
        Event copy = e;
        if (!w->spec.prev_kv) copy.prev_kv.reset();
        w->queue.push_back(std::move(copy));
        woke = true;
      }
    }
    if (woke) stream->cv_.notify_all();
  }
}

void WatchHub::Resync(int64_t revision) {
  std::lock_guard<std::mutex> lock(mu_);
  revision_ = std::max(revision_, revision);
  for (Stream* stream : streams_) {
    for (auto& [id, w] : stream->watchers_) {
      w->queue.clear();
      w->overflowed = true;
      w->synced = false;
    }
    stream->cv_.notify_all();
  }
}

std::shared_ptr<WatchHub::Stream> WatchHub::OpenStream() {
  std::shared_ptr<Stream> stream(new Stream(this));
  std::lock_guard<std::mutex> lock(mu_);
  if (shutdown_) {
    stream->closed_ = true;
  } else {
    streams_.push_back(stream.get());
  }
  return stream;
}

void WatchHub::Shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_ = true;
  for (Stream* s : streams_) s->cv_.notify_all();
}

size_t WatchHub::watcher_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return watchers_;
}

WatchHub::Stream::~Stream() { Close(); }

size_t WatchHub::Stream::watcher_count() const {
  std::lock_guard<std::mutex> lock(hub_->mu_);
  return watchers_.size();
}

totem::Status WatchHub::Stream::Create(const WatchSpec& requested) {
  WatchSpec spec = requested;
  // Read before the hub lock (lock order); covers batches applied before
  // the event callback was routed to this hub.
  const int64_t store_revision = hub_->store_.CurrentRevision();
  std::lock_guard<std::mutex> lock(hub_->mu_);
  hub_->revision_ = std::max(hub_->revision_, store_revision);
  auto refuse = [&](totem::Status status) {
    WatchOutput o;
    o.kind = WatchOutput::Kind::kRefused;
    o.watch_id = -1;
    o.revision = hub_->revision_;
    o.cancel_reason = status.message();
    control_.push_back(std::move(o));
    cv_.notify_all();
    return status;
  };
  if (closed_ || hub_->shutdown_)
    return totem::Status(totem::StatusCode::kUnavailable, "watch stream closed");
  if (spec.key.empty()) {
    if (spec.range_end.empty()) return refuse(totem::InvalidArgument(::kvstore::kErrEmptyKey));
    spec.key = std::string(1, '\0');  // etcd: "\0" is the smallest key
  }
  if (!spec.range_end.empty() && spec.range_end != std::string(1, '\0') &&
      spec.key >= spec.range_end) {
    return refuse(totem::InvalidArgument(kErrEmptyRange));
  }
  if (spec.start_revision < 0) {
    return refuse(totem::InvalidArgument("etcdserver: watch start_revision " +
                                         std::to_string(spec.start_revision) + " is negative"));
  }
  if (spec.watch_id < 0) {
    return refuse(totem::InvalidArgument("etcdserver: watch_id " + std::to_string(spec.watch_id) +
                                         " is negative"));
  }
  if (hub_->watchers_ >= hub_->options_.max_watches) {
    return refuse(totem::Status(totem::StatusCode::kResourceExhausted,
                                "etcdserver: too many watches (the server allows " +
                                    std::to_string(hub_->options_.max_watches) + ")"));
  }
  int64_t id = spec.watch_id;
  if (id == 0) {
    while (watchers_.count(next_id_) != 0) ++next_id_;
    id = next_id_++;
  } else if (watchers_.count(id) != 0) {
    return refuse(totem::Status(totem::StatusCode::kFailedPrecondition, kErrDuplicateId));
  }
  auto w = std::make_shared<Watcher>();
  w->id = id;
  w->spec = std::move(spec);
  // From now or from the future: OnEvents (under this lock) feeds it from
  // the next batch on. From the past: catch up from History first.
  const int64_t now_next = hub_->revision_ + 1;
  if (w->spec.start_revision == 0 || w->spec.start_revision >= now_next) {
    w->next_rev = std::max(now_next, w->spec.start_revision);
    w->synced = true;
  } else {
    w->next_rev = w->spec.start_revision;
  }
  watchers_[id] = w;
  ++hub_->watchers_;
  WatchOutput o;
  o.kind = WatchOutput::Kind::kCreated;
  o.watch_id = id;
  o.revision = hub_->revision_;
  control_.push_back(std::move(o));
  cv_.notify_all();
  return totem::Status();
}

totem::Status WatchHub::Stream::Cancel(int64_t watch_id) {
  std::lock_guard<std::mutex> lock(hub_->mu_);
  if (watchers_.count(watch_id) == 0) {
    return totem::Status(totem::StatusCode::kInvalidArgument,
                         "no watch " + std::to_string(watch_id) + " on this stream");
  }
  RemoveLocked(watch_id);
  WatchOutput o;
  o.kind = WatchOutput::Kind::kCanceled;
  o.watch_id = watch_id;
  o.revision = hub_->revision_;
  control_.push_back(std::move(o));
  cv_.notify_all();
  return totem::Status();
}

void WatchHub::Stream::RequestProgress() {
  std::lock_guard<std::mutex> lock(hub_->mu_);
  ++pending_progress_;
  cv_.notify_all();
}

void WatchHub::Stream::RemoveLocked(int64_t watch_id) {
  auto it = watchers_.find(watch_id);
  if (it == watchers_.end()) return;
  it->second->removed = true;
  it->second->queue.clear();
  watchers_.erase(it);
  --hub_->watchers_;
}

void WatchHub::Stream::Close() {
  std::lock_guard<std::mutex> lock(hub_->mu_);
  if (closed_) return;
  closed_ = true;
  while (!watchers_.empty()) RemoveLocked(watchers_.begin()->first);
  control_.clear();
  auto& all = hub_->streams_;
  all.erase(std::remove(all.begin(), all.end(), this), all.end());
  cv_.notify_all();
}

void WatchHub::Stream::CollectLocked(std::vector<WatchOutput>* out,
                                     std::vector<std::shared_ptr<Watcher>>* unsynced,
                                     steady_clock::time_point now) {
  while (!control_.empty()) {
    out->push_back(std::move(control_.front()));
    control_.pop_front();
  }
  const int64_t rev = hub_->revision_;
  for (auto& [id, w] : watchers_) {
    if (!w->synced) {
      unsynced->push_back(w);
      continue;
    }
    if (w->queue.empty()) continue;
    std::vector<Event> events(std::make_move_iterator(w->queue.begin()),
                              std::make_move_iterator(w->queue.end()));
    w->queue.clear();
    w->next_rev = events.back().kv.mod_revision + 1;
    w->sent_since_tick = true;
    AppendEvents(std::move(events), id, rev, hub_->options_.max_response_bytes, out);
  }
  if (now >= next_tick_) {
    for (auto& [id, w] : watchers_) {
      if (w->spec.progress_notify && w->synced && !w->sent_since_tick) {
        WatchOutput o;
        o.kind = WatchOutput::Kind::kProgress;
        o.watch_id = id;
        o.revision = rev;
        out->push_back(std::move(o));
      }
      w->sent_since_tick = false;
    }
    next_tick_ = now + hub_->options_.progress_notify_interval;
  }
  if (pending_progress_ > 0 && unsynced->empty()) {
    for (; pending_progress_ > 0; --pending_progress_) {
      WatchOutput o;
      o.kind = WatchOutput::Kind::kProgress;
      o.watch_id = -1;
      o.revision = rev;
      out->push_back(std::move(o));
    }
  }
}

void WatchHub::Stream::CatchUp(const std::shared_ptr<Watcher>& w, std::vector<WatchOutput>* out) {
  ::kvstore::HistoryRequest req;
  {
    std::lock_guard<std::mutex> lock(hub_->mu_);
    if (w->removed || w->synced) return;
    w->queue.clear();
    w->overflowed = false;
    req.key = w->spec.key;
    req.range_end = w->spec.range_end;
    req.start_revision = w->next_rev;
    req.prev_kv = w->spec.prev_kv;
    req.max_events = hub_->options_.history_batch_events;
  }
  // Outside the hub lock: the store takes its own mutex (lock order).
  if (hub_->options_.before_history_read) hub_->options_.before_history_read();
  totem::StatusOr<std::vector<Event>> history = hub_->store_.History(req);
  if (hub_->options_.after_history_read) hub_->options_.after_history_read();
  const int64_t compacted = history.ok() ? 0 : hub_->store_.CompactedRevision();

  std::lock_guard<std::mutex> lock(hub_->mu_);
  if (w->removed) return;
  if (!history.ok()) {
    WatchOutput o;
    o.kind = WatchOutput::Kind::kCanceled;
    o.watch_id = w->id;
    o.revision = hub_->revision_;
    if (history.status().message() == ::kvstore::kErrCompacted) {
      o.compact_revision = std::max<int64_t>(compacted, 1);
    } else {
      o.cancel_reason = history.status().message();
    }
    RemoveLocked(w->id);
    out->push_back(std::move(o));
    return;
  }
  std::vector<Event>& raw = *history;
  const bool complete =
      hub_->options_.history_batch_events == 0 || raw.size() < hub_->options_.history_batch_events;
  const int64_t last = raw.empty() ? req.start_revision - 1 : raw.back().kv.mod_revision;
  std::vector<Event> events;
  for (Event& e : raw) {
    if (Passes(w->spec, e)) events.push_back(std::move(e));
  }
  if (!events.empty()) {
    w->sent_since_tick = true;
    AppendEvents(std::move(events), w->id, std::max(hub_->revision_, last),
                 hub_->options_.max_response_bytes, out);
  }
  w->next_rev = last + 1;
  if (!complete || w->overflowed) {
    w->queue.clear();  // another round from next_rev
    w->overflowed = false;
    return;
  }
  // History saw every batch whose events reached the queue before its
  // snapshot; the queue holds the batches after it (and possibly some
  // before): keep only what History did not return.
  while (!w->queue.empty() && w->queue.front().kv.mod_revision <= last) w->queue.pop_front();
  w->synced = true;
}

bool WatchHub::Stream::Next(std::vector<WatchOutput>* out, std::chrono::milliseconds max_wait) {
  const auto deadline = steady_clock::now() + max_wait;
  std::unique_lock<std::mutex> lock(hub_->mu_);
  if (next_tick_ == steady_clock::time_point()) {
    next_tick_ = steady_clock::now() + hub_->options_.progress_notify_interval;
  }
  for (;;) {
    if (closed_ || hub_->shutdown_) return false;
    std::vector<std::shared_ptr<Watcher>> unsynced;
    CollectLocked(out, &unsynced, steady_clock::now());
    if (!unsynced.empty()) {
      lock.unlock();
      for (const auto& w : unsynced) CatchUp(w, out);
      lock.lock();
      if (!out->empty()) return true;
      continue;  // caught up with nothing to send: collect the live queues
    }
    if (!out->empty()) return true;
    const auto now = steady_clock::now();
    if (now >= deadline) return true;
    cv_.wait_until(lock, std::min(deadline, next_tick_));
  }
}

}  // namespace totemkv::server
