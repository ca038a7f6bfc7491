// The supervisor as pincerd runs it: the pure Supervisor, driven by the real
// PosixSpawner (SIGCHLD, pipes) and one steady_timer on the event loop that
// sleeps until the supervisor's next deadline. pincerd's Daemon holds one
// and forwards worker hellos, disconnects and deaths to it.
//
// Threading: the daemon's io_context thread only.
#pragma once

#include <asio.hpp>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "config/config.h"
#include "core/outbox.h"
#include "registry/worker_registry.h"
#include "supervisor/posix_spawner.h"
#include "supervisor/supervisor.h"

namespace pincer {

class SupervisorService {
 public:
  // `io` and `clock` must outlive the service. Destroying it SIGKILLs and
  // reaps any child still running.
  SupervisorService(asio::io_context& io, const Clock& clock, SupervisorOptions options,
                    SupervisorHooks hooks);
  ~SupervisorService();

  void Start(const std::vector<PoolConfig>& pools);
  void Apply(const std::vector<PoolConfig>& pools);
  // See Supervisor::StopAll: true when no child is left.
  bool StopAll();
  void StopRestarts() { supervisor_->StopRestarts(); }

  std::optional<std::string> OnHello(const std::string& spawn_id, ConnId conn);
  void OnDisconnect(ConnId conn);
  void OnWorkerDead(ConnId conn);

  // For ClientApi::Hooks.
  nlohmann::json PoolsView() const { return supervisor_->PoolsView(); }
  nlohmann::json StartingWorkersView() const { return supervisor_->StartingWorkersView(); }
  // pid, replica, restarts, uptime_ms, cpu (cores, since last asked) and
  // rss_bytes for a managed worker; nothing for others.
  void AddWorkerFields(const Worker& w, nlohmann::json& v);
  // "pools", "pools_failed", "pool_restarts".
  void AddStats(nlohmann::json& v) const;

  const Supervisor& supervisor() const { return *supervisor_; }

 private:
  void Rearm();

  asio::io_context& io_;
  const Clock& clock_;
  std::mt19937_64 rng_;
  std::unique_ptr<PosixSpawner> spawner_;
  std::unique_ptr<Supervisor> supervisor_;
  asio::steady_timer timer_;
  std::optional<TimePoint> timer_at_;
  // The last CPU sample per pid, so `cpu` is a recent rate, not a lifetime average.
  std::map<pid_t, std::pair<double, TimePoint>> cpu_samples_;
};

}  // namespace pincer
