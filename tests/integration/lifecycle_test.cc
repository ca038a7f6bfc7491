// The task lifecycle against a real pincerd: workers that die (kill -9 of a
// real pincer-worker, or a worker that stops heartbeating) while holding
// tasks, failures up to max_attempts, attempt timeouts with cancel, cancel
// of queued and running tasks, idempotency keys.
#include <gtest/gtest.h>
#include <signal.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/scenario.h"
#include "support/subprocess.h"
#include "support/test_worker.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kBase = "store: { kind: memory }\n";

std::string Bin(const std::string& name) { return std::string(PINCER_BUILD_DIR) + "/" + name; }

class LifecycleTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& extra = "") {
    daemon_ = std::make_unique<DaemonProcess>(std::string(kBase) + extra);
    ASSERT_TRUE(daemon_->Start());
    addr_ = daemon_->address();
    client_ = ConnectClient(addr_);
    ASSERT_NE(client_, nullptr);
  }
  std::unique_ptr<TestWorker> Worker(const std::string& name, std::vector<std::string> skills,
                                     int capacity = 1, bool heartbeat = true) {
    TestWorkerOptions o;
    o.name = name;
    o.skills = std::move(skills);
    o.capacity = capacity;
    o.auto_heartbeat = heartbeat;
    auto w = TestWorker::Connect(addr_, o);
    if (!w.ok()) {
      ADD_FAILURE() << w.error().ToString();
      return nullptr;
    }
    return std::move(w).value();
  }
  // A real pincer-worker process running `command` per task.
  std::unique_ptr<ChildProcess> RealWorker(const std::string& name, const std::string& skill,
                                           int capacity, std::vector<std::string> command) {
    std::vector<std::string> argv = {
        Bin("pincer-worker"),     "--addr", addr_, "--name", name, "--skill", skill, "--capacity",
        std::to_string(capacity), "--"};
    argv.insert(argv.end(), command.begin(), command.end());
    auto child = std::make_unique<ChildProcess>();
    const std::string err = child->Start(argv, daemon_->dir() + "/" + name + ".out",
                                         daemon_->dir() + "/" + name + ".err");
    EXPECT_EQ(err, "");
    return child;
  }
  // The id of the connected worker called `name`, or "" after a bounded wait.
  std::string WorkerIdByName(const std::string& name) {
    std::string id;
    WaitFor([&] {
      for (const json& w : Workers(*client_)) {
        if (w.value("name", "") == name) id = w.value("id", "");
      }
      return !id.empty();
    });
    return id;
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::string addr_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(LifecycleTest, TasksOfAWorkerKilledWithSigkillRunAgainElsewhereAndSucceed) {
  // pincer-worker lists its tasks in its hello (it keeps them through a
  // lost connection): pincerd holds them for heartbeat.adopt_grace for it
  // to come back, then runs them elsewhere.
  StartDaemon("heartbeat: { adopt_grace: 200ms }\n");
  auto victim = RealWorker("victim", "job", 2, {"sleep", "30"});
  const std::string victim_id = WorkerIdByName("victim");
  ASSERT_FALSE(victim_id.empty());
  const std::string a = SubmitTask(*client_, {{"skills", {"job"}}, {"payload", "alpha"}});
  const std::string b = SubmitTask(*client_, {{"skills", {"job"}}, {"payload", "beta"}});
  ASSERT_TRUE(WaitState(*client_, a, "running"));
  ASSERT_TRUE(WaitState(*client_, b, "running"));
  EXPECT_EQ(TaskStatus(*client_, a)["worker"], victim_id);
  EXPECT_EQ(TaskStatus(*client_, b)["worker"], victim_id);

  auto rescuer = RealWorker("rescuer", "job", 2, {"cat"});
  const std::string rescuer_id = WorkerIdByName("rescuer");
  ASSERT_FALSE(rescuer_id.empty());
  victim->Signal(SIGKILL);  // the worker process only; its `sleep`s die with the group later

  for (const auto& [id, payload] : {std::pair{a, "alpha"}, std::pair{b, "beta"}}) {
    json end = WaitEnd(*client_, id);
    EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
    EXPECT_EQ(end.value("attempts", 0), 2) << end.dump();
    EXPECT_EQ(end["worker"], rescuer_id);
    EXPECT_EQ(end["output"], payload);
    ASSERT_EQ(end["errors"].size(), 1u) << end.dump();
    EXPECT_EQ(end["errors"][0]["worker"], victim_id);
    EXPECT_EQ(end["errors"][0]["attempt"], 1);
  }
  CtlResult st = RunCtl(addr_, {"--json", "status", a});
  EXPECT_EQ(st.exit_code, 0) << st;
  EXPECT_EQ(st.Json().value("state", ""), "succeeded") << st;
  EXPECT_EQ(st.Json().value("attempts", 0), 2) << st;
  EXPECT_EQ(FindWorker(Workers(*client_), victim_id), nullptr) << "the dead worker is gone";
  rescuer->KillGroup();
  victim->KillGroup();
}

TEST_F(LifecycleTest, TasksOfAWorkerThatStopsHeartbeatingRunAgainElsewhere) {
  StartDaemon("heartbeat: { interval: 200ms, misses: 2 }\n");
  auto silent = Worker("silent", {"job"}, 2, /*heartbeat=*/false);
  ASSERT_NE(silent, nullptr);
  const std::string a = SubmitTask(*client_, {{"skills", {"job"}}, {"payload", 1}});
  const std::string b = SubmitTask(*client_, {{"skills", {"job"}}, {"payload", 2}});
  ASSERT_TRUE(silent->NextTask(seconds(5)));
  ASSERT_TRUE(silent->NextTask(seconds(5)));
  auto healthy = Worker("healthy", {"job"}, 2);
  ASSERT_NE(healthy, nullptr);
  healthy->StartAuto();

  for (const std::string& id : {a, b}) {
    json end = WaitEnd(*client_, id);
    ASSERT_TRUE(end.is_object()) << TaskStatus(*client_, id).dump() << "\n"
                                 << Workers(*client_).dump();
    EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
    EXPECT_EQ(end.value("attempts", 0), 2) << end.dump();
    EXPECT_EQ(end["worker"], healthy->id());
    ASSERT_EQ(end["errors"].size(), 1u) << end.dump();
    EXPECT_EQ(end["errors"][0]["worker"], silent->id());
    EXPECT_NE(end["errors"][0].value("error", "").find("heartbeat"), std::string::npos)
        << end.dump();
  }
  // The silent worker's connection was closed: a late result cannot land.
  EXPECT_TRUE(WaitFor([&] {
    silent->NextMessage(milliseconds(50));
    return !silent->connected();
  }));
  silent->SendResult(a, false, "too late");
  EXPECT_EQ(TaskStatus(*client_, a).value("state", ""), "succeeded");
  EXPECT_EQ(TaskStatus(*client_, a).value("attempts", 0), 2);
  // (The counter moves just after the send, so poll for it.)
  EXPECT_TRUE(WaitFor([&] { return healthy->results_sent() == 2; }));
}

TEST_F(LifecycleTest, ATaskThatKeepsFailingEndsFailedAfterMaxAttemptsWithEveryError) {
  StartDaemon();
  auto w = Worker("flaky", {"job"});
  AutoOptions o;
  o.handler = [](const json& task) {
    TaskReply r;
    r.ok = false;
    r.error = "boom on attempt " + std::to_string(task.value("attempt", 0));
    r.retryable = true;
    return r;
  };
  w->StartAuto(o);
  CtlResult r = RunCtl(addr_, {"--json", "submit", "--skill", "job", "--payload", "1",
                               "--max-attempts", "3", "--wait"});
  EXPECT_EQ(r.exit_code, 1) << "ended in a state other than succeeded: " << r;
  json end = r.Json();
  EXPECT_EQ(end.value("state", ""), "failed") << r;
  EXPECT_EQ(end.value("attempts", 0), 3) << r;
  EXPECT_EQ(end.value("error", ""), "boom on attempt 3") << r;

  json status = TaskStatus(*client_, end.value("id", ""));
  ASSERT_EQ(status["errors"].size(), 3u) << status.dump();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(status["errors"][i]["attempt"], i + 1);
    EXPECT_EQ(status["errors"][i]["error"], "boom on attempt " + std::to_string(i + 1));
    EXPECT_EQ(status["errors"][i]["worker"], w->id());
  }
  EXPECT_EQ(w->tasks_received(), 3);

  // A non-retryable failure ends at once.
  AutoOptions fatal;
  fatal.handler = [](const json&) {
    TaskReply r;
    r.ok = false;
    r.error = "bad input";
    r.retryable = false;
    return r;
  };
  w->StartAuto(fatal);
  json once = WaitEnd(*client_, SubmitTask(*client_, {{"skills", {"job"}}, {"max_attempts", 3}}));
  EXPECT_EQ(once.value("state", ""), "failed");
  EXPECT_EQ(once.value("attempts", 0), 1);
}

TEST_F(LifecycleTest, ATaskThatRunsTooLongEndsTimedOutAndTheWorkerGetsCancel) {
  StartDaemon();
  auto w = Worker("stuck", {"job"});
  AutoOptions o;
  o.handler = [](const json&) {
    TaskReply r;
    r.send = false;  // never answers
    return r;
  };
  w->StartAuto(o);
  const std::string id =
      SubmitTask(*client_, {{"skills", {"job"}}, {"timeout", "300ms"}, {"max_attempts", 2}});
  json end = WaitEnd(*client_, id);
  EXPECT_EQ(end.value("state", ""), "timed_out") << end.dump();
  EXPECT_EQ(end.value("attempts", 0), 2);
  EXPECT_EQ(end["errors"].size(), 2u) << end.dump();
  ASSERT_TRUE(WaitFor([&] { return w->cancels_received() == 2; })) << w->cancels_received();
  int cancels_for_task = 0;
  for (const json& e : w->events()) {
    if (e.value("type", "") == "cancel" && e.value("id", "") == id) ++cancels_for_task;
  }
  EXPECT_EQ(cancels_for_task, 2);
  EXPECT_EQ(w->tasks_received(), 2);
}

TEST_F(LifecycleTest, ATimedOutRealWorkerKillsItsChild) {
  StartDaemon();
  auto worker = RealWorker("sleeper", "nap", 1, {"sleep", "30"});
  ASSERT_FALSE(WorkerIdByName("sleeper").empty());
  const std::string id =
      SubmitTask(*client_, {{"skills", {"nap"}}, {"timeout", "300ms"}, {"max_attempts", 1}});
  json end = WaitEnd(*client_, id);
  EXPECT_EQ(end.value("state", ""), "timed_out") << end.dump();
  // The worker is free again: a second task runs on it (and times out too,
  // which only happens if the first `sleep` was stopped or never blocked it).
  const std::string id2 =
      SubmitTask(*client_, {{"skills", {"nap"}}, {"timeout", "300ms"}, {"max_attempts", 1}});
  EXPECT_TRUE(WaitState(*client_, id2, "timed_out"));
  worker->KillGroup();
}

TEST_F(LifecycleTest, CancelWorksOnQueuedAndRunningTasks) {
  StartDaemon();
  // Queued: nobody has the skill.
  const std::string queued = SubmitTask(*client_, {{"skills", {"nobody"}}});
  CtlResult r = RunCtl(addr_, {"--json", "cancel", queued});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(TaskStatus(*client_, queued).value("state", ""), "cancelled");

  // Running: the worker holds it and gets `cancel`.
  auto w = Worker("holder", {"job"});
  AutoOptions o;
  o.handler = [](const json&) {
    TaskReply reply;
    reply.send = false;
    return reply;
  };
  w->StartAuto(o);
  const std::string running = SubmitTask(*client_, {{"skills", {"job"}}});
  ASSERT_TRUE(WaitState(*client_, running, "running"));
  r = RunCtl(addr_, {"--json", "cancel", running});
  EXPECT_EQ(r.exit_code, 0) << r;
  ASSERT_TRUE(WaitFor([&] { return w->cancels_received() == 1; }));
  EXPECT_EQ(w->events().back().value("id", ""), running);
  json end = WaitEnd(*client_, running);
  EXPECT_EQ(end.value("state", ""), "cancelled");

  // An ended task cannot be cancelled; an unknown one is not found.
  auto again = client_->Request({{"type", "cancel"}, {"id", running}});
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, "invalid_state");
  auto unknown = client_->Request({{"type", "cancel"}, {"id", "t999999"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, "not_found");
  EXPECT_EQ(RunCtl(addr_, {"cancel", "t999999"}).exit_code, 4);

  json stats = Stats(*client_);
  EXPECT_EQ(stats.value("cancelled", 0), 2) << stats.dump();
}

TEST_F(LifecycleTest, ARepeatedIdempotencyKeyReturnsTheSameId) {
  StartDaemon();
  CtlResult first = RunCtl(addr_, {"--json", "submit", "--key", "order-7", "--payload", "1"});
  CtlResult second = RunCtl(addr_, {"--json", "submit", "--key", "order-7", "--payload", "1"});
  ASSERT_EQ(first.exit_code, 0) << first;
  ASSERT_EQ(second.exit_code, 0) << second;
  const std::string id = first.Json().value("id", "");
  EXPECT_FALSE(id.empty()) << first;
  EXPECT_EQ(second.Json().value("id", ""), id) << second;
  // Another payload under the key is refused (conflict), and changes nothing.
  CtlResult conflict = RunCtl(addr_, {"--json", "submit", "--key", "order-7", "--payload", "2"});
  EXPECT_EQ(conflict.exit_code, 2) << conflict;
  auto third = client_->Request({{"type", "submit"}, {"key", "order-7"}, {"payload", 1}});
  ASSERT_TRUE(third.ok());
  EXPECT_EQ((*third)["id"], id);
  EXPECT_EQ((*third)["existing"], true);
  EXPECT_EQ(Stats(*client_).value("submitted", 0), 1);
  EXPECT_EQ(TaskStatus(*client_, id)["payload"], 1) << "the first submit's task, unchanged";
  const std::string other = SubmitTask(*client_, {{"key", "order-8"}});
  EXPECT_NE(other, id);
}

}  // namespace
}  // namespace pincer::test
