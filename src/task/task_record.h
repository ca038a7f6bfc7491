// What pincer knows of a task and keeps across restarts. The core's Task
// wraps one of these with runtime-only state (queue position, waiters).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/usage.h"

namespace pincer {

using TaskId = uint64_t;

enum class TaskState : uint8_t { kQueued, kRunning, kSucceeded, kFailed, kCancelled, kTimedOut };

std::string_view TaskStateName(TaskState s);
// Returns false for an unknown name.
bool ParseTaskState(std::string_view name, TaskState& out);
inline bool IsEnded(TaskState s) { return s >= TaskState::kSucceeded; }

struct AttemptError {
  int attempt = 0;
  std::string worker;  // worker id, e.g. "w3"
  std::string error;
};

// A task's own retry backoff, given at submit; overrides tasks.retry_backoff.
struct TaskBackoff {
  int64_t initial_ms = 0;
  int64_t max_ms = 0;
  double jitter = 0;

  bool operator==(const TaskBackoff&) const = default;
};

struct TaskRecord {
  TaskId id = 0;                    // shown as "t<id>"
  std::vector<std::string> skills;  // sorted, unique
  std::string payload;              // raw JSON; "" = null
  int64_t priority = 0;
  int64_t timeout_ms = 0;  // per attempt; 0 = none
  int max_attempts = 3;
  std::string session;       // "" = none
  std::string key;           // idempotency key; "" = none
  bool has_backoff = false;  // `backoff` set: it, not tasks.retry_backoff
  TaskBackoff backoff;
  TaskId parent = 0;  // the task whose worker submitted this one (a subtask); 0 = none

  TaskState state = TaskState::kQueued;
  int attempts = 0;    // attempts started
  std::string worker;  // worker id of the current or last attempt
  std::string output;  // raw JSON; "" = null
  std::string error;   // last error
  std::vector<AttemptError> errors;
  int64_t created_ms = 0;
  int64_t started_ms = 0;  // 0 = never
  int64_t ended_ms = 0;    // 0 = not ended
  TaskUsage usage;         // summed over its attempts
};

// What an `end` event tells of a task: its id and how it ended. The
// strings point into a TaskRecord or into an encoded record.
struct Outcome {
  TaskId id = 0;
  TaskState state = TaskState::kQueued;
  int attempts = 0;
  std::string_view worker;
  std::string_view output;  // raw JSON; "" = null
  std::string_view error;
  std::span<const AttemptError> errors;

  static Outcome Of(const TaskRecord& r) {
    return {r.id, r.state, r.attempts, r.worker, r.output, r.error, r.errors};
  }
};

std::string TaskIdString(TaskId id);
// Parses "t123"; returns 0 for anything else.
TaskId ParseTaskId(std::string_view s);

}  // namespace pincer
