// Session placement (docs/architecture.md, "Placement"): tasks sharing a
// session key run one at a time, in submit order, on the session's home
// worker (the one that ran its last task) while it lives. A task whose home
// is full waits pinned to it, up to routing.affinity_wait.
//
// Sessions owns that state: each session's turn, the tasks waiting behind
// it, its home; and per worker, the tasks pinned to it and the sessions it
// is home to. It decides; the Dispatcher carries out (assigns, queues, arms
// the affinity deadline) and tells it what happened. Workers are known by
// id only; a worker's entry lives from the first session state it gets
// until WorkerGone.
//
// Threading: every method runs on the event-loop thread.
#pragma once

#include <cstddef>
#include <deque>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/task.h"
#include "queue/task_queue.h"
#include "registry/worker_registry.h"
#include "routing/worker_index.h"
#include "task/task_record.h"

namespace pincer {

class Sessions {
 public:
  // Session task `t` is to be placed. When another task of its session
  // holds the turn, `t` waits behind it (Where::kSessionWait) and this
  // returns false. Otherwise `t` holds the turn, and `home` is set to the
  // session's home worker if that can run `t` now or once a slot frees
  // (connected, routable, has its skills), else to null.
  // `skills`: those the task is routed by (its own, or its triage's).
  bool TakeTurn(Task& t, const std::vector<std::string>& skills, WorkerRegistry& workers,
                Worker*& home);
  bool TakeTurn(Task& t, WorkerRegistry& workers, Worker*& home) {
    return TakeTurn(t, t.rec.skills, workers, home);
  }
  // Session task `t` keeps its session's turn while it waits out a retry
  // backoff: it takes the turn if nobody holds it. False when another task
  // of its session holds it.
  bool HoldTurn(const Task& t);
  // Session task `t` waits for its home worker `home` (Where::kPinned).
  void Pin(Task& t, WorkerId home);
  // Takes `t` out of where it waits here (Where::kPinned or kSessionWait).
  // The caller sets t.where.
  void Unpin(Task& t);
  void StopWaiting(const Task& t);
  // Session task `t` was assigned to worker `w`: `w` becomes its session's home.
  void SetHome(const Task& t, WorkerId w);
  // Session task `t` ended: if it held the turn, the turn passes on.
  // Returns the task to place next (0 = none; its where is still
  // kSessionWait). A session with nothing left to remember is dropped.
  TaskId EndTurn(const Task& t, const WorkerRegistry& workers);

  // The best task pinned to worker `w`; null when none. Cheap when no task
  // is pinned anywhere (the common case: FillWorker asks per slot).
  const QueueEntry* PinnedHead(WorkerId w) const {
    if (pinned_ == 0) return nullptr;
    auto it = workers_.find(w);
    if (it == workers_.end() || it->second.pinned.empty()) return nullptr;
    return &*it->second.pinned.begin();
  }
  // Removes PinnedHead(w). REQUIRES: it is not null.
  void PopPinned(WorkerId w);
  // Worker `w` takes nothing new (draining, ejected): the tasks pinned to
  // it, best first, no longer are; the caller places them elsewhere.
  std::vector<TaskId> TakePinned(WorkerId w);
  // Worker `w` is gone: its sessions lose their home, and its entry is
  // dropped. Returns the tasks that were pinned to it, best first.
  std::vector<TaskId> WorkerGone(WorkerId w);

  std::size_t size() const { return sessions_.size(); }

 private:
  struct Session {
    WorkerId home = 0;
    TaskId head = 0;  // the task queued-to-run or running now; 0 = none
    std::deque<TaskId> pending;
  };
  struct AtWorker {
    std::set<QueueEntry> pinned;            // session tasks waiting for this worker
    std::unordered_set<std::string> homed;  // the sessions it is home to
  };

  std::unordered_map<std::string, Session> sessions_;
  std::unordered_map<WorkerId, AtWorker> workers_;
  std::size_t pinned_ = 0;  // tasks pinned, over all workers
};

}  // namespace pincer
