// Running pincerd as a service, against a real pincerd: sd_notify messages
// on a NOTIFY_SOCKET the test owns, /metrics and /healthz over real HTTP,
// live reload (a new strategy applies to the next tasks while running ones
// go on; an invalid file changes nothing), and outlier ejection.
#include <gtest/gtest.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/http.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/test_worker.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kBaseConfig[] = "store: { kind: memory }\nmetrics_listen: \"127.0.0.1:0\"\n";

// The receiving end of sd_notify: a Unix datagram socket the test binds and
// hands to pincerd as NOTIFY_SOCKET. Keeps every line it received.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    ::unlink(path.c_str());
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~NotifySocket() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  bool ok() const { return ok_; }
  const std::string& path() const { return path_; }

  // Receives until `line` has been seen `times` times in all, or `timeout`.
  bool WaitForLine(const std::string& line, milliseconds timeout, int times = 1) {
    return WaitFor(
        [&] {
          Drain();
          return Count(line) >= times;
        },
        timeout);
  }
  int Count(const std::string& line) const {
    int n = 0;
    for (const auto& l : lines_) n += l == line;
    return n;
  }
  // Index of the first received line starting with `prefix` at or after
  // `from`; -1 if none.
  int Find(const std::string& prefix, int from = 0) const {
    for (int i = from; i < static_cast<int>(lines_.size()); ++i) {
      if (lines_[i].rfind(prefix, 0) == 0) return i;
    }
    return -1;
  }
  std::string All() const {
    std::string s;
    for (const auto& l : lines_) s += l + "\n";
    return s;
  }

 private:
  void Drain() {
    pollfd p{fd_, POLLIN, 0};
    while (::poll(&p, 1, 0) == 1) {
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return;
      std::istringstream in(std::string(buf, static_cast<size_t>(n)));
      for (std::string l; std::getline(in, l);) lines_.push_back(l);
    }
  }

  std::string path_;
  int fd_ = -1;
  bool ok_ = false;
  std::vector<std::string> lines_;
};

std::optional<std::string> FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

class OpsTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& config, EnvChanges env = {}) {
    DaemonOptions options;
    options.config_yaml = kBaseConfig + config;
    options.env = std::move(env);
    daemon_ = std::make_unique<DaemonProcess>(options);
    ASSERT_TRUE(daemon_->Start());
    metrics_addr_ = daemon_->WaitForMetricsAddress();
    ASSERT_FALSE(metrics_addr_.empty()) << daemon_->ReadStderr();
  }

  std::unique_ptr<TestWorker> Worker(const std::string& name, std::vector<std::string> skills,
                                     int capacity = 1) {
    TestWorkerOptions options;
    options.name = name;
    options.skills = std::move(skills);
    options.capacity = capacity;
    auto w = TestWorker::Connect(daemon_->address(), options);
    EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().ToString());
    return w.ok() ? std::move(w).value() : nullptr;
  }

  CtlResult Ctl(const std::vector<std::string>& args) { return RunCtl(daemon_->address(), args); }

  // Submits a task needing `skill`, waits for its end; the end as JSON.
  json SubmitWait(const std::string& skill, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args{"--json", "submit", "--skill", skill, "--wait"};
    args.insert(args.end(), extra.begin(), extra.end());
    CtlResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r;
    return r.Json();
  }

  std::string Metrics() {
    auto r = HttpGet(metrics_addr_, "/metrics");
    EXPECT_TRUE(r && r->status == 200);
    return r ? r->body : "";
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::string metrics_addr_;
};

TEST_F(OpsTest, SystemdNotifyLifecycle) {
  TempDir dir("notify");
  NotifySocket notify(dir.Join("n.sock"));
  ASSERT_TRUE(notify.ok());
  // 200ms watchdog: pincerd pings every 100ms.
  StartDaemon("", {{"NOTIFY_SOCKET", notify.path()},
                   {"WATCHDOG_USEC", "200000"},
                   {"WATCHDOG_PID", std::nullopt}});

  ASSERT_TRUE(notify.WaitForLine("READY=1", seconds(5))) << notify.All();
  const int status = notify.Find("STATUS=");
  ASSERT_GE(status, 0) << notify.All();
  EXPECT_NE(notify.All().find("0 workers, 0 queued, 0 running"), std::string::npos) << notify.All();
  EXPECT_TRUE(notify.WaitForLine("WATCHDOG=1", seconds(5), 3)) << notify.All();

  // SIGHUP (systemctl reload): RELOADING=1 with MONOTONIC_USEC, then READY=1.
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(notify.WaitForLine("RELOADING=1", seconds(5))) << notify.All();
  const int reloading = notify.Find("RELOADING=1");
  EXPECT_GE(notify.Find("MONOTONIC_USEC=", reloading), 0) << notify.All();
  EXPECT_TRUE(notify.WaitForLine("READY=1", seconds(5), 2)) << notify.All();
  // pincerctl reload goes the same way.
  CtlResult reload = Ctl({"reload"});
  EXPECT_EQ(reload.exit_code, 0) << reload;
  EXPECT_TRUE(notify.WaitForLine("RELOADING=1", seconds(5), 2)) << notify.All();
  EXPECT_TRUE(notify.WaitForLine("READY=1", seconds(5), 3)) << notify.All();

  EXPECT_EQ(daemon_->Terminate(seconds(10)), 0);
  EXPECT_TRUE(notify.WaitForLine("STOPPING=1", seconds(1))) << notify.All();
}

TEST_F(OpsTest, WithoutNotifySocketNothingIsSent) {
  // Outside systemd pincerd runs as ever (and does not crash on a stray
  // WATCHDOG_USEC).
  StartDaemon("", {{"NOTIFY_SOCKET", std::nullopt}, {"WATCHDOG_USEC", "200000"}});
  EXPECT_EQ(Ctl({"stats"}).exit_code, 0);
  EXPECT_EQ(daemon_->Terminate(seconds(10)), 0);
}

TEST_F(OpsTest, MetricsAndHealthOverHttp) {
  StartDaemon("");
  auto health = HttpGet(metrics_addr_, "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  auto missing = HttpGet(metrics_addr_, "/nope");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  auto worker = Worker("echo-1", {"echo"});
  ASSERT_TRUE(worker);
  worker->StartAuto();
  for (int i = 0; i < 3; ++i) EXPECT_EQ(SubmitWait("echo").value("state", ""), "succeeded");

  const std::string text = Metrics();
  EXPECT_EQ(Sample(text, "pincer_tasks_submitted_total"), 3) << text;
  EXPECT_EQ(Sample(text, R"(pincer_tasks_ended_total{state="succeeded"})"), 3) << text;
  EXPECT_EQ(Sample(text, R"(pincer_task_duration_seconds_count{skill="echo",state="succeeded"})"),
            3)
      << text;
  // Counted per task on the loop, handed to prometheus at the scrape: every
  // bucket and the attempts too.
  EXPECT_EQ(
      Sample(text,
             R"(pincer_task_duration_seconds_bucket{skill="echo",state="succeeded",le="+Inf"})"),
      3)
      << text;
  EXPECT_EQ(
      Sample(text,
             R"(pincer_task_duration_seconds_bucket{skill="echo",state="succeeded",le="3600"})"),
      3)
      << text;
  EXPECT_EQ(Sample(text, R"(pincer_task_attempts_total{result="ok"})"), 3) << text;
  EXPECT_EQ(Sample(text, "pincer_queue_depth"), 0) << text;
  EXPECT_EQ(Sample(text, "pincer_tasks_running"), 0) << text;
  EXPECT_EQ(Sample(text, R"(pincer_workers{state="ready"})"), 1) << text;
  EXPECT_EQ(Sample(text, R"(pincer_skill_workers{skill="echo"})"), 1) << text;
  const std::string w = worker->id();
  EXPECT_EQ(Sample(text, R"(pincer_worker_inflight{name="echo-1",worker=")" + w + "\"}"), 0)
      << text;
  for (const char* name : {"pincer_worker_cpu_ratio", "pincer_worker_rss_bytes",
                           "pincer_unroutable_tasks", "pincer_worker_ejections_total"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + name), std::string::npos) << name;
  }

  // Queued work shows at the next scrape, by skill set.
  CtlResult queued = Ctl({"submit", "--skill", "nobody-has-this"});
  ASSERT_EQ(queued.exit_code, 0) << queued;
  const std::string later = Metrics();
  EXPECT_EQ(Sample(later, "pincer_queue_depth"), 1) << later;
  EXPECT_EQ(Sample(later, "pincer_tasks_submitted_total"), 4) << later;  // counted once each
  EXPECT_EQ(Sample(later, R"(pincer_task_attempts_total{result="ok"})"), 3) << later;
  EXPECT_EQ(Sample(later, "pincer_unroutable_tasks"), 1) << later;
  EXPECT_EQ(Sample(later, R"(pincer_queue_depth_by_skills{skills="nobody-has-this"})"), 1) << later;

  if (auto promtool = FindOnPath("promtool")) {
    ProcessResult check = RunProcess({*promtool, "check", "metrics"}, later);
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  } else {
    std::cerr << "promtool not found: /metrics not checked by it (apt-get install prometheus)\n";
  }
}

TEST_F(OpsTest, HealthTurnsUnavailableWhileShuttingDown) {
  StartDaemon("");
  auto worker = Worker("slow", {"slow"});
  ASSERT_TRUE(worker);
  ASSERT_EQ(Ctl({"submit", "--skill", "slow"}).exit_code, 0);
  auto task = worker->NextTask(seconds(5));
  ASSERT_TRUE(task);
  EXPECT_EQ(HttpGet(metrics_addr_, "/healthz")->status, 200);

  daemon_->Signal(SIGTERM);  // drains: the running task may finish
  EXPECT_TRUE(WaitFor([&] {
    auto r = HttpGet(metrics_addr_, "/healthz");
    return r && r->status == 503;
  }));
  worker->SendResult((*task)["id"], true, "done");
  EXPECT_EQ(daemon_->Terminate(seconds(10)), 0);
}

TEST_F(OpsTest, ReloadChangesRoutingOfNextTasksWhileRunningOnesGoOn) {
  StartDaemon("routing: { strategy: skill_match }\n");
  // skill_match sends code tasks to the specialist while it has room;
  // round_robin shares them with the generalist.
  auto spec = Worker("spec", {"code"}, 4);
  auto gen = Worker("gen", {"code", "web", "docs"}, 4);
  auto longw = Worker("long", {"long"});
  ASSERT_TRUE(spec && gen && longw);
  spec->StartAuto();
  gen->StartAuto();

  CtlResult long_submit = Ctl({"submit", "--skill", "long"});
  ASSERT_EQ(long_submit.exit_code, 0) << long_submit;
  const std::string long_id = long_submit.Lines().at(0);
  auto long_task = longw->NextTask(seconds(5));
  ASSERT_TRUE(long_task);

  for (int i = 0; i < 4; ++i) EXPECT_EQ(SubmitWait("code").value("worker", ""), spec->id());
  EXPECT_EQ(gen->tasks_received(), 0);

  daemon_->SetConfig(std::string(kBaseConfig) + "routing: { strategy: round_robin }\n");
  CtlResult reload = Ctl({"reload"});
  ASSERT_EQ(reload.exit_code, 0) << reload;

  std::map<std::string, int> by_worker;
  for (int i = 0; i < 6; ++i) ++by_worker[SubmitWait("code").value("worker", "")];
  // (round_robin's exact shares are routing_test's business; here: the
  // generalist now gets code tasks at all.)
  EXPECT_GE(by_worker[gen->id()], 2) << "round_robin now shares code tasks";
  EXPECT_EQ(by_worker[gen->id()] + by_worker[spec->id()], 6);

  // The task that ran across the reload finishes as its first attempt.
  ASSERT_TRUE(longw->SendResult(long_id, true, "finished"));
  CtlResult end = Ctl({"--json", "wait", long_id});
  ASSERT_EQ(end.exit_code, 0) << end;
  EXPECT_EQ(end.Json().value("state", ""), "succeeded");
  EXPECT_EQ(end.Json().value("attempts", 0), 1);
}

TEST_F(OpsTest, ReloadOfRestartOnlyKeysWarnsAndKeepsThemUntilTheNextStart) {
  StartDaemon("");
  daemon_->SetConfig("store: { kind: memory, fsync: off }\nmetrics_listen: \"127.0.0.1:1\"\n");
  CtlResult reload = Ctl({"reload"});
  ASSERT_EQ(reload.exit_code, 0) << reload;
  EXPECT_TRUE(WaitFor([&] {
    return daemon_->ReadStderr().find(
               "metrics_listen, data_dir, store and advertise apply at the next start") !=
           std::string::npos;
  })) << daemon_->ReadStderr();
  // Still serving as before.
  EXPECT_EQ(Ctl({"submit", "--skill", "x"}).exit_code, 0);
}

TEST_F(OpsTest, InvalidReloadIsRefusedAndChangesNothing) {
  TempDir dir("notify");
  NotifySocket notify(dir.Join("n.sock"));
  ASSERT_TRUE(notify.ok());
  StartDaemon("routing: { strategy: skill_match }\n", {{"NOTIFY_SOCKET", notify.path()}});
  ASSERT_TRUE(notify.WaitForLine("READY=1", seconds(5)));
  auto spec = Worker("spec", {"code"}, 4);
  auto gen = Worker("gen", {"code", "web"}, 4);
  ASSERT_TRUE(spec && gen);
  spec->StartAuto();
  gen->StartAuto();

  daemon_->SetConfig(std::string(kBaseConfig) + "routing: { strategy: fastest }\n");
  CtlResult reload = Ctl({"reload"});
  EXPECT_NE(reload.exit_code, 0) << reload;
  EXPECT_NE(reload.err.find("fastest"), std::string::npos) << reload;
  EXPECT_TRUE(WaitFor([&] {
    return daemon_->ReadStderr().find("reload refused") != std::string::npos;
  })) << daemon_->ReadStderr();
  // systemd still hears the reload end.
  EXPECT_TRUE(notify.WaitForLine("READY=1", seconds(5), 2)) << notify.All();

  // SIGHUP with the same bad file: refused the same way; pincerd lives on.
  daemon_->Signal(SIGHUP);
  EXPECT_TRUE(notify.WaitForLine("READY=1", seconds(5), 3)) << notify.All();
  ASSERT_TRUE(daemon_->running());

  // skill_match still rules.
  for (int i = 0; i < 4; ++i) EXPECT_EQ(SubmitWait("code").value("worker", ""), spec->id());
  EXPECT_EQ(gen->tasks_received(), 0);
}

TEST_F(OpsTest, WorkerFailingEveryTaskIsEjectedAndOthersTakeItsShare) {
  StartDaemon(
      "routing:\n"
      "  strategy: round_robin\n"
      "  outlier: { consecutive_failures: 3, base_ejection: 1m, max_ejection_percent: 50 }\n");
  auto bad = Worker("bad", {"e"});
  auto good = Worker("good", {"e"});
  ASSERT_TRUE(bad && good);
  AutoOptions failing;
  failing.handler = [](const json&) {
    TaskReply r;
    r.ok = false;
    r.error = "always broken";
    r.retryable = true;
    return r;
  };
  bad->StartAuto(failing);
  good->StartAuto();

  for (int i = 0; i < 10; ++i) {
    json end = SubmitWait("e", {"--max-attempts", "5"});
    EXPECT_EQ(end.value("state", ""), "succeeded") << end;
    EXPECT_EQ(end.value("worker", ""), good->id()) << end;
  }
  EXPECT_EQ(bad->tasks_received(), 3) << "ejected after its third failure in a row";
  EXPECT_EQ(good->tasks_received(), 10);

  CtlResult workers = Ctl({"--json", "workers"});
  ASSERT_EQ(workers.exit_code, 0) << workers;
  std::string bad_state;
  for (const json& w : workers.Json()) {
    if (w.value("name", "") == "bad") bad_state = w.value("state", "");
  }
  EXPECT_EQ(bad_state, "ejected") << workers;
  const std::string text = Metrics();
  EXPECT_EQ(Sample(text, "pincer_worker_ejections_total"), 1) << text;
  EXPECT_EQ(Sample(text, R"(pincer_workers{state="ejected"})"), 1) << text;
  EXPECT_NE(daemon_->ReadStderr().find("ejected"), std::string::npos);
}

// Issue 19, logs at info: a worker declared dead by missed heartbeats, with
// the tasks requeued; an attempt failing (one line, the error's first
// line); what a reload changed.
TEST_F(OpsTest, InfoLogsSayWhoDiedWhatFailedAndWhatAReloadChanged) {
  StartDaemon(
      "heartbeat: { interval: 500ms, misses: 2 }\ntasks: { retry_backoff: { initial: 0s } }\n");
  TestWorkerOptions silent_options;
  silent_options.name = "silent";
  silent_options.skills = {"x"};
  silent_options.auto_heartbeat = false;
  auto silent = TestWorker::Connect(daemon_->address(), silent_options);
  ASSERT_TRUE(silent.ok()) << silent.error().ToString();
  ASSERT_TRUE((*silent)->SendHeartbeat());  // alive when the task comes, silent after
  CtlResult submit = Ctl({"submit", "--skill", "x"});
  ASSERT_EQ(submit.exit_code, 0) << submit;
  const std::string id = submit.Lines().at(0);
  ASSERT_TRUE((*silent)->NextTask(seconds(10)));
  const std::string dead = "worker " + (*silent)->id() + " (silent) declared dead";
  ASSERT_TRUE(WaitFor([&] { return daemon_->ReadStderr().find(dead) != std::string::npos; }))
      << daemon_->ReadStderr();
  const std::string err = daemon_->ReadStderr();
  const std::size_t at = err.find(dead);
  const std::size_t begin = err.rfind('\n', at) + 1;  // npos + 1 = 0: the first line
  const std::string line = err.substr(begin, err.find('\n', at) - begin);
  EXPECT_NE(line.find(" info "), std::string::npos) << line;
  EXPECT_NE(line.find("requeued " + id), std::string::npos) << line;

  // A failing attempt: one line, with the first line of its error.
  auto failing = Worker("failing", {"x"});
  ASSERT_TRUE(failing);
  auto task = failing->NextTask(seconds(10));
  ASSERT_TRUE(task);
  ASSERT_TRUE(
      failing->SendResult((*task)["id"], false, "disk full\nTraceback: more\nand more", false));
  const std::string failed = "task " + id + " attempt 2 failed on worker " + failing->id() +
                             " (not retryable): disk full\n";
  EXPECT_TRUE(WaitFor([&] { return daemon_->ReadStderr().find(failed) != std::string::npos; }))
      << daemon_->ReadStderr();
  EXPECT_EQ(daemon_->ReadStderr().find("Traceback"), std::string::npos);

  daemon_->SetConfig(
      std::string(kBaseConfig) +
      "heartbeat: { interval: 500ms, misses: 2 }\n"
      "tasks: { retry_backoff: { initial: 0s }, queue_ttl: 5m }\n"
      "routing: { strategy: round_robin, rules: [ { skills: [tts], max_running: 1 } ] }\n");
  CtlResult reload = Ctl({"reload"});
  ASSERT_EQ(reload.exit_code, 0) << reload;
  for (const char* change :
       {"reload: routing.strategy: least_connections -> round_robin",
        "reload: routing.rules[0]: added (skills [tts] strategy (default) max_running 1)",
        "reload: tasks.queue_ttl: 0s -> 5m"}) {
    EXPECT_TRUE(WaitFor([&] { return daemon_->ReadStderr().find(change) != std::string::npos; }))
        << change << "\n"
        << daemon_->ReadStderr();
  }
}

// One pincerd per data_dir: a second one names the first and exits with
// its documented code (3), leaving the first serving.
TEST_F(OpsTest, ASecondPincerdOnTheSameDataDirSaysWhoUsesItAndExits) {
  DaemonOptions options;
  options.config_yaml = "store: { kind: sqlite, fsync: off }\n";
  DaemonProcess first(options);
  ASSERT_TRUE(first.Start());
  TempDir dir("second");
  const std::string config = dir.Join("second.yaml");
  {
    std::ofstream out(config);
    out << "listen: 127.0.0.1:0\nstore: { kind: sqlite, fsync: off }\ndata_dir: "
        << first.data_dir() << "\n";
  }
  ProcessResult second =
      RunProcess({std::string(PINCER_BUILD_DIR) + "/pincerd", "--config", config});
  EXPECT_EQ(second.exit_code, 3) << second.err;
  EXPECT_NE(second.err.find("another pincerd (pid " + std::to_string(first.pid()) + ") is using " +
                            first.data_dir()),
            std::string::npos)
      << second.err;
  CtlResult still = RunCtl(first.address(), {"submit", "--skill", "x"});
  EXPECT_EQ(still.exit_code, 0) << still;
  // Once the first is gone, the data dir is free again.
  first.Kill9();
  ASSERT_TRUE(first.Restart());
}

}  // namespace
}  // namespace pincer::test
