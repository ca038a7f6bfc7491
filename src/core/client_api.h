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
    std::function<nlohmann::json()> pools;                             // the pools array
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

  // Appends the task object of `status` and `tasks` (docs/protocol.md).
  // Built as text: the carried values (payload, output, progress) go out
  // exactly as they came in.
  void AppendTaskView(std::string& out, const Task& t);
  nlohmann::json WorkerView(const Worker& w);
  nlohmann::json StatsView();

 private:
  // What an accepted submit weighs while its answer waits, besides its
  // payload (Outbox::Accepted).
  static constexpr std::size_t kAckWeight = 64;
  void Submit(ConnId conn, const SubmitReq& req);
  void ById(ConnId conn, const IdReq& req);
  void Tasks(ConnId conn, const TasksReq& req);
  void Simple(ConnId conn, const SimpleReq& req);
  void Ok(ConnId conn, int64_t req, nlohmann::json body);
  void Error(ConnId conn, int64_t req, const Status& status);

  Dispatcher& dispatcher_;
  Outbox& outbox_;
  Hooks hooks_;
};

}  // namespace pincer
