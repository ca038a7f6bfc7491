#include "supervisor/supervisor.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <cstring>

#include "common/backoff.h"

namespace pincer {
namespace {

// Either process of the replica is still there (a worker or its sidecar).
bool Alive(const Supervisor::Replica& r) { return r.pid != 0 || r.sidecar_pid != 0; }

bool ShouldRestart(RestartPolicy policy, bool failure) {
  switch (policy) {
    case RestartPolicy::kAlways:
      return true;
    case RestartPolicy::kOnFailure:
      return failure;
    case RestartPolicy::kNever:
      return false;
  }
  return false;
}

std::string Ms(Duration d) { return FormatDuration(d); }

}  // namespace

std::string ExitStatus::Describe() const {
  if (signaled) {
    const char* name = strsignal(signal);
    return "signal " + std::to_string(signal) + (name ? std::string(" (") + name + ")" : "");
  }
  return "exit code " + std::to_string(code);
}

std::string_view ReplicaStateName(Supervisor::ReplicaState s) {
  switch (s) {
    case Supervisor::ReplicaState::kWaiting:
      return "waiting";
    case Supervisor::ReplicaState::kStarting:
      return "starting";
    case Supervisor::ReplicaState::kRunning:
      return "running";
    case Supervisor::ReplicaState::kDraining:
      return "draining";
    case Supervisor::ReplicaState::kStopping:
      return "stopping";
    case Supervisor::ReplicaState::kDone:
      return "done";
  }
  return "unknown";
}

Supervisor::Supervisor(const Clock& clock, Spawner& spawner, std::function<double()> random01,
                       SupervisorOptions options, SupervisorHooks hooks)
    : clock_(clock),
      spawner_(spawner),
      random01_(std::move(random01)),
      options_(std::move(options)),
      hooks_(std::move(hooks)) {}

std::string Supervisor::Tag(const Pool& pool, const Replica& r) const {
  return pool.config.name + "/" + std::to_string(r.index);
}

Supervisor::Pool* Supervisor::FindPool(const std::string& name) {
  for (auto& p : pools_) {
    if (p->config.name == name) return p.get();
  }
  return nullptr;
}

// ------------------------------------------------------------ configuration

void Supervisor::Start(const std::vector<PoolConfig>& pools) { Apply(pools); }

void Supervisor::Apply(const std::vector<PoolConfig>& configs) {
  if (stopping_) return;
  for (auto& p : pools_) {
    const bool kept = std::any_of(configs.begin(), configs.end(),
                                  [&](const PoolConfig& c) { return c.name == p->config.name; });
    if (kept || p->removed) continue;
    spdlog::info("pool {}: removed from the config; draining and stopping its processes",
                 p->config.name);
    p->removed = true;
    for (auto& r : p->replicas) Retire(*p, *r);
  }
  for (const PoolConfig& c : configs) {
    Pool* p = FindPool(c.name);
    if (!p) {
      pools_.push_back(std::make_unique<Pool>());
      p = pools_.back().get();
      p->config = c;
      spdlog::info("pool {}: starting {} replica(s) of [{}]", c.name, c.replicas,
                   fmt::join(c.command, " "));
      Scale(*p);
      continue;
    }
    const bool replace = p->removed || c.command != p->config.command ||
                         c.sidecar != p->config.sidecar || c.env != p->config.env ||
                         c.cwd != p->config.cwd;
    if (replace) {
      if (!p->removed) {
        spdlog::info("pool {}: command, sidecar, env or cwd changed; replacing its processes",
                     c.name);
      }
      for (auto& r : p->replicas) Retire(*p, *r);
      if (p->removed) {  // back in the config: what pincerctl set for the old one is gone
        p->held = false;
        p->scaled.reset();
      }
      p->removed = false;
    }
    if (p->failed) {
      // A reload is the operator's way to say "try again".
      spdlog::info("pool {}: was failed; the reload gives it a fresh start", c.name);
      p->failed = false;
      if (hooks_.pool_failed) hooks_.pool_failed(c.name, false);
      p->restart_times.clear();
      for (auto& r : p->replicas) {
        if (r->state == ReplicaState::kDone && !r->retire) {
          r->failures = 0;
          Spawn(*p, *r);
        }
      }
    }
    const bool rescaled = c.replicas != p->config.replicas;
    if (rescaled && p->scaled) {
      spdlog::info(
          "pool {}: replicas changed in the config ({} to {}); it replaces the {} set by "
          "pincerctl pool scale",
          c.name, p->config.replicas, c.replicas, *p->scaled);
      p->scaled.reset();
    } else if (rescaled && !replace) {
      spdlog::info("pool {}: scaling from {} to {} replica(s)", c.name, p->config.replicas,
                   c.replicas);
    } else if (p->scaled && *p->scaled != c.replicas) {
      spdlog::info(
          "pool {}: keeps the {} replica(s) set by pincerctl pool scale (the config says {})",
          c.name, *p->scaled, c.replicas);
    }
    p->config = c;
    Scale(*p, /*revive=*/rescaled);
  }
  Sweep();
}

int Supervisor::Desired(const Pool& pool) {
  if (pool.removed || pool.held) return 0;
  return std::max(pool.scaled.value_or(pool.config.replicas), 0);
}

void Supervisor::Scale(Pool& pool, bool revive) {
  std::vector<Replica*> active;
  for (auto& r : pool.replicas) {
    if (!r->retire) active.push_back(r.get());
  }
  const auto desired = static_cast<std::size_t>(Desired(pool));
  if (active.size() > desired) {
    // Retire what costs least to lose: processes not yet serving first,
    // then the newest slots.
    std::sort(active.begin(), active.end(), [](const Replica* a, const Replica* b) {
      const bool a_serving = a->state == ReplicaState::kRunning;
      const bool b_serving = b->state == ReplicaState::kRunning;
      if (a_serving != b_serving) return !a_serving;
      return a->index > b->index;
    });
    for (std::size_t i = 0; i < active.size() - desired; ++i) Retire(pool, *active[i]);
  }
  for (std::size_t n = active.size(); n < desired; ++n) AddReplica(pool);
  if (!revive || pool.failed || stopping_) return;
  for (auto& r : pool.replicas) {
    if (r->retire || r->state != ReplicaState::kDone) continue;
    spdlog::info("{}: had exited and was not restarted; starting it to reach {} replica(s)",
                 Tag(pool, *r), desired);
    r->failures = 0;
    Spawn(pool, *r);
  }
}

void Supervisor::AddReplica(Pool& pool) {
  // The lowest index no live slot uses, so logs read echo/0, echo/1, ...
  int index = 0;
  for (bool taken = true; taken; ++index) {
    taken = std::any_of(pool.replicas.begin(), pool.replicas.end(),
                        [&](const auto& r) { return !r->retire && r->index == index; });
    if (!taken) break;
  }
  auto r = std::make_unique<Replica>();
  r->index = index;
  Replica& ref = *r;
  pool.replicas.push_back(std::move(r));
  Spawn(pool, ref);
}

// ----------------------------------------------------------------- processes

void Supervisor::Spawn(Pool& pool, Replica& r) {
  const TimePoint now = clock_.Now();
  // Unique across restarts of pincerd too, so a stray process of an older
  // pincerd can never be taken for one of ours.
  r.spawn_id = pool.config.name + "." + std::to_string(r.index) + "." +
               std::to_string(clock_.UnixMillis()) + "." + std::to_string(next_spawn_++);
  SpawnSpec spec;
  spec.argv = pool.config.command;
  spec.env = pool.config.env;
  // pincerd's own variables win over the pool's env: they are how the
  // child finds its way back.
  spec.env["PINCER_ADDR"] = options_.address;
  spec.env["PINCER_TOKEN"] = options_.token;
  spec.env["PINCER_POOL"] = pool.config.name;
  spec.env["PINCER_REPLICA"] = std::to_string(r.index);
  spec.env["PINCER_SPAWN_ID"] = r.spawn_id;
  spec.cwd = pool.config.cwd;
  spec.log_tag = Tag(pool, r);
  spec.pool = pool.config.name;
  spec.replica = r.index;

  r.started = now;
  r.conn = 0;
  r.kill_sent = false;
  r.forced = false;
  r.pair_exit.reset();
  r.pair_failure = false;
  std::string error;
  if (!pool.config.sidecar.empty()) {
    SpawnSpec side = spec;
    side.argv = pool.config.sidecar;
    side.log_tag = Tag(pool, r) + "/sidecar";
    const pid_t sidecar = spawner_.Spawn(side, error);
    if (sidecar <= 0) {
      spdlog::error("{}: cannot start sidecar [{}]: {}", Tag(pool, r), fmt::join(side.argv, " "),
                    error);
      AfterExit(pool, r, /*failure=*/true, "sidecar could not start");
      return;
    }
    r.sidecar_pid = sidecar;
    spdlog::info("{}: started sidecar pid {}", Tag(pool, r), sidecar);
  }
  const pid_t pid = spawner_.Spawn(spec, error);
  if (pid <= 0) {
    spdlog::error("{}: cannot start [{}]: {}", Tag(pool, r), fmt::join(spec.argv, " "), error);
    r.pid = 0;
    if (r.sidecar_pid) {
      // Its partner goes too; the replica restarts once the sidecar is reaped.
      r.pair_exit = "could not start: " + error;
      r.pair_failure = true;
      r.state = ReplicaState::kStopping;
      Kill(r);
      return;
    }
    AfterExit(pool, r, /*failure=*/true, "could not start: " + error);
    return;
  }
  r.pid = pid;
  r.state = ReplicaState::kStarting;
  r.due = now + pool.config.start_timeout;
  spdlog::info("{}: started pid {} (spawn id {})", Tag(pool, r), pid, r.spawn_id);
}

void Supervisor::AfterExit(Pool& pool, Replica& r, bool failure, const std::string& what) {
  const TimePoint now = clock_.Now();
  r.pid = 0;
  r.sidecar_pid = 0;
  r.pair_exit.reset();
  r.pair_failure = false;
  r.conn = 0;
  r.kill_sent = false;
  r.forced = false;
  r.due.reset();
  r.state = ReplicaState::kDone;
  const bool drained = r.drained;
  r.drained = false;
  r.last_exit = what;
  pool.last_exit = Tag(pool, r) + ": " + what;
  pool.last_exit_replica = r.index;
  if (r.retire || stopping_ || no_restarts_ || pool.removed) {
    spdlog::info("{}: {}; stopped", Tag(pool, r), what);
    return;
  }
  if (drained && !failure && !pool.failed) {
    // A rolling restart: the operator drained it, it finished and left.
    // Its slot is filled again now; no backoff, not a crash.
    spdlog::info("{}: {} after a drain; replacing it", Tag(pool, r), what);
    r.state = ReplicaState::kWaiting;
    r.due = now;
    return;
  }
  const RestartConfig& rc = pool.config.restart;
  if (!ShouldRestart(rc.policy, failure)) {
    spdlog::log(failure ? spdlog::level::warn : spdlog::level::info,
                "{}: {}; restart policy {}: not restarted", Tag(pool, r), what,
                ConfigName(rc.policy));
    return;
  }
  if (pool.failed) {
    spdlog::warn("{}: {}; pool {} has failed: not restarted", Tag(pool, r), what, pool.config.name);
    return;
  }
  while (!pool.restart_times.empty() && pool.restart_times.front() + rc.window <= now) {
    pool.restart_times.pop_front();
  }
  if (static_cast<int>(pool.restart_times.size()) >= rc.max_restarts) {
    pool.failed = true;
    if (hooks_.pool_failed) hooks_.pool_failed(pool.config.name, true);
    spdlog::error(
        "pool {} failed: {} restart(s) within {} (max_restarts {}); last: {}: {}; "
        "it is not restarted until the config is reloaded",
        pool.config.name, pool.restart_times.size(), Ms(rc.window), rc.max_restarts, Tag(pool, r),
        what);
    return;
  }
  // A process that stayed up for min_uptime was healthy: its next crash
  // starts the backoff from the beginning again.
  if (now - r.started >= rc.min_uptime) r.failures = 0;
  const Duration delay = BackoffDelay(rc.backoff, r.failures, random01_ ? random01_() : 0.0);
  ++r.failures;
  ++r.restarts;
  ++pool.restarts;
  if (hooks_.restarted) hooks_.restarted(pool.config.name);
  pool.restart_times.push_back(now);
  r.state = ReplicaState::kWaiting;
  r.due = now + delay;
  spdlog::log(failure ? spdlog::level::warn : spdlog::level::info,
              "{}: {}; restarting in {} (restart {} of the pool)", Tag(pool, r), what, Ms(delay),
              pool.restarts);
}

void Supervisor::Retire(Pool& pool, Replica& r) {
  if (r.retire) return;
  r.retire = true;
  switch (r.state) {
    case ReplicaState::kWaiting:
    case ReplicaState::kDone:
      r.state = ReplicaState::kDone;
      r.due.reset();
      return;
    case ReplicaState::kStarting:
      Terminate(pool, r);
      return;
    case ReplicaState::kRunning:
      r.state = ReplicaState::kDraining;
      r.drain_until = clock_.Now() + options_.drain_timeout;
      r.due = clock_.Now();  // stopped at once if it holds nothing
      if (r.conn && hooks_.drain_worker) hooks_.drain_worker(r.conn);
      return;
    case ReplicaState::kDraining:
    case ReplicaState::kStopping:
      return;
  }
}

void Supervisor::Terminate(Pool& pool, Replica& r) {
  if (!Alive(r)) {
    r.state = ReplicaState::kDone;
    r.due.reset();
    return;
  }
  // The worker first: its sidecar follows when it exits (OnPairExit).
  const pid_t target = r.pid ? r.pid : r.sidecar_pid;
  spdlog::info("{}: stopping pid {} (SIGTERM, SIGKILL after {})", Tag(pool, r), target,
               Ms(pool.config.stop_grace));
  spawner_.Signal(target, SIGTERM);
  r.state = ReplicaState::kStopping;
  r.due = clock_.Now() + pool.config.stop_grace;
}

void Supervisor::Kill(Replica& r) {
  if (!Alive(r) || r.kill_sent) return;
  if (r.pid) spawner_.Signal(r.pid, SIGKILL);
  if (r.sidecar_pid) spawner_.Signal(r.sidecar_pid, SIGKILL);
  r.kill_sent = true;
  r.due.reset();
}

bool Supervisor::StopAll() {
  if (!stopping_) {
    stopping_ = true;
    spdlog::info("supervisor: stopping {} child process(es)", LivePids().size());
    for (auto& p : pools_) {
      for (auto& r : p->replicas) {
        if (Alive(*r) && r->state != ReplicaState::kStopping) {
          Terminate(*p, *r);
        } else if (!Alive(*r)) {
          r->state = ReplicaState::kDone;
          r->due.reset();
        }
      }
    }
    // Nothing to wait for: the caller learns it from the return value.
    if (!AnyAlive()) stopped_reported_ = true;
    Sweep();
  }
  return !AnyAlive();
}

// -------------------------------------------------------------------- events

std::optional<std::string> Supervisor::OnHello(const std::string& spawn_id, ConnId conn) {
  if (spawn_id.empty()) return std::nullopt;
  for (auto& p : pools_) {
    for (auto& r : p->replicas) {
      if (r->spawn_id != spawn_id || r->pid == 0) continue;
      r->conn = conn;
      if (r->state == ReplicaState::kStarting) {
        r->state = ReplicaState::kRunning;
        r->due.reset();
      }
      spdlog::info("{}: pid {} said hello as w{}", Tag(*p, *r), r->pid, conn);
      return p->config.name;
    }
  }
  return std::nullopt;
}

void Supervisor::OnDrained(ConnId conn) {
  if (conn == 0) return;
  for (auto& p : pools_) {
    for (auto& r : p->replicas) {
      if (r->conn != conn || r->retire) continue;
      r->drained = true;
      spdlog::info("{}: pid {} drained; it is replaced when it exits", Tag(*p, *r), r->pid);
      return;
    }
  }
}

// ------------------------------------------------------------ operator verbs

std::string Supervisor::StopPool(const std::string& name) {
  Pool* p = FindPool(name);
  if (!p || p->removed) return "no pool named '" + name + "'";
  if (stopping_) return "pincerd is shutting down";
  if (!p->held)
    spdlog::info("pool {}: stopped by pincerctl; draining and stopping its processes", name);
  p->held = true;
  for (auto& r : p->replicas) Retire(*p, *r);
  Sweep();
  return "";
}

std::string Supervisor::StartPool(const std::string& name) {
  Pool* p = FindPool(name);
  if (!p || p->removed) return "no pool named '" + name + "'";
  if (stopping_) return "pincerd is shutting down";
  spdlog::info("pool {}: started by pincerctl ({} replica(s))", name,
               p->scaled.value_or(p->config.replicas));
  p->held = false;
  if (p->failed) {
    p->failed = false;
    p->restart_times.clear();
    if (hooks_.pool_failed) hooks_.pool_failed(name, false);
  }
  Scale(*p, /*revive=*/true);
  Sweep();
  return "";
}

std::string Supervisor::RestartPool(const std::string& name) {
  Pool* p = FindPool(name);
  if (!p || p->removed) return "no pool named '" + name + "'";
  if (stopping_) return "pincerd is shutting down";
  if (p->held)
    return "pool '" + name + "' is stopped: start it with `pincerctl pool start " + name + "`";
  spdlog::info("pool {}: restarted by pincerctl; replacing its processes", name);
  for (auto& r : p->replicas) Retire(*p, *r);
  if (p->failed) {
    p->failed = false;
    p->restart_times.clear();
    if (hooks_.pool_failed) hooks_.pool_failed(name, false);
  }
  Scale(*p);
  Sweep();
  return "";
}

std::string Supervisor::ScalePool(const std::string& name, int n) {
  Pool* p = FindPool(name);
  if (!p || p->removed) return "no pool named '" + name + "'";
  if (stopping_) return "pincerd is shutting down";
  if (n < 0 || n > kMaxReplicas) {
    return "replicas must be between 0 and " + std::to_string(kMaxReplicas);
  }
  spdlog::info("pool {}: scaled by pincerctl from {} to {} replica(s) (the config says {})", name,
               p->scaled.value_or(p->config.replicas), n, p->config.replicas);
  p->scaled = n;
  Scale(*p, /*revive=*/true);
  Sweep();
  return "";
}

void Supervisor::OnDisconnect(ConnId conn) {
  if (conn == 0) return;
  for (auto& p : pools_) {
    for (auto& r : p->replicas) {
      if (r->conn != conn) continue;
      r->conn = 0;
      if (!Alive(*r) || stopping_) return;
      if (r->state == ReplicaState::kRunning) {
        // pincer-worker reconnects by itself; give it as long as a new one.
        r->state = ReplicaState::kStarting;
        r->due = clock_.Now() + p->config.start_timeout;
        spdlog::info("{}: pid {} disconnected; it has {} to connect again", Tag(*p, *r), r->pid,
                     Ms(p->config.start_timeout));
      } else if (r->state == ReplicaState::kDraining) {
        Terminate(*p, *r);  // nothing left to drain
      }
      return;
    }
  }
}

void Supervisor::OnWorkerDead(ConnId conn) {
  if (conn == 0) return;
  for (auto& p : pools_) {
    for (auto& r : p->replicas) {
      if (r->conn != conn) continue;
      r->conn = 0;
      if (!Alive(*r) || r->kill_sent) return;
      spdlog::warn("{}: pid {} is alive but its worker was declared dead; killing it", Tag(*p, *r),
                   r->pid);
      r->forced = true;
      r->state = ReplicaState::kStopping;
      Kill(*r);
      return;
    }
  }
}

void Supervisor::OnExit(pid_t pid, const ExitStatus& status) {
  for (auto& p : pools_) {
    for (auto& r : p->replicas) {
      if (pid == 0 || (r->pid != pid && r->sidecar_pid != pid)) continue;
      if (r->sidecar_pid != 0) {
        OnPairExit(*p, *r, r->sidecar_pid == pid, status);
        Sweep();
        return;
      }
      const ConnId conn = r->conn;
      bool failure = r->forced || !status.success();
      std::string what = "pid " + std::to_string(pid) + " exited with " + status.Describe();
      if (r->forced) what += " (killed by pincerd as hung)";
      if (r->pair_exit) {  // the sidecar went first
        failure = r->pair_failure;
        what = *r->pair_exit + "; then worker " + what;
      }
      AfterExit(*p, *r, failure, what);
      // After our own state is settled, since this calls back into pincerd:
      // the tasks of the dead process are requeued now, not after missed heartbeats.
      if (conn && hooks_.kill_worker) hooks_.kill_worker(conn, p->config.name + ": " + what);
      Sweep();
      return;
    }
  }
  spdlog::debug("supervisor: reaped unknown pid {}", pid);
}

// One process of a pair exited while the other (the sidecar, or the worker
// when `sidecar` is true and the worker still runs) may still be alive.
void Supervisor::OnPairExit(Pool& pool, Replica& r, bool sidecar, const ExitStatus& status) {
  const pid_t pid = sidecar ? r.sidecar_pid : r.pid;
  std::string what = std::string(sidecar ? "sidecar" : "worker") + " pid " + std::to_string(pid) +
                     " exited with " + status.Describe();
  if (r.forced) what += " (killed by pincerd as hung)";
  if (!r.pair_exit) {
    r.pair_exit = what;
    // A partner leaving is a failure even with exit code 0, unless pincerd
    // was stopping the replica anyway.
    const bool winding_down = r.retire || stopping_ || no_restarts_ || pool.removed;
    r.pair_failure = r.forced || !status.success() || !winding_down;
  }
  if (sidecar) {
    r.sidecar_pid = 0;
    if (r.pid == 0) {
      const std::string first = *r.pair_exit;
      const bool failure = r.pair_failure;
      AfterExit(pool, r, failure, first == what ? what : first + "; then " + what);
      return;
    }
    spdlog::warn("{}: {}; stopping its worker pid {}", Tag(pool, r), what, r.pid);
    if (r.state != ReplicaState::kStopping) {
      spawner_.Signal(r.pid, SIGTERM);
      r.state = ReplicaState::kStopping;
      r.due = clock_.Now() + pool.config.stop_grace;
    }
    return;
  }
  // The worker went first: its tasks are requeued now; the sidecar follows.
  const ConnId conn = r.conn;
  r.pid = 0;
  r.conn = 0;
  spdlog::log(r.pair_failure ? spdlog::level::warn : spdlog::level::info,
              "{}: {}; stopping its sidecar pid {}", Tag(pool, r), what, r.sidecar_pid);
  if (r.kill_sent) {
    // SIGKILL already went to both.
  } else {
    spawner_.Signal(r.sidecar_pid, SIGTERM);
    r.state = ReplicaState::kStopping;
    r.due = clock_.Now() + pool.config.stop_grace;
  }
  if (conn && hooks_.kill_worker) hooks_.kill_worker(conn, pool.config.name + ": " + what);
}

// --------------------------------------------------------------------- time

std::optional<TimePoint> Supervisor::NextDeadline() const {
  std::optional<TimePoint> next;
  for (const auto& p : pools_) {
    for (const auto& r : p->replicas) {
      if (r->due && (!next || *r->due < *next)) next = r->due;
    }
  }
  return next;
}

void Supervisor::RunDue() {
  const TimePoint now = clock_.Now();
  for (auto& p : pools_) {
    // By index: a spawn never adds replicas, but keep iteration robust.
    for (std::size_t i = 0; i < p->replicas.size(); ++i) {
      Replica& r = *p->replicas[i];
      if (!r.due || *r.due > now) continue;
      r.due.reset();
      switch (r.state) {
        case ReplicaState::kWaiting:
          if (!stopping_) Spawn(*p, r);
          break;
        case ReplicaState::kStarting:
          spdlog::warn("{}: pid {} did not say hello within {} of {}; killing it", Tag(*p, r),
                       r.pid, Ms(p->config.start_timeout),
                       r.restarts || r.conn ? "(re)connecting" : "starting");
          r.forced = true;
          r.state = ReplicaState::kStopping;
          Kill(r);
          break;
        case ReplicaState::kDraining: {
          const int busy = r.conn && hooks_.inflight ? hooks_.inflight(r.conn) : 0;
          if (busy == 0 || now >= r.drain_until) {
            Terminate(*p, r);
          } else {
            r.due = std::min(now + options_.drain_poll, r.drain_until);
          }
          break;
        }
        case ReplicaState::kStopping:
          spdlog::warn("{}: pid {} still running {} after SIGTERM; SIGKILL", Tag(*p, r),
                       r.pid ? r.pid : r.sidecar_pid, Ms(p->config.stop_grace));
          Kill(r);
          break;
        case ReplicaState::kRunning:
        case ReplicaState::kDone:
          break;
      }
    }
  }
  Sweep();
}

void Supervisor::Sweep() {
  for (auto& p : pools_) {
    std::erase_if(p->replicas, [](const std::unique_ptr<Replica>& r) {
      return r->retire && r->state == ReplicaState::kDone && !Alive(*r);
    });
  }
  std::erase_if(pools_,
                [](const std::unique_ptr<Pool>& p) { return p->removed && p->replicas.empty(); });
  if (stopping_ && !stopped_reported_ && !AnyAlive()) {
    stopped_reported_ = true;
    spdlog::info("supervisor: every child process has exited");
    if (hooks_.stopped) hooks_.stopped();
  }
}

bool Supervisor::AnyAlive() const {
  for (const auto& p : pools_) {
    for (const auto& r : p->replicas) {
      if (Alive(*r)) return true;
    }
  }
  return false;
}

// -------------------------------------------------------------------- views

std::string Supervisor::PoolState(const std::string& name) const {
  for (const auto& p : pools_) {
    if (p->config.name != name) continue;
    if (p->failed) return "failed";
    if (p->removed || stopping_) return "stopping";
    if (p->held) {
      const bool live = std::any_of(p->replicas.begin(), p->replicas.end(),
                                    [](const auto& r) { return Alive(*r); });
      return live ? "stopping" : "stopped";
    }
    bool pending = false, live = false;
    for (const auto& r : p->replicas) {
      if (r->retire) continue;
      if (r->state == ReplicaState::kWaiting || r->state == ReplicaState::kStarting) pending = true;
      if (Alive(*r)) live = true;
    }
    if (pending) return "starting";
    return live ? "running" : "stopped";
  }
  return "";
}

nlohmann::json Supervisor::PoolsView() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : pools_) {
    int running = 0, ready = 0;
    nlohmann::json pids = nlohmann::json::array();
    nlohmann::json sidecar_pids = nlohmann::json::array();
    for (const auto& r : p->replicas) {
      if (r->sidecar_pid) sidecar_pids.push_back(r->sidecar_pid);
      if (r->pid == 0) continue;
      ++running;
      if (r->state == ReplicaState::kRunning && r->conn) ++ready;
      pids.push_back(r->pid);
    }
    nlohmann::json replicas = nlohmann::json::array();
    for (const auto& r : p->replicas) {
      nlohmann::json v = {
          {"replica", r->index}, {"state", ReplicaStateName(r->state)}, {"restarts", r->restarts}};
      if (Alive(*r)) v["pid"] = r->pid;
      if (r->retire) v["retiring"] = true;
      if (r->drained) v["drained"] = true;
      if (!r->last_exit.empty()) v["last_exit"] = r->last_exit;
      replicas.push_back(std::move(v));
    }
    nlohmann::json view = {{"name", p->config.name},
                           {"state", PoolState(p->config.name)},
                           {"desired", Desired(*p)},
                           {"config_replicas", p->config.replicas},
                           {"running", running},
                           {"ready", ready},
                           {"restarts", p->restarts},
                           {"policy", ConfigName(p->config.restart.policy)},
                           {"pids", std::move(pids)},
                           {"command", p->config.command},
                           {"replicas", std::move(replicas)}};
    if (!p->config.sidecar.empty()) {
      view["sidecar"] = p->config.sidecar;
      view["sidecar_pids"] = std::move(sidecar_pids);
    }
    if (p->scaled) view["scaled"] = *p->scaled;
    if (p->held) view["held"] = true;
    if (!p->last_exit.empty()) view["last_exit"] = p->last_exit;
    if (std::string why = Why(*p); !why.empty()) view["why"] = std::move(why);
    out.push_back(std::move(view));
  }
  return out;
}

// Why a pool has fewer ready replicas than it wants, in words; "" when it
// has them all.
std::string Supervisor::Why(const Pool& p) const {
  std::vector<std::string> reasons;
  if (stopping_) return "pincerd is shutting down";
  if (p.removed) return "removed from the config";
  if (p.held) return "stopped by pincerctl pool stop";
  if (p.failed) {
    reasons.push_back("failed: more than " + std::to_string(p.config.restart.max_restarts) +
                      " restart(s) within " + Ms(p.config.restart.window) +
                      "; last: " + p.last_exit + "; `pincerctl pool start " + p.config.name +
                      "` or a reload tries again");
  }
  const TimePoint now = clock_.Now();
  int ready = 0;
  for (const auto& r : p.replicas) {
    if (r->retire) continue;
    const std::string tag = Tag(p, *r);
    const std::string after = r->last_exit.empty() ? "" : " (last: " + r->last_exit + ")";
    switch (r->state) {
      case ReplicaState::kWaiting:
        reasons.push_back(tag + " backing off, restarts in " +
                          Ms(r->due && *r->due > now
                                 ? std::chrono::duration_cast<Duration>(*r->due - now)
                                 : Duration(0)) +
                          after);
        break;
      case ReplicaState::kStarting:
        reasons.push_back(tag + " starting: pid " + std::to_string(r->pid) +
                          " has not said hello yet");
        break;
      case ReplicaState::kRunning:
        if (r->drained) {
          reasons.push_back(tag + " draining (pincerctl drain); replaced when it exits");
        } else if (r->conn) {
          ++ready;
        }
        break;
      case ReplicaState::kDraining:
      case ReplicaState::kStopping:
        reasons.push_back(tag + " being stopped" + (r->forced ? " (hung)" : ""));
        break;
      case ReplicaState::kDone:
        if (!p.failed) {
          reasons.push_back(
              tag + " exited: " + (r->last_exit.empty() ? "could not start" : r->last_exit) +
              "; restart policy " + std::string(ConfigName(p.config.restart.policy)) +
              ": not restarted (`pincerctl pool start " + p.config.name + "`)");
        }
        break;
    }
  }
  if (reasons.empty() && ready >= Desired(p)) return "";
  std::string out;
  for (const auto& reason : reasons) out += (out.empty() ? "" : "; ") + reason;
  return out;
}

int Supervisor::LastExitReplica(const std::string& pool) const {
  for (const auto& p : pools_) {
    if (p->config.name == pool) return p->last_exit_replica;
  }
  return -1;
}

bool Supervisor::HasPool(const std::string& pool) const {
  return std::any_of(pools_.begin(), pools_.end(),
                     [&](const auto& p) { return p->config.name == pool && !p->removed; });
}

nlohmann::json Supervisor::StartingWorkersView() const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& p : pools_) {
    for (const auto& r : p->replicas) {
      if (r->pid == 0 || r->conn != 0 || r->retire) continue;
      out.push_back({{"id", nullptr},
                     {"name", p->config.name + "/" + std::to_string(r->index)},
                     {"skills", nlohmann::json::array()},
                     {"capacity", 0},
                     {"inflight", 0},
                     {"state", "starting"},
                     {"completed", 0},
                     {"failed", 0},
                     {"pool", p->config.name},
                     {"pid", r->pid},
                     {"replica", r->index},
                     {"restarts", r->restarts}});
    }
  }
  return out;
}

int Supervisor::FailedPools() const {
  return static_cast<int>(
      std::count_if(pools_.begin(), pools_.end(), [](const auto& p) { return p->failed; }));
}

int Supervisor::TotalRestarts() const {
  int n = 0;
  for (const auto& p : pools_) n += p->restarts;
  return n;
}

const Supervisor::Replica* Supervisor::FindByConn(ConnId conn, std::string* pool) const {
  if (conn == 0) return nullptr;
  for (const auto& p : pools_) {
    for (const auto& r : p->replicas) {
      if (r->conn != conn) continue;
      if (pool) *pool = p->config.name;
      return r.get();
    }
  }
  return nullptr;
}

std::vector<pid_t> Supervisor::LivePids() const {
  std::vector<pid_t> pids;
  for (const auto& p : pools_) {
    for (const auto& r : p->replicas) {
      if (r->pid) pids.push_back(r->pid);
      if (r->sidecar_pid) pids.push_back(r->sidecar_pid);
    }
  }
  return pids;
}

}  // namespace pincer
