// EndedArchive: ended tasks as compact records, read back whole, purged
// oldest first.
#include "core/ended_archive.h"

#include <gtest/gtest.h>

#include <string>

namespace pincer {
namespace {

Task Ended(TaskId id, std::string output = "\"done\"") {
  Task t;
  t.rec.id = id;
  t.rec.skills = {"echo", "text"};
  t.rec.payload = R"({"q":"hello"})";
  t.rec.priority = -3;
  t.rec.timeout_ms = 30'000;
  t.rec.max_attempts = 4;
  t.rec.session = "chat-1";
  t.rec.key = "order-" + std::to_string(id);
  t.rec.state = TaskState::kFailed;
  t.rec.attempts = 2;
  t.rec.worker = "w3";
  t.rec.output = std::move(output);
  t.rec.error = "boom";
  t.rec.errors = {{1, "w1", "lost"}, {2, "w3", "boom"}};
  t.rec.created_ms = 1'764'000'000'000;
  t.rec.started_ms = 1'764'000'000'100;
  t.rec.ended_ms = 1'764'000'000'200;
  t.seq = id * 10;
  t.progress = R"({"step":3})";
  return t;
}

TEST(EndedArchiveTest, ATaskReadsBackWithEveryField) {
  EndedArchive archive;
  const Task t = Ended(7);
  const TimePoint at = TimePoint{} + std::chrono::seconds(5);
  const EndedArchive::Ref ref = archive.Add(t, at);

  Task back;
  back.where = Task::Where::kQueue;  // whatever the view held before
  back.waiters.emplace_back(1, 2);
  back.attempt_deadline = at;
  archive.Read(ref, back);
  EXPECT_EQ(back.rec.id, 7u);
  EXPECT_EQ(back.rec.skills, t.rec.skills);
  EXPECT_EQ(back.rec.payload, t.rec.payload);
  EXPECT_EQ(back.rec.priority, -3);
  EXPECT_EQ(back.rec.timeout_ms, 30'000);
  EXPECT_EQ(back.rec.max_attempts, 4);
  EXPECT_EQ(back.rec.session, "chat-1");
  EXPECT_EQ(back.rec.key, "order-7");
  EXPECT_EQ(back.rec.state, TaskState::kFailed);
  EXPECT_EQ(back.rec.attempts, 2);
  EXPECT_EQ(back.rec.worker, "w3");
  EXPECT_EQ(back.rec.output, "\"done\"");
  EXPECT_EQ(back.rec.error, "boom");
  ASSERT_EQ(back.rec.errors.size(), 2u);
  EXPECT_EQ(back.rec.errors[0].worker, "w1");
  EXPECT_EQ(back.rec.errors[1].error, "boom");
  EXPECT_EQ(back.rec.created_ms, t.rec.created_ms);
  EXPECT_EQ(back.rec.started_ms, t.rec.started_ms);
  EXPECT_EQ(back.rec.ended_ms, t.rec.ended_ms);
  EXPECT_EQ(back.seq, 70u);
  EXPECT_EQ(back.progress, R"({"step":3})");
  EXPECT_EQ(back.where, Task::Where::kNone);
  EXPECT_TRUE(back.waiters.empty());
  EXPECT_EQ(back.attempt_deadline, TimePoint{});

  const EndedArchive::Entry& e = archive.entry(ref);
  EXPECT_EQ(e.id, 7u);
  EXPECT_EQ(e.at, at);
  EXPECT_EQ(e.state, TaskState::kFailed);
  EXPECT_TRUE(e.has_key);
}

TEST(EndedArchiveTest, AnOutcomeReadsOnlyWhatAnEndEventTells) {
  EndedArchive archive;
  const EndedArchive::Ref ref = archive.Add(Ended(12), TimePoint{});
  std::vector<AttemptError> errors;
  const Outcome r = archive.ReadOutcome(ref, errors);
  EXPECT_EQ(r.id, 12u);
  EXPECT_EQ(r.state, TaskState::kFailed);
  EXPECT_EQ(r.output, "\"done\"");
  EXPECT_EQ(r.error, "boom");
  EXPECT_EQ(r.attempts, 2);
  EXPECT_EQ(r.worker, "w3");
  EXPECT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(errors.size(), 2u);
}

TEST(EndedArchiveTest, RecordsArePurgedOldestFirstAndTheRestStayReadable) {
  EndedArchive archive;
  // Enough records, some large, to fill and free many chunks.
  const std::string big(100'000, 'x');
  std::vector<EndedArchive::Ref> refs;
  for (TaskId id = 1; id <= 3000; ++id) {
    refs.push_back(archive.Add(Ended(id, id % 100 == 0 ? "\"" + big + "\"" : "1"), TimePoint{}));
  }
  EXPECT_EQ(archive.size(), 3000u);
  EXPECT_EQ(archive.front_ref(), refs.front());
  EXPECT_EQ(archive.next_ref(), refs.back() + 1);
  Task back;
  for (TaskId id = 1; id <= 2500; ++id) {
    ASSERT_EQ(archive.front().id, id);
    archive.PopFront();
  }
  EXPECT_EQ(archive.size(), 500u);
  for (TaskId id = 2501; id <= 3000; ++id) {
    archive.Read(refs[id - 1], back);
    ASSERT_EQ(back.rec.id, id);
    ASSERT_EQ(back.rec.output.size(), id % 100 == 0 ? big.size() + 2 : 1u) << id;
  }
  while (!archive.empty()) archive.PopFront();
  // Empty, then used again: numbering goes on.
  const EndedArchive::Ref next = archive.Add(Ended(3001), TimePoint{});
  EXPECT_EQ(next, refs.back() + 1);
  archive.Read(next, back);
  EXPECT_EQ(back.rec.id, 3001u);
}

TEST(EndedArchiveTest, ATaskWithoutKeyOrProgressSaysSo) {
  EndedArchive archive;
  Task t = Ended(1);
  t.rec.key.clear();
  t.progress.clear();
  t.rec.output.clear();  // null output
  const EndedArchive::Ref ref = archive.Add(t, TimePoint{});
  EXPECT_FALSE(archive.entry(ref).has_key);
  Task back = Ended(99);  // fields a read must overwrite
  archive.Read(ref, back);
  EXPECT_EQ(back.rec.id, 1u);
  EXPECT_EQ(back.rec.key, "");
  EXPECT_EQ(back.progress, "");
  EXPECT_EQ(back.rec.output, "");
}

// Checked in every build: a task that has not ended is kept as failed (an
// entry that says queued would stand for an ended task forever), and
// dropping from an empty archive does nothing.
TEST(EndedArchiveTest, ALiveTaskIsKeptAsFailedAndAnEmptyArchivePopsNothing) {
  EndedArchive archive;
  archive.PopFront();
  EXPECT_TRUE(archive.empty());
  Task t = Ended(3);
  t.rec.state = TaskState::kRunning;
  const EndedArchive::Ref ref = archive.Add(t, TimePoint{});
  EXPECT_EQ(archive.entry(ref).state, TaskState::kFailed);
  Task back;
  archive.Read(ref, back);
  EXPECT_EQ(back.rec.id, 3u);
  archive.PopFront();
  archive.PopFront();
  EXPECT_TRUE(archive.empty());
}

}  // namespace
}  // namespace pincer
