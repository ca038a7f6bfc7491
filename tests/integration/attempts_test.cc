// Attempts on the wire and one attempt at a time, against a real pincerd:
// `cancel` names the attempt and why; a result or progress for an attempt
// that is not the current one is refused with `stale_attempt`; a worker
// that says `confirms_stop` keeps the slot of a cancelled or timed-out
// attempt, and the task is not started again anywhere, until it sends
// `stopped` or its connection closes. Raw peers play the workers, so every
// line is seen as sent; a real pincer-worker shows that a command ignoring
// SIGTERM is never overlapped by its retry.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/daemon_process.h"
#include "support/raw_peer.h"
#include "support/scenario.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// No backoff: a timed-out task is ready to run again at once, so only the
// one-attempt rule holds it back. Heartbeats are lenient: raw peers send
// none unless a test does.
constexpr const char* kConfig =
    "store: { kind: memory }\n"
    "heartbeat: { interval: 5s, misses: 100 }\n"
    "tasks: { retry_backoff: { initial: 0ms, max: 0ms, jitter: 0 } }\n";

constexpr milliseconds kRead = seconds(20);  // bounds a wait for a line that must come

class AttemptsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<DaemonProcess>(kConfig);
    ASSERT_TRUE(daemon_->Start());
    client_ = ConnectClient(daemon_->address());
    ASSERT_NE(client_, nullptr);
  }

  // A raw worker with skill `skill`, capacity 1; `confirms` says confirms_stop.
  std::unique_ptr<RawPeer> RawWorker(const std::string& name, bool confirms = true,
                                     const std::string& skill = "job") {
    auto peer = std::make_unique<RawPeer>();
    EXPECT_EQ(peer->Connect(daemon_->address()), "");
    json extra = {{"name", name}, {"skills", {skill}}, {"capacity", 1}};
    if (confirms) extra["confirms_stop"] = true;
    auto welcome = peer->Hello("worker", "", extra);
    EXPECT_TRUE(welcome && welcome->value("type", "") == "welcome")
        << (welcome ? welcome->dump() : "");
    return peer;
  }

  // The next line of `peer`; fails the test on timeout.
 public:
  static json Next(RawPeer& peer, milliseconds timeout = kRead) {
    std::optional<json> line = peer.ReadJson(timeout);
    if (!line) {
      ADD_FAILURE() << "no line from pincerd within " << timeout.count() << "ms";
      return json::object();
    }
    return *line;
  }

 protected:
  json Status(const std::string& id) { return TaskStatus(*client_, id); }

  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(AttemptsTest, ALateResultOfATimedOutAttemptIsStaleAndTheRetryWaitsForStopped) {
  auto first = RawWorker("first");
  const std::string id =
      SubmitTask(*client_, {{"skills", {"job"}}, {"timeout", "300ms"}, {"max_attempts", 3}});
  json task = Next(*first);
  ASSERT_EQ(task.value("type", ""), "task") << task;
  EXPECT_EQ(task["attempt"], 1);

  // The attempt times out: cancel names it and says why.
  json cancel = Next(*first);
  EXPECT_EQ(cancel,
            json({{"type", "cancel"}, {"id", id}, {"attempt", 1}, {"reason", "timed_out"}}));

  // Another worker is free now, yet the task waits for the first to stop.
  auto second = RawWorker("second");
  json status = Status(id);
  EXPECT_EQ(status["state"], "queued") << status;
  EXPECT_EQ(status["why"].get<std::string>().rfind("waiting for worker w", 0), 0u) << status;
  EXPECT_NE(status["why"].get<std::string>().find("to confirm attempt 1 stopped"),
            std::string::npos)
      << status;
  EXPECT_EQ(status.value("why_code", ""), "attempt_stopping") << status;

  // The late result of attempt 1 (with or without its number), and its
  // progress, are refused and change nothing.
  first->SendJson({{"type", "progress"}, {"id", id}, {"attempt", 1}, {"data", "late"}});
  json err = Next(*first);
  EXPECT_EQ(err.value("code", ""), "stale_attempt") << err;
  EXPECT_EQ(err["id"], id);
  EXPECT_EQ(err["attempt"], 1);
  first->SendJson(
      {{"type", "result"}, {"id", id}, {"attempt", 1}, {"ok", true}, {"output", "late"}});
  err = Next(*first);
  EXPECT_EQ(err.value("code", ""), "stale_attempt") << err;
  EXPECT_EQ(err["id"], id);
  EXPECT_EQ(err["attempt"], 1);
  first->SendJson({{"type", "result"}, {"id", id}, {"ok", true}, {"output", "late"}});
  err = Next(*first);
  EXPECT_EQ(err.value("code", ""), "stale_attempt") << err;
  EXPECT_EQ(err["attempt"], 1) << "the attempt being stopped";
  status = Status(id);
  EXPECT_EQ(status["state"], "queued") << status;
  EXPECT_EQ(status["attempts"], 1) << status;
  EXPECT_TRUE(status["progress"].is_null()) << status;
  EXPECT_EQ(Workers(*client_).size(), 2u);
  for (const json& w : Workers(*client_)) {
    EXPECT_EQ(w["inflight"], w["name"] == "first" ? 1 : 0) << w;
  }

  // stopped frees the slot: attempt 2 goes out (to one of the two).
  first->SendJson({{"type", "stopped"}, {"id", id}, {"attempt", 1}});
  ASSERT_TRUE(WaitState(*client_, id, "running"));
  status = Status(id);
  EXPECT_EQ(status["attempts"], 2) << status;
  const json holder = FindWorker(Workers(*client_), status["worker"].get<std::string>());
  RawPeer& runner = holder.value("name", "") == "first" ? *first : *second;
  task = Next(runner);
  ASSERT_EQ(task.value("type", ""), "task") << task;
  EXPECT_EQ(task["attempt"], 2);
  runner.SendJson(
      {{"type", "result"}, {"id", id}, {"attempt", 2}, {"ok", true}, {"output", "fine"}});
  json end = WaitEnd(*client_, id);
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["output"], "fine");
  EXPECT_EQ(end["attempts"], 2);
  EXPECT_EQ(end["errors"].size(), 1u) << end;
}

TEST_F(AttemptsTest, ResultOfAnotherAttemptIsStaleAndTheRightOneStillCounts) {
  auto w = RawWorker("w");
  const std::string id = SubmitTask(*client_, {{"skills", {"job"}}});
  json task = Next(*w);
  ASSERT_EQ(task["attempt"], 1) << task;
  w->SendJson({{"type", "result"}, {"id", id}, {"attempt", 2}, {"ok", true}, {"output", "x"}});
  json err = Next(*w);
  EXPECT_EQ(err,
            json({{"type", "error"},
                  {"code", "stale_attempt"},
                  {"message", "field 'attempt' is 2, but the current attempt of " + id + " is 1"},
                  {"id", id},
                  {"attempt", 2}}));
  EXPECT_EQ(Status(id)["state"], "running");
  w->SendJson({{"type", "result"}, {"id", id}, {"attempt", 1}, {"ok", true}, {"output", "y"}});
  EXPECT_EQ(WaitEnd(*client_, id)["output"], "y");

  // A task the worker never held: unknown_task, naming it as a field.
  w->SendJson({{"type", "result"}, {"id", "t999999"}, {"ok", true}});
  err = Next(*w);
  EXPECT_EQ(err.value("code", ""), "unknown_task") << err;
  EXPECT_EQ(err["id"], "t999999");
}

TEST_F(AttemptsTest, CancelCarriesTheAttemptAndStoppedFreesTheSlot) {
  auto w = RawWorker("w");
  const std::string a = SubmitTask(*client_, {{"skills", {"job"}}});
  ASSERT_EQ(Next(*w).value("id", ""), a);
  ASSERT_EQ(Ask(*client_, {{"type", "cancel"}, {"id", a}})["state"], "cancelled");
  EXPECT_EQ(Next(*w),
            json({{"type", "cancel"}, {"id", a}, {"attempt", 1}, {"reason", "cancelled"}}));

  // The cancelled attempt keeps the only slot: the next task waits.
  const std::string b = SubmitTask(*client_, {{"skills", {"job"}}});
  json status = Status(b);
  EXPECT_EQ(status["state"], "queued") << status;
  EXPECT_EQ(status["why"], "all 1 matching workers are full") << status;

  // Bad stopped lines are refused and free nothing.
  w->SendJson({{"type", "stopped"}, {"id", a}, {"attempt", 7}});
  json err = Next(*w);
  EXPECT_EQ(err.value("code", ""), "stale_attempt") << err;
  EXPECT_EQ(err["id"], a);
  EXPECT_EQ(err["attempt"], 7);
  w->SendJson({{"type", "stopped"}, {"id", "t999999"}});
  err = Next(*w);
  EXPECT_EQ(err.value("code", ""), "unknown_task") << err;
  EXPECT_EQ(err["id"], "t999999");
  w->SendJson({{"type", "stopped"}, {"attempt", 1}});
  EXPECT_EQ(Next(*w).value("code", ""), "bad_message");
  w->SendJson({{"type", "stopped"}, {"id", a}, {"attempt", "1"}});
  EXPECT_EQ(Next(*w).value("code", ""), "bad_message");
  w->SendJson({{"type", "result"}, {"id", a}, {"attempt", 0}, {"ok", true}});
  EXPECT_EQ(Next(*w).value("code", ""), "bad_message");
  w->SendJson({{"type", "progress"}, {"id", a}, {"attempt", -1}, {"data", 1}});
  EXPECT_EQ(Next(*w).value("code", ""), "bad_message");
  EXPECT_EQ(Status(b)["state"], "queued");

  // stopped (attempt given or not) frees it: b goes out at once.
  w->SendJson({{"type", "stopped"}, {"id", a}});
  json task = Next(*w);
  EXPECT_EQ(task.value("type", ""), "task") << task;
  EXPECT_EQ(task["id"], b);

  // A stopped for an attempt that was never cancelled is refused.
  w->SendJson({{"type", "stopped"}, {"id", b}, {"attempt", 1}});
  err = Next(*w);
  EXPECT_EQ(err.value("code", ""), "invalid_state") << err;
  EXPECT_EQ(err["id"], b);
  EXPECT_EQ(Status(b)["state"], "running");
}

TEST_F(AttemptsTest, ClosingTheConnectionConfirmsTheStop) {
  auto first = RawWorker("first");
  const std::string id =
      SubmitTask(*client_, {{"skills", {"job"}}, {"timeout", "300ms"}, {"max_attempts", 2}});
  ASSERT_EQ(Next(*first).value("type", ""), "task");
  ASSERT_EQ(Next(*first).value("reason", ""), "timed_out");
  auto second = RawWorker("second");
  EXPECT_EQ(Status(id)["state"], "queued");

  first->Close();
  json task = Next(*second);
  ASSERT_EQ(task.value("type", ""), "task") << task;
  EXPECT_EQ(task["id"], id);
  EXPECT_EQ(task["attempt"], 2);
  second->SendJson({{"type", "result"}, {"id", id}, {"attempt", 2}, {"ok", true}, {"output", 1}});
  json end = WaitEnd(*client_, id);
  EXPECT_EQ(end["state"], "succeeded") << end;
  // The timeout was the attempt's one loss; the close lost nothing more.
  EXPECT_EQ(end["errors"].size(), 1u) << end;
}

TEST_F(AttemptsTest, AnAttemptLostWithItsConnectionNamesTheWorkerById) {
  // Connections are numbered for clients and workers alike (the client of
  // SetUp holds one more): the error names the id the welcome gave.
  auto first = std::make_unique<RawPeer>();
  ASSERT_EQ(first->Connect(daemon_->address()), "");
  std::optional<json> welcome =
      first->Hello("worker", "", {{"name", "first"}, {"skills", {"job"}}, {"capacity", 1}});
  ASSERT_TRUE(welcome && welcome->value("type", "") == "welcome");
  const std::string worker = welcome->value("id", "");
  const std::string id = SubmitTask(*client_, {{"skills", {"job"}}, {"max_attempts", 2}});
  ASSERT_EQ(Next(*first).value("id", ""), id);
  first->Close();
  ASSERT_TRUE(WaitFor([&] { return Status(id)["errors"].size() == 1u; })) << Status(id);
  const json error = Status(id)["errors"][0];
  EXPECT_EQ(error.value("worker", ""), worker) << error;
  EXPECT_EQ(error.value("error", ""), "worker " + worker + " disconnected") << error;
  EXPECT_NE(daemon_->ReadStderr().find("worker " + worker + " disconnected"), std::string::npos)
      << daemon_->ReadStderr();
}

TEST_F(AttemptsTest, AWorkerWithoutConfirmsStopGetsItsSlotBackAtOnce) {
  auto w = RawWorker("old", /*confirms=*/false);
  const std::string a = SubmitTask(*client_, {{"skills", {"job"}}});
  ASSERT_EQ(Next(*w).value("id", ""), a);
  ASSERT_EQ(Ask(*client_, {{"type", "cancel"}, {"id", a}})["state"], "cancelled");
  EXPECT_EQ(Next(*w)["reason"], "cancelled");
  const std::string b = SubmitTask(*client_, {{"skills", {"job"}}});
  json task = Next(*w);
  EXPECT_EQ(task["id"], b) << task;
  // A result without `attempt` answers the current attempt, as always.
  w->SendJson({{"type", "result"}, {"id", b}, {"ok", true}, {"output", "b"}});
  EXPECT_EQ(WaitEnd(*client_, b)["output"], "b");
  // The late one for a: unknown_task (its slot was freed at the cancel).
  w->SendJson({{"type", "result"}, {"id", a}, {"ok", true}});
  json err = Next(*w);
  EXPECT_EQ(err.value("code", ""), "unknown_task") << err;
  EXPECT_EQ(err["id"], a);
}

TEST_F(AttemptsTest, ARetriedTaskWaitsForItsLastAttemptToStop) {
  auto w = RawWorker("w");
  const std::string id =
      SubmitTask(*client_, {{"skills", {"job"}}, {"timeout", "300ms"}, {"max_attempts", 1}});
  ASSERT_EQ(Next(*w).value("type", ""), "task");
  ASSERT_EQ(Next(*w).value("reason", ""), "timed_out");
  ASSERT_EQ(WaitEnd(*client_, id)["state"], "timed_out");
  ASSERT_EQ(Ask(*client_, {{"type", "retry"}, {"id", id}}).value("type", ""), "ok");
  json status = Status(id);
  EXPECT_EQ(status["state"], "queued") << status;
  EXPECT_NE(status["why"].get<std::string>().find("to confirm attempt 1 stopped"),
            std::string::npos)
      << status;
  EXPECT_EQ(status.value("why_code", ""), "attempt_stopping") << status;
  w->SendJson({{"type", "stopped"}, {"id", id}, {"attempt", 1}});
  json task = Next(*w);
  EXPECT_EQ(task.value("type", ""), "task") << task;
  EXPECT_EQ(task["attempt"], 1) << "a retry counts from 1 again";
}

// pincerd stopping with attempts still running past shutdown.drain_timeout
// tells their workers why.
TEST(AttemptsShutdownTest, CancelSaysShutdownWhenTheDrainTimesOut) {
  DaemonProcess daemon(std::string(kConfig) + "shutdown: { drain_timeout: 200ms }\n");
  ASSERT_TRUE(daemon.Start());
  auto client = ConnectClient(daemon.address());
  ASSERT_NE(client, nullptr);
  RawPeer w;
  ASSERT_EQ(w.Connect(daemon.address()), "");
  ASSERT_TRUE(w.Hello("worker", "", {{"skills", {"job"}}, {"confirms_stop", true}}));
  const std::string id = SubmitTask(*client, {{"skills", {"job"}}});
  ASSERT_EQ(AttemptsTest::Next(w).value("id", ""), id);
  daemon.Signal(SIGTERM);
  EXPECT_EQ(AttemptsTest::Next(w).value("type", ""), "drain");
  EXPECT_EQ(AttemptsTest::Next(w),
            json({{"type", "cancel"}, {"id", id}, {"attempt", 1}, {"reason", "shutdown"}}));
  EXPECT_TRUE(w.WaitClosed(kRead));
}

// The check of issue "one attempt at a time", from the command's side: a
// capacity-1 pincer-worker whose command ignores SIGTERM through
// --kill-grace. Each run takes an exclusive lock on a file for as long as
// it (or anything it started) lives; a run that finds it held records an
// overlap.
TEST_F(AttemptsTest, ARealWorkerNeverOverlapsARetryWithAnAttemptIgnoringSigterm) {
  const std::string dir = daemon_->dir();
  const std::string script =
      "trap '' TERM\n"
      "exec 9>'" +
      dir +
      "/lock'\n"
      "flock -n 9 || echo \"attempt $PINCER_ATTEMPT\" >> '" +
      dir +
      "/overlaps'\n"
      "echo \"$PINCER_ATTEMPT\" >> '" +
      dir +
      "/starts'\n"
      "if [ \"$PINCER_ATTEMPT\" = 1 ]; then sleep 60; fi\n"
      "echo '\"done\"'\n";
  std::vector<std::string> argv = {std::string(PINCER_BUILD_DIR) + "/pincer-worker",
                                   "--addr",
                                   daemon_->address(),
                                   "--name",
                                   "real",
                                   "--skill",
                                   "job",
                                   "--capacity",
                                   "1",
                                   "--kill-grace",
                                   "1",
                                   "--log-level",
                                   "debug",
                                   "--",
                                   "sh",
                                   "-c",
                                   script};
  ChildProcess worker;
  ASSERT_EQ(worker.Start(argv, dir + "/worker.out", dir + "/worker.err"), "");
  ASSERT_TRUE(WaitFor([&] { return Workers(*client_).size() == 1; }));

  const std::string id =
      SubmitTask(*client_, {{"skills", {"job"}}, {"timeout", "2s"}, {"max_attempts", 2}});
  json end = WaitEnd(*client_, id, seconds(60));
  EXPECT_EQ(end["state"], "succeeded") << end << "\n" << ReadFileOrEmpty(dir + "/worker.err");
  EXPECT_EQ(end["attempts"], 2) << end;
  EXPECT_EQ(ReadFileOrEmpty(dir + "/starts"), "1\n2\n");
  EXPECT_EQ(ReadFileOrEmpty(dir + "/overlaps"), "") << "a retry ran beside its stalled attempt";
  EXPECT_NE(ReadFileOrEmpty(dir + "/worker.err").find("attempt 1: stopped"), std::string::npos);
  worker.KillGroup();
}

}  // namespace
}  // namespace pincer::test
