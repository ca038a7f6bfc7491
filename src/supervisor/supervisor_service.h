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
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "config/config.h"
#include "core/outbox.h"
#include "registry/worker_registry.h"
#include "supervisor/output_log.h"
#include "supervisor/posix_spawner.h"
#include "supervisor/supervisor.h"

namespace pincer {

class SupervisorService {
 public:
  // How many stderr lines of the last exit `pools` shows for a short pool.
  static constexpr std::size_t kStderrTailLines = 5;

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
  void OnDrained(ConnId conn);

  // `pincerctl pool start|stop|restart|scale`: `op` is one of those words,
  // `replicas` is for scale. The answer is the pool's view after the verb;
  // not_found, invalid_request, invalid_state or shutting_down when refused.
  Status PoolCommand(const std::string& op, const std::string& pool, std::optional<int> replicas,
                     nlohmann::json& view);
  // `pincerctl logs`: {"pool","lines":[{"seq","time_ms","replica","stream","text"}],"last"}.
  Status Logs(const std::string& pool, uint64_t after, std::size_t limit,
              nlohmann::json& out) const;

  // For ClientApi::Hooks. A pool short of replicas whose last exit left
  // something on stderr gets its tail as "stderr_tail".
  nlohmann::json PoolsView() const;
  nlohmann::json StartingWorkersView() const { return supervisor_->StartingWorkersView(); }
  // pid, replica, restarts, uptime_ms, cpu (cores, since last asked) and
  // rss_bytes for a managed worker; nothing for others.
  void AddWorkerFields(const Worker& w, nlohmann::json& v);
  // "pools", "pools_failed", "pool_restarts".
  void AddStats(nlohmann::json& v) const;

  const Supervisor& supervisor() const { return *supervisor_; }

 private:
  void Rearm();
  void OnOutput(const OutputLine& line);

  asio::io_context& io_;
  const Clock& clock_;
  std::mt19937_64 rng_;
  OutputLog output_;
  std::unique_ptr<PosixSpawner> spawner_;
  std::unique_ptr<Supervisor> supervisor_;
  asio::steady_timer timer_;
  std::optional<TimePoint> timer_at_;
  // The last CPU sample per pid, so `cpu` is a recent rate, not a lifetime average.
  std::map<pid_t, std::pair<double, TimePoint>> cpu_samples_;
};

}  // namespace pincer
