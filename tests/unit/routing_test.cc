// The routing index and the three strategies, driven directly: no
// dispatcher, no clock. A "pick" here does what the registry does when a
// task is assigned (MarkPicked, in-flight + 1).
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "routing/strategy.h"
#include "routing/worker_index.h"

namespace pincer {
namespace {

using Skills = std::vector<std::string>;

class RoutingTest : public ::testing::Test {
 protected:
  void Add(WorkerId id, Skills skills, int capacity = 1) {
    index_.Add(id, skills, capacity);
    inflight_[id] = 0;
  }
  WorkerId Pick(const std::string& strategy, const Skills& task_skills = {}) {
    auto s = MakeStrategy(strategy);
    EXPECT_NE(s, nullptr) << strategy;
    if (!s) return 0;
    return s->Pick(index_, index_.Matching(task_skills), task_skills.size());
  }
  // Gives worker `id` a task, as the registry does on assignment.
  void Take(WorkerId id) {
    index_.SetInflight(id, ++inflight_[id]);
    index_.MarkPicked(id);
  }
  void Finish(WorkerId id) { index_.SetInflight(id, --inflight_[id]); }
  // Picks and takes; returns the pick (0: nobody).
  WorkerId PickAndTake(const std::string& strategy, const Skills& task_skills = {}) {
    const WorkerId w = Pick(strategy, task_skills);
    if (w) Take(w);
    return w;
  }
  // True when `id` is listed as free in any profile's sets.
  bool ListedFree(WorkerId id) const {
    for (const auto& p : index_.profiles()) {
      for (const auto& k : p.by_turn) {
        if (k.id == id) return true;
      }
      for (const auto& k : p.by_load) {
        if (k.id == id) return true;
      }
    }
    return false;
  }

  WorkerIndex index_;
  std::map<WorkerId, int> inflight_;
};

TEST_F(RoutingTest, FactoryKnowsTheThreeNamesOnly) {
  EXPECT_EQ(MakeStrategy("round_robin")->name(), "round_robin");
  EXPECT_EQ(MakeStrategy("least_connections")->name(), "least_connections");
  EXPECT_EQ(MakeStrategy("skill_match")->name(), "skill_match");
  EXPECT_EQ(MakeStrategy("fastest"), nullptr);
  EXPECT_EQ(MakeStrategy(""), nullptr);
}

TEST_F(RoutingTest, NoWorkerIsAValueForEveryStrategy) {
  for (const char* s : {"round_robin", "least_connections", "skill_match"}) {
    EXPECT_EQ(Pick(s), 0u) << s;
    EXPECT_EQ(Pick(s, {"gpu"}), 0u) << s;
  }
  Add(1, {"echo"});
  for (const char* s : {"round_robin", "least_connections", "skill_match"}) {
    EXPECT_EQ(Pick(s, {"gpu"}), 0u) << s << ": nobody has gpu";
    EXPECT_EQ(Pick(s, {"echo", "gpu"}), 0u) << s << ": needs every skill";
  }
}

TEST_F(RoutingTest, ATaskWithNoSkillsFitsAnyWorker) {
  Add(1, {"a", "b"});
  for (const char* s : {"round_robin", "least_connections", "skill_match"}) {
    EXPECT_EQ(Pick(s, {}), 1u) << s;
  }
}

TEST_F(RoutingTest, RoundRobinRotatesInAStableOrder) {
  Add(1, {"echo"});
  Add(2, {"echo"});
  Add(3, {"echo"});
  std::vector<WorkerId> order;
  for (int i = 0; i < 9; ++i) {
    const WorkerId w = PickAndTake("round_robin", {"echo"});
    ASSERT_NE(w, 0u);
    order.push_back(w);
    Finish(w);
  }
  // Each window of three is a permutation, and the same one every time.
  for (int i = 3; i < 9; ++i) EXPECT_EQ(order[i], order[i - 3]) << "pick " << i;
  EXPECT_NE(order[0], order[1]);
  EXPECT_NE(order[1], order[2]);
  EXPECT_NE(order[0], order[2]);
}

TEST_F(RoutingTest, RoundRobinGivesEqualWorkersEqualSharesOver300Picks) {
  Add(1, {"echo"});
  Add(2, {"echo"});
  Add(3, {"echo"});
  std::map<WorkerId, int> share;
  for (int i = 0; i < 300; ++i) {
    const WorkerId w = PickAndTake("round_robin", {"echo"});
    ASSERT_NE(w, 0u);
    ++share[w];
    Finish(w);
  }
  for (WorkerId id : {1, 2, 3}) EXPECT_NEAR(share[id], 100, 1) << "worker " << id;
}

TEST_F(RoutingTest, RoundRobinSkipsBusyWorkersAndKeepsSharesEqual) {
  Add(1, {"echo"});
  Add(2, {"echo"});
  Add(3, {"echo"});
  std::map<WorkerId, int> share;
  // Rounds of three tasks at once; the workers finish in a different order
  // each round. Every round must use all three workers.
  for (int round = 0; round < 100; ++round) {
    std::vector<WorkerId> got;
    for (int i = 0; i < 3; ++i) {
      const WorkerId w = PickAndTake("round_robin", {"echo"});
      ASSERT_NE(w, 0u) << "round " << round;
      got.push_back(w);
      ++share[w];
    }
    EXPECT_EQ(PickAndTake("round_robin", {"echo"}), 0u) << "all three are full";
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<WorkerId>{1, 2, 3})) << "round " << round;
    for (int i = 0; i < 3; ++i) Finish(got[(i + round) % 3]);
  }
  for (WorkerId id : {1, 2, 3}) EXPECT_EQ(share[id], 100) << "worker " << id;
}

// Issue 19: a worker that joins after the others served many tasks, or
// comes back from ejection or drain, takes its turn and goes to the back;
// it does not take every task until some count catches up.
TEST_F(RoutingTest, RoundRobinANewcomerAndAReturnerEnterTheRotation) {
  Add(1, {"echo"});
  Add(2, {"other"});  // another profile, never picked
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(PickAndTake("round_robin", {"echo"}), 1u);
    Finish(1);
  }
  Add(3, {"echo"});
  std::vector<WorkerId> order;
  for (int i = 0; i < 6; ++i) {
    const WorkerId w = PickAndTake("round_robin", {"echo"});
    order.push_back(w);
    Finish(w);
  }
  EXPECT_EQ(order, (std::vector<WorkerId>{3, 1, 3, 1, 3, 1}));

  // Worker 1 is out (ejected, draining) while 3 takes everything...
  index_.SetRoutable(1, false);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(PickAndTake("round_robin", {"echo"}), 3u);
    Finish(3);
  }
  // ...and back in the rotation, not owed 20 tasks.
  index_.SetRoutable(1, true);
  order.clear();
  for (int i = 0; i < 6; ++i) {
    const WorkerId w = PickAndTake("round_robin", {"echo"});
    order.push_back(w);
    Finish(w);
  }
  EXPECT_EQ(order, (std::vector<WorkerId>{1, 3, 1, 3, 1, 3}));
}

TEST_F(RoutingTest, LeastConnectionsPicksTheLowestLoadRelativeToCapacity) {
  Add(1, {"x"}, /*capacity=*/4);
  Add(2, {"x"}, /*capacity=*/1);
  Take(1);
  Take(1);  // worker 1: 2/4
  EXPECT_EQ(Pick("least_connections", {"x"}), 2u) << "0/1 beats 2/4";
  Take(2);  // worker 2: 1/1 (full)
  EXPECT_EQ(Pick("least_connections", {"x"}), 1u) << "the only one with a free slot";

  Add(3, {"x"}, /*capacity=*/2);
  Take(3);  // worker 3: 1/2 = 0.5, worker 1: 2/4 = 0.5 -> tie: least recently picked
  EXPECT_EQ(Pick("least_connections", {"x"}), 1u);
  Finish(1);  // worker 1: 1/4 = 0.25
  EXPECT_EQ(Pick("least_connections", {"x"}), 1u);
  Take(1);
  Take(1);
  Take(1);  // worker 1: 4/4 (full), worker 3: 1/2
  EXPECT_EQ(Pick("least_connections", {"x"}), 3u);
}

TEST_F(RoutingTest, LeastConnectionsAvoidsAWorkerHoldingLongTasks) {
  Add(1, {"x"}, 4);
  Add(2, {"x"}, 4);
  Take(1);
  Take(1);  // worker 1 holds two long tasks
  // New short tasks all go to worker 2 until it is as loaded as worker 1.
  EXPECT_EQ(PickAndTake("least_connections", {"x"}), 2u);
  Finish(2);
  EXPECT_EQ(PickAndTake("least_connections", {"x"}), 2u);
  Finish(2);
  EXPECT_EQ(PickAndTake("least_connections", {"x"}), 2u);
  EXPECT_EQ(PickAndTake("least_connections", {"x"}), 2u);
  // 2/4 each now: the tie goes to the one picked least recently (worker 1).
  EXPECT_EQ(Pick("least_connections", {"x"}), 1u);
}

TEST_F(RoutingTest, LeastConnectionsTiesRotate) {
  Add(1, {"x"}, 2);
  Add(2, {"x"}, 2);
  Add(3, {"x"}, 2);
  std::map<WorkerId, int> share;
  for (int i = 0; i < 30; ++i) {
    const WorkerId w = PickAndTake("least_connections", {"x"});
    ASSERT_NE(w, 0u);
    ++share[w];
    Finish(w);
  }
  for (WorkerId id : {1, 2, 3}) EXPECT_EQ(share[id], 10) << "worker " << id;
}

TEST_F(RoutingTest, SkillMatchPicksTheSpecialistThenSpillsToTheGeneralist) {
  Add(1, {"code", "echo", "review", "text"});  // generalist, added first
  Add(2, {"code"}, /*capacity=*/2);            // specialist
  EXPECT_EQ(PickAndTake("skill_match", {"code"}), 2u);
  EXPECT_EQ(PickAndTake("skill_match", {"code"}), 2u) << "still a free slot on the specialist";
  EXPECT_EQ(PickAndTake("skill_match", {"code"}), 1u) << "specialist full: spill over";
  EXPECT_EQ(Pick("skill_match", {"code"}), 0u) << "everyone full";
  Finish(2);
  EXPECT_EQ(Pick("skill_match", {"code"}), 2u) << "the specialist is back first";
  // A task the specialist cannot do goes to the generalist only.
  Finish(1);
  EXPECT_EQ(Pick("skill_match", {"code", "text"}), 1u);
}

TEST_F(RoutingTest, SkillMatchCountsOnlySkillsBeyondTheTasks) {
  Add(1, {"a", "b", "c"});  // 1 extra for task {a,b}
  Add(2, {"a", "b"});       // 0 extra
  Add(3, {"a"});            // cannot
  EXPECT_EQ(Pick("skill_match", {"a", "b"}), 2u);
  EXPECT_EQ(Pick("skill_match", {"a"}), 3u);
}

TEST_F(RoutingTest, SkillMatchTiesGoByLeastConnectionsThenRotate) {
  Add(1, {"code"}, 4);
  Add(2, {"code"}, 4);
  Take(1);
  EXPECT_EQ(Pick("skill_match", {"code"}), 2u) << "same fit: fewer in flight wins";
  Finish(1);
  std::map<WorkerId, int> share;
  for (int i = 0; i < 10; ++i) {
    const WorkerId w = PickAndTake("skill_match", {"code"});
    ++share[w];
    Finish(w);
  }
  EXPECT_EQ(share[1], 5);
  EXPECT_EQ(share[2], 5);
}

TEST_F(RoutingTest, TheIndexNeverListsAFullOrDrainingWorker) {
  Add(1, {"x"});
  Add(2, {"x"});
  EXPECT_TRUE(ListedFree(1));
  Take(1);  // full
  EXPECT_FALSE(ListedFree(1));
  EXPECT_FALSE(index_.HasFreeSlot(1));
  index_.SetRoutable(2, false);  // draining or ejected
  EXPECT_FALSE(ListedFree(2));
  EXPECT_FALSE(index_.HasFreeSlot(2));
  for (const char* s : {"round_robin", "least_connections", "skill_match"}) {
    EXPECT_EQ(Pick(s, {"x"}), 0u) << s;
  }
  // Still connected, so the skill is not "missing".
  EXPECT_TRUE(index_.AnyConnected({"x"}));
  EXPECT_EQ(index_.profile(index_.ProfileOf(2)).connected, 2);
  EXPECT_EQ(index_.profile(index_.ProfileOf(2)).routable, 1);

  index_.SetRoutable(2, true);
  EXPECT_TRUE(ListedFree(2));
  Finish(1);
  EXPECT_TRUE(ListedFree(1));
  index_.Remove(1);
  EXPECT_FALSE(ListedFree(1));
  EXPECT_FALSE(index_.Contains(1));
  index_.Remove(2);
  EXPECT_FALSE(index_.AnyConnected({"x"}));
}

TEST_F(RoutingTest, MatchingFollowsProfilesAddedLater) {
  Add(1, {"a"});
  EXPECT_EQ(Pick("least_connections", {"b"}), 0u);  // caches "no profile for b"
  Add(2, {"a", "b"});
  EXPECT_EQ(Pick("least_connections", {"b"}), 2u);
}

}  // namespace
}  // namespace pincer
