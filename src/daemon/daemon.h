// pincerd's I/O shell around the core: it accepts connections, does the
// hello handshake, feeds parsed messages to the dispatcher, commits the
// store and then flushes every connection that has output, once per batch
// of events. One io_context, one thread; nothing here blocks except the
// store's commit (one per batch, by design: persist, then answer).
#pragma once

#include <algorithm>
#include <array>
#include <asio.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "config/config.h"
#include "core/client_api.h"
#include "core/dispatcher.h"
#include "daemon/answer_gate.h"
#include "daemon/data_dir_lock.h"
#include "daemon/notify.h"
#include "daemon/store_writer.h"
#include "metrics/metrics.h"
#include "net/connection.h"
#include "net/listener.h"
#include "store/store.h"
#include "supervisor/supervisor_service.h"

namespace pincer {

struct DaemonOptions {
  std::string config_path;   // "" = built-in defaults, no reload
  std::string address_file;  // write the bound TCP address here once listening
};

class Daemon final : public Connection::Handler, public Outbox {
 public:
  Daemon(asio::io_context& io, Config config, DaemonOptions options);
  ~Daemon() override;

  // Opens the store, recovers, listens. An error means: do not run.
  Status Start();
  // Runs until shut down. Returns the process exit code.
  int Run();

  // Re-reads the config file and applies it (SIGHUP, `pincerctl reload`);
  // then `done` (if any) gets the outcome, on the loop. The file is read
  // and parsed on a thread of its own, so that a hostile file (as big and
  // deep as the loader allows) never stalls the loop; a reload asked for
  // while one is loading runs after it, on the file as it is then.
  using ReloadDone = std::function<void(const Status&)>;
  void Reload(ReloadDone done = nullptr);
  // For the supervisor (pool restarts); null before Start. Loop thread.
  Metrics* metrics() { return metrics_.get(); }
  // Stops taking tasks, lets running ones finish (up to the drain timeout),
  // then stops the loop.
  void Shutdown(const std::string& why);

  // Outbox.
  std::string* Buffer(ConnId conn) override;
  std::string* EndBuffer(ConnId conn, int64_t req) override;
  void Accepted(ConnId conn, const SubmitAck& ack, std::size_t weight) override;
  void Close(ConnId conn) override;
  void Waiting(ConnId conn, int64_t bytes) override;

  // Connection::Handler.
  void BeginLines(Connection& c) override;
  void EndLines(Connection& c) override;
  void OnLine(Connection& c, std::string_view line) override;
  void OnOversizedLine(Connection& c) override;
  void OnClosed(Connection& c) override;
  void OnWritten(Connection& c) override;

  // The longest line accepted before a connection's hello (a hello is
  // small; a peer that has not authenticated may not make pincerd buffer
  // a whole frame). Lower when limits.max_frame_bytes is.
  static constexpr std::size_t kMaxHelloBytes = 64 * 1024;
  // The most output pincerd keeps for one peer (staged, held for a store
  // write, queued on its connection) before it holds that peer back: a
  // client is no longer read from, a worker is offered no tasks, until
  // the output drains below it.
  static constexpr std::size_t kMaxPeerBacklog = 4 * 1024 * 1024;
  void OnHandshakeFailed(Connection& c, const std::string& why) override;

 private:
  enum class Role { kNone, kWorker, kClient };
  struct Peer {
    std::shared_ptr<Connection> conn;
    Role role = Role::kNone;
    bool admin = false;  // a client that said hello with auth.admin_token
    std::string wire_id;  // the id its welcome gave ("c1", "w101"); "" before
    std::unique_ptr<asio::steady_timer> hello_timer;
    bool to_flush = false;  // a worker's lines were appended this turn (listed in to_flush_)
    // What its waits for tasks' ends weigh (Outbox::Waiting): a client
    // may not pile up waits without bound either.
    int64_t waiting = 0;
    // Held back for its backlog (kMaxPeerBacklog): a client is not read
    // from, a worker is offered no tasks.
    bool backlogged = false;
    bool backlog_logged = false;  // said so at info once; later at debug
  };
  // The most writes in progress: one being written, the others queued
  // behind it (the last one still growing).
  static constexpr std::size_t kMaxFlights = 4;

  // `tcp`: from the `listen` address, which speaks TLS when tls_ is set.
  void Accept(Connection::Socket socket, bool tcp);
  // Builds tls_ anew from `tls` (the files are read again: rotation).
  Status LoadTls(const TlsConfig& tls);
  void OnHello(Peer& peer, const Hello& hello);
  void RefuseAndClose(Peer& peer, std::string_view code, const std::string& message);
  void ScheduleFlush();
  // The longest a write is held for the results of the tasks whose
  // submits it carries (docs/durability.md).
  static constexpr std::chrono::microseconds kLinger{250};
  // Only a write answering at most this many submits is held.
  static constexpr std::size_t kMaxLingerAcks = 8;
  // True while the next write is held for the batch's results.
  bool Linger();
  // The end of every loop turn that did something: starts or extends a
  // write, or answers at once, and writes workers' lines.
  void FlushAll();
  // Hands the pending changes to the writer as a new write.
  void StartWrite();
  // The output pincerd keeps for `peer`, wherever it waits.
  std::size_t Backlog(const Peer& peer) const {
    return gate_.Held(peer.conn->id()) + peer.conn->pending_out() +
           static_cast<std::size_t>(std::max<int64_t>(peer.waiting, 0));
  }
  // Holds `peer` back once its backlog passes kMaxPeerBacklog; OnWritten
  // lets it go once it is below again. Inline: it runs for every submit.
  void CheckBacklog(Peer& peer) {
    if (!peer.backlogged && Backlog(peer) > kMaxPeerBacklog) HoldBack(peer);
  }
  void HoldBack(Peer& peer);
  // The store writer finished the oldest write in flight.
  void OnBatchWritten(std::unique_ptr<StoreBatch> batch, const Status& st);
  // The store failed to write: the submits held in gate_ are refused
  // (their tasks forgotten), the rest of what it holds goes out.
  void RefuseAnswers(const Status& st);
  // Writes the lines appended for workers this turn.
  void FlushWorkers();
  // The store could not commit: refuse submits, retry every second.
  void OnStoreFailed(const Status& st);
  void ArmStoreRetry();
  void ArmTimer();
  void WatchSignals();
  void StartReload(std::vector<ReloadDone> waiting);
  Status ApplyConfig(ConfigResult loaded);
  void CheckDrained();
  void StartSupervisor();
  Peer* FindPeer(ConnId id);

  asio::io_context& io_;
  Config config_;
  DaemonOptions options_;
  HeldClock clock_;  // held while the lines of one read are handled
  DataDirLock data_dir_lock_;  // before the store: released after it closes
  std::unique_ptr<Store> store_;
  // After store_: stopped (its write finished) before the store goes.
  std::unique_ptr<StoreWriter> writer_;
  // The last store take of each write in flight, oldest first, as the
  // writer finishes them.
  std::deque<uint64_t> flights_;
  // Failed batches, given back to the store once every flight is back.
  std::vector<std::unique_ptr<StoreBatch>> failed_;
  // Lines to clients, each held until the store take it needs is durable.
  AnswerGate gate_;
  // The tasks of this turn's accepted submits, not yet taken into a write
  // (Linger).
  std::vector<TaskId> batch_acks_;
  bool retry_due_ = false;                          // the store retry timer fired
  // Holding the next write for the batch's running tasks (since when).
  std::optional<TimePoint> linger_since_;
  asio::steady_timer linger_timer_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<ClientApi> api_;
  std::unique_ptr<Metrics> metrics_;  // the dispatcher's observer; before it in teardown
  std::unique_ptr<SystemdNotifier> notifier_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  // For new connections on `listen`; null without `tls`. A reload replaces
  // it; connections made before keep the one they were made with.
  std::shared_ptr<asio::ssl::context> tls_;
  std::unordered_map<ConnId, Peer> peers_;
  // Peers found lately, by id modulo the size: the busy connections (a
  // client and its workers) are looked up for every line and every answer.
  struct PeerSlot {
    ConnId id = 0;
    Peer* peer = nullptr;
  };
  std::array<PeerSlot, 64> peer_cache_{};
  std::vector<ConnId> to_flush_;  // workers with lines appended this turn
  ParseResult worker_line_, client_line_;  // the last line parsed, per role
  ConnId next_conn_ = 1;
  bool flush_scheduled_ = false;
  Status store_status_;  // the last commit error while the store is failing
  std::unique_ptr<asio::steady_timer> store_retry_timer_;
  asio::steady_timer timer_;
  std::optional<TimePoint> timer_at_;
  asio::signal_set signals_;
  bool stopping_ = false;
  uint64_t last_client_ = 0;  // client ids: "c1", "c2"... (per run)
  std::unique_ptr<asio::steady_timer> drain_timer_;
  bool drain_expired_ = false;  // past shutdown.drain_timeout: stop with tasks running
  // Reloads: the one loading (on reload_thread_) and those asked for since.
  bool reloading_ = false;
  std::vector<ReloadDone> reload_next_;
  std::thread reload_thread_;
  // Declared last: destroyed first, killing its children while the rest still exists.
  std::unique_ptr<SupervisorService> supervisor_;
  int exit_code_ = 0;
};

}  // namespace pincer
