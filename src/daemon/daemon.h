// pincerd's I/O shell around the core: it accepts connections, does the
// hello handshake, feeds parsed messages to the dispatcher, commits the
// store and then flushes every connection that has output, once per batch
// of events. One io_context, one thread; nothing here blocks except the
// store's commit (one per batch, by design: persist, then answer).
#pragma once

#include <array>
#include <asio.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "config/config.h"
#include "core/client_api.h"
#include "core/dispatcher.h"
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

  // Re-reads the config file and applies it (SIGHUP, `pincerctl reload`).
  Status Reload();
  // For the supervisor (pool restarts); null before Start. Loop thread.
  Metrics* metrics() { return metrics_.get(); }
  // Stops taking tasks, lets running ones finish (up to the drain timeout),
  // then stops the loop.
  void Shutdown(const std::string& why);

  // Outbox.
  std::string* Buffer(ConnId conn) override;
  void Close(ConnId conn) override;

  // Connection::Handler.
  void BeginLines(Connection& c) override;
  void EndLines(Connection& c) override;
  void OnLine(Connection& c, std::string_view line) override;
  void OnOversizedLine(Connection& c) override;
  void OnClosed(Connection& c) override;
  void OnHandshakeFailed(Connection& c, const std::string& why) override;

 private:
  enum class Role { kNone, kWorker, kClient };
  struct Peer {
    std::shared_ptr<Connection> conn;
    Role role = Role::kNone;
    std::unique_ptr<asio::steady_timer> hello_timer;
    bool dirty = false;
    // This batch's output. Handed to the connection only after the store
    // committed the batch: a write completing mid-batch must not carry an
    // answer that is not yet durable.
    std::string staged;
    bool in_now = false;  // listed in now_peers_
  };
  // A batch handed to the store writer, and the answers it holds back:
  // they go out once its write is done.
  struct Flight {
    uint64_t last_take = 0;  // the last store take its batch holds
    std::vector<ClientApi::PendingAck> acks;
    std::vector<std::pair<ConnId, std::string>> out;  // clients' output
  };
  // Where Buffer() puts output: with the next batch (staged), with a batch
  // being written (answer_flight_), or straight to the connection (the
  // answers of a batch whose write just ended).
  enum class AnswerTo { kStaged, kFlight, kNow };
  // A write in progress and the batch growing behind it.
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
  void FlushAll();
  // Hands the pending changes to the writer as a new batch.
  void StartWrite();
  // The connection's output, written to directly; flushed at the end of
  // OnBatchWritten.
  std::string& NowOut(Peer& peer, ConnId id);
  // Moves the acks and clients' staged output to `f` (workers' output goes
  // out now) and notes the last take in it. Called right after the take.
  void Seal(Flight& f);
  // The output `f` holds for client `conn`, added (in a spare buffer) if new.
  std::string& OutFor(Flight& f, ConnId conn);
  // The store writer finished the oldest batch in flight.
  void OnBatchWritten(std::unique_ptr<StoreBatch> batch, const Status& st);
  // Writes the staged output of workers now (it never waits for a commit)
  // and takes them off dirty_; clients' output stays staged.
  void ReleaseToWorkers();
  // Hands each listed peer's staged output to its connection and writes.
  void Release(std::vector<ConnId>& peers);
  // The store could not commit: refuse submits, retry every second.
  void OnStoreFailed(const Status& st);
  void ArmStoreRetry();
  void ArmTimer();
  void WatchSignals();
  void CheckDrained();
  void StartSupervisor();
  Peer* FindPeer(ConnId id);

  asio::io_context& io_;
  Config config_;
  DaemonOptions options_;
  HeldClock clock_;  // held while the lines of one read are handled
  std::unique_ptr<Store> store_;
  // After store_: stopped (its write finished) before the store goes.
  std::unique_ptr<StoreWriter> writer_;
  std::deque<Flight> flights_;  // oldest first, as the writer finishes them
  // Failed batches, given back to the store once every flight is back.
  std::vector<std::unique_ptr<StoreBatch>> failed_;
  AnswerTo answer_to_ = AnswerTo::kStaged;
  Flight* answer_flight_ = nullptr;  // for AnswerTo::kFlight
  std::vector<ConnId> now_peers_;    // written to directly (AnswerTo::kNow)
  // Buffers of flights' output already sent, kept for their capacity: a
  // fresh one grew by doubling in every batch.
  std::vector<std::string> spare_out_;
  static constexpr std::size_t kMaxSpareOut = 16;
  static constexpr std::size_t kMaxSpareOutBytes = 1 << 20;
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
  std::vector<ConnId> dirty_;
  ParseResult worker_line_, client_line_;  // the last line parsed, per role
  ConnId next_conn_ = 1;
  bool flush_scheduled_ = false;
  Status store_status_;  // the last commit error while the store is failing
  std::unique_ptr<asio::steady_timer> store_retry_timer_;
  asio::steady_timer timer_;
  std::optional<TimePoint> timer_at_;
  asio::signal_set signals_;
  bool stopping_ = false;
  std::unique_ptr<asio::steady_timer> drain_timer_;
  bool drain_expired_ = false;  // past shutdown.drain_timeout: stop with tasks running
  // Declared last: destroyed first, killing its children while the rest still exists.
  std::unique_ptr<SupervisorService> supervisor_;
  int exit_code_ = 0;
};

}  // namespace pincer
