// pincerctl against a real pincerd: output shapes (--json and human) and
// exit codes, per SPEC section 7 and docs/cli.md.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/temp_dir.h"
#include "support/test_worker.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Durability is not what these tests are about; the memory store keeps
// them fast.
constexpr char kBaseConfig[] = "store: { kind: memory }\n";

class CtlTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& extra_config = "") {
    daemon_ = std::make_unique<DaemonProcess>(kBaseConfig + extra_config);
    ASSERT_TRUE(daemon_->Start());
  }

  CtlResult Ctl(const std::vector<std::string>& args, const CtlOptions& options = {}) {
    return RunCtl(daemon_->address(), args, options);
  }

  std::unique_ptr<TestWorker> ConnectWorker(const std::vector<std::string>& skills,
                                            const std::string& name = "test-worker",
                                            int capacity = 1) {
    TestWorkerOptions options;
    options.name = name;
    options.skills = skills;
    options.capacity = capacity;
    auto worker = TestWorker::Connect(daemon_->address(), options);
    EXPECT_TRUE(worker.ok()) << (worker.ok() ? "" : worker.error().ToString());
    return worker.ok() ? std::move(worker).value() : nullptr;
  }

  // Submits without waiting and returns the id pincerctl printed.
  std::string Submit(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"submit"};
    all.insert(all.end(), args.begin(), args.end());
    CtlResult result = Ctl(all);
    EXPECT_EQ(result.exit_code, 0) << result;
    EXPECT_EQ(result.Lines().size(), 1u) << result;
    return result.Lines().empty() ? "" : result.Lines()[0];
  }

  std::string StateOf(const std::string& id) {
    CtlResult result = Ctl({"--json", "status", id});
    return result.exit_code == 0 ? result.Json().value("state", "") : "";
  }

  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(CtlTest, VersionAndHelpExitZero) {
  CtlResult version = RunCtl("", {"--version"});
  EXPECT_EQ(version.exit_code, 0) << version;
  EXPECT_NE(version.out.find("pincerctl "), std::string::npos) << version;

  CtlResult help = RunCtl("", {"--help"});
  EXPECT_EQ(help.exit_code, 0) << help;
  for (const char* command : {"submit", "status", "wait", "cancel", "tasks", "workers", "stats",
                              "drain", "reload", "pools"}) {
    EXPECT_NE(help.out.find(command), std::string::npos) << command;
  }
  EXPECT_EQ(RunCtl("", {"submit", "--help"}).exit_code, 0);
}

TEST_F(CtlTest, BadUsageExitsTwoWithoutContactingTheDaemon) {
  // Port 1 is never pincerd: if any of these tried to connect, they would
  // exit 3, not 2.
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"frobnicate"},
      {"stats", "--no-such-flag"},
      {"status"},
      {"drain"},
      {"submit", "--payload", "not json"},
      {"submit", "--payload", "1", "--payload-file", "x"},
      {"submit", "--timeout", "soon"},
      {"submit", "--max-attempts", "0"},
      {"submit", "--max-attempts", "1001"},
      {"submit", "--max-attempts", "4294967296"},
      {"submit", "--timeout", "10000000000000"},  // ms: past 365 days
      {"submit", "--timeout", "8761h"},
      {"submit", "--priority", "high"},
      {"submit", "--batch", "x.jsonl", "--skill", "echo"},
      {"submit", "--payload-file", "/nonexistent/payload.json"},
      {"submit", "--payload-file", "/"},  // a directory: an error, not a crash
      {"submit", "--batch", "/"},
      {"tasks", "--state", "sleeping"},
      {"tasks", "--limit", "0"},
  };
  for (const auto& args : cases) {
    CtlResult result = RunCtl("127.0.0.1:1", args);
    EXPECT_EQ(result.exit_code, 2) << ::testing::PrintToString(args) << "\n" << result;
    EXPECT_TRUE(result.out.empty()) << result;
    EXPECT_FALSE(result.err.empty()) << result;
  }
  EXPECT_EQ(RunCtl("not-an-address", {"stats"}).exit_code, 2);
}

TEST_F(CtlTest, UnreachableDaemonExitsThree) {
  StartDaemon();
  const std::string address = daemon_->address();
  ASSERT_TRUE(daemon_->Terminate().has_value());
  CtlResult result = RunCtl(address, {"stats"});
  EXPECT_EQ(result.exit_code, 3) << result;
  EXPECT_NE(result.err.find("cannot connect"), std::string::npos) << result;
  EXPECT_EQ(RunCtl(address, {"submit", "--payload", "1"}).exit_code, 3);
}

TEST_F(CtlTest, TokenIsCheckedAndReadFromTheEnvironment) {
  StartDaemon("auth: { client_token: sekret }\n");
  CtlResult missing = Ctl({"stats"});
  EXPECT_EQ(missing.exit_code, 3) << missing;
  EXPECT_NE(missing.err.find("unauthorized"), std::string::npos) << missing;

  EXPECT_EQ(Ctl({"--token", "wrong", "stats"}).exit_code, 3);
  EXPECT_EQ(Ctl({"--token", "sekret", "stats"}).exit_code, 0);

  CtlOptions env;
  env.env["PINCER_TOKEN"] = "sekret";
  CtlResult from_env = Ctl({"stats"}, env);
  EXPECT_EQ(from_env.exit_code, 0) << from_env;
}

TEST_F(CtlTest, AddressComesFromTheEnvironmentWithoutAddr) {
  StartDaemon();
  CtlOptions env;
  env.env["PINCER_ADDR"] = daemon_->address();
  CtlResult result = RunCtl("", {"--json", "stats"}, env);
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_TRUE(result.Json().is_object()) << result;
}

TEST_F(CtlTest, SubmitPrintsOnlyTheId) {
  StartDaemon();
  CtlResult result = Ctl({"submit", "--skill", "echo", "--payload", R"({"q":1})"});
  ASSERT_EQ(result.exit_code, 0) << result;
  ASSERT_EQ(result.Lines().size(), 1u) << result;
  const std::string id = result.Lines()[0];
  EXPECT_FALSE(id.empty());

  CtlResult json_result = Ctl({"--json", "submit", "--payload", "1"});
  ASSERT_EQ(json_result.exit_code, 0) << json_result;
  EXPECT_TRUE(json_result.Json()["id"].is_string()) << json_result;

  CtlResult status = Ctl({"--json", "status", id});
  ASSERT_EQ(status.exit_code, 0) << status;
  const json task = status.Json();
  EXPECT_EQ(task["id"], id);
  EXPECT_EQ(task["state"], "queued");
  EXPECT_EQ(task["payload"], json({{"q", 1}}));
  for (const char* field : {"attempts", "worker", "output", "error", "errors", "why"}) {
    EXPECT_TRUE(task.contains(field)) << field << " missing in " << task;
  }
  EXPECT_NE(task["why"].get<std::string>().find("echo"), std::string::npos) << task;
}

TEST_F(CtlTest, SubmitWaitJsonPrintsTheEndObject) {
  StartDaemon();
  auto worker = ConnectWorker({"echo"}, "echo-1");
  ASSERT_TRUE(worker);
  worker->StartAuto();

  CtlResult result =
      Ctl({"--json", "submit", "--skill", "echo", "--payload", R"({"text":"hi"})", "--wait"});
  ASSERT_EQ(result.exit_code, 0) << result;
  const json end = result.Json();
  ASSERT_TRUE(end.is_object()) << result;
  EXPECT_TRUE(end["id"].is_string());
  EXPECT_EQ(end["state"], "succeeded");
  EXPECT_EQ(end["output"], json({{"text", "hi"}}));
  EXPECT_TRUE(end["error"].is_null());
  EXPECT_EQ(end["worker"], worker->id());
  EXPECT_EQ(end["attempts"], 1);
  EXPECT_EQ(end["errors"], json::array());
  EXPECT_FALSE(end.contains("type"));
  EXPECT_FALSE(end.contains("req"));
  EXPECT_EQ(worker->tasks_received(), 1);
}

TEST_F(CtlTest, SubmitWaitHumanOutput) {
  StartDaemon();
  auto worker = ConnectWorker({});
  ASSERT_TRUE(worker);
  worker->StartAuto();
  CtlResult result = Ctl({"submit", "--payload", R"("hello")", "--wait"});
  ASSERT_EQ(result.exit_code, 0) << result;
  EXPECT_NE(result.out.find("state:    succeeded\n"), std::string::npos) << result;
  EXPECT_NE(result.out.find("output:   hello\n"), std::string::npos) << result;
}

TEST_F(CtlTest, SubmitWaitExitsOneWhenTheTaskFails) {
  StartDaemon();
  auto worker = ConnectWorker({"flaky"});
  ASSERT_TRUE(worker);
  AutoOptions fail;
  fail.handler = [](const json&) {
    TaskReply reply;
    reply.ok = false;
    reply.error = "model returned 503";
    reply.retryable = false;
    return reply;
  };
  worker->StartAuto(fail);

  CtlResult result = Ctl({"--json", "submit", "--skill", "flaky", "--wait"});
  EXPECT_EQ(result.exit_code, 1) << result;
  const json end = result.Json();
  EXPECT_EQ(end["state"], "failed") << result;
  EXPECT_EQ(end["error"], "model returned 503") << result;
  ASSERT_TRUE(end["errors"].is_array());
  EXPECT_EQ(end["errors"].size(), 1u) << end;
}

TEST_F(CtlTest, RetryPutsAFailedTaskBackAndItCanSucceed) {
  StartDaemon();
  auto worker = ConnectWorker({"flaky"});
  ASSERT_TRUE(worker);
  std::atomic<int> calls{0};
  AutoOptions first_fails;
  first_fails.handler = [&](const json& task) {
    TaskReply reply;
    reply.ok = calls++ > 0;
    reply.output = task["payload"];
    reply.error = "model returned 503";
    reply.retryable = false;
    return reply;
  };
  worker->StartAuto(first_fails);

  CtlResult failed = Ctl({"--json", "submit", "--skill", "flaky", "--payload", "7", "--wait"});
  ASSERT_EQ(failed.exit_code, 1) << failed;
  const std::string id = failed.Json()["id"];

  CtlResult listed = Ctl({"--json", "tasks", "--state", "failed"});
  ASSERT_EQ(listed.exit_code, 0) << listed;
  ASSERT_EQ(listed.Json().size(), 1u) << listed;
  EXPECT_EQ(listed.Json()[0]["errors"].size(), 1u) << listed;

  CtlResult retried = Ctl({"retry", id});
  EXPECT_EQ(retried.exit_code, 0) << retried;
  CtlResult waited = Ctl({"--json", "wait", id});
  EXPECT_EQ(waited.exit_code, 0) << waited;
  EXPECT_EQ(waited.Json()["state"], "succeeded") << waited;
  EXPECT_EQ(waited.Json()["output"], 7) << waited;

  // Only failed or timed_out tasks can be retried; unknown ids are not found.
  EXPECT_EQ(Ctl({"retry", id}).exit_code, 2);
  EXPECT_EQ(Ctl({"retry", "t999999"}).exit_code, 4);
}

TEST_F(CtlTest, WaitPrintsTheEndStateOfAnExistingTask) {
  StartDaemon();
  const std::string ok_id = Submit({"--skill", "manual", "--payload", "1"});
  const std::string bad_id = Submit({"--skill", "manual", "--payload", "2", "--max-attempts", "1"});
  auto worker = ConnectWorker({"manual"}, "manual", 2);
  ASSERT_TRUE(worker);
  std::set<std::string> seen;
  for (int i = 0; i < 2; ++i) {
    auto task = worker->NextTask(seconds(10));
    ASSERT_TRUE(task.has_value());
    const std::string id = (*task)["id"];
    seen.insert(id);
    if (id == ok_id) {
      ASSERT_TRUE(worker->SendResult(id, true, "done"));
    } else {
      ASSERT_TRUE(worker->SendResult(id, false, "broken", /*retryable=*/false));
    }
  }
  EXPECT_EQ(seen, (std::set<std::string>{ok_id, bad_id}));

  CtlResult ok = Ctl({"--json", "wait", ok_id});
  EXPECT_EQ(ok.exit_code, 0) << ok;
  EXPECT_EQ(ok.Json()["output"], "done") << ok;

  CtlResult bad = Ctl({"wait", bad_id});
  EXPECT_EQ(bad.exit_code, 1) << bad;
  EXPECT_NE(bad.out.find("failed"), std::string::npos) << bad;
}

TEST_F(CtlTest, UnknownIdsExitFour) {
  StartDaemon();
  for (const auto& args : std::vector<std::vector<std::string>>{{"status", "t999999"},
                                                                {"wait", "t999999"},
                                                                {"cancel", "t999999"},
                                                                {"drain", "w999999"}}) {
    CtlResult result = Ctl(args);
    EXPECT_EQ(result.exit_code, 4) << ::testing::PrintToString(args) << "\n" << result;
    EXPECT_NE(result.err.find("not_found"), std::string::npos) << result;
  }
}

TEST_F(CtlTest, CancelQueuedTaskThenCancelAgainIsInvalidState) {
  StartDaemon();
  const std::string id = Submit({"--skill", "nobody-has-this"});
  CtlResult cancel = Ctl({"--json", "cancel", id});
  ASSERT_EQ(cancel.exit_code, 0) << cancel;
  EXPECT_EQ(cancel.Json()["id"], id);
  EXPECT_EQ(cancel.Json()["state"], "cancelled");
  EXPECT_EQ(StateOf(id), "cancelled");

  CtlResult again = Ctl({"cancel", id});
  EXPECT_EQ(again.exit_code, 2) << again;
  EXPECT_NE(again.err.find("invalid_state"), std::string::npos) << again;
}

TEST_F(CtlTest, TasksFiltersByState) {
  StartDaemon();
  auto worker = ConnectWorker({"echo"});
  ASSERT_TRUE(worker);
  worker->StartAuto();
  const std::string queued_1 = Submit({"--skill", "gpu"});
  const std::string queued_2 = Submit({"--skill", "gpu"});
  const std::string done = Submit({"--skill", "echo", "--payload", "1"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(done) == "succeeded"; }));

  CtlResult queued = Ctl({"--json", "tasks", "--state", "queued"});
  ASSERT_EQ(queued.exit_code, 0) << queued;
  ASSERT_TRUE(queued.Json().is_array()) << queued;
  std::vector<std::string> ids;
  for (const auto& task : queued.Json()) {
    EXPECT_EQ(task["state"], "queued");
    ids.push_back(task["id"]);
  }
  EXPECT_EQ(ids, (std::vector<std::string>{queued_1, queued_2}));  // oldest first

  CtlResult succeeded = Ctl({"--json", "tasks", "--state", "succeeded"});
  ASSERT_EQ(succeeded.exit_code, 0) << succeeded;
  ASSERT_EQ(succeeded.Json().size(), 1u) << succeeded;
  EXPECT_EQ(succeeded.Json()[0]["id"], done);

  CtlResult limited = Ctl({"--json", "tasks", "--limit", "1"});
  EXPECT_EQ(limited.Json().size(), 1u) << limited;

  CtlResult table = Ctl({"tasks"});
  ASSERT_EQ(table.exit_code, 0) << table;
  ASSERT_EQ(table.Lines().size(), 4u) << table;  // header + 3 tasks
  EXPECT_EQ(table.Lines()[0].rfind("ID", 0), 0u) << table;
  EXPECT_NE(table.Lines()[0].find("STATE"), std::string::npos) << table;
}

TEST_F(CtlTest, WorkersJsonFields) {
  StartDaemon();
  auto worker = ConnectWorker({"echo", "text"}, "echo-1", 2);
  ASSERT_TRUE(worker);

  CtlResult result = Ctl({"--json", "workers"});
  ASSERT_EQ(result.exit_code, 0) << result;
  const json workers = result.Json();
  ASSERT_TRUE(workers.is_array()) << result;
  ASSERT_EQ(workers.size(), 1u) << result;
  const json& w = workers[0];
  for (const char* field :
       {"id", "name", "skills", "capacity", "inflight", "state", "completed", "failed", "pool"}) {
    EXPECT_TRUE(w.contains(field)) << field << " missing in " << w;
  }
  EXPECT_EQ(w["id"], worker->id());
  EXPECT_EQ(w["name"], "echo-1");
  EXPECT_EQ(w["skills"], json({"echo", "text"}));
  EXPECT_EQ(w["capacity"], 2);
  EXPECT_EQ(w["inflight"], 0);
  EXPECT_EQ(w["state"], "ready");

  CtlResult table = Ctl({"workers"});
  ASSERT_EQ(table.exit_code, 0) << table;
  ASSERT_EQ(table.Lines().size(), 2u) << table;
  EXPECT_NE(table.Lines()[0].find("INFLIGHT/CAP"), std::string::npos) << table;
  EXPECT_NE(table.Lines()[1].find("echo-1"), std::string::npos) << table;
  EXPECT_NE(table.Lines()[1].find("0/2"), std::string::npos) << table;
}

TEST_F(CtlTest, StatsJsonFields) {
  StartDaemon();
  Submit({"--skill", "nobody-has-this"});
  CtlResult result = Ctl({"--json", "stats"});
  ASSERT_EQ(result.exit_code, 0) << result;
  const json stats = result.Json();
  for (const char* field : {"queued", "running", "succeeded", "failed", "workers", "unroutable"}) {
    EXPECT_TRUE(stats.contains(field)) << field << " missing in " << stats;
  }
  EXPECT_EQ(stats["queued"], 1);
  EXPECT_EQ(stats["unroutable"], 1);

  CtlResult human = Ctl({"stats"});
  ASSERT_EQ(human.exit_code, 0) << human;
  EXPECT_EQ(human.Lines().at(0).rfind("queued:", 0), 0u) << human;
}

TEST_F(CtlTest, DrainAndReload) {
  StartDaemon();
  auto worker = ConnectWorker({"echo"});
  ASSERT_TRUE(worker);
  CtlResult drain = Ctl({"--json", "drain", worker->id()});
  ASSERT_EQ(drain.exit_code, 0) << drain;
  EXPECT_EQ(drain.Json()["worker"], worker->id());
  EXPECT_EQ(drain.Json()["state"], "draining");
  EXPECT_TRUE(worker->NextMessage(seconds(5)).has_value());  // the drain message

  CtlResult workers = Ctl({"--json", "workers"});
  ASSERT_EQ(workers.Json().size(), 1u) << workers;
  EXPECT_EQ(workers.Json()[0]["state"], "draining");

  CtlResult reload = Ctl({"--json", "reload"});
  EXPECT_EQ(reload.exit_code, 0) << reload;
  EXPECT_EQ(reload.Json(), json::object()) << reload;
}

TEST_F(CtlTest, ReloadOfABrokenConfigFails) {
  StartDaemon();
  daemon_->SetConfig(std::string(kBaseConfig) + "routing: { strategy: fastest }\n");
  CtlResult reload = Ctl({"reload"});
  EXPECT_EQ(reload.exit_code, 1) << reload;
  EXPECT_NE(reload.err.find("reload_failed"), std::string::npos) << reload;
}

// JSON nested without bound never reaches a recursive walk in pincerctl:
// exit 2 with a message, without contacting the daemon.
TEST_F(CtlTest, DeeplyNestedPayloadsExitTwo) {
  TempDir dir("pincer-ctl");
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string payload = dir.WriteFile("deep.json", deep);
  const std::string batch = dir.WriteFile("deep.jsonl", R"({"payload":)" + deep + "}\n");
  const std::string unclosed = dir.WriteFile("open.json", std::string(1000000, '{'));
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"submit", "--payload-file", payload},
        std::vector<std::string>{"submit", "--payload-file", unclosed},
        std::vector<std::string>{"submit", "--batch", batch}}) {
    CtlResult result = RunCtl("127.0.0.1:1", args);
    EXPECT_EQ(result.exit_code, 2) << result;
    EXPECT_EQ(result.err.rfind("pincerctl: ", 0), 0u) << result;
    EXPECT_NE(result.err.find("deeper than"), std::string::npos) << result;
  }
  CtlOptions input;
  input.stdin_text = deep;
  CtlResult from_stdin = RunCtl("127.0.0.1:1", {"submit", "--payload-file", "-"}, input);
  EXPECT_EQ(from_stdin.exit_code, 2) << from_stdin;

  // Past the daemon's limits.max_json_depth (64 by default, so 63 levels of
  // payload) the daemon refuses it: bad_json, exit 2 too. 63 levels pass.
  StartDaemon();
  const auto nest = [](int n) { return std::string(n, '[') + std::string(n, ']'); };
  CtlResult refused = Ctl({"submit", "--payload", nest(64)});
  EXPECT_EQ(refused.exit_code, 2) << refused;
  EXPECT_NE(refused.err.find("max_json_depth"), std::string::npos) << refused;
  CtlResult accepted = Ctl({"submit", "--payload", nest(63)});
  EXPECT_EQ(accepted.exit_code, 0) << accepted;
  CtlResult status = Ctl({"--json", "status", accepted.Lines().at(0)});
  EXPECT_EQ(status.Json()["payload"], json::parse(nest(63))) << status;
}

TEST_F(CtlTest, PayloadFromStdin) {
  StartDaemon();
  CtlOptions input;
  input.stdin_text = R"({"from":"stdin"})";
  CtlResult result = Ctl({"submit", "--payload-file", "-"}, input);
  ASSERT_EQ(result.exit_code, 0) << result;
  CtlResult status = Ctl({"--json", "status", result.Lines().at(0)});
  EXPECT_EQ(status.Json()["payload"], json({{"from", "stdin"}})) << status;

  input.stdin_text = "plain text";
  EXPECT_EQ(Ctl({"submit", "--payload-file", "-"}, input).exit_code, 2);
}

TEST_F(CtlTest, BatchSubmitPrintsOneIdPerLineInOrder) {
  StartDaemon();
  auto worker = ConnectWorker({"echo"}, "echo", 4);
  ASSERT_TRUE(worker);
  worker->StartAuto();

  std::string jsonl;
  for (int i = 0; i < 50; ++i) {
    jsonl += json({{"skills", {"echo"}}, {"payload", i}, {"priority", i % 3}}).dump() + "\n";
    if (i == 10) jsonl += "\n";  // blank lines are skipped
  }
  const std::string path = daemon_->dir() + "/tasks.jsonl";
  {
    std::ofstream file(path);
    file << jsonl;
  }
  CtlResult result = Ctl({"submit", "--batch", path});
  ASSERT_EQ(result.exit_code, 0) << result;
  const std::vector<std::string> ids = result.Lines();
  ASSERT_EQ(ids.size(), 50u) << result;
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 50u);
  EXPECT_TRUE(result.err.empty()) << "progress must only go to a terminal\n" << result;

  // Each id belongs to its line: its payload is the line's number.
  for (int i : {0, 11, 49}) {
    CtlResult status = Ctl({"--json", "status", ids[i]});
    EXPECT_EQ(status.Json()["payload"], i) << status;
  }
  ASSERT_TRUE(WaitWhileProgressing([&] { return worker->tasks_received() == 50; },
                                   [&] { return worker->tasks_received(); }));

  CtlOptions input;
  input.stdin_text = R"({"payload":"a"})"
                     "\n"
                     R"({"payload":"b"})"
                     "\n";
  CtlResult from_stdin = Ctl({"--json", "submit", "--batch", "-"}, input);
  ASSERT_EQ(from_stdin.exit_code, 0) << from_stdin;
  ASSERT_EQ(from_stdin.Json().size(), 2u) << from_stdin;
  EXPECT_EQ(from_stdin.Json()[1]["line"], 2);
  EXPECT_TRUE(from_stdin.Json()[1]["id"].is_string());
}

TEST_F(CtlTest, BatchWithABadLineSubmitsNothing) {
  StartDaemon();
  CtlOptions input;
  input.stdin_text = R"({"payload":1})"
                     "\n"
                     R"({"priorty":1})"
                     "\n"
                     "not json\n";
  CtlResult result = Ctl({"submit", "--batch", "-"}, input);
  EXPECT_EQ(result.exit_code, 2) << result;
  EXPECT_TRUE(result.out.empty()) << result;
  EXPECT_NE(result.err.find("stdin:2:"), std::string::npos) << result;
  EXPECT_NE(result.err.find("stdin:3:"), std::string::npos) << result;
  EXPECT_EQ(Ctl({"--json", "stats"}).Json()["submitted"], 0);
}

TEST_F(CtlTest, IdempotencyKeyReturnsTheFirstId) {
  StartDaemon();
  const std::string first = Submit({"--key", "order-7", "--skill", "nobody-has-this"});
  const std::string second = Submit({"--key", "order-7", "--skill", "nobody-has-this"});
  EXPECT_EQ(first, second);
}

TEST_F(CtlTest, EndedTasksBeyondMaxEndedArePurgedOldestFirstWithTheirKeys) {
  StartDaemon("tasks: { max_ended: 3 }\n");
  auto worker = ConnectWorker({"echo"});
  ASSERT_TRUE(worker);
  worker->StartAuto({});  // echoes the payload
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    CtlResult done = Ctl({"--json", "submit", "--skill", "echo", "--key", "k" + std::to_string(i),
                          "--payload", std::to_string(i), "--wait"});
    ASSERT_EQ(done.exit_code, 0) << done;
    ids.push_back(done.Json()["id"]);
  }
  for (int i = 0; i < 2; ++i) {
    CtlResult gone = Ctl({"status", ids[i]});
    EXPECT_EQ(gone.exit_code, 4) << ids[i] << " should be purged\n" << gone;
  }
  for (int i = 2; i < 5; ++i) {
    CtlResult kept = Ctl({"--json", "status", ids[i]});
    ASSERT_EQ(kept.exit_code, 0) << kept;
    EXPECT_EQ(kept.Json()["state"], "succeeded") << kept;
    EXPECT_EQ(kept.Json()["output"], i) << kept;
    EXPECT_EQ(kept.Json()["payload"], i) << kept;
    CtlResult waited = Ctl({"--json", "wait", ids[i]});
    EXPECT_EQ(waited.Json()["output"], i) << waited;
  }
  CtlResult listed = Ctl({"--json", "tasks", "--state", "succeeded"});
  ASSERT_EQ(listed.exit_code, 0) << listed;
  ASSERT_EQ(listed.Json().size(), 3u) << listed;
  EXPECT_EQ(listed.Json()[0]["id"], ids[2]) << "in id order";
  // A purged task's key is free again; a kept one still names its task.
  EXPECT_NE(Submit({"--key", "k0", "--skill", "echo", "--payload", "9"}), ids[0]);
  EXPECT_EQ(Submit({"--key", "k4", "--skill", "echo", "--payload", "4"}), ids[4]);
}

TEST_F(CtlTest, UnixSocketAddress) {
  StartDaemon("unix_socket: \"{dir}/pincer.sock\"\n");
  CtlResult result = RunCtl("unix:" + daemon_->dir() + "/pincer.sock", {"--json", "stats"});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_TRUE(result.Json().is_object()) << result;
}

}  // namespace
}  // namespace pincer::test
