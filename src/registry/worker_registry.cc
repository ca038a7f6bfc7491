#include "registry/worker_registry.h"

namespace pincer {

std::string_view WorkerStateName(WorkerState s) {
  switch (s) {
    case WorkerState::kReady:
      return "ready";
    case WorkerState::kDraining:
      return "draining";
    case WorkerState::kEjected:
      return "ejected";
  }
  return "unknown";
}

Worker& WorkerRegistry::Add(std::unique_ptr<Worker> worker) {
  Worker& w = *worker;
  index_.Add(w.id, w.skills, w.capacity);
  index_.SetRoutable(w.id, Routable(w));
  workers_.emplace(w.id, std::move(worker));
  return w;
}

void WorkerRegistry::Remove(WorkerId id) {
  index_.Remove(id);
  if (last_id_ == id) last_ = nullptr;
  workers_.erase(id);
}

Worker* WorkerRegistry::Find(WorkerId id) { return Lookup(id); }
const Worker* WorkerRegistry::Find(WorkerId id) const { return Lookup(id); }

Worker* WorkerRegistry::Lookup(WorkerId id) const {
  // A worker's line is looked up several times in a row (heard from, holds
  // the task, frees the slot): the last one found is kept at hand.
  if (id == last_id_ && last_) return last_;
  auto it = workers_.find(id);
  if (it == workers_.end()) return nullptr;
  last_id_ = id;
  last_ = it->second.get();
  return last_;
}

Worker* WorkerRegistry::FindByName(std::string_view id_or_name) {
  for (auto& [id, w] : workers_) {
    if (w->id_str == id_or_name) return w.get();
  }
  for (auto& [id, w] : workers_) {
    if (w->name == id_or_name) return w.get();
  }
  return nullptr;
}

void WorkerRegistry::Acquire(Worker& w, TaskId t) {
  w.tasks.insert(t);
  index_.Picked(w.id, w.inflight());
}

void WorkerRegistry::Release(Worker& w, TaskId t) {
  if (w.tasks.erase(t)) index_.SetInflight(w.id, w.inflight());
}

void WorkerRegistry::SetState(Worker& w, WorkerState s) {
  w.state = s;
  index_.SetRoutable(w.id, Routable(w));
}

void WorkerRegistry::SetBacklogged(Worker& w, bool backlogged) {
  w.backlogged = backlogged;
  index_.SetRoutable(w.id, Routable(w));
}

}  // namespace pincer
