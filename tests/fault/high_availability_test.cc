// Two real pincerd on one real PostgreSQL (docs/high-availability.md):
// one leads, the other is a standby that answers hellos with not_leader
// naming the leader and takes over at once when the leader stops cleanly;
// when the leader is killed with SIGKILL the standby
// takes over with every accepted task; a leader paused (SIGSTOP) past its
// lease writes nothing once it runs again, and steps down.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/postgres_server.h"
#include "support/raw_peer.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// pincerd's exit code when it steps down (docs/operations.md).
constexpr int kSteppedDown = 4;

class HighAvailabilityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PostgresServer::Available()) GTEST_SKIP() << PostgresServer::kMissing;
    ASSERT_TRUE(server_.Start());
    const std::string yaml = "store: { kind: postgres, url: \"" + server_.url() + "\" }\n";
    a_ = std::make_unique<DaemonProcess>(yaml);
    ASSERT_TRUE(a_->Start());  // the first one takes the lease
    b_ = std::make_unique<DaemonProcess>(yaml);
    ASSERT_TRUE(b_->Start());
    ASSERT_TRUE(WaitFor([&] { return Log(*b_, "standby"); })) << b_->ReadStderr();
  }

  static bool Log(const DaemonProcess& d, const std::string& text) {
    return d.ReadStderr().find(text) != std::string::npos;
  }

  std::string Both() const { return a_->address() + "," + b_->address(); }

  // Submits `n` tasks through `addr`; id -> payload.
  std::map<std::string, std::string> SubmitSome(const std::string& addr, int n) {
    std::map<std::string, std::string> out;
    for (int i = 0; i < n; ++i) {
      const std::string payload = R"({"n":)" + std::to_string(i) + "}";
      CtlResult r = RunCtl(addr, {"submit", "--skill", "echo", "--payload", payload});
      EXPECT_EQ(r.exit_code, 0) << r;
      if (!r.Lines().empty()) out[r.Lines()[0]] = payload;
    }
    return out;
  }

  json Status(const std::string& addr, const std::string& id) {
    return RunCtl(addr, {"--json", "status", id}).Json();
  }

  PostgresServer server_;
  std::unique_ptr<DaemonProcess> a_, b_;
};

TEST_F(HighAvailabilityTest,
       TheStandbyAnswersNotLeaderNamingTheLeaderAndLeadsAtOnceAfterACleanStop) {
  for (const std::string role : {"client", "worker"}) {
    RawPeer peer;
    ASSERT_EQ(peer.Connect(b_->address()), "");
    std::optional<json> answer =
        peer.Hello(role, "", role == "worker" ? json{{"capacity", 1}} : json::object());
    ASSERT_TRUE(answer) << role;
    EXPECT_EQ((*answer)["type"], "error") << *answer;
    EXPECT_EQ((*answer)["code"], "not_leader") << *answer;
    EXPECT_EQ((*answer)["leader"], a_->address()) << *answer;
    EXPECT_TRUE(peer.WaitClosed(seconds(10))) << role;
  }
  // A client given only the standby is led to the leader.
  CtlResult r = RunCtl(b_->address(), {"submit", "--skill", "echo", "--payload", "1"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(Status(a_->address(), r.Lines().at(0)).value("state", ""), "queued");

  // A clean stop of the leader lets the lease go: B takes over at its next
  // look, with the task.
  EXPECT_EQ(a_->Terminate(), 0);
  EXPECT_TRUE(Log(*a_, "released")) << a_->ReadStderr();
  ASSERT_TRUE(WaitFor([&] { return Log(*b_, "leading: lease taken"); }, seconds(60)))
      << b_->ReadStderr();
  EXPECT_EQ(Status(b_->address(), r.Lines().at(0)).value("state", ""), "queued");
  // A standby stops cleanly too.
  DaemonProcess c("store: { kind: postgres, url: \"" + server_.url() + "\" }\n");
  ASSERT_TRUE(c.Start());
  ASSERT_TRUE(WaitFor([&] { return Log(c, "standby"); })) << c.ReadStderr();
  EXPECT_EQ(c.Terminate(), 0) << c.ReadStderr();
}

TEST_F(HighAvailabilityTest, AfterKill9OfTheLeaderTheStandbyTakesOverWithEveryAcceptedTask) {
  const std::map<std::string, std::string> accepted = SubmitSome(Both(), 20);
  ASSERT_EQ(accepted.size(), 20u);

  a_->Kill9();
  // The first submit after the kill, through both addresses (pincerctl
  // tries A and B in turn for a few seconds; a takeover may take longer on
  // a slow machine, so it is run again until B leads).
  CtlResult r;
  ASSERT_TRUE(WaitFor(
      [&] {
        r = RunCtl(Both(), {"submit", "--skill", "echo", "--payload", R"({"n":20})"});
        return r.exit_code == 0;
      },
      seconds(60)))
      << r << b_->ReadStderr();
  EXPECT_TRUE(Log(*b_, "recovered 20 tasks (20 queued)")) << b_->ReadStderr();
  std::map<std::string, std::string> all = accepted;
  all[r.Lines().at(0)] = R"({"n":20})";
  for (const auto& [id, payload] : all) {
    const json status = Status(b_->address(), id);
    EXPECT_EQ(status.value("state", ""), "queued") << id << ": " << status;
    EXPECT_EQ(status["payload"], json::parse(payload)) << id << ": " << status;
  }

  // A worker given both addresses ends every task on the new leader.
  ChildProcess worker;
  ASSERT_EQ(
      worker.Start({kWorker, "--addr", Both(), "--name", "echo", "--skill", "echo", "--", "cat"},
                   b_->dir() + "/worker.out", b_->dir() + "/worker.err",
                   {{"PINCER_ADDR", std::nullopt}, {"PINCER_TOKEN", std::nullopt}}),
      "");
  std::size_t ended = 0;
  EXPECT_TRUE(WaitWhileProgressing(
      [&] {
        ended = 0;
        for (const auto& [id, payload] : all) {
          ended += Status(b_->address(), id).value("state", "") == "succeeded";
        }
        return ended == all.size();
      },
      [&] { return ended; }));
  for (const auto& [id, payload] : all) {
    EXPECT_EQ(Status(b_->address(), id)["output"], json::parse(payload)) << id;
  }
  worker.KillGroup();
}

TEST_F(HighAvailabilityTest, ATaskRunningWhenTheLeaderDiesIsAdoptedByTheNewLeaderAndRunsOnce) {
  // Two pincer-workers with the skill, each running at most one task; each
  // start of the task's process leaves a line in `runs`, and it ends once
  // `go` exists.
  const std::string runs = a_->dir() + "/runs";
  const std::string go = a_->dir() + "/go";
  const std::string script =
      "echo started >> '" + runs + "'; while [ ! -e '" + go + "' ]; do sleep 0.05; done; cat";
  ChildProcess workers[2];
  for (int i = 0; i < 2; ++i) {
    const std::string name = "hold" + std::to_string(i);
    ASSERT_EQ(workers[i].Start({kWorker, "--addr", Both(), "--name", name, "--skill", "hold", "--",
                                "sh", "-c", script},
                               a_->dir() + "/" + name + ".out", a_->dir() + "/" + name + ".err",
                               {{"PINCER_ADDR", std::nullopt}, {"PINCER_TOKEN", std::nullopt}}),
              "");
  }
  CtlResult r = RunCtl(Both(), {"submit", "--skill", "hold", "--payload", R"("once")"});
  ASSERT_EQ(r.exit_code, 0) << r;
  const std::string id = r.Lines().at(0);
  ASSERT_TRUE(WaitFor([&] { return Status(a_->address(), id).value("state", "") == "running"; }));

  a_->Kill9();
  ASSERT_TRUE(WaitFor([&] { return Log(*b_, "leading: lease taken"); }, seconds(60)))
      << b_->ReadStderr();
  // Recovered as held for its worker (heartbeat.adopt_grace): the idle
  // worker, whichever reconnects first, is not given it; its own worker
  // comes back listing it and goes on with the same attempt.
  json status;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = Status(b_->address(), id);
        return status.value("state", "") == "running";
      },
      seconds(60)))
      << status << b_->ReadStderr();
  EXPECT_TRUE(Log(*b_, "adopted by worker")) << b_->ReadStderr();
  EXPECT_EQ(status.value("attempts", 0), 1) << status;

  std::ofstream(go).put('\n');
  ASSERT_TRUE(WaitFor(
      [&] {
        status = Status(b_->address(), id);
        return status.value("state", "") == "succeeded";
      },
      seconds(60)))
      << status;
  EXPECT_EQ(status["output"], "once") << status;
  EXPECT_EQ(status.value("attempts", 0), 1) << status;
  std::ifstream in(runs);
  int started = 0;
  for (std::string line; std::getline(in, line);) ++started;
  EXPECT_EQ(started, 1) << "the task's process was started again";
  for (ChildProcess& w : workers) w.KillGroup();
}

TEST_F(HighAvailabilityTest, APausedLeaderWritesNothingOnceItRunsAgainAndStepsDown) {
  const std::map<std::string, std::string> accepted = SubmitSome(a_->address(), 3);
  ASSERT_EQ(accepted.size(), 3u);
  const std::string victim = accepted.begin()->first;

  // A client that said hello before the pause sends a cancel while A is
  // stopped: A reads it only once it runs again.
  RawPeer client;
  ASSERT_EQ(client.Connect(a_->address()), "");
  std::optional<json> welcome = client.Hello("client");
  ASSERT_TRUE(welcome && (*welcome)["type"] == "welcome") << welcome.value_or(json());
  a_->Signal(SIGSTOP);
  ASSERT_TRUE(client.SendJson({{"type", "cancel"}, {"req", 1}, {"id", victim}}));
  // And one more that connects while A is stopped.
  ChildProcess cancel;
  ASSERT_EQ(cancel.Start({std::string(PINCER_BUILD_DIR) + "/pincerctl", "--addr", a_->address(),
                          "cancel", victim},
                         a_->dir() + "/cancel.out", a_->dir() + "/cancel.err",
                         {{"PINCER_ADDR", std::nullopt}, {"PINCER_TOKEN", std::nullopt}}),
            "");
  // B takes over once A's lease has run out.
  ASSERT_TRUE(WaitFor([&] { return Log(*b_, "leading: lease taken"); }, seconds(60)))
      << b_->ReadStderr();
  for (const auto& [id, payload] : accepted) {
    EXPECT_EQ(Status(b_->address(), id).value("state", ""), "queued") << id;
  }
  // B serves: a submit on it is accepted.
  CtlResult fresh = RunCtl(b_->address(), {"submit", "--skill", "echo", "--payload", "7"});
  ASSERT_EQ(fresh.exit_code, 0) << fresh;

  a_->Signal(SIGCONT);
  // A steps down by itself: exit code 4, never having written the cancel.
  std::optional<int> code;
  ASSERT_TRUE(WaitFor(
      [&] {
        if (!a_->running()) code = a_->Terminate();
        return code.has_value();
      },
      seconds(60)))
      << a_->ReadStderr();
  EXPECT_EQ(*code, kSteppedDown) << a_->ReadStderr();
  EXPECT_TRUE(Log(*a_, "stepping down")) << a_->ReadStderr();
  // The paused client's cancel was never answered: A closed the
  // connection without a word about it.
  for (std::optional<json> line; (line = client.ReadJson(seconds(10)));) {
    EXPECT_NE(line->value("req", 0), 1) << "the cancel was answered: " << *line;
  }
  EXPECT_TRUE(client.closed());
  std::optional<int> cancel_code = cancel.Wait(seconds(60));
  ASSERT_TRUE(cancel_code);
  EXPECT_NE(*cancel_code, 0) << "the cancel was answered as done";

  // Every task is as B says, and B says what it was: nothing of A's last
  // moments reached the database.
  for (const auto& [id, payload] : accepted) {
    EXPECT_EQ(Status(b_->address(), id).value("state", ""), "queued") << id;
  }
  std::string rows;
  ASSERT_TRUE(server_.Sql("SELECT count(*) FROM pincer_tasks WHERE state <> 'queued'", &rows));
  EXPECT_EQ(rows.substr(0, rows.find('\n')), "0");
  CtlResult stats = RunCtl(b_->address(), {"--json", "stats"});
  EXPECT_EQ(stats.Json()["queued"], 4) << stats;
}

// A leader that freezes keeps its sockets open. pincer-worker finds it
// silent (no heartbeat_ack) and moves to the new leader; the result it
// sent into the frozen socket goes again and ends the task, which is not
// run a second time.
TEST_F(HighAvailabilityTest, AWorkerLeavesAFrozenLeaderAndItsResultCountsOnce) {
  const std::string runs = a_->dir() + "/runs";
  const std::string go = a_->dir() + "/go";
  const std::string script =
      "echo started >> '" + runs + "'; while [ ! -e '" + go + "' ]; do sleep 0.05; done; cat";
  ChildProcess worker;
  ASSERT_EQ(worker.Start({kWorker, "--addr", Both(), "--name", "hold", "--skill", "hold", "--",
                          "sh", "-c", script},
                         a_->dir() + "/hold.out", a_->dir() + "/hold.err",
                         {{"PINCER_ADDR", std::nullopt}, {"PINCER_TOKEN", std::nullopt}}),
            "");
  CtlResult r = RunCtl(Both(), {"submit", "--skill", "hold", "--payload", R"("once")"});
  ASSERT_EQ(r.exit_code, 0) << r;
  const std::string id = r.Lines().at(0);
  ASSERT_TRUE(WaitFor([&] { return Status(a_->address(), id).value("state", "") == "running"; }));

  a_->Signal(SIGSTOP);
  std::ofstream(go).put('\n');  // its result goes into A's socket, unread
  ASSERT_TRUE(WaitFor([&] { return Log(*b_, "leading: lease taken"); }, seconds(60)))
      << b_->ReadStderr();
  json status;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = Status(b_->address(), id);
        return status.value("state", "") == "succeeded";
      },
      seconds(60)))
      << status << b_->ReadStderr() << ReadFileOrEmpty(a_->dir() + "/hold.err");
  EXPECT_EQ(status["output"], "once") << status;
  EXPECT_EQ(status.value("attempts", 0), 1) << status;
  std::ifstream in(runs);
  int started = 0;
  for (std::string line; std::getline(in, line);) ++started;
  EXPECT_EQ(started, 1) << "the task's process was started again";
  a_->Signal(SIGCONT);
  worker.KillGroup();
}

// A paused leader that runs again reads what came in meanwhile, a result
// say, before its renewal thread finds the lease gone. It must not hand the
// next task to the worker: a standby leads by then and runs that task too.
TEST_F(HighAvailabilityTest, APausedLeaderHandsOutNoTaskOnceItRunsAgain) {
  const std::map<std::string, std::string> accepted = SubmitSome(a_->address(), 2);
  ASSERT_EQ(accepted.size(), 2u);
  RawPeer worker;
  ASSERT_EQ(worker.Connect(a_->address()), "");
  std::optional<json> welcome = worker.Hello("worker", "", {{"skills", {"echo"}}, {"capacity", 1}});
  ASSERT_TRUE(welcome && (*welcome)["type"] == "welcome") << welcome.value_or(json());
  std::optional<json> task = worker.ReadJson(seconds(60));
  ASSERT_TRUE(task && (*task)["type"] == "task") << task.value_or(json());

  a_->Signal(SIGSTOP);
  // Its result waits in A's socket; with it done, A would give the worker
  // the other task.
  ASSERT_TRUE(worker.SendJson({{"type", "result"},
                               {"id", (*task)["id"]},
                               {"attempt", (*task)["attempt"]},
                               {"ok", true},
                               {"output", (*task)["payload"]}}));
  ASSERT_TRUE(WaitFor([&] { return Log(*b_, "leading: lease taken"); }, seconds(60)))
      << b_->ReadStderr();
  a_->Signal(SIGCONT);

  for (std::optional<json> line; (line = worker.ReadJson(seconds(10)));) {
    EXPECT_NE(line->value("type", ""), "task") << "the former leader handed out " << *line;
  }
  EXPECT_TRUE(worker.closed());
  std::optional<int> code;
  ASSERT_TRUE(WaitFor(
      [&] {
        if (!a_->running()) code = a_->Terminate();
        return code.has_value();
      },
      seconds(60)))
      << a_->ReadStderr();
  EXPECT_EQ(*code, kSteppedDown) << a_->ReadStderr();
  EXPECT_TRUE(Log(*a_, "paused or cut off")) << a_->ReadStderr();
}

}  // namespace
}  // namespace pincer::test
