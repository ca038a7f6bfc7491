// The waiting-task queue: priority then submit order within a skill class,
// and a worker's view across the classes its skills cover (no head-of-line
// blocking by a task nobody can run).
#include "queue/task_queue.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pincer {
namespace {

QueueEntry E(int64_t priority, uint64_t seq) { return QueueEntry{priority, seq, seq * 10}; }

// Pops every entry of `classes` best-first, as free workers would.
std::vector<uint64_t> Drain(TaskQueue& q, const std::vector<ClassId>& classes) {
  std::vector<uint64_t> seqs;
  while (auto best = q.Best(classes)) {
    seqs.push_back(best->second.seq);
    EXPECT_TRUE(q.Erase(best->first, best->second));
  }
  return seqs;
}

TEST(TaskQueueTest, HigherPriorityFirstThenSubmitOrder) {
  TaskQueue q;
  const ClassId c = q.ClassFor({"echo"});
  q.Push(c, E(0, 1));
  q.Push(c, E(5, 2));
  q.Push(c, E(0, 3));
  q.Push(c, E(-3, 4));
  q.Push(c, E(5, 5));
  q.Push(c, E(10, 6));
  EXPECT_EQ(q.size(c), 6u);
  EXPECT_EQ(q.total(), 6u);
  ASSERT_NE(q.Head(c), nullptr);
  EXPECT_EQ(q.Head(c)->seq, 6u);
  EXPECT_EQ(Drain(q, {c}), (std::vector<uint64_t>{6, 2, 5, 1, 3, 4}));
  EXPECT_EQ(q.total(), 0u);
  EXPECT_EQ(q.Head(c), nullptr);
}

TEST(TaskQueueTest, ClassesAreKeyedBySkillSet) {
  TaskQueue q;
  const ClassId none = q.ClassFor({});
  const ClassId echo = q.ClassFor({"echo"});
  const ClassId both = q.ClassFor({"echo", "gpu"});
  EXPECT_EQ(q.ClassFor({"echo"}), echo);
  EXPECT_NE(none, echo);
  EXPECT_NE(echo, both);
  EXPECT_EQ(q.class_count(), 3u);
  EXPECT_EQ(q.skills(both), (std::vector<std::string>{"echo", "gpu"}));
}

TEST(TaskQueueTest, EraseRemovesExactlyOneEntry) {
  TaskQueue q;
  const ClassId c = q.ClassFor({});
  q.Push(c, E(0, 1));
  q.Push(c, E(0, 2));
  q.Push(c, E(0, 2));  // the same entry twice is held once
  EXPECT_EQ(q.total(), 2u);
  EXPECT_TRUE(q.Erase(c, E(0, 1)));
  EXPECT_FALSE(q.Erase(c, E(0, 1)));
  EXPECT_EQ(q.total(), 1u);
  EXPECT_EQ(q.Head(c)->seq, 2u);
}

TEST(TaskQueueTest, CoveredByListsTheClassesAWorkerCanRun) {
  TaskQueue q;
  const ClassId none = q.ClassFor({});
  const ClassId echo = q.ClassFor({"echo"});
  const ClassId gpu = q.ClassFor({"gpu"});
  const ClassId echo_text = q.ClassFor({"echo", "text"});
  EXPECT_EQ(q.CoveredBy(0, {"echo"}), (std::vector<ClassId>{none, echo}));
  EXPECT_EQ(q.CoveredBy(1, {"echo", "gpu", "text"}),
            (std::vector<ClassId>{none, echo, gpu, echo_text}));
  // A class created later shows up for a profile asked about before.
  const ClassId echo_only_later = q.ClassFor({"echo", "x"});
  const ClassId echo2 = q.ClassFor({"echo"});
  EXPECT_EQ(echo2, echo);
  EXPECT_EQ(q.CoveredBy(0, {"echo", "x"}), (std::vector<ClassId>{none, echo, echo_only_later}));
}

TEST(TaskQueueTest, NoHeadOfLineBlockingAcrossSkillClasses) {
  TaskQueue q;
  const ClassId gpu = q.ClassFor({"gpu"});
  const ClassId echo = q.ClassFor({"echo"});
  q.Push(gpu, E(100, 1));  // top priority, nobody has gpu
  q.Push(echo, E(0, 2));
  q.Push(echo, E(1, 3));
  // An echo worker sees only what it can run: the gpu task does not block it.
  const auto& covered = q.CoveredBy(0, {"echo"});
  auto best = q.Best(covered);
  ASSERT_TRUE(best);
  EXPECT_EQ(best->first, echo);
  EXPECT_EQ(best->second.seq, 3u);
  EXPECT_EQ(Drain(q, covered), (std::vector<uint64_t>{3, 2}));
  EXPECT_EQ(q.size(gpu), 1u) << "the gpu task still waits";
  // A worker with both skills takes the top-priority task first.
  q.Push(echo, E(0, 4));
  EXPECT_EQ(Drain(q, q.CoveredBy(1, {"echo", "gpu"})), (std::vector<uint64_t>{1, 4}));
}

TEST(TaskQueueTest, BestAcrossClassesHonoursPriorityThenAge) {
  TaskQueue q;
  const ClassId a = q.ClassFor({"a"});
  const ClassId none = q.ClassFor({});
  q.Push(a, E(0, 2));
  q.Push(none, E(0, 1));
  q.Push(a, E(2, 4));
  q.Push(none, E(2, 3));
  EXPECT_EQ(Drain(q, {a, none}), (std::vector<uint64_t>{3, 4, 1, 2}));
  EXPECT_FALSE(q.Best({a, none}));
  EXPECT_FALSE(q.Best({}));
}

}  // namespace
}  // namespace pincer
