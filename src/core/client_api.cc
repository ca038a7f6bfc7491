#include "core/client_api.h"

#include <algorithm>

#include "common/json_text.h"
#include "protocol/encode.h"
#include "protocol/json_writer.h"

namespace pincer {

using namespace std::string_view_literals;
namespace {

using nlohmann::json;

json RawOrNull(const std::string& raw) {
  if (raw.empty()) return nullptr;
  return json::parse(raw, nullptr, false);
}
json StrOrNull(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }
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
  auto outcome = dispatcher_.Submit(req, conn);
  if (!outcome.status.ok()) {
    // A refused `parent` is named in `id`, as every unknown_task is.
    if (outcome.status.code() == "unknown_task") {
      return outbox_.Answer(conn, EncodeTaskError(outcome.status.code(), outcome.status.message(),
                                                  req.parent, 0, req.req));
    }
    return Error(conn, req.req, outcome.status);
  }
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
      std::string* out = outbox_.AnswerBuffer(conn);
      if (!out) return;
      AppendOkStart(*out, req.req);
      out->append(R"(,"task":)"sv);
      AppendTaskView(*out, *t);
      out->append("}\n"sv);
      return;
    }
    case IdOp::kWait:
    case IdOp::kWatch: {
      Status st = dispatcher_.AddWaiter(id, conn, req.req, req.op == IdOp::kWatch);
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
  std::string* out = outbox_.AnswerBuffer(conn);
  if (!out) return;
  AppendOkStart(*out, req.req);
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
  JsonObjectWriter v(out);
  v.String("id", t.id_string())
      .String("state", TaskStateName(r.state))
      .StringArray("skills", r.skills)
      .RawOrNull("payload", r.payload)
      .Int("priority", r.priority)
      .StringOrNull("session", r.session)
      .StringOrNull("key", r.key)
      .Int("attempts", r.attempts)
      .Int("max_attempts", r.max_attempts)
      .Int("timeout_ms", r.timeout_ms)
      .StringOrNull("worker", r.worker)
      .RawOrNull("output", r.output)
      .StringOrNull("error", r.state == TaskState::kSucceeded ? std::string_view() : r.error);
  AppendAttemptErrors(v.Key("errors"), r.errors, /*null_worker=*/true);
  v.RawOrNull("progress", t.progress);
  // Ids as "t<n>", written in place.
  auto append_id = [](std::string& to, TaskId id) {
    to.append("\"t"sv);
    AppendInt(to, static_cast<int64_t>(id));
    to.push_back('"');
  };
  if (r.parent != 0) {
    append_id(v.Key("parent"), r.parent);
  } else {
    v.Null("parent");
  }
  std::string& children = v.Key("children");
  children.push_back('[');
  if (const std::vector<TaskId>* ids = dispatcher_.ChildrenOf(r.id)) {
    for (std::size_t i = 0; i < ids->size(); ++i) {
      if (i) children.push_back(',');
      append_id(children, (*ids)[i]);
    }
  }
  children.push_back(']');
  if (dispatcher_.triage_seen()) {
    // Only a task that had a triage step has a `triage` (docs/protocol.md).
    if (auto tv = dispatcher_.TriageOf(r.id)) {
      JsonObjectWriter g(v.Key("triage"));
      g.String("skill", tv->skill);
      append_id(g.Key("task"), tv->step);
      g.StringOrNull("worker", tv->worker).String("state", TriageStateName(tv->decision.state));
      if (tv->decision.state == TriageDecision::State::kDecided) {
        g.StringArray("skills", tv->decision.skills);
      } else {
        g.Null("skills");
      }
      g.StringOrNull("error", tv->decision.error);
      g.Close();
    }
  }
  if (r.state == TaskState::kQueued) {
    const Why why = dispatcher_.WaitReason(t);
    v.String("why", why.text).String("why_code", WhyCodeName(why.code));
  }
  if (t.retry_at_ms) v.Int("retry_at_ms", t.retry_at_ms);
  v.Int("created_ms", r.created_ms)
      .IntOrNull("started_ms", r.started_ms)
      .IntOrNull("ended_ms", r.ended_ms);
  if (r.usage.empty()) {
    v.Null("usage");
  } else {
    JsonObjectWriter u(v.Key("usage"));
    u.Int("input", r.usage.input)
        .Int("output", r.usage.output)
        .Int("total", r.usage.total)
        .Number("cost", r.usage.cost)
        .StringOrNull("model", r.usage.model)
        .Close();
  }
  if (r.has_backoff) {
    JsonObjectWriter b(v.Key("backoff"));
    b.Int("initial_ms", r.backoff.initial_ms)
        .Int("max_ms", r.backoff.max_ms)
        .Number("jitter", r.backoff.jitter)
        .Close();
  }
  v.Close();
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
  if (std::string* out = outbox_.AnswerBuffer(conn)) AppendOk(*out, req, body);
}

void ClientApi::Error(ConnId conn, int64_t req, const Status& status) {
  outbox_.Answer(conn, EncodeError(status.code(), status.message(), req));
}

}  // namespace pincer
