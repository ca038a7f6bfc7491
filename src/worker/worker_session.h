// The worker's side of the protocol over time: connect, hello, heartbeats,
// tasks in and results out, cancel and drain, and reconnecting with backoff
// whenever the daemon goes away. Single-threaded: everything runs on the
// io_context it is given.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/backoff.h"
#include "protocol/daemon_messages.h"
#include "worker/line_connection.h"
#include "worker/load_sampler.h"
#include "worker/task_runner.h"
#include "worker/worker_options.h"

namespace pincer::worker {

class WorkerSession {
 public:
  // Called once, when the worker is done (drained, or stopped by a
  // signal); the caller stops the loop.
  using ExitHandler = std::function<void(int exit_code)>;

  // REQUIRES: `io` and `runner` outlive this session and the loop stops
  // (on_exit) before the session is destroyed. `unit_random` returns
  // values in [0, 1) for the reconnect jitter.
  WorkerSession(asio::io_context& io, WorkerOptions options, TaskRunner& runner,
                std::function<double()> unit_random, ExitHandler on_exit);

  void Start();

  // The first SIGTERM/SIGINT: send the daemon our own `drain`, run the
  // tasks we hold (and any it sent before it read the drain) to their end,
  // and exit 0 once it answers `drained` and they are done. Without a
  // connection, Shutdown.
  void DrainAndExit();

  // A second SIGTERM/SIGINT: drop the connection (the daemon requeues what we
  // held), stop every task's processes and exit 0 once they are gone.
  void Shutdown();

  // Keeps the worker away from the daemon while its backend cannot take
  // work (pincer-worker --openai while its endpoint does not answer): the
  // connection is dropped, so the daemon requeues what it held and sends
  // nothing new, and no connection is made until Release. May be called
  // before Start.
  void Hold(const std::string& reason);
  void Release();

 private:
  void Connect();
  void OnLine(std::string_view line);
  void OnWelcome(const WelcomeMsg& m);
  void OnTask(TaskMsg& m);
  void OnCancel(const CancelMsg& m);
  void OnDrain();
  void OnDrained();
  void OnDaemonError(const ErrorMsg& m);
  void OnTaskDone(const std::string& id, TaskOutcome outcome);
  void OnProcessGone();
  void OnStopped(const std::string& id);
  void DropConnection(const std::string& reason);
  void ScheduleReconnect();
  void ScheduleHeartbeat();
  void SendHeartbeat();
  void OnHeartbeatAck();
  void MaybeFinishDrain();
  void Exit(int code);

  asio::io_context& io_;
  WorkerOptions options_;
  TaskRunner& runner_;
  Backoff backoff_;
  LoadSampler sampler_;
  ExitHandler on_exit_;

  std::shared_ptr<LineConnection> conn_;
  // Bumped for every connection attempt; timer handlers scheduled for an
  // earlier connection see a different value and do nothing.
  uint64_t conn_gen_ = 0;
  bool welcomed_ = false;
  // The address dialled now: a standby's leader (leader_, once), else
  // options_.addresses[next_address_ % size], which moves on after each
  // failed or lost connection.
  client::Address target_;
  std::optional<client::Address> leader_;
  bool following_leader_ = false;
  std::size_t next_address_ = 0;
  std::string worker_id_;
  std::chrono::milliseconds heartbeat_interval_{5000};
  int max_json_depth_ = kDefaultMaxJsonDepth;  // from the daemon's welcome
  std::chrono::steady_clock::time_point next_heartbeat_;
  int failed_attempts_ = 0;
  // The attempt of each running task, named in its progress and result.
  std::unordered_map<std::string, int64_t> attempts_;
  // Tasks cancelled by the daemon whose process is not gone yet: their
  // attempt and the connection (conn_gen_) that cancelled them. `stopped`
  // goes out when the process is gone, on that connection only.
  struct Stopping {
    int64_t attempt;
    uint64_t conn_gen;
  };
  std::unordered_map<std::string, Stopping> cancelled_;
  // Results of tasks that ended while no daemon was connected: their
  // attempt and result line, listed in the next hello's `tasks` (the
  // daemon adopts the attempt) and sent once it welcomes us.
  struct Unsent {
    int64_t attempt;
    std::string line;
  };
  std::unordered_map<std::string, Unsent> unsent_;
  // Sends a result line and keeps it in unconfirmed_ (below).
  void SendResult(const std::string& id, Unsent result);
  // Results sent on this connection that pincerd may not have stored yet
  // (sent less than a heartbeat interval before its last heartbeat_ack, or
  // after it), oldest first. If the connection is lost they become unsent_
  // again: a daemon that froze or died never read or stored them, and the
  // next one adopts their attempts; one that did store them tells us to
  // drop them (not_adopted).
  struct Sent {
    std::string id;
    Unsent result;
    std::chrono::steady_clock::time_point at;
  };
  std::deque<Sent> unconfirmed_;
  static constexpr std::size_t kMaxUnconfirmed = 4096;
  // When the daemon last sent anything: one silent for 1.5 heartbeat
  // intervals is gone (it answers every heartbeat).
  std::chrono::steady_clock::time_point last_heard_;

  bool started_ = false;
  bool held_ = false;
  bool draining_ = false;
  bool self_draining_ = false;  // we sent `drain`: waiting for `drained`
  bool drained_ = false;
  bool finishing_drain_ = false;
  bool stopping_ = false;
  bool exited_ = false;

  asio::steady_timer handshake_timer_;
  asio::steady_timer heartbeat_timer_;
  asio::steady_timer reconnect_timer_;
  asio::steady_timer exit_timer_;
};

}  // namespace pincer::worker
