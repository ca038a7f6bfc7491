// The dispatcher: the task state machine and the placement of tasks on
// workers. Pure: it never touches a socket, a file or the system clock.
// Events come in as calls; lines go out through the Outbox; durable changes
// are recorded in the Store. The daemon writes the recorded changes off
// the loop and lets a line to a client out only once the changes it tells
// of are durable (daemon/answer_gate.h).
//
// Threading: every method runs on the event-loop thread.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "common/clock.h"
#include "common/status.h"
#include "config/config.h"
#include "core/deadlines.h"
#include "core/ended_archive.h"
#include "core/outbox.h"
#include "core/outlier.h"
#include "core/rule_caps.h"
#include "core/sessions.h"
#include "core/task.h"
#include "core/task_table.h"
#include "core/triage.h"
#include "core/usage_book.h"
#include "core/why.h"
#include "protocol/messages.h"
#include "queue/task_queue.h"
#include "registry/worker_registry.h"
#include "routing/strategy.h"
#include "store/store.h"

namespace pincer {

struct DispatcherStats {
  uint64_t submitted = 0;
  uint64_t queued = 0;
  uint64_t running = 0;
  uint64_t succeeded = 0;
  uint64_t failed = 0;
  uint64_t cancelled = 0;
  uint64_t timed_out = 0;
};

// Observes task and worker events, e.g. for metrics. All methods optional.
class DispatchObserver {
 public:
  virtual ~DispatchObserver() = default;
  virtual void TaskSubmitted(const Task&) {}
  virtual void TaskEnded(const Task&, double /*seconds_since_submit*/) {}
  virtual void AttemptEnded(const Worker&, const Task&, bool /*ok*/, double /*seconds*/) {}
  // An attempt's result reported `usage` (already added to the task's).
  virtual void UsageReported(const Worker&, const Task&, const TaskUsage&) {}
  // Outlier ejection took the worker out of routing / let it back in.
  virtual void WorkerEjected(const Worker&, const Ejection&) {}
  virtual void WorkerReturned(const Worker&) {}
};

class Dispatcher {
 public:
  // The longest a waiting task is held back for the worker whose turn it is
  // (strict round-robin) while another eligible worker is free.
  static constexpr std::chrono::milliseconds kMaxTurnWait{1000};
  // Live tasks one client connection may wait on at once (`wait` and
  // `submit` with `wait: true`): what a client can make pincerd hold for it.
  static constexpr std::size_t kMaxWaitsPerConnection = 10000;
  // A waiter weighs its task's payload and this (the waiter, an end line's
  // other fields) in its client's backlog (Outbox::Waiting).
  static constexpr int64_t kWaitBytes = 256;

  // `store`, `clock` and `outbox` must outlive the dispatcher.
  Dispatcher(const Config& config, Store& store, const Clock& clock, Outbox& outbox);

  // Applies a new config (routing, limits, defaults, heartbeat). Tasks and
  // connections are kept. REQUIRES: the config passed ValidateConfig.
  void Reconfigure(const Config& config);
  const Config& config() const { return config_; }

  // Recovery: replays a stored task through the live code paths. Running
  // tasks come back queued with their attempt counted as lost.
  void Restore(TaskRecord&& rec);
  // After the last Restore: tasks of a triage rule whose triage step was
  // not found get one now (docs/configuration.md, "Triage").
  void FinishRestore();

  // ---- Workers ----
  // A new worker id ("w12"), unique across restarts (reserved in blocks
  // like task ids, on a counter of its own). store_unavailable when the
  // reservation cannot be written.
  Status NewWorkerId(std::string& id);
  // Registers a worker connection that said hello, as worker `id` (from
  // NewWorkerId; empty: a new one). Returns its id.
  std::string AddWorker(ConnId conn, const Hello& hello, std::string pool = "",
                        std::string id = "");
  void OnResult(ConnId conn, const ResultMsg& msg);
  void OnProgress(ConnId conn, const ProgressMsg& msg);
  // The worker's process for a cancelled or timed-out attempt is gone: its
  // slot is free and the task may start again (docs/protocol.md, "One
  // attempt at a time").
  void OnStopped(ConnId conn, const StoppedMsg& msg);
  void OnHeartbeat(ConnId conn, const HeartbeatMsg& msg);
  // A worker's own `drain`: like Drain, and `drained` once it holds nothing.
  void OnWorkerDrain(ConnId conn);
  // Any line from a worker is a sign of life.
  void Touch(ConnId conn);
  // The connection is gone (closed by the peer or by us): requeue its tasks.
  void OnDisconnect(ConnId conn, const std::string& reason);
  Status Drain(const std::string& worker);  // by id or name
  // The worker's connection holds too much unsent output (it does not read
  // its tasks): no tasks are offered to it until it is cleared again, then
  // it is filled up at once. Its running tasks go on.
  void SetBacklogged(ConnId conn, bool backlogged);
  // Declares a worker dead (its process is gone): like a disconnect, and
  // its connection is closed so a late result can never land.
  void KillWorker(WorkerId id, const std::string& reason);

  // ---- Tasks ----
  struct SubmitOutcome {
    Status status;
    const Task* task = nullptr;
    bool existing = false;
    // For the submitter (the answer's `warning`), e.g. no worker has ever
    // offered the task's skills; "" = none.
    std::string warning;
  };
  // `from`: the connection it came on. A submit with a `parent` must come
  // from the worker that runs that task now (unknown_task otherwise), and
  // may nest at most tasks.max_depth deep (invalid_request).
  SubmitOutcome Submit(const SubmitReq& req, ConnId from = 0);
  // The subtasks of task `id`, in submit order; null when it has none.
  const std::vector<TaskId>* ChildrenOf(TaskId id) const {
    if (children_.empty()) return nullptr;  // no subtasks at all: most pincerds
    auto it = children_.find(id);
    return it == children_.end() ? nullptr : &it->second;
  }
  // Registers (conn, req) to get the end event of task `id`; sent at once
  // if it has ended. A live task has one waiter per connection, and a
  // connection waits on at most kMaxWaitsPerConnection live tasks. Not ok,
  // and nothing sent, when there is no such task (not_found), `conn`
  // already waits on it (already_waiting) or on too many (too_many_waits).
  // `watch`: a live task's latest progress, if any, is sent at once
  // (docs/protocol.md, "watch"); later progress goes to every waiter.
  Status AddWaiter(TaskId id, ConnId conn, int64_t req, bool watch = false);
  // Live tasks `conn` waits on.
  std::size_t WaitsOf(ConnId conn) const {
    auto it = waits_.find(conn);
    return it == waits_.end() ? 0 : it->second.live;
  }
  // A connection closed: its waiters leave the tasks they wait on.
  void DropWaiters(ConnId conn);
  Status Cancel(TaskId id) { return Cancel(id, "cancelled"); }
  Status Retry(TaskId id);  // a failed/timed_out task back to the queue, attempts reset
  // Drops a task whose insert the store failed to commit: it was never
  // accepted, so it goes as if it never came (a worker running it is sent
  // `cancel`, a client waiting on it its end).
  void Forget(TaskId id);
  // Not ok while the store cannot commit: submits and retries are refused
  // with store_unavailable (the daemon sets it back once a commit works).
  void SetStoreStatus(Status st) { store_status_ = std::move(st); }
  // The task with this id, live or ended; null when pincerd does not know
  // it. An ended task is read back from the archive into one view object:
  // the pointer is good until the next FindTask or ForEachTask.
  const Task* FindTask(TaskId id);
  // The state of the task with this id, without reading an ended one back.
  std::optional<TaskState> StateOf(TaskId id) const;
  // Why a queued task waits, as a code and in words (docs/protocol.md,
  // `why_code` and `why`).
  Why WaitReason(const Task& task);
  std::string WhyWaiting(const Task& task) { return WaitReason(task).text; }
  // Slots of the routable workers that could take subtask `t`, and how many
  // of them its ancestors hold (a parent keeps its slot while it waits).
  std::pair<int, int> SlotsHeldByAncestors(const Task& t);
  // The submit answer's `warning` for a task whose skills no worker has
  // offered since pincerd started; "" when some worker has.
  std::string UnroutableWarning(const std::vector<std::string>& skills);

  // What triage did for task `id` (docs/configuration.md, "Triage"); nullopt
  // when the task had no triage step.
  struct TriageView {
    std::string skill;  // the triage skill
    TaskId step = 0;    // the triage step's task id
    std::string worker;
    TriageDecision decision;
  };
  std::optional<TriageView> TriageOf(TaskId id);
  // Some task had a triage step since pincerd started (else TriageOf is
  // nullopt for every task).
  bool triage_seen() const { return triage_seen_; }

  // ---- Time ----
  std::optional<TimePoint> NextDeadline() const;
  // Deadlines armed and not yet fired or withdrawn (a leak check for tests).
  std::size_t deadlines_pending() const {
    return deadlines_.size() + attempt_deadlines_.size() + queue_deadlines_.size() +
           ttl_deadlines_.size();
  }
  // Handles every deadline due now, and purges ended tasks past
  // result_ttl.
  void RunDue();

  // Stop taking new tasks (shutdown). Running tasks go on.
  void StopAccepting() { accepting_ = false; }
  // Shutdown's drain timeout passed: every worker is sent `cancel` (reason
  // `shutdown`) for each attempt it runs. Nothing else changes: the
  // attempts are lost with pincerd, as in a crash (Restore).
  void CancelRunningForShutdown();
  bool accepting() const { return accepting_; }

  // ---- Views ----
  const DispatcherStats& stats() const { return stats_; }
  // Usage the workers reported since pincerd started.
  const UsageBook& usage() const { return usage_; }
  uint64_t Unroutable();
  const WorkerRegistry& workers() const { return workers_; }
  WorkerRegistry& workers() { return workers_; }
  const TaskTable& tasks() const { return tasks_; }
  // Tasks of skill class `c` pincerd still holds, live or ended and not yet
  // purged or forgotten (metrics drop a skill set's series at 0).
  uint32_t held(ClassId c) const { return c < held_.size() ? held_[c] : 0; }
  // Calls fn(const Task&) for every task in id order, live and ended (or
  // only those in state `only`), until fn returns false. Ended tasks are
  // read back into the view FindTask uses.
  template <typename F>
  void ForEachTask(F&& fn, std::optional<TaskState> only = std::nullopt) {
    tasks_.ForEachSlot([&](TaskId, Task* live, TaskTable::EndedRef ref) {
      if (live) return only && live->rec.state != *only ? true : fn(std::as_const(*live));
      if (only && ended_.entry(ref).state != *only) return true;
      ended_.Read(ref, view_);
      return fn(std::as_const(view_));
    });
  }
  // Calls fn(TaskId, TaskState) for every task, live and ended, oldest or
  // newest id first, without reading ended tasks back (fn may call
  // FindTask). Stops when fn returns false.
  template <typename F>
  void ForEachTaskState(bool newest_first, F&& fn) const {
    auto visit = [&](TaskId id, Task* live, TaskTable::EndedRef ref) {
      return fn(id, live ? live->rec.state : ended_.entry(ref).state);
    };
    if (newest_first) {
      tasks_.ForEachSlotReverse(visit);
    } else {
      tasks_.ForEachSlot(visit);
    }
  }
  void set_observer(DispatchObserver* o) { observer_ = o; }

 private:
  const Strategy& StrategyFor(ClassId cls);
  void RebuildStrategies();

  // Placement.
  void Place(Task& t);         // session rules, then the strategy
  void PlaceGeneral(Task& t);  // the strategy only
  void Assign(Task& t, Worker& w);
  // What Assign and AdoptTask share: `t`'s current attempt runs on `w`.
  void RunOn(Task& t, Worker& w);
  // A reconnecting worker's hello listed these tasks (Hello::tasks): each
  // it may take over goes on running there as the same attempt; the others
  // it is told to drop (`cancel`, reason `not_adopted`).
  void AdoptListed(Worker& w, const std::vector<HeldTaskRef>& listed);
  // Why worker `w` may not adopt `t` (null: no such live task), or "".
  std::string AdoptProblem(const Task* t, const Worker& w, const HeldTaskRef& ref);
  void AdoptTask(Task& t, Worker& w);
  // A task recovered running (its worker may come back for it) waits
  // heartbeat.adopt_grace for it (Where::kHeld), then is placed (EndHold).
  void HoldForHolder(Task& t);
  void EndHold(Task& t);
  // A worker that does not adopt (its hello gave no `tasks`) joined: the
  // held tasks it can run are its fleet's, which cannot adopt them: they
  // are placed now.
  void EndHoldsFor(const Worker& w);
  void FillWorker(Worker& w);  // give a free worker the best task it can take
  void PumpClass(ClassId c);   // give a class's waiting heads to the workers its strategy picks
  void Unqueue(Task& t);       // take a queued task out of wherever it waits
  // A worker that takes nothing new (draining, ejected): the session tasks
  // waiting for it go elsewhere now.
  void ReleasePinned(Worker& w);
  // Session tasks no longer pinned to a worker go where the strategy picks.
  void PlaceUnpinned(const std::vector<TaskId>& ids);

  // Lifecycle.
  // The attempt failed (or was lost with its worker): the task goes back to
  // the queue while attempts remain, else ends. `back_off`: it first waits
  // out its retry backoff, at least `retry_after_ms` (capped at
  // tasks.retry_backoff.max).
  void LoseAttempt(Task& t, const std::string& error, bool timed_out, bool back_off = false,
                   int64_t retry_after_ms = 0);
  // The pause before the attempt after attempt `failed` (1-based): the
  // task's own backoff if it has one, else tasks.retry_backoff.
  Duration RetryDelay(const TaskRecord& r, int failed, int64_t retry_after_ms);
  // Parks a queued task until `delay` has passed (Where::kBackoff).
  void BackOff(Task& t, Duration delay);
  void End(Task& t, TaskState state);
  // Ends live task `t` cancelled with `error` (its worker is sent `cancel`).
  Status Cancel(TaskId id, std::string error);
  // Subtasks: checks a submit's `parent` (from connection `from`) and sets
  // `parent` to its id; not ok when it is refused.
  Status CheckParent(const SubmitReq& req, ConnId from, TaskId& parent);
  // Task `id` ended in `state`: its unfinished subtasks are cancelled.
  void CancelChildren(TaskId id, TaskState state);
  void ReleaseSlot(Task& t);  // frees the slot of a running task's worker
  // Cuts the running attempt short: its worker gets `cancel` with `reason`.
  // A worker that confirms stops keeps the slot taken, and the task is not
  // started again, until it sends `stopped` or is gone (StopConfirmed);
  // for any other worker this is ReleaseSlot.
  void StopAttempt(Task& t, std::string_view reason);
  // Worker `worker` no longer runs task `id`'s last attempt: a task parked
  // for that (Where::kStopping) is placed.
  void StopConfirmed(WorkerId worker, TaskId id);
  // Session task `t` ended: the next task of its session, if any, is placed.
  void SessionTaskEnded(Task& t);
  // Its tasks are placed again at once; until one starts elsewhere, a
  // worker that reconnects listing it may still adopt it (AdoptListed).
  void RemoveWorker(Worker& w, const std::string& reason);

  // Deadlines.
  void OnAttemptDeadline(Task& t);
  void OnHeartbeatDeadline(WorkerId id);
  void OnEjectionDeadline(WorkerId id, uint64_t generation);
  // Feeds an attempt's end to outlier detection; may eject `w` (before the
  // attempt's task is placed again, so it cannot land on `w` once more).
  void NoteAttempt(Worker& w, bool ok, double seconds);
  void ArmQueueWait(Task& t);
  // tasks.queue_ttl: arms the limit of a task that is waiting and has none.
  void ArmQueueTtl(Task& t);
  // The task waited longer than tasks.queue_ttl: it ends timed_out.
  void ExpireQueued(Task& t);

  // Triage (core/triage.h). The index of class `c`'s rule if it triages,
  // else -1 (cached by class, like the strategy).
  int TriageRuleOf(ClassId c);
  // Submits task `t`'s triage step for rule `rule`; `t` waits (kTriage).
  void StartTriage(Task& t, int rule);
  // Step `step` (of task `t`, waiting in kTriage) ended: `t` is routed by
  // its decision, or by its own skills, and placed.
  void ApplyTriage(Task& t, const TaskRecord& step);
  // Moves task `t` to skill class `c` (a triage decision).
  void SetClass(Task& t, ClassId c);

  // Rule caps (routing.rules[].max_running, .rate). True when class `c`'s
  // rule may not start a task now (and a reopening is armed).
  bool CapHolds(ClassId c);
  int CappedRule(ClassId c) {
    return caps_.any() ? caps_.RuleOf(c, queue_.skills(c)) : RuleCaps::kNone;
  }
  // Gives rule `r`'s waiting tasks to free workers, up to its caps, at `at`.
  void ArmCapPump(int r, TimePoint at);
  void PumpRule(int r);
  // Counts the running tasks under the current rules again (reload).
  void RecountCaps();
  void ArmTurnWait(Task& t);
  void OnTurnWaitDeadline(Task& t);

  // Ended tasks: kept for status/wait until result_ttl, and at most
  // tasks.max_ended of them (docs/architecture.md, "Ended tasks").
  void PurgeEnded(TimePoint now, TaskId keep);
  // Removes ended task `id` (archive record `ref`): its key, its stored
  // row, its slot. Its record stays in the archive until purged.
  void DropEnded(TaskId id, EndedArchive::Ref ref);
  // Recovery archives ended tasks in id order; purges need end order.
  void SortEnded();

  // The task `task_id` if worker `conn` holds it in its current attempt
  // (`attempt`, 0 = not given) and sets `w`; otherwise answers
  // `unknown_task` or `stale_attempt` and returns null.
  Task* HeldTask(ConnId conn, const std::string& task_id, int64_t attempt, Worker*& w);

  void SendTask(const Task& t, const Worker& w);
  void SendEnd(const Outcome& o, ConnId conn, int64_t req);
  // The `progress` line of `t`'s latest progress to request `req` of `conn`.
  void SendProgress(const Task& t, ConnId conn, int64_t req);
  // What one waiter of `t` weighs in its client's backlog (Outbox::Waiting).
  static int64_t WaitWeight(const Task& t) {
    return static_cast<int64_t>(t.rec.payload.size()) + kWaitBytes;
  }
  void Save(const Task& t) {
    if (t.rec.id != placing_new_) store_.Update(t.rec);
  }
  // The next task id; store_unavailable when its block cannot be reserved.
  Status NewTaskId(TaskId& id);
  // Tasks are recycled: a purged task's buffers serve the next submit, so
  // a busy dispatcher does not allocate (and free, much later) per task.
  std::unique_ptr<Task> NewTask();
  // tasks_.Find(id) where the id comes from the dispatcher's own books
  // (queue, pinned, held): null only if those are out of step, which is
  // logged; the caller then drops the entry.
  Task* LiveTask(TaskId id, const char* what);
  void Recycle(std::unique_ptr<Task> t);

  Config config_;
  Store& store_;
  const Clock& clock_;
  Outbox& outbox_;
  DispatchObserver* observer_ = nullptr;

  TaskTable tasks_;
  std::vector<std::unique_ptr<Task>> spare_tasks_;
  std::unordered_map<std::string, TaskId> keys_;  // idempotency
  // Subtasks by parent id, in submit order (only tasks that have some):
  // kept while the parent is known, rebuilt from the records' `parent`
  // on recovery.
  std::unordered_map<TaskId, std::vector<TaskId>> children_;
  // What each client connection waits on (AddWaiter): how many live tasks
  // (bounded per connection), and their ids, for DropWaiters when it closes.
  // An ended task's id is not looked for in `ids` (a set's node per wait
  // cost more than the rest of the wait): it stays until the list is twice
  // as long as needed, when CompactWaits keeps only the live waits.
  struct ConnWaits {
    std::size_t live = 0;
    std::vector<TaskId> ids;
  };
  static constexpr std::size_t kWaitIdsSlack = 1024;
  void CompactWaits(ConnId conn, ConnWaits& waits);
  std::unordered_map<ConnId, ConnWaits> waits_;
  Sessions sessions_;
  TaskQueue queue_;
  WorkerRegistry workers_;
  DeadlineQueue deadlines_;
  TaskDeadlines attempt_deadlines_;  // running attempts' timeouts
  TaskDeadlines queue_deadlines_;    // waiting tasks' timeouts
  TaskDeadlines ttl_deadlines_;      // waiting tasks' tasks.queue_ttl
  RuleCaps caps_;
  std::vector<TimePoint> cap_pump_at_;  // by rule: the earliest pump armed; {} = none
  uint64_t caps_gen_ = 0;               // a reload's kRuleCap deadlines are stale
  std::vector<bool> class_offered_;     // by ClassId: some worker has offered its skills
  // Ended tasks in the order they ended (all share one result_ttl, so they
  // expire in this order too); purged from the front. A record whose task
  // was retried or forgotten since is no longer the one its id finds, and
  // is skipped.
  EndedArchive ended_;
  bool ended_unsorted_ = false;               // recovery appends in id order; sorted on first purge
  Task view_;                                 // an ended task read back (FindTask, ForEachTask)
  std::vector<AttemptError> outcome_errors_;  // an ended task's, read back (AddWaiter)
  OutlierDetector outlier_;

  std::unique_ptr<Strategy> default_strategy_;
  // Used when a task has waited kMaxTurnWait for its strategy's choice.
  std::unique_ptr<Strategy> fallback_strategy_;
  std::vector<std::pair<std::vector<std::string>, std::unique_ptr<Strategy>>> rule_strategies_;
  std::vector<const Strategy*> class_strategy_;  // cache by ClassId
  std::vector<uint32_t> held_;                   // by ClassId: see held()
  void Hold(ClassId c) {
    if (c >= held_.size()) held_.resize(c + 1, 0);
    ++held_[c];
  }

  // Triage: by ClassId, the class's triaging rule (-1 none, -2 not yet
  // looked up); whether any rule triages; tasks that Restore left waiting
  // for a step (FinishRestore).
  std::vector<int> class_triage_;
  bool any_triage_ = false;
  bool triage_seen_ = false;
  std::vector<TaskId> restore_triage_;
  std::vector<TaskId> held_for_holder_;  // tasks held for their worker (some may have moved on)
  Task triage_view_;                     // an ended triage step read back (TriageOf)

  DispatcherStats stats_;
  UsageBook usage_;
  // Ids are reserved in blocks (Store::ReserveIds): one durable write per
  // block. A run issues ids only from blocks it reserved itself: up to the
  // limits (0 until its first reservation).
  static constexpr uint64_t kTaskIdBlock = 100000;
  static constexpr uint64_t kWorkerIdBlock = 100;
  TaskId last_id_ = 0;
  TaskId task_limit_ = 0;
  uint64_t last_worker_ = 0;
  uint64_t worker_limit_ = 0;
  TaskId placing_new_ = 0;  // a task Submit places before its insert is recorded
  uint64_t next_seq_ = 1;
  std::minstd_rand jitter_rng_;  // retry backoff jitter; fixed seed, so tests replay
  bool accepting_ = true;
  Status store_status_;
};

}  // namespace pincer
