// The dashboard's 15-minute window of task ends (src/metrics/timeline.h):
// counts per 10-second slot by end state, p50/p99 from a log histogram,
// old slots reused, ends older than the window ignored.
#include "metrics/timeline.h"

#include <gtest/gtest.h>

namespace pincer {
namespace {

constexpr int64_t kNow = 1'800'000'000'000;  // a slot boundary (ms)

TEST(TimelineTest, BucketsCoverDurationsWithinTenPercent) {
  for (double ms : {1.0, 1.5, 7.0, 26.0, 999.0, 1000.0, 61'000.0, 3'600'000.0}) {
    const double v = Timeline::BucketValue(Timeline::Bucket(ms));
    EXPECT_NEAR(v, ms, ms * 0.1) << ms;
  }
  EXPECT_EQ(Timeline::Bucket(0), 0u);
  EXPECT_EQ(Timeline::Bucket(0.3), 0u);
  EXPECT_EQ(Timeline::Bucket(-5), 0u);
  EXPECT_EQ(Timeline::Bucket(1e12), Timeline::kBuckets - 1);
  EXPECT_LT(Timeline::Bucket(10), Timeline::Bucket(11));
}

TEST(TimelineTest, CountsEndsPerSlotByState) {
  Timeline t;
  t.Record(TaskState::kSucceeded, kNow + 100, 0.02);
  t.Record(TaskState::kSucceeded, kNow + 9'999, 0.02);
  t.Record(TaskState::kFailed, kNow + 5'000, 1.0);
  t.Record(TaskState::kTimedOut, kNow - 1, 30.0);  // the slot before
  t.Record(TaskState::kQueued, kNow, 1.0);         // not an end: ignored
  const auto v = t.View(kNow + 9'999);
  ASSERT_EQ(v["ended"]["succeeded"].size(), Timeline::kSlots);
  EXPECT_EQ(v["start_ms"], kNow - (Timeline::kSlots - 1) * Timeline::kSlotMs);
  EXPECT_EQ(v["ended"]["succeeded"].back(), 2);
  EXPECT_EQ(v["ended"]["failed"].back(), 1);
  EXPECT_EQ(v["ended"]["timed_out"][Timeline::kSlots - 2], 1);
  EXPECT_EQ(v["ended"]["cancelled"].back(), 0);
  EXPECT_TRUE(v["p50_seconds"][0].is_null());
}

TEST(TimelineTest, QuantilesOfASlot) {
  Timeline t;
  for (int i = 0; i < 98; ++i) t.Record(TaskState::kSucceeded, kNow, 0.1);
  t.Record(TaskState::kFailed, kNow, 10.0);
  t.Record(TaskState::kFailed, kNow, 10.0);
  const auto v = t.View(kNow);
  EXPECT_NEAR(v["p50_seconds"].back().get<double>(), 0.1, 0.01);
  EXPECT_NEAR(v["p99_seconds"].back().get<double>(), 10.0, 1.0);
}

TEST(TimelineTest, OldSlotsAreReusedAndOldEndsIgnored) {
  Timeline t;
  t.Record(TaskState::kSucceeded, kNow, 1);
  const int64_t later = kNow + Timeline::kSlots * Timeline::kSlotMs;  // the same ring slot
  t.Record(TaskState::kFailed, later, 1);
  t.Record(TaskState::kSucceeded, kNow, 1);  // older than the window now
  const auto v = t.View(later);
  EXPECT_EQ(v["ended"]["failed"].back(), 1);
  EXPECT_EQ(v["ended"]["succeeded"].back(), 0);
  int total = 0;
  for (const auto& n : v["ended"]["succeeded"]) total += n.get<int>();
  EXPECT_EQ(total, 0);
  // Fifteen minutes on, with nothing ended since, the window is empty.
  const auto empty = t.View(later + Timeline::kSlots * Timeline::kSlotMs);
  for (const auto& n : empty["ended"]["failed"]) EXPECT_EQ(n, 0);
}

}  // namespace
}  // namespace pincer
