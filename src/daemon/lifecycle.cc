// pincerd's lifecycle: signals, reload, shutdown, and the supervisor of
// its pools (docs/operations.md).
#include <spdlog/spdlog.h>

#include <csignal>

#include "config/config_diff.h"
#include "daemon/daemon.h"
#include "protocol/encode.h"

namespace pincer {
namespace {

std::vector<std::string> PoolNames(const Config& config) {
  std::vector<std::string> names;
  for (const auto& pool : config.pools) names.push_back(pool.name);
  return names;
}

}  // namespace

void Daemon::WatchSignals() {
  signals_.add(SIGHUP);
  signals_.add(SIGTERM);
  signals_.add(SIGINT);
  signals_.async_wait([this](const std::error_code& ec, int sig) {
    if (ec) return;
    if (sig == SIGHUP) {
      Reload(nullptr);
    } else {
      Shutdown(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    }
    WatchSignals();
  });
}

void Daemon::Reload(ReloadDone done) {
  if (options_.config_path.empty()) {
    // systemd sees the reload begin and end, whatever its outcome.
    if (notifier_) notifier_->Reloading();
    if (notifier_) notifier_->Reloaded();
    if (done) done(Status("reload_failed", "pincerd was started without a config file"));
    return;
  }
  if (reloads_.loading) {
    reloads_.next.push_back(std::move(done));
    return;
  }
  std::vector<ReloadDone> waiting;
  waiting.push_back(std::move(done));
  StartReload(std::move(waiting));
}

void Daemon::StartReload(std::vector<ReloadDone> waiting) {
  reloads_.loading = true;
  if (notifier_) notifier_->Reloading();
  if (reloads_.thread.joinable()) reloads_.thread.join();  // done: it posted its result
  reloads_.thread =
      std::thread([this, path = options_.config_path, waiting = std::move(waiting)]() mutable {
        auto loaded = std::make_shared<ConfigResult>();
        try {
          *loaded = LoadConfig(path);
        } catch (const std::exception& e) {  // out of memory, say: refuse, serve on
          loaded->error = ConfigError{path + ": cannot load: " + e.what()};
        }
        asio::post(io_, [this, loaded, waiting = std::move(waiting)] {
          const Status st = ApplyConfig(std::move(*loaded));
          reloads_.loading = false;
          if (notifier_) notifier_->Reloaded();
          for (const ReloadDone& done : waiting) {
            if (done) done(st);
          }
          if (!reloads_.next.empty()) StartReload(std::exchange(reloads_.next, {}));
        });
      });
}

Status Daemon::ApplyConfig(ConfigResult loaded) {
  if (!loaded.ok()) {
    spdlog::error("reload refused, the running config stays: {}", loaded.error->message);
    return Status("reload_failed", loaded.error->message);
  }
  Config next = std::move(*loaded.config);
  // What needs a restart to change is kept, and said so.
  if (next.listen != config_.listen || next.unix_socket != config_.unix_socket ||
      next.metrics_listen != config_.metrics_listen || next.data_dir != config_.data_dir ||
      next.store != config_.store || next.advertise != config_.advertise) {
    spdlog::warn(
        "reload: listen, unix_socket, metrics_listen, data_dir, store and advertise apply at the "
        "next start");
    next.advertise = config_.advertise;
    next.listen = config_.listen;
    next.unix_socket = config_.unix_socket;
    next.metrics_listen = config_.metrics_listen;
    next.data_dir = config_.data_dir;
    next.store = config_.store;
  }
  if (next.tls.enabled != config_.tls.enabled) {
    spdlog::warn("reload: turning tls on or off applies at the next start");
    next.tls = config_.tls;
  }
  // The certificate files are read again (rotation); the new context is for
  // new connections, those already made keep theirs.
  if (next.tls.enabled) {
    if (Status s = LoadTls(next.tls); !s.ok()) {
      spdlog::error("reload refused, the running config stays: {}", s.message());
      return Status("reload_failed", s.message());
    }
  }
  const std::vector<std::string> changes = DescribeConfigChanges(config_, next);
  config_ = std::move(next);
  dispatcher_->Reconfigure(config_);
  if (supervisor_ && !stopping_.on) supervisor_->Apply(config_.pools);
  metrics_->SetPools(PoolNames(config_));
  spdlog::set_level(spdlog::level::from_str(config_.log_level));
  if (changes.empty()) {
    spdlog::info("config reloaded from {}: nothing changed", options_.config_path);
  } else {
    spdlog::info("config reloaded from {}: {} change{}", options_.config_path, changes.size(),
                 changes.size() == 1 ? "" : "s");
    for (const std::string& line : changes) spdlog::info("reload: {}", line);
  }
  ScheduleFlush();
  return Status::Ok();
}

void Daemon::Shutdown(const std::string& why) {
  if (stopping_.on) return;
  stopping_.on = true;
  if (notifier_) notifier_->Stopping();
  metrics_->set_ready(false);
  spdlog::info("{}: shutting down; no new tasks, {} running task(s) may finish", why,
               dispatcher_->stats().running);
  dispatcher_->StopAccepting();
  if (supervisor_) supervisor_->StopRestarts();
  for (auto& l : listeners_) l->Close();
  sessions_->RefuseWorkers();
  sessions_->ForEach([this](ConnId id, PeerSessions::Peer& peer) {
    if (peer.role == Role::kWorker) Send(id, EncodeDrain());
  });
  stopping_.drain_timer = std::make_unique<asio::steady_timer>(io_, config_.shutdown.drain_timeout);
  stopping_.drain_timer->async_wait([this](const std::error_code& ec) {
    if (ec) return;
    spdlog::warn("drain timeout: stopping with {} task(s) still running",
                 dispatcher_->stats().running);
    dispatcher_->CancelRunningForShutdown();
    stopping_.drain_expired = true;
    CheckDrained();
  });
  ScheduleFlush();
}

void Daemon::StartSupervisor() {
  SupervisorOptions options;
  // Pool workers have no client certificate: with TLS on `listen` they dial
  // the (plain) unix socket, which the config requires then.
  options.address = listeners_.front()->bound();
  if (tls_ && listeners_.size() > 1) options.address = listeners_.back()->bound();
  options.token = config_.auth.worker_token;
  options.drain_timeout = config_.shutdown.drain_timeout;
  SupervisorHooks hooks;
  hooks.kill_worker = [this](ConnId conn, const std::string& reason) {
    dispatcher_->KillWorker(conn, reason);
    ScheduleFlush();
  };
  hooks.drain_worker = [this](ConnId conn) {
    if (const Worker* w = dispatcher_->workers().Find(conn)) dispatcher_->Drain(w->id_str);
    ScheduleFlush();
  };
  hooks.inflight = [this](ConnId conn) {
    const Worker* w = dispatcher_->workers().Find(conn);
    return w ? w->inflight() : 0;
  };
  hooks.stopped = [this] { ScheduleFlush(); };  // FlushAll runs CheckDrained
  hooks.restarted = [this](const std::string& pool) {
    if (metrics_) metrics_->PoolRestarted(pool);
  };
  hooks.pool_failed = [this](const std::string& pool, bool failed) {
    if (metrics_) metrics_->PoolFailed(pool, failed);
  };
  supervisor_ =
      std::make_unique<SupervisorService>(io_, clock_, std::move(options), std::move(hooks));
  supervisor_->Start(config_.pools);
  metrics_->SetPools(PoolNames(config_));
}

void Daemon::CheckDrained() {
  if (io_.stopped()) return;  // already said bye; closing peers calls back here
  if ((dispatcher_->stats().running > 0 && !stopping_.drain_expired) || flush_scheduled_) return;
  if (writer_ && writer_->busy()) return;  // back here once written
  if (store_->dirty() && !store_->Commit().ok()) return;
  gate_.Durable(store_->next_take());
  // Children go after the tasks: SIGTERM, SIGKILL after stop_grace; the
  // supervisor's `stopped` hook brings us back here once all are reaped.
  if (supervisor_ && !supervisor_->StopAll()) return;
  spdlog::info("all running tasks ended; bye");
  EndLoop(/*flush=*/true);
}

void Daemon::EndLoop(bool flush) {
  // Closing may call OnClosed at once, which forgets the peer: iterate a copy.
  std::vector<std::shared_ptr<Connection>> conns;
  if (sessions_) {
    sessions_->ForEach([&](ConnId, PeerSessions::Peer& peer) { conns.push_back(peer.conn); });
  }
  if (stopping_.drain_timer) stopping_.drain_timer->cancel();
  if (store_retry_timer_) store_retry_timer_->cancel();
  signals_.cancel();
  timer_.cancel();
  linger_timer_.cancel();
  io_.stop();
  for (auto& conn : conns) {
    if (flush) {
      conn->CloseAfterFlush();
    } else {
      conn->Close();
    }
  }
}

}  // namespace pincer
