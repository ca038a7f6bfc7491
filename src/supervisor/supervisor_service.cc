#include "supervisor/supervisor_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/proc_stat.h"

namespace pincer {

SupervisorService::SupervisorService(asio::io_context& io, const Clock& clock,
                                     SupervisorOptions options, SupervisorHooks hooks)
    : io_(io), clock_(clock), rng_(std::random_device{}()), timer_(io) {
  spawner_ = std::make_unique<PosixSpawner>(
      io,
      [this](pid_t pid, const ExitStatus& status) {
        cpu_samples_.erase(pid);
        supervisor_->OnExit(pid, status);
        Rearm();
      },
      [this](const OutputLine& line) { OnOutput(line); });
  supervisor_ = std::make_unique<Supervisor>(
      clock, *spawner_, [this] { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); },
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
  // A removed pool's output goes with it (a pool still stopping keeps its own).
  std::vector<std::string> names;
  for (const auto& p : supervisor_->PoolsView()) names.push_back(p["name"].get<std::string>());
  output_.KeepOnly(names);
}

void SupervisorService::OnOutput(const OutputLine& line) {
  // pincerd's log line has its own time and level: the child's line is
  // written as it came, tagged once with pool/replica and stream.
  spdlog::info("[{} {}] {}", line.spec.log_tag, line.err ? "err" : "out", line.text);
  output_.Add(line.spec.pool, line.spec.replica, line.err, line.text, clock_.UnixMillis());
}

void SupervisorService::OnDrained(ConnId conn) {
  supervisor_->OnDrained(conn);
  Rearm();
}

Status SupervisorService::PoolCommand(const std::string& op, const std::string& pool,
                                      std::optional<int> replicas, nlohmann::json& view) {
  std::string refused;
  if (!supervisor_->HasPool(pool)) return Status("not_found", "no pool named '" + pool + "'");
  if (op == "start") {
    refused = supervisor_->StartPool(pool);
  } else if (op == "stop") {
    refused = supervisor_->StopPool(pool);
  } else if (op == "restart") {
    refused = supervisor_->RestartPool(pool);
  } else if (op == "scale") {
    if (!replicas) return Status("invalid_request", "scale needs 'replicas'");
    refused = supervisor_->ScalePool(pool, *replicas);
  } else {
    return Status("invalid_request", "unknown pool op '" + op + "': start, stop, restart or scale");
  }
  Rearm();
  if (supervisor_->stopping()) return Status("shutting_down", "pincerd is shutting down");
  if (!refused.empty()) return Status("invalid_state", refused);
  for (auto& p : PoolsView()) {
    if (p["name"] == pool) view = std::move(p);
  }
  return Status::Ok();
}

Status SupervisorService::Logs(const std::string& pool, uint64_t after, std::size_t limit,
                               nlohmann::json& out) const {
  if (!supervisor_->HasPool(pool)) return Status("not_found", "no pool named '" + pool + "'");
  nlohmann::json lines = nlohmann::json::array();
  for (const OutputLog::Line& l : output_.Read(pool, after, limit)) {
    lines.push_back({{"seq", l.seq},
                     {"time_ms", l.unix_ms},
                     {"replica", l.replica},
                     {"stream", l.err ? "err" : "out"},
                     {"text", l.text}});
  }
  out = {{"pool", pool}, {"lines", std::move(lines)}, {"last", output_.last_seq()}};
  return Status::Ok();
}

nlohmann::json SupervisorService::PoolsView() const {
  nlohmann::json pools = supervisor_->PoolsView();
  for (auto& p : pools) {
    if (!p.contains("why") || !p.contains("last_exit")) continue;
    const std::string name = p["name"].get<std::string>();
    const int replica = supervisor_->LastExitReplica(name);
    if (replica < 0) continue;
    auto tail = output_.StderrTail(name, replica, kStderrTailLines);
    if (!tail.empty()) p["stderr_tail"] = std::move(tail);
  }
  return pools;
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
