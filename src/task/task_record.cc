#include "task/task_record.h"

#include <charconv>
#include <cstdint>

namespace pincer {

std::string_view TaskStateName(TaskState s) {
  switch (s) {
    case TaskState::kQueued:
      return "queued";
    case TaskState::kRunning:
      return "running";
    case TaskState::kSucceeded:
      return "succeeded";
    case TaskState::kFailed:
      return "failed";
    case TaskState::kCancelled:
      return "cancelled";
    case TaskState::kTimedOut:
      return "timed_out";
  }
  return "unknown";
}

bool ParseTaskState(std::string_view name, TaskState& out) {
  for (TaskState s : {TaskState::kQueued, TaskState::kRunning, TaskState::kSucceeded,
                      TaskState::kFailed, TaskState::kCancelled, TaskState::kTimedOut}) {
    if (TaskStateName(s) == name) {
      out = s;
      return true;
    }
  }
  return false;
}

std::string TaskIdString(TaskId id) {
  char buf[24] = "t";
  auto [end, ec] = std::to_chars(buf + 1, buf + sizeof(buf), id);
  return std::string(buf, end);
}

TaskId ParseTaskId(std::string_view s) {
  if (s.size() < 2 || s[0] != 't') return 0;
  TaskId id = 0;
  auto [end, ec] = std::from_chars(s.data() + 1, s.data() + s.size(), id);
  if (ec != std::errc() || end != s.data() + s.size()) return 0;
  return id;
}

}  // namespace pincer
