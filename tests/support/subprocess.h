// Starting real child processes for integration tests: run one to
// completion with its output captured (RunProcess), or keep one running
// and signal it (ChildProcess). posix_spawn, not fork: the test process has
// threads (TestWorker), and forking a threaded process is asking for locks
// held forever in the child.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pincer::test {

// The pincer-worker binary of this build.
extern const std::string kWorker;

// Environment edits for a child: a value sets the variable, nullopt
// removes it. Everything else is inherited.
using EnvChanges = std::map<std::string, std::optional<std::string>>;

struct ProcessResult {
  // The exit status, or 128 + signal number when a signal ended it (as a
  // shell reports it). -1 when it could not be started.
  int exit_code = -1;
  std::string out;
  std::string err;
  bool timed_out = false;  // killed with SIGKILL after the timeout
};

// Runs argv[0] (a path) with `input` on its stdin and waits for it, killing
// it after `timeout`.
ProcessResult RunProcess(const std::vector<std::string>& argv, const std::string& input = "",
                         const EnvChanges& env = {},
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A running child with stdin from /dev/null and stdout/stderr appended to
// files. Its own process group, so KillGroup() also ends what it spawned.
class ChildProcess {
 public:
  ChildProcess() = default;
  // Kills the whole group with SIGKILL if it still runs.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Returns an error message, or "" once started.
  std::string Start(const std::vector<std::string>& argv, const std::string& stdout_path,
                    const std::string& stderr_path, const EnvChanges& env = {});

  pid_t pid() const { return pid_; }
  // False once it has exited and been reaped.
  bool running();
  void Signal(int signal);
  void KillGroup();
  // Waits up to `timeout` for it to exit; its exit code (as in
  // ProcessResult), or nullopt if it still runs.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  std::optional<int> exit_code() const { return exit_code_; }

 private:
  bool Reap(bool block);

  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

}  // namespace pincer::test
