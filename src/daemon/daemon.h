// pincerd: the core (dispatcher, client API) wired to the world. One
// io_context, one thread; nothing here blocks.
//
// - peer_session.cc: connections, their hello and what they send.
// - daemon.cc (this class): the end of every loop turn (FlushAll). The
//   store's pending changes go to the writer thread (group commit), lines
//   to workers go out at once, and lines to clients wait in the answer
//   gate until the store take they need is durable (persist, then answer).
// - lifecycle.cc: signals, reload, shutdown and the supervisor's wiring.
#pragma once

#include <asio.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "config/config.h"
#include "core/client_api.h"
#include "core/dispatcher.h"
#include "daemon/answer_gate.h"
#include "daemon/data_dir_lock.h"
#include "daemon/lease_keeper.h"
#include "daemon/notify.h"
#include "daemon/peer_session.h"
#include "daemon/store_writer.h"
#include "metrics/metrics.h"
#include "net/listener.h"
#include "store/store.h"
#include "supervisor/supervisor_service.h"

namespace pincer {

// pincerd's exit code when it stepped down: it lost the lease of a
// postgres store (docs/high-availability.md). A restart (systemd's
// Restart=always) brings it back as a standby.
inline constexpr int kSteppedDownExitCode = 4;

struct DaemonOptions {
  std::string config_path;   // "" = built-in defaults, no reload
  std::string address_file;  // write the bound TCP address here once listening
};

class Daemon final : public Outbox {
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

  // Outbox: lines to workers go out at the end of the loop turn, lines to
  // clients through gate_.
  std::string* Buffer(ConnId conn) override;
  std::string* AnswerBuffer(ConnId conn) override;
  std::string* EndBuffer(ConnId conn, int64_t req) override;
  std::string* ProgressBuffer(ConnId conn, int64_t req) override;
  void Accepted(ConnId conn, const SubmitAck& ack, std::size_t weight) override;
  void Close(ConnId conn) override;
  void Waiting(ConnId conn, int64_t bytes) override;

 private:
  using Role = PeerSessions::Role;

  // ---- daemon.cc: the loop turn and the store ----
  // `tcp`: from the `listen` address, which speaks TLS when tls_ is set.
  Status Listen(const std::string& address);
  // Builds tls_ anew from `tls` (the files are read again: rotation).
  Status LoadTls(const TlsConfig& tls);
  void OnClosed(ConnId conn, Role role);
  // Null before Start has made the sessions (recovery may send nothing).
  PeerSessions::Peer* FindPeer(ConnId id) { return sessions_ ? sessions_->Find(id) : nullptr; }
  // FlushAll runs once the handlers queued now have run: everything one
  // wake-up of the loop produced is written and answered together.
  void ScheduleFlush();
  // The end of every loop turn that did something: starts or extends a
  // write, or answers at once; writes workers' lines; arms the deadline
  // timer (the one place it is armed).
  void FlushAll();
  // The longest a write is held for the results of the tasks whose
  // submits it carries (docs/durability.md).
  static constexpr std::chrono::microseconds kLinger{250};
  // Only a write answering at most this many submits is held.
  static constexpr std::size_t kMaxLingerAcks = 8;
  // True while the next write is held for the batch's results.
  bool Linger();
  // The most writes in progress: one being written, the others queued
  // behind it (the last one still growing).
  static constexpr std::size_t kMaxFlights = 4;
  // Hands the pending changes to the writer as a new write.
  void StartWrite();
  // The writer finished the oldest write in flight.
  void OnWritten(std::unique_ptr<StoreBatch> batch, const Status& st);
  // The store failed to write: the submits held in gate_ are refused
  // (their tasks forgotten), the rest of what it holds goes out.
  void RefuseAnswers(const Status& st);
  // The store could not commit: refuse submits, retry every second.
  void OnStoreFailed(const Status& st);
  void ArmStoreRetry();
  void ArmTimer();
  // Writes the lines appended for workers this turn.
  void FlushWorkers();

  // ---- daemon.cc: leading (docs/high-availability.md) ----
  // Loads the stored tasks into the dispatcher.
  Status Recover();
  Status Recover(std::size_t& recovered);
  // With the postgres store: asks for the lease (once, now); standby_ says
  // whether it was taken. Then the keeper goes on from there.
  Status AskForLease();
  // The keeper took the lease: recover, then serve.
  void OnLeaseAcquired(int64_t epoch);
  // The lease is gone (or a write was fenced off): stop serving at once,
  // answer nothing more, exit kSteppedDownExitCode.
  void StepDown(const Status& why);
  // Stops the loop's timers and signals and the loop itself, and closes
  // every connection: after what it was sent is written (`flush`, a clean
  // stop), or at once (a step-down: held answers never committed).
  void EndLoop(bool flush);
  // What a leader serves beyond hellos (the pools) and says it is ready.
  void StartLeading();

  // ---- lifecycle.cc ----
  void WatchSignals();
  void StartReload(std::vector<ReloadDone> waiting);
  Status ApplyConfig(ConfigResult loaded);
  void StartSupervisor();
  // While stopping: once no task runs (or the drain timeout passed) and
  // everything is written, stops the pools' processes, then the loop.
  void CheckDrained();

  asio::io_context& io_;
  Config config_;
  DaemonOptions options_;
  HeldClock clock_;            // held while the lines of one read are handled
  DataDirLock data_dir_lock_;  // before the store: released after it closes
  std::unique_ptr<Store> store_;
  // After store_: stopped (its write finished) before the store goes.
  std::unique_ptr<StoreWriter> writer_;
  // The last store take of each write in flight, oldest first, as the
  // writer finishes them.
  std::deque<uint64_t> flights_;
  // Failed batches, given back to the store once every flight is back.
  std::vector<std::unique_ptr<StoreBatch>> failed_;
  Status store_status_;     // the last write error while the store is failing
  bool retry_due_ = false;  // the store retry timer fired
  std::unique_ptr<asio::steady_timer> store_retry_timer_;
  // Lines to clients, each held until the store take it needs is durable.
  AnswerGate gate_;
  // The tasks of this turn's accepted submits, not yet taken into a write
  // (Linger), and since when the write waits for them.
  std::vector<TaskId> batch_acks_;
  std::optional<TimePoint> linger_since_;
  asio::steady_timer linger_timer_;
  std::vector<ConnId> to_flush_;  // workers with lines appended this turn
  bool flush_scheduled_ = false;
  asio::steady_timer timer_;  // the dispatcher's next deadline
  std::optional<TimePoint> timer_at_;

  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<ClientApi> api_;
  std::unique_ptr<Metrics> metrics_;  // the dispatcher's observer; before it in teardown
  std::unique_ptr<SystemdNotifier> notifier_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  // For new connections on `listen`; null without `tls`. A reload replaces
  // it; connections made before keep the one they were made with.
  std::shared_ptr<asio::ssl::context> tls_;
  std::unique_ptr<PeerSessions> sessions_;

  asio::signal_set signals_;
  struct Stopping {
    bool on = false;
    std::unique_ptr<asio::steady_timer> drain_timer;
    bool drain_expired = false;  // past shutdown.drain_timeout: stop with tasks running
  } stopping_;
  // Reloads: the one loading (on `thread`) and those asked for since.
  struct Reloads {
    bool loading = false;
    std::vector<ReloadDone> next;
    std::thread thread;
  } reloads_;
  // The postgres store's lease; null with other stores.
  std::unique_ptr<LeaseKeeper> lease_keeper_;
  std::string lease_holder_;
  int64_t lease_epoch_ = 0;  // the lease taken at start (0: none)
  std::chrono::steady_clock::time_point lease_asked_at_;
  bool standby_ = false;        // waiting for the lease: hellos get not_leader
  std::string leader_address_;  // while standby_: the leader's, "" unknown
  std::string own_address_;     // the address this pincerd advertises
  // Declared last: destroyed first, killing its children while the rest still exists.
  std::unique_ptr<SupervisorService> supervisor_;
  int exit_code_ = 0;
};

}  // namespace pincer
