// Session placement's own books (core/sessions.h): one turn per session in
// submit order, the home worker, tasks pinned to a worker, and what is left
// when a worker goes. The dispatcher tests drive the same rules end to end.
#include "core/sessions.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace pincer {
namespace {

class SessionsTest : public ::testing::Test {
 protected:
  Worker& AddWorker(WorkerId id, std::vector<std::string> skills, int capacity = 1) {
    auto w = std::make_unique<Worker>();
    w->id = id;
    w->id_str = "w" + std::to_string(id);
    w->skills = std::move(skills);
    w->capacity = capacity;
    return workers_.Add(std::move(w));
  }
  Task& NewTask(TaskId id, std::string session, std::vector<std::string> skills = {}) {
    auto t = std::make_unique<Task>();
    t->rec.id = id;
    t->rec.session = std::move(session);
    t->rec.skills = std::move(skills);
    t->seq = id;
    tasks_.push_back(std::move(t));
    return *tasks_.back();
  }

  WorkerRegistry workers_;
  Sessions sessions_;
  std::vector<std::unique_ptr<Task>> tasks_;
};

TEST_F(SessionsTest, OneTurnAtATimeInSubmitOrder) {
  Task& a = NewTask(1, "s");
  Task& b = NewTask(2, "s");
  Task& c = NewTask(3, "s");
  Worker* home = nullptr;
  EXPECT_TRUE(sessions_.TakeTurn(a, workers_, home));
  EXPECT_EQ(home, nullptr) << "a new session has no home";
  EXPECT_FALSE(sessions_.TakeTurn(b, workers_, home));
  EXPECT_EQ(b.where, Task::Where::kSessionWait);
  EXPECT_FALSE(sessions_.TakeTurn(c, workers_, home));
  EXPECT_FALSE(sessions_.HoldTurn(b)) << "a holds the turn";

  EXPECT_EQ(sessions_.EndTurn(b, workers_), 0u) << "only the turn's holder passes it on";
  EXPECT_EQ(sessions_.EndTurn(a, workers_), 2u);
  EXPECT_TRUE(sessions_.TakeTurn(b, workers_, home));
  EXPECT_EQ(sessions_.EndTurn(b, workers_), 3u);
  EXPECT_TRUE(sessions_.TakeTurn(c, workers_, home));
  EXPECT_EQ(sessions_.EndTurn(c, workers_), 0u);
  EXPECT_EQ(sessions_.size(), 0u) << "no home, nothing waiting: nothing left to remember";
}

TEST_F(SessionsTest, AWaitingTaskThatLeavesIsNotHandedTheTurn) {
  Task& a = NewTask(1, "s");
  Task& b = NewTask(2, "s");
  Task& c = NewTask(3, "s");
  Worker* home = nullptr;
  sessions_.TakeTurn(a, workers_, home);
  sessions_.TakeTurn(b, workers_, home);
  sessions_.TakeTurn(c, workers_, home);
  sessions_.StopWaiting(b);  // cancelled while it waited
  EXPECT_EQ(sessions_.EndTurn(a, workers_), 3u);
}

TEST_F(SessionsTest, TheHomeIsOfferedOnlyWhenItCanRunTheTask) {
  Worker& w = AddWorker(1, {"echo"});
  Task& a = NewTask(1, "s", {"echo"});
  Worker* home = nullptr;
  ASSERT_TRUE(sessions_.TakeTurn(a, workers_, home));
  sessions_.SetHome(a, w.id);
  EXPECT_EQ(sessions_.EndTurn(a, workers_), 0u);
  EXPECT_EQ(sessions_.size(), 1u) << "the session keeps its home";

  Task& b = NewTask(2, "s", {"echo"});
  ASSERT_TRUE(sessions_.TakeTurn(b, workers_, home));
  EXPECT_EQ(home, &w);
  sessions_.EndTurn(b, workers_);

  Task& c = NewTask(3, "s", {"gpu"});
  ASSERT_TRUE(sessions_.TakeTurn(c, workers_, home));
  EXPECT_EQ(home, nullptr) << "its home lacks the skill";
  sessions_.EndTurn(c, workers_);

  workers_.SetState(w, WorkerState::kDraining);
  Task& d = NewTask(4, "s", {"echo"});
  ASSERT_TRUE(sessions_.TakeTurn(d, workers_, home));
  EXPECT_EQ(home, nullptr) << "its home takes nothing new";
}

TEST_F(SessionsTest, PinnedTasksComeBestFirstAndOnlyFromTheirWorker) {
  Worker& w1 = AddWorker(1, {});
  Worker& w2 = AddWorker(2, {});
  EXPECT_EQ(sessions_.PinnedHead(w1.id), nullptr);
  Task& a = NewTask(5, "a");
  Task& b = NewTask(6, "b");
  b.rec.priority = 9;
  Task& c = NewTask(7, "c");
  sessions_.Pin(a, w1.id);
  sessions_.Pin(b, w1.id);
  sessions_.Pin(c, w2.id);
  EXPECT_EQ(a.where, Task::Where::kPinned);
  EXPECT_EQ(a.worker, w1.id);

  ASSERT_NE(sessions_.PinnedHead(w1.id), nullptr);
  EXPECT_EQ(sessions_.PinnedHead(w1.id)->id, 6u) << "higher priority first";
  sessions_.PopPinned(w1.id);
  EXPECT_EQ(sessions_.PinnedHead(w1.id)->id, 5u);
  sessions_.Unpin(a);
  EXPECT_EQ(a.worker, 0u);
  EXPECT_EQ(sessions_.PinnedHead(w1.id), nullptr);
  EXPECT_EQ(sessions_.TakePinned(w2.id), (std::vector<TaskId>{7}));
  EXPECT_EQ(sessions_.PinnedHead(w2.id), nullptr);
}

TEST_F(SessionsTest, AGoneWorkerLeavesItsSessionsHomelessAndGivesBackItsPinnedTasks) {
  Worker& w = AddWorker(1, {});
  Task& a = NewTask(1, "idle");
  Task& b = NewTask(2, "busy");
  Task& c = NewTask(3, "waiting");
  Worker* home = nullptr;
  sessions_.TakeTurn(a, workers_, home);
  sessions_.SetHome(a, w.id);
  sessions_.EndTurn(a, workers_);
  sessions_.TakeTurn(b, workers_, home);
  sessions_.SetHome(b, w.id);  // b runs on w
  sessions_.TakeTurn(c, workers_, home);
  sessions_.Pin(c, w.id);  // c waits for w
  EXPECT_EQ(sessions_.size(), 3u);

  const WorkerId gone = w.id;  // `w` is freed by Remove
  EXPECT_EQ(sessions_.WorkerGone(gone), (std::vector<TaskId>{3}));
  workers_.Remove(gone);
  EXPECT_EQ(sessions_.size(), 2u) << "the idle session had only its home to remember";
  EXPECT_EQ(sessions_.PinnedHead(gone), nullptr);
  Task& d = NewTask(4, "busy");
  EXPECT_FALSE(sessions_.TakeTurn(d, workers_, home)) << "b still holds its session's turn";
  EXPECT_EQ(sessions_.EndTurn(b, workers_), 4u);
}

}  // namespace
}  // namespace pincer
