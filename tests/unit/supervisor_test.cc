// The supervisor's policy with a fake clock and a fake spawner: no process
// is started and no test sleeps. Real children: tests/integration/pools_test.cc.
#include "supervisor/supervisor.h"

#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <vector>

#include "supervisor/output_log.h"

namespace pincer {
namespace {

using std::chrono::milliseconds;

class FakeSpawner : public Spawner {
 public:
  pid_t Spawn(const SpawnSpec& spec, std::string& error) override {
    if (fail_next) {
      fail_next = false;
      error = "exec: No such file or directory";
      return -1;
    }
    const pid_t pid = next_pid_++;
    specs[pid] = spec;
    live.push_back(pid);
    return pid;
  }
  void Signal(pid_t pid, int signal) override { signals.emplace_back(pid, signal); }

  int SignalsTo(pid_t pid, int signal) const {
    int n = 0;
    for (auto& [p, s] : signals) n += p == pid && s == signal;
    return n;
  }

  std::map<pid_t, SpawnSpec> specs;
  std::vector<pid_t> live;  // every pid ever spawned, in order
  std::vector<std::pair<pid_t, int>> signals;
  bool fail_next = false;

 private:
  pid_t next_pid_ = 100;
};

ExitStatus Exit(int code) { return ExitStatus{.code = code}; }
ExitStatus Killed(int sig) { return ExitStatus{.signal = sig, .signaled = true}; }

PoolConfig Pool(std::string name, int replicas, RestartPolicy policy = RestartPolicy::kOnFailure) {
  PoolConfig p;
  p.name = std::move(name);
  p.command = {"agent", "--flag"};
  p.replicas = replicas;
  p.restart.policy = policy;
  p.restart.backoff = {milliseconds(500), milliseconds(8000), 0.5};
  p.restart.min_uptime = milliseconds(30000);
  p.restart.max_restarts = 5;
  p.restart.window = milliseconds(60000);
  p.stop_grace = milliseconds(2000);
  p.start_timeout = milliseconds(3000);
  return p;
}

class SupervisorTest : public ::testing::Test {
 protected:
  SupervisorTest() { Make(); }

  void Make() {
    SupervisorOptions options;
    options.address = "127.0.0.1:7878";
    options.token = "secret";
    options.drain_timeout = milliseconds(10000);
    options.drain_poll = milliseconds(250);
    SupervisorHooks hooks;
    hooks.kill_worker = [this](ConnId c, const std::string&) { killed.push_back(c); };
    hooks.drain_worker = [this](ConnId c) { drained.push_back(c); };
    hooks.inflight = [this](ConnId c) { return inflight[c]; };
    hooks.stopped = [this] { ++stopped; };
    sup = std::make_unique<Supervisor>(
        clock, spawner, [this] { return random; }, options, hooks);
  }

  // Advances the fake clock to the next deadline (at most `limit`) and runs it.
  void RunNext(milliseconds limit = milliseconds(3'600'000)) {
    auto next = sup->NextDeadline();
    ASSERT_TRUE(next.has_value());
    const auto wait = std::chrono::duration_cast<milliseconds>(*next - clock.Now());
    ASSERT_LE(wait, limit);
    if (wait.count() > 0) clock.Advance(wait);
    sup->RunDue();
  }
  milliseconds UntilNext() {
    auto next = sup->NextDeadline();
    return next ? std::chrono::duration_cast<milliseconds>(*next - clock.Now()) : milliseconds(-1);
  }
  // Hello for the process `pid`, as the connection `conn`.
  void Hello(pid_t pid, ConnId conn) {
    ASSERT_TRUE(sup->OnHello(spawner.specs.at(pid).env.at("PINCER_SPAWN_ID"), conn).has_value());
  }
  pid_t Last() const { return spawner.live.back(); }
  nlohmann::json PoolView(const std::string& name) {
    for (auto& p : sup->PoolsView()) {
      if (p["name"] == name) return p;
    }
    return nullptr;
  }

  ManualClock clock;
  FakeSpawner spawner;
  double random = 0.0;
  std::unique_ptr<Supervisor> sup;
  std::vector<ConnId> killed, drained;
  std::map<ConnId, int> inflight;
  int stopped = 0;
};

TEST_F(SupervisorTest, StartsReplicasWithTheirEnvironment) {
  auto pool = Pool("echo", 2);
  pool.env = {{"KEY", "value"}, {"PINCER_TOKEN", "not this"}};
  pool.cwd = "/srv";
  sup->Start({pool});
  ASSERT_EQ(spawner.live.size(), 2u);
  const SpawnSpec& s0 = spawner.specs.at(spawner.live[0]);
  const SpawnSpec& s1 = spawner.specs.at(spawner.live[1]);
  EXPECT_EQ(s0.argv, pool.command);
  EXPECT_EQ(s0.cwd, "/srv");
  EXPECT_EQ(s0.env.at("KEY"), "value");
  EXPECT_EQ(s0.env.at("PINCER_ADDR"), "127.0.0.1:7878");
  EXPECT_EQ(s0.env.at("PINCER_TOKEN"), "secret");
  EXPECT_EQ(s0.env.at("PINCER_POOL"), "echo");
  EXPECT_NE(s0.env.at("PINCER_SPAWN_ID"), s1.env.at("PINCER_SPAWN_ID"));
  EXPECT_EQ(s0.log_tag, "echo/0");
  EXPECT_EQ(s1.log_tag, "echo/1");
  EXPECT_EQ(sup->PoolState("echo"), "starting");

  EXPECT_EQ(sup->OnHello(s0.env.at("PINCER_SPAWN_ID"), 7), "echo");
  EXPECT_EQ(sup->OnHello("someone-else", 8), std::nullopt);
  EXPECT_EQ(sup->PoolState("echo"), "starting");
  Hello(spawner.live[1], 9);
  EXPECT_EQ(sup->PoolState("echo"), "running");
  auto view = PoolView("echo");
  EXPECT_EQ(view["desired"], 2);
  EXPECT_EQ(view["running"], 2);
  EXPECT_EQ(view["ready"], 2);
  EXPECT_EQ(view["restarts"], 0);
  std::string pool_name;
  ASSERT_NE(sup->FindByConn(9, &pool_name), nullptr);
  EXPECT_EQ(sup->FindByConn(9)->pid, spawner.live[1]);
  EXPECT_EQ(pool_name, "echo");
}

TEST_F(SupervisorTest, ExitRequeuesAtOnceThenRestartsAfterBackoff) {
  sup->Start({Pool("echo", 1)});
  const pid_t first = Last();
  Hello(first, 5);
  clock.Advance(milliseconds(1000));
  sup->OnExit(first, Killed(SIGKILL));
  EXPECT_EQ(killed, std::vector<ConnId>{5});  // tasks requeued now, not after heartbeats
  EXPECT_EQ(spawner.live.size(), 1u);
  EXPECT_EQ(UntilNext(), milliseconds(500));
  RunNext();
  ASSERT_EQ(spawner.live.size(), 2u);
  EXPECT_NE(spawner.specs.at(Last()).env.at("PINCER_SPAWN_ID"),
            spawner.specs.at(first).env.at("PINCER_SPAWN_ID"));
  EXPECT_EQ(PoolView("echo")["restarts"], 1);
}

TEST_F(SupervisorTest, BackoffGrowsAndResetsAfterMinUptime) {
  auto pool = Pool("crashy", 1, RestartPolicy::kAlways);
  pool.restart.max_restarts = 100;
  sup->Start({pool});
  std::vector<milliseconds> delays;
  for (int i = 0; i < 6; ++i) {
    sup->OnExit(Last(), Exit(1));
    delays.push_back(UntilNext());
    RunNext();
  }
  EXPECT_EQ(delays, (std::vector<milliseconds>{milliseconds(500), milliseconds(1000),
                                               milliseconds(2000), milliseconds(4000),
                                               milliseconds(8000), milliseconds(8000)}));
  // Up for less than min_uptime: still growing.
  clock.Advance(milliseconds(29000));
  sup->OnExit(Last(), Exit(1));
  EXPECT_EQ(UntilNext(), milliseconds(8000));
  RunNext();
  // Up for min_uptime: back to the initial delay.
  clock.Advance(milliseconds(30000));
  sup->OnExit(Last(), Exit(1));
  EXPECT_EQ(UntilNext(), milliseconds(500));
}

TEST_F(SupervisorTest, JitterIsAddedToTheDelay) {
  random = 0.5;
  sup->Start({Pool("echo", 1)});
  sup->OnExit(Last(), Exit(1));
  EXPECT_EQ(UntilNext(), milliseconds(625));  // 500 + 500 * 0.5 (jitter) * 0.5 (random)
}

TEST_F(SupervisorTest, TooManyRestartsWithinTheWindowFailThePool) {
  auto bad = Pool("bad", 1, RestartPolicy::kAlways);
  bad.restart.max_restarts = 3;
  bad.restart.window = milliseconds(60000);
  sup->Start({bad, Pool("good", 1)});
  const pid_t good = spawner.live[1];
  Hello(good, 1);
  Hello(spawner.live[0], 2);
  for (int i = 0; i < 3; ++i) {
    sup->OnExit(spawner.live[i == 0 ? 0 : spawner.live.size() - 1], Exit(1));
    EXPECT_NE(sup->PoolState("bad"), "failed");
    RunNext();
  }
  const std::size_t spawned = spawner.live.size();
  sup->OnExit(Last(), Exit(1));
  EXPECT_EQ(sup->PoolState("bad"), "failed");
  EXPECT_EQ(sup->FailedPools(), 1);
  EXPECT_EQ(sup->NextDeadline(), std::nullopt);  // nothing more is scheduled
  EXPECT_EQ(spawner.live.size(), spawned);
  EXPECT_EQ(PoolView("bad")["restarts"], 3);
  // The other pool is untouched and still restarts.
  EXPECT_NE(sup->PoolState("good"), "failed");
  sup->OnExit(good, Exit(2));
  RunNext();
  EXPECT_EQ(spawner.live.size(), spawned + 1);

  // A reload gives the failed pool a fresh start.
  sup->Apply({bad, Pool("good", 1)});
  EXPECT_EQ(sup->PoolState("bad"), "starting");
  EXPECT_EQ(spawner.live.size(), spawned + 2);
}

TEST_F(SupervisorTest, RestartsOutsideTheWindowDoNotCount) {
  auto pool = Pool("slow", 1, RestartPolicy::kAlways);
  pool.restart.max_restarts = 2;
  pool.restart.window = milliseconds(10000);
  sup->Start({pool});
  for (int i = 0; i < 10; ++i) {
    clock.Advance(milliseconds(6000));  // one crash every ~6s: at most 2 per 10s
    sup->OnExit(Last(), Exit(1));
    ASSERT_NE(sup->PoolState("slow"), "failed") << i;
    RunNext();
  }
}

struct PolicyCase {
  RestartPolicy policy;
  ExitStatus exit;
  bool restarted;
};

class PolicyTest : public SupervisorTest, public ::testing::WithParamInterface<PolicyCase> {};

TEST_P(PolicyTest, RestartsPerPolicy) {
  const PolicyCase& c = GetParam();
  sup->Start({Pool("p", 1, c.policy)});
  Hello(Last(), 3);
  sup->OnExit(Last(), c.exit);
  EXPECT_EQ(killed, std::vector<ConnId>{3});  // requeued whatever the policy
  if (c.restarted) {
    RunNext();
    EXPECT_EQ(spawner.live.size(), 2u);
    EXPECT_EQ(PoolView("p")["restarts"], 1);
  } else {
    EXPECT_EQ(sup->NextDeadline(), std::nullopt);
    EXPECT_EQ(spawner.live.size(), 1u);
    EXPECT_EQ(sup->PoolState("p"), "stopped");
    EXPECT_EQ(PoolView("p")["running"], 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, PolicyTest,
                         ::testing::Values(PolicyCase{RestartPolicy::kAlways, Exit(0), true},
                                           PolicyCase{RestartPolicy::kAlways, Exit(1), true},
                                           PolicyCase{RestartPolicy::kOnFailure, Exit(0), false},
                                           PolicyCase{RestartPolicy::kOnFailure, Exit(1), true},
                                           PolicyCase{RestartPolicy::kOnFailure, Killed(SIGKILL),
                                                      true},
                                           PolicyCase{RestartPolicy::kNever, Exit(0), false},
                                           PolicyCase{RestartPolicy::kNever, Exit(1), false}));

TEST_F(SupervisorTest, NoHelloWithinStartTimeoutIsKilledAndReplaced) {
  sup->Start({Pool("echo", 1)});
  const pid_t silent = Last();
  EXPECT_EQ(UntilNext(), milliseconds(3000));
  RunNext();
  EXPECT_EQ(spawner.SignalsTo(silent, SIGKILL), 1);
  sup->OnExit(silent, Killed(SIGKILL));
  RunNext();
  EXPECT_EQ(spawner.live.size(), 2u);
}

TEST_F(SupervisorTest, ExitZeroOfAKilledHungProcessStillCountsAsFailure) {
  sup->Start({Pool("echo", 1, RestartPolicy::kOnFailure)});
  const pid_t hung = Last();
  Hello(hung, 4);
  sup->OnWorkerDead(4);  // missed heartbeats
  EXPECT_EQ(spawner.SignalsTo(hung, SIGKILL), 1);
  sup->OnExit(hung, Exit(0));
  EXPECT_TRUE(killed.empty());  // the dispatcher already dropped it
  RunNext();
  EXPECT_EQ(spawner.live.size(), 2u);
}

TEST_F(SupervisorTest, DisconnectedProcessGetsStartTimeoutToReconnect) {
  sup->Start({Pool("echo", 1)});
  const pid_t p = Last();
  Hello(p, 4);
  sup->OnDisconnect(4);
  EXPECT_EQ(UntilNext(), milliseconds(3000));
  clock.Advance(milliseconds(1000));
  Hello(p, 6);  // reconnected in time
  EXPECT_EQ(sup->NextDeadline(), std::nullopt);
  EXPECT_EQ(sup->FindByConn(6)->pid, p);
  EXPECT_TRUE(spawner.signals.empty());
}

TEST_F(SupervisorTest, SpawnFailureIsRetriedWithBackoff) {
  spawner.fail_next = true;
  sup->Start({Pool("echo", 1)});
  EXPECT_TRUE(spawner.live.empty());
  EXPECT_EQ(UntilNext(), milliseconds(500));
  RunNext();
  EXPECT_EQ(spawner.live.size(), 1u);
}

TEST_F(SupervisorTest, ScalesUpAndDownDrainingFirst) {
  sup->Start({Pool("echo", 2)});
  Hello(spawner.live[0], 10);
  Hello(spawner.live[1], 11);
  sup->Apply({Pool("echo", 4)});
  ASSERT_EQ(spawner.live.size(), 4u);
  EXPECT_EQ(spawner.specs.at(spawner.live[2]).log_tag, "echo/2");
  EXPECT_EQ(spawner.specs.at(spawner.live[3]).log_tag, "echo/3");
  Hello(spawner.live[2], 12);
  Hello(spawner.live[3], 13);
  EXPECT_EQ(PoolView("echo")["running"], 4);

  inflight[12] = 1;  // echo/2 still works on a task
  sup->Apply({Pool("echo", 1)});
  EXPECT_EQ(drained, (std::vector<ConnId>{13, 12, 11}));
  EXPECT_EQ(PoolView("echo")["desired"], 1);
  RunNext(milliseconds(0));
  // Idle ones get SIGTERM right away; the busy one waits for its task.
  EXPECT_EQ(spawner.SignalsTo(spawner.live[3], SIGTERM), 1);
  EXPECT_EQ(spawner.SignalsTo(spawner.live[1], SIGTERM), 1);
  EXPECT_EQ(spawner.SignalsTo(spawner.live[2], SIGTERM), 0);
  inflight[12] = 0;
  RunNext(milliseconds(250));
  EXPECT_EQ(spawner.SignalsTo(spawner.live[2], SIGTERM), 1);
  // One ignores SIGTERM: SIGKILL after stop_grace.
  sup->OnExit(spawner.live[3], Exit(0));
  sup->OnExit(spawner.live[2], Exit(0));
  RunNext(milliseconds(2000));
  EXPECT_EQ(spawner.SignalsTo(spawner.live[1], SIGKILL), 1);
  sup->OnExit(spawner.live[1], Killed(SIGKILL));
  // Retired replicas are not restarted, and the survivor is echo/0.
  EXPECT_EQ(sup->NextDeadline(), std::nullopt);
  EXPECT_EQ(spawner.live.size(), 4u);
  EXPECT_EQ(PoolView("echo")["running"], 1);
  EXPECT_EQ(PoolView("echo")["restarts"], 0);
  EXPECT_EQ(sup->PoolState("echo"), "running");
  EXPECT_EQ(sup->FindByConn(10)->index, 0);
}

TEST_F(SupervisorTest, RemovedPoolStopsAndDisappears) {
  sup->Start({Pool("a", 1), Pool("b", 1)});
  Hello(spawner.live[1], 20);
  sup->Apply({Pool("a", 1)});
  EXPECT_EQ(drained, std::vector<ConnId>{20});
  EXPECT_EQ(sup->PoolState("b"), "stopping");
  RunNext(milliseconds(0));
  EXPECT_EQ(spawner.SignalsTo(spawner.live[1], SIGTERM), 1);
  sup->OnExit(spawner.live[1], Exit(0));
  EXPECT_EQ(sup->PoolsView().size(), 1u);
  EXPECT_EQ(sup->PoolState("b"), "");
}

TEST_F(SupervisorTest, ChangedCommandReplacesTheProcesses) {
  sup->Start({Pool("a", 1)});
  const pid_t old = Last();
  auto changed = Pool("a", 1);
  changed.command = {"agent", "--v2"};
  sup->Apply({changed});
  ASSERT_EQ(spawner.live.size(), 2u);
  EXPECT_EQ(spawner.specs.at(Last()).argv, changed.command);
  EXPECT_EQ(spawner.SignalsTo(old, SIGTERM), 1);  // it never said hello: nothing to drain
}

TEST_F(SupervisorTest, StopAllTerminatesThenKillsAndReportsOnce) {
  sup->Start({Pool("a", 2, RestartPolicy::kAlways)});
  Hello(spawner.live[0], 1);
  sup->OnExit(spawner.live[1], Exit(1));  // waiting for its restart
  EXPECT_FALSE(sup->StopAll());
  EXPECT_EQ(spawner.SignalsTo(spawner.live[0], SIGTERM), 1);
  EXPECT_EQ(sup->PoolState("a"), "stopping");
  RunNext(milliseconds(2000));
  EXPECT_EQ(spawner.SignalsTo(spawner.live[0], SIGKILL), 1);
  EXPECT_EQ(stopped, 0);
  sup->OnExit(spawner.live[0], Killed(SIGKILL));
  EXPECT_EQ(stopped, 1);
  EXPECT_EQ(spawner.live.size(), 2u);  // the waiting restart never happened
  EXPECT_TRUE(sup->StopAll());
  EXPECT_EQ(stopped, 1);
}

TEST_F(SupervisorTest, StopAllWithNothingRunningIsDoneAtOnce) {
  EXPECT_TRUE(sup->StopAll());
  EXPECT_EQ(stopped, 0);  // the caller has its answer already
}

TEST_F(SupervisorTest, NoRestartsOnceShutdownBegan) {
  sup->Start({Pool("a", 1, RestartPolicy::kAlways)});
  sup->StopRestarts();
  sup->OnExit(Last(), Exit(0));  // a drained worker leaves
  EXPECT_EQ(sup->NextDeadline(), std::nullopt);
}

TEST_F(SupervisorTest, DrainedReplicaIsReplacedAtOnceWithoutCountingARestart) {
  sup->Start({Pool("echo", 2)});
  const pid_t a = spawner.live[0];
  Hello(a, 7);
  Hello(spawner.live[1], 8);
  sup->OnDrained(7);
  sup->OnDisconnect(7);
  sup->OnExit(a, Exit(0));  // on-failure would leave a clean exit alone
  ASSERT_EQ(UntilNext(), milliseconds(0));
  RunNext();
  ASSERT_EQ(spawner.live.size(), 3u);
  EXPECT_EQ(spawner.specs.at(Last()).env.at("PINCER_REPLICA"), "0");
  EXPECT_EQ(PoolView("echo")["restarts"], 0);
  // The next clean exit of that slot is not a drain any more.
  Hello(Last(), 9);
  sup->OnExit(Last(), Exit(0));
  EXPECT_EQ(spawner.live.size(), 3u);
  EXPECT_NE(PoolView("echo").value("why", "").find("echo/0 exited: pid"), std::string::npos)
      << PoolView("echo").dump();
}

TEST_F(SupervisorTest, DrainedReplicaThatFailsFollowsItsPolicy) {
  sup->Start({Pool("echo", 1)});
  Hello(Last(), 7);
  sup->OnDrained(7);
  sup->OnExit(Last(), Exit(2));
  EXPECT_EQ(PoolView("echo")["restarts"], 1);
  EXPECT_EQ(UntilNext(), milliseconds(500));  // the backoff
}

TEST_F(SupervisorTest, ScalingUpRevivesReplicasThatWereNotRestarted) {
  sup->Start({Pool("echo", 2)});
  Hello(spawner.live[0], 7);
  Hello(spawner.live[1], 8);
  sup->OnExit(spawner.live[0], Exit(0));  // left alone by on-failure
  EXPECT_EQ(PoolView("echo")["running"], 1);
  sup->Apply({Pool("echo", 3)});
  EXPECT_EQ(PoolView("echo")["running"], 3);
  EXPECT_EQ(spawner.live.size(), 4u);
}

TEST_F(SupervisorTest, StopStartAndScaleByTheOperator) {
  sup->Start({Pool("echo", 2)});
  Hello(spawner.live[0], 7);
  Hello(spawner.live[1], 8);
  EXPECT_EQ(sup->StopPool("echo"), "");
  EXPECT_EQ(drained, (std::vector<ConnId>{7, 8}));
  sup->OnExit(spawner.live[0], Exit(0));
  sup->OnExit(spawner.live[1], Exit(0));
  EXPECT_EQ(PoolView("echo")["state"], "stopped");
  EXPECT_EQ(PoolView("echo")["why"], "stopped by pincerctl pool stop");
  sup->Apply({Pool("echo", 2)});  // a reload does not undo a stop
  EXPECT_EQ(spawner.live.size(), 2u);
  EXPECT_NE(sup->RestartPool("echo"), "");
  EXPECT_EQ(sup->StartPool("echo"), "");
  EXPECT_EQ(spawner.live.size(), 4u);

  EXPECT_EQ(sup->ScalePool("echo", 3), "");
  EXPECT_EQ(PoolView("echo")["desired"], 3);
  sup->Apply({Pool("echo", 2)});  // the file's replicas did not change: the scale stays
  EXPECT_EQ(PoolView("echo")["desired"], 3);
  sup->Apply({Pool("echo", 1)});  // they did: the file wins
  EXPECT_EQ(PoolView("echo")["desired"], 1);
  EXPECT_FALSE(PoolView("echo").contains("scaled"));

  EXPECT_EQ(sup->ScalePool("nope", 1), "no pool named 'nope'");
  EXPECT_NE(sup->ScalePool("echo", -1), "");
  EXPECT_NE(sup->ScalePool("echo", Supervisor::kMaxReplicas + 1), "");
  EXPECT_EQ(PoolView("echo")["desired"], 1);
}

TEST_F(SupervisorTest, StartGivesAFailedPoolAFreshStart) {
  PoolConfig c = Pool("bad", 1);
  c.restart.max_restarts = 1;
  sup->Start({c});
  sup->OnExit(Last(), Exit(1));
  RunNext();
  sup->OnExit(Last(), Exit(1));
  ASSERT_EQ(PoolView("bad")["state"], "failed");
  EXPECT_NE(PoolView("bad").value("why", "").find("last: bad/0: pid"), std::string::npos);
  const std::size_t before = spawner.live.size();
  EXPECT_EQ(sup->StartPool("bad"), "");
  EXPECT_EQ(spawner.live.size(), before + 1);
  EXPECT_EQ(PoolView("bad")["state"], "starting");
}

TEST(OutputLogTest, KeepsTheLastLinesOfEachReplicaInOrder) {
  OutputLog log;
  log.Add("echo", 0, true, "first", 1);
  log.Add("echo", 1, false, "second", 2);
  log.Add("other", 0, false, "elsewhere", 3);
  log.Add("echo", 0, true, std::string(OutputLog::kMaxLineBytes + 10, 'x'), 4);
  auto lines = log.Read("echo", 0, 100);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].text, "first");
  EXPECT_EQ(lines[1].text, "second");
  EXPECT_EQ(lines[2].text.size(), OutputLog::kMaxLineBytes + 3);  // cut, with "..."
  EXPECT_EQ(log.Read("echo", lines[1].seq, 100).size(), 1u);
  EXPECT_EQ(log.Read("echo", 0, 1).back().seq, lines[2].seq);  // the newest
  EXPECT_EQ(log.StderrTail("echo", 0, 1).size(), 1u);
  EXPECT_TRUE(log.StderrTail("echo", 1, 5).empty());

  for (std::size_t i = 0; i < OutputLog::kLinesPerReplica + 5; ++i)
    log.Add("echo", 1, false, "n", 10);
  EXPECT_EQ(log.Read("echo", 0, 100000).size(), OutputLog::kLinesPerReplica + 2);
  log.KeepOnly({"other"});
  EXPECT_TRUE(log.Read("echo", 0, 100).empty());
  EXPECT_EQ(log.Read("other", 0, 100).size(), 1u);
}

// ---- sidecar: a companion process per replica, living and dying with it

PoolConfig SidecarPool(int replicas) {
  auto p = Pool("claw", replicas);
  p.sidecar = {"gateway", "run"};
  return p;
}

TEST_F(SupervisorTest, SidecarStartsBeforeItsWorkerWithTheSameEnvironment) {
  auto pool = SidecarPool(2);
  pool.env = {{"KEY", "value"}};
  sup->Start({pool});
  ASSERT_EQ(spawner.live.size(), 4u);  // sidecar, worker, sidecar, worker
  const SpawnSpec& side = spawner.specs.at(spawner.live[0]);
  const SpawnSpec& worker = spawner.specs.at(spawner.live[1]);
  EXPECT_EQ(side.argv, pool.sidecar);
  EXPECT_EQ(worker.argv, pool.command);
  EXPECT_EQ(side.log_tag, "claw/0/sidecar");
  EXPECT_EQ(worker.log_tag, "claw/0");
  EXPECT_EQ(side.env.at("PINCER_REPLICA"), "0");
  EXPECT_EQ(side.env.at("KEY"), "value");
  EXPECT_EQ(spawner.specs.at(spawner.live[2]).env.at("PINCER_REPLICA"), "1");
  Hello(spawner.live[1], 5);
  Hello(spawner.live[3], 6);
  auto view = PoolView("claw");
  EXPECT_EQ(view["running"], 2);
  EXPECT_EQ(view["ready"], 2);
  EXPECT_EQ(view["pids"], (nlohmann::json{spawner.live[1], spawner.live[3]}));
  EXPECT_EQ(view["sidecar_pids"], (nlohmann::json{spawner.live[0], spawner.live[2]}));
  EXPECT_EQ(view["sidecar"], (nlohmann::json{"gateway", "run"}));
  EXPECT_FALSE(PoolView("claw").is_null());
  EXPECT_EQ(sup->LivePids().size(), 4u);
}

TEST_F(SupervisorTest, SidecarDyingStopsItsWorkerThenThePairRestarts) {
  sup->Start({SidecarPool(1)});
  const pid_t side = spawner.live[0], worker = spawner.live[1];
  Hello(worker, 5);
  clock.Advance(milliseconds(1000));
  sup->OnExit(side, Killed(SIGKILL));
  EXPECT_EQ(spawner.SignalsTo(worker, SIGTERM), 1);
  EXPECT_EQ(spawner.live.size(), 2u);          // nothing restarts while the worker lives
  EXPECT_EQ(UntilNext(), milliseconds(2000));  // stop_grace
  sup->OnExit(worker, Exit(0));  // a clean exit on SIGTERM is still the pair's failure
  EXPECT_EQ(killed, std::vector<ConnId>{5});
  EXPECT_EQ(UntilNext(), milliseconds(500));  // restart backoff
  RunNext();
  ASSERT_EQ(spawner.live.size(), 4u);
  EXPECT_EQ(spawner.specs.at(spawner.live[2]).argv, (std::vector<std::string>{"gateway", "run"}));
  EXPECT_EQ(spawner.specs.at(spawner.live[3]).argv, SidecarPool(1).command);
  EXPECT_EQ(PoolView("claw")["restarts"], 1);
}

TEST_F(SupervisorTest, WorkerDyingStopsItsSidecarKilledAfterStopGrace) {
  sup->Start({SidecarPool(1)});
  const pid_t side = spawner.live[0], worker = spawner.live[1];
  Hello(worker, 5);
  sup->OnExit(worker, Exit(1));
  EXPECT_EQ(killed, std::vector<ConnId>{5});  // its tasks are requeued at once
  EXPECT_EQ(spawner.SignalsTo(side, SIGTERM), 1);
  EXPECT_EQ(PoolView("claw")["running"], 0);
  EXPECT_EQ(PoolView("claw")["sidecar_pids"], (nlohmann::json{side}));
  RunNext(milliseconds(2000));  // the sidecar ignores SIGTERM
  EXPECT_EQ(spawner.SignalsTo(side, SIGKILL), 1);
  EXPECT_EQ(spawner.live.size(), 2u);
  sup->OnExit(side, Killed(SIGKILL));
  EXPECT_EQ(UntilNext(), milliseconds(500));
  RunNext();
  EXPECT_EQ(spawner.live.size(), 4u);
}

TEST_F(SupervisorTest, SidecarThatCannotStartIsACrashOfTheReplica) {
  spawner.fail_next = true;
  sup->Start({SidecarPool(1)});
  EXPECT_TRUE(spawner.live.empty());  // no worker without its sidecar
  EXPECT_EQ(UntilNext(), milliseconds(500));
  RunNext();
  EXPECT_EQ(spawner.live.size(), 2u);
}

TEST_F(SupervisorTest, StoppingAPairStopsTheWorkerFirstThenItsSidecar) {
  sup->Start({SidecarPool(1)});
  const pid_t side = spawner.live[0], worker = spawner.live[1];
  Hello(worker, 5);
  EXPECT_FALSE(sup->StopAll());
  EXPECT_EQ(spawner.SignalsTo(worker, SIGTERM), 1);
  EXPECT_EQ(spawner.SignalsTo(side, SIGTERM), 0);
  sup->OnExit(worker, Exit(0));
  EXPECT_EQ(spawner.SignalsTo(side, SIGTERM), 1);
  EXPECT_EQ(stopped, 0);  // the sidecar still runs
  sup->OnExit(side, Exit(0));
  EXPECT_EQ(stopped, 1);
  EXPECT_EQ(spawner.live.size(), 2u);  // nothing restarted
}

TEST_F(SupervisorTest, HungWorkerKillsBothOfThePair) {
  sup->Start({SidecarPool(1)});
  const pid_t side = spawner.live[0], worker = spawner.live[1];
  Hello(worker, 5);
  sup->OnWorkerDead(5);
  EXPECT_EQ(spawner.SignalsTo(worker, SIGKILL), 1);
  EXPECT_EQ(spawner.SignalsTo(side, SIGKILL), 1);
  sup->OnExit(worker, Killed(SIGKILL));
  sup->OnExit(side, Killed(SIGKILL));
  EXPECT_EQ(UntilNext(), milliseconds(500));
  RunNext();
  EXPECT_EQ(spawner.live.size(), 4u);
}

}  // namespace
}  // namespace pincer
