#include "worker/worker_session.h"

#include <spdlog/spdlog.h>

#include <utility>
#include <variant>

#include "protocol/encode.h"
#include "protocol/peer_encode.h"
#include "worker/result_builder.h"

namespace pincer::worker {
namespace {

// Tasks carry a payload of up to the daemon's frame limit plus the task's
// own fields, so a task line may be a little longer than a frame we send.
constexpr std::size_t kTaskEnvelopeSlack = 1u << 20;

}  // namespace

WorkerSession::WorkerSession(asio::io_context& io, WorkerOptions options, TaskRunner& runner,
                             std::function<double()> unit_random, ExitHandler on_exit)
    : io_(io),
      options_(std::move(options)),
      runner_(runner),
      backoff_(options_.backoff_initial, options_.backoff_max, std::move(unit_random)),
      on_exit_(std::move(on_exit)),
      handshake_timer_(io),
      heartbeat_timer_(io),
      reconnect_timer_(io),
      exit_timer_(io) {
  runner_.SetOnDone(
      [this](const std::string& id, TaskOutcome outcome) { OnTaskDone(id, std::move(outcome)); });
  runner_.SetOnProcessGone([this] { OnProcessGone(); });
  runner_.SetOnStopped([this](const std::string& id) { OnStopped(id); });
  runner_.SetOnProgress([this](const std::string& id, nlohmann::json data) {
    if (conn_ && welcomed_) {
      const auto it = attempts_.find(id);
      conn_->Send(EncodeProgress(
          id, std::move(data),
          it != attempts_.end() ? std::optional<int64_t>(it->second) : std::nullopt));
    }
  });
}

void WorkerSession::Start() {
  started_ = true;
  if (!held_) Connect();
}

void WorkerSession::Hold(const std::string& reason) {
  if (held_ || stopping_ || exited_) return;
  held_ = true;
  reconnect_timer_.cancel();
  if (conn_) {
    spdlog::warn("leaving the daemon until {}", reason);
    DropConnection(reason);
  }
}

void WorkerSession::Release() {
  if (!held_) return;
  held_ = false;
  if (started_ && !conn_ && !stopping_ && !exited_) {
    backoff_.Reset();
    Connect();
  }
}

void WorkerSession::Connect() {
  const uint64_t gen = ++conn_gen_;
  welcomed_ = false;
  // A standby named the leader: there first. Else the next address in turn
  // (DropConnection moves on after a failure).
  target_ = leader_ ? *leader_ : options_.addresses[next_address_ % options_.addresses.size()];
  following_leader_ = leader_.has_value();
  leader_.reset();
  conn_ = LineConnection::Create(io_, options_.max_frame_bytes + kTaskEnvelopeSlack, options_.tls);
  spdlog::debug("connecting to {}", target_.ToString());

  handshake_timer_.expires_after(options_.handshake_timeout);
  handshake_timer_.async_wait([this, gen](std::error_code ec) {
    if (ec || gen != conn_gen_ || welcomed_) return;
    DropConnection("no welcome within " + std::to_string(options_.handshake_timeout.count()) +
                   "ms");
  });

  conn_->Connect(target_, [this, gen](const std::string& error) {
    if (gen != conn_gen_) return;
    if (!error.empty()) {
      DropConnection("cannot connect: " + error);
      return;
    }
    conn_->Start([this](std::string_view line) { OnLine(line); },
                 [this](const std::string& reason) { DropConnection(reason); });
    // The tasks still ours from an earlier connection: the daemon adopts
    // them (or tells us to drop them) rather than starting them again.
    WorkerHello hello = options_.hello;
    hello.lists_tasks = true;
    hello.heartbeat_ack = true;  // a daemon that stops answering is gone
    for (const auto& [id, attempt] : attempts_) {
      if (runner_.IsRunning(id)) hello.tasks.emplace_back(id, attempt);
    }
    for (const auto& [id, unsent] : unsent_) hello.tasks.emplace_back(id, unsent.attempt);
    if (hello.tasks.size() > static_cast<std::size_t>(hello.capacity)) {
      hello.tasks.resize(static_cast<std::size_t>(hello.capacity));  // never more than it runs
    }
    if (!hello.tasks.empty()) {
      spdlog::info("hello lists {} task(s) still held here", hello.tasks.size());
    }
    conn_->Send(EncodeWorkerHello(hello));
  });
}

void WorkerSession::OnLine(std::string_view line) {
  last_heard_ = std::chrono::steady_clock::now();
  DaemonMessage msg = ParseDaemonMessage(line);
  std::visit(
      [this, line](auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, WelcomeMsg>) {
          OnWelcome(m);
        } else if constexpr (std::is_same_v<T, ErrorMsg>) {
          OnDaemonError(m);
        } else if constexpr (std::is_same_v<T, BadMsg>) {
          spdlog::warn("ignoring a bad line from the daemon ({}): {:.200}", m.reason, line);
        } else if constexpr (std::is_same_v<T, HeartbeatAckMsg>) {
          OnHeartbeatAck();
        } else if constexpr (std::is_same_v<T, UnknownMsg>) {
          spdlog::debug("ignoring a message of unknown type \"{}\"", m.type);
        } else if (!welcomed_) {
          spdlog::warn("ignoring a message before welcome: {:.200}", line);
        } else if constexpr (std::is_same_v<T, TaskMsg>) {
          OnTask(m);
        } else if constexpr (std::is_same_v<T, CancelMsg>) {
          OnCancel(m);
        } else if constexpr (std::is_same_v<T, DrainMsg>) {
          OnDrain();
        } else if constexpr (std::is_same_v<T, DrainedMsg>) {
          OnDrained();
        }
      },
      msg);
}

void WorkerSession::OnWelcome(const WelcomeMsg& m) {
  if (welcomed_) {
    spdlog::warn("ignoring a second welcome");
    return;
  }
  welcomed_ = true;
  worker_id_ = m.id;
  heartbeat_interval_ = std::chrono::milliseconds(m.heartbeat_ms);
  max_json_depth_ = m.max_json_depth;
  handshake_timer_.cancel();
  backoff_.Reset();
  failed_attempts_ = 0;
  spdlog::info("connected to {} as worker {} (heartbeat every {}ms)", target_.ToString(),
               worker_id_, m.heartbeat_ms);
  next_heartbeat_ = std::chrono::steady_clock::now();
  last_heard_ = next_heartbeat_;
  SendHeartbeat();
  // Results that waited for a connection: the hello listed their tasks.
  for (auto& [id, unsent] : unsent_) {
    spdlog::info("task {} attempt {}: sending the result kept while disconnected", id,
                 unsent.attempt);
    SendResult(id, std::move(unsent));
  }
  unsent_.clear();
}

void WorkerSession::OnTask(TaskMsg& m) {
  // The daemon never sends more than we announced or anything once we
  // drain; if it does anyway, hand the task straight back rather than
  // overload the machine.
  // A task sent before the daemon read our own `drain` is still ours.
  if ((draining_ && !self_draining_) || stopping_) {
    conn_->Send(EncodeResultFailure(m.id, "worker is draining", /*retryable=*/true));
    return;
  }
  if (runner_.IsRunning(m.id)) {
    spdlog::warn("task {} is already running here; ignoring the duplicate", m.id);
    return;
  }
  if (runner_.running() >= static_cast<std::size_t>(options_.hello.capacity)) {
    conn_->Send(EncodeResultFailure(
        m.id, "worker is at capacity (" + std::to_string(options_.hello.capacity) + ")",
        /*retryable=*/true));
    return;
  }
  spdlog::info("task {} attempt {}: starting", m.id, m.attempt);
  TaskSpec spec{m.id, PayloadToStdin(m.payload, m.payload_text), {}, m.session, m.attempt};
  spec.payload = std::move(m.payload);
  attempts_[m.id] = m.attempt;
  runner_.Start(std::move(spec));
}

void WorkerSession::OnCancel(const CancelMsg& m) {
  const auto it = attempts_.find(m.id);
  if (it != attempts_.end() && m.attempt > 0 && m.attempt != it->second) {
    spdlog::warn("cancel for task {} attempt {}, but attempt {} runs here; ignored", m.id,
                 m.attempt, it->second);
    return;
  }
  const int64_t attempt = it != attempts_.end() ? it->second : m.attempt;
  if (m.reason == "not_adopted") {
    spdlog::warn(
        "task {}: the daemon did not adopt it (it was started elsewhere, ended or is "
        "unknown there); dropping it",
        m.id);
  }
  if (runner_.Cancel(m.id)) {
    spdlog::info("task {} attempt {}: {} by the daemon, stopping it", m.id, attempt,
                 m.reason.empty() ? "cancelled" : m.reason);
    attempts_.erase(m.id);
    cancelled_[m.id] = {attempt, conn_gen_};  // `stopped` once its process is reaped
  } else if (unsent_.erase(m.id) > 0) {
    // Ended while we were disconnected and not adopted: its result goes nowhere.
    conn_->Send(EncodeStopped(m.id, attempt > 0 ? attempt : 1));
  } else if (!cancelled_.count(m.id)) {
    // Nothing of it runs here (it ended as the cancel crossed its result):
    // it is stopped already.
    spdlog::debug("cancel for task {}, which does not run here", m.id);
    conn_->Send(EncodeStopped(m.id, attempt > 0 ? attempt : 1));
  }
}

void WorkerSession::OnStopped(const std::string& id) {
  const auto it = cancelled_.find(id);
  if (it == cancelled_.end()) return;  // stopped by us (shutdown, lost connection)
  const Stopping s = it->second;
  cancelled_.erase(it);
  if (conn_ && welcomed_ && s.conn_gen == conn_gen_) {
    spdlog::info("task {} attempt {}: stopped", id, s.attempt);
    conn_->Send(EncodeStopped(id, s.attempt));
  }
}

void WorkerSession::OnDrain() {
  if (!draining_) {
    spdlog::info("draining: finishing {} task(s), then exiting", runner_.running());
  }
  draining_ = true;
  MaybeFinishDrain();
}

void WorkerSession::OnDrained() {
  if (!self_draining_) return;
  drained_ = true;
  MaybeFinishDrain();
}

void WorkerSession::DrainAndExit() {
  if (stopping_ || exited_ || self_draining_) return;
  if (!conn_ || !welcomed_) {
    Shutdown();
    return;
  }
  spdlog::info("asking the daemon for no new tasks; finishing {} running task(s), then exiting",
               runner_.running());
  self_draining_ = true;
  draining_ = true;
  conn_->Send(EncodeDrain());
}

void WorkerSession::OnDaemonError(const ErrorMsg& m) {
  if (self_draining_ && !drained_ && (m.code == "bad_message" || m.code == "unknown_type")) {
    // A pincerd older than a worker's own drain: finish what we hold and
    // refuse what still comes.
    spdlog::info("the daemon does not take a worker's drain ({}); finishing locally", m.message);
    self_draining_ = false;
    MaybeFinishDrain();
    return;
  }
  if (!welcomed_ && m.code == "not_leader") {
    // A standby: the daemon closes next; we go on to the leader it names,
    // else to our next address (docs/protocol.md, not_leader).
    if (!m.leader.empty() && !following_leader_) {
      if (auto named = client::ParseAddress(m.leader); named.ok()) leader_ = named.value();
    }
    spdlog::info("{} is a standby{}", target_.ToString(),
                 m.leader.empty() ? "" : "; the leader serves on " + m.leader);
  } else if (!welcomed_) {
    // unauthorized / bad_hello: the daemon closes next; we retry with
    // backoff, as the operator may fix the token on the daemon's side.
    spdlog::error("daemon refused the handshake: {}: {}", m.code, m.message);
  } else {
    spdlog::warn("daemon error: {}: {}", m.code, m.message);
  }
}

void WorkerSession::OnTaskDone(const std::string& id, TaskOutcome outcome) {
  std::string line = ResultLine(id, outcome, options_.max_frame_bytes - kAttemptFieldBytes,
                                max_json_depth_, options_.result);
  int64_t attempt = 1;
  if (const auto it = attempts_.find(id); it != attempts_.end()) {
    attempt = it->second;
    AppendAttempt(line, it->second);
    attempts_.erase(it);
  }
  if (Succeeded(outcome)) {
    spdlog::info("task {}: done ({} bytes of output)", id, outcome.stdout_total);
  } else {
    spdlog::warn("task {}: failed: {:.300}", id, DescribeFailure(outcome));
  }
  if (conn_ && welcomed_) {
    SendResult(id, {attempt, std::move(line)});
  } else if (!stopping_ && !exited_) {
    // Kept for the next connection: its hello lists the task.
    unsent_[id] = {attempt, std::move(line)};
  }
  MaybeFinishDrain();
}

void WorkerSession::SendResult(const std::string& id, Unsent result) {
  conn_->Send(result.line);
  unconfirmed_.push_back({id, std::move(result), std::chrono::steady_clock::now()});
  if (unconfirmed_.size() > kMaxUnconfirmed) unconfirmed_.pop_front();
}

void WorkerSession::OnProcessGone() {
  if (stopping_ && runner_.processes() == 0) Exit(0);
  MaybeFinishDrain();
}

void WorkerSession::DropConnection(const std::string& reason) {
  if (conn_) {
    conn_->Close();
    conn_.reset();
  }
  ++conn_gen_;  // orphan the timers of the connection just dropped
  const bool was_welcomed = welcomed_;
  welcomed_ = false;
  handshake_timer_.cancel();
  heartbeat_timer_.cancel();
  if (stopping_ || exited_) return;

  if (runner_.running() > 0 && (held_ || draining_)) {
    // Held: the backend cannot work; draining: we exit. Either way the
    // daemon retries what we held elsewhere.
    spdlog::warn("stopping {} running task(s): the connection was lost", runner_.running());
    runner_.CancelAll();
    attempts_.clear();
    unsent_.clear();
  } else if (was_welcomed) {
    // They run on: the next hello lists them and the daemon (this one or
    // a new leader) adopts them, or tells us to drop them (docs/protocol.md).
    if (runner_.running() > 0) {
      spdlog::warn("keeping {} running task(s) through the reconnect", runner_.running());
    }
    // Results the lost daemon may never have stored go again the same way.
    for (Sent& sent : unconfirmed_) unsent_.insert_or_assign(sent.id, std::move(sent.result));
  }
  unconfirmed_.clear();
  if (draining_) {
    spdlog::info("connection closed while draining ({}); exiting", reason);
    Shutdown();
    return;
  }
  if (held_) return;  // Release connects again
  ++failed_attempts_;
  if (!following_leader_) ++next_address_;
  if (was_welcomed) {
    spdlog::warn("lost the connection to {}: {}", target_.ToString(), reason);
  } else if (failed_attempts_ == 1 || failed_attempts_ % 20 == 0) {
    // Logged once per outage (and now and then after), not every retry.
    spdlog::warn("{}: {} (attempt {}; retrying with backoff)", target_.ToString(), reason,
                 failed_attempts_);
  } else {
    spdlog::debug("{}: {} (attempt {})", target_.ToString(), reason, failed_attempts_);
  }
  ScheduleReconnect();
}

void WorkerSession::ScheduleReconnect() {
  const auto delay = backoff_.Next();
  spdlog::debug("reconnecting in {}ms", delay.count());
  reconnect_timer_.expires_after(delay);
  reconnect_timer_.async_wait([this](std::error_code ec) {
    if (ec || stopping_ || exited_ || held_) return;
    Connect();
  });
}

void WorkerSession::ScheduleHeartbeat() {
  // Scheduled from the previous deadline, not from "now", so heartbeats
  // keep their interval however long a loop iteration took.
  next_heartbeat_ += heartbeat_interval_;
  const auto now = std::chrono::steady_clock::now();
  if (next_heartbeat_ < now) next_heartbeat_ = now;
  heartbeat_timer_.expires_at(next_heartbeat_);
  const uint64_t gen = conn_gen_;
  heartbeat_timer_.async_wait([this, gen](std::error_code ec) {
    if (ec || gen != conn_gen_ || !welcomed_) return;
    SendHeartbeat();
  });
}

void WorkerSession::OnHeartbeatAck() {
  // pincerd has read every line sent before that heartbeat; a result read
  // a whole interval ago is stored (a commit takes milliseconds).
  const auto stored_before = std::chrono::steady_clock::now() - heartbeat_interval_;
  while (!unconfirmed_.empty() && unconfirmed_.front().at < stored_before) {
    unconfirmed_.pop_front();
  }
}

void WorkerSession::SendHeartbeat() {
  const auto now = std::chrono::steady_clock::now();
  // A tick late by half an interval: the loop was busy, and the daemon's
  // answers may be waiting unread. Not a silent daemon.
  const bool late = now - next_heartbeat_ > heartbeat_interval_ / 2;
  if (!late && (now - last_heard_) * 2 > heartbeat_interval_ * 3) {
    // Silent for 1.5 intervals, though it answers each heartbeat within
    // milliseconds: a frozen or cut-off daemon, whose socket may stay open
    // for good.
    DropConnection(
        "no answer from the daemon for " +
        std::to_string(
            std::chrono::duration_cast<std::chrono::milliseconds>(now - last_heard_).count()) +
        "ms (it answers every heartbeat)");
    return;
  }
  conn_->Send(EncodeHeartbeat(sampler_.Sample(std::chrono::steady_clock::now(), runner_.pids())));
  ScheduleHeartbeat();
}

void WorkerSession::MaybeFinishDrain() {
  // Processes, not tasks: a cancelled attempt's process still dying keeps
  // the connection open, so the daemon does not take the close for its
  // `stopped` and start the task elsewhere meanwhile.
  if (!draining_ || finishing_drain_ || stopping_ || runner_.processes() > 0) return;
  if (self_draining_ && !drained_) return;  // the daemon may still send a task
  finishing_drain_ = true;
  spdlog::info("drained; exiting");
  // Bounded: a daemon that stopped reading must not keep us forever.
  exit_timer_.expires_after(options_.kill_grace + std::chrono::seconds(1));
  exit_timer_.async_wait([this](std::error_code ec) {
    if (!ec) Exit(0);
  });
  if (conn_) {
    conn_->CloseAfterFlush([this] { Exit(0); });
  } else {
    Exit(0);
  }
}

void WorkerSession::Shutdown() {
  if (stopping_ || exited_) return;
  stopping_ = true;
  reconnect_timer_.cancel();
  DropConnection("shutting down");
  if (runner_.running() > 0) spdlog::info("stopping {} running task(s)", runner_.running());
  runner_.CancelAll();
  attempts_.clear();
  if (runner_.processes() == 0) {
    Exit(0);
    return;
  }
  // Each task escalates to SIGKILL after the grace; this bounds the wait
  // for processes that do not die even then (the runner's destructor
  // sends a last SIGKILL).
  exit_timer_.expires_after(options_.kill_grace + std::chrono::seconds(1));
  exit_timer_.async_wait([this](std::error_code ec) {
    if (!ec) Exit(0);
  });
}

void WorkerSession::Exit(int code) {
  if (exited_) return;
  exited_ = true;
  handshake_timer_.cancel();
  heartbeat_timer_.cancel();
  reconnect_timer_.cancel();
  exit_timer_.cancel();
  if (conn_) {
    conn_->Close();
    conn_.reset();
  }
  on_exit_(code);
}

}  // namespace pincer::worker
