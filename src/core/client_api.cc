#include "core/client_api.h"

#include <algorithm>

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
// A number as nlohmann writes it (shortest text that reads back the same).
void AppendNumber(std::string& out, double v) { out.append(json(v).dump()); }
json UsageJson(const TaskUsage& u, bool with_model) {
  json v = {{"input", u.input}, {"output", u.output}, {"total", u.total}, {"cost", u.cost}};
  if (with_model) v["model"] = StrOrNull(u.model);
  return v;
}
json UsageByName(const UsageBook::ByName& by) {
  json v = json::object();
  for (const auto& [name, u] : by) v[name] = UsageJson(u, false);
  return v;
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
    if (w && hooks_.drained) hooks_.drained(w->id);
    return Ok(conn, d->req, {{"worker", w ? w->id_str : d->worker}, {"state", "draining"}});
  }
  if (auto* s = std::get_if<SimpleReq>(&msg)) return Simple(conn, *s);
  if (auto* p = std::get_if<PoolReq>(&msg)) {
    json body = json::object();
    Status st = hooks_.pool ? hooks_.pool(*p, body)
                            : Status("not_found", "no pool named '" + p->pool + "'");
    if (!st.ok()) return Error(conn, p->req, st);
    return Ok(conn, p->req, {{"pool", std::move(body)}});
  }
  if (auto* l = std::get_if<LogsReq>(&msg)) {
    json body = json::object();
    Status st = hooks_.logs ? hooks_.logs(*l, body)
                            : Status("not_found", "no pool named '" + l->pool + "'");
    if (!st.ok()) return Error(conn, l->req, st);
    return Ok(conn, l->req, std::move(body));
  }
}

void ClientApi::Submit(ConnId conn, const SubmitReq& req) {
  // Refused before the task exists (AddWaiter below could refuse it only
  // after accepting the task).
  if (req.wait && dispatcher_.WaitsOf(conn) >= Dispatcher::kMaxWaitsPerConnection) {
    return Error(
        conn, req.req,
        Status("too_many_waits", "this connection already waits for " +
                                     std::to_string(Dispatcher::kMaxWaitsPerConnection) +
                                     " tasks, the most one connection may: submit without wait"));
  }
  auto outcome = dispatcher_.Submit(req);
  if (!outcome.status.ok()) return Error(conn, req.req, outcome.status);
  // Answered once the task is stored: accepted means durable.
  const Task& t = *outcome.task;
  outbox_.Accepted(conn, {req.req, t.rec.id, outcome.existing, std::move(outcome.warning)},
                   t.rec.payload.size() + kAckWeight);
  if (req.wait) {
    // Its `end` follows the `ok`: the task's end state is stored with the
    // same write as its insert or a later one.
    if (Status st = dispatcher_.AddWaiter(t.rec.id, conn, req.req); !st.ok()) {
      Error(conn, req.req, st);
    }
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
  TaskState only{};
  const bool by_state = !req.state.empty();
  if (by_state && !ParseTaskState(req.state, only)) {
    return Error(conn, req.req,
                 Status("invalid_request", "unknown state '" + req.state +
                                               "' (queued, running, succeeded, failed, "
                                               "cancelled, timed_out)"));
  }
  if (!req.order.empty() && req.order != "oldest" && req.order != "newest") {
    return Error(conn, req.req,
                 Status("invalid_request", "unknown order '" + req.order + "' (oldest, newest)"));
  }
  const bool newest = req.order == "newest";
  TaskId after = 0;
  if (!req.after.empty() && (after = ParseTaskId(req.after)) == 0) {
    return Error(conn, req.req,
                 Status("invalid_request", "after: '" + req.after + "' is not a task id"));
  }
  // Filters that need the whole record: an ended task is read back only
  // for them (or to be listed).
  const bool deep = !req.skill.empty() || !req.worker.empty() || !req.session.empty();
  auto matches = [&](const Task& t) {
    const TaskRecord& r = t.rec;
    if (!req.worker.empty() && r.worker != req.worker) return false;
    if (!req.session.empty() && r.session != req.session) return false;
    return req.skill.empty() ||
           std::find(r.skills.begin(), r.skills.end(), req.skill) != r.skills.end();
  };
  const std::size_t limit = static_cast<std::size_t>(req.limit);
  std::string* out = outbox_.Buffer(conn);
  if (!out) return;
  out->append(R"({"type":"ok","req":)"sv);
  AppendInt(*out, req.req);
  out->append(R"(,"tasks":[)"sv);
  std::size_t listed = 0;
  int64_t total = 0;  // every task the filters match, listed or not
  bool more = false;  // some of them lie past the last one listed
  TaskId last = 0;
  dispatcher_.ForEachTaskState(newest, [&](TaskId id, TaskState state) {
    if (by_state && state != only) return true;
    const bool past = after == 0 || (newest ? id < after : id > after);
    const bool want = past && listed < limit;
    const Task* t = nullptr;
    if (deep || want) {
      t = dispatcher_.FindTask(id);
      if (t == nullptr || (deep && !matches(*t))) return true;
    }
    ++total;
    if (want) {
      if (listed++) out->push_back(',');
      AppendTaskView(*out, *t);
      last = id;
    } else if (past) {
      more = true;
    }
    return true;
  });
  out->append(R"(],"total":)"sv);
  AppendInt(*out, total);
  out->append(R"(,"next":)"sv);
  if (more) {
    AppendJsonString(*out, TaskIdString(last));
  } else {
    out->append("null"sv);
  }
  out->append("}\n"sv);
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
  out.append(R"(,"usage":)"sv);
  if (r.usage.empty()) {
    out.append("null"sv);
  } else {
    out.append(R"({"input":)"sv);
    AppendInt(out, r.usage.input);
    out.append(R"(,"output":)"sv);
    AppendInt(out, r.usage.output);
    out.append(R"(,"total":)"sv);
    AppendInt(out, r.usage.total);
    out.append(R"(,"cost":)"sv);
    AppendNumber(out, r.usage.cost);
    out.append(R"(,"model":)"sv);
    AppendStringOrNull(out, r.usage.model);
    out.push_back('}');
  }
  if (r.has_backoff) {
    out.append(R"(,"backoff":{"initial_ms":)"sv);
    AppendInt(out, r.backoff.initial_ms);
    out.append(R"(,"max_ms":)"sv);
    AppendInt(out, r.backoff.max_ms);
    out.append(R"(,"jitter":)"sv);
    AppendNumber(out, r.backoff.jitter);
    out.push_back('}');
  }
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
            {"connected_ms", w.connected_ms},
            {"usage", UsageJson(w.usage, true)}};
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
  const UsageBook& usage = dispatcher_.usage();
  json u = UsageJson(usage.total(), false);
  u["by_worker"] = UsageByName(usage.by_worker());
  u["by_skill"] = UsageByName(usage.by_skill());
  u["by_model"] = UsageByName(usage.by_model());
  v["usage"] = std::move(u);
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
