#include "store/erase_runs.h"

#include <gtest/gtest.h>

namespace pincer {
namespace {

TEST(EraseRunsTest, ConsecutiveErasesOfOneSegmentAreOneRun) {
  EraseRuns runs;
  for (TaskId id = 1; id <= 1000; ++id) runs.Add(id, 7);
  EXPECT_EQ(runs.runs(), 1u);
  EXPECT_EQ(runs.SegmentOf(1), 7u);
  EXPECT_EQ(runs.SegmentOf(1000), 7u);
  EXPECT_EQ(runs.SegmentOf(1001), 0u);
  EXPECT_EQ(runs.SegmentOf(0), 0u);
}

TEST(EraseRunsTest, ErasesOutOfOrderJoinTheirNeighbours) {
  EraseRuns runs;
  runs.Add(5, 2);
  runs.Add(3, 2);
  EXPECT_EQ(runs.runs(), 2u);
  EXPECT_EQ(runs.SegmentOf(4), 0u);
  runs.Add(4, 2);  // closes the gap
  EXPECT_EQ(runs.runs(), 1u);
  runs.Add(2, 2);  // before the first
  EXPECT_EQ(runs.runs(), 1u);
  EXPECT_EQ(runs.SegmentOf(2), 2u);
  EXPECT_EQ(runs.SegmentOf(5), 2u);
  EXPECT_EQ(runs.SegmentOf(6), 0u);
}

TEST(EraseRunsTest, ANewSegmentStartsANewRun) {
  EraseRuns runs;
  runs.Add(1, 1);
  runs.Add(2, 1);
  runs.Add(3, 2);
  EXPECT_EQ(runs.runs(), 2u);
  EXPECT_EQ(runs.SegmentOf(2), 1u);
  EXPECT_EQ(runs.SegmentOf(3), 2u);
}

TEST(EraseRunsTest, ALaterSegmentWinsAndSplitsTheRun) {
  EraseRuns runs;
  for (TaskId id = 10; id <= 20; ++id) runs.Add(id, 3);
  runs.Add(15, 4);
  EXPECT_EQ(runs.SegmentOf(14), 3u);
  EXPECT_EQ(runs.SegmentOf(15), 4u);
  EXPECT_EQ(runs.SegmentOf(16), 3u);
  EXPECT_EQ(runs.runs(), 3u);
  runs.Add(15, 2);  // an older segment does not override
  EXPECT_EQ(runs.SegmentOf(15), 4u);
}

TEST(EraseRunsTest, DroppingFoldedSegmentsKeepsNewerOnes) {
  EraseRuns runs;
  runs.Add(1, 1);
  runs.Add(2, 2);
  runs.Add(3, 3);
  runs.DropUpTo(2);
  EXPECT_EQ(runs.SegmentOf(1), 0u);
  EXPECT_EQ(runs.SegmentOf(2), 0u);
  EXPECT_EQ(runs.SegmentOf(3), 3u);
  runs.clear();
  EXPECT_EQ(runs.SegmentOf(3), 0u);
}

}  // namespace
}  // namespace pincer
