// pincerctl against a real pincerd: output shapes (--json and human) and
// exit codes, per SPEC section 7 and docs/cli.md.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/subprocess.h"
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
      {"tasks", "--limit", "5", "--all"},
      {"submti"},
      {"--json", "wiat", "t1"},
      {"wait"},
  };
  for (const auto& args : cases) {
    CtlResult result = RunCtl("127.0.0.1:1", args);
    EXPECT_EQ(result.exit_code, 2) << ::testing::PrintToString(args) << "\n" << result;
    EXPECT_TRUE(result.out.empty()) << result;
    // docs/cli.md: one "pincerctl:" line on every failure.
    EXPECT_EQ(result.err.rfind("pincerctl: ", 0), 0u) << result;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result;
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
  EXPECT_EQ(ids, (std::vector<std::string>{queued_2, queued_1}));  // newest first

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
  EXPECT_EQ(listed.Json()[0]["id"], ids[4]) << "newest first";
  // A purged task's key is free again; a kept one still names its task.
  EXPECT_NE(Submit({"--key", "k0", "--skill", "echo", "--payload", "9"}), ids[0]);
  EXPECT_EQ(Submit({"--key", "k4", "--skill", "echo", "--payload", "4"}), ids[4]);
}

// Item by item, what a new user met in issue 19.

TEST_F(CtlTest, ParseErrorsAreOnePincerctlLineNamingTheProblem) {
  CtlResult timeout = RunCtl("127.0.0.1:1", {"submit", "--timeout", "5x"});
  EXPECT_EQ(timeout.exit_code, 2) << timeout;
  EXPECT_EQ(timeout.err,
            "pincerctl: --timeout: '5x' is not a duration (e.g. 250ms, 30s, 10m, 1h30m; 0 = none) "
            "(see pincerctl submit --help)\n")
      << timeout;

  CtlResult typo = RunCtl("127.0.0.1:1", {"submti", "--skill", "echo"});
  EXPECT_EQ(typo.exit_code, 2) << typo;
  EXPECT_EQ(typo.err, "pincerctl: unknown command 'submti'; did you mean 'submit'?\n") << typo;

  // Global flags and their values before the command are skipped over.
  CtlResult after_flags = RunCtl("127.0.0.1:1", {"--json", "--token", "x", "statuss", "t1"});
  EXPECT_EQ(after_flags.err, "pincerctl: unknown command 'statuss'; did you mean 'status'?\n")
      << after_flags;

  CtlResult far = RunCtl("127.0.0.1:1", {"frobnicate"});
  EXPECT_EQ(far.err,
            "pincerctl: unknown command 'frobnicate' (pincerctl --help lists the commands)\n")
      << far;
  CtlResult none = RunCtl("127.0.0.1:1", {});
  EXPECT_EQ(none.err, "pincerctl: no command given (pincerctl --help lists them)\n") << none;
}

TEST_F(CtlTest, SubmitHelpSaysATaskWithoutSkillGoesToAnyWorker) {
  CtlResult help = RunCtl("", {"submit", "--help"});
  ASSERT_EQ(help.exit_code, 0) << help;
  EXPECT_NE(help.out.find("without --skill needs no skill: it may go to any worker"),
            std::string::npos)
      << help;
}

// The README's table of pincerctl commands names every command --help lists.
TEST_F(CtlTest, ReadmeNamesEveryCommand) {
  const std::string readme = ReadFileOrEmpty(std::string(PINCER_SOURCE_DIR) + "/README.md");
  const std::size_t row = readme.find("| `pincerctl` |");
  ASSERT_NE(row, std::string::npos);
  const std::string line = readme.substr(row, readme.find('\n', row) - row);
  CtlResult help = RunCtl("", {"--help"});
  const std::size_t start = help.out.find("Subcommands:");
  ASSERT_NE(start, std::string::npos) << help;
  std::istringstream commands(help.out.substr(start));
  std::string text;
  std::getline(commands, text);
  int seen = 0;
  while (std::getline(commands, text)) {
    std::istringstream words(text);
    std::string command;
    if (!(words >> command) || text[0] != ' ') break;
    ++seen;
    EXPECT_TRUE(line.find(" " + command + ",") != std::string::npos ||
                line.find(" " + command + " |") != std::string::npos)
        << command << " is missing from README's pincerctl row: " << line;
  }
  EXPECT_GE(seen, 12) << help;
}

// 2,600 tasks: newest first, a note on stderr when the list is cut, filters
// applied by pincerd, and --all paging through every one of them.
TEST_F(CtlTest, TasksListsNewestFirstSaysWhenCutAndPages) {
  StartDaemon();
  constexpr int kTasks = 2600;
  std::string batch;
  for (int i = 0; i < kTasks; ++i) {
    // Nobody has these skills: every task stays queued.
    json line = {{"skills", {i % 2 == 0 ? "even" : "odd"}}, {"payload", i}};
    if (i % 100 == 0) line["session"] = "s" + std::to_string(i / 1000);
    batch += line.dump() + "\n";
  }
  CtlOptions stdin_batch;
  stdin_batch.stdin_text = batch;
  CtlResult submitted = Ctl({"submit", "--batch", "-"}, stdin_batch);
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::vector<std::string> ids = submitted.Lines();
  ASSERT_EQ(ids.size(), static_cast<std::size_t>(kTasks));

  CtlResult table = Ctl({"tasks"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  ASSERT_EQ(table.Lines().size(), 1001u) << "header + 1000";
  EXPECT_EQ(table.Lines()[1].rfind(ids.back() + " ", 0), 0u)
      << "newest first: " << table.Lines()[1];
  EXPECT_EQ(table.Lines()[1000].rfind(ids[kTasks - 1000] + " ", 0), 0u) << table.Lines()[1000];
  EXPECT_EQ(table.err, "pincerctl: 1000 of 2600 shown, --limit/--all for more (or --after " +
                           ids[kTasks - 1000] + ")\n");

  CtlResult all = Ctl({"--json", "tasks", "--all"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(all.err, "") << "nothing was left out";
  const json listed = all.Json();  // parsed once: 2,600 tasks
  ASSERT_EQ(listed.size(), static_cast<std::size_t>(kTasks));
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_EQ(listed[i]["id"], ids[kTasks - 1 - i]) << "every task once, newest first";
  }

  CtlResult oldest = Ctl({"--json", "tasks", "--oldest", "--limit", "3"});
  ASSERT_EQ(oldest.Json().size(), 3u) << oldest;
  EXPECT_EQ(oldest.Json()[0]["id"], ids[0]);
  EXPECT_EQ(oldest.err,
            "pincerctl: 3 of 2600 shown, --limit/--all for more (or --after " + ids[2] + ")\n");
  // The cursor the note names gives the next page.
  CtlResult next = Ctl({"--json", "tasks", "--oldest", "--limit", "3", "--after", ids[2]});
  ASSERT_EQ(next.Json().size(), 3u) << next;
  EXPECT_EQ(next.Json()[0]["id"], ids[3]);

  CtlResult even = Ctl({"--json", "tasks", "--skill", "even", "--all"});
  ASSERT_EQ(even.Json().size(), static_cast<std::size_t>(kTasks / 2)) << even.err;
  for (const json& task : even.Json()) ASSERT_EQ(task["skills"], json::array({"even"}));
  CtlResult even_cut = Ctl({"--json", "tasks", "--skill", "even"});
  EXPECT_EQ(even_cut.Json().size(), 1000u);
  EXPECT_EQ(even_cut.err.rfind("pincerctl: 1000 of 1300 shown", 0), 0u) << even_cut.err;

  CtlResult session = Ctl({"--json", "tasks", "--session", "s1"});
  ASSERT_EQ(session.exit_code, 0) << session.err;
  EXPECT_EQ(session.Json().size(), 10u) << "tasks 1000, 1100, ..., 1900";
  EXPECT_EQ(session.err, "");
  EXPECT_EQ(session.Json()[0]["id"], ids[1900]);

  CtlResult none = Ctl({"--json", "tasks", "--state", "succeeded", "--skill", "even"});
  EXPECT_EQ(none.Json(), json::array()) << none;

  // A cursor that is no task id is bad input, refused by pincerd.
  CtlResult bad_cursor = Ctl({"tasks", "--after", "yesterday"});
  EXPECT_EQ(bad_cursor.exit_code, 2) << bad_cursor;
  EXPECT_NE(bad_cursor.err.find("invalid_request"), std::string::npos) << bad_cursor;
}

TEST_F(CtlTest, TasksFilterByWorker) {
  StartDaemon();
  auto first = ConnectWorker({"echo"}, "first");
  ASSERT_TRUE(first);
  first->StartAuto();
  const std::string on_first = Submit({"--skill", "echo", "--payload", "1"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(on_first) == "succeeded"; }));
  first.reset();
  auto second = ConnectWorker({"echo"}, "second");
  ASSERT_TRUE(second);
  second->StartAuto();
  const std::string on_second = Submit({"--skill", "echo", "--payload", "2"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(on_second) == "succeeded"; }));

  CtlResult listed = Ctl({"--json", "tasks", "--worker", second->id()});
  ASSERT_EQ(listed.exit_code, 0) << listed;
  ASSERT_EQ(listed.Json().size(), 1u) << listed;
  EXPECT_EQ(listed.Json()[0]["id"], on_second);
}

// status: each attempt's error once, its further lines indented, and the
// runs before and after a retry set apart.
TEST_F(CtlTest, StatusPrintsEachAttemptErrorOnceAndSeparatesRetries) {
  StartDaemon("tasks: { retry_backoff: { initial: 0, max: 0 } }\n");
  auto worker = ConnectWorker({"flaky"}, "flaky");
  ASSERT_TRUE(worker);
  AutoOptions fail;
  fail.handler = [](const json&) {
    TaskReply reply;
    reply.ok = false;
    reply.error = "Traceback (most recent call last):\nValueError: bad input";
    return reply;
  };
  worker->StartAuto(fail);
  const std::string id = Submit({"--skill", "flaky", "--max-attempts", "2"});
  ASSERT_EQ(Ctl({"wait", id}).exit_code, 1);
  ASSERT_EQ(Ctl({"retry", id}).exit_code, 0);
  ASSERT_EQ(Ctl({"wait", id}).exit_code, 1);

  CtlResult status = Ctl({"status", id});
  ASSERT_EQ(status.exit_code, 0) << status;
  const std::string w = worker->id();
  const std::string errors =
      "errors:\n"
      "  attempt 1 on " +
      w +
      ": Traceback (most recent call last):\n"
      "      ValueError: bad input\n"
      "  attempt 2 on " +
      w +
      ": Traceback (most recent call last):\n"
      "      ValueError: bad input\n"
      "  -- retried --\n"
      "  attempt 1 on " +
      w +
      ": Traceback (most recent call last):\n"
      "      ValueError: bad input\n"
      "  attempt 2 on " +
      w +
      ": Traceback (most recent call last):\n"
      "      ValueError: bad input\n";
  EXPECT_NE(status.out.find(errors), std::string::npos) << status;
  EXPECT_EQ(status.out.find("\nerror:"), std::string::npos)
      << "the task's error is the last attempt's, printed once\n"
      << status;
  std::size_t count = 0;
  for (std::size_t at = 0; (at = status.out.find("ValueError", at)) != std::string::npos; ++at) {
    ++count;
  }
  EXPECT_EQ(count, 4u) << status;

  CtlResult waited = Ctl({"wait", id});
  EXPECT_NE(waited.out.find("  -- retried --\n"), std::string::npos) << waited;
  EXPECT_EQ(waited.out.find("\nerror:"), std::string::npos) << waited;
}

TEST_F(CtlTest, WaitTakesSeveralIds) {
  StartDaemon();
  auto worker = ConnectWorker({"echo"});
  ASSERT_TRUE(worker);
  AutoOptions options;
  options.handler = [](const json& task) {
    TaskReply reply;
    reply.ok = task["payload"] != "fail";
    reply.output = task["payload"];
    reply.error = "asked to fail";
    reply.retryable = false;
    return reply;
  };
  worker->StartAuto(options);
  const std::string a = Submit({"--skill", "echo", "--payload", "\"a\""});
  const std::string b = Submit({"--skill", "echo", "--payload", "\"b\""});
  const std::string bad = Submit({"--skill", "echo", "--payload", "\"fail\""});

  CtlResult both = Ctl({"wait", a, b});
  EXPECT_EQ(both.exit_code, 0) << both;
  EXPECT_EQ(both.out.find("id:       " + a), 0u) << both;
  EXPECT_NE(both.out.find("\n\nid:       " + b), std::string::npos) << "in the order given\n"
                                                                    << both;

  CtlResult one_failed = Ctl({"--json", "wait", a, bad, b});
  EXPECT_EQ(one_failed.exit_code, 1) << one_failed;
  ASSERT_EQ(one_failed.Json().size(), 3u) << one_failed;
  EXPECT_EQ(one_failed.Json()[1]["id"], bad);
  EXPECT_EQ(one_failed.Json()[1]["state"], "failed");
  EXPECT_EQ(one_failed.Json()[2]["output"], "b");

  CtlResult missing = Ctl({"--json", "wait", a, "t999999", bad});
  EXPECT_EQ(missing.exit_code, 4) << "not found outranks failed\n" << missing;
  EXPECT_EQ(missing.err, "pincerctl: not_found: no task t999999\n") << missing;
  ASSERT_EQ(missing.Json().size(), 3u) << missing;
  EXPECT_EQ(missing.Json()[1]["error"]["code"], "not_found");
  EXPECT_EQ(missing.Json()[2]["state"], "failed");
}

TEST_F(CtlTest, TopQuitsOnQ) {
  StartDaemon();
  CtlOptions q;
  q.stdin_text = "q";
  // Without the q this would wait an hour for its second frame.
  CtlResult top = Ctl({"top", "--frames", "5", "--interval", "1h"}, q);
  EXPECT_EQ(top.exit_code, 0) << top;
  std::size_t frames = 0;
  for (std::size_t at = 0; (at = top.out.find("pincer top", at)) != std::string::npos; ++at) {
    ++frames;
  }
  EXPECT_EQ(frames, 1u) << top;
}

TEST_F(CtlTest, WorkersShowLabelsAndLoadInTheFormatTopUses) {
  StartDaemon();
  TestWorkerOptions options;
  options.name = "labelled";
  options.skills = {"echo"};
  options.labels = {{"team", "nlp"}};
  auto worker = TestWorker::Connect(daemon_->address(), options);
  ASSERT_TRUE(worker.ok());
  ASSERT_TRUE((*worker)->SendHeartbeat({{"cpu", 0.25}, {"rss_bytes", 5 * 1024 * 1024}}));
  ASSERT_TRUE(WaitFor([&] {
    return Ctl({"--json", "workers"}).Json()[0]["load"].value("rss_bytes", 0) > 0;
  }));
  CtlResult table = Ctl({"workers"});
  ASSERT_EQ(table.Lines().size(), 2u) << table;
  for (const char* column : {"POOL", "REPLICA", "PID", "UPTIME", "CPU", "RSS", "LABELS"}) {
    EXPECT_NE(table.Lines()[0].find(column), std::string::npos) << column << "\n" << table;
  }
  const std::string row = table.Lines()[1];
  EXPECT_NE(row.find("  25%  5.0Mi  team=nlp"), std::string::npos) << table;

  CtlResult top = Ctl({"top", "--once"});
  ASSERT_EQ(top.exit_code, 0) << top;
  EXPECT_NE(top.out.find("25%"), std::string::npos) << top;
  EXPECT_NE(top.out.find("5.0Mi"), std::string::npos) << top;
}

TEST_F(CtlTest, WorkersShowPidReplicaAndUptimeOfPoolWorkers) {
  StartDaemon(std::string("pools:\n  - name: echo\n    replicas: 1\n    command: [\"") +
              PINCER_BUILD_DIR + "/pincer-worker\", --skill, echo, --label, kind=pool, --, cat]\n");
  json workers;
  ASSERT_TRUE(WaitFor(
      [&] {
        workers = Ctl({"--json", "workers"}).Json();
        return workers.size() == 1 && workers[0]["id"].is_string() &&
               workers[0].contains("uptime_ms");
      },
      seconds(30)));
  CtlResult table = Ctl({"workers"});
  ASSERT_EQ(table.Lines().size(), 2u) << table;
  const std::string pid = std::to_string(workers[0]["pid"].get<long long>());
  std::istringstream row(table.Lines()[1]);
  std::vector<std::string> cells{std::istream_iterator<std::string>(row), {}};
  ASSERT_GE(cells.size(), 11u) << table;
  EXPECT_EQ(cells[7], "echo") << "POOL\n" << table;
  EXPECT_EQ(cells[8], "0") << "REPLICA\n" << table;
  EXPECT_EQ(cells[9], pid) << "PID\n" << table;
  EXPECT_NE(cells[10], "-") << "UPTIME\n" << table;
  EXPECT_NE(table.Lines()[1].find("kind=pool"), std::string::npos) << table;
}

TEST(PincerdHelpTest, SaysThatWithoutConfigTasksLiveInMemory) {
  ProcessResult help = RunProcess({std::string(PINCER_BUILD_DIR) + "/pincerd", "--help"});
  ASSERT_EQ(help.exit_code, 0) << help.err;
  EXPECT_NE(help.out.find("memory store"), std::string::npos) << help.out;

  TempDir dir("pincerd-noconf");
  ChildProcess pincerd;
  const std::string err = dir.path() + "/stderr";
  ASSERT_EQ(pincerd.Start({std::string(PINCER_BUILD_DIR) + "/pincerd", "--listen", "127.0.0.1:0"},
                          dir.path() + "/stdout", err),
            "");
  EXPECT_TRUE(WaitFor([&] {
    return ReadFileOrEmpty(err).find("no --config: running on the defaults with a memory store") !=
           std::string::npos;
  })) << ReadFileOrEmpty(err);
  pincerd.KillGroup();
}

TEST_F(CtlTest, UnixSocketAddress) {
  StartDaemon("unix_socket: \"{dir}/pincer.sock\"\n");
  CtlResult result = RunCtl("unix:" + daemon_->dir() + "/pincer.sock", {"--json", "stats"});
  EXPECT_EQ(result.exit_code, 0) << result;
  EXPECT_TRUE(result.Json().is_object()) << result;
}

}  // namespace
}  // namespace pincer::test
