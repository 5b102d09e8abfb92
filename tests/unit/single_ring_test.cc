// The single-ring protocol driven packet by packet: total order, agreed
// delivery never past a gap, safe delivery only once every member has the
// frame, retransmission requests, duplicate tokens, token retransmission,
// flow control, the receive-buffer bound and the idle token hold.
#include "totem/core/single_ring.h"

#include <gtest/gtest.h>

#include "fake_ring.h"

namespace totem::testing {
namespace {

using core::TimerId;

std::vector<std::string> Payloads(const std::vector<Delivered>& d) {
  std::vector<std::string> out;
  for (const auto& x : d) out.push_back(x.payload);
  return out;
}

void NoHold(RingConfig& c) { c.idle_rotations_before_hold = 0; }

TEST(SingleRing, Start_FormsOneRingOfAllMembersWithOneRegularConfiguration) {
  FakeRing net({3, 1, 2}, NoHold);
  net.FormRing();
  for (NodeId id : {1u, 2u, 3u}) {
    ASSERT_EQ(net.configs(id).size(), 1u);
    const auto& c = net.configs(id)[0];
    EXPECT_EQ(c.kind, ConfigurationKind::kRegular);
    EXPECT_EQ(c.id, (RingId{1, 1}));
    EXPECT_EQ(c.members, (std::vector<NodeId>{1, 2, 3}));
    EXPECT_EQ(c.joined, (std::vector<NodeId>{1, 2, 3}));
    EXPECT_EQ(net.ring(id).ring_id(), (RingId{1, 1}));
    EXPECT_EQ(net.ring(id).counters().consensus_timeouts, 0u);
  }
}

TEST(SingleRing, AllNodesDeliverTheSameTotalOrder) {
  FakeRing net({1, 2, 3}, NoHold);
  net.FormRing();
  for (int i = 0; i < 30; ++i) {
    NodeId id = 1 + i % 3;
    ASSERT_TRUE(
        net.Submit(id, "m" + std::to_string(i), i % 4 == 0 ? Guarantee::kSafe : Guarantee::kAgreed)
            .ok());
  }
  ASSERT_TRUE(net.RunUntil([&] {
    return net.delivered(3).size() == 30 && net.delivered(1).size() == 30 &&
           net.delivered(2).size() == 30;
  }));
  EXPECT_EQ(Payloads(net.delivered(1)), Payloads(net.delivered(2)));
  EXPECT_EQ(Payloads(net.delivered(1)), Payloads(net.delivered(3)));
  for (const auto& d : net.delivered(2)) EXPECT_EQ(d.payload[0], 'm');
  // Per-sender FIFO.
  for (NodeId s : {1u, 2u, 3u}) {
    int last = -1;
    for (const auto& d : net.delivered(1)) {
      if (d.sender != s) continue;
      int i = std::stoi(d.payload.substr(1));
      EXPECT_GT(i, last);
      last = i;
    }
  }
}

TEST(SingleRing, AgreedDeliveryNeverPassesAGapAndGapsAreRetransmitted) {
  FakeRing net({1, 2, 3}, NoHold);
  net.FormRing();
  ASSERT_TRUE(net.Submit(1, "first").ok());
  ASSERT_TRUE(net.Submit(1, "second").ok());
  // Node 1 holds the token after Start? No: it forwarded it. Run until node 1
  // has broadcast both frames, dropping the first data frame for node 3.
  bool dropped = false;
  auto drop = [&](const Packet& p, NodeId to) {
    if (!dropped && !p.is_token() && p.from == 1 && to == 3) {
      dropped = true;
      return true;
    }
    return false;
  };
  // Step until node 3 received something past the gap.
  ASSERT_TRUE(
      net.RunUntil([&] { return net.ring(3).high_seq_received() >= 1 && dropped; }, 1000, drop));
  // Node 3 must not have delivered anything past its gap.
  for (const auto& d : net.delivered(3)) EXPECT_LE(d.frame_seq, net.ring(3).aru());
  ASSERT_TRUE(net.RunUntil([&] { return net.delivered(3).size() == 2; }, 10000));
  EXPECT_EQ(Payloads(net.delivered(3)), (std::vector<std::string>{"first", "second"}));
  EXPECT_GT(net.ring(3).counters().retransmit_requests, 0u);
  EXPECT_GT(
      net.ring(1).counters().retransmissions_sent + net.ring(2).counters().retransmissions_sent,
      0u);
}

TEST(SingleRing, SafeDeliveryWaitsUntilEveryMemberHasTheFrame) {
  FakeRing net({1, 2, 3}, NoHold);
  net.FormRing();
  ASSERT_TRUE(net.Submit(2, "safe-one", Guarantee::kSafe).ok());
  // Withhold every data frame from node 3 for a while.
  bool block = true;
  auto drop = [&](const Packet& p, NodeId to) { return block && !p.is_token() && to == 3; };
  for (int i = 0; i < 200; ++i) net.Step(drop);
  EXPECT_FALSE(net.ring(3).HasReceived(1));
  EXPECT_TRUE(net.ring(2).HasReceived(1));
  EXPECT_TRUE(net.delivered(1).empty());
  EXPECT_TRUE(net.delivered(2).empty());
  EXPECT_EQ(net.ring(1).safe_up_to(), 0u);
  block = false;
  ASSERT_TRUE(net.RunUntil([&] {
    return net.delivered(1).size() == 1 && net.delivered(2).size() == 1 &&
           net.delivered(3).size() == 1;
  }));
  for (NodeId id : {1u, 2u, 3u}) EXPECT_EQ(net.delivered(id)[0].guarantee, Guarantee::kSafe);
}

TEST(SingleRing, SafeFrameHoldsBackLaterAgreedFrames) {
  FakeRing net({1, 2}, NoHold);
  net.FormRing();
  ASSERT_TRUE(net.Submit(2, "s", Guarantee::kSafe).ok());
  // Step until node 2 broadcast the frame (its first visit).
  ASSERT_TRUE(net.RunUntil([&] { return net.ring(1).HasReceived(1); }));
  ASSERT_TRUE(net.Submit(1, "a", Guarantee::kAgreed).ok());
  ASSERT_TRUE(net.RunUntil([&] { return net.delivered(1).size() == 2; }));
  EXPECT_EQ(Payloads(net.delivered(1)), (std::vector<std::string>{"s", "a"}));
}

TEST(SingleRing, DuplicateTokensAreDiscarded) {
  FakeRing net({1, 2, 3}, NoHold);
  net.FormRing();
  net.SettleTokenTo(2);
  Packet token = net.queue().front();
  const uint64_t rotations = net.ring(2).counters().token_rotations;
  net.Step();
  EXPECT_EQ(net.ring(2).counters().token_rotations, rotations + 1);
  net.queue().push_back(token);  // the same token again
  net.queue().pop_front();       // drop node 2's forward so the queue holds only the duplicate
  net.Step();
  EXPECT_EQ(net.ring(2).counters().drop_duplicate_token, 1u);
  EXPECT_EQ(net.ring(2).counters().token_rotations, rotations + 1);
}

TEST(SingleRing, LostTokenIsRetransmittedByTheSender) {
  FakeRing net({1, 2, 3}, NoHold);
  net.FormRing();
  net.SettleTokenTo(2);
  ASSERT_TRUE(net.timer_armed(1, TimerId::kTokenRetransmit));
  net.queue().clear();  // the token to node 2 is lost
  net.Fire(1, TimerId::kTokenRetransmit);
  EXPECT_EQ(net.ring(1).counters().tokens_retransmitted, 1u);
  ASSERT_EQ(net.queue().size(), 1u);
  EXPECT_EQ(net.queue().front().to, 2u);
  // Repeated loss backs off: 2x, 4x, then capped at 8x the base interval.
  const uint64_t base = RingConfig{}.token_retransmit_us;
  EXPECT_EQ(net.timer_delay(1, TimerId::kTokenRetransmit), 2 * base);
  for (uint64_t want : {4 * base, 8 * base, 8 * base}) {
    net.queue().clear();
    net.Fire(1, TimerId::kTokenRetransmit);
    EXPECT_EQ(net.timer_delay(1, TimerId::kTokenRetransmit), want);
  }
  ASSERT_TRUE(net.Submit(3, "after-loss").ok());
  ASSERT_TRUE(net.RunUntil([&] { return net.delivered(1).size() == 1; }));
}

TEST(SingleRing, NewerFrameFromDownstreamStopsTokenRetransmission) {
  FakeRing net({1, 2, 3}, NoHold);
  net.FormRing();
  net.SettleTokenTo(2);
  ASSERT_TRUE(net.timer_armed(1, TimerId::kTokenRetransmit));
  ASSERT_TRUE(net.Submit(2, "x").ok());
  net.Step();  // node 2 takes the token, multicasts frame 1, forwards to 3
  ASSERT_FALSE(net.queue().front().is_token());
  net.Step();  // frame 1 reaches node 1: numbered past the token node 1 forwarded
  EXPECT_FALSE(net.timer_armed(1, TimerId::kTokenRetransmit));
  // A retransmit timer that fires anyway (already queued) re-sends nothing.
  const size_t queued = net.queue().size();
  net.Fire(1, TimerId::kTokenRetransmit);
  EXPECT_EQ(net.queue().size(), queued);
  EXPECT_EQ(net.ring(1).counters().tokens_retransmitted, 0u);
}

TEST(SingleRing, FlowControlLimitsFramesPerVisit) {
  FakeRing net({1, 2}, [](RingConfig& c) {
    NoHold(c);
    c.packing = false;
    c.window_size = 20;
    c.max_messages_per_visit = 5;
    c.receive_buffer_frames = 128;
  });
  net.FormRing();
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(net.Submit(2, "x" + std::to_string(i)).ok());
  // Count data frames between consecutive tokens from node 2.
  int max_run = 0, run = 0;
  for (int i = 0; i < 5000 && net.delivered(1).size() < 50; ++i) {
    if (net.queue().empty()) break;
    const Packet& p = net.queue().front();
    if (p.from == 2) {
      if (p.is_token()) {
        max_run = std::max(max_run, run);
        run = 0;
      } else {
        ++run;
      }
    }
    net.Step();
  }
  EXPECT_EQ(net.delivered(1).size(), 50u);
  EXPECT_EQ(max_run, 5);
}

TEST(SingleRing, BufferBoundStopsNewFramesWhileAMemberLags) {
  FakeRing net({1, 2, 3}, [](RingConfig& c) {
    NoHold(c);
    c.packing = false;
    c.window_size = 16;
    c.max_messages_per_visit = 16;
    c.receive_buffer_frames = 64;
  });
  net.FormRing();
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(net.Submit(1, "m" + std::to_string(i)).ok());
  // Node 3 receives no data at all: nothing can become safe, so nobody may
  // run more than the buffer allows past what node 3 has.
  auto drop = [](const Packet& p, NodeId to) { return !p.is_token() && to == 3; };
  for (int i = 0; i < 5000; ++i) net.Step(drop);
  EXPECT_LE(net.ring(1).high_seq_received(), 64u);
  EXPECT_LE(net.ring(1).buffered_frames(), 64u);
  EXPECT_GT(net.ring(3).counters().retransmit_requests, 0u);
  ASSERT_TRUE(net.RunUntil([&] { return net.delivered(3).size() == 200; }, 200000));
  EXPECT_EQ(Payloads(net.delivered(3)), Payloads(net.delivered(1)));
}

TEST(SingleRing, IdleRepresentativeHoldsTokenAndHoldCancelReleasesIt) {
  FakeRing net({1, 2, 3});
  net.FormRing();
  ASSERT_TRUE(net.RunUntil([&] { return net.ring(1).holding_token(); }, 1000));
  EXPECT_TRUE(net.queue().empty());
  EXPECT_TRUE(net.timer_armed(1, TimerId::kTokenHold));
  EXPECT_EQ(net.ring(1).counters().token_holds, 1u);
  // A submit on node 3 multicasts a HoldCancel; node 1 releases the token.
  ASSERT_TRUE(net.Submit(3, "wake").ok());
  ASSERT_EQ(net.queue().size(), 1u);
  net.Step();
  EXPECT_FALSE(net.ring(1).holding_token());
  ASSERT_TRUE(net.RunUntil([&] { return net.delivered(1).size() == 1; }, 100));
  // The hold timer also releases it.
  ASSERT_TRUE(net.RunUntil([&] { return net.ring(1).holding_token(); }, 1000));
  net.Fire(1, TimerId::kTokenHold);
  EXPECT_FALSE(net.ring(1).holding_token());
}

TEST(SingleRing, HoldCancelThatOvertakesTheTokenPreventsTheHold) {
  FakeRing net({1, 2, 3});
  net.FormRing();
  ASSERT_TRUE(net.RunUntil([&] { return net.ring(1).holding_token(); }, 1000));
  net.Fire(1, TimerId::kTokenHold);  // token moves on: 1 -> 2
  ASSERT_EQ(net.queue().size(), 1u);
  net.Step();  // node 2 forwards to 3
  net.Step();  // node 3 forwards to 1; the token is now in flight to 1
  ASSERT_EQ(net.queue().size(), 1u);
  ASSERT_TRUE(net.Submit(2, "late").ok());  // node 2's cancel is queued behind the token
  ASSERT_EQ(net.queue().size(), 2u);
  std::swap(net.queue().front(), net.queue().back());  // ... and overtakes it
  net.Step();                                          // node 1 sees the cancel, not holding
  net.Step();                                          // then the token: must not hold
  EXPECT_FALSE(net.ring(1).holding_token());
  ASSERT_TRUE(net.RunUntil([&] { return net.delivered(1).size() == 1; }, 100));
}

TEST(SingleRing, RepresentativeSubmitWhileHoldingSendsAtOnce) {
  FakeRing net({1, 2});
  net.FormRing();
  ASSERT_TRUE(net.RunUntil([&] { return net.ring(1).holding_token(); }, 1000));
  ASSERT_TRUE(net.Submit(1, "mine").ok());
  EXPECT_FALSE(net.ring(1).holding_token());
  ASSERT_TRUE(net.RunUntil([&] { return net.delivered(2).size() == 1; }, 100));
}

TEST(SingleRing, SingleNodeRingDeliversItsOwnMessages) {
  FakeRing net({7}, NoHold);
  net.FormRing();
  ASSERT_TRUE(net.Submit(7, "solo", Guarantee::kSafe).ok());
  ASSERT_TRUE(net.RunUntil([&] { return net.delivered(7).size() == 1; }, 100));
  EXPECT_EQ(net.delivered(7)[0].payload, "solo");
}

TEST(SingleRing, ForeignAndBogusFramesAreCountedAndDropped) {
  FakeRing net({1, 2}, NoHold);
  net.FormRing();
  std::vector<uint8_t> buf;
  core::EncodeHoldCancel(2, RingId{1, 0}, buf);  // a member's stale, older ring
  auto& r = net.ring(1);
  struct Null : core::Output {
    void Unicast(NodeId, std::span<const uint8_t>) override {}
    void Multicast(std::span<const uint8_t>) override {}
    void SetTimer(TimerId, uint64_t) override {}
    void CancelTimer(TimerId) override {}
    void Deliver(const Delivery&) override {}
    void DeliverConfiguration(const ConfigurationEvent&) override {}
  } null;
  r.HandleFrame(buf, 0, null);
  EXPECT_EQ(r.counters().drop_foreign_ring, 1u);
  core::EncodeHoldCancel(9, RingId{1, 1}, buf);  // not a member
  r.HandleFrame(buf, 0, null);
  EXPECT_EQ(r.counters().drop_unknown_sender, 1u);
  buf = {'T', 'K'};
  r.HandleFrame(buf, 0, null);
  EXPECT_EQ(r.counters().drop_malformed, 1u);
  buf = {'X', 'X', 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  r.HandleFrame(buf, 0, null);
  EXPECT_EQ(r.counters().drop_bad_version, 1u);
}

TEST(SingleRing, SubmitErrors) {
  FakeRing net({1, 2}, [](RingConfig& c) {
    NoHold(c);
    c.max_message_bytes = 100;
    c.max_pending_bytes = 250;
  });
  net.FormRing();
  EXPECT_EQ(net.Submit(2, std::string(101, 'x')).code(), StatusCode::kResourceExhausted);
  EXPECT_TRUE(net.Submit(2, std::string(100, 'x')).ok());
  EXPECT_TRUE(net.Submit(2, std::string(100, 'x')).ok());
  EXPECT_EQ(net.Submit(2, std::string(100, 'x')).code(), StatusCode::kWouldBlock);
  EXPECT_EQ(net.ring(2).counters().submits_would_block, 1u);
}

// --- membership and extended virtual synchrony ---

TEST(Membership, CrashedNodeIsExcludedWithTransitionalThenRegularConfiguration) {
  FakeRing net({1, 2, 3});
  net.FormRing();
  const uint64_t crashed_at = net.now();
  net.Crash(3);
  ASSERT_TRUE(net.RunUntil([&] { return net.OneRing({1, 2}); }));
  // The crashed node's predecessor named it failed: no consensus timeout,
  // the new ring was installed within about one token timeout.
  EXPECT_EQ(net.ring(1).counters().consensus_timeouts, 0u);
  EXPECT_EQ(net.ring(2).counters().consensus_timeouts, 0u);
  EXPECT_LT(net.now() - crashed_at, RingConfig{}.token_timeout_us + RingConfig{}.join_timeout_us);
  for (NodeId id : {1u, 2u}) {
    const auto& c = net.configs(id);
    ASSERT_EQ(c.size(), 3u);
    EXPECT_EQ(c[1].kind, ConfigurationKind::kTransitional);
    EXPECT_EQ(c[1].members, (std::vector<NodeId>{1, 2}));
    EXPECT_EQ(c[1].left, (std::vector<NodeId>{3}));
    EXPECT_EQ(c[2].kind, ConfigurationKind::kRegular);
    EXPECT_EQ(c[2].members, (std::vector<NodeId>{1, 2}));
    EXPECT_EQ(c[2].id, c[1].id);
    EXPECT_GT(c[2].id.seq, c[0].id.seq);
    EXPECT_TRUE(c[2].joined.empty());
    EXPECT_EQ(c[2].left, (std::vector<NodeId>{3}));
  }
  EXPECT_EQ(net.configs(1)[2].id, net.configs(2)[2].id);
  // The survivors keep ordering.
  ASSERT_TRUE(net.Submit(2, "after").ok());
  ASSERT_TRUE(net.RunUntil([&] { return net.delivered(1).size() == 1; }));
  EXPECT_EQ(net.delivered(1)[0].payload, "after");
}

TEST(Membership, MessagesInFlightAtACrashAreDeliveredAlikeBySurvivors) {
  FakeRing net({1, 2, 3, 4});
  net.FormRing();
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(net.Submit(1 + i % 4, "m" + std::to_string(i),
                           i % 3 == 0 ? Guarantee::kSafe : Guarantee::kAgreed)
                    .ok());
  }
  // Let some traffic through, losing node 4's frames to node 2, then crash 4.
  auto drop = [](const Packet& p, NodeId to) { return p.from == 4 && to == 2 && p.is_data(); };
  for (int i = 0; i < 30; ++i) net.Step(drop);
  net.Crash(4);
  ASSERT_TRUE(net.RunUntil([&] { return net.OneRing({1, 2, 3}); }, 100000, drop));
  ASSERT_TRUE(net.RunUntil([&] {
    return net.delivered(1).size() == net.delivered(2).size() &&
           net.delivered(2).size() == net.delivered(3).size() && net.ring(1).pending_bytes() == 0 &&
           net.ring(2).pending_bytes() == 0 && net.ring(3).pending_bytes() == 0 &&
           net.ring(1).aru() == net.ring(1).high_seq_received() &&
           net.ring(1).delivered_up_to() == net.ring(1).aru();
  }));
  // Failure atomicity: the survivors delivered the same messages in the
  // same order, in the same configurations.
  for (NodeId id : {2u, 3u}) {
    ASSERT_EQ(net.delivered(id).size(), net.delivered(1).size());
    for (size_t i = 0; i < net.delivered(1).size(); ++i) {
      EXPECT_EQ(net.delivered(id)[i].payload, net.delivered(1)[i].payload);
    }
  }
  // Self-delivery: every message of a survivor was delivered.
  size_t mine = 0;
  for (const auto& d : net.delivered(1)) mine += d.sender != 4;
  EXPECT_EQ(mine, 30u);
}

TEST(Membership, RestartedNodeRejoinsWithAHigherRingSeq) {
  FakeRing net({1, 2, 3});
  net.FormRing();
  const RingId first = net.ring(1).ring_id();
  net.Crash(2);
  ASSERT_TRUE(net.RunUntil([&] { return net.OneRing({1, 3}); }));
  net.Restart(2);
  ASSERT_TRUE(net.RunUntil([&] { return net.OneRing({1, 2, 3}); }));
  EXPECT_GT(net.ring(2).ring_id().seq, first.seq + 1);
  ASSERT_TRUE(net.Submit(2, "back").ok());
  ASSERT_TRUE(net.RunUntil([&] { return net.delivered(3).size() == 1; }));
  EXPECT_EQ(net.delivered(3)[0].payload, "back");
  ASSERT_FALSE(net.configs(2).empty());
  EXPECT_EQ(net.configs(2).back().members, (std::vector<NodeId>{1, 2, 3}));
}

TEST(Membership, PartitionsKeepWorkingAndRemerge) {
  FakeRing net({1, 2, 3, 4, 5});
  net.FormRing();
  net.Partition({{1, 2, 3}, {4, 5}});
  ASSERT_TRUE(net.RunUntil([&] { return net.OneRing({1, 2, 3}) && net.OneRing({4, 5}); }));
  ASSERT_TRUE(net.Submit(1, "majority").ok());
  ASSERT_TRUE(net.Submit(5, "minority").ok());
  ASSERT_TRUE(net.RunUntil([&] { return !net.delivered(3).empty() && !net.delivered(4).empty(); }));
  EXPECT_EQ(net.delivered(3).back().payload, "majority");
  EXPECT_EQ(net.delivered(4).back().payload, "minority");
  net.Heal();
  ASSERT_TRUE(net.RunUntil([&] { return net.OneRing({1, 2, 3, 4, 5}); }));
  ASSERT_TRUE(net.Submit(4, "merged").ok());
  ASSERT_TRUE(net.RunUntil([&] { return net.delivered(1).back().payload == "merged"; }));
  const auto& last = net.configs(1).back();
  EXPECT_EQ(last.kind, ConfigurationKind::kRegular);
  EXPECT_EQ(last.joined, (std::vector<NodeId>{4, 5}));
}

TEST(Membership, NodeAloneFormsASingletonRingAfterTheConsensusTimeout) {
  FakeRing net({1, 2, 3});
  net.Crash(2);
  net.Crash(3);
  net.StartAll();
  ASSERT_TRUE(net.RunUntil([&] { return net.OneRing({1}); }));
  EXPECT_GE(net.now(), RingConfig{}.consensus_timeout_us);
  ASSERT_TRUE(net.Submit(1, "solo", Guarantee::kSafe).ok());
  ASSERT_TRUE(net.RunUntil([&] { return net.delivered(1).size() == 1; }));
}

TEST(Membership, JoinAndCommitTokenWireRoundTrip) {
  core::Join j;
  j.ring_seq = 42;
  j.proc = {1, 2, 5};
  j.fail = {5};
  std::vector<uint8_t> buf;
  core::EncodeJoin(2, RingId{1, 41}, j, buf);
  core::Reader r(buf);
  core::Header h;
  ASSERT_EQ(core::DecodeHeader(r, h), core::DecodeResult::kOk);
  core::Join got;
  ASSERT_EQ(core::DecodeJoinBody(r, got), core::DecodeResult::kOk);
  EXPECT_EQ(got.proc, j.proc);
  EXPECT_EQ(got.fail, j.fail);
  EXPECT_EQ(got.ring_seq, 42u);
  for (size_t n = core::kHeaderBytes; n < buf.size(); ++n) {
    core::Reader t(std::span<const uint8_t>(buf.data(), n));
    ASSERT_EQ(core::DecodeHeader(t, h), core::DecodeResult::kOk);
    EXPECT_NE(core::DecodeJoinBody(t, got), core::DecodeResult::kOk) << n;
  }
  j.proc = {2, 1};  // not ascending
  core::EncodeJoin(2, RingId{1, 41}, j, buf);
  core::Reader bad(buf);
  ASSERT_EQ(core::DecodeHeader(bad, h), core::DecodeResult::kOk);
  EXPECT_EQ(core::DecodeJoinBody(bad, got), core::DecodeResult::kMalformed);

  core::CommitToken ct;
  ct.ring_id = RingId{1, 43};
  ct.rotation = 2;
  ct.index = 1;
  ct.entries = {core::CommitEntry{1, RingId{1, 41}, 10, 12, 9, true},
                core::CommitEntry{3, RingId{3, 40}, 0, 0, 0, true}};
  core::EncodeCommitToken(1, ct, buf);
  core::Reader cr(buf);
  ASSERT_EQ(core::DecodeHeader(cr, h), core::DecodeResult::kOk);
  core::CommitToken got_ct;
  ASSERT_EQ(core::DecodeCommitTokenBody(cr, got_ct), core::DecodeResult::kOk);
  ASSERT_EQ(got_ct.entries.size(), 2u);
  EXPECT_EQ(got_ct.entries[0].old_ring, (RingId{1, 41}));
  EXPECT_EQ(got_ct.entries[0].high_seq, 12u);
  EXPECT_EQ(got_ct.rotation, 2);
  for (size_t n = core::kHeaderBytes; n < buf.size(); ++n) {
    core::Reader t(std::span<const uint8_t>(buf.data(), n));
    ASSERT_EQ(core::DecodeHeader(t, h), core::DecodeResult::kOk);
    EXPECT_NE(core::DecodeCommitTokenBody(t, got_ct), core::DecodeResult::kOk) << n;
  }
}

TEST(Membership, ForeignFrameFromANewerRingStartsAMerge) {
  FakeRing net({1, 2, 3}, NoHold);
  net.FormRing();
  std::vector<uint8_t> buf;
  core::EncodeMergeDetect(2, RingId{2, 99}, buf);
  net.SettleTokenTo(3);
  net.queue().push_front(Packet{2, 1, buf});
  net.Step();
  EXPECT_EQ(net.ring(1).counters().merges_detected, 1u);
  EXPECT_EQ(net.ring(1).membership_state(), core::MembershipState::kGather);
  ASSERT_TRUE(net.RunUntil([&] { return net.OneRing({1, 2, 3}); }));
}

TEST(Membership, MemberThatKeepsFailingToReceiveIsExcluded) {
  FakeRing net({1, 2, 3}, NoHold);
  net.FormRing();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(net.Submit(1, "m" + std::to_string(i)).ok());
  // Node 3 gets tokens but no data at all: it holds the aru down forever.
  bool deaf = true;
  auto drop = [&](const Packet& p, NodeId to) { return deaf && to == 3 && p.is_data(); };
  const uint64_t start = net.now();
  ASSERT_TRUE(net.RunUntil([&] { return net.OneRing({1, 2}); }, 2000000, drop));
  EXPECT_GE(net.now() - start, RingConfig{}.fail_to_recv_us);
  EXPECT_EQ(net.ring(1).counters().failed_to_receive + net.ring(2).counters().failed_to_receive,
            1u);
  // Once it hears again it merges back in.
  deaf = false;
  ASSERT_TRUE(net.RunUntil([&] { return net.OneRing({1, 2, 3}); }, 2000000, drop));
}

TEST(Membership, LateTokenLossTimerIsAPauseNotAFailure) {
  FakeRing net({1, 2, 3}, NoHold);
  net.FormRing();
  net.SettleTokenTo(2);
  net.Advance(10 * RingConfig{}.token_timeout_us);  // node 1 was descheduled
  net.Fire(1, TimerId::kTokenLoss);
  EXPECT_EQ(net.ring(1).counters().pauses_detected, 1u);
  EXPECT_EQ(net.ring(1).membership_state(), core::MembershipState::kOperational);
  ASSERT_TRUE(net.Submit(3, "still one ring").ok());
  ASSERT_TRUE(net.RunUntil([&] { return net.delivered(1).size() == 1; }));
  EXPECT_EQ(net.ring(1).counters().gathers, 1u);  // only the one that formed the ring
}

TEST(Membership, RepresentativeCrashWhileHoldingAfterAnsweringARetransmissionFailsOverFast) {
  FakeRing net({1, 2, 3, 4, 5});
  net.FormRing();
  ASSERT_TRUE(net.RunUntil([&] { return net.ring(1).holding_token(); }));
  // Node 5 retransmits the token it gave the holding representative, which
  // answers with a TokenAck: alive at that moment ...
  net.Fire(5, TimerId::kTokenRetransmit);
  while (net.Step()) {
  }
  EXPECT_EQ(net.ring(1).counters().drop_duplicate_token, 1u);
  // ... and dead right after.
  const uint64_t crashed_at = net.now();
  net.Crash(1);
  ASSERT_TRUE(net.RunUntil([&] { return net.OneRing({2, 3, 4, 5}); }));
  for (NodeId id : {2u, 3u, 4u, 5u}) EXPECT_EQ(net.ring(id).counters().consensus_timeouts, 0u);
  EXPECT_LT(net.now() - crashed_at, RingConfig{}.TokenTimeoutUs(5) + RingConfig{}.join_timeout_us);
}

}  // namespace
}  // namespace totem::testing
