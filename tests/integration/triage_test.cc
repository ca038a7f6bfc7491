// An agent-decided route (routing.rules[].triage), against a real pincerd
// over TCP with real worker connections: a skill-less task under a triage
// rule first goes to a `classify` worker as a triage step ("triage": true,
// the task's payload); its output {"skills": [...]} routes the task. A
// step that fails, answers anything else, times out or loses its worker
// leaves the task to its own skills; `status` says which. A pincerd killed
// mid-triage triages again after its restart.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/scenario.h"
#include "support/test_worker.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

// skill_match: a task of no skills goes to the worker of fewest skills,
// the plain one, unless triage names a skill: the fallback is seen.
constexpr const char* kRules =
    "routing:\n"
    "  rules:\n"
    "    - { skills: [], triage: classify, strategy: skill_match }\n";

std::string Config(const std::string& store = "memory", const std::string& rules = kRules) {
  return "store: { kind: " + store + " }\n" + rules;
}

TaskReply Answer(json output) {
  TaskReply r;
  r.output = std::move(output);
  return r;
}
TaskReply Fail(std::string error) {
  TaskReply r;
  r.ok = false;
  r.error = std::move(error);
  return r;
}
TaskReply Silent() {
  TaskReply r;
  r.send = false;
  return r;
}

class TriageTest : public ::testing::Test {
 protected:
  void Start(const std::string& config) {
    daemon_ = std::make_unique<DaemonProcess>(config);
    ASSERT_TRUE(daemon_->Start());
    client_ = ConnectClient(daemon_->address());
    ASSERT_NE(client_, nullptr);
  }
  std::unique_ptr<TestWorker> Worker(const std::string& name, std::vector<std::string> skills) {
    TestWorkerOptions o;
    o.name = name;
    o.skills = std::move(skills);
    auto w = TestWorker::Connect(daemon_->address(), o);
    EXPECT_TRUE(w.ok());
    return w.ok() ? std::move(w).value() : nullptr;
  }
  // A classify worker that answers every triage step with `reply`.
  std::unique_ptr<TestWorker> Classifier(TaskReply reply) {
    auto w = Worker("classifier", {"classify"});
    if (w) {
      w->StartAuto({.handler = [reply](const json&) { return reply; }});
    }
    return w;
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(TriageTest, ASkilllessTaskRunsWhereTheClassifyWorkerSays) {
  Start(Config());
  auto plain = Worker("plain", {});
  auto gpu = Worker("gpu", {"gpu"});
  auto classifier = Worker("classifier", {"classify"});
  ASSERT_TRUE(plain && gpu && classifier);
  plain->StartAuto();
  gpu->StartAuto();

  const std::string id = SubmitTask(*client_, {{"payload", {{"prompt", "render a frame"}}}});
  ASSERT_FALSE(id.empty());
  // The step: a task of skill classify, marked as triage, with the
  // task's payload, whose parent is the task.
  auto step = classifier->NextTask(seconds(20));
  ASSERT_TRUE(step);
  EXPECT_EQ(step->value("triage", false), true) << step->dump();
  EXPECT_EQ((*step)["payload"], json({{"prompt", "render a frame"}})) << step->dump();
  EXPECT_EQ((*step)["skills"], json({"classify"})) << step->dump();
  const std::string step_id = step->value("id", "");
  EXPECT_EQ(TaskStatus(*client_, step_id)["parent"], id);

  // While it is triaged, the task waits for its step.
  const json waiting = TaskStatus(*client_, id);
  EXPECT_EQ(waiting.value("state", ""), "queued") << waiting.dump();
  EXPECT_EQ(waiting.value("why_code", ""), "triage") << waiting.dump();
  EXPECT_EQ(waiting["triage"].value("state", ""), "pending") << waiting.dump();

  ASSERT_TRUE(classifier->SendResult(step_id, true, {{"skills", {"gpu"}}}));
  const json end = WaitEnd(*client_, id);
  EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
  EXPECT_EQ(end.value("worker", ""), gpu->id()) << "routed by the decided skill gpu";
  EXPECT_EQ(plain->tasks_received(), 0);

  const json s = TaskStatus(*client_, id);
  EXPECT_EQ(s["skills"], json::array()) << "its own skills stay as submitted";
  const json& t = s["triage"];
  EXPECT_EQ(t.value("skill", ""), "classify") << s.dump();
  EXPECT_EQ(t.value("task", ""), step_id);
  EXPECT_EQ(t.value("worker", ""), classifier->id());
  EXPECT_EQ(t.value("state", ""), "decided");
  EXPECT_EQ(t["skills"], json({"gpu"}));
  EXPECT_TRUE(t["error"].is_null());
  EXPECT_EQ(s["children"], json({step_id}));

  // pincerctl status shows it, in words and in --json.
  const CtlResult shown = RunCtl(daemon_->address(), {"status", id});
  EXPECT_EQ(shown.exit_code, 0) << shown;
  EXPECT_NE(shown.out.find("triage:   decided gpu, by step " + step_id + " (classify on " +
                           classifier->id() + ")"),
            std::string::npos)
      << shown;
  const CtlResult as_json = RunCtl(daemon_->address(), {"--json", "status", id});
  EXPECT_EQ(as_json.Json()["triage"], t) << as_json;
}

TEST_F(TriageTest, TasksWithSkillsAreNotTriaged) {
  Start(Config());
  auto gpu = Worker("gpu", {"gpu"});
  auto classifier = Worker("classifier", {"classify"});
  ASSERT_TRUE(gpu && classifier);
  gpu->StartAuto();
  classifier->StartAuto();
  const std::string id = SubmitTask(*client_, {{"skills", {"gpu"}}, {"payload", 1}});
  EXPECT_EQ(WaitEnd(*client_, id).value("worker", ""), gpu->id());
  EXPECT_EQ(classifier->tasks_received(), 0);
  EXPECT_FALSE(TaskStatus(*client_, id).contains("triage"));
}

TEST_F(TriageTest, BadOrFailedTriageFallsBackToTheTasksOwnSkills) {
  Start(Config());
  auto plain = Worker("plain", {});
  auto gpu = Worker("gpu", {"gpu"});
  ASSERT_TRUE(plain && gpu);
  plain->StartAuto();
  gpu->StartAuto();
  const std::vector<TaskReply> replies = {
      Fail("model overloaded"),
      Answer({{"nope", 1}}),
      Answer({{"skills", "gpu"}}),
      Answer({{"skills", {1, 2}}}),
      Answer({{"skills", {""}}}),
      Answer("gpu"),
      Answer(nullptr),
  };
  for (const TaskReply& reply : replies) {
    auto classifier = Classifier(reply);
    ASSERT_TRUE(classifier);
    const std::string id = SubmitTask(*client_, {{"payload", "x"}});
    const json end = WaitEnd(*client_, id);
    EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
    EXPECT_EQ(end.value("worker", ""), plain->id()) << "by its own skills (none), skill_match";
    const json t = TaskStatus(*client_, id)["triage"];
    EXPECT_EQ(t.value("state", ""), "fallback") << t.dump();
    EXPECT_TRUE(t["skills"].is_null()) << t.dump();
    EXPECT_FALSE(t.value("error", "").empty()) << t.dump();
    EXPECT_EQ(classifier->tasks_received(), 1) << "a triage step has one attempt";
  }
  EXPECT_EQ(gpu->tasks_received(), 0);
}

TEST_F(TriageTest, AClassifyWorkerThatDiesOrTimesOutLeavesTheTaskToItsRule) {
  Start(Config("memory",
               "routing:\n"
               "  rules:\n"
               "    - { skills: [], triage: classify, triage_timeout: 300ms,"
               " strategy: skill_match }\n"));
  auto plain = Worker("plain", {});
  ASSERT_TRUE(plain);
  plain->StartAuto();
  {
    auto classifier = Worker("classifier", {"classify"});
    ASSERT_TRUE(classifier);
    const std::string id = SubmitTask(*client_, {{"payload", "dies"}});
    ASSERT_TRUE(classifier->NextTask(seconds(20)));
    classifier->Close();
    const json end = WaitEnd(*client_, id);
    EXPECT_EQ(end.value("worker", ""), plain->id()) << end.dump();
    const json t = TaskStatus(*client_, id)["triage"];
    EXPECT_EQ(t.value("state", ""), "fallback") << t.dump();
    EXPECT_NE(t.value("error", "").find("failed"), std::string::npos) << t.dump();
  }
  {
    auto classifier = Classifier(Silent());  // never answers
    ASSERT_TRUE(classifier);
    const std::string id = SubmitTask(*client_, {{"payload", "slow"}});
    const json end = WaitEnd(*client_, id);
    EXPECT_EQ(end.value("worker", ""), plain->id()) << end.dump();
    const json t = TaskStatus(*client_, id)["triage"];
    EXPECT_EQ(t.value("state", ""), "fallback") << t.dump();
    EXPECT_NE(t.value("error", "").find("timed_out"), std::string::npos) << t.dump();
  }
}

TEST_F(TriageTest, CancellingATaskInTriageCancelsItsStep) {
  Start(Config());
  auto classifier = Worker("classifier", {"classify"});
  ASSERT_TRUE(classifier);
  const std::string id = SubmitTask(*client_, {{"payload", "x"}});
  auto step = classifier->NextTask(seconds(20));
  ASSERT_TRUE(step);
  Ask(*client_, {{"type", "cancel"}, {"id", id}});
  EXPECT_EQ(WaitEnd(*client_, step->value("id", "")).value("state", ""), "cancelled");
  EXPECT_EQ(WaitEnd(*client_, id).value("state", ""), "cancelled");
}

TEST_F(TriageTest, AClientMayNotUseATriageStepsKey) {
  Start(Config());
  for (const std::string key : {"pincer:triage:t1", "pincer:anything"}) {
    auto answer = client_->Request({{"type", "submit"}, {"payload", 1}, {"key", key}}, seconds(10));
    ASSERT_FALSE(answer.ok()) << key;
    EXPECT_EQ(answer.error().code, "invalid_request") << answer.error().ToString();
    EXPECT_NE(answer.error().message.find("pincerd's own"), std::string::npos)
        << answer.error().ToString();
  }
  EXPECT_EQ(Stats(*client_).value("submitted", -1), 0);
}

TEST_F(TriageTest, AReloadAppliesToNewTasksAndATaskInTriageKeepsItsStep) {
  Start(Config());
  auto plain = Worker("plain", {});
  auto gpu = Worker("gpu", {"gpu"});
  auto classifier = Worker("classifier", {"classify"});
  ASSERT_TRUE(plain && gpu && classifier);
  plain->StartAuto();
  gpu->StartAuto();
  const std::string in_triage = SubmitTask(*client_, {{"payload", "a"}});
  auto step = classifier->NextTask(seconds(20));
  ASSERT_TRUE(step);

  // The triage rule goes: a new skill-less task is placed at once.
  daemon_->SetConfig("store: { kind: memory }\nrouting: { rules: [] }\n");
  const json reloaded = Ask(*client_, {{"type", "reload"}});
  ASSERT_EQ(reloaded.value("type", ""), "ok") << reloaded.dump();
  const std::string direct = SubmitTask(*client_, {{"payload", "b"}});
  EXPECT_EQ(WaitEnd(*client_, direct).value("state", ""), "succeeded");
  EXPECT_FALSE(TaskStatus(*client_, direct).contains("triage"));

  // The task already in triage is routed by its step all the same.
  ASSERT_TRUE(classifier->SendResult(step->value("id", ""), true, {{"skills", {"gpu"}}}));
  EXPECT_EQ(WaitEnd(*client_, in_triage).value("worker", ""), gpu->id());

  // Back again: new tasks are triaged.
  daemon_->SetConfig(Config());
  ASSERT_EQ(Ask(*client_, {{"type", "reload"}}).value("type", ""), "ok");
  const std::string again = SubmitTask(*client_, {{"payload", "c"}});
  auto next = classifier->NextTask(seconds(20));
  ASSERT_TRUE(next);
  EXPECT_EQ(TaskStatus(*client_, next->value("id", ""))["parent"], again);
}

TEST_F(TriageTest, ATaskKilledMidTriageIsTriagedAgainAfterARestart) {
  Start(Config("sqlite"));
  std::string id;
  {
    auto classifier = Worker("classifier", {"classify"});
    ASSERT_TRUE(classifier);
    id = SubmitTask(*client_, {{"payload", "durable"}});
    ASSERT_FALSE(id.empty());
    ASSERT_TRUE(classifier->NextTask(seconds(20)));  // the step runs, unanswered
    daemon_->Kill9();
  }
  ASSERT_TRUE(daemon_->Restart());
  client_ = ConnectClient(daemon_->address());
  ASSERT_NE(client_, nullptr);
  EXPECT_EQ(TaskStatus(*client_, id).value("why_code", ""), "triage");
  auto plain = Worker("plain", {});
  auto gpu = Worker("gpu", {"gpu"});
  auto classifier = Classifier(Answer({{"skills", {"gpu"}}}));
  ASSERT_TRUE(plain && gpu && classifier);
  plain->StartAuto();
  gpu->StartAuto();
  const json end = WaitEnd(*client_, id);
  EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
  EXPECT_EQ(end.value("worker", ""), gpu->id());
  EXPECT_EQ(TaskStatus(*client_, id)["triage"].value("state", ""), "decided");

  // Decided before a restart: the decision is read back, not asked again.
  const std::string second = SubmitTask(*client_, {{"payload", "twice"}});
  EXPECT_EQ(WaitEnd(*client_, second).value("worker", ""), gpu->id());
  const int asked = classifier->tasks_received();
  classifier.reset();
  gpu.reset();
  plain.reset();
  daemon_->Kill9();
  ASSERT_TRUE(daemon_->Restart());
  client_ = ConnectClient(daemon_->address());
  ASSERT_NE(client_, nullptr);
  const json t = TaskStatus(*client_, second)["triage"];
  EXPECT_EQ(t.value("state", ""), "decided") << t.dump();
  EXPECT_EQ(t["skills"], json({"gpu"}));
  EXPECT_EQ(asked, 2);
}

TEST_F(TriageTest, AQueuedTaskWithoutAStepIsTriagedAfterARestart) {
  // Queued before its rule triaged: a restart under a triage rule finds no
  // step for it and submits one.
  Start(Config("sqlite", "routing: { rules: [] }\n"));
  const std::string id = SubmitTask(*client_, {{"payload", "late"}});
  ASSERT_FALSE(id.empty());
  daemon_->Kill9();
  daemon_->SetConfig(Config("sqlite"));
  ASSERT_TRUE(daemon_->Restart());
  client_ = ConnectClient(daemon_->address());
  ASSERT_NE(client_, nullptr);
  auto classifier = Worker("classifier", {"classify"});
  auto gpu = Worker("gpu", {"gpu"});
  ASSERT_TRUE(classifier && gpu);
  gpu->StartAuto();
  auto step = classifier->NextTask(seconds(20));
  ASSERT_TRUE(step);
  EXPECT_EQ(step->value("triage", false), true);
  EXPECT_EQ((*step)["payload"], "late");
  ASSERT_TRUE(classifier->SendResult(step->value("id", ""), true, {{"skills", {"gpu"}}}));
  EXPECT_EQ(WaitEnd(*client_, id).value("worker", ""), gpu->id());
}

}  // namespace
}  // namespace pincer::test
