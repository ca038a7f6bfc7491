// Agent-turn semantics end to end, with a real pincerd, pincer-worker and
// pincerctl: retries wait out tasks.retry_backoff, a permanent exit code or
// a result envelope fails a task without retry, and text goes in and comes
// out as text (pincerctl submit --text, pincer-worker --output text).
// Timing is checked only as lower bounds (a retry never comes sooner than
// its backoff); waits are bounded polls.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/clock.h"
#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;

constexpr int64_t kInitialMs = 400;

constexpr char kConfig[] =
    "store: { kind: memory }\n"
    "heartbeat: { interval: 300ms, misses: 5 }\n"
    "tasks: { retry_backoff: { initial: 400ms, max: 1h, jitter: 0.5 } }\n";

// Each run of the command appends its start time (unix ms) to `starts`,
// then fails until it has run `fail_times` times.
std::vector<std::string> FlakyCommand(const std::string& starts, int fail_times) {
  return {"sh", "-c",
          "date +%s%3N >> '" + starts + "'; n=$(wc -l < '" + starts + "'); if [ \"$n\" -le " +
              std::to_string(fail_times) + " ]; then echo 'busy' >&2; exit 1; fi; echo '\"done\"'"};
}

std::vector<int64_t> ReadStarts(const std::string& path) {
  std::vector<int64_t> starts;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) starts.push_back(std::stoll(line));
  }
  return starts;
}

class AgentTurnTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<DaemonProcess>(config_);
    ASSERT_TRUE(daemon_->Start());
  }
  void TearDown() override {
    if (HasFailure()) {
      for (size_t i = 0; i < workers_.size(); ++i) {
        std::cerr << "--- pincer-worker " << i << " stderr:\n"
                  << ReadFileOrEmpty(daemon_->dir() + "/worker" + std::to_string(i) + ".err");
      }
    }
    workers_.clear();
  }

  void StartWorker(const std::vector<std::string>& args, const std::vector<std::string>& command) {
    std::vector<std::string> argv = {kWorker, "--addr", daemon_->address(), "--log-level", "debug"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--");
    argv.insert(argv.end(), command.begin(), command.end());
    EnvChanges env;
    for (const char* name : {"PINCER_ADDR", "PINCER_TOKEN", "PINCER_SPAWN_ID"}) {
      env.try_emplace(name, std::nullopt);
    }
    const std::string log = daemon_->dir() + "/worker" + std::to_string(workers_.size()) + ".err";
    workers_.push_back(std::make_unique<ChildProcess>());
    ASSERT_EQ(workers_.back()->Start(argv, daemon_->dir() + "/worker.out", log, env), "");
  }

  CtlResult Ctl(const std::vector<std::string>& args, const CtlOptions& options = {}) {
    return RunCtl(daemon_->address(), args, options);
  }

  // submit --wait --json ARGS: the end object.
  json SubmitWait(const std::vector<std::string>& args, const CtlOptions& options = {}) {
    std::vector<std::string> all = {"--json", "submit", "--wait"};
    all.insert(all.end(), args.begin(), args.end());
    CtlResult result = Ctl(all, options);
    EXPECT_TRUE(result.Json().is_object()) << result;
    return result.Json();
  }

  json Status(const std::string& id) {
    CtlResult result = Ctl({"--json", "status", id});
    EXPECT_EQ(result.exit_code, 0) << result;
    return result.Json();
  }

  std::string Path(const std::string& name) const { return daemon_->dir() + "/" + name; }

  std::string config_ = kConfig;
  std::unique_ptr<DaemonProcess> daemon_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
};

// A backoff far longer than any test: a task is seen waiting it out.
class AgentTurnLongBackoffTest : public AgentTurnTest {
 protected:
  AgentTurnLongBackoffTest() {
    config_ =
        "store: { kind: memory }\n"
        "tasks: { retry_backoff: { initial: 1h, max: 2h, jitter: 0 } }\n";
  }
};

TEST_F(AgentTurnTest, RetriesComeNoSoonerThanTheirBackoff) {
  const std::string starts = Path("starts");
  StartWorker({"--skill", "flaky"}, FlakyCommand(starts, 2));
  const json end = SubmitWait({"--skill", "flaky", "--max-attempts", "3", "--payload", "1"});
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["attempts"], 3);
  EXPECT_EQ(end["output"], "done");
  const std::vector<int64_t> at = ReadStarts(starts);
  ASSERT_EQ(at.size(), 3u);
  // Attempt 2 waited at least initial after attempt 1 failed, attempt 3 at
  // least twice that after attempt 2 failed.
  EXPECT_GE(at[1] - at[0], kInitialMs);
  EXPECT_GE(at[2] - at[1], 2 * kInitialMs);
  // pincerd's own record of the last attempt's start agrees.
  const json status = Status(end["id"]);
  EXPECT_GE(status["started_ms"].get<int64_t>() - at[1], 2 * kInitialMs) << status;
}

TEST_F(AgentTurnLongBackoffTest, ATaskBackingOffIsQueuedAndSaysUntilWhen) {
  const std::string starts = Path("starts");
  StartWorker({"--skill", "flaky"}, FlakyCommand(starts, 100));
  CtlResult submitted =
      Ctl({"submit", "--skill", "flaky", "--max-attempts", "3", "--payload", "1"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted;
  const std::string id = submitted.Lines().at(0);
  json status;
  ASSERT_TRUE(WaitFor([&] {
    status = Status(id);
    return status.value("attempts", 0) == 1 && status.value("state", "") == "queued";
  })) << status;
  EXPECT_EQ(status["why"].get<std::string>().rfind("retrying after backoff until 20", 0), 0u)
      << status;
  ASSERT_TRUE(status["retry_at_ms"].is_number_integer()) << status;
  EXPECT_GE(status["retry_at_ms"].get<int64_t>(), ReadStarts(starts).at(0) + 3600 * 1000);
  ASSERT_EQ(Ctl({"cancel", id}).exit_code, 0);
  EXPECT_EQ(Status(id)["state"], "cancelled");
  EXPECT_EQ(ReadStarts(starts).size(), 1u);
}

// The wait is not stored: after a restart a task that was backing off
// waits `initial` again, from the restart (docs/configuration.md).
class AgentTurnRestartTest : public AgentTurnTest {
 protected:
  AgentTurnRestartTest() {
    config_ =
        "store: { kind: sqlite }\n"
        "tasks: { retry_backoff: { initial: 1h, max: 2h, jitter: 0 } }\n";
  }
};

TEST_F(AgentTurnRestartTest, ARestartResetsTheBackoffToItsFirstStep) {
  const std::string starts = Path("starts");
  StartWorker({"--skill", "flaky"}, FlakyCommand(starts, 100));
  CtlResult submitted =
      Ctl({"submit", "--skill", "flaky", "--max-attempts", "3", "--payload", "1"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted;
  const std::string id = submitted.Lines().at(0);
  ASSERT_TRUE(WaitFor(
      [&] { return Status(id).value("attempts", 0) == 1 && Status(id).contains("retry_at_ms"); }));
  workers_.clear();  // the worker stays away: nothing runs the task again
  const int64_t before_restart = SystemClock().UnixMillis();
  ASSERT_TRUE(daemon_->Restart());
  const json status = Status(id);
  EXPECT_EQ(status["state"], "queued") << status;
  EXPECT_EQ(status["attempts"], 1) << status;
  EXPECT_EQ(status["why"].get<std::string>().rfind("retrying after backoff until ", 0), 0u)
      << status;
  ASSERT_TRUE(status["retry_at_ms"].is_number_integer()) << status;
  EXPECT_GE(status["retry_at_ms"].get<int64_t>(), before_restart + 3600 * 1000) << status;
}

TEST_F(AgentTurnTest, APermanentExitCodeRunsOnce) {
  const std::string runs = Path("runs");
  StartWorker({"--skill", "three"},
              {"sh", "-c", "echo x >> '" + runs + "'; echo 'Traceback: bad input' >&2; exit 3"});
  StartWorker({"--skill", "custom", "--permanent-exit-codes", "64,65"},
              {"sh", "-c", "echo y >> '" + runs + "'; exit 65"});
  json end = SubmitWait({"--skill", "three", "--max-attempts", "3", "--payload", "1"});
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["attempts"], 1);
  EXPECT_EQ(end["error"], "exit status 3: Traceback: bad input");
  end = SubmitWait({"--skill", "custom", "--max-attempts", "3", "--payload", "1"});
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["attempts"], 1);
  EXPECT_EQ(ReadFileOrEmpty(runs), "x\ny\n");
}

TEST_F(AgentTurnTest, BadResultFlagsAreAUsageError) {
  ProcessResult r = RunProcess({kWorker, "--permanent-exit-codes", "3,x", "--", "cat"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("--permanent-exit-codes"), std::string::npos) << r.err;
  r = RunProcess({kWorker, "--output", "xml", "--", "cat"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = RunProcess({kWorker, "--envelope", "--openai", "http://127.0.0.1:1/v1"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("apply to a COMMAND"), std::string::npos) << r.err;
}

TEST_F(AgentTurnTest, TheEnvelopeDecides) {
  // The payload is the envelope the command prints, and its exit code.
  StartWorker({"--skill", "env", "--envelope"}, {"sh", "-c", "read -r code; cat; exit $code"});
  auto run = [&](const std::string& code, const std::string& envelope) {
    return SubmitWait({"--skill", "env", "--max-attempts", "2", "--text", code + "\n" + envelope});
  };
  json end = run("0", R"({"ok":true,"status":"ok","final":"hi"})");
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["output"]["final"], "hi");

  end = run("1", R"({"ok":true,"answer":4})");  // the envelope wins over the exit status
  EXPECT_EQ(end["state"], "succeeded") << end;

  end = run("0", R"({"ok":false,"error":"bad prompt","retryable":false})");
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["attempts"], 1);
  EXPECT_EQ(end["error"], "bad prompt");

  end = run("3", R"({"ok":false,"status":"error","error":{"type":"cli_error","message":"nope"}})");
  EXPECT_EQ(end["attempts"], 1) << end;
  EXPECT_EQ(end["error"], "nope (exit status 3)");

  end = run("2", R"({"ok":false,"status":"timeout","error":{"message":"timed out"}})");
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["attempts"], 2) << "timeout is retryable";
  EXPECT_EQ(end["error"], "timeout: timed out (exit status 2)");
}

TEST_F(AgentTurnTest, TextInTextOut) {
  StartWorker({"--skill", "text", "--output", "text"}, {"cat"});
  StartWorker({"--skill", "auto"}, {"cat"});
  json end = SubmitWait({"--skill", "text", "--text", "4"});
  EXPECT_EQ(end["output"], "4") << end;
  end = SubmitWait({"--skill", "auto", "--text", "4"});
  EXPECT_EQ(end["output"], 4) << "auto parses what is JSON";
  end = SubmitWait({"--skill", "text", "--text", "null"});
  EXPECT_EQ(end["output"], "null") << end;
  end = SubmitWait({"--skill", "text", "--text", "say \"hi\"\n\tand {go}"});
  EXPECT_EQ(end["output"], "say \"hi\"\n\tand {go}") << end;

  const std::string file = Path("prompt.txt");
  std::ofstream(file) << "line one\nline two\n";
  end = SubmitWait({"--skill", "text", "--text-file", file});
  EXPECT_EQ(end["output"], "line one\nline two\n") << end;
  CtlOptions stdin_text;
  stdin_text.stdin_text = "from stdin";
  end = SubmitWait({"--skill", "text", "--text-file", "-"}, stdin_text);
  EXPECT_EQ(end["output"], "from stdin") << end;

  const json status = Status(end["id"]);
  EXPECT_EQ(status["payload"], "from stdin") << "sent as a JSON string";
}

TEST_F(AgentTurnTest, BadTextInputIsRefusedBeforeSending) {
  const std::string bad = Path("latin1.txt");
  std::ofstream(bad) << "caf\xe9\n";
  CtlResult r = Ctl({"submit", "--text-file", bad});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_NE(r.err.find("is not UTF-8 text"), std::string::npos) << r;
  r = Ctl({"submit", "--text-file", Path("missing.txt")});
  EXPECT_EQ(r.exit_code, 2) << r;
  r = Ctl({"submit", "--text", "a", "--payload", "1"});
  EXPECT_EQ(r.exit_code, 2) << r;
  r = Ctl({"submit", "--text", "a", "--text-file", bad});
  EXPECT_EQ(r.exit_code, 2) << r;
  r = Ctl({"submit", "--text", "a", "--batch", bad});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_EQ(Ctl({"--json", "tasks"}).Json(), json::array()) << "nothing was submitted";
}

}  // namespace
}  // namespace pincer::test
