// A min-heap of deadlines. Entries are never removed early: each carries a
// generation, and the owner checks at fire time whether it still applies
// (a task's attempt number, a worker's last sign of life). This keeps
// arming O(log n) and cancelling free.
#pragma once

#include <cstdint>
#include <optional>
#include <queue>
#include <vector>

#include "common/clock.h"

namespace pincer {

enum class DeadlineKind : uint8_t {
  kAttempt,    // id = task, gen = attempt number
  kAffinity,   // id = task, gen = pin generation
  kQueueWait,  // id = task, gen = queue generation
  kHeartbeat,  // id = worker
  kTurnWait,   // id = task, gen = attempts: stop waiting for the rotation
  kEjection,   // id = worker, gen = ejection generation: the cool-off is over
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

}  // namespace pincer
