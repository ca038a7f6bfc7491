// TaskTable: tasks by id in a sliding window of pages.
#include "core/task_table.h"

#include <gtest/gtest.h>

#include <vector>

namespace pincer {
namespace {

std::unique_ptr<Task> MakeTask(TaskId id) {
  auto t = std::make_unique<Task>();
  t->rec.id = id;
  return t;
}

std::vector<TaskId> Ids(const TaskTable& table) {
  std::vector<TaskId> ids;
  table.ForEachLive([&](const Task& t) { ids.push_back(t.rec.id); });
  return ids;
}

TEST(TaskTableTest, FindsInsertedTasksAndNothingElse) {
  TaskTable table;
  for (TaskId id = 1; id <= 3000; ++id) table.Insert(MakeTask(id));
  EXPECT_EQ(table.size(), 3000u);
  EXPECT_EQ(table.Find(1)->rec.id, 1u);
  EXPECT_EQ(table.Find(1024)->rec.id, 1024u);
  EXPECT_EQ(table.Find(3000)->rec.id, 3000u);
  EXPECT_EQ(table.Find(0), nullptr);
  EXPECT_EQ(table.Find(3001), nullptr);
  EXPECT_EQ(table.Find(1'000'000), nullptr);
}

TEST(TaskTableTest, TakeHandsTheTaskBackOnce) {
  TaskTable table;
  table.Insert(MakeTask(7));
  auto t = table.Take(7);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->rec.id, 7u);
  EXPECT_EQ(table.Find(7), nullptr);
  EXPECT_EQ(table.Take(7), nullptr);
  EXPECT_EQ(table.Take(8), nullptr);
  EXPECT_EQ(table.size(), 0u);
}

TEST(TaskTableTest, TheWindowSlidesAsOldTasksLeaveAndKeepsLongLivedOnes) {
  TaskTable table;
  table.Insert(MakeTask(5));  // a long-running task
  for (TaskId id = 6; id < 10'000; ++id) table.Insert(MakeTask(id));
  for (TaskId id = 6; id < 9'000; ++id) ASSERT_NE(table.Take(id), nullptr);
  EXPECT_EQ(table.size(), 1001u);
  EXPECT_EQ(table.Find(5)->rec.id, 5u);
  EXPECT_EQ(table.Find(9'500)->rec.id, 9'500u);
  ASSERT_NE(table.Take(5), nullptr);
  for (TaskId id = 9'000; id < 10'000; ++id) ASSERT_NE(table.Take(id), nullptr);
  EXPECT_EQ(table.size(), 0u);
  // Empty again: any id can come next, even an older one.
  table.Insert(MakeTask(20'000));
  table.Insert(MakeTask(3));
  EXPECT_EQ(Ids(table), (std::vector<TaskId>{3, 20'000}));
}

TEST(TaskTableTest, IteratesInIdOrder) {
  TaskTable table;
  for (TaskId id : {2050u, 3u, 1025u, 4u}) table.Insert(MakeTask(id));
  EXPECT_EQ(Ids(table), (std::vector<TaskId>{3, 4, 1025, 2050}));
}

TEST(TaskTableTest, AnEndedTaskIsFoundByItsRecordUntilErasedWithThatRecord) {
  TaskTable table;
  table.Insert(MakeTask(1));
  table.Insert(MakeTask(2));
  auto t = table.Archive(1, /*ref=*/40);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->rec.id, 1u);
  EXPECT_EQ(table.Find(1), nullptr) << "not live any more";
  EXPECT_EQ(table.FindEnded(1), 40u);
  EXPECT_EQ(table.FindEnded(2), 0u) << "live";
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.Take(1), nullptr) << "Take is for live tasks";
  EXPECT_FALSE(table.EraseEnded(1, 39)) << "another record of the same id";
  EXPECT_TRUE(table.EraseEnded(1, 40));
  EXPECT_FALSE(table.EraseEnded(1, 40));
  EXPECT_EQ(table.FindEnded(1), 0u);
  EXPECT_EQ(table.size(), 1u);
}

TEST(TaskTableTest, ARevivedTaskIsLiveAgainAndItsOldRecordNoLongerErasesIt) {
  TaskTable table;
  table.InsertEnded(9, 3);  // as recovery brings an ended task
  EXPECT_EQ(table.FindEnded(9), 3u);
  table.Revive(MakeTask(9));
  EXPECT_EQ(table.Find(9)->rec.id, 9u);
  EXPECT_EQ(table.FindEnded(9), 0u);
  EXPECT_FALSE(table.EraseEnded(9, 3));
  EXPECT_NE(table.Find(9), nullptr);
}

TEST(TaskTableTest, SlotsIterateInIdOrderLiveAndEnded) {
  TaskTable table;
  table.Insert(MakeTask(2000));
  table.InsertEnded(5, 1);
  table.Insert(MakeTask(7));
  std::vector<std::pair<TaskId, bool>> seen;  // id, live
  table.ForEachSlot([&](TaskId id, Task* live, TaskTable::EndedRef ended) {
    EXPECT_NE(live != nullptr, ended != 0);
    seen.emplace_back(id, live != nullptr);
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::pair<TaskId, bool>>{{5, false}, {7, true}, {2000, true}}));
  EXPECT_EQ(Ids(table), (std::vector<TaskId>{7, 2000}));
  int visited = 0;
  table.ForEachSlot([&](TaskId, Task*, TaskTable::EndedRef) { return ++visited < 2; });
  EXPECT_EQ(visited, 2) << "stops when told";
}

// The table's rules are checked in every build (Release included): a call
// that breaks one is refused and changes nothing, instead of overwriting a
// slot or dereferencing an empty one.
TEST(TaskTableTest, RefusesCallsThatBreakItsRulesAndChangesNothing) {
  TaskTable table;
  ASSERT_NE(table.Insert(MakeTask(4)), nullptr);
  ASSERT_TRUE(table.InsertEnded(5, 2));

  auto again = MakeTask(4);
  EXPECT_EQ(table.Insert(std::move(again)), nullptr);
  EXPECT_NE(again, nullptr) << "a refused task stays with the caller";
  EXPECT_EQ(table.Insert(MakeTask(5)), nullptr) << "id of an ended task";
  EXPECT_EQ(table.Insert(MakeTask(0)), nullptr) << "id 0";
  EXPECT_FALSE(table.InsertEnded(4, 7)) << "id of a live task";
  EXPECT_FALSE(table.InsertEnded(5, 7)) << "id of an ended task";
  EXPECT_FALSE(table.InsertEnded(6, 0)) << "no archive record";
  EXPECT_EQ(table.Archive(5, 9), nullptr) << "not live";
  EXPECT_EQ(table.Archive(77, 9), nullptr) << "unknown";
  auto revived = MakeTask(4);
  EXPECT_EQ(table.Revive(std::move(revived)), nullptr) << "live, not ended";
  EXPECT_NE(revived, nullptr);
  EXPECT_EQ(table.Revive(MakeTask(1'000'000)), nullptr) << "unknown";

  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.Find(4)->rec.id, 4u);
  EXPECT_EQ(table.FindEnded(5), 2u);
  EXPECT_EQ(table.Find(6), nullptr);
  EXPECT_EQ(table.FindEnded(6), 0u);
}

}  // namespace
}  // namespace pincer
