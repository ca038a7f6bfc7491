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
  table.ForEach([&](const Task& t) { ids.push_back(t.rec.id); });
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

}  // namespace
}  // namespace pincer
