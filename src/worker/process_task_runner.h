// Runs each task as a child process of COMMAND, on one Asio event loop:
// stdin written and stdout/stderr read through non-blocking pipes, exits
// learnt from SIGCHLD. Single-threaded: every method and callback runs on
// the loop's thread.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "worker/task_runner.h"

namespace pincer::worker {

struct ProcessRunnerOptions {
  std::vector<std::string> command;  // argv; argv[0] is looked up in PATH
  std::size_t stdout_cap = 16 << 20;
  std::size_t stderr_tail = 4 << 10;
  // SIGTERM to SIGKILL when a task is cancelled.
  std::chrono::milliseconds kill_grace{2000};
  // After the child exited, how long processes it left behind may keep its
  // pipes open before they are killed and the task ends without them.
  std::chrono::milliseconds linger{1000};
};

class ProcessTaskRunner final : public TaskRunner {
 public:
  // Installs a SIGCHLD handler on `io` for its lifetime. REQUIRES: `io`
  // outlives this object; only one instance per process (SIGCHLD is
  // process-wide and reaping uses waitpid(-1)).
  ProcessTaskRunner(asio::io_context& io, ProcessRunnerOptions options);
  ~ProcessTaskRunner() override;

  void SetOnDone(DoneCallback done) override { done_ = std::move(done); }
  void SetOnProcessGone(std::function<void()> gone) override { gone_ = std::move(gone); }
  void SetOnStopped(StoppedCallback stopped) override { stopped_ = std::move(stopped); }

  void Start(TaskSpec spec) override;
  bool Cancel(const std::string& id) override;
  void CancelAll() override;

  bool IsRunning(const std::string& id) const override { return by_id_.count(id) != 0; }
  std::size_t running() const override { return by_id_.size(); }
  std::size_t processes() const override { return procs_.size(); }
  std::vector<pid_t> pids() const override;

 private:
  struct Proc;

  void WaitForSigchld();
  void ReapChildren();
  void WriteStdin(uint64_t serial);
  void ReadStdout(uint64_t serial);
  void ReadStderr(uint64_t serial);
  void OnReaped(uint64_t serial, int wait_status);
  void MaybeFinish(uint64_t serial);
  Proc* Find(uint64_t serial);

  asio::io_context& io_;
  ProcessRunnerOptions options_;
  asio::signal_set sigchld_;
  DoneCallback done_;
  std::function<void()> gone_;
  StoppedCallback stopped_;

  // Handlers hold a serial, never a pointer, so one firing after its task
  // is gone finds nothing and returns.
  uint64_t next_serial_ = 1;
  std::map<uint64_t, std::unique_ptr<Proc>> procs_;
  std::unordered_map<std::string, uint64_t> by_id_;  // tasks whose outcome is wanted
  std::unordered_map<pid_t, uint64_t> by_pid_;       // processes not yet reaped
};

}  // namespace pincer::worker
