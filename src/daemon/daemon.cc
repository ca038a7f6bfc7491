#include "daemon/daemon.h"

#include <spdlog/spdlog.h>

#include <fstream>

#include "dashboard/dashboard.h"
#include "store/postgres_store.h"
#include "tls/tls_context.h"

namespace pincer {
namespace {

// Moves `from` to the end of `to` and leaves it empty; when `to` is empty
// the buffers are swapped, so neither is copied and both keep their
// capacity for the next turn.
void Splice(std::string& to, std::string& from) {
  if (to.empty()) {
    to.swap(from);
  } else {
    to.append(from);
  }
  from.clear();
}

}  // namespace

Daemon::Daemon(asio::io_context& io, Config config, DaemonOptions options)
    : io_(io),
      config_(std::move(config)),
      options_(std::move(options)),
      gate_(
          [this](ConnId id) -> std::string* {
            PeerSessions::Peer* peer = FindPeer(id);
            return peer && peer->conn->open() ? &peer->conn->out() : nullptr;
          },
          [this](ConnId id) {
            if (PeerSessions::Peer* peer = FindPeer(id)) {
              peer->conn->Flush();
              sessions_->CheckBacklog(*peer);
            }
          }),
      linger_timer_(io),
      timer_(io),
      signals_(io) {}

Daemon::~Daemon() {
  // A load still running posts its result to a loop that no longer runs.
  if (reloads_.thread.joinable()) reloads_.thread.join();
  // The metrics server takes a moment to stop; stop it while signals_ still
  // catches SIGTERM, so a second SIGTERM in that moment cannot kill pincerd
  // after a clean drain.
  if (dispatcher_) dispatcher_->set_observer(nullptr);
  metrics_.reset();
}

Status Daemon::Start() {
  Status error;
  if (config_.store.kind == StoreKind::kSqlite && !config_.data_dir.empty()) {
    if (Status st = data_dir_lock_.Acquire(config_.data_dir); !st.ok()) return st;
  }
  store_ = OpenStore(config_, error);
  if (!store_) return error;
  dispatcher_ = std::make_unique<Dispatcher>(config_, *store_, clock_, *this);

  metrics_ = std::make_unique<Metrics>(io_, *dispatcher_);

  ClientApi::Hooks hooks;
  hooks.reload = [this](ClientApi::ReloadDone done) { Reload(std::move(done)); };
  hooks.pools = [this] { return supervisor_ ? supervisor_->PoolsView() : nlohmann::json::array(); };
  hooks.worker_extra = [this](const Worker& w, nlohmann::json& v) {
    if (supervisor_) supervisor_->AddWorkerFields(w, v);
  };
  hooks.starting_workers = [this] {
    return supervisor_ ? supervisor_->StartingWorkersView() : nlohmann::json::array();
  };
  hooks.stats_extra = [this](nlohmann::json& v) {
    if (supervisor_) supervisor_->AddStats(v);
  };
  hooks.drained = [this](ConnId conn) {
    if (supervisor_) supervisor_->OnDrained(conn);
  };
  hooks.pool = [this](const PoolReq& r, nlohmann::json& view) {
    if (!supervisor_) return Status("not_found", "no pool named '" + r.pool + "'");
    std::optional<int> replicas;
    if (r.replicas) replicas = static_cast<int>(*r.replicas);
    Status st = supervisor_->PoolCommand(r.op, r.pool, replicas, view);
    ScheduleFlush();
    return st;
  };
  hooks.logs = [this](const LogsReq& r, nlohmann::json& out) {
    if (!supervisor_) return Status("not_found", "no pool named '" + r.pool + "'");
    return supervisor_->Logs(r.pool, static_cast<uint64_t>(r.after),
                             static_cast<std::size_t>(r.limit), out);
  };
  // The dashboard (docs/dashboard.md) answers with the same views.
  AddDashboard(*dispatcher_, *metrics_, hooks,
               {[this] { return config_.auth; }, [this] { ScheduleFlush(); }});
  api_ = std::make_unique<ClientApi>(*dispatcher_, *this, std::move(hooks));

  if (config_.tls.enabled) {
    if (Status s = LoadTls(config_.tls); !s.ok()) return s;
  }
  PeerSessions::Hooks session_hooks;
  session_hooks.changed = [this] { ScheduleFlush(); };
  session_hooks.bind_worker = [this](const std::string& spawn_id, ConnId conn) {
    return supervisor_ ? supervisor_->OnHello(spawn_id, conn) : std::nullopt;
  };
  session_hooks.closed = [this](ConnId conn, Role role) { OnClosed(conn, role); };
  session_hooks.held = [this](ConnId conn) { return gate_.Held(conn); };
  session_hooks.standby = [this](std::string& leader) {
    if (standby_) leader = leader_address_;
    return standby_;
  };
  sessions_ = std::make_unique<PeerSessions>(io_, config_, clock_, *dispatcher_, *api_, *this,
                                             std::move(session_hooks));
  // Listening before the recovery: nothing is read from a connection
  // before the loop runs, and a standby's address is known from the start.
  if (Status s = Listen(config_.listen); !s.ok()) return s;
  if (!config_.unix_socket.empty()) {
    if (Status s = Listen("unix:" + config_.unix_socket); !s.ok()) return s;
  }
  if (Status s = AskForLease(); !s.ok()) return s;
  if (!standby_) {
    if (Status s = Recover(); !s.ok()) return s;
  }
  if (!options_.address_file.empty()) {
    // Written whole under a temporary name, so a reader never sees half.
    const std::string tmp = options_.address_file + ".tmp";
    std::ofstream(tmp) << listeners_.front()->bound() << "\n";
    std::rename(tmp.c_str(), options_.address_file.c_str());
  }
  if (!config_.metrics_listen.empty()) {
    if (Status s = metrics_->Serve(config_.metrics_listen); !s.ok()) return s;
  }
  WatchSignals();
  ScheduleFlush();  // arms the deadline timer
  notifier_ = std::make_unique<SystemdNotifier>(io_, [this] {
    if (standby_) {
      return "standby; the leader is at " +
             (leader_address_.empty() ? std::string("(unknown)") : leader_address_);
    }
    const DispatcherStats& s = dispatcher_->stats();
    return fmt::format("{} workers, {} queued, {} running", dispatcher_->workers().size(), s.queued,
                       s.running);
  });
  // A standby is up too (it answers hellos); /healthz says 503 until it leads.
  notifier_->Ready();
  if (standby_) metrics_->set_standby();
  if (!standby_) StartLeading();
  return Status::Ok();
}

Status Daemon::Recover() {
  std::size_t recovered = 0;
  Status st = Recover(recovered);
  // A standby's connection may have gone stale while it waited: when the
  // first query failed (nothing was read yet), connect once more.
  if (!st.ok() && st.code() == "store_unavailable" && recovered == 0) {
    spdlog::warn("recovery: {}; trying once more", st.message());
    st = Recover(recovered);
  }
  return st;
}

Status Daemon::Recover(std::size_t& recovered) {
  // The counters start from what the store holds, not from its replay.
  dispatcher_->set_observer(nullptr);
  Status st = store_->Recover([&](TaskRecord&& rec) {
    dispatcher_->Restore(std::move(rec));
    ++recovered;
  });
  if (st.ok()) dispatcher_->FinishRestore();
  dispatcher_->set_observer(metrics_.get());
  if (!st.ok()) return st;
  if (recovered) {
    spdlog::info("recovered {} tasks ({} queued)", recovered, dispatcher_->stats().queued);
  }
  return Status::Ok();
}

void Daemon::StartLeading() {
  StartSupervisor();
  metrics_->set_ready(true);
  ScheduleFlush();
}

Status Daemon::AskForLease() {
  if (config_.store.kind != StoreKind::kPostgres) return Status::Ok();
  const std::string address =
      config_.advertise.empty() ? listeners_.front()->bound() : config_.advertise;
  if (config_.advertise.empty() &&
      (address.starts_with("0.0.0.0:") || address.starts_with("[::]:"))) {
    spdlog::warn(
        "listen binds {}: standbys would name that as the leader's address; set advertise to an "
        "address clients can reach (docs/high-availability.md)",
        address);
  }
  lease_holder_ = MakeLeaseHolder();
  auto lease = std::make_unique<PostgresLease>(config_.store.url, lease_holder_, address,
                                               config_.store.lease);
  PostgresLease::View view;
  lease_asked_at_ = std::chrono::steady_clock::now();
  if (Status st = lease->Acquire(view); !st.ok()) return st;
  lease_epoch_ = view.epoch;
  standby_ = view.epoch == 0;
  // Its own address: the lease of this pincerd before a restart, not run
  // out yet. Nobody leads then.
  own_address_ = address;
  leader_address_ = view.leader == own_address_ ? "" : view.leader;
  if (standby_) {
    spdlog::info("standby: another pincerd leads{}{}; taking over when its lease runs out",
                 leader_address_.empty() ? "" : " at ", leader_address_);
  } else {
    static_cast<PostgresStore&>(*store_).SetFence(lease_holder_, view.epoch);
    spdlog::info("leading: lease taken (epoch {}), advertised as {}", view.epoch, address);
  }
  LeaseKeeper::Hooks hooks;
  hooks.acquired = [this](int64_t epoch) { OnLeaseAcquired(epoch); };
  hooks.leader = [this](const std::string& leader) {
    if (!standby_) return;
    leader_address_ = leader == own_address_ ? "" : leader;
    spdlog::info("standby: the leader is {}",
                 leader_address_.empty() ? "not known" : "at " + leader_address_);
  };
  hooks.lost = [this](const Status& why) { StepDown(why); };
  lease_keeper_ = std::make_unique<LeaseKeeper>(io_, std::move(lease), config_.store.lease,
                                                config_.store.renew, std::move(hooks));
  // Renewing from now on: a recovery longer than the lease keeps it.
  lease_keeper_->Start(lease_epoch_, lease_asked_at_);
  return Status::Ok();
}

void Daemon::OnLeaseAcquired(int64_t epoch) {
  if (stopping_.on || io_.stopped()) return;
  static_cast<PostgresStore&>(*store_).SetFence(lease_holder_, epoch);
  spdlog::info("leading: lease taken (epoch {}); recovering the tasks from the database", epoch);
  if (Status st = Recover(); !st.ok()) {
    // Another pincerd (or this one, restarted) tries again.
    StepDown(Status(st.code(), "cannot recover after taking the lease: " + st.message()));
    return;
  }
  standby_ = false;
  leader_address_.clear();
  StartLeading();
}

void Daemon::StepDown(const Status& why) {
  if (io_.stopped()) return;
  spdlog::critical("stepping down: {}; closing every connection and exiting with code {}",
                   why.message(), kSteppedDownExitCode);
  exit_code_ = kSteppedDownExitCode;
  metrics_->set_ready(false);
  // Nothing more goes out: answers held for the store are dropped unsent
  // (their writes never committed), connections close without a flush.
  for (auto& l : listeners_) l->Close();
  EndLoop(/*flush=*/false);
}

int Daemon::Run() {
  io_.run();
  // A clean stop lets the lease go: a standby need not wait for it to run
  // out. (Stepped down: it is not ours.)
  if (lease_keeper_ && exit_code_ == 0) lease_keeper_->Release();
  return exit_code_;
}

// ------------------------------------------------------------ connections

Status Daemon::Listen(const std::string& address) {
  auto listener = std::make_unique<Listener>(io_);
  const bool tcp = address.rfind("unix:", 0) != 0;
  Status s = listener->Open(address, [this, tcp](Connection::Socket sock) {
    sessions_->Accept(std::move(sock), tcp ? tls_ : nullptr);
  });
  if (!s.ok()) return s;
  spdlog::info("listening on {}{}", listener->bound(), tcp && tls_ ? " (TLS)" : "");
  listeners_.push_back(std::move(listener));
  return Status::Ok();
}

Status Daemon::LoadTls(const TlsConfig& tls) {
  std::vector<tls::Problem> problems;
  std::shared_ptr<asio::ssl::context> context =
      tls::MakeServerContext(tls.cert, tls.key, tls.client_ca, &problems);
  if (!context) {
    std::string message;
    for (const tls::Problem& p : problems) {
      if (!message.empty()) message += "; ";
      message += std::string(tls::ConfigKey(p.file)) + ": " + p.message;
    }
    return Status("tls_failed", message);
  }
  tls_ = std::move(context);
  return Status::Ok();
}

void Daemon::OnClosed(ConnId conn, Role role) {
  gate_.Drop(conn);
  for (auto& listener : listeners_) listener->Resume();  // a descriptor is free again
  if (role == Role::kWorker && supervisor_) supervisor_->OnDisconnect(conn);
  if (stopping_.on) CheckDrained();
}

// ---------------------------------------------------------------- outbox

std::string* Daemon::Buffer(ConnId conn) {
  PeerSessions::Peer* peer = FindPeer(conn);
  if (!peer || !peer->conn->open()) return nullptr;
  ScheduleFlush();
  if (peer->role == Role::kWorker) {
    // Work for workers does not wait for the store: a task runs while its
    // insert is written (if that fails, its worker is sent `cancel`; if
    // pincerd dies first, it was never accepted).
    if (!peer->to_flush) {
      peer->to_flush = true;
      to_flush_.push_back(conn);
    }
    return &peer->staged;
  }
  return &gate_.Lines(conn, store_->next_take());
}

std::string* Daemon::AnswerBuffer(ConnId conn) {
  PeerSessions::Peer* peer = FindPeer(conn);
  if (!peer || !peer->conn->open()) return nullptr;
  // A worker's answers to its client requests wait like a client's lines.
  ScheduleFlush();
  return &gate_.Lines(conn, store_->next_take());
}

std::string* Daemon::EndBuffer(ConnId conn, int64_t req) {
  PeerSessions::Peer* peer = FindPeer(conn);
  if (!peer || !peer->conn->open()) return nullptr;
  ScheduleFlush();
  return &gate_.EndLines(conn, store_->next_take(), req);
}

std::string* Daemon::ProgressBuffer(ConnId conn, int64_t req) {
  PeerSessions::Peer* peer = FindPeer(conn);
  if (!peer || !peer->conn->open()) return nullptr;
  // Progress is a view, not state (status keeps the latest): a peer that
  // does not read what it is sent misses some rather than piling them up.
  if (peer->backlogged || sessions_->Backlog(*peer) > PeerSessions::kMaxPeerBacklog) {
    return nullptr;
  }
  ScheduleFlush();
  return &gate_.EndLines(conn, store_->next_take(), req);
}

void Daemon::Accepted(ConnId conn, const SubmitAck& ack, std::size_t weight) {
  gate_.Accepted(conn, store_->next_take(), ack, weight);
  batch_acks_.push_back(ack.id);
  ScheduleFlush();
  if (PeerSessions::Peer* peer = FindPeer(conn)) sessions_->CheckBacklog(*peer);
}

void Daemon::Close(ConnId conn) {
  // Only Dispatcher::KillWorker closes connections: a managed worker declared
  // dead (missed heartbeats) has a hung process, which the supervisor replaces.
  if (supervisor_) supervisor_->OnWorkerDead(conn);
  // Its last lines (the heartbeat_timeout error) go out before the close;
  // nothing it is sent after this is written anyway.
  if (PeerSessions::Peer* peer = FindPeer(conn)) {
    Splice(peer->conn->out(), peer->staged);
    peer->conn->CloseAfterFlush();
  }
}

void Daemon::Waiting(ConnId conn, int64_t bytes) {
  PeerSessions::Peer* peer = FindPeer(conn);
  if (!peer) return;
  peer->waiting += bytes;
  // Ends free it once written (OnWritten); a new wait may hold it back.
  if (bytes > 0) sessions_->CheckBacklog(*peer);
}

void Daemon::ScheduleFlush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  // Runs after the handlers already queued: everything one wake-up of the
  // loop produced goes into one store write and one flush of its lines.
  asio::post(io_, [this] { FlushAll(); });
}

void Daemon::FlushAll() {
  flush_scheduled_ = false;
  if (lease_keeper_ && !standby_ && !lease_keeper_->HeldAt(std::chrono::steady_clock::now())) {
    // Paused past its lease: a standby may lead already. Nothing of this
    // turn goes out (tasks to workers included).
    return StepDown(Status("lease_lost", "a whole store.lease (" +
                                             std::to_string(config_.store.lease.count()) +
                                             "ms) passed without a renewal; this pincerd was "
                                             "paused or cut off from the database"));
  }
  if (writer_ && writer_->busy()) {
    // Group commit: while a write is in progress, what comes in joins the
    // write queued behind it (or becomes that write), which the writer
    // starts the moment the one before is done.
    if (store_status_.ok() && !retry_due_ && store_->dirty()) {
      if (writer_->Extend([this](StoreBatch& b) { store_->TakeInto(b); })) {
        flights_.back() = store_->next_take() - 1;
        batch_acks_.clear();
      } else if (flights_.size() < kMaxFlights) {
        StartWrite();
      }
    }
  } else if ((store_status_.ok() && store_->dirty()) || retry_due_) {
    // Persist, then answer. While the store is failing, writes wait for
    // the retry timer: redoing a large pending batch on every loop turn
    // would stall everything else that keeps serving. A retry writes even
    // an empty batch: that checks the store works again.
    if (retry_due_ || !Linger()) {
      linger_since_.reset();
      retry_due_ = false;
      StartWrite();
    }
  } else if (store_status_.ok()) {
    gate_.Durable(store_->next_take());  // nothing is pending: all of it is durable
  } else {
    RefuseAnswers(store_status_);  // submits are not accepted; the rest goes
  }
  FlushWorkers();
  ArmTimer();
  if (stopping_.on) CheckDrained();
}

bool Daemon::Linger() {
  // A submit whose task a worker is running now: its result often comes
  // back within microseconds, and then its insert and its end state share
  // one write (one sync instead of two, and the ack and the end event
  // leave together). Wait for it, but never longer than kLinger.
  // A write that answers many submits goes at once: under load the next
  // batch grows behind it anyway, and a held write leaves the disk idle.
  if (batch_acks_.size() > kMaxLingerAcks) return false;
  const TimePoint now = clock_.Now();
  if (linger_since_ && now - *linger_since_ >= kLinger) return false;
  bool running = false;
  for (TaskId id : batch_acks_) {
    if (dispatcher_->StateOf(id) == TaskState::kRunning) {
      running = true;
      break;
    }
  }
  if (!running) return false;
  if (!linger_since_) {
    linger_since_ = now;
    linger_timer_.expires_at(now + kLinger);
    linger_timer_.async_wait([this](const std::error_code& ec) {
      if (!ec) ScheduleFlush();
    });
  }
  return true;
}

void Daemon::StartWrite() {
  if (!writer_) writer_ = std::make_unique<StoreWriter>(io_, *store_);
  std::unique_ptr<StoreBatch> batch = store_->TakeBatch();
  flights_.push_back(store_->next_take() - 1);
  batch_acks_.clear();
  writer_->Write(std::move(batch), [this](std::unique_ptr<StoreBatch> written, Status st) {
    OnWritten(std::move(written), st);
  });
}

void Daemon::OnWritten(std::unique_ptr<StoreBatch> batch, const Status& st) {
  const uint64_t last_take = flights_.front();
  flights_.pop_front();
  if (st.code() == "lease_lost") return StepDown(st);  // nothing of it was written
  if (st.ok()) {
    if (!store_status_.ok()) {
      spdlog::info("store commits again; accepting submits");
      store_status_ = Status::Ok();
      dispatcher_->SetStoreStatus(store_status_);
      metrics_->SetStoreStatus(store_status_);
    }
    store_->Reuse(std::move(batch));
    gate_.Durable(last_take);
  } else {
    // Pending again, retried with what came since. The writes behind a
    // failed one fail too (unwritten); they go back together, oldest in
    // front.
    failed_.push_back(std::move(batch));
    if (flights_.empty()) {
      for (auto it = failed_.rbegin(); it != failed_.rend(); ++it) store_->GiveBack(std::move(*it));
      failed_.clear();
      writer_->Resume();
    }
    if (store_status_.ok()) {
      OnStoreFailed(st);
    } else {
      spdlog::warn("store still unavailable: {}", st.message());
      ArmStoreRetry();
    }
    RefuseAnswers(st);
  }
  // What came in during the write is the next one.
  ScheduleFlush();
}

void Daemon::RefuseAnswers(const Status& st) {
  gate_.Refuse(st, [this](const SubmitAck& ack) {
    if (!ack.existing) dispatcher_->Forget(ack.id);  // never accepted: gone as if never sent
  });
}

void Daemon::FlushWorkers() {
  for (ConnId id : to_flush_) {
    PeerSessions::Peer* peer = FindPeer(id);
    if (!peer) continue;
    peer->to_flush = false;
    Splice(peer->conn->out(), peer->staged);
    peer->conn->Flush();
    sessions_->CheckBacklog(*peer);
  }
  to_flush_.clear();
}

void Daemon::OnStoreFailed(const Status& st) {
  spdlog::error("store commit failed, refusing submits until it works again: {}", st.message());
  store_status_ = st;
  dispatcher_->SetStoreStatus(st);
  metrics_->SetStoreStatus(st);  // /healthz: 503 until a commit works
  ArmStoreRetry();
}

void Daemon::ArmStoreRetry() {
  store_retry_timer_ = std::make_unique<asio::steady_timer>(io_, std::chrono::seconds(1));
  store_retry_timer_->async_wait([this](const std::error_code& ec) {
    if (ec) return;
    retry_due_ = true;  // the next FlushAll writes the pending changes
    ScheduleFlush();
  });
}

// ---------------------------------------------------------------- timers

void Daemon::ArmTimer() {
  const auto next = dispatcher_->NextDeadline();
  if (!next || (timer_at_ && *timer_at_ <= *next)) return;
  timer_at_ = next;
  timer_.expires_at(*next);
  timer_.async_wait([this](const std::error_code& ec) {
    if (ec) return;
    timer_at_.reset();
    dispatcher_->RunDue();
    ScheduleFlush();  // re-arms it
  });
}

// ------------------------------------------------------- reload, shutdown

}  // namespace pincer
