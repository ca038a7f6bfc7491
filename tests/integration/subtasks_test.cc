// Subtasks through pincerd, against a real pincerd over TCP: a worker
// submits children of the task it runs on its own connection (`parent`),
// waits for them and answers with their outputs; `status` shows `parent`
// and `children`; a parent that ends takes its unfinished children with
// it (their workers get `cancel`); only the worker that runs a task may
// attach children to it; tasks.max_depth bounds nesting; the links
// survive a restart of a SQLite store. The planning worker is a raw peer,
// so every line it gets is seen as sent.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/daemon_process.h"
#include "support/raw_peer.h"
#include "support/scenario.h"
#include "support/test_worker.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kRead = seconds(20);  // bounds a wait for a line that must come

// Raw peers send no heartbeats: lenient ones.
constexpr const char* kConfig =
    "store: { kind: memory }\n"
    "heartbeat: { interval: 5s, misses: 100 }\n";

// A raw worker that plans: takes tasks, sends client requests on its own
// connection and reads their answers, keeping the daemon's own messages
// (task, cancel) apart.
class Planner {
 public:
  bool Connect(const std::string& addr, const std::string& skill = "plan", int capacity = 1) {
    if (peer_.Connect(addr) != "") return false;
    auto welcome = peer_.Hello("worker", "",
                               {{"name", "planner"}, {"skills", {skill}}, {"capacity", capacity}});
    if (!welcome || welcome->value("type", "") != "welcome") return false;
    id_ = welcome->value("id", "");
    return true;
  }
  const std::string& id() const { return id_; }

  // The next message of `type` (task, cancel); others are kept.
  std::optional<json> Next(const std::string& type) {
    return Find([&](const json& m) { return m.value("type", "") == type; });
  }
  // The next answer (ok, error) or end event for request `req`.
  std::optional<json> Answer(int64_t req, bool end = false) {
    return Find([&](const json& m) {
      const std::string type = m.value("type", "");
      return m.value("req", int64_t{-1}) == req && (end ? type == "end" : type != "end");
    });
  }
  // Sends `request` with `req` and returns its answer.
  std::optional<json> Ask(json request, int64_t req) {
    request["req"] = req;
    if (!peer_.SendJson(request)) return std::nullopt;
    return Answer(req);
  }
  bool Send(const json& message) { return peer_.SendJson(message); }

 private:
  template <typename Match>
  std::optional<json> Find(Match&& match) {
    for (auto it = kept_.begin(); it != kept_.end(); ++it) {
      if (match(*it)) {
        json m = std::move(*it);
        kept_.erase(it);
        return m;
      }
    }
    while (auto m = peer_.ReadJson(kRead)) {
      if (match(*m)) return m;
      kept_.push_back(std::move(*m));
    }
    return std::nullopt;
  }

  RawPeer peer_;
  std::string id_;
  std::vector<json> kept_;
};

class SubtasksTest : public ::testing::Test {
 protected:
  void Start(const std::string& config = kConfig) {
    daemon_ = std::make_unique<DaemonProcess>(config);
    ASSERT_TRUE(daemon_->Start());
    client_ = ConnectClient(daemon_->address());
    ASSERT_NE(client_, nullptr);
  }
  std::unique_ptr<TestWorker> Leaf(const std::string& name, const std::string& skill,
                                   int capacity = 1) {
    TestWorkerOptions o;
    o.name = name;
    o.skills = {skill};
    o.capacity = capacity;
    auto w = TestWorker::Connect(daemon_->address(), o);
    EXPECT_TRUE(w.ok());
    return w.ok() ? std::move(w).value() : nullptr;
  }
  // Submits a task for the planner and has it take it; its id.
  std::string PlannerTakes(Planner& planner, const json& payload = "plan it") {
    const std::string id = SubmitTask(*client_, {{"skills", {"plan"}}, {"payload", payload}});
    auto task = planner.Next("task");
    EXPECT_TRUE(task);
    EXPECT_EQ(task ? task->value("id", "") : "", id);
    return id;
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(SubtasksTest, APlannerRunsFourChildrenOnLeafWorkersAndSucceedsWithTheirOutputs) {
  Start();
  auto leaf1 = Leaf("leaf-1", "leaf");
  auto leaf2 = Leaf("leaf-2", "leaf");
  ASSERT_TRUE(leaf1 && leaf2);
  leaf1->StartAuto();  // each answers with its task's payload
  leaf2->StartAuto();
  Planner planner;
  ASSERT_TRUE(planner.Connect(daemon_->address()));
  const std::string parent = PlannerTakes(planner);

  // Two children waited on with submit's `wait`, two with `wait` requests.
  std::vector<std::string> children;
  for (int i = 1; i <= 4; ++i) {
    auto ok = planner.Ask({{"type", "submit"},
                           {"skills", {"leaf"}},
                           {"payload", "part-" + std::to_string(i)},
                           {"parent", parent},
                           {"wait", i <= 2}},
                          i);
    ASSERT_TRUE(ok);
    ASSERT_EQ(ok->value("type", ""), "ok") << ok->dump();
    children.push_back(ok->value("id", ""));
  }
  for (int i = 3; i <= 4; ++i) {
    ASSERT_TRUE(planner.Send({{"type", "wait"}, {"req", i}, {"id", children[i - 1]}}));
  }
  json outputs = json::array();
  for (int i = 1; i <= 4; ++i) {
    auto end = planner.Answer(i, /*end=*/true);
    ASSERT_TRUE(end) << "no end for child " << i;
    EXPECT_EQ(end->value("id", ""), children[i - 1]);
    EXPECT_EQ(end->value("state", ""), "succeeded") << end->dump();
    outputs.push_back((*end)["output"]);
  }
  EXPECT_EQ(outputs, json({"part-1", "part-2", "part-3", "part-4"}));

  // The planner may look at its children and the workers as a client does.
  auto st = planner.Ask({{"type", "status"}, {"id", children[0]}}, 10);
  ASSERT_TRUE(st);
  ASSERT_EQ(st->value("type", ""), "ok") << st->dump();
  EXPECT_EQ((*st)["task"]["parent"], parent);
  auto workers = planner.Ask({{"type", "workers"}}, 11);
  ASSERT_TRUE(workers);
  ASSERT_EQ(workers->value("type", ""), "ok") << workers->dump();
  EXPECT_EQ((*workers)["workers"].size(), 3u);

  ASSERT_TRUE(
      planner.Send({{"type", "result"}, {"id", parent}, {"ok", true}, {"output", outputs}}));
  json end = WaitEnd(*client_, parent);
  EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
  EXPECT_EQ(end["output"], outputs);

  const json p = TaskStatus(*client_, parent);
  EXPECT_TRUE(p["parent"].is_null()) << p.dump();
  EXPECT_EQ(p["children"], json(children));
  const std::set<std::string> leaves = {leaf1->id(), leaf2->id()};
  for (const std::string& c : children) {
    const json child = TaskStatus(*client_, c);
    EXPECT_EQ(child["parent"], parent) << child.dump();
    EXPECT_EQ(child["children"], json::array());
    EXPECT_TRUE(leaves.count(child.value("worker", ""))) << child.dump();
  }
  // The tasks listing carries the links too.
  json list = Ask(*client_, {{"type", "tasks"}});
  ASSERT_TRUE(list.is_object());
  for (const json& t : list["tasks"]) {
    if (t["id"] == parent) {
      EXPECT_EQ(t["children"], json(children));
    }
    if (t["id"] == children[3]) {
      EXPECT_EQ(t["parent"], parent);
    }
  }
}

TEST_F(SubtasksTest, CancellingAParentCancelsItsHangingChildrenAndTheirWorkersGetCancel) {
  Start();
  auto hang = Leaf("hang", "hang", 3);
  ASSERT_TRUE(hang);
  Planner planner;
  ASSERT_TRUE(planner.Connect(daemon_->address()));
  const std::string parent = PlannerTakes(planner);
  std::set<std::string> children;
  for (int i = 1; i <= 3; ++i) {
    auto ok = planner.Ask(
        {{"type", "submit"}, {"skills", {"hang"}}, {"payload", i}, {"parent", parent}}, i);
    ASSERT_TRUE(ok);
    ASSERT_EQ(ok->value("type", ""), "ok") << ok->dump();
    children.insert(ok->value("id", ""));
  }
  std::set<std::string> taken;
  for (int i = 0; i < 3; ++i) {
    auto task = hang->NextTask(kRead);
    ASSERT_TRUE(task);
    taken.insert(task->value("id", ""));
  }
  EXPECT_EQ(taken, children);

  json cancelled = Ask(*client_, {{"type", "cancel"}, {"id", parent}});
  EXPECT_EQ(cancelled.value("state", ""), "cancelled") << cancelled.dump();
  for (const std::string& c : children) {
    json end = WaitEnd(*client_, c);
    EXPECT_EQ(end.value("state", ""), "cancelled") << end.dump();
    EXPECT_NE(end.value("error", "").find(parent), std::string::npos) << end.dump();
  }
  std::set<std::string> cancels;
  for (int i = 0; i < 3; ++i) {
    auto m = hang->NextMessage(kRead);
    ASSERT_TRUE(m);
    EXPECT_EQ(m->value("type", ""), "cancel") << m->dump();
    cancels.insert(m->value("id", ""));
  }
  EXPECT_EQ(cancels, children);
  auto own = planner.Next("cancel");
  ASSERT_TRUE(own);
  EXPECT_EQ(own->value("id", ""), parent);
  EXPECT_EQ(Stats(*client_).value("cancelled", 0), 4);
}

TEST_F(SubtasksTest, AParentThatSucceedsTakesItsUnfinishedChildrenWithIt) {
  Start();
  Planner planner;
  ASSERT_TRUE(planner.Connect(daemon_->address()));
  const std::string parent = PlannerTakes(planner);
  auto ok = planner.Ask(
      {{"type", "submit"}, {"skills", {"nobody"}}, {"payload", 1}, {"parent", parent}}, 1);
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->value("type", ""), "ok") << ok->dump();
  const std::string child = ok->value("id", "");
  ASSERT_TRUE(planner.Send({{"type", "result"}, {"id", parent}, {"ok", true}, {"output", 1}}));
  json end = WaitEnd(*client_, child);
  EXPECT_EQ(end.value("state", ""), "cancelled") << end.dump();
  EXPECT_EQ(TaskStatus(*client_, parent).value("state", ""), "succeeded");
}

TEST_F(SubtasksTest, AParentRetriedAfterItsWorkerIsLostKeepsItsChildren) {
  Start();
  const std::string parent =
      SubmitTask(*client_, {{"skills", {"plan"}}, {"payload", 1}, {"max_attempts", 2}});
  std::string child;
  {
    Planner first;
    ASSERT_TRUE(first.Connect(daemon_->address()));
    auto task = first.Next("task");
    ASSERT_TRUE(task);
    ASSERT_EQ(task->value("id", ""), parent);
    auto ok = first.Ask(
        {{"type", "submit"}, {"skills", {"nobody"}}, {"payload", 1}, {"parent", parent}}, 1);
    ASSERT_TRUE(ok);
    ASSERT_EQ(ok->value("type", ""), "ok") << ok->dump();
    child = ok->value("id", "");
  }  // its connection closes: the attempt is lost, the parent queued again
  Planner second;
  ASSERT_TRUE(second.Connect(daemon_->address()));
  auto task = second.Next("task");
  ASSERT_TRUE(task);
  ASSERT_EQ(task->value("id", ""), parent);
  EXPECT_EQ(task->value("attempt", 0), 2);
  const json p = TaskStatus(*client_, parent);
  EXPECT_EQ(p["children"], json({child})) << p.dump();
  EXPECT_EQ(TaskStatus(*client_, child).value("state", ""), "queued");
  // The new attempt may follow the child it inherited.
  auto st = second.Ask({{"type", "status"}, {"id", child}}, 5);
  ASSERT_TRUE(st);
  EXPECT_EQ((*st)["task"]["parent"], parent) << st->dump();
}

TEST_F(SubtasksTest, AParentLostForGoodWithItsWorkerTakesTheChildItRanThereWithIt) {
  Start();
  const std::string parent =
      SubmitTask(*client_, {{"skills", {"plan"}}, {"payload", 1}, {"max_attempts", 1}});
  std::string child;
  {
    Planner planner;
    ASSERT_TRUE(planner.Connect(daemon_->address(), "plan", 2));
    auto task = planner.Next("task");
    ASSERT_TRUE(task);
    auto ok = planner.Ask(
        {{"type", "submit"}, {"skills", {"plan"}}, {"payload", 2}, {"parent", parent}}, 1);
    ASSERT_TRUE(ok);
    child = ok->value("id", "");
    auto second = planner.Next("task");  // the child runs on the same worker
    ASSERT_TRUE(second);
    ASSERT_EQ(second->value("id", ""), child);
  }
  EXPECT_EQ(WaitEnd(*client_, parent).value("state", ""), "failed");
  EXPECT_EQ(WaitEnd(*client_, child).value("state", ""), "cancelled");
  const json stats = Stats(*client_);
  EXPECT_EQ(stats.value("running", -1), 0) << stats.dump();
  EXPECT_EQ(stats.value("queued", -1), 0) << stats.dump();
}

TEST_F(SubtasksTest, OnlyTheWorkerRunningATaskMayAttachChildrenToIt) {
  Start();
  Planner holder;
  ASSERT_TRUE(holder.Connect(daemon_->address()));
  const std::string parent = PlannerTakes(holder);
  Planner other;
  ASSERT_TRUE(other.Connect(daemon_->address(), "other"));

  const json submit = {{"type", "submit"}, {"skills", {"leaf"}}, {"parent", parent}};
  auto refused = other.Ask(submit, 7);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->value("type", ""), "error") << refused->dump();
  EXPECT_EQ(refused->value("code", ""), "unknown_task") << refused->dump();
  // A client has no task to be a parent.
  auto r = client_->Request(submit, seconds(10));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "unknown_task");
  // Nor does the holder once it has answered.
  ASSERT_TRUE(holder.Send({{"type", "result"}, {"id", parent}, {"ok", true}, {"output", 1}}));
  EXPECT_EQ(WaitEnd(*client_, parent).value("state", ""), "succeeded");
  auto late = holder.Ask(submit, 8);
  ASSERT_TRUE(late);
  EXPECT_EQ(late->value("code", ""), "unknown_task") << late->dump();

  // Nothing was created.
  EXPECT_EQ(Stats(*client_).value("submitted", 0), 1);
  EXPECT_EQ(TaskStatus(*client_, parent)["children"], json::array());
}

TEST_F(SubtasksTest, NestingDeeperThanMaxDepthIsAnInvalidRequest) {
  Start(std::string(kConfig) + "tasks: { max_depth: 1 }\n");
  Planner planner;
  ASSERT_TRUE(planner.Connect(daemon_->address(), "plan", 2));
  const std::string parent = PlannerTakes(planner);
  auto ok = planner.Ask(
      {{"type", "submit"}, {"skills", {"plan"}}, {"payload", "deeper"}, {"parent", parent}}, 1);
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->value("type", ""), "ok") << ok->dump();
  const std::string child = ok->value("id", "");
  auto task = planner.Next("task");  // the child, on the planner's second slot
  ASSERT_TRUE(task);
  ASSERT_EQ(task->value("id", ""), child);
  auto refused = planner.Ask(
      {{"type", "submit"}, {"skills", {"plan"}}, {"payload", "too deep"}, {"parent", child}}, 2);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->value("code", ""), "invalid_request") << refused->dump();
  EXPECT_NE(refused->value("message", "").find("tasks.max_depth"), std::string::npos);
  EXPECT_EQ(Stats(*client_).value("submitted", 0), 2);
}

TEST_F(SubtasksTest, AChildStarvedByItsOwnAncestorsSaysSoInWhy) {
  Start();
  Planner planner;  // the only worker with skill plan, one slot
  ASSERT_TRUE(planner.Connect(daemon_->address(), "plan", 1));
  const std::string parent = PlannerTakes(planner);
  auto ok = planner.Ask(
      {{"type", "submit"}, {"skills", {"plan"}}, {"payload", "sub"}, {"parent", parent}}, 1);
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->value("type", ""), "ok") << ok->dump();
  const json child = TaskStatus(*client_, ok->value("id", ""));
  EXPECT_EQ(child.value("state", ""), "queued") << child.dump();
  EXPECT_EQ(child.value("why_code", ""), "ancestors_hold_workers") << child.dump();
  EXPECT_NE(child.value("why", "").find("its own ancestors"), std::string::npos) << child.dump();

  // A task of a client that waits on the same full worker is only full.
  const std::string other = SubmitTask(*client_, {{"skills", {"plan"}}, {"payload", "x"}});
  EXPECT_EQ(TaskStatus(*client_, other).value("why_code", ""), "workers_full");
}

TEST_F(SubtasksTest, AChildWhoseWorkersAreOnlyPartlyHeldByAncestorsIsFullWithACount) {
  Start();
  Planner planner;
  ASSERT_TRUE(planner.Connect(daemon_->address(), "plan", 2));
  const std::string parent = PlannerTakes(planner);
  // A client's task takes the second slot.
  const std::string other = SubmitTask(*client_, {{"skills", {"plan"}}, {"payload", "x"}});
  auto task = planner.Next("task");
  ASSERT_TRUE(task);
  ASSERT_EQ(task->value("id", ""), other);
  auto ok = planner.Ask(
      {{"type", "submit"}, {"skills", {"plan"}}, {"payload", "sub"}, {"parent", parent}}, 1);
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->value("type", ""), "ok") << ok->dump();
  const json child = TaskStatus(*client_, ok->value("id", ""));
  EXPECT_EQ(child.value("why_code", ""), "workers_full") << child.dump();
  EXPECT_NE(child.value("why", "").find("1 of 2 slots held by its own ancestors"),
            std::string::npos)
      << child.dump();
}

TEST_F(SubtasksTest, ParentAndChildrenSurviveARestartOfASqliteStore) {
  Start("store: { kind: sqlite }\nheartbeat: { interval: 5s, misses: 100 }\n");
  std::string parent;
  std::vector<std::string> children;
  {
    Planner planner;
    ASSERT_TRUE(planner.Connect(daemon_->address()));
    parent = PlannerTakes(planner);
    for (int i = 1; i <= 2; ++i) {
      auto ok = planner.Ask(
          {{"type", "submit"}, {"skills", {"leaf"}}, {"payload", i}, {"parent", parent}}, i);
      ASSERT_TRUE(ok);
      ASSERT_EQ(ok->value("type", ""), "ok") << ok->dump();
      children.push_back(ok->value("id", ""));
    }
    daemon_->Kill9();
  }
  ASSERT_TRUE(daemon_->Restart());
  client_ = ConnectClient(daemon_->address());
  ASSERT_NE(client_, nullptr);
  const json p = TaskStatus(*client_, parent);
  EXPECT_EQ(p["children"], json(children)) << p.dump();
  EXPECT_EQ(p.value("state", ""), "queued") << "its attempt was cut short: it runs again";
  for (const std::string& c : children) {
    EXPECT_EQ(TaskStatus(*client_, c)["parent"], parent);
  }
  // The parent's next attempt keeps its children, and still takes them
  // with it when it ends.
  Ask(*client_, {{"type", "cancel"}, {"id", parent}});
  for (const std::string& c : children) {
    EXPECT_EQ(WaitEnd(*client_, c).value("state", ""), "cancelled");
  }
}

}  // namespace
}  // namespace pincer::test
