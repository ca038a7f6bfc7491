// pincerd's connections, one session each: the hello handshake (protocol,
// role, token, capacity), what each role may send, and how much pincerd
// holds for a peer (its backlog). Lines are parsed here and handed on: a
// worker's to the dispatcher, a client's requests to the client API.
// Answers go out through the Outbox (the daemon), never from here, except
// the error that closes a connection (RefuseAndClose: a refused hello, a
// line too long), written straight to it.
//
// Threading: the event loop's thread.
#pragma once

#include <array>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/clock.h"
#include "config/config.h"
#include "core/client_api.h"
#include "core/dispatcher.h"
#include "core/outbox.h"
#include "net/connection.h"
#include "protocol/messages.h"

namespace pincer {

class PeerSessions final : public Connection::Handler {
 public:
  enum class Role { kNone, kWorker, kClient };
  struct Peer {
    std::shared_ptr<Connection> conn;
    Role role = Role::kNone;
    bool admin = false;   // a client that said hello with auth.admin_token
    std::string wire_id;  // the id its welcome gave ("c1", "w101"); "" before
    std::unique_ptr<asio::steady_timer> hello_timer;
    // A worker's lines of this loop turn, handed to its connection at the
    // end of the turn: one write per turn, not one per completed write.
    std::string staged;
    bool to_flush = false;  // listed for the end of the turn (staged is not empty)
    // What its waits for tasks' ends weigh (Outbox::Waiting): a client
    // may not pile up waits without bound either.
    int64_t waiting = 0;
    // Held back for its backlog (kMaxPeerBacklog): a client is not read
    // from, a worker is offered no tasks.
    bool backlogged = false;
    bool backlog_logged = false;  // said so at info once; later at debug
  };

  // What the sessions need from the rest of pincerd.
  struct Hooks {
    // Something happened that the end of the loop turn must see (a store
    // change to commit, output to write, a shutdown waiting to finish).
    std::function<void()> changed;
    // A worker said hello with this spawn id: the pool whose process it
    // is, if it is one of pincerd's.
    std::function<std::optional<std::string>(const std::string& spawn_id, ConnId)> bind_worker;
    // A connection is gone (the dispatcher has already heard of it).
    std::function<void(ConnId, Role)> closed;
    // What pincerd holds for `conn` besides its connection's buffers
    // (answers waiting for the store).
    std::function<std::size_t(ConnId)> held;
    // True while this pincerd is a standby (docs/high-availability.md):
    // every hello is answered not_leader, naming `leader` when it is known.
    std::function<bool(std::string& leader)> standby;
  };

  // The longest line accepted before a connection's hello (a hello is
  // small; a peer that has not authenticated may not make pincerd buffer
  // a whole frame). Lower when limits.max_frame_bytes is.
  static constexpr std::size_t kMaxHelloBytes = 64 * 1024;
  // The most output pincerd keeps for one peer (answers waiting for the
  // store, output queued on its connection, its waits) before it holds
  // that peer back: a client is no longer read from, a worker is offered
  // no tasks, until the output drains below half of it.
  static constexpr std::size_t kMaxPeerBacklog = 4 * 1024 * 1024;

  // Every reference must outlive the sessions; `config` is read at each
  // use (a reload changes it in place).
  PeerSessions(asio::io_context& io, const Config& config, HeldClock& clock, Dispatcher& dispatcher,
               ClientApi& api, Outbox& out, Hooks hooks);

  // A new connection; `tls` for one that speaks TLS.
  void Accept(Connection::Socket socket, std::shared_ptr<asio::ssl::context> tls);
  Peer* Find(ConnId id) {
    PeerSlot& slot = cache_[id % cache_.size()];
    if (slot.id == id && slot.peer) return slot.peer;
    return FindSlow(id);
  }
  std::size_t size() const { return peers_.size(); }
  // Shutdown: workers that say hello now are refused.
  void RefuseWorkers() { refuse_workers_ = true; }
  // Calls fn(ConnId, Peer&) for every connection.
  template <typename F>
  void ForEach(F&& fn) {
    for (auto& [id, peer] : peers_) fn(id, peer);
  }

  // Output pincerd keeps for `peer`, wherever it waits.
  std::size_t Backlog(const Peer& peer) const {
    return hooks_.held(peer.conn->id()) + peer.staged.size() + peer.conn->pending_out() +
           static_cast<std::size_t>(std::max<int64_t>(peer.waiting, 0));
  }
  // Holds `peer` back once its backlog passes kMaxPeerBacklog; it goes on
  // (OnWritten) once below half. Inline: it runs for every submit.
  void CheckBacklog(Peer& peer) {
    if (!peer.backlogged && Backlog(peer) > kMaxPeerBacklog) HoldBack(peer);
  }

  // Connection::Handler.
  void BeginLines(Connection&) override { clock_.Hold(); }
  void EndLines(Connection&) override { clock_.Release(); }
  void OnLine(Connection& c, std::string_view line) override;
  void OnOversizedLine(Connection& c) override;
  void OnClosed(Connection& c) override;
  void OnWritten(Connection& c) override;
  void OnHandshakeFailed(Connection& c, const std::string& why) override;

 private:
  Peer* FindSlow(ConnId id);
  void OnHello(Peer& peer, const Hello& hello);
  void OnWorkerMessage(ConnId id, const Message& msg);
  void OnClientMessage(Peer& peer, const Message& msg, std::string_view line);
  // unknown_type for a message `role` may not send, naming what it may.
  void RefuseType(ConnId id, Role role, std::optional<int64_t> req);
  // Writes the error straight to the connection and closes it.
  void RefuseAndClose(Peer& peer, std::string_view code, const std::string& message);
  void HoldBack(Peer& peer);

  asio::io_context& io_;
  const Config& config_;
  HeldClock& clock_;  // held while the lines of one read are handled
  Dispatcher& dispatcher_;
  ClientApi& api_;
  Outbox& out_;
  Hooks hooks_;
  std::unordered_map<ConnId, Peer> peers_;
  // Peers found lately, by id modulo the size: the busy connections (a
  // client and its workers) are looked up for every line and every answer.
  struct PeerSlot {
    ConnId id = 0;
    Peer* peer = nullptr;
  };
  std::array<PeerSlot, 64> cache_{};
  ParseResult worker_line_, client_line_;  // the last line parsed, per role
  ConnId next_conn_ = 1;
  uint64_t last_client_ = 0;  // client ids: "c1", "c2"... (per run)
  bool refuse_workers_ = false;
};

}  // namespace pincer
