// Waiting tasks, grouped by the skill set they require (a "class"), each
// class ordered by priority (higher first) then submit order. A worker with
// a free slot takes the best head among the classes its skills cover, so a
// task nobody can run never blocks one behind it that somebody can.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "routing/worker_index.h"
#include "task/task_record.h"

namespace pincer {

using ClassId = uint32_t;

struct QueueEntry {
  int64_t priority;
  uint64_t seq;  // submit order
  TaskId id;
  // Higher priority first, then older first.
  bool operator<(const QueueEntry& o) const {
    if (priority != o.priority) return priority > o.priority;
    if (seq != o.seq) return seq < o.seq;
    return id < o.id;
  }
};

class TaskQueue {
 public:
  // The class for a sorted, unique skill set; created on first use.
  ClassId ClassFor(const std::vector<std::string>& skills);
  const std::vector<std::string>& skills(ClassId c) const { return classes_[c].skills; }
  std::size_t class_count() const { return classes_.size(); }
  std::size_t size(ClassId c) const { return classes_[c].waiting.size(); }
  std::size_t total() const { return total_; }

  void Push(ClassId c, const QueueEntry& e);
  bool Erase(ClassId c, const QueueEntry& e);
  const QueueEntry* Head(ClassId c) const;

  // Classes whose every skill is in `worker_skills` (sorted), cached per
  // profile. The reference stays valid until a new class is created.
  const std::vector<ClassId>& CoveredBy(ProfileId profile,
                                        const std::vector<std::string>& worker_skills);

  // The best head among `classes`, with its class; nullopt when all empty.
  std::optional<std::pair<ClassId, QueueEntry>> Best(const std::vector<ClassId>& classes) const;
  // The same, among the classes whose head `take(class, head)` accepts.
  template <typename Pred>
  std::optional<std::pair<ClassId, QueueEntry>> BestIf(const std::vector<ClassId>& classes,
                                                       Pred take) const {
    std::optional<std::pair<ClassId, QueueEntry>> best;
    for (ClassId c : classes) {
      const QueueEntry* head = Head(c);
      if (head && (!best || *head < best->second) && take(c, *head)) best.emplace(c, *head);
    }
    return best;
  }

 private:
  struct Class {
    std::vector<std::string> skills;
    std::set<QueueEntry> waiting;
  };
  std::vector<Class> classes_;
  std::map<std::vector<std::string>, ClassId> class_ids_;
  std::vector<std::optional<std::vector<ClassId>>> covered_cache_;  // by profile
  std::size_t total_ = 0;
};

}  // namespace pincer
