#include "core/sessions.h"

#include <algorithm>

namespace pincer {

bool Sessions::TakeTurn(Task& t, const std::vector<std::string>& skills, WorkerRegistry& workers,
                        Worker*& home) {
  Session& s = sessions_[t.rec.session];
  if (s.head != 0 && s.head != t.rec.id) {
    // One turn at a time: wait behind the session's current task.
    s.pending.push_back(t.rec.id);
    t.where = Task::Where::kSessionWait;
    return false;
  }
  s.head = t.rec.id;
  home = workers.Find(s.home);
  if (home) {
    const auto& matching = workers.index().Matching(skills);
    const bool fits = std::find(matching.begin(), matching.end(),
                                workers.index().ProfileOf(home->id)) != matching.end();
    if (!fits || !workers.Routable(*home)) home = nullptr;
  }
  return true;
}

bool Sessions::HoldTurn(const Task& t) {
  Session& s = sessions_[t.rec.session];
  if (s.head != 0 && s.head != t.rec.id) return false;
  s.head = t.rec.id;
  return true;
}

void Sessions::Pin(Task& t, WorkerId home) {
  if (workers_[home].pinned.insert(t.entry()).second) ++pinned_;
  t.where = Task::Where::kPinned;
  t.worker = home;
}

void Sessions::Unpin(Task& t) {
  if (auto it = workers_.find(t.worker); it != workers_.end()) {
    pinned_ -= it->second.pinned.erase(t.entry());
  }
  t.worker = 0;
}

void Sessions::StopWaiting(const Task& t) {
  auto it = sessions_.find(t.rec.session);
  if (it == sessions_.end()) return;
  std::deque<TaskId>& pending = it->second.pending;
  pending.erase(std::remove(pending.begin(), pending.end(), t.rec.id), pending.end());
}

void Sessions::SetHome(const Task& t, WorkerId w) {
  Session& s = sessions_[t.rec.session];
  if (s.home == w) return;
  if (auto old = workers_.find(s.home); old != workers_.end()) {
    old->second.homed.erase(t.rec.session);
  }
  s.home = w;
  workers_[w].homed.insert(t.rec.session);
}

TaskId Sessions::EndTurn(const Task& t, const WorkerRegistry& workers) {
  auto it = sessions_.find(t.rec.session);
  if (it == sessions_.end()) return 0;
  Session& s = it->second;
  if (s.head != t.rec.id) return 0;
  s.head = 0;
  if (!s.pending.empty()) {
    const TaskId next = s.pending.front();
    s.pending.pop_front();
    return next;
  }
  if (s.home == 0 || !workers.Find(s.home)) sessions_.erase(it);  // nothing left to remember
  return 0;
}

void Sessions::PopPinned(WorkerId w) {
  std::set<QueueEntry>& pinned = workers_.find(w)->second.pinned;
  pinned.erase(pinned.begin());
  --pinned_;
}

std::vector<TaskId> Sessions::TakePinned(WorkerId w) {
  std::vector<TaskId> ids;
  auto it = workers_.find(w);
  if (it == workers_.end()) return ids;
  for (const QueueEntry& e : it->second.pinned) ids.push_back(e.id);
  pinned_ -= it->second.pinned.size();
  it->second.pinned.clear();
  return ids;
}

std::vector<TaskId> Sessions::WorkerGone(WorkerId w) {
  std::vector<TaskId> ids = TakePinned(w);
  auto it = workers_.find(w);
  if (it == workers_.end()) return ids;
  for (const std::string& key : it->second.homed) {
    auto s = sessions_.find(key);
    if (s == sessions_.end() || s->second.home != w) continue;
    s->second.home = 0;
    if (s->second.head == 0 && s->second.pending.empty()) sessions_.erase(s);
  }
  workers_.erase(it);
  return ids;
}

}  // namespace pincer
