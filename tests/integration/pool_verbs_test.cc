// Operating pools as a supervisorctl user would, against a real pincerd
// whose pools run real pincer-worker processes: draining a replica (it is
// replaced), scaling, `pincerctl pool start|stop|restart|scale`, `pincerctl
// logs`, why a pool is short, what a removed pool leaves in /metrics, and
// the pool command warnings of `pincerd --check-config`. Waits are on
// events (WaitFor polls a condition), never sleeps.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/http.h"
#include "support/scenario.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kAdminToken[] = "admin-tok-Pp19";
constexpr char kClientToken[] = "client-tok-Pp19";

// A pool of pincer-workers with skill `name` running `cat` per task
// (restart policy on-failure, the default).
std::string WorkerPool(const std::string& name, int replicas) {
  return "  - name: " + name + "\n    command: [\"" + kWorker + "\", \"--skill\", \"" + name +
         "\", \"--\", \"cat\"]\n    replicas: " + std::to_string(replicas) +
         "\n    stop_grace: 3s\n    restart: { backoff: { initial: 100ms, max: 1s } }\n";
}

// A pool whose process says `words` on stderr and exits with `code`.
std::string DyingPool(const std::string& name, const std::string& words, int code,
                      const std::string& policy = "on-failure") {
  return "  - name: " + name + "\n    command: [\"/bin/sh\", \"-c\", \"echo " + words +
         " >&2; exit " + std::to_string(code) +
         "\"]\n    replicas: 1\n    restart: { policy: " + policy +
         ", backoff: { initial: 20ms, max: 100ms }, max_restarts: 2, window: 1m }\n";
}

class PoolVerbsTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& pools, const std::string& extra = "") {
    extra_ = extra;
    daemon_ = std::make_unique<DaemonProcess>(Config(pools));
    ASSERT_TRUE(daemon_->Start());
    client_ = ConnectClient(daemon_->address(), token_);
    ASSERT_TRUE(client_);
  }
  std::string Config(const std::string& pools) const {
    return "store: { kind: memory }\n" + extra_ + "pools:\n" + pools;
  }
  void Reload(const std::string& pools) {
    daemon_->SetConfig(Config(pools));
    const CtlResult r = Ctl({"reload"});
    ASSERT_EQ(r.exit_code, 0) << r;
  }
  CtlResult Ctl(std::vector<std::string> args) {
    if (!token_.empty()) args.insert(args.begin(), {"--token", token_});
    return RunCtl(daemon_->address(), args);
  }

  json Pool(const std::string& name) {
    json answer = Ask(*client_, {{"type", "pools"}});
    if (!answer.is_object()) return nullptr;
    for (auto& p : answer.value("pools", json::array())) {
      if (p.value("name", "") == name) return p;
    }
    return nullptr;
  }
  // The connected workers of `pool`.
  std::vector<json> PoolWorkers(const std::string& pool) {
    std::vector<json> out;
    for (auto& w : Workers(*client_)) {
      if (w.value("pool", json()) == pool && !w["id"].is_null() &&
          w.value("state", "") == "ready") {
        out.push_back(w);
      }
    }
    return out;
  }
  std::set<pid_t> Pids(const std::string& pool) {
    std::set<pid_t> pids;
    for (auto& w : PoolWorkers(pool)) pids.insert(w["pid"].get<pid_t>());
    return pids;
  }
  // `n` ready workers and the pool says it has them all, nothing more.
  bool WaitReady(const std::string& pool, int n) {
    json last;
    return WaitWhileProgressing(
        [&] {
          last = Pool(pool);
          return static_cast<int>(PoolWorkers(pool).size()) == n && last.is_object() &&
                 last["desired"] == n && last["running"] == n && last["ready"] == n &&
                 !last.contains("why");
        },
        [&] { return last.dump(); }, kStallTimeout, milliseconds(50));
  }

  std::string extra_;
  std::string token_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(PoolVerbsTest, DrainedReplicaIsReplacedAndScalingConverges) {
  StartDaemon(WorkerPool("echo", 2));
  ASSERT_TRUE(WaitReady("echo", 2));
  const auto workers = PoolWorkers("echo");
  const std::string drained_id = workers[0]["id"];
  const pid_t drained_pid = workers[0]["pid"];

  // Replicas are named POOL/N@host.
  std::set<std::string> names;
  for (auto& w : workers) names.insert(w["name"].get<std::string>());
  char host[256] = {};
  ASSERT_EQ(gethostname(host, sizeof host - 1), 0);
  EXPECT_EQ(names,
            (std::set<std::string>{std::string("echo/0@") + host, std::string("echo/1@") + host}));

  // The rolling restart of the docs: drain, the worker exits 0, and the
  // on-failure pool starts a new process in its slot.
  const CtlResult drain = Ctl({"drain", drained_id});
  ASSERT_EQ(drain.exit_code, 0) << drain;
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto pids = Pids("echo");
        return pids.size() == 2 && !pids.count(drained_pid);
      },
      seconds(30), milliseconds(50)));
  ASSERT_TRUE(WaitReady("echo", 2));
  EXPECT_EQ(Pool("echo")["restarts"], 0) << "a drain is not a crash";
  EXPECT_NE(daemon_->ReadStderr().find("after a drain; replacing it"), std::string::npos);

  // Scaling 2 -> 3 by reload gives 3, the replaced one included.
  Reload(WorkerPool("echo", 3));
  ASSERT_TRUE(WaitReady("echo", 3));
  const CtlResult pools = Ctl({"pools"});
  EXPECT_EQ(pools.exit_code, 0) << pools;
  EXPECT_TRUE(std::regex_search(pools.out, std::regex(R"(echo +running +3 +3 +3 +0)"))) << pools;
}

TEST_F(PoolVerbsTest, PoolsSaysWhyAPoolIsShort) {
  StartDaemon(DyingPool("broken", "no-such-model-file", 3) +
              DyingPool("once", "finished", 0, "never"));
  json broken;
  ASSERT_TRUE(WaitFor(
      [&] {
        broken = Pool("broken");
        return broken.value("state", "") == "failed" && broken.contains("stderr_tail");
      },
      seconds(30), milliseconds(50)))
      << broken.dump();
  EXPECT_EQ(broken["desired"], 1);
  EXPECT_EQ(broken["running"], 0);
  EXPECT_NE(broken.value("why", "").find("exited with exit code 3"), std::string::npos)
      << broken.dump();
  EXPECT_EQ(broken["stderr_tail"].back(), "no-such-model-file") << broken.dump();
  json once;
  ASSERT_TRUE(WaitFor(
      [&] {
        once = Pool("once");
        return once.value("state", "") == "stopped";
      },
      seconds(30), milliseconds(50)))
      << once.dump();
  EXPECT_NE(once.value("why", "").find("restart policy never: not restarted"), std::string::npos)
      << once.dump();

  const CtlResult table = Ctl({"pools"});
  EXPECT_EQ(table.exit_code, 0) << table;
  EXPECT_NE(table.out.find("broken: failed:"), std::string::npos) << table;
  EXPECT_NE(table.out.find("    no-such-model-file\n"), std::string::npos) << table;
  EXPECT_NE(table.out.find("once: once/0 exited: "), std::string::npos) << table;

  // `pool start` is the way to try again without a reload.
  const CtlResult start = Ctl({"pool", "start", "once"});
  EXPECT_EQ(start.exit_code, 0) << start;
  EXPECT_TRUE(WaitFor(
      [&] {
        return Pool("once")["replicas"][0].value("restarts", -1) == 0 &&
               daemon_->ReadStderr().find("once/0: had exited") != std::string::npos;
      },
      seconds(30), milliseconds(50)));
}

TEST_F(PoolVerbsTest, StopStartScaleRestartAndReload) {
  StartDaemon(WorkerPool("echo", 2));
  ASSERT_TRUE(WaitReady("echo", 2));
  const std::set<pid_t> first = Pids("echo");

  CtlResult r = Ctl({"pool", "stop", "echo"});
  ASSERT_EQ(r.exit_code, 0) << r;
  json pool;
  ASSERT_TRUE(WaitFor(
      [&] {
        pool = Pool("echo");
        return pool.value("state", "") == "stopped" && pool["running"] == 0;
      },
      seconds(30), milliseconds(50)))
      << pool.dump();
  EXPECT_EQ(pool.value("why", ""), "stopped by pincerctl pool stop");
  EXPECT_EQ(pool["desired"], 0);
  // A stopped pool cannot be restarted, only started; nothing changes.
  r = Ctl({"pool", "restart", "echo"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_NE(r.err.find("pincerctl: invalid_state: pool 'echo' is stopped"), std::string::npos) << r;
  // A reload does not start it again.
  Reload(WorkerPool("echo", 2));
  EXPECT_EQ(Pool("echo").value("state", ""), "stopped");

  r = Ctl({"pool", "start", "echo"});
  ASSERT_EQ(r.exit_code, 0) << r;
  ASSERT_TRUE(WaitReady("echo", 2));

  r = Ctl({"pool", "scale", "echo", "3"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_NE(r.out.find("echo scaled: wants 3"), std::string::npos) << r;
  ASSERT_TRUE(WaitReady("echo", 3));
  EXPECT_EQ(Pool("echo")["scaled"], 3);
  // A reload that leaves the pool's replicas as they were keeps the scale...
  Reload(WorkerPool("echo", 2));
  EXPECT_EQ(Pool("echo")["desired"], 3);
  // ... one that changes them replaces it.
  Reload(WorkerPool("echo", 1));
  ASSERT_TRUE(WaitReady("echo", 1));
  EXPECT_FALSE(Pool("echo").contains("scaled"));

  const std::set<pid_t> before = Pids("echo");
  r = Ctl({"--json", "pool", "restart", "echo"});
  ASSERT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(r.Json().value("name", ""), "echo") << r;
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto now = Pids("echo");
        return now.size() == 1 && !now.count(*before.begin());
      },
      seconds(30), milliseconds(50)));
  ASSERT_TRUE(WaitReady("echo", 1));
  for (pid_t pid : first) EXPECT_FALSE(Pids("echo").count(pid));

  // Bad input: a clear error, nothing changed.
  r = Ctl({"pool", "scale", "nope", "2"});
  EXPECT_EQ(r.exit_code, 4) << r;
  EXPECT_NE(r.err.find("pincerctl: not_found: no pool named 'nope'"), std::string::npos) << r;
  r = Ctl({"pool", "scale", "echo", "-1"});
  EXPECT_EQ(r.exit_code, 2) << r;
  r = Ctl({"pool", "scale", "echo", "1001"});
  EXPECT_EQ(r.exit_code, 2) << r;
  r = Ctl({"pool", "frobnicate", "echo"});
  EXPECT_EQ(r.exit_code, 2) << r;
  for (const json& bad :
       {json{{"type", "pool"}, {"op", "scale"}, {"pool", "echo"}},
        json{{"type", "pool"}, {"op", "explode"}, {"pool", "echo"}},
        json{{"type", "pool"}, {"op", "scale"}, {"pool", "echo"}, {"replicas", 5000}}}) {
    auto answer = client_->Request(bad, seconds(10));
    ASSERT_FALSE(answer.ok()) << bad.dump();
    EXPECT_EQ(answer.error().code, "invalid_request") << answer.error().ToString();
  }
  EXPECT_EQ(Pool("echo")["desired"], 1);
}

TEST_F(PoolVerbsTest, PoolVerbsNeedTheAdminTokenLogsDoNot) {
  token_ = kClientToken;
  StartDaemon(WorkerPool("echo", 1), std::string("auth: { client_token: ") + kClientToken +
                                         ", admin_token: " + kAdminToken + " }\n");
  ASSERT_TRUE(WaitReady("echo", 1));
  for (const std::vector<std::string>& verb : {std::vector<std::string>{"pool", "stop", "echo"},
                                               {"pool", "start", "echo"},
                                               {"pool", "restart", "echo"},
                                               {"pool", "scale", "echo", "2"}}) {
    const CtlResult r = Ctl(verb);
    EXPECT_EQ(r.exit_code, 3) << r;
    EXPECT_NE(r.err.find("unauthorized: pool needs the admin token (auth.admin_token)"),
              std::string::npos)
        << r;
  }
  EXPECT_EQ(Pool("echo")["desired"], 1);
  const CtlResult logs = Ctl({"logs", "echo"});
  EXPECT_EQ(logs.exit_code, 0) << logs;
  token_ = kAdminToken;
  const CtlResult scale = Ctl({"pool", "scale", "echo", "2"});
  EXPECT_EQ(scale.exit_code, 0) << scale;
  EXPECT_EQ(Pool("echo")["desired"], 2);
}

TEST_F(PoolVerbsTest, LogsShowAPoolsOutputTaggedOnce) {
  StartDaemon(WorkerPool("echo", 1));
  ASSERT_TRUE(WaitReady("echo", 1));
  const pid_t pid = *Pids("echo").begin();
  CtlResult logs;
  // pincer-worker says on stderr that it connected.
  ASSERT_TRUE(WaitFor(
      [&] {
        logs = Ctl({"logs", "echo"});
        return logs.out.find(" echo/0 err ") != std::string::npos &&
               logs.out.find("connected") != std::string::npos;
      },
      seconds(30), milliseconds(50)))
      << logs;
  EXPECT_EQ(logs.exit_code, 0) << logs;
  // In pincerd's log the line has pincerd's time and the tag, once each.
  std::string line;
  std::istringstream log(daemon_->ReadStderr());
  for (std::string l; std::getline(log, l);) {
    if (l.find("[echo/0 err]") != std::string::npos && l.find("connected") != std::string::npos)
      line = l;
  }
  ASSERT_FALSE(line.empty());
  const std::regex timestamp(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)");
  EXPECT_EQ(std::distance(std::sregex_iterator(line.begin(), line.end(), timestamp),
                          std::sregex_iterator()),
            1)
      << line;
  EXPECT_EQ(line.find("pincer-worker["), std::string::npos) << line;

  const CtlResult json_logs = Ctl({"--json", "logs", "echo", "-n", "1"});
  ASSERT_EQ(json_logs.exit_code, 0) << json_logs;
  ASSERT_EQ(json_logs.Lines().size(), 1u) << json_logs;
  const json one = json::parse(json_logs.Lines()[0]);
  EXPECT_EQ(one["replica"], 0);
  EXPECT_TRUE(one["seq"].is_number_integer());

  // -f: what the next process says arrives while pincerctl follows.
  TempDir dir("logs");
  ChildProcess follow;
  ASSERT_EQ(follow.Start({std::string(PINCER_BUILD_DIR) + "/pincerctl", "--addr",
                          daemon_->address(), "logs", "-f", "-n", "1", "echo"},
                         dir.Join("out"), dir.Join("err")),
            "");
  ASSERT_TRUE(WaitFor([&] { return !ReadFileOrEmpty(dir.Join("out")).empty(); }, seconds(30)));
  const std::size_t seen = ReadFileOrEmpty(dir.Join("out")).size();
  ASSERT_EQ(kill(pid, SIGKILL), 0);  // the replacement connects and says so
  EXPECT_TRUE(WaitFor(
      [&] {
        const std::string out = ReadFileOrEmpty(dir.Join("out"));
        return out.size() > seen && out.find("connected", seen) != std::string::npos;
      },
      seconds(30), milliseconds(50)))
      << ReadFileOrEmpty(dir.Join("out"));
  follow.KillGroup();

  const CtlResult unknown = Ctl({"logs", "nope"});
  EXPECT_EQ(unknown.exit_code, 4) << unknown;
  EXPECT_NE(unknown.err.find("no pool named 'nope'"), std::string::npos) << unknown;
}

TEST_F(PoolVerbsTest, RemovedFailedPoolLeavesMetrics) {
  StartDaemon(DyingPool("broken", "oops", 1) + WorkerPool("echo", 1),
              "metrics_listen: \"127.0.0.1:0\"\n");
  const std::string metrics_addr = daemon_->WaitForMetricsAddress();
  ASSERT_FALSE(metrics_addr.empty()) << daemon_->ReadStderr();
  auto metrics = [&] {
    auto r = HttpGet(metrics_addr, "/metrics");
    return r && r->status == 200 ? r->body : std::string();
  };
  ASSERT_TRUE(
      WaitFor([&] { return Sample(metrics(), "pincer_pool_failed{pool=\"broken\"}") == 1.0; },
              seconds(30), milliseconds(50)))
      << metrics();
  Reload(WorkerPool("echo", 1));
  const std::string after = metrics();
  EXPECT_EQ(after.find("pool=\"broken\""), std::string::npos) << after;
  EXPECT_NE(after.find("pool=\"echo\""), std::string::npos) << after;
}

TEST(CheckConfigTest, WarnsAboutPoolCommandsThatCannotRun) {
  TempDir dir("check");
  const std::string script = dir.Join("agent.sh");
  std::ofstream(script) << "#!/bin/sh\n";
  ASSERT_EQ(chmod(script.c_str(), 0644), 0);  // not executable
  const std::string config = dir.Join("pincer.yaml");
  std::ofstream(config) << "store: { kind: memory }\npools:\n"
                        << "  - { name: good, command: [\"" << kWorker << "\", \"--\", \"cat\"] }\n"
                        << "  - { name: missing, command: [\"no-such-agent-x19\"] }\n"
                        << "  - { name: relative, command: [\"bin/agent\"], cwd: \"" << dir.path()
                        << "\" }\n"
                        << "  - { name: plain, command: [\"" << script << "\"] }\n"
                        << "  - { name: inner, command: [\"" << kWorker
                        << "\", \"--skill\", \"x\", \"--\", \"no-such-tool-x19\", \"-v\"] }\n";
  const ProcessResult r =
      RunProcess({std::string(PINCER_BUILD_DIR) + "/pincerd", "--check-config", config});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err.find("(good)"), std::string::npos) << r.err;
  EXPECT_NE(
      r.err.find("warning: pools[1] (missing).command[0]: 'no-such-agent-x19' not found in PATH"),
      std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("warning: pools[2] (relative).command[0]: '" + dir.path() +
                       "/bin/agent' does not exist"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("warning: pools[3] (plain).command[0]: '" + script + "' is not executable"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("warning: pools[4] (inner).command[4] (pincer-worker's COMMAND): "
                       "'no-such-tool-x19' not found in PATH"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(": ok"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace pincer::test
