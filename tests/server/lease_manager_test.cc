// Unit tests of the pure lease expiry scheduling (ExpirySchedule, RankOf):
// who proposes which expiry when, with `now` passed in — no clock, no
// threads.
#include "lease_manager.h"

#include <gtest/gtest.h>

namespace totemkv::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Expiry = ExpirySchedule::Expiry;
using TimePoint = ExpirySchedule::TimePoint;

class ExpiryScheduleTest : public ::testing::Test {
 protected:
  static LeaseExpiryOptions Options() {
    LeaseExpiryOptions o;
    o.grace_period = milliseconds(500);
    o.retry_interval = milliseconds(2000);
    return o;
  }
  ExpirySchedule schedule_{Options()};
  const TimePoint t0_ = TimePoint(seconds(1000));
};

TEST_F(ExpiryScheduleTest, NextWake_EmptyIsNothing) {
  EXPECT_FALSE(schedule_.NextWake(0).has_value());
  EXPECT_TRUE(schedule_.TakeDue(0, t0_ + seconds(100)).empty());
}

TEST_F(ExpiryScheduleTest, TakeDue_LowestRankProposesAtTheDeadline) {
  schedule_.Renewed(7, 3, 2, t0_);
  EXPECT_EQ(schedule_.Deadline(7), t0_ + seconds(2));
  EXPECT_EQ(schedule_.NextWake(0), t0_ + seconds(2));
  EXPECT_TRUE(schedule_.TakeDue(0, t0_ + seconds(2) - milliseconds(1)).empty());
  EXPECT_EQ(schedule_.TakeDue(0, t0_ + seconds(2)), (std::vector<Expiry>{{7, 3}}));
}

TEST_F(ExpiryScheduleTest, TakeDue_RankKWaitsKGracePeriods) {
  schedule_.Renewed(7, 3, 2, t0_);
  const TimePoint deadline = t0_ + seconds(2);
  EXPECT_EQ(schedule_.NextWake(2), deadline + milliseconds(1000));
  EXPECT_TRUE(schedule_.TakeDue(2, deadline).empty());
  EXPECT_TRUE(schedule_.TakeDue(2, deadline + milliseconds(999)).empty());
  EXPECT_EQ(schedule_.TakeDue(2, deadline + milliseconds(1000)), (std::vector<Expiry>{{7, 3}}));
}

TEST_F(ExpiryScheduleTest, TakeDue_SameGenerationNotReproposedWithinRetryInterval) {
  schedule_.Renewed(7, 3, 1, t0_);
  const TimePoint first = t0_ + seconds(1);
  ASSERT_EQ(schedule_.TakeDue(0, first).size(), 1u);
  EXPECT_EQ(schedule_.NextWake(0), first + milliseconds(2000));
  EXPECT_TRUE(schedule_.TakeDue(0, first).empty());
  EXPECT_TRUE(schedule_.TakeDue(0, first + milliseconds(1999)).empty());
  EXPECT_EQ(schedule_.TakeDue(0, first + milliseconds(2000)), (std::vector<Expiry>{{7, 3}}));
  EXPECT_EQ(schedule_.NextWake(0), first + milliseconds(4000));
}

TEST_F(ExpiryScheduleTest, Renewed_NewGenerationMovesTheDeadlineAndClearsTheRetry) {
  schedule_.Renewed(7, 3, 2, t0_);
  ASSERT_EQ(schedule_.TakeDue(0, t0_ + seconds(2)).size(), 1u);
  // A keep-alive ordered before our expiry: new generation, new deadline.
  schedule_.Renewed(7, 4, 2, t0_ + seconds(2));
  EXPECT_EQ(schedule_.Generation(7), 4u);
  EXPECT_EQ(schedule_.NextWake(0), t0_ + seconds(4));
  EXPECT_TRUE(schedule_.TakeDue(0, t0_ + seconds(3)).empty());
  EXPECT_EQ(schedule_.TakeDue(0, t0_ + seconds(4)), (std::vector<Expiry>{{7, 4}}));
}

TEST_F(ExpiryScheduleTest, Renewed_OlderGenerationIsIgnored) {
  schedule_.Renewed(7, 5, 10, t0_);
  schedule_.Renewed(7, 4, 1, t0_ + seconds(1));  // a stale startup snapshot
  EXPECT_EQ(schedule_.Generation(7), 5u);
  EXPECT_EQ(schedule_.Deadline(7), t0_ + seconds(10));
}

TEST_F(ExpiryScheduleTest, Removed_Unschedules) {
  schedule_.Renewed(7, 3, 1, t0_);
  schedule_.Renewed(8, 4, 1, t0_);
  ASSERT_EQ(schedule_.TakeDue(0, t0_ + seconds(1)).size(), 2u);
  schedule_.Removed(7);
  schedule_.Removed(8);
  schedule_.Removed(9);  // unknown: nothing happens
  EXPECT_EQ(schedule_.size(), 0u);
  EXPECT_FALSE(schedule_.NextWake(0).has_value());
  EXPECT_FALSE(schedule_.Deadline(7).has_value());
}

TEST_F(ExpiryScheduleTest, TakeDue_OnlyPassedDeadlinesOldestFirst) {
  schedule_.Renewed(1, 1, 5, t0_);
  schedule_.Renewed(2, 2, 1, t0_);
  schedule_.Renewed(3, 3, 3, t0_);
  EXPECT_EQ(schedule_.NextWake(0), t0_ + seconds(1));
  EXPECT_EQ(schedule_.TakeDue(0, t0_ + seconds(3)), (std::vector<Expiry>{{2, 2}, {3, 3}}));
  EXPECT_EQ(schedule_.NextWake(0), t0_ + seconds(5));
}

TEST_F(ExpiryScheduleTest, Renewed_HugeTtlDoesNotOverflow) {
  schedule_.Renewed(1, 1, kMaxLeaseTtlSeconds, t0_);
  ASSERT_TRUE(schedule_.NextWake(5).has_value());
  EXPECT_GT(*schedule_.NextWake(5), t0_ + seconds(kMaxDeadlineSeconds) - seconds(1));
  EXPECT_TRUE(schedule_.TakeDue(5, t0_ + seconds(365LL * 24 * 3600)).empty());
}

TEST(RankOfTest, IndexInSortedMembersOrSizeWhenAbsent) {
  EXPECT_EQ(RankOf(1, {1, 2, 3}), 0u);
  EXPECT_EQ(RankOf(3, {1, 2, 3}), 2u);
  EXPECT_EQ(RankOf(2, {2, 3}), 0u);  // node 1 left: node 2 proposes first
  EXPECT_EQ(RankOf(4, {1, 2, 3}), 3u);
  EXPECT_EQ(RankOf(1, {}), 0u);
}

}  // namespace
}  // namespace totemkv::server
