#include "core/dispatcher.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>

#include "common/backoff.h"
#include "common/json_text.h"
#include "protocol/encode.h"

namespace pincer {

using namespace std::string_view_literals;
namespace {

// The count of ended tasks in `state` (an end state).
uint64_t& EndedCount(DispatcherStats& stats, TaskState state) {
  switch (state) {
    case TaskState::kSucceeded:
      return stats.succeeded;
    case TaskState::kFailed:
      return stats.failed;
    case TaskState::kCancelled:
      return stats.cancelled;
    default:
      return stats.timed_out;
  }
}

void SortUnique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

std::vector<std::string> SortedUnique(std::vector<std::string> v) {
  SortUnique(v);
  return v;
}

// Spare tasks kept for reuse, and the largest buffer a spare keeps.
constexpr std::size_t kMaxSpareTasks = 4096;
constexpr std::size_t kMaxSpareBuffer = 4096;

// The error an attempt cut short by a pincerd restart leaves in `errors`.
constexpr std::string_view kInterrupted = "pincerd restarted during the attempt";

// The next multiple of `block` above `n`.
uint64_t NextBlock(uint64_t n, uint64_t block) { return (n / block + 1) * block; }

// The interruptions among a task's errors since it was submitted or last
// retried. A retry starts the attempts at 1 again while its errors stay:
// the current run is the tail whose attempt numbers do not go down, from
// its current attempt `attempts`.
int CountInterrupted(const std::vector<AttemptError>& errors, int attempts) {
  int n = 0;
  int next = attempts;
  for (auto it = errors.rbegin(); it != errors.rend() && it->attempt <= next; ++it) {
    if (it->error == kInterrupted) ++n;
    next = it->attempt;
  }
  return n;
}

// "2026-12-06T08:40:01.250Z"
std::string UtcText(int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(unix_ms % 1000));
  return text;
}

// A repeated submit key names the same task only with the same payload:
// the same text, or the same JSON written differently.
bool SamePayload(const std::string& a, const std::string& b) {
  if (a == b) return true;
  if (a.empty() || b.empty()) return false;  // "" is null
  const nlohmann::json x = nlohmann::json::parse(a, nullptr, false);
  const nlohmann::json y = nlohmann::json::parse(b, nullptr, false);
  return !x.is_discarded() && !y.is_discarded() && x == y;
}

// The first line of an attempt's error, for a one-line log.
std::string_view FirstLine(std::string_view error) { return error.substr(0, error.find('\n')); }

}  // namespace

Dispatcher::Dispatcher(const Config& config, Store& store, const Clock& clock, Outbox& outbox)
    : config_(config),
      store_(store),
      clock_(clock),
      outbox_(outbox),
      outlier_(config.routing.outlier, clock) {
  RebuildStrategies();
  caps_.Reconfigure(config_.routing.rules);
  cap_pump_at_.assign(config_.routing.rules.size(), TimePoint{});
}

void Dispatcher::Reconfigure(const Config& config) {
  config_ = config;
  outlier_.Reconfigure(config_.routing.outlier);
  RebuildStrategies();
  caps_.Reconfigure(config_.routing.rules);
  ++caps_gen_;
  cap_pump_at_.assign(config_.routing.rules.size(), TimePoint{});
  RecountCaps();
  // Caps raised or lifted, strategies changed: what waits may start now.
  for (ClassId c = 0; c < queue_.class_count(); ++c) {
    if (queue_.size(c)) PumpClass(c);
  }
}

void Dispatcher::RecountCaps() {
  if (!caps_.any()) return;
  tasks_.ForEachSlot([&](TaskId, Task* live, TaskTable::EndedRef) {
    if (live && live->rec.state == TaskState::kRunning) {
      if (const int r = CappedRule(live->cls); r != RuleCaps::kNone) caps_.CountRunning(r);
    }
    return true;
  });
}

void Dispatcher::RebuildStrategies() {
  fallback_strategy_ = MakeStrategy("least_connections");
  default_strategy_ = MakeStrategy(config_.routing.strategy);
  if (!default_strategy_) default_strategy_ = MakeStrategy("least_connections");
  rule_strategies_.clear();
  for (const RoutingRule& rule : config_.routing.rules) {
    // A rule that only caps keeps the default strategy.
    auto s = MakeStrategy(rule.strategy.empty() ? config_.routing.strategy : rule.strategy);
    if (s) rule_strategies_.emplace_back(SortedUnique(rule.skills), std::move(s));
  }
  class_strategy_.clear();
  class_triage_.clear();
  any_triage_ = std::any_of(config_.routing.rules.begin(), config_.routing.rules.end(),
                            [](const RoutingRule& r) { return !r.triage.empty(); });
}

int Dispatcher::TriageRuleOf(ClassId c) {
  if (c < class_triage_.size() && class_triage_[c] != -2) return class_triage_[c];
  int found = -1;
  const auto& skills = queue_.skills(c);
  const auto& rules = config_.routing.rules;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    if (RuleMatches(SortedUnique(rules[i].skills), skills)) {
      if (!rules[i].triage.empty()) found = static_cast<int>(i);
      break;  // the first match is the class's rule, as for its strategy
    }
  }
  if (class_triage_.size() <= c) class_triage_.resize(c + 1, -2);
  class_triage_[c] = found;
  return found;
}

void Dispatcher::SetClass(Task& t, ClassId c) {
  if (c == t.cls) return;
  if (t.cls < held_.size() && held_[t.cls] > 0) --held_[t.cls];
  t.cls = c;
  Hold(c);
}

void Dispatcher::StartTriage(Task& t, int rule_index) {
  const RoutingRule& rule = config_.routing.rules[rule_index];
  t.where = Task::Where::kTriage;
  t.triage = 0;
  TaskId id = 0;
  if (Status st = NewTaskId(id); !st.ok()) {
    // No step without an id: the task goes by its own skills at once.
    spdlog::warn("triage of {}: {}; routed by its own skills", t.id_string(), st.message());
    t.where = Task::Where::kNone;
    return Place(t);
  }
  std::unique_ptr<Task> owned = NewTask();
  Task& step = *owned;
  TaskRecord& r = step.rec;
  r.id = id;
  r.skills.assign(1, rule.triage);
  r.payload = t.rec.payload;
  r.priority = t.rec.priority;
  r.timeout_ms = rule.triage_timeout.count();
  r.max_attempts = 1;
  r.key = TriageKey(t.rec.id);
  r.parent = t.rec.id;
  r.created_ms = clock_.UnixMillis();
  step.triage_step = true;
  step.cls = queue_.ClassFor(r.skills);
  Hold(step.cls);
  step.seq = next_seq_++;
  if (!tasks_.Insert(std::move(owned))) {
    t.where = Task::Where::kNone;
    return Place(t);
  }
  triage_seen_ = true;
  keys_[r.key] = id;
  children_[t.rec.id].push_back(id);
  t.triage = id;
  ++stats_.submitted;
  ++stats_.queued;
  if (observer_) observer_->TaskSubmitted(step);
  placing_new_ = id;
  Place(step);
  placing_new_ = 0;
  store_.Insert(r);
  if (r.state == TaskState::kQueued) ArmQueueTtl(step);
}

void Dispatcher::ApplyTriage(Task& t, const TaskRecord& step) {
  const TriageDecision d = DecideTriage(step);
  if (d.state == TriageDecision::State::kPending) return;
  t.where = Task::Where::kNone;
  t.triage = step.id;
  if (d.state == TriageDecision::State::kDecided) {
    std::vector<std::string> skills = t.rec.skills;  // its own skills stay needed
    skills.insert(skills.end(), d.skills.begin(), d.skills.end());
    SortUnique(skills);
    SetClass(t, queue_.ClassFor(skills));
  }
  Place(t);
}

void Dispatcher::FinishRestore() {
  for (TaskId id : restore_triage_) {
    Task* t = tasks_.Find(id);
    if (!t || t->where != Task::Where::kTriage || t->triage != 0) continue;
    if (const int rule = TriageRuleOf(t->cls); rule >= 0) {
      StartTriage(*t, rule);
    } else {
      t->where = Task::Where::kNone;
      Place(*t);
    }
  }
  restore_triage_.clear();
  restore_triage_.shrink_to_fit();
}

std::optional<Dispatcher::TriageView> Dispatcher::TriageOf(TaskId id) {
  if (!triage_seen_) return std::nullopt;
  auto key = keys_.find(TriageKey(id));
  if (key == keys_.end()) return std::nullopt;
  const TaskRecord* step = nullptr;
  if (const Task* live = tasks_.Find(key->second)) {
    step = &live->rec;
  } else if (const TaskTable::EndedRef ref = tasks_.FindEnded(key->second)) {
    ended_.Read(ref, triage_view_);
    step = &triage_view_.rec;
  } else {
    return std::nullopt;
  }
  TriageView v;
  v.skill = step->skills.empty() ? "" : step->skills.front();
  v.step = step->id;
  v.worker = step->worker;
  v.decision = DecideTriage(*step);
  return v;
}

const Strategy& Dispatcher::StrategyFor(ClassId cls) {
  if (class_strategy_.size() <= cls) class_strategy_.resize(queue_.class_count(), nullptr);
  const Strategy*& cached = class_strategy_[cls];
  if (!cached) {
    cached = default_strategy_.get();
    const auto& skills = queue_.skills(cls);
    for (const auto& [rule_skills, strategy] : rule_strategies_) {
      if (RuleMatches(rule_skills, skills)) {
        cached = strategy.get();
        break;
      }
    }
  }
  return *cached;
}

Status Dispatcher::NewTaskId(TaskId& id) {
  if (last_id_ >= task_limit_) {
    // This run's block is used up, or it has none yet: the next one starts
    // above every id any run may have issued, and is durable before its
    // first id leaves.
    IdMarks marks = store_.reserved_ids();
    const TaskId base = std::max(last_id_, static_cast<TaskId>(marks.tasks));
    marks.tasks = NextBlock(base, kTaskIdBlock);
    if (Status st = store_.ReserveIds(marks); !st.ok()) {
      return Status("store_unavailable", "cannot reserve task ids: " + st.message());
    }
    last_id_ = base;
    task_limit_ = marks.tasks;
  }
  id = ++last_id_;
  return Status::Ok();
}

Status Dispatcher::NewWorkerId(std::string& id) {
  if (last_worker_ >= worker_limit_) {
    IdMarks marks = store_.reserved_ids();
    const uint64_t base = std::max(last_worker_, marks.workers);
    marks.workers = NextBlock(base, kWorkerIdBlock);
    if (Status st = store_.ReserveIds(marks); !st.ok()) {
      return Status("store_unavailable", "cannot reserve worker ids: " + st.message());
    }
    last_worker_ = base;
    worker_limit_ = marks.workers;
  }
  id = "w" + std::to_string(++last_worker_);
  return Status::Ok();
}

std::unique_ptr<Task> Dispatcher::NewTask() {
  if (spare_tasks_.empty()) return std::make_unique<Task>();
  std::unique_ptr<Task> t = std::move(spare_tasks_.back());
  spare_tasks_.pop_back();
  return t;
}

void Dispatcher::Recycle(std::unique_ptr<Task> t) {
  if (!t || spare_tasks_.size() >= kMaxSpareTasks) return;
  // Everything back to its default, except the buffers that every task
  // fills again: those keep their capacity (when it is modest).
  std::string payload = std::move(t->rec.payload);
  std::string output = std::move(t->rec.output);
  std::vector<std::string> skills = std::move(t->rec.skills);
  auto waiters = std::move(t->waiters);
  *t = Task{};
  auto keep = [](auto& buffer, auto& into) {
    buffer.clear();
    if (buffer.capacity() <= kMaxSpareBuffer) into = std::move(buffer);
  };
  keep(payload, t->rec.payload);
  keep(output, t->rec.output);
  keep(skills, t->rec.skills);
  keep(waiters, t->waiters);
  spare_tasks_.push_back(std::move(t));
}

Task* Dispatcher::LiveTask(TaskId id, const char* what) {
  Task* t = tasks_.Find(id);
  if (!t)
    spdlog::error("dispatcher: a {} names task {}, which is not live; dropped", what,
                  TaskIdString(id));
  return t;
}

const Task* Dispatcher::FindTask(TaskId id) {
  if (const Task* t = tasks_.Find(id)) return t;
  const TaskTable::EndedRef ref = tasks_.FindEnded(id);
  if (!ref) return nullptr;
  ended_.Read(ref, view_);
  return &view_;
}

std::optional<TaskState> Dispatcher::StateOf(TaskId id) const {
  if (const Task* t = tasks_.Find(id)) return t->rec.state;
  if (const TaskTable::EndedRef ref = tasks_.FindEnded(id)) return ended_.entry(ref).state;
  return std::nullopt;
}

// ---------------------------------------------------------------- tasks

Status Dispatcher::CheckParent(const SubmitReq& req, ConnId from, TaskId& parent) {
  parent = ParseTaskId(req.parent);
  const Task* p = parent ? tasks_.Find(parent) : nullptr;
  if (!p || p->rec.state != TaskState::kRunning || p->worker != from || !workers_.Find(from)) {
    return Status("unknown_task", "field 'parent' names task " + req.parent +
                                      ", which this connection's worker does not run now "
                                      "(a subtask's parent is a task its submitter holds)");
  }
  // The parent's depth: its ancestors, as far as they are known.
  int depth = 1;
  for (TaskId up = p->rec.parent; up != 0 && depth <= config_.tasks.max_depth; ++depth) {
    if (const Task* live = tasks_.Find(up)) {
      up = live->rec.parent;
    } else if (const Task* ended = FindTask(up)) {
      up = ended->rec.parent;
    } else {
      break;
    }
  }
  if (depth > config_.tasks.max_depth) {
    return Status(
        "invalid_request",
        "a subtask of " + req.parent + " would nest " + std::to_string(depth) +
            " deep, deeper than tasks.max_depth = " + std::to_string(config_.tasks.max_depth));
  }
  return Status::Ok();
}

Dispatcher::SubmitOutcome Dispatcher::Submit(const SubmitReq& req, ConnId from) {
  if (!accepting_) return {Status("shutting_down", "pincerd is shutting down"), nullptr, false, {}};
  TaskId parent = 0;
  if (!req.parent.empty()) {
    if (Status st = CheckParent(req, from, parent); !st.ok()) {
      return {std::move(st), nullptr, false, {}};
    }
  }
  if (!store_status_.ok()) {
    return {Status("store_unavailable", "the task store cannot write: " + store_status_.message()),
            nullptr,
            false,
            {}};
  }
  if (!req.key.empty()) {
    if (req.key.starts_with(kReservedKeyPrefix)) {
      return {Status("invalid_request", "field 'key': keys starting with '" +
                                            std::string(kReservedKeyPrefix) +
                                            "' are pincerd's own (triage steps)"),
              nullptr,
              false,
              {}};
    }
    auto it = keys_.find(req.key);
    if (it != keys_.end()) {
      if (const Task* t = FindTask(it->second)) {
        if (!SamePayload(t->rec.payload, req.payload)) {
          return {Status("conflict", "key '" + req.key + "' is task " + t->id_string() +
                                         ", submitted with a different payload"),
                  t,
                  false,
                  {}};
        }
        return {Status::Ok(), t, true, {}};
      }
    }
  }
  if (stats_.queued >= config_.limits.max_queued) {
    return {Status("queue_full", "the queue holds limits.max_queued = " +
                                     std::to_string(config_.limits.max_queued) + " tasks"),
            nullptr,
            false,
            {}};
  }

  // The task's own backoff: parts not given are the config's, and a max
  // not given is at least the initial.
  const bool has_backoff = req.backoff_initial || req.backoff_max || req.backoff_jitter;
  TaskBackoff backoff;
  if (has_backoff) {
    const BackoffConfig& b = config_.tasks.retry_backoff;
    backoff.initial_ms = req.backoff_initial.value_or(b.initial).count();
    backoff.max_ms = req.backoff_max ? req.backoff_max->count()
                                     : std::max<int64_t>(b.max.count(), backoff.initial_ms);
    backoff.jitter = req.backoff_jitter.value_or(b.jitter);
    if (backoff.max_ms < backoff.initial_ms) {
      return {Status("invalid_request", "backoff.max (" + std::to_string(backoff.max_ms) +
                                            " ms) must not be less than backoff.initial (" +
                                            std::to_string(backoff.initial_ms) + " ms)"),
              nullptr,
              false,
              {}};
    }
  }

  TaskId id = 0;
  if (Status st = NewTaskId(id); !st.ok()) return {std::move(st), nullptr, false, {}};
  std::unique_ptr<Task> owned = NewTask();
  Task& t = *owned;
  TaskRecord& r = t.rec;
  r.id = id;
  // Copied, not moved: a recycled task's buffers take them without allocating.
  r.skills.assign(req.skills.begin(), req.skills.end());
  SortUnique(r.skills);
  r.payload = req.payload;
  r.priority = req.priority;
  r.timeout_ms = (req.timeout ? *req.timeout : config_.tasks.timeout).count();
  r.max_attempts = static_cast<int>(req.max_attempts.value_or(config_.tasks.max_attempts));
  r.session = req.session;
  r.key = req.key;
  r.has_backoff = has_backoff;
  r.backoff = backoff;
  r.parent = parent;
  r.created_ms = clock_.UnixMillis();
  t.cls = queue_.ClassFor(r.skills);
  Hold(t.cls);
  t.seq = next_seq_++;
  if (!tasks_.Insert(std::move(owned))) {  // logged; only a bug in the id counter does this
    return {Status("internal", "task id " + TaskIdString(r.id) + " is taken"), nullptr, false, {}};
  }
  if (!r.key.empty()) keys_[r.key] = r.id;
  if (parent != 0) children_[parent].push_back(r.id);

  ++stats_.submitted;
  ++stats_.queued;
  if (observer_) observer_->TaskSubmitted(t);
  if (any_triage_) {
    if (const int rule = TriageRuleOf(t.cls); rule >= 0) {
      // Recorded first: its triage step names it as its parent.
      store_.Insert(r);
      StartTriage(t, rule);
      if (r.state == TaskState::kQueued) ArmQueueTtl(t);
      return {Status::Ok(), &t, false, {}};
    }
  }
  // Placed, then recorded: a task that goes to a worker at once is stored
  // by one insert that says so, not an insert and then an update.
  placing_new_ = r.id;
  Place(t);
  placing_new_ = 0;
  store_.Insert(r);
  SubmitOutcome out{Status::Ok(), &t, false, {}};
  if (r.state == TaskState::kQueued) {
    ArmQueueTtl(t);
    // Once some worker offered a class's skills, that stays so: asked of
    // the index only until then.
    if (t.cls >= class_offered_.size()) class_offered_.resize(t.cls + 1, false);
    if (!class_offered_[t.cls]) {
      out.warning = UnroutableWarning(r.skills);
      class_offered_[t.cls] = out.warning.empty();
    }
  }
  return out;
}

void Dispatcher::Restore(TaskRecord&& rec) {
  // The store hands back what it was given; a record that breaks that (no
  // id, an id seen already) is logged and dropped here, so that one
  // bad record cannot overwrite another task or stop the start.
  if (rec.id == 0 || tasks_.Find(rec.id) || tasks_.FindEnded(rec.id)) {
    spdlog::error("recovery: dropped a stored task with {} id {}",
                  rec.id == 0 ? "no" : "a repeated", TaskIdString(rec.id));
    return;
  }
  last_id_ = std::max(last_id_, rec.id);
  if (!rec.key.empty()) keys_[rec.key] = rec.id;
  const TaskId parent = rec.parent;
  if (parent != 0) children_[parent].push_back(rec.id);
  ++stats_.submitted;

  if (IsEnded(rec.state)) {
    ++EndedCount(stats_, rec.state);
    const auto age = std::chrono::milliseconds(clock_.UnixMillis() - rec.ended_ms);
    const TimePoint at = clock_.Now() - age;
    if (!ended_.empty() && at < ended_.back().at) ended_unsorted_ = true;
    view_.rec = std::move(rec);
    view_.progress.clear();
    view_.seq = next_seq_++;
    view_.cls = queue_.ClassFor(view_.rec.skills);
    Hold(view_.cls);
    tasks_.InsertEnded(view_.rec.id, ended_.Add(view_, at));
    if (parent != 0 && IsTriageKey(view_.rec.key)) {
      // A triage step that ended: its task, waiting for it, goes by it.
      triage_seen_ = true;
      if (Task* p = tasks_.Find(parent); p && p->where == Task::Where::kTriage) {
        const TaskRecord step = view_.rec;
        ApplyTriage(*p, step);
      }
    }
    return;
  }
  auto owned = std::make_unique<Task>();
  Task& t = *owned;
  t.rec = std::move(rec);
  t.cls = queue_.ClassFor(t.rec.skills);
  if (parent != 0 && IsTriageKey(t.rec.key)) {
    t.triage_step = true;
    triage_seen_ = true;
    if (Task* p = tasks_.Find(parent); p && p->where == Task::Where::kTriage) {
      p->triage = t.rec.id;
    }
  }
  Hold(t.cls);
  t.seq = next_seq_++;
  tasks_.Insert(std::move(owned));
  ++stats_.queued;
  if (parent != 0 && tasks_.FindEnded(parent)) {
    // Its parent ended while it was stored unfinished (pincerd stopped in
    // between): it goes the way a live one would have gone then.
    t.rec.state = TaskState::kQueued;
    t.rec.error = "cancelled: its parent " + TaskIdString(parent) + " has ended";
    End(t, TaskState::kCancelled);
    return;
  }
  if (t.rec.state != TaskState::kRunning) {
    t.interrupted = CountInterrupted(t.rec.errors, t.rec.attempts);
    if (t.rec.attempts > 0 && !t.rec.errors.empty() && t.rec.errors.back().error != kInterrupted &&
        !(any_triage_ && !t.triage_step && TriageRuleOf(t.cls) >= 0)) {
      // Queued after a failed attempt: the wait is not stored, so it is
      // reset to the first step, from now (docs/configuration.md).
      BackOff(t, RetryDelay(t.rec, 1, 0));
      return ArmQueueTtl(t);
    }
  } else {
    // The attempt was in flight when pincerd stopped: it is lost, but not
    // the task's fault, so it does not count toward max_attempts. A crash
    // loop is bounded by tasks.max_interruptions instead.
    t.rec.state = TaskState::kQueued;
    t.rec.errors.push_back({t.rec.attempts, t.rec.worker, std::string(kInterrupted)});
    t.rec.error = t.rec.errors.back().error;
    t.interrupted = CountInterrupted(t.rec.errors, t.rec.attempts);
    if (t.interrupted > config_.tasks.max_interruptions) {
      t.rec.error = "interrupted by " + std::to_string(t.interrupted) +
                    " pincerd restarts, more than tasks.max_interruptions = " +
                    std::to_string(config_.tasks.max_interruptions);
      End(t, TaskState::kFailed);
      return;
    }
    Save(t);
    // Its worker may still run it and come back to this pincerd: it waits
    // for that worker to adopt it, for heartbeat.adopt_grace.
    t.adoptable = true;
    HoldForHolder(t);
    ArmQueueTtl(t);
    return;
  }
  if (any_triage_ && !t.triage_step && TriageRuleOf(t.cls) >= 0) {
    // Routed once its triage step is found (a later record) and ends, or
    // triaged again (FinishRestore).
    t.where = Task::Where::kTriage;
    restore_triage_.push_back(t.rec.id);
    return ArmQueueTtl(t);
  }
  Place(t);
  ArmQueueTtl(t);
}

Status Dispatcher::AddWaiter(TaskId id, ConnId conn, int64_t req, bool watch) {
  if (Task* live = tasks_.Find(id)) {
    for (const auto& [c, earlier] : live->waiters) {
      if (c == conn) {
        return Status("already_waiting", "this connection already waits for " + TaskIdString(id) +
                                             " (req " + std::to_string(earlier) + ")");
      }
    }
    ConnWaits& waits = waits_[conn];
    if (waits.live >= kMaxWaitsPerConnection) {
      return Status("too_many_waits", "this connection already waits for " +
                                          std::to_string(waits.live) +
                                          " tasks, the most one connection may");
    }
    if (waits.ids.size() >= 2 * waits.live + kWaitIdsSlack) CompactWaits(conn, waits);
    waits.ids.push_back(id);
    ++waits.live;
    live->waiters.emplace_back(conn, req);
    outbox_.Waiting(conn, WaitWeight(*live));
    if (watch && !live->progress.empty()) SendProgress(*live, conn, req);
    return Status::Ok();
  }
  const TaskTable::EndedRef ref = tasks_.FindEnded(id);
  if (!ref) return Status("not_found", "no task " + TaskIdString(id));
  SendEnd(ended_.ReadOutcome(ref, outcome_errors_), conn, req);
  return Status::Ok();
}

void Dispatcher::CompactWaits(ConnId conn, ConnWaits& waits) {
  std::erase_if(waits.ids, [&](TaskId id) {
    const Task* t = tasks_.Find(id);
    if (!t) return true;
    for (const auto& w : t->waiters) {
      if (w.first == conn) return false;
    }
    return true;
  });
}

void Dispatcher::DropWaiters(ConnId conn) {
  auto it = waits_.find(conn);
  if (it == waits_.end()) return;
  for (TaskId id : it->second.ids) {
    if (Task* t = tasks_.Find(id)) {
      std::erase_if(t->waiters, [conn](const auto& w) { return w.first == conn; });
    }
  }
  waits_.erase(it);
}

Status Dispatcher::Cancel(TaskId id, std::string error) {
  Task* t = tasks_.Find(id);
  if (!t) {
    if (const TaskTable::EndedRef ref = tasks_.FindEnded(id)) {
      return Status("invalid_state", "task " + TaskIdString(id) + " has already ended (" +
                                         std::string(TaskStateName(ended_.entry(ref).state)) + ")");
    }
    return Status("not_found", "no task " + TaskIdString(id));
  }
  Worker* w = nullptr;
  if (t->rec.state == TaskState::kRunning) {
    w = workers_.Find(t->worker);
    StopAttempt(*t, "cancelled");
  } else {
    Unqueue(*t);
  }
  t->rec.error = std::move(error);
  End(*t, TaskState::kCancelled);
  if (w) FillWorker(*w);
  return Status::Ok();
}

Status Dispatcher::Retry(TaskId id) {
  const std::optional<TaskState> state = StateOf(id);
  if (!state) return Status("not_found", "no task " + TaskIdString(id));
  if (*state != TaskState::kFailed && *state != TaskState::kTimedOut) {
    return Status("invalid_state", "only failed or timed_out tasks can be retried; " +
                                       TaskIdString(id) + " is " +
                                       std::string(TaskStateName(*state)));
  }
  if (!accepting_) return Status("shutting_down", "pincerd is shutting down");
  if (!store_status_.ok()) {
    return Status("store_unavailable", "the task store cannot write: " + store_status_.message());
  }
  // Back to life: out of the archive into a live task (its record there is
  // skipped when purged).
  std::unique_ptr<Task> owned = NewTask();
  const TaskTable::EndedRef ref = tasks_.FindEnded(id);
  ended_.Read(ref, *owned);
  owned->cls = ended_.entry(ref).cls;  // what it held, and was routed by
  owned->triage_step = IsTriageKey(owned->rec.key);
  Task* t = tasks_.Revive(std::move(owned));
  if (!t) return Status("internal", "task " + TaskIdString(id) + " cannot be revived (logged)");
  --EndedCount(stats_, t->rec.state);
  // Its last attempt may still be stopping (a timeout that ended it): the
  // retry waits for that like any other (Place).
  for (const auto& [wid, worker] : workers_.all()) {
    for (const Worker::Stopping& s : worker->stopping) {
      if (s.task == id) t->stopping_on = wid;
    }
  }
  t->rec.state = TaskState::kQueued;
  t->rec.attempts = 0;
  t->interrupted = 0;
  t->rec.ended_ms = 0;
  t->rec.output.clear();
  ++stats_.queued;
  Save(*t);
  if (triage_seen_) {
    // Retried by the route its triage decided (not triaged again).
    if (auto v = TriageOf(id); v && v->decision.state == TriageDecision::State::kDecided) {
      std::vector<std::string> skills = t->rec.skills;
      skills.insert(skills.end(), v->decision.skills.begin(), v->decision.skills.end());
      SortUnique(skills);
      SetClass(*t, queue_.ClassFor(skills));
    }
  }
  Place(*t);
  ArmQueueTtl(*t);
  return Status::Ok();
}

void Dispatcher::Forget(TaskId id) {
  // A subtask never accepted is not its parent's child.
  if (const Task* live = tasks_.Find(id); live && live->rec.parent != 0) {
    if (auto it = children_.find(live->rec.parent); it != children_.end()) {
      std::erase(it->second, id);
      if (it->second.empty()) children_.erase(it);
    }
  }
  // A live task is cancelled first: that unqueues it, or stops its worker,
  // and frees its session turn; then it is an ended task like the others.
  if (tasks_.Find(id)) Cancel(id);
  const TaskTable::EndedRef ref = tasks_.FindEnded(id);
  if (!ref) return;
  const EndedArchive::Entry& e = ended_.entry(ref);
  --EndedCount(stats_, e.state);
  --stats_.submitted;
  DropEnded(id, ref);  // drops the uncommitted insert too
}

// ------------------------------------------------------------ placement

void Dispatcher::Place(Task& t) {
  if (t.stopping_on != 0) {
    // One attempt at a time: not before the last one is confirmed gone.
    t.where = Task::Where::kStopping;
    return;
  }
  if (t.rec.session.empty()) return PlaceGeneral(t);
  Worker* home = nullptr;
  if (!sessions_.TakeTurn(t, queue_.skills(t.cls), workers_, home))
    return;  // behind its session's current task
  // A capped rule's task waits in its queue, whoever its home is.
  if (caps_.any() && CapHolds(t.cls)) return PlaceGeneral(t);
  if (home) {
    if (workers_.index().HasFreeSlot(home->id)) return Assign(t, *home);
    if (config_.routing.affinity_wait.count() > 0) {
      sessions_.Pin(t, home->id);
      deadlines_.Push({clock_.Now() + config_.routing.affinity_wait, DeadlineKind::kAffinity,
                       t.rec.id, ++t.pin_gen});
      return;
    }
  }
  PlaceGeneral(t);
}

void Dispatcher::PlaceGeneral(Task& t) {
  const Strategy& strategy = StrategyFor(t.cls);
  // The class's skills: the task's own, or those its triage decided.
  const std::vector<std::string>& skills = queue_.skills(t.cls);
  const bool capped = caps_.any() && CapHolds(t.cls);
  const WorkerId id =
      capped ? 0
             : strategy.Pick(workers_.index(), workers_.index().Matching(skills), skills.size());
  if (Worker* w = workers_.Find(id)) return Assign(t, *w);
  queue_.Push(t.cls, t.entry());
  t.where = Task::Where::kQueue;
  ArmQueueWait(t);
  if (capped) return;  // its rule's cap, not the rotation, holds it
  // A worker is free but the strategy keeps the task for another one.
  if (fallback_strategy_->Pick(workers_.index(), workers_.index().Matching(skills),
                               skills.size())) {
    ArmTurnWait(t);
  }
}

void Dispatcher::ArmTurnWait(Task& t) {
  if (t.turn_wait_armed || t.turn_expired) return;
  t.turn_wait_armed = true;
  deadlines_.Push({clock_.Now() + kMaxTurnWait, DeadlineKind::kTurnWait, t.rec.id,
                   static_cast<uint64_t>(t.rec.attempts)});
}

void Dispatcher::OnTurnWaitDeadline(Task& t) {
  t.turn_wait_armed = false;
  if (t.where != Task::Where::kQueue) return;
  t.turn_expired = true;
  if (caps_.any() && CapHolds(t.cls)) return;
  const auto& skills = queue_.skills(t.cls);
  const WorkerId id =
      fallback_strategy_->Pick(workers_.index(), workers_.index().Matching(skills), skills.size());
  if (Worker* w = workers_.Find(id)) {
    Unqueue(t);
    Assign(t, *w);
  }
}

void Dispatcher::ArmQueueWait(Task& t) {
  if (t.rec.timeout_ms <= 0) return;
  queue_deadlines_.Arm(t.queue_deadline, clock_.Now() + std::chrono::milliseconds(t.rec.timeout_ms),
                       t.rec.id);
}

void Dispatcher::Unqueue(Task& t) {
  switch (t.where) {
    case Task::Where::kQueue:
      queue_.Erase(t.cls, t.entry());
      break;
    case Task::Where::kPinned:
      sessions_.Unpin(t);
      break;
    case Task::Where::kSessionWait:
      sessions_.StopWaiting(t);
      break;
    case Task::Where::kBackoff:  // its deadline finds it gone or elsewhere
    case Task::Where::kHeld:
      t.retry_at_ms = 0;
      break;
    case Task::Where::kStopping:  // the `stopped` finds it gone or elsewhere
    case Task::Where::kTriage:    // its step's end finds it gone or elsewhere
    case Task::Where::kNone:
      break;
  }
  t.where = Task::Where::kNone;
}

void Dispatcher::Assign(Task& t, Worker& w) {
  TaskRecord& r = t.rec;
  ++r.attempts;
  r.started_ms = clock_.UnixMillis();
  RunOn(t, w);
  SendTask(t, w);
  Save(t);
}

void Dispatcher::RunOn(Task& t, Worker& w) {
  TaskRecord& r = t.rec;
  r.state = TaskState::kRunning;
  r.worker = w.id_str;
  t.where = Task::Where::kNone;
  t.adoptable = false;
  t.worker = w.id;
  t.progress.clear();
  t.turn_expired = false;
  t.turn_wait_armed = false;
  --stats_.queued;
  ++stats_.running;
  workers_.Acquire(w, r.id);
  if (!r.session.empty()) sessions_.SetHome(t, w.id);
  queue_deadlines_.Disarm(t.queue_deadline, r.id);
  if (t.ttl_deadline != TimePoint{}) ttl_deadlines_.Disarm(t.ttl_deadline, r.id);
  if (const int rule = CappedRule(t.cls); rule != RuleCaps::kNone)
    caps_.Started(rule, clock_.Now());
  if (r.timeout_ms > 0) {
    // From the attempt's start (an adopted attempt started earlier).
    const int64_t ran_ms = std::max<int64_t>(clock_.UnixMillis() - r.started_ms, 0);
    attempt_deadlines_.Arm(
        t.attempt_deadline,
        clock_.Now() + std::chrono::milliseconds(std::max<int64_t>(r.timeout_ms - ran_ms, 0)),
        r.id);
  }
}

void Dispatcher::HoldForHolder(Task& t) {
  const Duration grace = config_.heartbeat.AdoptGrace();
  if (grace.count() <= 0 || t.stopping_on != 0) return Place(t);
  // A session's task keeps its session's turn while it is held.
  if (!t.rec.session.empty() && !sessions_.HoldTurn(t)) return Place(t);
  t.where = Task::Where::kHeld;
  t.retry_at_ms = clock_.UnixMillis() + grace.count();
  deadlines_.Push({clock_.Now() + grace, DeadlineKind::kAdoptGrace, t.rec.id,
                   static_cast<uint64_t>(t.retry_at_ms)});
  held_for_holder_.push_back(t.rec.id);
}

void Dispatcher::EndHold(Task& t) {
  t.where = Task::Where::kNone;
  t.retry_at_ms = 0;
  if (t.rec.attempts - t.interrupted >= t.rec.max_attempts) {
    End(t, TaskState::kFailed);  // that was its last attempt
  } else {
    Place(t);
  }
}

void Dispatcher::EndHoldsFor(const Worker& w) {
  std::vector<TaskId> held = std::move(held_for_holder_);
  held_for_holder_.clear();
  for (TaskId id : held) {
    Task* t = tasks_.Find(id);
    if (!t || t->where != Task::Where::kHeld) continue;
    const std::vector<std::string>& needs = queue_.skills(t->cls);
    if (std::includes(w.skills.begin(), w.skills.end(), needs.begin(), needs.end())) {
      spdlog::info("task {}: worker {}, which does not adopt tasks, can run it; placed again",
                   t->id_string(), w.id_str);
      EndHold(*t);
    } else {
      held_for_holder_.push_back(id);
    }
  }
}

std::string Dispatcher::AdoptProblem(const Task* t, const Worker& w, const HeldTaskRef& ref) {
  if (!t) {
    return ParseTaskId(ref.id) != 0 && tasks_.FindEnded(ParseTaskId(ref.id))
               ? "it has ended"
               : "this pincerd does not know it";
  }
  const TaskRecord& r = t->rec;
  if (r.state == TaskState::kRunning) {
    return t->worker == w.id ? "" : "it runs on worker " + r.worker;
  }
  if (!t->adoptable || r.state != TaskState::kQueued || t->stopping_on != 0) {
    return "its last attempt was not lost with a worker";
  }
  if (ref.attempt > 0 && ref.attempt != r.attempts) {
    return "attempt " + std::to_string(ref.attempt) + " is not its last, " +
           std::to_string(r.attempts);
  }
  switch (t->where) {
    case Task::Where::kHeld:
    case Task::Where::kQueue:
    case Task::Where::kBackoff:
    case Task::Where::kPinned:
      break;
    default:
      return "it waits behind its session's running task";
  }
  if (!workers_.index().HasFreeSlot(w.id)) return "the worker has no free slot";
  return "";
}

void Dispatcher::AdoptListed(Worker& w, const std::vector<HeldTaskRef>& listed) {
  for (const HeldTaskRef& ref : listed) {
    const TaskId id = ParseTaskId(ref.id);
    Task* t = id != 0 ? tasks_.Find(id) : nullptr;
    const std::string problem = AdoptProblem(t, w, ref);
    if (problem.empty()) {
      if (t->rec.state != TaskState::kRunning) AdoptTask(*t, w);  // else: listed twice
      continue;
    }
    spdlog::info("worker {} holds task {}, which it may not go on with ({}): told to drop it",
                 w.id_str, ref.id, problem);
    outbox_.Send(w.id, EncodeCancel(ref.id, ref.attempt, "not_adopted"));
    if (id != 0 && w.dropped.size() < static_cast<std::size_t>(w.capacity)) w.dropped.push_back(id);
  }
}

void Dispatcher::AdoptTask(Task& t, Worker& w) {
  TaskRecord& r = t.rec;
  Unqueue(t);
  // The attempt goes on: its loss is taken back.
  if (!r.errors.empty() && r.errors.back().attempt == r.attempts) r.errors.pop_back();
  r.error = r.errors.empty() ? "" : r.errors.back().error;
  t.interrupted = CountInterrupted(r.errors, r.attempts);
  if (r.started_ms == 0) r.started_ms = clock_.UnixMillis();
  spdlog::info("task {} attempt {} adopted by worker {}: it goes on there", t.id_string(),
               r.attempts, w.id_str);
  RunOn(t, w);
  Save(t);
}

void Dispatcher::FillWorker(Worker& w) {
  WorkerIndex& index = workers_.index();
  while (index.HasFreeSlot(w.id)) {
    const auto& classes = queue_.CoveredBy(index.ProfileOf(w.id), w.skills);
    // A class's strategy may hold its head for another worker (a strict
    // rotation); then the head waits, bounded by kMaxTurnWait.
    auto best = queue_.BestIf(classes, [&](ClassId c, const QueueEntry& head) {
      Task* live = tasks_.Find(head.id);
      if (!live) return true;  // taken below, where LiveTask logs and drops it
      Task& t = *live;
      if (caps_.any() && CapHolds(c)) return false;
      if (t.turn_expired || StrategyFor(c).Allows(index, index.Matching(queue_.skills(c)), w.id)) {
        return true;
      }
      ArmTurnWait(t);
      return false;
    });
    const QueueEntry* pinned = sessions_.PinnedHead(w.id);
    bool take_pinned = pinned && (!best || *pinned < best->second);
    if (take_pinned && caps_.any()) {
      const Task* p = tasks_.Find(pinned->id);
      if (p && CapHolds(p->cls)) take_pinned = false;
    }
    TaskId id;
    if (take_pinned) {
      id = pinned->id;
      sessions_.PopPinned(w.id);
    } else if (best) {
      id = best->second.id;
      queue_.Erase(best->first, best->second);
    } else {
      return;
    }
    if (Task* t = LiveTask(id, "queued entry")) Assign(*t, w);
    // The rotation may have moved on to a worker that sat idle.
    if (!take_pinned) PumpClass(best->first);
  }
}

void Dispatcher::PumpClass(ClassId c) {
  const Strategy& strategy = StrategyFor(c);
  WorkerIndex& index = workers_.index();
  const auto& skills = queue_.skills(c);
  while (const QueueEntry* head = queue_.Head(c)) {
    Task* live = LiveTask(head->id, "queue head");
    if (!live) {
      const QueueEntry stale = *head;
      if (!queue_.Erase(c, stale)) return;
      continue;
    }
    Task& t = *live;
    if (caps_.any() && CapHolds(c)) return;
    Worker* w = workers_.Find(strategy.Pick(index, index.Matching(skills), skills.size()));
    if (!w) {
      if (fallback_strategy_->Pick(index, index.Matching(skills), skills.size())) ArmTurnWait(t);
      return;
    }
    Unqueue(t);
    Assign(t, *w);
  }
}

// ------------------------------------------------------------ lifecycle

void Dispatcher::ReleaseSlot(Task& t) {
  attempt_deadlines_.Disarm(t.attempt_deadline, t.rec.id);
  if (Worker* w = workers_.Find(t.worker)) {
    workers_.Release(*w, t.rec.id);
    if (w->drain_asked && w->tasks.empty()) outbox_.Send(w->id, EncodeDrained());
  }
  t.worker = 0;
  --stats_.running;
  if (const int rule = CappedRule(t.cls); rule != RuleCaps::kNone) {
    caps_.Stopped(rule);
    ArmCapPump(rule, clock_.Now());  // after the event at hand, not inside it
  }
}

void Dispatcher::StopAttempt(Task& t, std::string_view reason) {
  Worker* w = workers_.Find(t.worker);
  outbox_.Send(t.worker, EncodeCancel(t.id_string(), t.rec.attempts, reason));
  if (!w || !w->confirms_stop) return ReleaseSlot(t);
  // The slot stays taken, and the task waits, until the worker says the
  // attempt's process is gone (OnStopped) or the worker is gone.
  attempt_deadlines_.Disarm(t.attempt_deadline, t.rec.id);
  w->stopping.push_back({t.rec.id, t.rec.attempts});
  t.stopping_on = w->id;
  t.worker = 0;
  --stats_.running;
}

void Dispatcher::StopConfirmed(WorkerId worker, TaskId id) {
  Task* t = tasks_.Find(id);
  if (!t || t->stopping_on != worker) return;  // ended since, or retried and stopping elsewhere
  t->stopping_on = 0;
  if (t->where == Task::Where::kStopping) {
    t->where = Task::Where::kNone;
    Place(*t);
  }
}

void Dispatcher::LoseAttempt(Task& t, const std::string& error, bool timed_out, bool back_off,
                             int64_t retry_after_ms) {
  t.rec.errors.push_back({t.rec.attempts, t.rec.worker, error});
  t.rec.error = error;
  // Attempts lost to pincerd restarts are not the task's: not counted.
  const bool again = t.rec.attempts - t.interrupted < t.rec.max_attempts;
  spdlog::info("task {} attempt {} failed on worker {}{}: {}", t.id_string(), t.rec.attempts,
               t.rec.worker, again ? ", queued again" : "", FirstLine(error));
  if (again) {
    t.rec.state = TaskState::kQueued;
    ++stats_.queued;
    Save(t);
    if (back_off) {
      BackOff(t, RetryDelay(t.rec, t.rec.attempts, retry_after_ms));
    } else {
      Place(t);
    }
    ArmQueueTtl(t);
  } else {
    End(t, timed_out ? TaskState::kTimedOut : TaskState::kFailed);
  }
}

Duration Dispatcher::RetryDelay(const TaskRecord& r, int failed, int64_t retry_after_ms) {
  const BackoffConfig& config = config_.tasks.retry_backoff;
  const BackoffConfig b = r.has_backoff
                              ? BackoffConfig{Duration(r.backoff.initial_ms),
                                              Duration(r.backoff.max_ms), r.backoff.jitter}
                              : config;
  double random01 = 0.0;
  if (b.jitter > 0 && b.initial.count() > 0 && b.max.count() > 0) {
    random01 = std::uniform_real_distribution<double>(0.0, 1.0)(jitter_rng_);
  }
  // The worker's pause wins when longer, up to max.
  return std::max(BackoffDelay(b, failed - 1, random01), std::min(Duration(retry_after_ms), b.max));
}

void Dispatcher::BackOff(Task& t, Duration delay) {
  if (delay.count() <= 0) return Place(t);
  if (!t.rec.session.empty()) {
    // The session's turn stays with it while it waits (recovery: unless
    // an earlier task of the session holds it; then it waits its turn).
    if (!sessions_.HoldTurn(t)) return Place(t);
  }
  t.where = Task::Where::kBackoff;
  t.retry_at_ms = clock_.UnixMillis() + delay.count();
  deadlines_.Push({clock_.Now() + delay, DeadlineKind::kBackoff, t.rec.id,
                   static_cast<uint64_t>(t.retry_at_ms)});
}

void Dispatcher::End(Task& t, TaskState state) {
  queue_deadlines_.Disarm(t.queue_deadline, t.rec.id);
  if (t.ttl_deadline != TimePoint{}) ttl_deadlines_.Disarm(t.ttl_deadline, t.rec.id);
  if (t.rec.state == TaskState::kQueued) --stats_.queued;
  t.rec.state = state;
  t.rec.ended_ms = clock_.UnixMillis();
  ++EndedCount(stats_, state);
  Save(t);
  for (const auto& [conn, req] : t.waiters) {
    outbox_.Waiting(conn, -WaitWeight(t));
    SendEnd(Outcome::Of(t.rec), conn, req);
    // Its id stays in the connection's list until CompactWaits.
    if (auto it = waits_.find(conn); it != waits_.end() && it->second.live > 0) --it->second.live;
  }
  t.waiters.clear();
  if (observer_) {
    observer_->TaskEnded(t, static_cast<double>(t.rec.ended_ms - t.rec.created_ms) / 1000.0);
  }
  if (!t.rec.session.empty()) SessionTaskEnded(t);
  // A triage step's task, waiting for it, is routed once the step is
  // archived (its decision is read from the record).
  Task* triaged = nullptr;
  if (t.triage_step) {
    triaged = tasks_.Find(t.rec.parent);
    if (triaged && (triaged->where != Task::Where::kTriage || triaged->triage != t.rec.id)) {
      triaged = nullptr;
    }
  }
  std::optional<TaskRecord> step;
  if (triaged) step = t.rec;
  // Into the archive; the Task object serves the next submit while it is
  // still in cache. `t` is not to be used after this.
  const TaskId id = t.rec.id;
  const TimePoint now = clock_.Now();
  Recycle(tasks_.Archive(id, ended_.Add(t, now)));
  if (config_.tasks.max_ended > 0 && ended_.size() > config_.tasks.max_ended) PurgeEnded(now, id);
  if (!children_.empty()) CancelChildren(id, state);
  if (step) ApplyTriage(*triaged, *step);
}

void Dispatcher::CancelChildren(TaskId id, TaskState state) {
  auto it = children_.find(id);
  if (it == children_.end()) return;
  // Copied: cancelling a child may purge ended tasks, this one among them.
  const std::vector<TaskId> children = it->second;
  const std::string error =
      "cancelled: its parent " + TaskIdString(id) + " ended " + std::string(TaskStateName(state));
  for (TaskId child : children) {
    if (tasks_.Find(child)) Cancel(child, error);
  }
}

void Dispatcher::SessionTaskEnded(Task& t) {
  const TaskId next_id = sessions_.EndTurn(t, workers_);
  if (next_id == 0) return;
  if (Task* next = tasks_.Find(next_id)) {
    next->where = Task::Where::kNone;
    Place(*next);
  }
}

// -------------------------------------------------------------- workers

std::string Dispatcher::AddWorker(ConnId conn, const Hello& hello, std::string pool,
                                  std::string id) {
  // The memory store cannot fail a reservation; the daemon passes an id.
  if (id.empty() && !NewWorkerId(id).ok()) id = "w?" + std::to_string(conn);
  auto w = std::make_unique<Worker>();
  w->id = conn;
  w->id_str = std::move(id);
  w->name = hello.name.empty() ? w->id_str : hello.name;
  w->skills = SortedUnique(hello.skills);
  w->capacity = static_cast<int>(std::clamp<int64_t>(hello.capacity, 1, kMaxCapacity));
  w->labels = hello.labels;
  w->spawn_id = hello.spawn_id;
  w->heartbeat_ack = hello.heartbeat_ack;
  w->confirms_stop = hello.confirms_stop;
  w->pool = std::move(pool);
  w->connected_ms = clock_.UnixMillis();
  w->last_heard = clock_.Now();
  Worker& worker = workers_.Add(std::move(w));
  deadlines_.Push({clock_.Now() + config_.heartbeat.interval * config_.heartbeat.misses,
                   DeadlineKind::kHeartbeat, conn, 0});
  if (!hello.tasks.empty()) AdoptListed(worker, hello.tasks);
  if (!hello.lists_tasks && !held_for_holder_.empty()) EndHoldsFor(worker);
  FillWorker(worker);
  return worker.id_str;
}

void Dispatcher::Touch(ConnId conn) {
  if (Worker* w = workers_.Find(conn)) w->last_heard = clock_.Now();
}

Task* Dispatcher::HeldTask(ConnId conn, const std::string& task_id, int64_t attempt, Worker*& w) {
  w = workers_.Find(conn);
  const TaskId id = ParseTaskId(task_id);
  if (!w || !w->tasks.count(id)) {
    outbox_.Send(conn, EncodeTaskError(
                           "unknown_task",
                           "field 'id' names task " + task_id + ", which this worker does not hold",
                           task_id, attempt));
    return nullptr;
  }
  for (const Worker::Stopping& s : w->stopping) {
    if (s.task == id) {
      const int64_t named = attempt > 0 ? attempt : s.attempt;
      outbox_.Send(
          conn, EncodeTaskError("stale_attempt",
                                "field 'attempt' is " + std::to_string(named) +
                                    ", but that attempt of " + task_id +
                                    " was cancelled or timed out; it has no current attempt here",
                                task_id, named));
      return nullptr;
    }
  }
  Task* t = tasks_.Find(id);
  if (t && attempt > 0 && attempt != t->rec.attempts) {
    outbox_.Send(conn, EncodeTaskError("stale_attempt",
                                       "field 'attempt' is " + std::to_string(attempt) +
                                           ", but the current attempt of " + task_id + " is " +
                                           std::to_string(t->rec.attempts),
                                       task_id, attempt));
    return nullptr;
  }
  return t;
}

void Dispatcher::OnResult(ConnId conn, const ResultMsg& msg) {
  Worker* w;
  Task* held = HeldTask(conn, msg.id, msg.attempt, w);
  if (!held) return;
  Task& t = *held;
  const double seconds = static_cast<double>(clock_.UnixMillis() - t.rec.started_ms) / 1000.0;
  ReleaseSlot(t);
  if (msg.has_usage) {  // before the end or retry below saves the task
    t.rec.usage.Add(msg.usage);
    usage_.Add(w->name.empty() ? w->id_str : w->name, t.rec.skills, msg.usage);
    w->usage.Add(msg.usage);
    if (observer_) observer_->UsageReported(*w, t, msg.usage);
  }
  if (observer_) observer_->AttemptEnded(*w, t, msg.ok, seconds);
  NoteAttempt(*w, msg.ok, seconds);
  if (msg.ok) {
    ++w->completed;
    w->consecutive_failures = 0;
    t.rec.output = msg.output;  // into the recycled task's buffer
    t.rec.error.clear();
    End(t, TaskState::kSucceeded);
  } else {
    ++w->failed;
    ++w->consecutive_failures;
    if (msg.retryable) {
      LoseAttempt(t, msg.error, /*timed_out=*/false, /*back_off=*/true, msg.retry_after_ms);
    } else {
      spdlog::info("task {} attempt {} failed on worker {} (not retryable): {}", t.id_string(),
                   t.rec.attempts, t.rec.worker, FirstLine(msg.error));
      t.rec.errors.push_back({t.rec.attempts, t.rec.worker, msg.error});
      t.rec.error = msg.error;
      End(t, TaskState::kFailed);
    }
  }
  FillWorker(*w);
}

void Dispatcher::OnProgress(ConnId conn, const ProgressMsg& msg) {
  Worker* w;
  Task* t = HeldTask(conn, msg.id, msg.attempt, w);
  if (!t) return;
  t->progress = msg.data;
  // Streamed to whoever waits on the task; nothing to do for the others.
  for (const auto& [waiter, req] : t->waiters) SendProgress(*t, waiter, req);
}

void Dispatcher::SendProgress(const Task& t, ConnId conn, int64_t req) {
  std::string* out = outbox_.ProgressBuffer(conn, req);
  if (!out) return;
  AppendProgress(*out, {.req = req, .id = t.rec.id, .attempt = t.rec.attempts, .data = t.progress});
}

void Dispatcher::OnStopped(ConnId conn, const StoppedMsg& msg) {
  Worker* w = workers_.Find(conn);
  if (!w) return;
  const TaskId id = ParseTaskId(msg.id);
  auto it = std::find_if(w->stopping.begin(), w->stopping.end(),
                         [id](const Worker::Stopping& s) { return s.task == id; });
  if (it == w->stopping.end()) {
    if (auto d = std::find(w->dropped.begin(), w->dropped.end(), id); d != w->dropped.end()) {
      w->dropped.erase(d);  // a task its hello listed, dropped at our word
      return;
    }
    if (w->tasks.count(id)) {
      outbox_.Send(conn, EncodeTaskError(
                             "invalid_state",
                             "task " + msg.id + " was not cancelled here: send its result instead",
                             msg.id, msg.attempt));
    } else {
      outbox_.Send(conn, EncodeTaskError("unknown_task",
                                         "field 'id' names task " + msg.id +
                                             ", which this worker is not stopping",
                                         msg.id, msg.attempt));
    }
    return;
  }
  if (msg.attempt > 0 && msg.attempt != it->attempt) {
    outbox_.Send(conn, EncodeTaskError("stale_attempt",
                                       "field 'attempt' is " + std::to_string(msg.attempt) +
                                           ", but the attempt of " + msg.id +
                                           " being stopped here is " + std::to_string(it->attempt),
                                       msg.id, msg.attempt));
    return;
  }
  w->stopping.erase(it);
  workers_.Release(*w, id);
  if (w->drain_asked && w->tasks.empty()) outbox_.Send(w->id, EncodeDrained());
  StopConfirmed(w->id, id);
  FillWorker(*w);
}

void Dispatcher::OnHeartbeat(ConnId conn, const HeartbeatMsg& msg) {
  Worker* w = workers_.Find(conn);
  if (!w) return;
  if (msg.cpu) w->cpu = *msg.cpu;
  if (msg.rss_bytes) w->rss_bytes = *msg.rss_bytes;
  if (w->heartbeat_ack) outbox_.Send(conn, EncodeHeartbeatAck());
}

void Dispatcher::OnWorkerDrain(ConnId conn) {
  Worker* w = workers_.Find(conn);
  if (!w) return;
  const bool answer_now = w->tasks.empty();
  w->drain_asked = true;
  if (w->state != WorkerState::kDraining) {
    workers_.SetState(*w, WorkerState::kDraining);
    ReleasePinned(*w);
  }
  if (answer_now) outbox_.Send(conn, EncodeDrained());
}

void Dispatcher::OnDisconnect(ConnId conn, const std::string& reason) {
  // Its tasks are placed again at once: a worker whose connection closed
  // has most likely died, and waiting for it would hold its tasks up.
  if (Worker* w = workers_.Find(conn)) RemoveWorker(*w, reason);
  // Client waiters of this connection simply stop being answered: the
  // outbox drops lines for a closed connection.
}

void Dispatcher::CancelRunningForShutdown() {
  for (const auto& [wid, w] : workers_.all()) {
    for (TaskId tid : w->tasks) {
      const Task* t = tasks_.Find(tid);
      if (t && t->rec.state == TaskState::kRunning && t->worker == wid) {
        outbox_.Send(wid, EncodeCancel(t->id_string(), t->rec.attempts, "shutdown"));
      }
    }
  }
}

void Dispatcher::KillWorker(WorkerId id, const std::string& reason) {
  if (Worker* w = workers_.Find(id)) {
    // Remove first: closing may run OnDisconnect at once, which would
    // remove `w` under our feet.
    RemoveWorker(*w, reason);
    outbox_.Close(id);
  }
}

void Dispatcher::RemoveWorker(Worker& w, const std::string& reason) {
  const WorkerId id = w.id;
  std::vector<TaskId> held(w.tasks.begin(), w.tasks.end());
  // Its process is gone with it: the attempts it was stopping are over.
  const std::vector<Worker::Stopping> stopping = std::move(w.stopping);
  const std::vector<TaskId> pinned = sessions_.WorkerGone(id);  // its sessions lose their home
  workers_.Remove(id);  // from here on `w` is gone and cannot be picked
  outlier_.Forget(id);

  PlaceUnpinned(pinned);
  for (const Worker::Stopping& s : stopping) {
    std::erase(held, s.task);
    StopConfirmed(id, s.task);
  }
  for (TaskId tid : held) {
    // A subtask it ran may have ended with its parent (an attempt lost
    // just before ended the parent).
    if (!tasks_.Find(tid) && tasks_.FindEnded(tid)) continue;
    Task* live = LiveTask(tid, "running entry");
    if (!live) continue;
    Task& t = *live;
    ReleaseSlot(t);
    // The worker may come back for it (a reconnect lists it, docs/protocol.md).
    t.adoptable = true;
    LoseAttempt(t, reason, /*timed_out=*/false);
  }
}

Status Dispatcher::Drain(const std::string& name) {
  Worker* w = workers_.FindByName(name);
  if (!w) return Status("not_found", "no worker " + name);
  if (w->state != WorkerState::kDraining) {
    workers_.SetState(*w, WorkerState::kDraining);
    outbox_.Send(w->id, EncodeDrain());
    ReleasePinned(*w);
  }
  return Status::Ok();
}

void Dispatcher::SetBacklogged(ConnId conn, bool backlogged) {
  Worker* w = workers_.Find(conn);
  if (!w || w->backlogged == backlogged) return;
  workers_.SetBacklogged(*w, backlogged);
  // Session tasks pinned to it wait out routing.affinity_wait as for a
  // busy home: a backlog usually drains within it.
  if (!backlogged) FillWorker(*w);
}

void Dispatcher::ReleasePinned(Worker& w) { PlaceUnpinned(sessions_.TakePinned(w.id)); }

void Dispatcher::PlaceUnpinned(const std::vector<TaskId>& ids) {
  for (TaskId tid : ids) {
    Task* live = LiveTask(tid, "pinned entry");
    if (!live) continue;
    Task& t = *live;
    t.where = Task::Where::kNone;
    t.worker = 0;
    PlaceGeneral(t);
  }
}

// ------------------------------------------------------------ deadlines

std::optional<TimePoint> Dispatcher::NextDeadline() const {
  std::optional<TimePoint> next = deadlines_.Next();
  for (const TaskDeadlines* d : {&attempt_deadlines_, &queue_deadlines_, &ttl_deadlines_}) {
    if (auto at = d->Next(); at && (!next || *at < *next)) next = at;
  }
  if (!ended_.empty() && config_.tasks.result_ttl.count() > 0) {
    // Unsorted (just recovered): purge at once, which sorts.
    const TimePoint purge =
        ended_unsorted_ ? TimePoint{} : ended_.front().at + config_.tasks.result_ttl;
    if (!next || purge < *next) next = purge;
  }
  return next;
}

void Dispatcher::PurgeEnded(TimePoint now, TaskId keep) {
  if (ended_unsorted_) SortEnded();
  const auto ttl = config_.tasks.result_ttl;
  const std::size_t cap = config_.tasks.max_ended;
  while (!ended_.empty()) {
    const EndedArchive::Entry& e = ended_.front();
    const bool expired = ttl.count() > 0 && e.at + ttl <= now;
    const bool over_cap = cap > 0 && ended_.size() > cap;
    if ((!expired && !over_cap) || e.id == keep) break;
    const EndedArchive::Ref ref = ended_.front_ref();
    if (tasks_.FindEnded(e.id) == ref) DropEnded(e.id, ref);  // not retried or forgotten since
    ended_.PopFront();
  }
}

void Dispatcher::DropEnded(TaskId id, EndedArchive::Ref ref) {
  if (const ClassId c = ended_.entry(ref).cls; c < held_.size() && held_[c] > 0) --held_[c];
  if (ended_.entry(ref).has_key) {
    ended_.Read(ref, view_);
    auto key = keys_.find(view_.rec.key);
    if (key != keys_.end() && key->second == id) keys_.erase(key);
  }
  store_.Erase(id);
  tasks_.EraseEnded(id, ref);
  if (!children_.empty()) children_.erase(id);
}

void Dispatcher::SortEnded() {
  ended_unsorted_ = false;
  struct Held {
    TimePoint at;
    TaskId id;
    EndedArchive::Ref ref;
  };
  std::vector<Held> held;
  for (EndedArchive::Ref ref = ended_.front_ref(); ref < ended_.next_ref(); ++ref) {
    const EndedArchive::Entry& e = ended_.entry(ref);
    if (tasks_.FindEnded(e.id) == ref) held.push_back({e.at, e.id, ref});
  }
  std::stable_sort(held.begin(), held.end(),
                   [](const Held& a, const Held& b) { return a.at < b.at; });
  EndedArchive sorted;
  Task t;
  for (const Held& h : held) {
    ended_.Read(h.ref, t);
    t.cls = ended_.entry(h.ref).cls;
    tasks_.EraseEnded(h.id, h.ref);
    tasks_.InsertEnded(h.id, sorted.Add(t, h.at));
  }
  ended_ = std::move(sorted);
}

void Dispatcher::RunDue() {
  const TimePoint now = clock_.Now();
  PurgeEnded(now, 0);
  while (auto id = attempt_deadlines_.PopDue(now)) {
    if (Task* t = tasks_.Find(*id); t && t->rec.state == TaskState::kRunning) {
      t->attempt_deadline = TimePoint{};
      OnAttemptDeadline(*t);
    }
  }
  while (auto id = queue_deadlines_.PopDue(now)) {
    Task* t = tasks_.Find(*id);
    if (!t) continue;
    t->queue_deadline = TimePoint{};
    if (t->where != Task::Where::kQueue) continue;
    if (workers_.index().AnyConnected(queue_.skills(t->cls))) {
      ArmQueueWait(*t);  // it waits for a busy worker, not for a skill
    } else {
      Unqueue(*t);
      t->rec.error = "no worker could take it within its timeout: " + WhyWaiting(*t);
      t->rec.errors.push_back({t->rec.attempts, "", t->rec.error});
      End(*t, TaskState::kTimedOut);
    }
  }
  while (auto id = ttl_deadlines_.PopDue(now)) {
    Task* t = tasks_.Find(*id);
    if (!t) continue;
    t->ttl_deadline = TimePoint{};
    if (t->rec.state == TaskState::kQueued) ExpireQueued(*t);
  }
  while (auto d = deadlines_.PopDue(now)) {
    if (d->kind == DeadlineKind::kRuleCap) {
      if (d->gen == caps_gen_ && d->id < cap_pump_at_.size()) {
        const int r = static_cast<int>(d->id);
        if (cap_pump_at_[r] == d->at) cap_pump_at_[r] = TimePoint{};
        PumpRule(r);
      }
      continue;
    }
    if (d->kind == DeadlineKind::kHeartbeat) {
      OnHeartbeatDeadline(d->id);
      continue;
    }
    if (d->kind == DeadlineKind::kEjection) {
      OnEjectionDeadline(d->id, d->gen);
      continue;
    }
    Task* t = tasks_.Find(d->id);
    if (!t) continue;
    switch (d->kind) {
      case DeadlineKind::kAffinity:
        if (t->where == Task::Where::kPinned && t->pin_gen == d->gen) {
          Unqueue(*t);
          PlaceGeneral(*t);
        }
        break;
      case DeadlineKind::kTurnWait:
        if (t->rec.attempts == static_cast<int>(d->gen)) OnTurnWaitDeadline(*t);
        break;
      case DeadlineKind::kBackoff:
        // Its current backoff (gen = the retry_at_ms it armed).
        if (t->where == Task::Where::kBackoff && static_cast<uint64_t>(t->retry_at_ms) == d->gen) {
          t->where = Task::Where::kNone;
          t->retry_at_ms = 0;
          Place(*t);
        }
        break;
      case DeadlineKind::kAdoptGrace:
        if (t->where == Task::Where::kHeld && static_cast<uint64_t>(t->retry_at_ms) == d->gen) {
          spdlog::info("task {}: no worker came back for attempt {} within {}; placed again",
                       t->id_string(), t->rec.attempts,
                       FormatDuration(config_.heartbeat.AdoptGrace()));
          EndHold(*t);
        }
        break;
      case DeadlineKind::kHeartbeat:
      case DeadlineKind::kEjection:
      case DeadlineKind::kRuleCap:
        break;
    }
  }
}

void Dispatcher::OnAttemptDeadline(Task& t) {
  Worker* w = workers_.Find(t.worker);
  StopAttempt(t, "timed_out");
  if (w) NoteAttempt(*w, /*ok=*/false, static_cast<double>(t.rec.timeout_ms) / 1000.0);
  LoseAttempt(t,
              "attempt " + std::to_string(t.rec.attempts) + " timed out after " +
                  FormatDuration(std::chrono::milliseconds(t.rec.timeout_ms)),
              /*timed_out=*/true, /*back_off=*/true);
  if (w) FillWorker(*w);
}

void Dispatcher::NoteAttempt(Worker& w, bool ok, double seconds) {
  std::optional<Ejection> e = outlier_.Record(w, ok, seconds, workers_);
  if (!e) return;
  workers_.SetState(w, WorkerState::kEjected);
  deadlines_.Push({clock_.Now() + e->cool_off, DeadlineKind::kEjection, w.id, e->generation});
  if (observer_) observer_->WorkerEjected(w, *e);
  ReleasePinned(w);  // session tasks waiting for it need not wait out affinity_wait
}

void Dispatcher::OnEjectionDeadline(WorkerId id, uint64_t generation) {
  Worker* w = workers_.Find(id);
  if (!w || w->state != WorkerState::kEjected || !outlier_.Return(id, generation)) return;
  workers_.SetState(*w, WorkerState::kReady);
  if (observer_) observer_->WorkerReturned(*w);
  FillWorker(*w);
}

void Dispatcher::OnHeartbeatDeadline(WorkerId id) {
  Worker* w = workers_.Find(id);
  if (!w) return;
  const auto limit = config_.heartbeat.interval * config_.heartbeat.misses;
  const TimePoint due = w->last_heard + limit;
  if (due > clock_.Now()) {
    deadlines_.Push({due, DeadlineKind::kHeartbeat, id, 0});
    return;
  }
  std::string held;
  for (TaskId tid : w->tasks) held += (held.empty() ? "" : ", ") + TaskIdString(tid);
  spdlog::info("worker {} ({}) declared dead: no sign of life for {} ({} missed heartbeats); {}",
               w->id_str, w->name, FormatDuration(std::chrono::duration_cast<Duration>(limit)),
               config_.heartbeat.misses, held.empty() ? "it held no task" : "requeued " + held);
  const std::string reason =
      "worker " + w->id_str + " missed " + std::to_string(config_.heartbeat.misses) + " heartbeats";
  outbox_.Send(
      id, EncodeError("heartbeat_timeout", "nothing heard for " + FormatDuration(limit) + " (" +
                                               reason + "); closing the connection"));
  KillWorker(id, reason);
}

// ------------------------------------------------- queue_ttl, rule caps

void Dispatcher::ArmQueueTtl(Task& t) {
  if (config_.tasks.queue_ttl.count() <= 0 || t.rec.state != TaskState::kQueued ||
      t.ttl_deadline != TimePoint{}) {
    return;
  }
  ttl_deadlines_.Arm(t.ttl_deadline, clock_.Now() + config_.tasks.queue_ttl, t.rec.id);
}

void Dispatcher::ExpireQueued(Task& t) {
  const std::string why = WhyWaiting(t);  // before it leaves where it waits
  Unqueue(t);
  t.rec.error = "expired: waited longer than tasks.queue_ttl (" +
                FormatDuration(config_.tasks.queue_ttl) + "): " + why;
  t.rec.errors.push_back({t.rec.attempts, "", t.rec.error});
  spdlog::info("task {} {}", t.id_string(), t.rec.error);
  End(t, TaskState::kTimedOut);
}

bool Dispatcher::CapHolds(ClassId c) {
  const int r = caps_.RuleOf(c, queue_.skills(c));
  if (r == RuleCaps::kNone) return false;
  const TimePoint now = clock_.Now();
  if (caps_.Open(r, now)) return false;
  if (const auto at = caps_.ReopensAt(r, now)) ArmCapPump(r, *at);
  return true;
}

void Dispatcher::ArmCapPump(int r, TimePoint at) {
  if (static_cast<std::size_t>(r) >= cap_pump_at_.size()) return;
  TimePoint& armed = cap_pump_at_[r];
  if (armed != TimePoint{} && armed <= at) return;  // an earlier pump re-arms if need be
  armed = at;
  deadlines_.Push({at, DeadlineKind::kRuleCap, static_cast<uint64_t>(r), caps_gen_});
}

void Dispatcher::PumpRule(int r) {
  for (ClassId c = 0; c < queue_.class_count(); ++c) {
    if (queue_.size(c) && CappedRule(c) == r) PumpClass(c);
  }
}

// ---------------------------------------------------------------- views

std::string Dispatcher::UnroutableWarning(const std::vector<std::string>& skills) {
  WorkerIndex& index = workers_.index();
  if (!index.Matching(skills).empty()) return "";
  if (skills.empty()) return "no worker has connected yet; the task waits for one";
  std::string never;
  for (const std::string& skill : skills) {
    if (index.Matching({skill}).empty()) never += (never.empty() ? "" : ", ") + skill;
  }
  if (never.empty()) {
    return "no worker has offered all of these skills together since pincerd started; the task "
           "waits for one that does";
  }
  return "no worker has offered skill " + never +
         " since pincerd started; the task waits for one that does";
}

uint64_t Dispatcher::Unroutable() {
  uint64_t n = 0;
  for (ClassId c = 0; c < queue_.class_count(); ++c) {
    if (queue_.size(c) && !workers_.index().AnyConnected(queue_.skills(c))) n += queue_.size(c);
  }
  return n;
}

Why Dispatcher::WaitReason(const Task& t) {
  switch (t.where) {
    case Task::Where::kSessionWait:
      return {WhyCode::kSessionBusy, "its session's previous task is still running"};
    case Task::Where::kPinned:
      if (const Worker* home = workers_.Find(t.worker)) {
        return {WhyCode::kSessionWorker, "waiting for its session's worker " + home->id_str};
      }
      return {WhyCode::kSessionWorker, "waiting for its session's worker"};
    case Task::Where::kBackoff:
      return {WhyCode::kRetryBackoff, "retrying after backoff until " + UtcText(t.retry_at_ms)};
    case Task::Where::kHeld:
      return {WhyCode::kAwaitingHolder, "waiting for worker " + t.rec.worker +
                                            ", which ran it, to come back for it until " +
                                            UtcText(t.retry_at_ms)};
    case Task::Where::kStopping:
      if (const Worker* w = workers_.Find(t.stopping_on)) {
        for (const Worker::Stopping& s : w->stopping) {
          if (s.task == t.rec.id) {
            return {WhyCode::kAttemptStopping, "waiting for worker " + w->id_str +
                                                   " to confirm attempt " +
                                                   std::to_string(s.attempt) + " stopped"};
          }
        }
      }
      return {WhyCode::kAttemptStopping, "waiting for its last attempt to stop"};
    case Task::Where::kTriage:
      if (const Task* step = tasks_.Find(t.triage)) {
        return {WhyCode::kTriage, "waiting for its triage step " + step->id_string() + " (skill " +
                                      (step->rec.skills.empty() ? "" : step->rec.skills[0]) + ", " +
                                      std::string(TaskStateName(step->rec.state)) + ")"};
      }
      return {WhyCode::kTriage, "waiting for its triage step"};
    default:
      break;
  }
  if (const int r = CappedRule(t.cls); r != RuleCaps::kNone && !caps_.Open(r, clock_.Now())) {
    return caps_.Why(r, clock_.Now());
  }
  WorkerIndex& index = workers_.index();
  const std::vector<std::string>& skills = queue_.skills(t.cls);
  if (!index.AnyConnected(skills)) {
    std::vector<std::string> missing;
    for (const std::string& skill : skills) {
      if (!index.AnyConnected({skill})) missing.push_back(skill);
    }
    if (missing.size() == 1) return {WhyCode::kMissingSkill, "no worker has skill " + missing[0]};
    std::string list;
    for (const auto& s : (missing.empty() ? skills : missing))
      list += (list.empty() ? "" : ", ") + s;
    if (skills.empty()) return {WhyCode::kNoWorker, "no worker is connected"};
    if (missing.empty()) {
      return {WhyCode::kNoWorkerWithAllSkills, "no worker has all of the skills " + list};
    }
    return {WhyCode::kMissingSkill, "no worker has skills " + list};
  }
  int connected = 0, routable = 0;
  for (ProfileId p : index.Matching(skills)) {
    connected += index.profile(p).connected;
    routable += index.profile(p).routable;
  }
  if (routable == 0) {
    return {WhyCode::kWorkersUnavailable,
            "all " + std::to_string(connected) + " matching workers are draining or ejected"};
  }
  const std::string full = "all " + std::to_string(routable) + " matching workers are full";
  if (t.rec.parent == 0) return {WhyCode::kWorkersFull, full};
  const auto [slots, held] = SlotsHeldByAncestors(t);
  if (held == 0) return {WhyCode::kWorkersFull, full};
  if (held == slots) {
    return {WhyCode::kAncestorsHoldWorkers,
            full + " with its own ancestors, which wait for it: give these workers more " +
                "slots than the tree is deep (docs/patterns.md)"};
  }
  return {WhyCode::kWorkersFull, full + " (" + std::to_string(held) + " of " +
                                     std::to_string(slots) + " slots held by its own ancestors)"};
}

std::pair<int, int> Dispatcher::SlotsHeldByAncestors(const Task& t) {
  std::vector<TaskId> ancestors;
  for (TaskId up = t.rec.parent;
       up != 0 && ancestors.size() <= static_cast<size_t>(config_.tasks.max_depth);) {
    ancestors.push_back(up);
    const Task* parent = tasks_.Find(up);
    up = parent ? parent->rec.parent : 0;
  }
  int slots = 0, held = 0;
  WorkerIndex& index = workers_.index();
  for (ProfileId p : index.Matching(queue_.skills(t.cls))) {
    for (const WorkerIndex::TurnKey& k : index.profile(p).rotation) {
      const Worker* w = workers_.Find(k.id);
      if (!w) continue;
      for (TaskId id : w->tasks) {
        ++slots;
        held += std::find(ancestors.begin(), ancestors.end(), id) != ancestors.end();
      }
    }
  }
  return {slots, held};
}

// ------------------------------------------------------------- encoding

void Dispatcher::SendTask(const Task& t, const Worker& w) {
  std::string* out = outbox_.Buffer(w.id);
  if (!out) return;
  const TaskRecord& r = t.rec;
  AppendTask(*out,
             {.id = r.id,
              .skills = queue_.skills(t.cls),  // its own, or those its triage decided
              .payload = r.payload,
              .attempt = r.attempts,
              .session = r.session,
              .deadline_ms = r.timeout_ms > 0 ? std::optional<int64_t>(r.started_ms + r.timeout_ms)
                                              : std::nullopt,
              .triage = t.triage_step});
}

void Dispatcher::SendEnd(const Outcome& r, ConnId conn, int64_t req) {
  std::string* out = outbox_.EndBuffer(conn, req);
  if (!out) return;
  AppendEnd(*out,
            {.req = req,
             .id = r.id,
             .state = TaskStateName(r.state),
             .output = r.output,
             .error = r.state == TaskState::kSucceeded ? std::string_view() : r.error,
             .attempts = r.attempts,
             .worker = r.worker},
            r.errors);
}

}  // namespace pincer
