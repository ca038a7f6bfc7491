#include "supervisor/supervisor_service.h"

#include "supervisor/proc_stats.h"

#include <algorithm>

namespace pincer {

SupervisorService::SupervisorService(asio::io_context& io, const Clock& clock,
                                     SupervisorOptions options, SupervisorHooks hooks)
    : io_(io), clock_(clock), rng_(std::random_device{}()), timer_(io) {
  spawner_ = std::make_unique<PosixSpawner>(io, [this](pid_t pid, const ExitStatus& status) {
    cpu_samples_.erase(pid);
    supervisor_->OnExit(pid, status);
    Rearm();
  });
  supervisor_ = std::make_unique<Supervisor>(
      clock, *spawner_,
      [this] { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); },
      std::move(options), std::move(hooks));
}

SupervisorService::~SupervisorService() {
  timer_.cancel();
  // The spawner's destructor kills and reaps what is left; the supervisor
  // goes first since it refers to the spawner.
  supervisor_.reset();
  spawner_.reset();
}

void SupervisorService::Start(const std::vector<PoolConfig>& pools) {
  supervisor_->Start(pools);
  Rearm();
}

void SupervisorService::Apply(const std::vector<PoolConfig>& pools) {
  supervisor_->Apply(pools);
  Rearm();
}

bool SupervisorService::StopAll() {
  const bool done = supervisor_->StopAll();
  Rearm();
  return done;
}

std::optional<std::string> SupervisorService::OnHello(const std::string& spawn_id, ConnId conn) {
  auto pool = supervisor_->OnHello(spawn_id, conn);
  Rearm();
  return pool;
}

void SupervisorService::OnDisconnect(ConnId conn) {
  supervisor_->OnDisconnect(conn);
  Rearm();
}

void SupervisorService::OnWorkerDead(ConnId conn) {
  supervisor_->OnWorkerDead(conn);
  Rearm();
}

void SupervisorService::Rearm() {
  const auto next = supervisor_->NextDeadline();
  if (!next) return;  // a pending wait on a later time fires harmlessly
  if (timer_at_ && *timer_at_ <= *next) return;
  timer_at_ = next;
  timer_.expires_at(*next);
  timer_.async_wait([this](const std::error_code& ec) {
    if (ec) return;
    timer_at_.reset();
    supervisor_->RunDue();
    Rearm();
  });
}

void SupervisorService::AddWorkerFields(const Worker& w, nlohmann::json& v) {
  const Supervisor::Replica* r = supervisor_->FindByConn(w.id);
  if (!r || r->pid == 0) return;
  const TimePoint now = clock_.Now();
  v["pid"] = r->pid;
  v["replica"] = r->index;
  v["restarts"] = r->restarts;
  v["uptime_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(now - r->started).count();
  if (auto stats = ReadProcStats(r->pid)) {
    v["rss_bytes"] = stats->rss_bytes;
    v["cpu_seconds"] = stats->cpu_seconds;
    // The first look measures from the start of the process.
    auto [it, first] = cpu_samples_.try_emplace(r->pid, 0.0, r->started);
    (void)first;
    const double wall = std::chrono::duration<double>(now - it->second.second).count();
    v["cpu"] = wall > 0 ? std::max(0.0, stats->cpu_seconds - it->second.first) / wall : 0.0;
    it->second = {stats->cpu_seconds, now};
  }
}

void SupervisorService::AddStats(nlohmann::json& v) const {
  v["pools"] = supervisor_->PoolsView().size();
  v["pools_failed"] = supervisor_->FailedPools();
  v["pool_restarts"] = supervisor_->TotalRestarts();
}

}  // namespace pincer
