// The supervisor with real processes and real time: a real pincerd whose
// pools run the real pincer-worker (or a shell that exits at once). Waits
// are bounded polls (WaitFor), never sleeps. Policy details with a fake
// clock: tests/unit/supervisor_test.cc.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/scenario.h"
#include "support/temp_dir.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// A pool of pincer-workers with `skill` running `shell` (sh -c) per task.
std::string WorkerPool(const std::string& name, const std::string& skill, int replicas,
                       const std::string& shell = "cat", const std::string& restart = "") {
  return "  - name: " + name + "\n    command: [\"" + kWorker + "\", \"--skill\", \"" + skill +
         "\", \"--\", \"/bin/sh\", \"-c\", \"" + shell +
         "\"]\n    replicas: " + std::to_string(replicas) +
         "\n    stop_grace: 3s\n    restart: { backoff: { initial: 100ms, max: 1s }" + restart +
         " }\n";
}

// A pool whose process is `sh -c EXIT` and never connects.
std::string ExitPool(const std::string& name, const std::string& policy, int code) {
  return "  - name: " + name + "\n    command: [\"/bin/sh\", \"-c\", \"exit " +
         std::to_string(code) + "\"]\n    replicas: 1\n    restart: { policy: " + policy +
         ", backoff: { initial: 20ms, max: 100ms }, max_restarts: 3, window: 1m }\n";
}

json Pools(client::Client& c) {
  json answer = Ask(c, {{"type", "pools"}});
  return answer.is_object() ? answer.value("pools", json::array()) : json::array();
}

json Pool(client::Client& c, const std::string& name) {
  for (auto& p : Pools(c)) {
    if (p.value("name", "") == name) return p;
  }
  return nullptr;
}

// The managed workers of `pool` that said hello.
std::vector<json> PoolWorkers(client::Client& c, const std::string& pool) {
  std::vector<json> out;
  for (auto& w : Workers(c)) {
    if (w.value("pool", json()) == pool && w.contains("pid") && !w["id"].is_null()) {
      out.push_back(w);
    }
  }
  return out;
}

std::set<pid_t> Pids(const std::vector<json>& workers) {
  std::set<pid_t> pids;
  for (auto& w : workers) pids.insert(w["pid"].get<pid_t>());
  return pids;
}

// Gone, or a zombie nobody reaps (pincerd's orphans go to PID 1, which in
// a container may not reap): either way no longer running.
bool Gone(pid_t pid) {
  const std::string stat = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/stat");
  const auto close = stat.rfind(')');
  return close == std::string::npos || (close + 2 < stat.size() && stat[close + 2] == 'Z');
}

class SupervisorIntegrationTest : public ::testing::Test {
 protected:
  ::testing::AssertionResult Start(const std::string& pools, const std::string& extra = "") {
    daemon_ =
        std::make_unique<DaemonProcess>("store: { kind: memory }\n" + extra + "pools:\n" + pools);
    if (auto r = daemon_->Start(); !r) return r;
    client_ = ConnectClient(daemon_->address());
    if (!client_) return ::testing::AssertionFailure() << "no client";
    return ::testing::AssertionSuccess();
  }
  bool WaitReady(const std::string& pool, int n, milliseconds timeout = seconds(15)) {
    return WaitFor([&] { return static_cast<int>(PoolWorkers(*client_, pool).size()) == n; },
                   timeout, milliseconds(50));
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(SupervisorIntegrationTest, Kill9OfAWorkerHoldingATaskRequeuesAndRestarts) {
  // Heartbeats would take 15s to notice: the test must be done well before.
  ASSERT_TRUE(Start(WorkerPool("slow", "slow", 1, "sleep 1; cat"),
                    "heartbeat: { interval: 5s, misses: 3 }\n"));
  ASSERT_TRUE(WaitReady("slow", 1));
  const json first = PoolWorkers(*client_, "slow")[0];
  const pid_t pid = first["pid"];
  EXPECT_EQ(first["restarts"], 0);
  EXPECT_GE(first.value("rss_bytes", 0), 1);

  const std::string id = SubmitTask(*client_, {{"skills", {"slow"}}, {"payload", "hi"}});
  ASSERT_TRUE(WaitState(*client_, id, "running"));
  ASSERT_EQ(kill(pid, SIGKILL), 0);

  const json end = WaitEnd(*client_, id, seconds(10));
  EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
  EXPECT_EQ(end.value("attempts", 0), 2) << end.dump();
  EXPECT_EQ(end.value("output", json()), "hi") << end.dump();
  const auto now = PoolWorkers(*client_, "slow");
  ASSERT_EQ(now.size(), 1u);
  EXPECT_NE(now[0]["pid"], pid);
  EXPECT_EQ(now[0]["restarts"], 1);
  EXPECT_EQ(Pool(*client_, "slow")["restarts"], 1);
}

TEST_F(SupervisorIntegrationTest, CrashLoopingPoolFailsWhileOthersServe) {
  ASSERT_TRUE(Start(ExitPool("bad", "on-failure", 1) + WorkerPool("echo", "echo", 1)));
  ASSERT_TRUE(WaitFor([&] { return Pool(*client_, "bad").value("state", "") == "failed"; },
                      seconds(10), milliseconds(50)));
  const json bad = Pool(*client_, "bad");
  EXPECT_EQ(bad["restarts"], 3);
  EXPECT_EQ(bad["running"], 0);
  EXPECT_EQ(Stats(*client_).value("pools_failed", -1), 1);
  EXPECT_NE(daemon_->ReadStderr().find("pool bad failed"), std::string::npos);

  const CtlResult r = RunCtl(
      daemon_->address(), {"submit", "--skill", "echo", "--payload", "\"still here\"", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_NE(r.out.find("still here"), std::string::npos) << r;
  const CtlResult pools = RunCtl(daemon_->address(), {"pools"});
  EXPECT_NE(pools.out.find("failed"), std::string::npos) << pools;
}

TEST_F(SupervisorIntegrationTest, RestartPolicies) {
  ASSERT_TRUE(Start(ExitPool("always0", "always", 0) + ExitPool("always1", "always", 1) +
                    ExitPool("onfail0", "on-failure", 0) + ExitPool("onfail1", "on-failure", 1) +
                    ExitPool("never0", "never", 0) + ExitPool("never1", "never", 1)));
  // Restarted ones run into max_restarts and fail; the others stop at once.
  const std::map<std::string, std::pair<std::string, int>> expected = {
      {"always0", {"failed", 3}}, {"always1", {"failed", 3}}, {"onfail0", {"stopped", 0}},
      {"onfail1", {"failed", 3}}, {"never0", {"stopped", 0}}, {"never1", {"stopped", 0}}};
  // Restarts take as long as the machine needs to start the children:
  // wait as long as any pool's state or restart count still moves.
  json pools;
  const bool settled = WaitWhileProgressing(
      [&] {
        pools = Pools(*client_);
        for (auto& p : pools) {
          auto it = expected.find(p["name"]);
          if (it == expected.end() || p["state"] != it->second.first) return false;
        }
        return pools.size() == expected.size();
      },
      [&] { return pools.dump(); }, kStallTimeout, milliseconds(50));
  EXPECT_TRUE(settled) << pools.dump(1);
  for (auto& p : pools) EXPECT_EQ(p["restarts"], expected.at(p["name"]).second) << p.dump();
}

TEST_F(SupervisorIntegrationTest, HungWorkerIsReplaced) {
  ASSERT_TRUE(Start(WorkerPool("echo", "echo", 1), "heartbeat: { interval: 200ms, misses: 2 }\n"));
  ASSERT_TRUE(WaitReady("echo", 1));
  const pid_t hung = PoolWorkers(*client_, "echo")[0]["pid"];
  ASSERT_EQ(kill(hung, SIGSTOP), 0);  // alive, silent
  EXPECT_TRUE(WaitFor(
      [&] {
        auto w = PoolWorkers(*client_, "echo");
        return w.size() == 1 && w[0]["pid"] != hung;
      },
      seconds(10), milliseconds(50)));
  EXPECT_TRUE(WaitFor([&] { return Gone(hung); }, seconds(5)));
  const CtlResult r =
      RunCtl(daemon_->address(), {"submit", "--skill", "echo", "--payload", "\"ok\"", "--wait"});
  EXPECT_EQ(r.exit_code, 0) << r;
}

TEST_F(SupervisorIntegrationTest, SigtermWhileTasksRunFinishesThemAndStopsChildren) {
  ASSERT_TRUE(
      Start(WorkerPool("slow", "slow", 2, "sleep 1; cat"), "shutdown: { drain_timeout: 20s }\n"));
  ASSERT_TRUE(WaitReady("slow", 2));
  const std::set<pid_t> pids = Pids(PoolWorkers(*client_, "slow"));
  const std::string a = SubmitTask(*client_, {{"skills", {"slow"}}, {"payload", "a"}});
  const std::string b = SubmitTask(*client_, {{"skills", {"slow"}}, {"payload", "b"}});
  ASSERT_TRUE(WaitState(*client_, a, "running"));
  ASSERT_TRUE(WaitState(*client_, b, "running"));

  // Both waits are asked before the SIGTERM: pincerd exits as soon as the
  // last task has ended, so a wait sent after the first end could arrive
  // after it has gone.
  auto wait_a = client_->SendRequest({{"type", "wait"}, {"id", a}});
  auto wait_b = client_->SendRequest({{"type", "wait"}, {"id", b}});
  ASSERT_TRUE(wait_a.ok() && wait_b.ok());

  daemon_->Signal(SIGTERM);
  for (auto* req : {&wait_a, &wait_b}) {
    auto end = client_->AwaitReply(**req, seconds(15));
    ASSERT_TRUE(end.ok()) << end.error().ToString();
    EXPECT_EQ(end->value("state", ""), "succeeded") << end->dump();
  }
  EXPECT_EQ(daemon_->Terminate(seconds(20)), 0);
  for (pid_t pid : pids) EXPECT_TRUE(WaitFor([&] { return Gone(pid); }, seconds(5))) << pid;
}

TEST_F(SupervisorIntegrationTest, SigkillToPincerdTakesTheChildrenWithIt) {
  ASSERT_TRUE(Start(WorkerPool("echo", "echo", 2)));
  ASSERT_TRUE(WaitReady("echo", 2));
  const std::set<pid_t> pids = Pids(PoolWorkers(*client_, "echo"));
  client_.reset();
  daemon_->Kill9();
  for (pid_t pid : pids) EXPECT_TRUE(WaitFor([&] { return Gone(pid); }, seconds(5))) << pid;
}

// SPEC 7: `workers` lists managed processes that have not said hello yet
// as `starting`, with their pool and pid.
TEST_F(SupervisorIntegrationTest, AProcessNotConnectedYetIsListedAsStarting) {
  ASSERT_TRUE(
      Start("  - name: mute\n    command: [\"/bin/sleep\", \"30\"]\n"
            "    replicas: 1\n    start_timeout: 30s\n"));
  json starting;
  ASSERT_TRUE(WaitFor([&] {
    for (auto& w : Workers(*client_)) {
      if (w.value("pool", json()) == "mute") starting = w;
    }
    return starting.is_object();
  }));
  EXPECT_EQ(starting["state"], "starting") << starting.dump();
  EXPECT_TRUE(starting["id"].is_null()) << starting.dump();
  EXPECT_GT(starting["pid"].get<int>(), 0) << starting.dump();
  EXPECT_EQ(starting["inflight"], 0) << starting.dump();
  CtlResult table = RunCtl(daemon_->address(), {"workers"});
  EXPECT_EQ(table.exit_code, 0) << table;
  EXPECT_NE(table.out.find("starting"), std::string::npos) << table;
}

TEST_F(SupervisorIntegrationTest, ReloadScalesUpAndDown) {
  ASSERT_TRUE(Start(WorkerPool("echo", "echo", 2)));
  ASSERT_TRUE(WaitReady("echo", 2));
  const std::set<pid_t> before = Pids(PoolWorkers(*client_, "echo"));

  daemon_->SetConfig("store: { kind: memory }\npools:\n" + WorkerPool("echo", "echo", 4));
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(WaitReady("echo", 4));
  const std::set<pid_t> four = Pids(PoolWorkers(*client_, "echo"));
  for (pid_t pid : before) EXPECT_TRUE(four.count(pid)) << "scaling up kept the old ones";
  EXPECT_EQ(Pool(*client_, "echo")["desired"], 4);

  daemon_->SetConfig("store: { kind: memory }\npools:\n" + WorkerPool("echo", "echo", 1));
  const CtlResult reload = RunCtl(daemon_->address(), {"reload"});
  ASSERT_EQ(reload.exit_code, 0) << reload;
  ASSERT_TRUE(WaitReady("echo", 1));
  EXPECT_TRUE(WaitFor([&] { return Pool(*client_, "echo")["running"] == 1; }, seconds(10)));
  const json pool = Pool(*client_, "echo");
  EXPECT_EQ(pool["state"], "running") << pool.dump();
  EXPECT_EQ(pool["restarts"], 0) << pool.dump();
  for (pid_t pid : four) {
    if (pid != *Pids(PoolWorkers(*client_, "echo")).begin()) {
      EXPECT_TRUE(WaitFor([&] { return Gone(pid); }, seconds(5))) << pid;
    }
  }
}

}  // namespace
}  // namespace pincer::test
