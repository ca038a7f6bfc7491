// Routing through a real pincerd over real sockets: the strategies, the
// unroutable wait, priorities without head-of-line blocking, and sessions.
// Workers are TestWorkers (the worker protocol spoken from the test); the
// observable results are read with `pincerctl --json` and client requests.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

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
  for (int i = 0; i < 3; ++i) workers.push_back(StartWorker(addr_, "rr" + std::to_string(i), {"echo"}));
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
  for (int i = 0; i < 3; ++i) workers.push_back(StartWorker(addr_, "rr" + std::to_string(i), {"echo"}));
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
  for (int i = 0; i < 3; ++i) workers.push_back(StartWorker(addr_, "s" + std::to_string(i), {"chat"}, 4, slow));
  ASSERT_TRUE(WaitFor([&] { return Workers(*client_).size() == 3; }));

  // Session tasks mixed with unrelated ones, all pipelined.
  std::vector<std::string> session_ids;
  for (int i = 0; i < 6; ++i) {
    session_ids.push_back(SubmitBatch(1, {{"skills", {"chat"}}, {"session", "conv-1"}, {"payload", i}})[0]);
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
      if (std::find(session_ids.begin(), session_ids.end(), id) != session_ids.end()) seen.push_back(id);
    }
    EXPECT_EQ(seen, session_ids);
  }
}

}  // namespace
}  // namespace pincer::test
