// Why a queued task waits: a stable code for programs (`why_code`) and a
// sentence for people (`why`), side by side wherever a task is shown
// (docs/protocol.md, "Why a task waits"). A new reason is one line in
// PINCER_WHY_CODES (and one row in the doc's table).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pincer {

// X(enumerator, code on the wire)
#define PINCER_WHY_CODES(X)                                                             \
  X(kNoWorker, "no_worker")         /* no worker connected at all */                    \
  X(kMissingSkill, "missing_skill") /* no worker has a needed skill */                  \
  X(kNoWorkerWithAllSkills, "no_worker_with_all_skills")                                \
  X(kWorkersUnavailable, "workers_unavailable") /* draining or ejected */               \
  X(kWorkersFull, "workers_full")                                                       \
  X(kAncestorsHoldWorkers, "ancestors_hold_workers") /* full with parents */            \
  X(kSessionBusy, "session_busy")                    /* the session's task runs */      \
  X(kSessionWorker, "session_worker")                /* waits for the session's home */ \
  X(kRetryBackoff, "retry_backoff")                                                     \
  X(kAttemptStopping, "attempt_stopping") /* a cancelled attempt's stop */              \
  X(kAwaitingHolder, "awaiting_holder")   /* its worker may come back */                \
  X(kRuleMaxRunning, "rule_max_running")  /* a routing rule's max_running */            \
  X(kRuleRate, "rule_rate")               /* a routing rule's rate */                   \
  X(kTriage, "triage")                    /* its triage step decides */

enum class WhyCode : uint8_t {
#define PINCER_WHY_ENUM(name, code) name,
  PINCER_WHY_CODES(PINCER_WHY_ENUM)
#undef PINCER_WHY_ENUM
};

constexpr std::string_view WhyCodeName(WhyCode c) {
  switch (c) {
#define PINCER_WHY_NAME(name, code) \
  case WhyCode::name:               \
    return code;
    PINCER_WHY_CODES(PINCER_WHY_NAME)
#undef PINCER_WHY_NAME
  }
  return "unknown";
}

struct Why {
  WhyCode code;
  std::string text;
};

}  // namespace pincer
