// Starting a task's process: the one place that talks to posix_spawn.
// The child runs the command directly (no shell), in its own process group
// (so a cancel reaches whatever it started), with pipes on 0/1/2 and no
// other descriptor of the worker (the daemon socket above all).
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace pincer::worker {

struct SpawnedChild {
  pid_t pid = -1;  // also the process group id
  // The parent's ends, close-on-exec; the caller owns and must close them.
  int stdin_fd = -1;
  int stdout_fd = -1;
  int stderr_fd = -1;
};

// `argv[0]` is looked up in PATH. `env_overrides` replace or extend the
// worker's own environment. Returns the child, or why it could not be
// started (e.g. "cannot run \"nosuch\": No such file or directory").
// REQUIRES: argv is not empty; descriptors 0, 1 and 2 of this process are
// open (see EnsureStdioOpen), so the pipes never land on them.
std::variant<SpawnedChild, std::string> SpawnChild(
    const std::vector<std::string>& argv,
    const std::vector<std::pair<std::string, std::string>>& env_overrides);

// Sends `sig` to every process in the group led by `pgid`. A group that is
// already gone is not an error.
void SignalProcessGroup(pid_t pgid, int sig);

// Opens /dev/null on any of descriptors 0..2 that is closed. Called once at
// start-up: a worker launched with a closed stdio would otherwise hand a
// pipe or socket a low number that spawning then overwrites.
void EnsureStdioOpen();

}  // namespace pincer::worker
