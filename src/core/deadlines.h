// Deadlines, two ways.
//
// DeadlineQueue: a min-heap whose entries are never removed early: each
// carries a generation, and the owner checks at fire time whether it still
// applies (a pin, a worker's last sign of life). Arming is O(log n) and
// cancelling free, which suits deadlines that are rare or short.
//
// TaskDeadlines: at most one deadline per task, withdrawn when what it
// guards is over (an attempt that answered, a task that left the queue).
// Attempt timeouts and queue waits run to minutes while hundreds of
// thousands of tasks a second pass: left in a heap, they would pile up.
#pragma once

#include <cstdint>
#include <optional>
#include <queue>
#include <set>
#include <utility>
#include <vector>

#include "common/clock.h"

namespace pincer {

enum class DeadlineKind : uint8_t {
  kAffinity,    // id = task, gen = pin generation
  kHeartbeat,   // id = worker
  kTurnWait,    // id = task, gen = attempts: stop waiting for the rotation
  kEjection,    // id = worker, gen = ejection generation: the cool-off is over
  kBackoff,     // id = task, gen = its retry_at_ms: its retry backoff is over
  kRuleCap,     // id = rule index, gen = caps generation: a rule cap may let tasks start
  kAdoptGrace,  // id = task, gen = its retry_at_ms: no worker came back to adopt it
};

struct Deadline {
  TimePoint at;
  DeadlineKind kind;
  uint64_t id;
  uint64_t gen;
  bool operator>(const Deadline& o) const { return at > o.at; }
};

class DeadlineQueue {
 public:
  void Push(const Deadline& d) { heap_.push(d); }
  std::optional<TimePoint> Next() const {
    if (heap_.empty()) return std::nullopt;
    return heap_.top().at;
  }
  // Pops the earliest deadline if it is due at `now`.
  std::optional<Deadline> PopDue(TimePoint now) {
    if (heap_.empty() || heap_.top().at > now) return std::nullopt;
    Deadline d = heap_.top();
    heap_.pop();
    return d;
  }
  std::size_t size() const { return heap_.size(); }

 private:
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<Deadline>> heap_;
};

class TaskDeadlines {
 public:
  // `slot` is the task's own record of its deadline ({} = none); a task
  // armed again moves to the new time.
  void Arm(TimePoint& slot, TimePoint at, uint64_t task) {
    Disarm(slot, task);
    slot = at;
    if (spare_.empty()) {
      set_.emplace(at, task);
    } else {  // reuse a node: no allocation per attempt
      auto node = std::move(spare_.back());
      spare_.pop_back();
      node.value() = {at, task};
      set_.insert(std::move(node));
    }
  }
  void Disarm(TimePoint& slot, uint64_t task) {
    if (slot == TimePoint{}) return;
    auto node = set_.extract({slot, task});
    if (node && spare_.size() < kMaxSpare) spare_.push_back(std::move(node));
    slot = TimePoint{};
  }
  std::optional<TimePoint> Next() const {
    if (set_.empty()) return std::nullopt;
    return set_.begin()->first;
  }
  // Removes and returns the task whose deadline is the earliest, if due at
  // `now`. The caller clears the task's slot.
  std::optional<uint64_t> PopDue(TimePoint now) {
    if (set_.empty() || set_.begin()->first > now) return std::nullopt;
    const uint64_t task = set_.begin()->second;
    set_.erase(set_.begin());
    return task;
  }
  std::size_t size() const { return set_.size(); }

 private:
  using Set = std::set<std::pair<TimePoint, uint64_t>>;
  static constexpr std::size_t kMaxSpare = 1024;
  Set set_;
  std::vector<Set::node_type> spare_;
};

}  // namespace pincer
