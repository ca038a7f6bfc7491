// The registry of connected workers: who they are, what they hold, how
// they are doing. It keeps the routing index in step with every change, so
// eligibility is always current.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/usage.h"
#include "registry/task_id_set.h"
#include "routing/worker_index.h"
#include "task/task_record.h"

namespace pincer {

enum class WorkerState : uint8_t { kReady, kDraining, kEjected };
std::string_view WorkerStateName(WorkerState s);

struct Worker {
  WorkerId id = 0;
  std::string id_str;  // "w<id>"
  std::string name;
  std::vector<std::string> skills;  // sorted, unique
  int capacity = 1;
  std::string labels;  // raw JSON object, "" = none
  std::string spawn_id;
  std::string pool;  // set for managed workers
  WorkerState state = WorkerState::kReady;
  // Its connection holds more unsent output than pincerd buffers for one
  // peer: it is offered no tasks until that drains (docs/protocol.md).
  bool backlogged = false;
  // It asked to drain itself (a worker's `drain`): it is sent `drained`
  // once it holds no task.
  bool drain_asked = false;
  bool heartbeat_ack = false;  // its hello asked for `heartbeat_ack` answers

  TaskIdSet tasks;  // attempts in flight, and those in `stopping`
  // Attempts cancelled or timed out whose process the worker has not yet
  // confirmed gone (`stopped`): each keeps its slot (docs/protocol.md, "One
  // attempt at a time"). Only for a worker that said `confirms_stop`.
  struct Stopping {
    TaskId task;
    int attempt;
  };
  std::vector<Stopping> stopping;
  bool confirms_stop = false;
  // Tasks its hello listed (`tasks`) that pincerd told it to drop; their
  // `stopped` is taken quietly.
  std::vector<TaskId> dropped;
  uint64_t completed = 0;
  uint64_t failed = 0;
  TaskUsage usage;  // reported by its results (model: the last one named)
  int consecutive_failures = 0;
  double cpu = -1;  // -1 = unknown
  int64_t rss_bytes = -1;
  int64_t connected_ms = 0;
  TimePoint last_heard;

  int inflight() const { return static_cast<int>(tasks.size()); }
};

class WorkerRegistry {
 public:
  // REQUIRES: id not registered. Returns the new worker; it stays valid until Remove(id).
  Worker& Add(std::unique_ptr<Worker> worker);
  void Remove(WorkerId id);
  Worker* Find(WorkerId id);
  const Worker* Find(WorkerId id) const;
  // Finds by "w12" or by name (first match).
  Worker* FindByName(std::string_view id_or_name);

  // A slot of `w` is taken by / given back from task `t`.
  void Acquire(Worker& w, TaskId t);
  void Release(Worker& w, TaskId t);
  void SetState(Worker& w, WorkerState s);
  void SetBacklogged(Worker& w, bool backlogged);
  bool Routable(const Worker& w) const { return w.state == WorkerState::kReady && !w.backlogged; }

  WorkerIndex& index() { return index_; }
  const std::unordered_map<WorkerId, std::unique_ptr<Worker>>& all() const { return workers_; }
  std::size_t size() const { return workers_.size(); }

 private:
  Worker* Lookup(WorkerId id) const;

  std::unordered_map<WorkerId, std::unique_ptr<Worker>> workers_;
  mutable WorkerId last_id_ = 0;  // the last worker found
  mutable Worker* last_ = nullptr;
  WorkerIndex index_;
};

}  // namespace pincer
