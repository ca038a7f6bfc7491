// The supervisor's policy and state: which processes each pool should have,
// which it has, when to restart one, when a pool has failed. Pure: time
// comes from a Clock, processes from a Spawner, randomness from a function,
// so every rule here is driven from unit tests without sleeping or forking.
// The I/O around it (SIGCHLD, pipes, a timer) is SupervisorService.
//
// Lifecycle of one replica (a slot of a pool):
//   waiting  --spawn-->  starting  --hello-->  running
//   starting/running --exit--> waiting (restart after backoff) | done
//   running --scale down--> draining --idle--> stopping --exit--> removed
//   running --pincerctl drain--> (the process exits 0) --> starting (replaced at once)
// A process that sends no hello within start_timeout, or whose worker the
// dispatcher declares dead (missed heartbeats), is killed and replaced.
//
// A pool with a `sidecar` runs two processes per replica: the sidecar
// (started first) and the worker. They are one unit: when either exits, the
// other gets SIGTERM (SIGKILL after stop_grace), and only once both are gone
// does the replica count as exited and restart under the usual rules. The
// first exit decides whether it was a failure and is what the log reports.
//
// Threading: every method runs on the event-loop thread. Hooks are called
// synchronously from inside these methods, after the supervisor's own state
// is consistent, and may call back into it.
#pragma once

#include <sys/types.h>

#include <deque>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "config/config.h"
#include "core/outbox.h"
#include "supervisor/spawner.h"

namespace pincer {

struct SupervisorOptions {
  std::string address;  // PINCER_ADDR for the children: pincerd's bound TCP address
  std::string token;    // PINCER_TOKEN: auth.worker_token
  // Scale-down: how long a drained worker may keep running tasks before it
  // is stopped anyway, and how often to look whether it went idle.
  Duration drain_timeout{30000};
  Duration drain_poll{250};
};

struct SupervisorHooks {
  // The worker on `conn` is gone with its process: close the connection and
  // requeue its tasks now (Dispatcher::KillWorker).
  std::function<void(ConnId, const std::string& reason)> kill_worker;
  // Ask the worker on `conn` to take no new tasks (scale-down).
  std::function<void(ConnId)> drain_worker;
  // Tasks the worker on `conn` is running; 0 when it is not known.
  std::function<int(ConnId)> inflight;
  // After StopAll: the last child has been reaped.
  std::function<void()> stopped;
  // A restart of `pool` was scheduled; the pool failed or was given a fresh
  // start (for metrics). Optional.
  std::function<void(const std::string& pool)> restarted;
  std::function<void(const std::string& pool, bool failed)> pool_failed;
};

class Supervisor {
 public:
  enum class ReplicaState { kWaiting, kStarting, kRunning, kDraining, kStopping, kDone };

  struct Replica {
    int index = 0;
    ReplicaState state = ReplicaState::kWaiting;
    pid_t pid = 0;          // 0: no process
    pid_t sidecar_pid = 0;  // 0: no sidecar process
    std::string spawn_id;
    ConnId conn = 0;  // 0: no connection bound
    TimePoint started{};
    std::optional<TimePoint> due;  // the next thing to do for this replica
    TimePoint drain_until{};
    bool retire = false;     // stop for good (scale-down, removed pool, new command)
    bool kill_sent = false;  // SIGKILL already sent
    bool forced = false;     // we killed it for a fault: its exit counts as a failure
    bool drained = false;    // an operator drained its worker: replace it when it exits
    int restarts = 0;
    int failures = 0;  // backoff exponent; reset after min_uptime
    // One of the pair exited first: why, and whether it counts as a failure,
    // kept until its partner is gone too.
    std::optional<std::string> pair_exit;
    bool pair_failure = false;
    std::string last_exit;  // "pid 12 exited with exit code 3"; "" before the first exit
  };

  // `clock` and `spawner` must outlive the supervisor. `random01` returns a
  // value in [0,1) for backoff jitter.
  Supervisor(const Clock& clock, Spawner& spawner, std::function<double()> random01,
             SupervisorOptions options, SupervisorHooks hooks);

  // Creates the pools and spawns their replicas. Call once.
  void Start(const std::vector<PoolConfig>& pools);
  // A reloaded config: new pools start, removed pools drain and stop,
  // replica counts scale, a changed command/env/cwd replaces the processes,
  // and a failed pool gets a fresh start.
  void Apply(const std::vector<PoolConfig>& pools);
  // Shutdown: no more restarts; SIGTERM to every child, SIGKILL after its
  // pool's stop_grace. Returns true when no child is left (then also after
  // the `stopped` hook has been called). Idempotent.
  bool StopAll();
  bool stopping() const { return stopping_; }
  // Shutdown has begun: processes that exit now (drained workers do) are not
  // restarted, but the live ones are left to finish their tasks.
  void StopRestarts() { no_restarts_ = true; }

  // A worker hello carrying `spawn_id`: binds `conn` to that process.
  // Returns the pool's name, or nullopt when the spawn id is not ours.
  std::optional<std::string> OnHello(const std::string& spawn_id, ConnId conn);
  // `conn` closed. A process that is still alive gets start_timeout to
  // connect again before it is replaced.
  void OnDisconnect(ConnId conn);
  // The dispatcher declared the worker on `conn` dead (missed heartbeats):
  // its process is hung, so it is killed and replaced.
  void OnWorkerDead(ConnId conn);
  // A child exited (reaped).
  void OnExit(pid_t pid, const ExitStatus& status);
  // An operator drained the worker on `conn` (`pincerctl drain`): when its
  // process exits cleanly it is replaced at once, whatever the restart
  // policy, and that does not count as a restart.
  void OnDrained(ConnId conn);

  // ---- Operator verbs (`pincerctl pool ...`). Each returns "" when done,
  // or why it was refused (then nothing changed). ----
  // stop: drain and stop every replica; none runs until `start`, also
  // across reloads. start: undo stop, give a failed pool a fresh start and
  // start replicas that exited and were not restarted. restart: replace
  // every process (new ones start while the old ones drain). scale: run `n`
  // replicas instead of the config's `replicas`, until a reload changes
  // that pool's `replicas` in the file.
  std::string StopPool(const std::string& name);
  std::string StartPool(const std::string& name);
  std::string RestartPool(const std::string& name);
  std::string ScalePool(const std::string& name, int n);
  static constexpr int kMaxReplicas = 1000;  // as config validation allows

  std::optional<TimePoint> NextDeadline() const;
  void RunDue();

  // ---- Views ----
  // [{"name","state","desired","running","ready","restarts","command",
  //   "replicas":[...],"why"?,"last_exit"?}, ...]
  nlohmann::json PoolsView() const;
  // The replica whose exit was the pool's last one (-1: none yet).
  int LastExitReplica(const std::string& pool) const;
  bool HasPool(const std::string& pool) const;
  // Processes started but not connected yet, as `workers` entries in state
  // "starting" (they hold no tasks and take none until their hello).
  nlohmann::json StartingWorkersView() const;
  std::string PoolState(const std::string& pool) const;  // "" when unknown
  int FailedPools() const;
  int TotalRestarts() const;
  // The replica bound to `conn`, and its pool's name; nullptr when none.
  const Replica* FindByConn(ConnId conn, std::string* pool = nullptr) const;
  std::vector<pid_t> LivePids() const;

 private:
  struct Pool {
    PoolConfig config;
    std::vector<std::unique_ptr<Replica>> replicas;
    std::deque<TimePoint> restart_times;  // within `window`, for the crash-loop limit
    int restarts = 0;
    bool failed = false;
    bool removed = false;
    bool held = false;          // `pincerctl pool stop`: nothing runs until `pool start`
    std::optional<int> scaled;  // `pincerctl pool scale`: wins over config.replicas
    int last_exit_replica = -1;
    std::string last_exit;  // "echo/1: pid 12 exited with exit code 3"
  };

  Pool* FindPool(const std::string& name);
  void AddReplica(Pool& pool);
  // Adds or retires replicas to reach Desired(); `revive` also starts the
  // replicas that exited and were not restarted (policy, failed pool).
  void Scale(Pool& pool, bool revive = false);
  static int Desired(const Pool& pool);
  std::string Why(const Pool& pool) const;
  void Spawn(Pool& pool, Replica& r);
  void AfterExit(Pool& pool, Replica& r, bool failure, const std::string& what);
  void Retire(Pool& pool, Replica& r);
  void Terminate(Pool& pool, Replica& r);
  void Kill(Replica& r);
  void OnPairExit(Pool& pool, Replica& r, bool sidecar, const ExitStatus& status);
  void Sweep();  // drops finished replicas and pools, reports `stopped`
  bool AnyAlive() const;
  std::string Tag(const Pool& pool, const Replica& r) const;

  const Clock& clock_;
  Spawner& spawner_;
  std::function<double()> random01_;
  SupervisorOptions options_;
  SupervisorHooks hooks_;
  // A handful of pools with a handful of replicas each: plain vectors and
  // linear lookups are simpler than indexes and fast enough.
  std::vector<std::unique_ptr<Pool>> pools_;
  uint64_t next_spawn_ = 1;
  bool stopping_ = false;
  bool no_restarts_ = false;
  bool stopped_reported_ = false;
};

std::string_view ReplicaStateName(Supervisor::ReplicaState s);

}  // namespace pincer
