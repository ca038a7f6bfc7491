// pincer-worker against a real pincerd (SPEC section 8): payload on stdin,
// stdout as output, failures with the stderr tail, task env, cancel and
// timeout killing the process group, drain, SIGTERM, reconnecting after a
// daemon restart, Unix sockets. Waits are bounded polls, never sleeps.
// The pure parts are unit-tested in tests/unit/worker_*_test.cc.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/raw_peer.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/wait_for.h"
#include "support/worker_fixture.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// True while `pid` exists and is not a zombie. Processes reparented to an
// init that does not reap (containers) stay zombies, but they are dead.
bool ProcessAlive(pid_t pid) {
  const std::string text = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/stat");
  if (text.empty()) return false;
  const auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && text[close + 2] != 'Z';
}

// The pid a task's command wrote to `path`, once it has.
std::optional<pid_t> ReadPid(const std::string& path) {
  std::optional<pid_t> pid;
  WaitFor([&] {
    const std::string text = ReadFileOrEmpty(path);
    if (text.empty() || text.back() != '\n') return false;
    pid = static_cast<pid_t>(std::stol(text));
    return true;
  });
  return pid;
}

class PincerWorkerTest : public WorkerFixture {
 protected:
  void SetUp() override { StartDaemon(extra_config_); }

  // Starts pincer-worker with `args` (before "--") running `command`.
  // Returns its index in workers_.
  size_t StartWorker(const std::vector<std::string>& args, const std::vector<std::string>& command,
                     EnvChanges env = {}) {
    std::vector<std::string> argv = {kWorker, "--addr", daemon_->address(), "--log-level", "debug"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--");
    argv.insert(argv.end(), command.begin(), command.end());
    for (const char* name : {"PINCER_ADDR", "PINCER_TOKEN", "PINCER_SPAWN_ID"}) {
      env.try_emplace(name, std::nullopt);
    }
    return StartWorkerProcess(argv, env);
  }

  std::string StateOf(const std::string& id) { return Status(id).value("state", ""); }

  std::string extra_config_;
};

TEST(PincerWorkerCliTest, VersionHelpAndUsage) {
  ProcessResult version = RunProcess({kWorker, "--version"});
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out.rfind("pincer-worker ", 0), 0u) << version.out;

  ProcessResult help = RunProcess({kWorker, "--help"});
  EXPECT_EQ(help.exit_code, 0);
  for (const char* flag : {"--addr", "--token", "--name", "--skill", "--capacity", "--unix"}) {
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
  }

  EXPECT_EQ(RunProcess({kWorker}).exit_code, 2) << "a command is required";
  EXPECT_EQ(RunProcess({kWorker, "--capacity", "0", "--", "cat"}).exit_code, 2);
  EXPECT_EQ(RunProcess({kWorker, "--addr", "nonsense", "--", "cat"}).exit_code, 2);
}

TEST_F(PincerWorkerTest, HelloAnnouncesNameSkillsCapacityLabels) {
  StartWorker({"--name", "echo-1", "--skill", "echo", "--skill", "text", "--capacity", "3",
               "--label", "host=box1"},
              {"cat"});
  ASSERT_TRUE(WaitForWorker("echo-1"));
  const json w = *FindWorker("echo-1");
  EXPECT_EQ(w["skills"], json::parse(R"(["echo","text"])"));
  EXPECT_EQ(w["capacity"], 3);
  EXPECT_EQ(w["state"], "ready");
  EXPECT_EQ(w["labels"], json::parse(R"({"host":"box1"})"));
  // Heartbeats carry the load of the worker and its tasks.
  EXPECT_TRUE(WaitFor([&] {
    auto now = FindWorker("echo-1");
    return now && (*now)["load"].value("rss_bytes", 0) > 0;
  }));
}

TEST_F(PincerWorkerTest, PayloadOnStdinStdoutAsOutput) {
  StartWorker({"--name", "cat", "--skill", "echo"}, {"cat"});
  ASSERT_TRUE(WaitForWorker("cat"));

  json end = SubmitWait({"--skill", "echo", "--payload", R"("hello")"});
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["output"], "hello");

  // Non-string payloads arrive as JSON, and JSON output is parsed.
  end = SubmitWait({"--skill", "echo", "--payload", R"({"a":[1,2],"b":null})"});
  EXPECT_EQ(end["output"], json::parse(R"({"a":[1,2],"b":null})")) << end;

  // Text that is not JSON comes back as the exact string.
  end = SubmitWait({"--skill", "echo", "--payload", R"("two\nlines\n")"});
  EXPECT_EQ(end["output"], "two\nlines\n") << end;
}

// A command that prints JSON nested deeper than the daemon takes (its
// limits.max_json_depth, from welcome) fails its task without retry; the
// worker stays up and serves on.
TEST_F(PincerWorkerTest, OutputNestedTooDeepFailsWithoutRetry) {
  StartWorker({"--name", "cat", "--skill", "echo"}, {"cat"});
  ASSERT_TRUE(WaitForWorker("cat"));
  const auto nest = [](int n) { return std::string(n, '[') + std::string(n, ']'); };
  // The payload is a JSON string: cat prints the brackets as they are.
  TempDir dir("pincer-deep");
  const auto submit = [&](int levels) {
    const std::string file = dir.WriteFile("p" + std::to_string(levels), json(nest(levels)).dump());
    return SubmitWait({"--skill", "echo", "--max-attempts", "3", "--payload-file", file});
  };
  json end = submit(63);  // the result object is level 1
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["output"], json::parse(nest(63)));
  for (int levels : {64, 100000}) {
    end = submit(levels);
    EXPECT_EQ(end["state"], "failed") << levels;
    EXPECT_EQ(end["attempts"], 1) << "the same output again would not help";
    EXPECT_NE(end["error"].get<std::string>().find("output too deep"), std::string::npos) << end;
  }
  // Brackets that are not JSON stay text.
  end = SubmitWait({"--skill", "echo", "--payload", json(std::string(1000, '[')).dump()});
  EXPECT_EQ(end["output"], std::string(1000, '[')) << end;
}

TEST_F(PincerWorkerTest, ProgramsThatTransformText) {
  StartWorker({"--name", "upper", "--skill", "upper"}, {"tr", "a-z", "A-Z"});
  ASSERT_TRUE(WaitForWorker("upper"));
  const json end = SubmitWait({"--skill", "upper", "--payload", R"("hello world")"});
  EXPECT_EQ(end["output"], "HELLO WORLD") << end;
}

TEST_F(PincerWorkerTest, NonZeroExitFailsWithStderrTailAndIsRetried) {
  StartWorker({"--name", "fail", "--skill", "fail"},
              {"sh", "-c", "echo partial; echo 'model returned 503' >&2; exit 1"});
  ASSERT_TRUE(WaitForWorker("fail"));
  const json end = SubmitWait({"--skill", "fail", "--max-attempts", "2", "--payload", "1"});
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["error"], "exit status 1: model returned 503");
  EXPECT_EQ(end["attempts"], 2) << "a non-zero exit is retryable";
}

TEST_F(PincerWorkerTest, KilledBySignalIsAFailure) {
  StartWorker({"--name", "sig", "--skill", "sig"}, {"sh", "-c", "kill -9 $$"});
  ASSERT_TRUE(WaitForWorker("sig"));
  const json end = SubmitWait({"--skill", "sig", "--max-attempts", "1", "--payload", "1"});
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["error"], "killed by signal 9");
}

TEST_F(PincerWorkerTest, CommandNotFoundFailsWithoutRetry) {
  StartWorker({"--name", "missing", "--skill", "missing"}, {"/no/such/program"});
  ASSERT_TRUE(WaitForWorker("missing"));
  const json end = SubmitWait({"--skill", "missing", "--max-attempts", "3", "--payload", "1"});
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["attempts"], 1) << "retrying cannot make the program appear";
  EXPECT_NE(end["error"].get<std::string>().find("No such file"), std::string::npos) << end;
}

TEST_F(PincerWorkerTest, TaskEnvironment) {
  StartWorker({"--name", "env", "--skill", "env"},
              {"sh", "-c",
               R"(printf '["%s","%s","%s","%s"]' "$PINCER_TASK_ID" "$PINCER_SESSION" )"
               R"("$PINCER_ATTEMPT" "$INHERITED")"},
              {{"INHERITED", "yes"}});
  ASSERT_TRUE(WaitForWorker("env"));
  json end = SubmitWait({"--skill", "env", "--session", "chat-7", "--payload", "1"});
  ASSERT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["output"], json::array({end["id"], "chat-7", "1", "yes"})) << end;

  end = SubmitWait({"--skill", "env", "--payload", "1"});
  EXPECT_EQ(end["output"][1], "") << "no session: PINCER_SESSION is empty";
}

TEST_F(PincerWorkerTest, CancelKillsTheWholeProcessGroup) {
  TempDir scratch("pw-cancel");
  const std::string leader = scratch.Join("leader"), child = scratch.Join("child");
  StartWorker({"--name", "slow", "--skill", "slow", "--kill-grace", "0.5"},
              {"sh", "-c", "sleep 60 & echo $! > " + child + "; echo $$ > " + leader + "; wait"});
  ASSERT_TRUE(WaitForWorker("slow"));
  const std::string id = Submit({"--skill", "slow", "--payload", "1"});
  auto leader_pid = ReadPid(leader), child_pid = ReadPid(child);
  ASSERT_TRUE(leader_pid && child_pid);
  EXPECT_TRUE(ProcessAlive(*leader_pid));

  CtlResult cancel = Ctl({"cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel;
  EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(*leader_pid); }, seconds(5)));
  EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(*child_pid); }, seconds(5)))
      << "the background child of the task survived";
  EXPECT_EQ(StateOf(id), "cancelled");

  // The slot is free again and the worker still works.
  std::remove(leader.c_str());
  const std::string next = Submit({"--skill", "slow", "--payload", "1"});
  EXPECT_TRUE(ReadPid(leader).has_value());
  Ctl({"cancel", next});
}

TEST_F(PincerWorkerTest, StubbornTaskIsKilledAfterTheGrace) {
  TempDir scratch("pw-stubborn");
  const std::string leader = scratch.Join("leader");
  StartWorker({"--name", "stubborn", "--skill", "stubborn", "--kill-grace", "0.3"},
              {"sh", "-c", "trap '' TERM; echo $$ > " + leader + "; while :; do sleep 0.05; done"});
  ASSERT_TRUE(WaitForWorker("stubborn"));
  const std::string id = Submit({"--skill", "stubborn", "--payload", "1"});
  auto pid = ReadPid(leader);
  ASSERT_TRUE(pid);
  Ctl({"cancel", id});
  EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(*pid); }, seconds(5)));
}

TEST_F(PincerWorkerTest, TimeoutStopsTheTask) {
  TempDir scratch("pw-timeout");
  const std::string leader = scratch.Join("leader");
  StartWorker({"--name", "sleepy", "--skill", "sleepy"},
              {"sh", "-c", "echo $$ > " + leader + "; exec sleep 60"});
  ASSERT_TRUE(WaitForWorker("sleepy"));
  const json end = SubmitWait(
      {"--skill", "sleepy", "--timeout", "500ms", "--max-attempts", "1", "--payload", "1"});
  EXPECT_EQ(end["state"], "timed_out") << end;
  auto pid = ReadPid(leader);
  ASSERT_TRUE(pid);
  EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(*pid); }, seconds(5)));
}

TEST_F(PincerWorkerTest, CapacityRunsTasksSideBySide) {
  StartWorker({"--name", "pair", "--skill", "pair", "--capacity", "2"}, {"sh", "-c", "sleep 30"});
  ASSERT_TRUE(WaitForWorker("pair"));
  const std::string a = Submit({"--skill", "pair", "--payload", "1"});
  const std::string b = Submit({"--skill", "pair", "--payload", "2"});
  EXPECT_TRUE(WaitFor([&] {
    auto w = FindWorker("pair");
    return w && (*w)["inflight"] == 2;
  }));
  EXPECT_EQ(StateOf(a), "running");
  EXPECT_EQ(StateOf(b), "running");
  Ctl({"cancel", a});
  Ctl({"cancel", b});
}

TEST_F(PincerWorkerTest, DrainFinishesTheTaskThenExitsZero) {
  const size_t w =
      StartWorker({"--name", "drainee", "--skill", "drain"}, {"sh", "-c", "sleep 0.5; cat"});
  ASSERT_TRUE(WaitForWorker("drainee"));
  const std::string id = Submit({"--skill", "drain", "--payload", R"("last one")"});
  ASSERT_TRUE(WaitFor([&] { return StateOf(id) == "running"; }));
  const std::string worker_id = FindWorker("drainee")->value("id", "");
  CtlResult drain = Ctl({"drain", worker_id});
  EXPECT_EQ(drain.exit_code, 0) << drain;

  EXPECT_EQ(workers_[w]->Wait(seconds(10)), std::optional<int>(0));
  CtlResult status = Ctl({"--json", "status", id});
  EXPECT_EQ(status.Json()["state"], "succeeded") << status;
  EXPECT_EQ(status.Json()["output"], "last one") << status;
}

TEST_F(PincerWorkerTest, SigtermDrainsTheRunningTaskFinishesThenExitsZero) {
  TempDir scratch("pw-drain");
  const std::string go = scratch.Join("go");
  const std::string input = scratch.Join("stdin");
  // The task ends when the test says so: once the worker is draining.
  const size_t w = StartWorker(
      {"--name", "graceful", "--skill", "grace"},
      {"sh", "-c",
       "while [ ! -e " + go + " ]; do sleep 0.02; done; cat > " + input + "; echo done"});
  ASSERT_TRUE(WaitForWorker("graceful"));
  // Submitted raw: pincerctl would send the payload re-serialised.
  RawPeer submitter;
  ASSERT_EQ(submitter.Connect(daemon_->address()), "");
  ASSERT_TRUE(submitter.Hello("client"));
  ASSERT_TRUE(submitter.SendLine(
      R"({"type":"submit","req":1,"skills":["grace"],"payload":{"b":1,"a":1e3}})"));
  auto ok = submitter.ReadJson(seconds(10));
  ASSERT_TRUE(ok && ok->contains("id")) << (ok ? ok->dump() : "no answer");
  const std::string id = (*ok)["id"];
  ASSERT_TRUE(WaitFor([&] { return StateOf(id) == "running"; }));
  workers_[w]->Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] {
    auto worker = FindWorker("graceful");
    return worker && worker->value("state", "") == "draining";
  }));
  // Nothing new reaches it while it finishes.
  const std::string later = Submit({"--skill", "grace", "--payload", "2"});
  CtlResult queued = Ctl({"--json", "status", later});
  EXPECT_EQ(queued.Json().value("why_code", ""), "workers_unavailable") << queued;
  EXPECT_TRUE(workers_[w]->running());

  std::ofstream(go).put('\n');
  EXPECT_EQ(workers_[w]->Wait(seconds(10)), std::optional<int>(0));
  CtlResult status = Ctl({"--json", "status", id});
  EXPECT_EQ(status.Json().value("state", ""), "succeeded") << status;
  EXPECT_EQ(status.Json()["output"], "done\n") << status;
  EXPECT_EQ(status.Json().value("attempts", 0), 1);
  // The command read the payload as submitted: keys in order, 1e3 as sent.
  EXPECT_EQ(ReadFileOrEmpty(input), R"({"b":1,"a":1e3})");
  EXPECT_EQ(StateOf(later), "queued");
  EXPECT_NE(WorkerLog(w).find("draining"), std::string::npos);
}

// A task cancelled while the worker drains on SIGTERM: the worker keeps the
// connection until the command is reaped and its `stopped` sent, and only
// then (pincerd answering `drained`) exits.
TEST_F(PincerWorkerTest, SigtermWaitsForACancelledCommandToBeReapedBeforeClosing) {
  TempDir scratch("pw-term-cancel");
  const std::string leader = scratch.Join("leader");
  const size_t w = StartWorker(
      {"--name", "slowstop", "--skill", "slowstop", "--kill-grace", "0.5"},
      {"sh", "-c", "trap '' TERM; echo $$ > " + leader + "; while :; do sleep 0.05; done"});
  ASSERT_TRUE(WaitForWorker("slowstop"));
  const std::string id = Submit({"--skill", "slowstop", "--payload", "1"});
  auto pid = ReadPid(leader);
  ASSERT_TRUE(pid);
  workers_[w]->Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] {
    auto worker = FindWorker("slowstop");
    return worker && worker->value("state", "") == "draining";
  }));
  CtlResult cancel = Ctl({"cancel", id});
  EXPECT_EQ(cancel.exit_code, 0) << cancel;
  EXPECT_EQ(workers_[w]->Wait(seconds(10)), std::optional<int>(0));
  EXPECT_FALSE(ProcessAlive(*pid)) << "the worker exited before its command was gone";
  EXPECT_EQ(StateOf(id), "cancelled");
  const std::string log = WorkerLog(w);
  const auto stopped = log.find("attempt 1: stopped");
  const auto exiting = log.find("drained; exiting");
  ASSERT_NE(stopped, std::string::npos) << log;
  ASSERT_NE(exiting, std::string::npos) << log;
  EXPECT_LT(stopped, exiting) << "the connection closed before the command was reaped";
}

TEST_F(PincerWorkerTest, ASecondSigtermKillsTasksAndExitsZero) {
  TempDir scratch("pw-term");
  const std::string leader = scratch.Join("leader");
  const size_t w = StartWorker({"--name", "term", "--skill", "term"},
                               {"sh", "-c", "echo $$ > " + leader + "; exec sleep 60"});
  ASSERT_TRUE(WaitForWorker("term"));
  Submit({"--skill", "term", "--payload", "1"});
  auto pid = ReadPid(leader);
  ASSERT_TRUE(pid);
  workers_[w]->Signal(SIGTERM);
  ASSERT_TRUE(WaitFor([&] {
    auto worker = FindWorker("term");
    return worker && worker->value("state", "") == "draining";
  }));
  EXPECT_TRUE(ProcessAlive(*pid)) << "the first SIGTERM lets the task run";
  workers_[w]->Signal(SIGTERM);
  EXPECT_EQ(workers_[w]->Wait(seconds(10)), std::optional<int>(0));
  EXPECT_FALSE(ProcessAlive(*pid));
}

TEST_F(PincerWorkerTest, SigtermWhenIdleExitsZeroAtOnce) {
  const size_t w = StartWorker({"--name", "idle", "--skill", "idle"}, {"cat"});
  ASSERT_TRUE(WaitForWorker("idle"));
  workers_[w]->Signal(SIGTERM);
  EXPECT_EQ(workers_[w]->Wait(seconds(10)), std::optional<int>(0));
}

TEST_F(PincerWorkerTest, ReconnectsAfterTheDaemonRestarts) {
  const size_t w = StartWorker({"--name", "phoenix", "--skill", "echo"}, {"cat"});
  ASSERT_TRUE(WaitForWorker("phoenix"));
  daemon_->Kill9();
  ASSERT_TRUE(daemon_->Restart());
  ASSERT_TRUE(WaitForWorker("phoenix"));
  EXPECT_TRUE(workers_[w]->running()) << "the worker must outlive the daemon";
  const json end = SubmitWait({"--skill", "echo", "--payload", R"("again")"});
  EXPECT_EQ(end["output"], "again") << end;
}

TEST_F(PincerWorkerTest, LosingTheDaemonKeepsRunningTasksForTheNextHello) {
  TempDir scratch("pw-lost");
  const std::string leader = scratch.Join("leader");
  const std::size_t w = StartWorker({"--name", "orphan", "--skill", "orphan"},
                                    {"sh", "-c", "echo $$ > " + leader + "; exec sleep 60"});
  ASSERT_TRUE(WaitForWorker("orphan"));
  Submit({"--skill", "orphan", "--payload", "1"});
  auto pid = ReadPid(leader);
  ASSERT_TRUE(pid);
  daemon_->Kill9();
  // The task runs on, for pincerd (restarted, or a standby) to adopt
  // (docs/protocol.md, "Adopting a reconnecting worker's tasks");
  // tests/integration/adopt_test.cc follows it to its end.
  ASSERT_TRUE(WaitFor([&] {
    return WorkerLog(w).find("keeping 1 running task(s) through the reconnect") !=
           std::string::npos;
  })) << WorkerLog(w);
  EXPECT_TRUE(ProcessAlive(*pid));
}

TEST_F(PincerWorkerTest, EnvironmentDefaultsForAddressAndToken) {
  std::vector<std::string> argv = {kWorker, "--name", "from-env", "--", "cat"};
  workers_.push_back(std::make_unique<ChildProcess>());
  ASSERT_EQ(
      workers_.back()->Start(argv, daemon_->dir() + "/worker.out", daemon_->dir() + "/worker0.err",
                             {{"PINCER_ADDR", daemon_->address()},
                              {"PINCER_TOKEN", "anything"},
                              {"PINCER_SPAWN_ID", std::nullopt}}),
      "");
  EXPECT_TRUE(WaitForWorker("from-env"));
}

class PincerWorkerLimitsTest : public PincerWorkerTest {
 protected:
  void SetUp() override {
    extra_config_ =
        "limits: { max_frame_bytes: 65536, max_json_depth: 10 }\n"
        "unix_socket: \"{dir}/pincer.sock\"\n";
    PincerWorkerTest::SetUp();
  }
};

TEST_F(PincerWorkerLimitsTest, OutputBeyondTheFrameLimitFailsWithoutRetry) {
  StartWorker({"--name", "big", "--skill", "big", "--max-frame-bytes", "65536"},
              {"sh", "-c", "head -c 200000 /dev/zero | tr '\\000' a"});
  ASSERT_TRUE(WaitForWorker("big"));
  const json end = SubmitWait({"--skill", "big", "--max-attempts", "3", "--payload", "1"});
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["attempts"], 1) << end;
  EXPECT_NE(end["error"].get<std::string>().find("too large"), std::string::npos) << end;
}

// limits.max_json_depth reaches the worker in welcome: with 10, an output
// may nest 9 levels.
TEST_F(PincerWorkerLimitsTest, OutputDeeperThanTheDaemonsLimitFailsWithoutRetry) {
  StartWorker({"--name", "cat", "--skill", "echo"}, {"cat"});
  ASSERT_TRUE(WaitForWorker("cat"));
  const auto nest = [](int n) { return std::string(n, '[') + std::string(n, ']'); };
  json end = SubmitWait({"--skill", "echo", "--payload", json(nest(9)).dump()});
  EXPECT_EQ(end["state"], "succeeded") << end;
  end = SubmitWait({"--skill", "echo", "--max-attempts", "3", "--payload", json(nest(10)).dump()});
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["attempts"], 1) << end;
  EXPECT_NE(end["error"].get<std::string>().find("limits.max_json_depth = 10"), std::string::npos)
      << end;
}

TEST_F(PincerWorkerLimitsTest, ConnectsOverTheUnixSocket) {
  std::vector<std::string> argv = {kWorker,  "--unix", daemon_->dir() + "/pincer.sock",
                                   "--name", "unix",   "--skill",
                                   "echo",   "--",     "cat"};
  workers_.push_back(std::make_unique<ChildProcess>());
  ASSERT_EQ(
      workers_.back()->Start(argv, daemon_->dir() + "/worker.out", daemon_->dir() + "/worker0.err",
                             {{"PINCER_ADDR", std::nullopt}}),
      "");
  ASSERT_TRUE(WaitForWorker("unix"));
  const json end = SubmitWait({"--skill", "echo", "--payload", R"("over unix")"});
  EXPECT_EQ(end["output"], "over unix") << end;
}

}  // namespace
}  // namespace pincer::test
