// The seam between the supervisor's policy and the operating system: start
// a process, signal it. Exits come back through Supervisor::OnExit, called
// by whoever owns the spawner (the real one watches SIGCHLD on the event
// loop; the unit tests' fake reports exits when the test says so).
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace pincer {

struct SpawnSpec {
  std::vector<std::string> argv;           // argv[0] is looked up in PATH when it has no '/'
  std::map<std::string, std::string> env;  // set on top of pincerd's own environment
  std::string cwd;                         // "" = pincerd's working directory
  std::string log_tag;                     // "pool/replica", tags the child's output lines
  std::string pool;                        // whose output it is (OutputLine)
  int replica = 0;
};

// How a process ended, as waitpid reported it.
struct ExitStatus {
  int code = 0;    // exit code when !signaled
  int signal = 0;  // the signal that ended it when signaled
  bool signaled = false;

  bool success() const { return !signaled && code == 0; }
  std::string Describe() const;  // "exit code 1", "signal 9 (Killed)"
};

class Spawner {
 public:
  virtual ~Spawner() = default;
  // Starts a process in its own process group. Returns its pid, or -1 with
  // `error` set (the command does not exist, fork failed, ...).
  virtual pid_t Spawn(const SpawnSpec& spec, std::string& error) = 0;
  // Sends `signal` to the process group of `pid`, so whatever the process
  // started goes too. REQUIRES: `pid` came from Spawn and was not reported
  // as exited yet.
  virtual void Signal(pid_t pid, int signal) = 0;
};

}  // namespace pincer
