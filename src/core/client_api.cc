#include "core/client_api.h"

#include "common/json_text.h"
#include "protocol/encode.h"

namespace pincer {

using namespace std::string_view_literals;
namespace {

using nlohmann::json;

json RawOrNull(const std::string& raw) {
  if (raw.empty()) return nullptr;
  return json::parse(raw, nullptr, false);
}
json StrOrNull(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }
void AppendMsOrNull(std::string& out, int64_t ms) {
  if (ms) {
    AppendInt(out, ms);
  } else {
    out.append("null"sv);
  }
}

}  // namespace

ClientApi::ClientApi(Dispatcher& dispatcher, Outbox& outbox, Hooks hooks)
    : dispatcher_(dispatcher), outbox_(outbox), hooks_(std::move(hooks)) {}

void ClientApi::Handle(ConnId conn, const Message& msg) {
  if (auto* s = std::get_if<SubmitReq>(&msg)) return Submit(conn, *s);
  if (auto* r = std::get_if<IdReq>(&msg)) return ById(conn, *r);
  if (auto* t = std::get_if<TasksReq>(&msg)) return Tasks(conn, *t);
  if (auto* d = std::get_if<DrainReq>(&msg)) {
    Status st = dispatcher_.Drain(d->worker);
    if (!st.ok()) return Error(conn, d->req, st);
    const Worker* w = dispatcher_.workers().FindByName(d->worker);
    return Ok(conn, d->req, {{"worker", w ? w->id_str : d->worker}, {"state", "draining"}});
  }
  if (auto* s = std::get_if<SimpleReq>(&msg)) return Simple(conn, *s);
}

void ClientApi::Submit(ConnId conn, const SubmitReq& req) {
  // Refused before the task exists. Submits of one batch not yet waiting
  // can still pass it; AddWaiter holds the bound for them.
  if (req.wait && dispatcher_.WaitsOf(conn) >= Dispatcher::kMaxWaitsPerConnection) {
    return Error(
        conn, req.req,
        Status("too_many_waits", "this connection already waits for " +
                                     std::to_string(Dispatcher::kMaxWaitsPerConnection) +
                                     " tasks, the most one connection may: submit without wait"));
  }
  auto outcome = dispatcher_.Submit(req);
  if (!outcome.status.ok()) return Error(conn, req.req, outcome.status);
  // Answered after the store commit (FinishBatch): accepted means durable.
  acks_.push_back({conn, req.req, outcome.task->rec.id, outcome.existing, req.wait});
}

void ClientApi::FinishBatch(const Status& store) {
  std::vector<PendingAck> acks = TakeAcks();
  AnswerAcks(acks, store);
  if (store.ok()) AddWaiters(acks);
}

std::vector<ClientApi::PendingAck> ClientApi::TakeAcks() {
  std::vector<PendingAck> acks;
  acks.swap(acks_);
  return acks;
}

void ClientApi::AnswerAcks(std::vector<PendingAck>& acks, const Status& store) {
  for (PendingAck& a : acks) {
    if (!store.ok()) {
      Error(a.conn, a.req, Status("store_unavailable", "not accepted: " + store.message()));
      if (!a.existing) dispatcher_.Forget(a.id);
      continue;
    }
    // The hot path: built by hand, no DOM.
    if (std::string* out = outbox_.Buffer(a.conn)) {
      out->append(R"({"type":"ok","req":)"sv);
      AppendInt(*out, a.req);
      out->append(R"(,"id":"t)"sv);
      AppendInt(*out, static_cast<int64_t>(a.id));
      out->append(a.existing ? R"(","existing":true})" "\n"sv : R"(","existing":false})" "\n"sv);
    } else {
      a.wait = false;  // the connection is gone
    }
  }
}

void ClientApi::AddWaiters(const std::vector<PendingAck>& acks,
                           const std::function<void(uint64_t)>& before_end) {
  for (const PendingAck& a : acks) {
    if (!a.wait) continue;
    Status st = dispatcher_.AddWaiter(a.id, a.conn, a.req, before_end);
    if (!st.ok()) Error(a.conn, a.req, st);
  }
}

void ClientApi::ById(ConnId conn, const IdReq& req) {
  const TaskId id = ParseTaskId(req.id);
  const Task* t = dispatcher_.FindTask(id);
  if (!t && req.op != IdOp::kCancel && req.op != IdOp::kRetry) {
    return Error(conn, req.req, Status("not_found", "no task " + req.id));
  }
  switch (req.op) {
    case IdOp::kStatus: {
      std::string* out = outbox_.Buffer(conn);
      if (!out) return;
      out->append(R"({"type":"ok","req":)"sv);
      AppendInt(*out, req.req);
      out->append(R"(,"task":)"sv);
      AppendTaskView(*out, *t);
      out->append("}\n"sv);
      return;
    }
    case IdOp::kWait: {
      Status st = dispatcher_.AddWaiter(id, conn, req.req);
      if (!st.ok()) Error(conn, req.req, st);
      return;
    }
    case IdOp::kCancel: {
      Status st = t ? dispatcher_.Cancel(id) : Status("not_found", "no task " + req.id);
      if (!st.ok()) return Error(conn, req.req, st);
      return Ok(conn, req.req, {{"id", req.id}, {"state", "cancelled"}});
    }
    case IdOp::kRetry: {
      Status st = t ? dispatcher_.Retry(id) : Status("not_found", "no task " + req.id);
      if (!st.ok()) return Error(conn, req.req, st);
      return Ok(conn, req.req, {{"id", req.id}, {"state", "queued"}});
    }
  }
}

void ClientApi::Tasks(ConnId conn, const TasksReq& req) {
  TaskState filter{};
  const bool filtered = !req.state.empty();
  if (filtered && !ParseTaskState(req.state, filter)) {
    return Error(conn, req.req,
                 Status("invalid_request", "unknown state '" + req.state +
                                               "' (queued, running, succeeded, failed, "
                                               "cancelled, timed_out)"));
  }
  const std::size_t limit = req.limit > 0 ? static_cast<std::size_t>(req.limit) : 1000;
  std::string* out = outbox_.Buffer(conn);
  if (!out) return;
  out->append(R"({"type":"ok","req":)"sv);
  AppendInt(*out, req.req);
  out->append(R"(,"tasks":[)"sv);
  std::size_t listed = 0;
  dispatcher_.ForEachTask(
      [&](const Task& t) {  // in id order
        if (listed) out->push_back(',');
        AppendTaskView(*out, t);
        return ++listed < limit;
      },
      filtered ? std::optional<TaskState>(filter) : std::nullopt);
  out->append("]}\n"sv);
}

void ClientApi::Simple(ConnId conn, const SimpleReq& req) {
  switch (req.op) {
    case SimpleOp::kWorkers: {
      std::vector<const Worker*> sorted;
      for (const auto& [id, w] : dispatcher_.workers().all()) sorted.push_back(w.get());
      std::sort(sorted.begin(), sorted.end(),
                [](const Worker* a, const Worker* b) { return a->id < b->id; });
      json list = json::array();
      for (const Worker* w : sorted) list.push_back(WorkerView(*w));
      if (hooks_.starting_workers) {
        for (auto& starting : hooks_.starting_workers()) list.push_back(std::move(starting));
      }
      return Ok(conn, req.req, {{"workers", std::move(list)}});
    }
    case SimpleOp::kStats:
      return Ok(conn, req.req, {{"stats", StatsView()}});
    case SimpleOp::kReload: {
      if (!hooks_.reload) {
        return Error(conn, req.req, Status("reload_failed", "this pincerd has no config file"));
      }
      // Answered once the file is loaded and applied (or refused); a
      // connection gone by then is skipped by the outbox.
      hooks_.reload([this, conn, id = req.req](const Status& st) {
        if (!st.ok()) return Error(conn, id, st);
        Ok(conn, id, json::object());
      });
      return;
    }
    case SimpleOp::kPools:
      return Ok(conn, req.req, {{"pools", hooks_.pools ? hooks_.pools() : json::array()}});
  }
}

void ClientApi::AppendTaskView(std::string& out, const Task& t) {
  const TaskRecord& r = t.rec;
  out.append(R"({"id":)"sv);
  AppendJsonString(out, t.id_string());
  out.append(R"(,"state":")"sv);
  out.append(TaskStateName(r.state));
  out.append(R"(","skills":)"sv);
  AppendJsonStringArray(out, r.skills);
  out.append(R"(,"payload":)"sv);
  AppendRawOrNull(out, r.payload);
  out.append(R"(,"priority":)"sv);
  AppendInt(out, r.priority);
  out.append(R"(,"session":)"sv);
  AppendStringOrNull(out, r.session);
  out.append(R"(,"key":)"sv);
  AppendStringOrNull(out, r.key);
  out.append(R"(,"attempts":)"sv);
  AppendInt(out, r.attempts);
  out.append(R"(,"max_attempts":)"sv);
  AppendInt(out, r.max_attempts);
  out.append(R"(,"timeout_ms":)"sv);
  AppendInt(out, r.timeout_ms);
  out.append(R"(,"worker":)"sv);
  AppendStringOrNull(out, r.worker);
  out.append(R"(,"output":)"sv);
  AppendRawOrNull(out, r.output);
  out.append(R"(,"error":)"sv);
  AppendStringOrNull(out, r.state == TaskState::kSucceeded ? std::string_view() : r.error);
  out.append(R"(,"errors":[)"sv);
  for (std::size_t i = 0; i < r.errors.size(); ++i) {
    const AttemptError& e = r.errors[i];
    if (i) out.push_back(',');
    out.append(R"({"attempt":)"sv);
    AppendInt(out, e.attempt);
    out.append(R"(,"worker":)"sv);
    AppendStringOrNull(out, e.worker);
    out.append(R"(,"error":)"sv);
    AppendJsonString(out, e.error);
    out.push_back('}');
  }
  out.append(R"(],"progress":)"sv);
  AppendRawOrNull(out, t.progress);
  if (r.state == TaskState::kQueued) {
    const Why why = dispatcher_.WaitReason(t);
    out.append(R"(,"why":)"sv);
    AppendJsonString(out, why.text);
    out.append(R"(,"why_code":")"sv);
    out.append(WhyCodeName(why.code));
    out.push_back('"');
  }
  if (t.retry_at_ms) {
    out.append(R"(,"retry_at_ms":)"sv);
    AppendInt(out, t.retry_at_ms);
  }
  out.append(R"(,"created_ms":)"sv);
  AppendInt(out, r.created_ms);
  out.append(R"(,"started_ms":)"sv);
  AppendMsOrNull(out, r.started_ms);
  out.append(R"(,"ended_ms":)"sv);
  AppendMsOrNull(out, r.ended_ms);
  out.push_back('}');
}

json ClientApi::WorkerView(const Worker& w) {
  json load = json::object();
  if (w.cpu >= 0) load["cpu"] = w.cpu;
  if (w.rss_bytes >= 0) load["rss_bytes"] = w.rss_bytes;
  json v = {{"id", w.id_str},
            {"name", w.name},
            {"skills", w.skills},
            {"capacity", w.capacity},
            {"inflight", w.inflight()},
            {"state", WorkerStateName(w.state)},
            {"backlogged", w.backlogged},
            {"completed", w.completed},
            {"failed", w.failed},
            {"pool", StrOrNull(w.pool)},
            {"labels", w.labels.empty() ? json::object() : RawOrNull(w.labels)},
            {"load", std::move(load)},
            {"connected_ms", w.connected_ms}};
  if (hooks_.worker_extra) hooks_.worker_extra(w, v);
  return v;
}

json ClientApi::StatsView() {
  const DispatcherStats& s = dispatcher_.stats();
  json v = {{"queued", s.queued},
            {"running", s.running},
            {"succeeded", s.succeeded},
            {"failed", s.failed},
            {"cancelled", s.cancelled},
            {"timed_out", s.timed_out},
            {"submitted", s.submitted},
            {"workers", dispatcher_.workers().size()},
            {"unroutable", dispatcher_.Unroutable()}};
  if (hooks_.stats_extra) hooks_.stats_extra(v);
  return v;
}

void ClientApi::Ok(ConnId conn, int64_t req, json body) {
  std::string* out = outbox_.Buffer(conn);
  if (!out) return;
  json msg = {{"type", "ok"}, {"req", req}};
  msg.update(body);
  out->append(msg.dump(-1, ' ', false, json::error_handler_t::replace));
  out->push_back('\n');
}

void ClientApi::Error(ConnId conn, int64_t req, const Status& status) {
  outbox_.Send(conn, EncodeError(status.code(), status.message(), req));
}

}  // namespace pincer
