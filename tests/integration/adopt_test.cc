// Adopting a reconnecting worker's tasks (docs/protocol.md, "Adopting a
// reconnecting worker's tasks"), against a real pincerd over real TCP:
// after a pincerd kill -9 and restart, a worker comes back listing the
// task it still runs and goes on with it as the same attempt (no one else
// was given it meanwhile); an id pincerd does not know, or a task that
// started on another worker after its worker's connection closed, is
// dropped with `cancel` (reason `not_adopted`), and its result refused; a real pincer-worker
// keeps its task through a pincerd kill -9 and restart, and the task runs
// once.
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/raw_peer.h"
#include "support/scenario.h"
#include "support/subprocess.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kRead{10000};

// The next line of `peer` of type `type`, skipping heartbeat acks and the
// like; null when none comes.
json NextOfType(RawPeer& peer, const std::string& type) {
  for (;;) {
    std::optional<json> line = peer.ReadJson(kRead);
    if (!line) return nullptr;
    if (line->value("type", "") == type) return *line;
  }
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int CountLines(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

TEST(AdoptTest, AWorkerThatReconnectsListingItsTaskGoesOnWithItAndNoOneElseIsGivenIt) {
  // heartbeat.adopt_grace is interval × misses = 60 s: the recovered task
  // waits for its worker for longer than this test runs.
  DaemonProcess daemon("heartbeat: { interval: 1s, misses: 60 }\n");
  ASSERT_TRUE(daemon.Start());
  auto client = ConnectClient(daemon.address());
  ASSERT_NE(client, nullptr);

  RawPeer first;
  ASSERT_EQ(first.Connect(daemon.address()), "");
  ASSERT_TRUE(first.Hello("worker", "", {{"skills", {"x"}}, {"tasks", json::array()}}));
  const std::string id = SubmitTask(*client, {{"skills", {"x"}}, {"payload", "p"}});
  ASSERT_FALSE(id.empty());
  json task = NextOfType(first, "task");
  ASSERT_EQ(task.value("id", ""), id) << task;
  ASSERT_EQ(task.value("attempt", 0), 1) << task;
  // pincerd dies under the running task and comes back on its store.
  daemon.Kill9();
  first.Close();
  ASSERT_TRUE(daemon.Restart());
  client = ConnectClient(daemon.address());
  ASSERT_NE(client, nullptr);

  // Held for its worker: another worker with the skill that adopts tasks
  // too (`tasks` in its hello) is not given it.
  RawPeer other;
  ASSERT_EQ(other.Connect(daemon.address()), "");
  ASSERT_TRUE(other.Hello("worker", "", {{"skills", {"x"}}, {"tasks", json::array()}}));
  json status;
  ASSERT_TRUE(WaitFor([&] {
    status = TaskStatus(*client, id);
    return status.value("why_code", "") == "awaiting_holder";
  })) << status;
  EXPECT_EQ(status.value("state", ""), "queued") << status;

  // The worker comes back listing it: it runs there again, attempt 1.
  RawPeer back;
  ASSERT_EQ(back.Connect(daemon.address()), "");
  std::optional<json> welcome =
      back.Hello("worker", "", {{"skills", {"x"}}, {"tasks", {{{"id", id}, {"attempt", 1}}}}});
  ASSERT_TRUE(welcome);
  ASSERT_EQ(welcome->value("type", ""), "welcome") << *welcome;
  ASSERT_TRUE(WaitState(*client, id, "running"));
  status = TaskStatus(*client, id);
  EXPECT_EQ(status.value("worker", ""), welcome->value("id", "")) << status;
  EXPECT_EQ(status.value("attempts", 0), 1) << status;

  ASSERT_TRUE(back.SendJson(
      {{"type", "result"}, {"id", id}, {"attempt", 1}, {"ok", true}, {"output", "done"}}));
  json end = WaitEnd(*client, id);
  EXPECT_EQ(end.value("state", ""), "succeeded") << end;
  EXPECT_EQ(end["output"], "done") << end;
  EXPECT_EQ(end.value("attempts", 0), 1) << end;
  EXPECT_FALSE(end.contains("errors") && !end["errors"].empty()) << end;
  // The other worker was never sent it: its next line is the answer to
  // its own heartbeat, not a task.
  ASSERT_TRUE(other.SendJson({{"type", "drain"}}));
  EXPECT_EQ(NextOfType(other, "drained").value("type", ""), "drained");
}

TEST(AdoptTest, AnUnknownOrAlreadyRetriedTaskIsDroppedAndItsResultRefused) {
  DaemonProcess daemon("heartbeat: { interval: 1s, misses: 60 }\n");
  ASSERT_TRUE(daemon.Start());
  auto client = ConnectClient(daemon.address());
  ASSERT_NE(client, nullptr);

  // An id this pincerd never issued.
  {
    RawPeer peer;
    ASSERT_EQ(peer.Connect(daemon.address()), "");
    std::optional<json> welcome =
        peer.Hello("worker", "", {{"skills", {"y"}}, {"tasks", {"t999999"}}});
    ASSERT_TRUE(welcome);
    ASSERT_EQ(welcome->value("type", ""), "welcome") << *welcome;
    json cancel = NextOfType(peer, "cancel");
    EXPECT_EQ(cancel.value("id", ""), "t999999") << cancel;
    EXPECT_EQ(cancel.value("reason", ""), "not_adopted") << cancel;
    // Its result is refused; its `stopped` is taken quietly.
    ASSERT_TRUE(peer.SendJson({{"type", "result"}, {"id", "t999999"}, {"ok", true}}));
    json err = NextOfType(peer, "error");
    EXPECT_EQ(err.value("code", ""), "unknown_task") << err;
    ASSERT_TRUE(peer.SendJson({{"type", "stopped"}, {"id", "t999999"}, {"attempt", 1}}));
    ASSERT_TRUE(peer.SendJson({{"type", "drain"}}));
    json next = peer.ReadJson(kRead).value_or(json());
    EXPECT_EQ(next.value("type", ""), "drained") << next;
  }

  // A task whose worker's connection closed is retried on another at once;
  // its first worker, back late, is told to drop it.
  RawPeer first;
  ASSERT_EQ(first.Connect(daemon.address()), "");
  ASSERT_TRUE(first.Hello("worker", "", {{"skills", {"y"}}, {"tasks", json::array()}}));
  const std::string id = SubmitTask(*client, {{"skills", {"y"}}, {"payload", "p"}});
  ASSERT_EQ(NextOfType(first, "task").value("id", ""), id);
  RawPeer other;
  ASSERT_EQ(other.Connect(daemon.address()), "");
  ASSERT_TRUE(other.Hello("worker", "", {{"skills", {"y"}}}));
  first.Close();
  json task = NextOfType(other, "task");
  ASSERT_EQ(task.value("id", ""), id) << task;
  EXPECT_EQ(task.value("attempt", 0), 2) << task;

  RawPeer late;
  ASSERT_EQ(late.Connect(daemon.address()), "");
  ASSERT_TRUE(
      late.Hello("worker", "", {{"skills", {"y"}}, {"tasks", {{{"id", id}, {"attempt", 1}}}}}));
  json cancel = NextOfType(late, "cancel");
  EXPECT_EQ(cancel.value("id", ""), id) << cancel;
  EXPECT_EQ(cancel.value("reason", ""), "not_adopted") << cancel;
  ASSERT_TRUE(late.SendJson({{"type", "result"}, {"id", id}, {"attempt", 1}, {"ok", true}}));
  EXPECT_EQ(NextOfType(late, "error").value("code", ""), "unknown_task");

  ASSERT_TRUE(other.SendJson(
      {{"type", "result"}, {"id", id}, {"attempt", 2}, {"ok", true}, {"output", "second"}}));
  json end = WaitEnd(*client, id);
  EXPECT_EQ(end.value("state", ""), "succeeded") << end;
  EXPECT_EQ(end["output"], "second") << end;
  EXPECT_EQ(end.value("attempts", 0), 2) << end;
}

TEST(AdoptTest, APincerWorkerKeepsItsTaskThroughAPincerdKillAndRestartAndItRunsOnce) {
  DaemonProcess daemon("heartbeat: { interval: 1s, misses: 30 }\n");
  ASSERT_TRUE(daemon.Start());
  const std::string runs = daemon.dir() + "/runs";
  const std::string go = daemon.dir() + "/go";
  // Each start of the task's process leaves a line in `runs`; it ends
  // once `go` exists.
  const std::string script =
      "echo started >> '" + runs + "'; while [ ! -e '" + go + "' ]; do sleep 0.05; done; cat";
  const std::string worker_err = daemon.dir() + "/worker.err";
  ChildProcess worker;
  ASSERT_EQ(worker.Start(
                {kWorker, "--addr", daemon.address(), "--skill", "hold", "--", "sh", "-c", script},
                daemon.dir() + "/worker.out", worker_err,
                {{"PINCER_ADDR", std::nullopt}, {"PINCER_TOKEN", std::nullopt}}),
            "");
  CtlResult r = RunCtl(daemon.address(), {"submit", "--skill", "hold", "--payload", R"("p")"});
  ASSERT_EQ(r.exit_code, 0) << r;
  const std::string id = r.Lines().at(0);
  ASSERT_TRUE(WaitFor([&] { return CountLines(runs) == 1; })) << Slurp(worker_err);

  daemon.Kill9();
  ASSERT_TRUE(daemon.Restart());  // the same port and data dir
  // The worker reconnects listing the task; the restarted pincerd adopts it.
  json status;
  ASSERT_TRUE(WaitFor(
      [&] {
        status = RunCtl(daemon.address(), {"--json", "status", id}).Json();
        return status.value("state", "") == "running";
      },
      seconds(60)))
      << status << daemon.ReadStderr() << Slurp(worker_err);
  EXPECT_NE(daemon.ReadStderr().find("adopted by worker"), std::string::npos)
      << daemon.ReadStderr();

  std::ofstream(go).put('\n');
  ASSERT_TRUE(WaitFor(
      [&] {
        status = RunCtl(daemon.address(), {"--json", "status", id}).Json();
        return status.value("state", "") == "succeeded";
      },
      seconds(60)))
      << status << Slurp(worker_err);
  EXPECT_EQ(status["output"], "p") << status;
  EXPECT_EQ(status.value("attempts", 0), 1) << status;
  EXPECT_EQ(CountLines(runs), 1) << "the task's process was started again";
  // Durable: what the store holds after a clean restart says the same.
  EXPECT_EQ(daemon.Terminate(), 0);
  ASSERT_TRUE(daemon.Restart());
  status = RunCtl(daemon.address(), {"--json", "status", id}).Json();
  EXPECT_EQ(status.value("state", ""), "succeeded") << status;
  EXPECT_EQ(status.value("attempts", 0), 1) << status;
  worker.KillGroup();
}

}  // namespace
}  // namespace pincer::test
