// Unit tests of the WatchHub against a real MvccStore (RocksDB in a temp
// dir), single-threaded: the test applies batches (which call OnEvents
// through the store's event callback) and drains a stream with Next(0).
// Checks live events, replay from a past revision with no gap or duplicate
// across the History/live handover, key ranges, filters, prev_kv,
// compaction (canceled with compact_revision), slow-consumer overflow
// falling back to History, refused creates, cancel, progress and shutdown.
#include "watch_hub.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "../integration/test_util.h"
#include "kvstore/mvcc_store.h"

namespace totemkv::server {
namespace {

using ::kvstore::Event;
using std::chrono::milliseconds;
using Kind = WatchOutput::Kind;

// Builds a WatchSpec field by field.
struct Spec {
  WatchSpec s;
  operator WatchSpec() const { return s; }  // NOLINT(google-explicit-constructor)
  Spec& Key(std::string v) {
    s.key = std::move(v);
    return *this;
  }
  Spec& RangeEnd(std::string v) {
    s.range_end = std::move(v);
    return *this;
  }
  Spec& StartRevision(int64_t v) {
    s.start_revision = v;
    return *this;
  }
  Spec& NoPut(bool v) {
    s.no_put = v;
    return *this;
  }
  Spec& NoDelete(bool v) {
    s.no_delete = v;
    return *this;
  }
  Spec& PrevKv(bool v) {
    s.prev_kv = v;
    return *this;
  }
  Spec& ProgressNotify(bool v) {
    s.progress_notify = v;
    return *this;
  }
  Spec& WatchId(int64_t v) {
    s.watch_id = v;
    return *this;
  }
};

// (watch id, 'P' or 'D', key, mod revision)
using Flat = std::tuple<int64_t, char, std::string, int64_t>;

class WatchHubTest : public ::testing::Test {
 protected:
  void SetUp() override { Open({}); }

  void Open(WatchHubOptions options) {
    hub_.reset();
    store_.reset();
    dir_ = std::make_unique<totem::testing::TempDir>();
    ::kvstore::StoreOptions store_options;
    store_options.sync = false;
    auto s = ::kvstore::MvccStore::Open(dir_->path() + "/db", store_options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    hub_ = std::make_unique<WatchHub>(*store_, options);
    store_->SetEventCallback([this](const std::vector<Event>& events, int64_t revision) {
      hub_->OnEvents(events, revision);
    });
  }
  void TearDown() override {
    if (store_) store_->SetEventCallback(nullptr);
  }

  int64_t Apply(::kvstore::Op op) {
    auto r = store_->ApplyBatch({op}, {"test", ++seq_});
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return 0;
    EXPECT_TRUE((*r)[0].status.ok()) << (*r)[0].status.ToString();
    return (*r)[0].revision;
  }
  int64_t Put(const std::string& key, const std::string& value) {
    ::kvstore::PutRequest put;
    put.key = key;
    put.value = value;
    ::kvstore::Op op;
    op.request = put;
    return Apply(op);
  }
  int64_t Delete(const std::string& key) {
    ::kvstore::DeleteRangeRequest del;
    del.key = key;
    ::kvstore::Op op;
    op.request = del;
    return Apply(op);
  }
  void Compact(int64_t revision) {
    ::kvstore::CompactionRequest compact;
    compact.revision = revision;
    ::kvstore::Op op;
    op.request = compact;
    Apply(op);
  }

  // Everything the stream has to send now.
  std::vector<WatchOutput> Drain(WatchHub::Stream& s) {
    std::vector<WatchOutput> all;
    for (;;) {
      std::vector<WatchOutput> out;
      EXPECT_TRUE(s.Next(&out, milliseconds(0)));
      if (out.empty()) return all;
      for (auto& o : out) all.push_back(std::move(o));
    }
  }
  static std::vector<Flat> Events(const std::vector<WatchOutput>& outs) {
    std::vector<Flat> flat;
    for (const WatchOutput& o : outs) {
      if (o.kind != Kind::kEvents) continue;
      for (const Event& e : o.events) {
        flat.emplace_back(o.watch_id, e.type == Event::Type::kPut ? 'P' : 'D', e.kv.key,
                          e.kv.mod_revision);
      }
    }
    return flat;
  }
  static std::vector<Kind> Kinds(const std::vector<WatchOutput>& outs) {
    std::vector<Kind> k;
    for (const WatchOutput& o : outs) k.push_back(o.kind);
    return k;
  }

  std::unique_ptr<totem::testing::TempDir> dir_;
  std::unique_ptr<::kvstore::MvccStore> store_;
  std::unique_ptr<WatchHub> hub_;
  uint64_t seq_ = 0;
};

TEST_F(WatchHubTest, Create_FromNowSeesLiveEventsInOrder) {
  auto s = hub_->OpenStream();
  ASSERT_TRUE(s->Create(Spec().Key("a").RangeEnd(std::string(1, '\0'))).ok());
  auto outs = Drain(*s);
  ASSERT_EQ(Kinds(outs), std::vector<Kind>{Kind::kCreated});
  EXPECT_EQ(outs[0].watch_id, 0);
  EXPECT_EQ(outs[0].revision, 1);
  const int64_t r1 = Put("a", "1");
  const int64_t r2 = Put("b", "2");
  const int64_t r3 = Delete("a");
  outs = Drain(*s);
  EXPECT_EQ(Events(outs),
            (std::vector<Flat>{{0, 'P', "a", r1}, {0, 'P', "b", r2}, {0, 'D', "a", r3}}));
  EXPECT_GE(outs.back().revision, r3);
  // prev_kv not asked for: not sent.
  for (const auto& o : outs) {
    for (const auto& e : o.events) EXPECT_FALSE(e.prev_kv.has_value());
  }
}

TEST_F(WatchHubTest, Create_PastRevisionReplaysWithoutGapOrDuplicate) {
  WatchHubOptions o;
  o.history_batch_events = 3;  // several catch-up rounds
  Open(o);
  for (int i = 0; i < 10; ++i) Put("k" + std::to_string(i), "v");  // revisions 2..11
  auto s = hub_->OpenStream();
  ASSERT_TRUE(s->Create(Spec().Key("k").RangeEnd("l").StartRevision(5)).ok());
  // Writes land between the create and each catch-up round, so the live
  // buffer and History overlap.
  std::vector<WatchOutput> all;
  for (int i = 10; i < 20; ++i) {
    Put("k" + std::to_string(i), "v");
    std::vector<WatchOutput> out;
    ASSERT_TRUE(s->Next(&out, milliseconds(0)));
    for (auto& x : out) all.push_back(std::move(x));
  }
  for (auto& x : Drain(*s)) all.push_back(std::move(x));
  std::vector<int64_t> revs;
  for (const Flat& f : Events(all)) revs.push_back(std::get<3>(f));
  std::vector<int64_t> want;
  for (int64_t r = 5; r <= 21; ++r) want.push_back(r);
  EXPECT_EQ(revs, want);
  EXPECT_EQ(all[0].kind, Kind::kCreated);
}

// Writes land right before and right after each History read of the
// catch-up: the first are both in History and in the live buffer, the
// second only in the buffer.
TEST_F(WatchHubTest, CatchUp_WritesDuringHistoryReadNeitherLostNorDuplicated) {
  WatchHubOptions o;
  o.history_batch_events = 4;
  int writes = 0;
  std::vector<int64_t> want;
  auto write = [&] {
    if (writes < 12) want.push_back(Put("h/" + std::to_string(writes++ % 3), "v"));
  };
  o.before_history_read = write;
  o.after_history_read = write;
  Open(o);
  for (int i = 0; i < 6; ++i) want.push_back(Put("h/x", "v"));
  auto s = hub_->OpenStream();
  ASSERT_TRUE(s->Create(Spec().Key("h/").RangeEnd("h0").StartRevision(want[0])).ok());
  std::vector<int64_t> revs;
  for (const Flat& f : Events(Drain(*s))) revs.push_back(std::get<3>(f));
  EXPECT_GE(writes, 4);  // at least two rounds, each with both kinds of write
  EXPECT_EQ(revs, want);
}

TEST_F(WatchHubTest, Create_KeyRangesFollowEtcd) {
  auto s = hub_->OpenStream();
  ASSERT_TRUE(s->Create(Spec().Key("b")).ok());                                 // 0: key b
  ASSERT_TRUE(s->Create(Spec().Key("b").RangeEnd("d")).ok());                   // 1: [b, d)
  ASSERT_TRUE(s->Create(Spec().Key("c").RangeEnd(std::string(1, '\0'))).ok());  // 2: >= c
  ASSERT_TRUE(s->Create(Spec().Key("").RangeEnd(std::string(1, '\0'))).ok());   // 3: all
  Drain(*s);
  for (const char* k : {"a", "b", "bb", "c", "d", "z"}) Put(k, "v");
  std::map<int64_t, std::vector<std::string>> keys;
  for (const Flat& f : Events(Drain(*s))) keys[std::get<0>(f)].push_back(std::get<2>(f));
  EXPECT_EQ(keys[0], (std::vector<std::string>{"b"}));
  EXPECT_EQ(keys[1], (std::vector<std::string>{"b", "bb", "c"}));
  EXPECT_EQ(keys[2], (std::vector<std::string>{"c", "d", "z"}));
  EXPECT_EQ(keys[3], (std::vector<std::string>{"a", "b", "bb", "c", "d", "z"}));
}

TEST_F(WatchHubTest, Create_FiltersAndPrevKv) {
  Put("k", "old");
  const int64_t start = store_->CurrentRevision() + 1;
  auto s = hub_->OpenStream();
  ASSERT_TRUE(s->Create(Spec().Key("k").NoPut(true)).ok());
  ASSERT_TRUE(s->Create(Spec().Key("k").NoDelete(true).PrevKv(true)).ok());
  Drain(*s);
  Put("k", "new");
  Delete("k");
  auto outs = Drain(*s);
  // Responses come watcher by watcher (id order) within one Next.
  EXPECT_EQ(Events(outs), (std::vector<Flat>{{0, 'D', "k", start + 1}, {1, 'P', "k", start}}));
  for (const auto& o : outs) {
    for (const auto& e : o.events) {
      if (o.watch_id == 1) {
        ASSERT_TRUE(e.prev_kv.has_value());
        EXPECT_EQ(e.prev_kv->value, "old");
      } else {
        EXPECT_FALSE(e.prev_kv.has_value());
      }
    }
  }
  // The same through History (a replay from the start).
  ASSERT_TRUE(s->Create(Spec().Key("k").StartRevision(start).NoDelete(true).PrevKv(true)).ok());
  outs = Drain(*s);
  EXPECT_EQ(Events(outs), (std::vector<Flat>{{2, 'P', "k", start}}));
  ASSERT_TRUE(outs.back().events[0].prev_kv.has_value());
  EXPECT_EQ(outs.back().events[0].prev_kv->value, "old");
}

TEST_F(WatchHubTest, Create_CompactedStartIsCanceledWithCompactRevision) {
  for (int i = 0; i < 5; ++i) Put("k", std::to_string(i));  // revisions 2..6
  Compact(5);
  auto s = hub_->OpenStream();
  ASSERT_TRUE(s->Create(Spec().Key("k").StartRevision(3)).ok());
  ASSERT_TRUE(s->Create(Spec().Key("k").StartRevision(5)).ok());  // == compacted: fine
  auto outs = Drain(*s);
  ASSERT_EQ(Kinds(outs),
            (std::vector<Kind>{Kind::kCreated, Kind::kCreated, Kind::kCanceled, Kind::kEvents}));
  EXPECT_EQ(outs[2].watch_id, 0);
  EXPECT_EQ(outs[2].compact_revision, 5);
  EXPECT_EQ(Events(outs), (std::vector<Flat>{{1, 'P', "k", 5}, {1, 'P', "k", 6}}));
  EXPECT_EQ(s->watcher_count(), 1u);
  EXPECT_EQ(hub_->watcher_count(), 1u);
}

TEST_F(WatchHubTest, SlowConsumer_FallsBackToHistoryAndDeliversEveryEventOnce) {
  WatchHubOptions o;
  o.max_queued_events = 4;
  o.history_batch_events = 7;
  Open(o);
  auto s = hub_->OpenStream();
  ASSERT_TRUE(s->Create(Spec().Key("k").RangeEnd("l")).ok());
  Drain(*s);
  std::vector<int64_t> want;
  for (int i = 0; i < 50; ++i) want.push_back(Put("k" + std::to_string(i % 7), "v"));
  // Overflowed long ago: the stream catches up from History, with more
  // writes arriving during the catch-up.
  std::vector<WatchOutput> all;
  for (int i = 0; i < 5; ++i) {
    std::vector<WatchOutput> out;
    ASSERT_TRUE(s->Next(&out, milliseconds(0)));
    for (auto& x : out) all.push_back(std::move(x));
    for (int j = 0; j < 6; ++j) want.push_back(Put("k" + std::to_string(j), "w"));
  }
  for (auto& x : Drain(*s)) all.push_back(std::move(x));
  std::vector<int64_t> revs;
  for (const Flat& f : Events(all)) revs.push_back(std::get<3>(f));
  EXPECT_EQ(revs, want);
}

TEST_F(WatchHubTest, SlowConsumer_CompactedMeanwhileIsCanceled) {
  WatchHubOptions o;
  o.max_queued_events = 2;
  Open(o);
  auto s = hub_->OpenStream();
  ASSERT_TRUE(s->Create(Spec().Key("k")).ok());
  Drain(*s);
  for (int i = 0; i < 10; ++i) Put("k", std::to_string(i));  // revisions 2..11
  Compact(8);
  auto outs = Drain(*s);
  ASSERT_EQ(Kinds(outs), std::vector<Kind>{Kind::kCanceled});
  EXPECT_EQ(outs[0].compact_revision, 8);
  EXPECT_EQ(hub_->watcher_count(), 0u);
}

TEST_F(WatchHubTest, Create_RefusesMalformedDuplicateAndTooMany) {
  WatchHubOptions o;
  o.max_watches = 2;
  Open(o);
  auto s = hub_->OpenStream();
  EXPECT_EQ(s->Create(Spec().Key("")).code(), totem::StatusCode::kInvalidArgument);
  EXPECT_EQ(s->Create(Spec().Key("b").RangeEnd("a")).code(), totem::StatusCode::kInvalidArgument);
  EXPECT_EQ(s->Create(Spec().Key("a").StartRevision(-1)).code(),
            totem::StatusCode::kInvalidArgument);
  ASSERT_TRUE(s->Create(Spec().Key("a").WatchId(7)).ok());
  EXPECT_EQ(s->Create(Spec().Key("a").WatchId(7)).code(), totem::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(s->Create(Spec().Key("a")).ok());  // auto id 0
  EXPECT_EQ(s->Create(Spec().Key("a")).code(), totem::StatusCode::kResourceExhausted);
  auto outs = Drain(*s);
  ASSERT_EQ(Kinds(outs),
            (std::vector<Kind>{Kind::kRefused, Kind::kRefused, Kind::kRefused, Kind::kCreated,
                               Kind::kRefused, Kind::kCreated, Kind::kRefused}));
  EXPECT_EQ(outs[0].cancel_reason, ::kvstore::kErrEmptyKey);
  EXPECT_EQ(outs[0].watch_id, -1);
  EXPECT_EQ(outs[1].cancel_reason, "mvcc: watcher range is empty");
  EXPECT_EQ(outs[3].watch_id, 7);
  EXPECT_EQ(outs[4].cancel_reason, "mvcc: duplicate watch ID provided on the WatchStream");
  EXPECT_EQ(outs[5].watch_id, 0);
  EXPECT_NE(outs[6].cancel_reason.find("too many watches"), std::string::npos);
}

TEST_F(WatchHubTest, Cancel_AnswersAndStopsEvents) {
  auto s = hub_->OpenStream();
  ASSERT_TRUE(s->Create(Spec().Key("a")).ok());
  Drain(*s);
  Put("a", "1");  // queued, then dropped by the cancel
  ASSERT_TRUE(s->Cancel(0).ok());
  EXPECT_EQ(s->Cancel(0).code(), totem::StatusCode::kInvalidArgument);
  Put("a", "2");
  auto outs = Drain(*s);
  ASSERT_EQ(Kinds(outs), std::vector<Kind>{Kind::kCanceled});
  EXPECT_EQ(outs[0].watch_id, 0);
  EXPECT_EQ(hub_->watcher_count(), 0u);
}

TEST_F(WatchHubTest, Progress_RequestAndNotifyCarryTheRevision) {
  WatchHubOptions o;
  o.progress_notify_interval = milliseconds(0);  // every Next is a tick
  Open(o);
  const int64_t rev = Put("x", "1");
  auto s = hub_->OpenStream();
  ASSERT_TRUE(s->Create(Spec().Key("a").ProgressNotify(true)).ok());
  ASSERT_TRUE(s->Create(Spec().Key("b")).ok());
  s->RequestProgress();
  std::vector<WatchOutput> out;
  ASSERT_TRUE(s->Next(&out, milliseconds(0)));
  ASSERT_EQ(Kinds(out),
            (std::vector<Kind>{Kind::kCreated, Kind::kCreated, Kind::kProgress, Kind::kProgress}));
  EXPECT_EQ(out[2].watch_id, 0);   // progress_notify of watcher 0
  EXPECT_EQ(out[3].watch_id, -1);  // the stream-wide request
  EXPECT_EQ(out[3].revision, rev);
  // A watcher that just got events gets no progress notify in that tick.
  const int64_t rev2 = Put("a", "2");
  out.clear();
  ASSERT_TRUE(s->Next(&out, milliseconds(0)));
  ASSERT_EQ(Kinds(out), std::vector<Kind>{Kind::kEvents});
  out.clear();
  ASSERT_TRUE(s->Next(&out, milliseconds(0)));
  ASSERT_EQ(Kinds(out), std::vector<Kind>{Kind::kProgress});
  EXPECT_EQ(out[0].revision, rev2);
}

TEST_F(WatchHubTest, Shutdown_EndsNextAndCreate) {
  auto s = hub_->OpenStream();
  ASSERT_TRUE(s->Create(Spec().Key("a")).ok());
  hub_->Shutdown();
  std::vector<WatchOutput> out;
  EXPECT_FALSE(s->Next(&out, milliseconds(1000)));
  EXPECT_EQ(s->Create(Spec().Key("a")).code(), totem::StatusCode::kUnavailable);
  s->Close();
  EXPECT_EQ(hub_->watcher_count(), 0u);
}

}  // namespace
}  // namespace totemkv::server
