#include "daemon/peer_session.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/token.h"
#include "pincer/version.h"
#include "protocol/encode.h"

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

constexpr std::string_view kWorkerMaySend =
    "workers may send result, progress, stopped, heartbeat and drain, "
    "and the requests submit, status, wait, watch, cancel and workers";
constexpr std::string_view kClientMaySend = "clients may not send worker messages";

// Whether a peer of `role` may send a message of this type at all. A line
// it may not send is refused with unknown_type before its fields count.
bool MaySend(PeerSessions::Role role, const LineHead& head) {
  const std::string& t = head.type;
  const bool worker_message =
      t == "result" || t == "progress" || t == "heartbeat" || t == "stopped";
  if (role == PeerSessions::Role::kClient) return !worker_message;
  // `drain` is the worker's own; with an integer `req`, a client's request.
  return worker_message || (t == "drain" && !head.req) || t == "submit" || t == "status" ||
         t == "wait" || t == "watch" || t == "cancel" || t == "workers" || t == "hello";
}

}  // namespace

PeerSessions::PeerSessions(asio::io_context& io, const Config& config, HeldClock& clock,
                           Dispatcher& dispatcher, ClientApi& api, Outbox& out, Hooks hooks)
    : io_(io),
      config_(config),
      clock_(clock),
      dispatcher_(dispatcher),
      api_(api),
      out_(out),
      hooks_(std::move(hooks)) {}

void PeerSessions::Accept(Connection::Socket socket, std::shared_ptr<asio::ssl::context> tls) {
  const ConnId id = next_conn_++;
  // Until its hello, a peer may only send a short line.
  const std::size_t max_line = std::min(kMaxHelloBytes, config_.limits.max_frame_bytes);
  auto conn = std::make_shared<Connection>(std::move(socket), id, max_line, *this, std::move(tls));
  Peer& peer = peers_[id];
  peer.conn = conn;
  if (peers_.size() > config_.limits.max_connections) {
    RefuseAndClose(
        peer, "too_many_connections",
        "limits.max_connections = " + std::to_string(config_.limits.max_connections) + " reached");
    return;
  }
  peer.hello_timer = std::make_unique<asio::steady_timer>(io_, config_.limits.hello_timeout);
  peer.hello_timer->async_wait([this, id](const std::error_code& ec) {
    if (ec) return;
    Peer* p = Find(id);
    if (p && p->role == Role::kNone) {
      RefuseAndClose(*p, "hello_timeout", "no hello within limits.hello_timeout");
    }
  });
  conn->Start();
}

PeerSessions::Peer* PeerSessions::FindSlow(ConnId id) {
  auto it = peers_.find(id);
  if (it == peers_.end()) return nullptr;
  cache_[id % cache_.size()] = {id, &it->second};  // element pointers survive a rehash
  return &it->second;
}

void PeerSessions::RefuseAndClose(Peer& peer, std::string_view code, const std::string& message) {
  spdlog::info("connection #{} refused: {}: {}", peer.conn->id(), code, message);
  peer.conn->out().append(EncodeError(code, message));
  peer.conn->CloseAfterFlush();
}

void PeerSessions::OnLine(Connection& c, std::string_view line) {
  Peer* peer = Find(c.id());
  if (!peer) return;
  // A line may change state without writing to anyone (a result nobody
  // waits for): its store update still needs a commit, and a shutdown
  // waiting for the last running task needs to look again.
  hooks_.changed();
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
    if (peer->role == Role::kWorker) dispatcher_.Touch(c.id());
    if (err->code == "bad_message" || err->code == "invalid_request") {
      if (LineHead head = ReadLineHead(line); !head.type.empty() && !MaySend(peer->role, head)) {
        return RefuseType(c.id(), peer->role, err->req);
      }
    }
    out_.Send(c.id(), EncodeError(err->code, err->message, err->req));
    return;
  }
  const Message& msg = std::get<Message>(parsed);
  if (peer->role == Role::kNone) {
    if (auto* hello = std::get_if<Hello>(&msg)) return OnHello(*peer, *hello);
    return RefuseAndClose(*peer, "bad_hello", "the first message must be a hello");
  }
  if (std::holds_alternative<Hello>(msg)) {
    out_.Send(c.id(), EncodeError("unknown_type", "hello was already received on this connection"));
    return;
  }
  if (peer->role == Role::kWorker) return OnWorkerMessage(c.id(), msg);
  OnClientMessage(*peer, msg, line);
}

void PeerSessions::RefuseType(ConnId id, Role role, std::optional<int64_t> req) {
  out_.Send(id, EncodeError("unknown_type", role == Role::kWorker ? kWorkerMaySend : kClientMaySend,
                            req));
}

void PeerSessions::OnWorkerMessage(ConnId id, const Message& msg) {
  dispatcher_.Touch(id);
  if (auto* r = std::get_if<ResultMsg>(&msg)) return dispatcher_.OnResult(id, *r);
  if (auto* p = std::get_if<ProgressMsg>(&msg)) return dispatcher_.OnProgress(id, *p);
  if (auto* h = std::get_if<HeartbeatMsg>(&msg)) return dispatcher_.OnHeartbeat(id, *h);
  if (auto* st = std::get_if<StoppedMsg>(&msg)) return dispatcher_.OnStopped(id, *st);
  if (std::holds_alternative<WorkerDrainMsg>(msg)) return dispatcher_.OnWorkerDrain(id);
  // The client requests a worker may send on its own connection (to
  // submit subtasks and follow them): answered as a client's are.
  const auto* by_id = std::get_if<IdReq>(&msg);
  const auto* simple = std::get_if<SimpleReq>(&msg);
  if (std::holds_alternative<SubmitReq>(msg) || (by_id && by_id->op != IdOp::kRetry) ||
      (simple && simple->op == SimpleOp::kWorkers)) {
    return api_.Handle(id, msg);
  }
  RefuseType(id, Role::kWorker, RequestId(msg));
}

void PeerSessions::OnClientMessage(Peer& peer, const Message& msg, std::string_view line) {
  const ConnId id = peer.conn->id();
  if (std::holds_alternative<ResultMsg>(msg) || std::holds_alternative<ProgressMsg>(msg) ||
      std::holds_alternative<HeartbeatMsg>(msg) || std::holds_alternative<StoppedMsg>(msg)) {
    // Worker messages keep no `req`: the line is read again for it.
    return RefuseType(id, Role::kClient, ReadLineHead(line).req);
  }
  if (std::holds_alternative<WorkerDrainMsg>(msg)) {  // a client's drain lacks its `req`
    out_.Send(id, EncodeError("bad_message", "a request needs an integer field 'req'"));
    return;
  }
  if (!peer.admin && !config_.auth.admin_token.empty()) {
    if (const char* op = AdminOnly(msg)) {
      out_.Send(id, EncodeError("unauthorized",
                                std::string(op) + " needs the admin token (auth.admin_token)",
                                RequestId(msg)));
      return;
    }
  }
  api_.Handle(id, msg);
}

void PeerSessions::OnHello(Peer& peer, const Hello& hello) {
  const ConnId id = peer.conn->id();
  if (std::string leader; hooks_.standby && hooks_.standby(leader)) {
    spdlog::debug("connection #{} refused: not_leader (leader: {})", id,
                  leader.empty() ? "unknown" : leader);
    peer.conn->out().append(EncodeNotLeader(
        leader.empty() ? "this pincerd is a standby; the leader is not known"
                       : "this pincerd is a standby; the leader serves on " + leader,
        leader));
    peer.conn->CloseAfterFlush();
    return;
  }
  if (hello.proto != kProtocolVersion) {
    return RefuseAndClose(
        peer, "bad_hello",
        "unsupported proto " + std::to_string(hello.proto) + " (this pincerd speaks 1)");
  }
  if (hello.role != "worker" && hello.role != "client") {
    return RefuseAndClose(peer, "bad_hello", "role must be \"worker\" or \"client\"");
  }
  const bool worker = hello.role == "worker";
  const AuthConfig& auth = config_.auth;
  // A client with the admin token is an admin; both are compared either way.
  const bool admin =
      !worker && !auth.admin_token.empty() && TokenMatches(auth.admin_token, hello.token);
  const bool client = TokenMatches(auth.client_token, hello.token);
  if (worker ? !TokenMatches(auth.worker_token, hello.token) : !(admin || client)) {
    return RefuseAndClose(peer, "unauthorized", "wrong token for role " + hello.role);
  }
  if (worker && (hello.capacity < 1 || hello.capacity > kMaxCapacity)) {
    return RefuseAndClose(peer, "bad_hello",
                          "capacity must be from 1 to " + std::to_string(kMaxCapacity));
  }
  if (worker && refuse_workers_) {
    return RefuseAndClose(peer, "shutting_down", "pincerd is shutting down");
  }
  peer.hello_timer.reset();
  peer.conn->set_max_line(config_.limits.max_frame_bytes);
  const int64_t hb_ms = config_.heartbeat.interval.count();
  if (worker) {
    // Worker ids are unique across restarts (the store reserves them).
    std::string wid;
    if (Status st = dispatcher_.NewWorkerId(wid); !st.ok()) {
      return RefuseAndClose(peer, st.code(), st.message());
    }
    peer.role = Role::kWorker;
    peer.wire_id = wid;
    // Welcome first, so it precedes any task the worker is given at once.
    out_.Send(id, EncodeWelcome(wid, hb_ms, config_.limits.max_json_depth));
    // A process of ours: bind this connection to it (pid <-> tasks).
    const std::optional<std::string> pool = hooks_.bind_worker(hello.spawn_id, id);
    dispatcher_.AddWorker(id, hello, pool.value_or(""), wid);
    spdlog::info("worker {} connected: name={} capacity={} skills=[{}]", wid, hello.name,
                 hello.capacity, fmt::join(hello.skills, ","));
  } else {
    peer.role = Role::kClient;
    peer.admin = admin;
    // Client ids have a counter of their own, and name a connection of
    // this run only.
    peer.wire_id = "c" + std::to_string(++last_client_);
    out_.Send(id, EncodeWelcome(peer.wire_id, hb_ms, config_.limits.max_json_depth));
  }
}

void PeerSessions::OnOversizedLine(Connection& c) {
  Peer* peer = Find(c.id());
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

void PeerSessions::OnHandshakeFailed(Connection& c, const std::string& why) {
  spdlog::info("connection #{} refused: TLS handshake failed: {}", c.id(), why);
}

void PeerSessions::OnClosed(Connection& c) {
  auto it = peers_.find(c.id());
  if (it == peers_.end()) return;
  const Role role = it->second.role;
  // The id its welcome gave ("w7"), not the connection's number.
  const std::string wire_id = std::move(it->second.wire_id);
  if (PeerSlot& slot = cache_[c.id() % cache_.size()]; slot.id == c.id()) slot = {};
  peers_.erase(it);                 // the Connection lives on while its handlers finish
  dispatcher_.DropWaiters(c.id());  // a worker may wait for tasks too
  if (role == Role::kWorker) {
    spdlog::info("worker {} disconnected", wire_id);
    dispatcher_.OnDisconnect(c.id(), "worker " + wire_id + " disconnected");
    hooks_.changed();
  }
  hooks_.closed(c.id(), role);
}

void PeerSessions::OnWritten(Connection& c) {
  // Only called while the peer is held back. It goes on once half of the
  // limit has drained, so it does not flip at every write.
  Peer* peer = Find(c.id());
  if (!peer || !peer->backlogged || Backlog(*peer) > kMaxPeerBacklog / 2) return;
  peer->backlogged = false;
  c.set_notify_written(false);
  spdlog::debug("connection {}: output drained to {} bytes; going on", peer->wire_id,
                Backlog(*peer));
  if (peer->role == Role::kWorker) {
    dispatcher_.SetBacklogged(c.id(), false);  // fills it up: its tasks go out this turn
    hooks_.changed();
  } else {
    c.ResumeReading();
  }
}

void PeerSessions::HoldBack(Peer& peer) {
  if (!peer.conn->open()) return;
  peer.backlogged = true;
  Connection& c = *peer.conn;
  c.set_notify_written(true);
  const bool worker = peer.role == Role::kWorker;
  if (worker) {
    dispatcher_.SetBacklogged(c.id(), true);
  } else {
    c.PauseReading();
  }
  const auto level = peer.backlog_logged ? spdlog::level::debug : spdlog::level::info;
  peer.backlog_logged = true;
  spdlog::log(level,
              "connection {} is not reading: pincerd holds {} bytes for it (output, unanswered "
              "submits, waits); {} until that drains",
              peer.wire_id, Backlog(peer),
              worker ? "no tasks offered to it" : "not reading from it");
}

}  // namespace pincer
