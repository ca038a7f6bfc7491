// A task as the core holds it: the durable record plus where it waits and
// who waits for it.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "core/outbox.h"
#include "queue/task_queue.h"
#include "routing/worker_index.h"
#include "task/task_record.h"

namespace pincer {

struct Task {
  enum class Where : uint8_t {
    kNone,         // running, ended, or being placed
    kQueue,        // in its class queue, for any eligible worker
    kPinned,       // waiting for its session's home worker (affinity)
    kSessionWait,  // behind its session's running task
    kBackoff,      // waiting out its retry backoff (a kBackoff deadline)
    kStopping,     // waiting for `stopping_on` to confirm its last attempt stopped
    kTriage,       // waiting for its triage step (core/triage.h) to decide its route
    // Its attempt was running when pincerd took over (or restarted) or its
    // worker's connection dropped: only that worker, reconnecting and
    // listing it in its hello, may take it (adopt) until heartbeat.adopt_grace
    // has passed (a kAdoptGrace deadline; retry_at_ms is when).
    kHeld,
  };

  TaskRecord rec;
  ClassId cls = 0;
  uint64_t seq = 0;  // submit order (recovery keeps it)
  Where where = Where::kNone;
  WorkerId worker = 0;  // the worker of the running attempt, or the pinned-to worker
  uint64_t pin_gen = 0;
  // The worker still stopping this task's last attempt (cancelled or timed
  // out, `stopped` not yet received); 0 = none. The task is not started
  // again until it is 0.
  WorkerId stopping_on = 0;
  // Attempts cut short by pincerd restarts since the task was submitted or
  // last retried: in rec.errors, not counted toward max_attempts.
  int interrupted = 0;
  bool triage_step = false;      // this task is another's triage step (core/triage.h)
  TaskId triage = 0;             // kTriage: its triage step; 0 = none yet
  bool turn_wait_armed = false;  // a kTurnWait deadline is pending
  // Its last attempt was lost with its worker (the connection, or pincerd,
  // went) and it has not started since: a worker that reconnects listing it
  // in its hello `tasks` may adopt it (docs/protocol.md).
  bool adoptable = false;
  bool turn_expired = false;     // waited long enough for its turn-holder
  TimePoint attempt_deadline{};  // of the running attempt; {} = none
  TimePoint queue_deadline{};    // while it waits (its timeout); {} = none
  TimePoint ttl_deadline{};      // while it waits: tasks.queue_ttl; {} = none
  int64_t retry_at_ms = 0;       // kBackoff, kHeld: offered to workers again from then (unix ms)
  std::string progress;          // raw JSON of the latest progress, "" = none
  std::vector<std::pair<ConnId, int64_t>> waiters;  // clients waiting for the end

  QueueEntry entry() const { return QueueEntry{rec.priority, seq, rec.id}; }
  std::string id_string() const { return TaskIdString(rec.id); }
};

}  // namespace pincer
