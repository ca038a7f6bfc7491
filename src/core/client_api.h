// Answers client requests (docs/protocol.md, "Client side"): turns each
// request into dispatcher calls and the result into one answer line. The
// views (task, worker, stats objects) are built here, off the hot path.
#pragma once

#include <functional>

#include <nlohmann/json.hpp>

#include "core/dispatcher.h"
#include "core/outbox.h"
#include "protocol/messages.h"

namespace pincer {

class ClientApi {
 public:
  // Hooks into parts that live outside the core (config file, supervisor).
  using ReloadDone = std::function<void(const Status&)>;
  struct Hooks {
    // Re-reads the config, then calls its argument with the outcome (later,
    // on the loop: the file is read off it).
    std::function<void(std::function<void(const Status&)>)> reload;
    std::function<nlohmann::json()> pools;                        // the pools array
    std::function<void(const Worker&, nlohmann::json&)> worker_extra;  // pid, restarts, ...
    std::function<void(nlohmann::json&)> stats_extra;
    std::function<nlohmann::json()> starting_workers;  // managed, not connected yet
    // An operator drained the worker on this connection (the supervisor
    // replaces a pool's drained process when it exits).
    std::function<void(ConnId)> drained;
    // `pool` and `logs` requests: fill the answer's body or return why not.
    std::function<Status(const PoolReq&, nlohmann::json&)> pool;
    std::function<Status(const LogsReq&, nlohmann::json&)> logs;
  };

  // `dispatcher` and `outbox` must outlive this object.
  ClientApi(Dispatcher& dispatcher, Outbox& outbox, Hooks hooks);

  // REQUIRES: `msg` is a client request (SubmitReq, IdReq, TasksReq,
  // DrainReq, SimpleReq, PoolReq or LogsReq).
  void Handle(ConnId conn, const Message& msg);

  // Answers the submits of this batch once the store has committed it
  // (`store` ok: their acks, and `wait`s registered) or failed to (`store`
  // not ok: store_unavailable, and their new tasks forgotten). The daemon
  // calls it after every commit attempt, before writing any output.
  void FinishBatch(const Status& store);

  // The same in steps, for a commit that runs while the next batch builds
  // up: the acks of a batch are taken when its commit starts and answered
  // when it is done; then (if it committed) the `wait: true` submits get
  // their waiters. Those are answered with the output after the ack: a
  // task may already have ended, in a change still to be committed.
  struct PendingAck {
    ConnId conn;
    int64_t req;
    TaskId id;
    bool existing;
    bool wait;
    std::string warning;  // the answer's `warning`; "" = none
  };
  std::vector<PendingAck> TakeAcks();
  const std::vector<PendingAck>& acks() const { return acks_; }
  // An ack whose connection has gone by now has its `wait` cleared: no
  // waiter is added for a connection that will never read it.
  void AnswerAcks(std::vector<PendingAck>& acks, const Status& store);
  // Adds the `wait: true` acks' waiters (Dispatcher::AddWaiter); for a
  // task that has already ended, `before_end(take)` runs before its end
  // event is sent. One the dispatcher refuses (the connection already
  // waits on that task, or on too many) gets that error for its req, after
  // its ack.
  void AddWaiters(const std::vector<PendingAck>& acks,
                  const std::function<void(uint64_t)>& before_end = nullptr);

  // Appends the task object of `status` and `tasks` (docs/protocol.md).
  // Built as text: the carried values (payload, output, progress) go out
  // exactly as they came in.
  void AppendTaskView(std::string& out, const Task& t);
  nlohmann::json WorkerView(const Worker& w);
  nlohmann::json StatsView();

 private:
  void Submit(ConnId conn, const SubmitReq& req);
  void ById(ConnId conn, const IdReq& req);
  void Tasks(ConnId conn, const TasksReq& req);
  void Simple(ConnId conn, const SimpleReq& req);
  void Ok(ConnId conn, int64_t req, nlohmann::json body);
  void Error(ConnId conn, int64_t req, const Status& status);

  Dispatcher& dispatcher_;
  Outbox& outbox_;
  std::vector<PendingAck> acks_;  // submits of this batch, answered by FinishBatch
  Hooks hooks_;
};

}  // namespace pincer
