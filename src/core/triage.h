// Triage (routing.rules[].triage): a task of a triage rule is first run as
// a triage step, a subtask with the rule's triage skill, the task's payload
// and the key TriageKey(task). The step's output names the skills the task
// is then routed by; a step that fails, times out or answers anything else
// leaves the task to its own skills (the fallback). docs/configuration.md.
//
// Nothing of this is stored apart from the step itself: the decision is
// read again from the step's record (its key finds it), so a restart
// finds it, or finds no step and triages again.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "task/task_record.h"

namespace pincer {

// Keys with this prefix are pincerd's own: a submit may not use them.
inline constexpr std::string_view kReservedKeyPrefix = "pincer:";
inline constexpr std::string_view kTriageKeyPrefix = "pincer:triage:";

// The key of task `id`'s triage step, "pincer:triage:t<id>".
std::string TriageKey(TaskId id);
// Whether `key` is a triage step's key.
inline bool IsTriageKey(std::string_view key) { return key.starts_with(kTriageKeyPrefix); }

struct TriageDecision {
  enum class State { kPending, kDecided, kFallback };
  State state = State::kPending;
  std::vector<std::string> skills;  // kDecided: sorted, unique (may be empty)
  std::string error;                // kFallback: why
};

// What triage step `step` decided: pending while it is not ended; decided
// when it succeeded with {"skills": [non-empty strings]}; else a fallback.
TriageDecision DecideTriage(const TaskRecord& step);

std::string_view TriageStateName(TriageDecision::State s);

}  // namespace pincer
