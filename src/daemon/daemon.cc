#include "daemon/daemon.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <fstream>

#include "common/token.h"
#include "config/config_diff.h"
#include "protocol/encode.h"
#include "pincer/version.h"
#include "tls/tls_context.h"

namespace pincer {
namespace {

// The requests that need the admin role when auth.admin_token is set;
// nullptr for the others.
const char* AdminOnly(const Message& msg) {
  if (std::holds_alternative<DrainReq>(msg)) return "drain";
  if (std::holds_alternative<PoolReq>(msg)) return "pool";
  if (auto* s = std::get_if<SimpleReq>(&msg); s && s->op == SimpleOp::kReload) return "reload";
  if (auto* r = std::get_if<IdReq>(&msg); r && r->op == IdOp::kRetry) return "retry";
  return nullptr;
}

// Moves `from` to the end of `to` and leaves it empty; when `to` is empty
// the buffers are swapped, so neither is copied and both keep their
// capacity for the next batch.
void Splice(std::string& to, std::string& from) {
  if (to.empty()) {
    to.swap(from);
  } else {
    to.append(from);
  }
  from.clear();
}

std::vector<std::string> PoolNames(const Config& config) {
  std::vector<std::string> names;
  for (const auto& pool : config.pools) names.push_back(pool.name);
  return names;
}

}  // namespace

Daemon::Daemon(asio::io_context& io, Config config, DaemonOptions options)
    : io_(io),
      config_(std::move(config)),
      options_(std::move(options)),
      linger_timer_(io),
      timer_(io),
      signals_(io) {}

Daemon::~Daemon() {
  // A load still running posts its result to a loop that no longer runs.
  if (reload_thread_.joinable()) reload_thread_.join();
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

  std::size_t recovered = 0;
  Status st = store_->Recover([&](TaskRecord&& rec) {
    dispatcher_->Restore(std::move(rec));
    ++recovered;
  });
  if (!st.ok()) return st;
  if (recovered) {
    spdlog::info("recovered {} tasks ({} queued)", recovered, dispatcher_->stats().queued);
  }

  metrics_ = std::make_unique<Metrics>(io_, *dispatcher_);
  dispatcher_->set_observer(metrics_.get());

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
  api_ = std::make_unique<ClientApi>(*dispatcher_, *this, std::move(hooks));

  if (config_.tls.enabled) {
    if (Status s = LoadTls(config_.tls); !s.ok()) return s;
  }
  auto listen = [this](const std::string& address) -> Status {
    auto listener = std::make_unique<Listener>(io_);
    const bool tcp = address.rfind("unix:", 0) != 0;
    Status s = listener->Open(
        address, [this, tcp](Connection::Socket sock) { Accept(std::move(sock), tcp); });
    if (!s.ok()) return s;
    spdlog::info("listening on {}{}", listener->bound(), tcp && tls_ ? " (TLS)" : "");
    listeners_.push_back(std::move(listener));
    return Status::Ok();
  };
  if (Status s = listen(config_.listen); !s.ok()) return s;
  if (!config_.unix_socket.empty()) {
    if (Status s = listen("unix:" + config_.unix_socket); !s.ok()) return s;
  }
  if (!options_.address_file.empty()) {
    // Written whole under a temporary name, so a reader never sees half.
    const std::string tmp = options_.address_file + ".tmp";
    std::ofstream(tmp) << listeners_.front()->bound() << "\n";
    std::rename(tmp.c_str(), options_.address_file.c_str());
  }
  StartSupervisor();
  if (!config_.metrics_listen.empty()) {
    if (Status s = metrics_->Serve(config_.metrics_listen); !s.ok()) return s;
  }
  WatchSignals();
  ArmTimer();
  metrics_->set_ready(true);
  notifier_ = std::make_unique<SystemdNotifier>(io_, [this] {
    const DispatcherStats& s = dispatcher_->stats();
    return fmt::format("{} workers, {} queued, {} running", dispatcher_->workers().size(), s.queued,
                       s.running);
  });
  notifier_->Ready();
  return Status::Ok();
}

int Daemon::Run() {
  io_.run();
  return exit_code_;
}

// ------------------------------------------------------------ connections

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

void Daemon::Accept(Connection::Socket socket, bool tcp) {
  const ConnId id = next_conn_++;
  // Until its hello, a peer may only send a short line.
  const std::size_t max_line = std::min(kMaxHelloBytes, config_.limits.max_frame_bytes);
  auto conn = std::make_shared<Connection>(std::move(socket), id, max_line, *this,
                                           tcp ? tls_ : nullptr);
  Peer& peer = peers_[id];
  peer.conn = conn;
  if (peers_.size() > config_.limits.max_connections) {
    RefuseAndClose(peer, "too_many_connections",
                   "limits.max_connections = " + std::to_string(config_.limits.max_connections) +
                       " reached");
    return;
  }
  peer.hello_timer = std::make_unique<asio::steady_timer>(io_, config_.limits.hello_timeout);
  peer.hello_timer->async_wait([this, id](const std::error_code& ec) {
    if (ec) return;
    Peer* p = FindPeer(id);
    if (p && p->role == Role::kNone) {
      RefuseAndClose(*p, "hello_timeout", "no hello within limits.hello_timeout");
    }
  });
  conn->Start();
}

Daemon::Peer* Daemon::FindPeer(ConnId id) {
  PeerSlot& slot = peer_cache_[id % peer_cache_.size()];
  if (slot.id == id && slot.peer) return slot.peer;
  auto it = peers_.find(id);
  if (it == peers_.end()) return nullptr;
  slot = {id, &it->second};  // element pointers survive a rehash
  return slot.peer;
}

void Daemon::RefuseAndClose(Peer& peer, std::string_view code, const std::string& message) {
  spdlog::info("connection #{} refused: {}: {}", peer.conn->id(), code, message);
  peer.conn->out().append(EncodeError(code, message));
  peer.conn->CloseAfterFlush();
}

void Daemon::BeginLines(Connection&) { clock_.Hold(); }
void Daemon::EndLines(Connection&) { clock_.Release(); }

void Daemon::OnLine(Connection& c, std::string_view line) {
  Peer* peer = FindPeer(c.id());
  if (!peer) return;
  // A line may change state without writing to anyone (a result nobody
  // waits for): its store update still needs a commit, and a shutdown
  // waiting for the last running task needs CheckDrained. A submit's
  // answer waits for that flush too (the batch's commit).
  ScheduleFlush();
  static_assert(Connection::kLinePadding >= kLinePadding);
  // The connection pads every line. Workers' lines and clients' lines are
  // parsed into messages of their own, so each reuses its buffers.
  ParseResult& parsed = peer->role == Role::kWorker ? worker_line_ : client_line_;
  // Bounded before anything recursive sees it: one line never takes the
  // daemon down, whoever sent it, before its hello or after.
  ParseMessagePaddedInto(line, parsed, config_.limits.max_json_depth);

  if (auto* err = std::get_if<ProtocolError>(&parsed)) {
    if (peer->role == Role::kNone) {
      return RefuseAndClose(*peer, "bad_hello",
                            (err->code == "bad_json" ? "the first line is not a hello: "
                                                     : "the first message must be a hello: ") +
                                err->message);
    }
    if (peer->role == Role::kWorker) dispatcher_->Touch(c.id());
    Send(c.id(), EncodeError(err->code, err->message, err->req));
    return;
  }
  Message& msg = std::get<Message>(parsed);

  if (peer->role == Role::kNone) {
    if (auto* hello = std::get_if<Hello>(&msg)) return OnHello(*peer, *hello);
    return RefuseAndClose(*peer, "bad_hello", "the first message must be a hello");
  }
  if (std::holds_alternative<Hello>(msg)) {
    Send(c.id(), EncodeError("unknown_type", "hello was already received on this connection"));
    return;
  }

  if (peer->role == Role::kWorker) {
    dispatcher_->Touch(c.id());
    if (auto* r = std::get_if<ResultMsg>(&msg)) return dispatcher_->OnResult(c.id(), *r);
    if (auto* p = std::get_if<ProgressMsg>(&msg)) return dispatcher_->OnProgress(c.id(), *p);
    if (auto* h = std::get_if<HeartbeatMsg>(&msg)) return dispatcher_->OnHeartbeat(c.id(), *h);
    if (auto* st = std::get_if<StoppedMsg>(&msg)) return dispatcher_->OnStopped(c.id(), *st);
    if (std::holds_alternative<WorkerDrainMsg>(msg)) return dispatcher_->OnWorkerDrain(c.id());
    Send(c.id(), EncodeError("unknown_type",
                             "workers may send result, progress, stopped, heartbeat and drain",
                             RequestId(msg)));
    return;
  }
  // Client.
  if (std::holds_alternative<ResultMsg>(msg) || std::holds_alternative<ProgressMsg>(msg) ||
      std::holds_alternative<HeartbeatMsg>(msg) || std::holds_alternative<StoppedMsg>(msg)) {
    Send(c.id(), EncodeError("unknown_type", "clients may not send worker messages"));
    return;
  }
  if (std::holds_alternative<WorkerDrainMsg>(msg)) {  // a client's drain lacks its `req`
    Send(c.id(), EncodeError("bad_message", "a request needs an integer field 'req'"));
    return;
  }
  if (!peer->admin && !config_.auth.admin_token.empty()) {
    if (const char* op = AdminOnly(msg)) {
      Send(c.id(), EncodeError("unauthorized",
                               std::string(op) + " needs the admin token (auth.admin_token)",
                               RequestId(msg)));
      return;
    }
  }
  const std::size_t acks = api_->acks().size();
  api_->Handle(c.id(), msg);
  if (api_->acks().size() != acks) {
    // A submit whose answer waits for the batch's commit: it counts in
    // the peer's backlog until then.
    peer->unacked += line.size();
    if (!peer->dirty) {  // so that Seal or Release settle it
      peer->dirty = true;
      dirty_.push_back(c.id());
    }
    CheckBacklog(*peer);
  }
}

void Daemon::OnHello(Peer& peer, const Hello& hello) {
  const ConnId id = peer.conn->id();
  if (hello.proto != kProtocolVersion) {
    return RefuseAndClose(peer, "bad_hello",
                          "unsupported proto " + std::to_string(hello.proto) + " (this pincerd speaks 1)");
  }
  if (hello.role != "worker" && hello.role != "client") {
    return RefuseAndClose(peer, "bad_hello", "role must be \"worker\" or \"client\"");
  }
  const bool worker = hello.role == "worker";
  const AuthConfig& auth = config_.auth;
  // A client with the admin token is an admin; both are compared either way.
  const bool admin = !worker && !auth.admin_token.empty() && TokenMatches(auth.admin_token, hello.token);
  const bool client = TokenMatches(auth.client_token, hello.token);
  if (worker ? !TokenMatches(auth.worker_token, hello.token) : !(admin || client)) {
    return RefuseAndClose(peer, "unauthorized", "wrong token for role " + hello.role);
  }
  if (worker && (hello.capacity < 1 || hello.capacity > kMaxCapacity)) {
    return RefuseAndClose(peer, "bad_hello",
                          "capacity must be from 1 to " + std::to_string(kMaxCapacity));
  }
  if (worker && stopping_) {
    return RefuseAndClose(peer, "shutting_down", "pincerd is shutting down");
  }
  peer.hello_timer.reset();
  peer.conn->set_max_line(config_.limits.max_frame_bytes);
  const int64_t hb_ms = config_.heartbeat.interval.count();
  if (worker) {
    // Worker ids are unique across restarts (the store reserves them).
    std::string wid;
    if (Status st = dispatcher_->NewWorkerId(wid); !st.ok()) {
      return RefuseAndClose(peer, st.code(), st.message());
    }
    peer.role = Role::kWorker;
    peer.wire_id = wid;
    // Welcome first, so it precedes any task the worker is given at once.
    Send(id, EncodeWelcome(wid, hb_ms, config_.limits.max_json_depth));
    // A process of ours: bind this connection to it (pid <-> tasks).
    std::optional<std::string> pool;
    if (supervisor_) pool = supervisor_->OnHello(hello.spawn_id, id);
    dispatcher_->AddWorker(id, hello, pool.value_or(""), wid);
    spdlog::info("worker {} connected: name={} capacity={} skills=[{}]", wid, hello.name,
                 hello.capacity, fmt::join(hello.skills, ","));
  } else {
    peer.role = Role::kClient;
    peer.admin = admin;
    // Client ids have a counter of their own, and name a connection of
    // this run only.
    peer.wire_id = "c" + std::to_string(++last_client_);
    Send(id, EncodeWelcome(peer.wire_id, hb_ms, config_.limits.max_json_depth));
  }
}

void Daemon::OnOversizedLine(Connection& c) {
  Peer* peer = FindPeer(c.id());
  if (!peer) return;
  if (peer->role == Role::kNone) {
    return RefuseAndClose(*peer, "frame_too_large",
                          "a line before hello is longer than " + std::to_string(c.max_line()) +
                              " bytes (a hello is small)");
  }
  RefuseAndClose(*peer, "frame_too_large",
                 "a line is longer than limits.max_frame_bytes = " +
                     std::to_string(config_.limits.max_frame_bytes));
}

void Daemon::OnHandshakeFailed(Connection& c, const std::string& why) {
  spdlog::info("connection #{} refused: TLS handshake failed: {}", c.id(), why);
}

void Daemon::OnClosed(Connection& c) {
  auto it = peers_.find(c.id());
  if (it == peers_.end()) return;
  const Role role = it->second.role;
  if (PeerSlot& slot = peer_cache_[c.id() % peer_cache_.size()]; slot.id == c.id()) slot = {};
  peers_.erase(it);  // the Connection lives on while its handlers finish
  if (role == Role::kClient) dispatcher_->DropWaiters(c.id());
  for (auto& listener : listeners_) listener->Resume();  // a descriptor is free again
  if (role == Role::kWorker) {
    spdlog::info("worker w{} disconnected", c.id());
    dispatcher_->OnDisconnect(c.id(), "worker w" + std::to_string(c.id()) + " disconnected");
    if (supervisor_) supervisor_->OnDisconnect(c.id());
    ScheduleFlush();
  }
  if (stopping_) CheckDrained();
}

void Daemon::OnWritten(Connection& c) {
  // Only called while the peer is held back. It goes on once half of the
  // limit has drained, so it does not flip at every write.
  Peer* peer = FindPeer(c.id());
  if (!peer || !peer->backlogged || Backlog(*peer) > kMaxPeerBacklog / 2) return;
  peer->backlogged = false;
  c.set_notify_written(false);
  spdlog::debug("connection {}: output drained to {} bytes; going on", peer->wire_id, Backlog(*peer));
  if (peer->role == Role::kWorker) {
    dispatcher_->SetBacklogged(c.id(), false);  // fills it up: its tasks go out with the next flush
    ScheduleFlush();
  } else {
    c.ResumeReading();
  }
}

void Daemon::HoldBack(Peer& peer) {
  if (!peer.conn->open()) return;
  peer.backlogged = true;
  Connection& c = *peer.conn;
  c.set_notify_written(true);
  const bool worker = peer.role == Role::kWorker;
  if (worker) {
    dispatcher_->SetBacklogged(c.id(), true);
  } else {
    c.PauseReading();
  }
  const auto level = peer.backlog_logged ? spdlog::level::debug : spdlog::level::info;
  peer.backlog_logged = true;
  spdlog::log(level,
              "connection {} is not reading: pincerd holds {} bytes for it (output, unanswered "
              "submits, waits); {} until that drains",
              peer.wire_id, Backlog(peer), worker ? "no tasks offered to it" : "not reading from it");
}

// ---------------------------------------------------------------- outbox

std::string* Daemon::Buffer(ConnId conn) {
  Peer* peer = FindPeer(conn);
  if (!peer || !peer->conn->open()) return nullptr;
  if (answer_to_ == AnswerTo::kNow) return &NowOut(*peer, conn);  // answers of the batch just written
  if (answer_to_ == AnswerTo::kFlight) {  // with a batch being written
    flight_appended_ = true;                // counted in OnBatchWritten
    return &OutFor(*answer_flight_, conn).out;
  }
  if (!peer->dirty) {
    peer->dirty = true;
    dirty_.push_back(conn);
  }
  ScheduleFlush();
  return &peer->staged;
}

void Daemon::Close(ConnId conn) {
  // Only Dispatcher::KillWorker closes connections: a managed worker declared
  // dead (missed heartbeats) has a hung process, which the supervisor replaces.
  if (supervisor_) supervisor_->OnWorkerDead(conn);
  if (Peer* peer = FindPeer(conn)) {
    // Its last lines (the heartbeat_timeout error) go out before the close;
    // nothing it is sent after this is written anyway.
    Splice(peer->conn->out(), peer->staged);
    peer->conn->CloseAfterFlush();
  }
}

void Daemon::Waiting(ConnId conn, int64_t bytes) {
  Peer* peer = FindPeer(conn);
  if (!peer) return;
  peer->waiting += bytes;
  // Ends free it once written (OnWritten); a new wait may hold it back.
  if (bytes > 0) CheckBacklog(*peer);
}

void Daemon::ScheduleFlush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  // Runs after the handlers already queued: everything one wake-up of the
  // loop produced is committed and written together.
  asio::post(io_, [this] { FlushAll(); });
}

void Daemon::FlushAll() {
  if (writer_ && writer_->busy()) {
    // Group commit: while a write is in progress, what comes in joins the
    // batch waiting behind it (or becomes that batch), which the writer
    // starts the moment the write is done.
    if (store_status_.ok() && !retry_due_ && store_->dirty()) {
      if (writer_->Extend([this](StoreBatch& b) { store_->TakeInto(b); })) {
        Seal(flights_.back());
      } else if (flights_.size() < kMaxFlights) {
        StartWrite();
      }
    }
    // Work for workers does not wait for any write: a task submitted
    // meanwhile runs now, and when its result is back before its batch is
    // written, its insert and its end state are written together.
    ReleaseToWorkers();
    flush_scheduled_ = false;
    return;
  }
  // Persist, then answer. While the store is failing, writes wait for the
  // retry timer: redoing a large pending batch on every loop turn would
  // stall everything else that keeps serving.
  // A retry writes even an empty batch: that checks the store works again.
  if ((store_status_.ok() && store_->dirty()) || retry_due_) {
    if (!retry_due_ && Linger()) {
      ReleaseToWorkers();
      flush_scheduled_ = false;
      return;
    }
    linger_since_.reset();
    retry_due_ = false;
    flush_scheduled_ = false;
    StartWrite();
    ArmTimer();
    return;
  }
  // Nothing to persist (or the store is failing): answer now. Submit
  // answers say "accepted" only while the store commits.
  api_->FinishBatch(store_status_);
  flush_scheduled_ = false;  // after FinishBatch: its answers go out below
  Release(dirty_);
  ArmTimer();
  if (stopping_) CheckDrained();
}

bool Daemon::Linger() {
  // A submit whose task a worker is running now: its result often comes
  // back within microseconds, and then its insert and its end state share
  // one write (one sync instead of two, and the ack and the end event
  // leave together). Wait for it, but never longer than kLinger.
  // A write that answers many submits goes at once: under load the next
  // batch grows behind it anyway, and a held write leaves the disk idle.
  if (api_->acks().size() > kMaxLingerAcks) return false;
  const TimePoint now = clock_.Now();
  if (linger_since_ && now - *linger_since_ >= kLinger) return false;
  bool running = false;
  for (const ClientApi::PendingAck& ack : api_->acks()) {
    if (dispatcher_->StateOf(ack.id) == TaskState::kRunning) {
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

Daemon::HeldOut& Daemon::OutFor(Flight& f, ConnId conn) {
  for (HeldOut& held : f.out) {
    if (held.conn == conn) return held;
  }
  HeldOut& held = f.out.emplace_back();
  held.conn = conn;
  if (!spare_out_.empty()) {
    held.out.swap(spare_out_.back());
    spare_out_.pop_back();
  }
  return held;
}

void Daemon::Count(HeldOut& held) {
  if (held.out.size() == held.counted) return;
  if (Peer* peer = FindPeer(held.conn)) peer->in_flights += held.out.size() - held.counted;
  held.counted = held.out.size();
}

std::string& Daemon::NowOut(Peer& peer, ConnId id) {
  if (!peer.in_now) {
    peer.in_now = true;
    now_peers_.push_back(id);
  }
  return peer.conn->out();
}

void Daemon::StartWrite() {
  if (!writer_) writer_ = std::make_unique<StoreWriter>(io_, *store_);
  std::unique_ptr<StoreBatch> batch = store_->TakeBatch();
  Flight& f = flights_.emplace_back();
  Seal(f);
  writer_->Write(std::move(batch), [this](std::unique_ptr<StoreBatch> written, Status st) {
    OnBatchWritten(std::move(written), st);
  });
}

void Daemon::Seal(Flight& f) {
  // Answers to clients wait for the write: submit acks, end events, every
  // reply (docs/durability.md). Work for workers goes out now: a task runs
  // while its insert is written (if that fails, its worker is sent
  // `cancel`; if pincerd dies first, it was never accepted).
  // The store's changes so far were just taken into its batch.
  f.last_take = store_->next_take() - 1;
  std::vector<ClientApi::PendingAck> acks = api_->TakeAcks();
  if (f.acks.empty()) {
    f.acks.swap(acks);
  } else {
    f.acks.insert(f.acks.end(), acks.begin(), acks.end());
  }
  ReleaseToWorkers();
  for (ConnId id : dirty_) {
    Peer* peer = FindPeer(id);
    if (!peer) continue;
    peer->dirty = false;
    HeldOut& held = OutFor(f, id);
    Splice(held.out, peer->staged);
    peer->in_flights += held.out.size() - held.counted + peer->unacked;
    held.counted = held.out.size();
    held.unacked += peer->unacked;  // f took its acks
    peer->unacked = 0;
    CheckBacklog(*peer);
  }
  dirty_.clear();
}

void Daemon::OnBatchWritten(std::unique_ptr<StoreBatch> batch, const Status& st) {
  Flight f = std::move(flights_.front());
  flights_.pop_front();
  if (!st.ok()) {
    // Pending again, retried with what came since. The batches behind a
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
  } else if (!store_status_.ok()) {
    spdlog::info("store commits again; accepting submits");
    store_status_ = Status::Ok();
    dispatcher_->SetStoreStatus(store_status_);
    metrics_->SetStoreStatus(store_status_);
  }
  if (st.ok()) store_->Reuse(std::move(batch));
  // What was answered while the batch was written goes out first.
  for (HeldOut& held : f.out) {
    if (Peer* peer = FindPeer(held.conn)) {
      peer->in_flights -= held.counted + held.unacked;
      if (peer->conn->open()) Splice(NowOut(*peer, held.conn), held.out);
    }
    if (spare_out_.size() < kMaxSpareOut && held.out.capacity() <= kMaxSpareOutBytes) {
      held.out.clear();
      spare_out_.push_back(std::move(held.out));
    }
  }
  // The batch's submits: accepted, or refused and forgotten.
  answer_to_ = AnswerTo::kNow;
  api_->AnswerAcks(f.acks, st);
  // Then the `wait: true` ones get their waiter. A task that has already
  // ended (its worker got it while its insert was written) has its end
  // event go out now if that end was in this batch too, with the batch
  // being written that holds its end state, or with the next batch if its
  // end state is still pending.
  if (st.ok()) {
    api_->AddWaiters(f.acks, [this, &f](uint64_t take) {
      answer_to_ = AnswerTo::kNow;
      if (take <= f.last_take) return;
      answer_to_ = AnswerTo::kStaged;
      for (Flight& later : flights_) {
        if (take <= later.last_take) {
          answer_to_ = AnswerTo::kFlight;
          answer_flight_ = &later;
          return;
        }
      }
    });
  }
  answer_to_ = AnswerTo::kStaged;
  answer_flight_ = nullptr;
  if (flight_appended_) {
    flight_appended_ = false;
    for (Flight& later : flights_) {
      for (HeldOut& held : later.out) Count(held);
    }
  }
  std::vector<ConnId> now;
  now.swap(now_peers_);
  for (ConnId id : now) {
    Peer* peer = FindPeer(id);
    if (!peer) continue;
    peer->in_now = false;
    peer->conn->Flush();
    CheckBacklog(*peer);
  }
  // What came in during the write is the next batch.
  ScheduleFlush();
}

void Daemon::ReleaseToWorkers() {
  std::vector<ConnId> to_workers;
  std::erase_if(dirty_, [&](ConnId id) {
    const Peer* peer = FindPeer(id);
    if (!peer || peer->role != Role::kWorker) return false;
    to_workers.push_back(id);
    return true;
  });
  Release(to_workers);
}

void Daemon::Release(std::vector<ConnId>& peers) {
  std::vector<ConnId> ids;
  ids.swap(peers);
  for (ConnId id : ids) {
    Peer* peer = FindPeer(id);
    if (!peer) continue;
    peer->dirty = false;
    peer->unacked = 0;  // answered by FinishBatch
    Splice(peer->conn->out(), peer->staged);
    peer->conn->Flush();
    CheckBacklog(*peer);
  }
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
    ScheduleFlush();
    ArmTimer();
  });
}

// ------------------------------------------------------- reload, shutdown

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
  if (reloading_) {
    reload_next_.push_back(std::move(done));
    return;
  }
  std::vector<ReloadDone> waiting;
  waiting.push_back(std::move(done));
  StartReload(std::move(waiting));
}

void Daemon::StartReload(std::vector<ReloadDone> waiting) {
  reloading_ = true;
  if (notifier_) notifier_->Reloading();
  if (reload_thread_.joinable()) reload_thread_.join();  // done: it posted its result
  reload_thread_ = std::thread([this, path = options_.config_path,
                                waiting = std::move(waiting)]() mutable {
    auto loaded = std::make_shared<ConfigResult>();
    try {
      *loaded = LoadConfig(path);
    } catch (const std::exception& e) {  // out of memory, say: refuse, serve on
      loaded->error = ConfigError{path + ": cannot load: " + e.what()};
    }
    asio::post(io_, [this, loaded, waiting = std::move(waiting)] {
      const Status st = ApplyConfig(std::move(*loaded));
      reloading_ = false;
      if (notifier_) notifier_->Reloaded();
      for (const ReloadDone& done : waiting) {
        if (done) done(st);
      }
      if (!reload_next_.empty()) StartReload(std::exchange(reload_next_, {}));
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
      next.store != config_.store) {
    spdlog::warn(
        "reload: listen, unix_socket, metrics_listen, data_dir and store apply at the next start");
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
  if (supervisor_ && !stopping_) supervisor_->Apply(config_.pools);
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
  if (stopping_) return;
  stopping_ = true;
  if (notifier_) notifier_->Stopping();
  metrics_->set_ready(false);
  spdlog::info("{}: shutting down; no new tasks, {} running task(s) may finish", why,
               dispatcher_->stats().running);
  dispatcher_->StopAccepting();
  if (supervisor_) supervisor_->StopRestarts();
  for (auto& l : listeners_) l->Close();
  for (auto& [id, peer] : peers_) {
    if (peer.role == Role::kWorker) Send(id, EncodeDrain());
  }
  drain_timer_ = std::make_unique<asio::steady_timer>(io_, config_.shutdown.drain_timeout);
  drain_timer_->async_wait([this](const std::error_code& ec) {
    if (ec) return;
    spdlog::warn("drain timeout: stopping with {} task(s) still running",
                 dispatcher_->stats().running);
    dispatcher_->CancelRunningForShutdown();
    drain_expired_ = true;
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
  supervisor_ = std::make_unique<SupervisorService>(io_, clock_, std::move(options), std::move(hooks));
  supervisor_->Start(config_.pools);
  metrics_->SetPools(PoolNames(config_));
}

void Daemon::CheckDrained() {
  if (io_.stopped()) return;  // already said bye; closing peers calls back here
  if ((dispatcher_->stats().running > 0 && !drain_expired_) || flush_scheduled_) return;
  if (writer_ && writer_->busy()) return;  // back here once written
  if (store_->dirty() && !store_->Commit().ok()) return;
  // Children go after the tasks: SIGTERM, SIGKILL after stop_grace; the
  // supervisor's `stopped` hook brings us back here once all are reaped.
  if (supervisor_ && !supervisor_->StopAll()) return;
  spdlog::info("all running tasks ended; bye");
  // Closing may call OnClosed at once, which erases from peers_: iterate a copy.
  std::vector<std::shared_ptr<Connection>> conns;
  for (auto& [id, peer] : peers_) conns.push_back(peer.conn);
  if (drain_timer_) drain_timer_->cancel();
  if (store_retry_timer_) store_retry_timer_->cancel();
  signals_.cancel();
  timer_.cancel();
  linger_timer_.cancel();
  io_.stop();
  for (auto& conn : conns) conn->CloseAfterFlush();
}

}  // namespace pincer
