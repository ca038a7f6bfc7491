// Routing through a real pincerd over real sockets: the strategies, the
// unroutable wait, priorities without head-of-line blocking, and sessions.
// Workers are TestWorkers (the worker protocol spoken from the test); the
// observable results are read with `pincerctl --json` and client requests.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
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
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr const char* kBase =
    "store: { kind: memory }\n"
    "tasks: { timeout: 30s }\n";

std::unique_ptr<TestWorker> StartWorker(const std::string& addr, std::string name,
                                        std::vector<std::string> skills, int capacity = 1,
                                        AutoOptions auto_options = {}) {
  TestWorkerOptions o;
  o.name = std::move(name);
  o.skills = std::move(skills);
  o.capacity = capacity;
  auto w = TestWorker::Connect(addr, o);
  if (!w.ok()) {
    ADD_FAILURE() << "worker connect: " << w.error().ToString();
    return nullptr;
  }
  (*w)->StartAuto(std::move(auto_options));
  return std::move(w).value();
}

// Answers tasks whose payload is "long" never (they stay running), others at once.
AutoOptions HoldLongTasks() {
  AutoOptions o;
  o.handler = [](const json& task) {
    TaskReply r;
    r.output = task["payload"];
    r.send = task["payload"] != "long";
    return r;
  };
  return o;
}

// `pincerctl workers --json`, by worker id.
std::map<std::string, json> CtlWorkers(const std::string& addr) {
  CtlResult r = RunCtl(addr, {"--json", "workers"});
  EXPECT_EQ(r.exit_code, 0) << r;
  std::map<std::string, json> out;
  json list = r.Json();
  EXPECT_TRUE(list.is_array()) << r;
  if (!list.is_array()) return out;
  for (const json& w : list) out[w.value("id", "")] = w;
  return out;
}

json CtlStats(const std::string& addr) {
  CtlResult r = RunCtl(addr, {"--json", "stats"});
  EXPECT_EQ(r.exit_code, 0) << r;
  return r.Json();
}

json CtlStatus(const std::string& addr, const std::string& id) {
  CtlResult r = RunCtl(addr, {"--json", "status", id});
  EXPECT_EQ(r.exit_code, 0) << r;
  return r.Json();
}

class RoutingIntegrationTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& extra) {
    daemon_ = std::make_unique<DaemonProcess>(std::string(kBase) + extra);
    ASSERT_TRUE(daemon_->Start());
    addr_ = daemon_->address();
    client_ = ConnectClient(addr_);
    ASSERT_NE(client_, nullptr);
  }
  // Submits `n` tasks pipelined (all sent before any answer is read).
  std::vector<std::string> SubmitBatch(int n, json fields = json::object()) {
    fields["type"] = "submit";
    std::vector<int64_t> reqs;
    for (int i = 0; i < n; ++i) {
      auto req = client_->SendRequest(fields);
      EXPECT_TRUE(req.ok());
      if (req.ok()) reqs.push_back(*req);
    }
    std::vector<std::string> ids;
    for (int64_t req : reqs) {
      auto answer = client_->AwaitReply(req, seconds(10));
      EXPECT_TRUE(answer.ok()) << (answer.ok() ? "" : answer.error().ToString());
      if (answer.ok()) ids.push_back((*answer)["id"]);
    }
    return ids;
  }
  bool WaitSucceeded(uint64_t n) {
    uint64_t succeeded = 0;
    return WaitWhileProgressing(
        [&] {
          succeeded = Stats(*client_).value("succeeded", 0u);
          return succeeded >= n;
        },
        [&] { return succeeded; });
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::string addr_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(RoutingIntegrationTest, RoundRobinSpreads300TasksSubmittedInABatch) {
  StartDaemon("routing: { strategy: round_robin }\n");
  std::vector<std::unique_ptr<TestWorker>> workers;
  for (int i = 0; i < 3; ++i)
    workers.push_back(StartWorker(addr_, "rr" + std::to_string(i), {"echo"}));
  ASSERT_TRUE(WaitFor([&] { return Workers(*client_).size() == 3; }));

  auto ids = SubmitBatch(300, {{"skills", {"echo"}}, {"payload", "x"}});
  ASSERT_EQ(ids.size(), 300u);
  ASSERT_TRUE(WaitSucceeded(300));
  auto listed = CtlWorkers(addr_);
  ASSERT_EQ(listed.size(), 3u);
  for (const auto& w : workers) {
    const json& v = listed[w->id()];
    EXPECT_NEAR(v.value("completed", 0), 100, 1) << w->id() << ": " << v.dump();
    EXPECT_NEAR(w->tasks_received(), 100, 1) << w->id();
  }
}

TEST_F(RoutingIntegrationTest, RoundRobinSpreads300TasksSubmittedOneByOneWithWait) {
  StartDaemon("routing: { strategy: round_robin }\n");
  std::vector<std::unique_ptr<TestWorker>> workers;
  for (int i = 0; i < 3; ++i)
    workers.push_back(StartWorker(addr_, "rr" + std::to_string(i), {"echo"}));
  ASSERT_TRUE(WaitFor([&] { return Workers(*client_).size() == 3; }));

  for (int i = 0; i < 300; ++i) {
    auto req = client_->SendRequest({{"type", "submit"}, {"skills", {"echo"}}, {"wait", true}});
    ASSERT_TRUE(req.ok());
    auto ok = client_->AwaitReply(*req, seconds(10));
    ASSERT_TRUE(ok.ok());
    auto end = client_->AwaitReply(*req, seconds(10));
    ASSERT_TRUE(end.ok()) << i;
    ASSERT_EQ((*end)["state"], "succeeded") << end->dump();
  }
  auto listed = CtlWorkers(addr_);
  for (const auto& w : workers) {
    EXPECT_NEAR(listed[w->id()].value("completed", 0), 100, 1) << listed[w->id()].dump();
  }
}

TEST_F(RoutingIntegrationTest, LeastConnectionsSendsNewTasksAwayFromABusyWorker) {
  StartDaemon("routing: { strategy: least_connections }\n");
  auto busy = StartWorker(addr_, "busy", {"x"}, 4, HoldLongTasks());
  const std::string long1 = SubmitTask(*client_, {{"skills", {"x"}}, {"payload", "long"}});
  const std::string long2 = SubmitTask(*client_, {{"skills", {"x"}}, {"payload", "long"}});
  ASSERT_TRUE(WaitFor([&] { return busy->tasks_received() == 2; }));
  auto idle = StartWorker(addr_, "idle", {"x"}, 4, HoldLongTasks());
  ASSERT_TRUE(WaitFor([&] { return Workers(*client_).size() == 2; }));

  for (int i = 0; i < 10; ++i) {
    const std::string id = SubmitTask(*client_, {{"skills", {"x"}}, {"payload", i}});
    json end = WaitEnd(*client_, id);
    ASSERT_EQ(end.value("state", ""), "succeeded") << end.dump();
    EXPECT_EQ(end["worker"], idle->id()) << "task " << i << " went to the busy worker";
  }
  EXPECT_EQ(busy->tasks_received(), 2);
  auto listed = CtlWorkers(addr_);
  EXPECT_EQ(listed[busy->id()].value("inflight", -1), 2);
  EXPECT_EQ(listed[idle->id()].value("completed", 0), 10);
}

TEST_F(RoutingIntegrationTest, SkillMatchPrefersTheSpecialistAndSpillsToTheGeneralist) {
  StartDaemon("routing: { strategy: skill_match }\n");
  auto generalist = StartWorker(addr_, "generalist", {"code", "echo", "text"}, 1, HoldLongTasks());
  auto specialist = StartWorker(addr_, "specialist", {"code"}, 1, HoldLongTasks());
  ASSERT_TRUE(WaitFor([&] { return Workers(*client_).size() == 2; }));

  for (int i = 0; i < 5; ++i) {
    const std::string id = SubmitTask(*client_, {{"skills", {"code"}}, {"payload", i}});
    json end = WaitEnd(*client_, id);
    EXPECT_EQ(end["worker"], specialist->id()) << end.dump();
  }
  EXPECT_EQ(generalist->tasks_received(), 0);

  // The specialist is full: the next code task spills over to the generalist.
  const std::string held = SubmitTask(*client_, {{"skills", {"code"}}, {"payload", "long"}});
  ASSERT_TRUE(WaitState(*client_, held, "running"));
  EXPECT_EQ(TaskStatus(*client_, held)["worker"], specialist->id());
  const std::string spill = SubmitTask(*client_, {{"skills", {"code"}}, {"payload", "spill"}});
  json end = WaitEnd(*client_, spill);
  EXPECT_EQ(end.value("state", ""), "succeeded");
  EXPECT_EQ(end["worker"], generalist->id());
  EXPECT_EQ(CtlStatus(addr_, spill)["worker"], generalist->id());
}

TEST_F(RoutingIntegrationTest, ATaskForAMissingSkillWaitsAsUnroutableAndRunsWhenAWorkerComes) {
  StartDaemon("");
  auto echo = StartWorker(addr_, "echo", {"echo"});
  const std::string id = SubmitTask(*client_, {{"skills", {"gpu"}}, {"payload", "render"}});
  ASSERT_FALSE(id.empty());

  json stats = CtlStats(addr_);
  EXPECT_EQ(stats.value("unroutable", -1), 1) << stats.dump();
  EXPECT_EQ(stats.value("queued", -1), 1) << stats.dump();
  json status = CtlStatus(addr_, id);
  EXPECT_EQ(status.value("state", ""), "queued");
  EXPECT_NE(status.value("why", "").find("gpu"), std::string::npos) << status.dump();

  // Other work is not held up meanwhile.
  json other = WaitEnd(*client_, SubmitTask(*client_, {{"skills", {"echo"}}}));
  EXPECT_EQ(other.value("state", ""), "succeeded");

  auto gpu = StartWorker(addr_, "gpu", {"gpu"});
  json end = WaitEnd(*client_, id);
  EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
  EXPECT_EQ(end["worker"], gpu->id());
  EXPECT_EQ(end["output"], "render");
  EXPECT_EQ(CtlStats(addr_).value("unroutable", -1), 0);
}

TEST_F(RoutingIntegrationTest, PrioritiesOrderTheQueueAndATopTaskNobodyCanTakeBlocksNothing) {
  StartDaemon("");
  const std::string top = SubmitTask(*client_, {{"skills", {"gpu"}}, {"priority", 100}});
  std::vector<std::pair<int, std::string>> echo;  // (priority, id) in submit order
  for (int p : {0, 5, 1, 9, 5, -2}) {
    echo.emplace_back(p, SubmitTask(*client_, {{"skills", {"echo"}}, {"priority", p}}));
  }
  auto worker = StartWorker(addr_, "echo", {"echo"});  // capacity 1: takes them one by one
  ASSERT_TRUE(WaitFor([&] { return worker->results_sent() == 6; }));

  std::vector<std::string> expected = {echo[3].second, echo[1].second, echo[4].second,
                                       echo[2].second, echo[0].second, echo[5].second};
  EXPECT_EQ(worker->task_ids(), expected);
  EXPECT_EQ(TaskStatus(*client_, top).value("state", ""), "queued");
  EXPECT_EQ(CtlStats(addr_).value("unroutable", -1), 1);
}

TEST_F(RoutingIntegrationTest, ASessionStaysOnOneWorkerAndRunsOneAtATimeInOrder) {
  StartDaemon("routing: { strategy: least_connections }\n");
  AutoOptions slow;
  slow.delay = milliseconds(20);
  std::vector<std::unique_ptr<TestWorker>> workers;
  for (int i = 0; i < 3; ++i)
    workers.push_back(StartWorker(addr_, "s" + std::to_string(i), {"chat"}, 4, slow));
  ASSERT_TRUE(WaitFor([&] { return Workers(*client_).size() == 3; }));

  // Session tasks mixed with unrelated ones, all pipelined.
  std::vector<std::string> session_ids;
  for (int i = 0; i < 6; ++i) {
    session_ids.push_back(
        SubmitBatch(1, {{"skills", {"chat"}}, {"session", "conv-1"}, {"payload", i}})[0]);
    SubmitBatch(2, {{"skills", {"chat"}}});
  }
  std::vector<json> ends;
  for (const std::string& id : session_ids) ends.push_back(WaitEnd(*client_, id));
  std::string home;
  for (std::size_t i = 0; i < ends.size(); ++i) {
    ASSERT_EQ(ends[i].value("state", ""), "succeeded") << ends[i].dump();
    if (i == 0) home = ends[i]["worker"];
    EXPECT_EQ(ends[i]["worker"], home) << "session task " << i;
  }
  // One at a time, in order: each started after the previous one ended.
  for (std::size_t i = 1; i < session_ids.size(); ++i) {
    json prev = TaskStatus(*client_, session_ids[i - 1]);
    json cur = TaskStatus(*client_, session_ids[i]);
    EXPECT_GE(cur.value("started_ms", 0), prev.value("ended_ms", 1)) << i;
    EXPECT_EQ(cur.value("attempts", 0), 1);
  }
  // And the home worker received them in submit order.
  for (const auto& w : workers) {
    if (w->id() != home) continue;
    std::vector<std::string> seen;
    for (const std::string& id : w->task_ids()) {
      if (std::find(session_ids.begin(), session_ids.end(), id) != session_ids.end())
        seen.push_back(id);
    }
    EXPECT_EQ(seen, session_ids);
  }
}

// Issue 19: a worker that joins a pool which has served many tasks takes
// its turn in the rotation; it does not take every task until its count
// catches up. (An idle worker of another skill set, which has served
// nothing, once set where newcomers started.)
TEST_F(RoutingIntegrationTest, RoundRobinANewcomerEntersTheRotationInsteadOfTakingEveryTask) {
  StartDaemon("routing: { strategy: round_robin }\n");
  auto old_hand = StartWorker(addr_, "old", {"echo"});
  auto other = StartWorker(addr_, "other", {"other"});
  ASSERT_TRUE(WaitFor([&] { return Workers(*client_).size() == 2; }));
  for (int i = 0; i < 12; ++i) {
    json end = WaitEnd(*client_, SubmitTask(*client_, {{"skills", {"echo"}}, {"payload", i}}));
    ASSERT_EQ(end["worker"], old_hand->id()) << end.dump();
  }

  auto newcomer = StartWorker(addr_, "new", {"echo"});
  ASSERT_TRUE(WaitFor([&] { return Workers(*client_).size() == 3; }));
  std::vector<std::string> order;
  for (int i = 0; i < 8; ++i) {
    json end = WaitEnd(*client_, SubmitTask(*client_, {{"skills", {"echo"}}, {"payload", i}}));
    ASSERT_EQ(end.value("state", ""), "succeeded") << end.dump();
    order.push_back(end["worker"]);
  }
  int to_newcomer = 0;
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (order[i] == newcomer->id()) ++to_newcomer;
    if (i > 0) {
      EXPECT_NE(order[i], order[i - 1]) << "task " << i << " went to the same worker again";
    }
  }
  EXPECT_EQ(to_newcomer, 4);
  EXPECT_EQ(other->tasks_received(), 0);
}

// Issue 16: routing.rules[].max_running. Two tasks of the rule never run at
// once, though the worker has room for three; the waiting ones say why.
TEST_F(RoutingIntegrationTest, MaxRunningOneRunsTheRulesTasksOneAtATime) {
  StartDaemon("routing: { rules: [ { skills: [tts], max_running: 1 } ] }\n");
  TestWorkerOptions o;
  o.name = "tts";
  o.skills = {"tts"};
  o.capacity = 3;
  auto conn = TestWorker::Connect(addr_, o);
  ASSERT_TRUE(conn.ok()) << conn.error().ToString();
  TestWorker& worker = **conn;
  // Other skills are not held by the rule's cap.
  auto echo = StartWorker(addr_, "echo", {"echo"});
  ASSERT_TRUE(WaitFor([&] { return Workers(*client_).size() == 2; }));

  std::vector<std::string> ids = SubmitBatch(3, {{"skills", {"tts"}}, {"payload", "say"}});
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(WaitEnd(*client_, SubmitTask(*client_, {{"skills", {"echo"}}})).value("state", ""),
            "succeeded");
  std::vector<std::string> ran;
  for (int i = 0; i < 3; ++i) {
    auto task = worker.NextTask(seconds(10));
    ASSERT_TRUE(task) << "task " << i << " never came";
    const std::string id = (*task)["id"];
    ran.push_back(id);
    // The worker holds this one task; the rest of the rule's tasks wait,
    // held by the cap, not by a lack of room.
    json w = FindWorker(Workers(*client_), worker.id());
    EXPECT_EQ(w.value("inflight", -1), 1) << w.dump();
    for (const std::string& other : ids) {
      if (std::find(ran.begin(), ran.end(), other) != ran.end()) continue;
      json status = CtlStatus(addr_, other);
      EXPECT_EQ(status.value("state", ""), "queued") << status.dump();
      EXPECT_NE(
          status.value("why", "").find("routing.rules[0] (skills tts): max_running 1 reached"),
          std::string::npos)
          << status.dump();
      EXPECT_EQ(status.value("why_code", ""), "rule_max_running") << status.dump();
    }
    ASSERT_TRUE(worker.SendResult(id, true, "said"));
  }
  EXPECT_EQ(ran, ids);  // in submit order
  for (const std::string& id : ids)
    EXPECT_EQ(WaitEnd(*client_, id).value("state", ""), "succeeded");
  EXPECT_EQ(worker.tasks_received(), 3);
}

// routing.rules[].rate: at most N starts per window; a reload that lifts
// the cap lets the held task start.
TEST_F(RoutingIntegrationTest, RateCapHoldsStartsPastItsQuotaUntilAReloadLiftsIt) {
  StartDaemon(
      "routing: { rules: [ { skills: [paid], strategy: round_robin, rate: { tasks: 2, per: 1h } } "
      "] }\n");
  auto worker = StartWorker(addr_, "paid", {"paid"}, 4);
  ASSERT_TRUE(WaitFor([&] { return Workers(*client_).size() == 1; }));
  std::vector<std::string> ids = SubmitBatch(3, {{"skills", {"paid"}}});
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(WaitEnd(*client_, ids[0]).value("state", ""), "succeeded");
  EXPECT_EQ(WaitEnd(*client_, ids[1]).value("state", ""), "succeeded");
  json held = CtlStatus(addr_, ids[2]);
  EXPECT_EQ(held.value("state", ""), "queued") << held.dump();
  EXPECT_NE(held.value("why", "").find("routing.rules[0] (skills paid): rate 2 per 1h reached"),
            std::string::npos)
      << held.dump();
  EXPECT_EQ(held.value("why_code", ""), "rule_rate") << held.dump();
  EXPECT_EQ(worker->tasks_received(), 2);

  daemon_->SetConfig(std::string(kBase) +
                     "routing: { rules: [ { skills: [paid], strategy: round_robin, rate: { tasks: "
                     "3, per: 1h } } ] }\n");
  CtlResult reload = RunCtl(addr_, {"reload"});
  ASSERT_EQ(reload.exit_code, 0) << reload;
  EXPECT_EQ(WaitEnd(*client_, ids[2]).value("state", ""), "succeeded");
  // The window is kept across the reload: three starts in it now, the cap.
  const std::string fourth = SubmitTask(*client_, {{"skills", {"paid"}}});
  EXPECT_NE(CtlStatus(addr_, fourth).value("why", "").find("rate 3 per 1h reached"),
            std::string::npos);
}

// tasks.queue_ttl: a task nobody takes ends timed_out, its error saying it
// expired and why it had waited.
TEST_F(RoutingIntegrationTest, QueueTtlEndsATaskThatWaitedTooLongWithItsWhy) {
  daemon_ = std::make_unique<DaemonProcess>(
      "store: { kind: memory }\ntasks: { timeout: 30s, queue_ttl: 200ms }\n");
  ASSERT_TRUE(daemon_->Start());
  addr_ = daemon_->address();
  client_ = ConnectClient(addr_);
  ASSERT_NE(client_, nullptr);
  auto echo = StartWorker(addr_, "echo", {"echo"});
  const std::string id = SubmitTask(*client_, {{"skills", {"gpu"}}});
  json end = WaitEnd(*client_, id);
  EXPECT_EQ(end.value("state", ""), "timed_out") << end.dump();
  const std::string error = end.value("error", "");
  EXPECT_EQ(error.rfind(
                "expired: waited longer than tasks.queue_ttl (200ms): no worker has skill gpu", 0),
            0u)
      << error;
  EXPECT_EQ(end.value("attempts", -1), 0);
  // A task a worker takes at once is not touched by it.
  json ok = WaitEnd(*client_, SubmitTask(*client_, {{"skills", {"echo"}}}));
  EXPECT_EQ(ok.value("state", ""), "succeeded") << ok.dump();
}

// A submit naming a skill no worker has offered is accepted with a warning,
// which pincerctl prints on stderr; a skill some worker once offered is not
// warned about.
TEST_F(RoutingIntegrationTest, ASubmitForASkillNoWorkerEverOfferedIsAcceptedWithAWarning) {
  StartDaemon("");
  json answer = Ask(*client_, {{"type", "submit"}, {"skills", {"gpu"}}});
  ASSERT_TRUE(answer.is_object());
  EXPECT_NE(answer.value("warning", "").find("no worker has offered skill gpu"), std::string::npos)
      << answer.dump();
  CtlResult r = RunCtl(addr_, {"submit", "--skill", "gpu", "--skill", "echo"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.Lines().size(), 1u) << r;
  EXPECT_NE(r.err.find("pincerctl: warning: no worker has offered skill echo, gpu"),
            std::string::npos)
      << r;

  {
    auto once = StartWorker(addr_, "echo", {"echo"});
    ASSERT_TRUE(WaitFor([&] { return Workers(*client_).size() == 1; }));
  }
  ASSERT_TRUE(WaitFor([&] { return Workers(*client_).empty(); }));
  CtlResult quiet = RunCtl(addr_, {"submit", "--skill", "echo"});
  ASSERT_EQ(quiet.exit_code, 0) << quiet;
  EXPECT_EQ(quiet.err.find("warning"), std::string::npos) << quiet;
  EXPECT_FALSE(Ask(*client_, {{"type", "submit"}, {"skills", {"echo"}}}).contains("warning"));
}

// A repeated key with the same payload names the first task; with another
// payload it is refused with `conflict` and creates nothing.
TEST_F(RoutingIntegrationTest, ARepeatedKeyWithAnotherPayloadIsAConflict) {
  StartDaemon("");
  json first =
      Ask(*client_, {{"type", "submit"}, {"key", "k1"}, {"payload", {{"a", 1}, {"b", 2}}}});
  ASSERT_TRUE(first.is_object());
  const std::string id = first.value("id", "");
  // The same JSON written another way is the same payload.
  CtlResult same =
      RunCtl(addr_, {"--json", "submit", "--key", "k1", "--payload", "{ \"b\": 2, \"a\": 1 }"});
  ASSERT_EQ(same.exit_code, 0) << same;
  EXPECT_EQ(same.Json().value("id", ""), id);
  EXPECT_EQ(same.Json().value("existing", false), true) << same;
  CtlResult plain = RunCtl(addr_, {"submit", "--key", "k1", "--payload", "{\"a\":1,\"b\":2}"});
  ASSERT_EQ(plain.exit_code, 0) << plain;
  EXPECT_NE(plain.err.find("is task " + id), std::string::npos) << plain;

  CtlResult other = RunCtl(addr_, {"submit", "--key", "k1", "--payload", "{\"a\":2}"});
  EXPECT_EQ(other.exit_code, 2) << other;
  EXPECT_NE(other.err.find("conflict"), std::string::npos) << other;
  EXPECT_NE(other.err.find("key 'k1' is task " + id + ", submitted with a different payload"),
            std::string::npos)
      << other;
  EXPECT_EQ(Stats(*client_).value("submitted", 0), 1);
}

}  // namespace
}  // namespace pincer::test
