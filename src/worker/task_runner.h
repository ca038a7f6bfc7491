// What the session needs from whatever runs tasks. The session speaks the
// protocol; a runner turns a task into an outcome. The seam lets the
// session be driven without real processes.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "worker/result_builder.h"

namespace pincer::worker {

struct TaskSpec {
  std::string id;
  std::string stdin_data;  // already rendered by PayloadToStdin
  nlohmann::json payload;  // as submitted (runners that need more than stdin)
  std::string session;     // empty when none
  int64_t attempt = 1;
};

class TaskRunner {
 public:
  // Called on the event loop, exactly once per started task that was
  // neither cancelled nor killed, after its process ended. May start or
  // cancel tasks itself.
  using DoneCallback = std::function<void(const std::string& id, TaskOutcome outcome)>;

  virtual ~TaskRunner() = default;

  virtual void SetOnDone(DoneCallback done) = 0;
  // Called whenever a process has been reaped (used to finish a shutdown
  // once every process is gone).
  virtual void SetOnProcessGone(std::function<void()> gone) = 0;
  // Called when the work of a cancelled task is really over: its process
  // reaped (after SIGTERM, --kill-grace and SIGKILL), or its request
  // ended. The session answers the daemon's cancel with `stopped` then.
  using StoppedCallback = std::function<void(const std::string& id)>;
  virtual void SetOnStopped(StoppedCallback) {}
  // Progress of a running task, to be sent as a `progress` message. Runners
  // that have none ignore it.
  using ProgressCallback = std::function<void(const std::string& id, nlohmann::json data)>;
  virtual void SetOnProgress(ProgressCallback) {}

  // REQUIRES: no running task has this id. The outcome is reported through
  // the done callback, never from inside Start.
  virtual void Start(TaskSpec spec) = 0;
  // Stops the task's process group (SIGTERM, then SIGKILL after a grace)
  // and forgets the task: no outcome will be reported. False when no task
  // with this id runs.
  virtual bool Cancel(const std::string& id) = 0;
  // Cancel for every running task.
  virtual void CancelAll() = 0;

  virtual bool IsRunning(const std::string& id) const = 0;
  // Tasks whose outcome is still awaited.
  virtual std::size_t running() const = 0;
  // Processes not reaped yet, cancelled ones included.
  virtual std::size_t processes() const = 0;
  virtual std::vector<pid_t> pids() const = 0;
};

}  // namespace pincer::worker
