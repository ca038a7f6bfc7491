// The real Spawner: fork + exec with everything a supervised child needs
// that posix_spawn cannot give (PR_SET_PDEATHSIG, so children die with
// pincerd even when it is SIGKILLed). Child exits are seen through SIGCHLD
// on the event loop and reaped with waitpid(WNOHANG); each child's stdout
// and stderr are read through pipes and logged line by line, tagged.
//
// Threading: one io_context, one thread; every method and callback runs on it.
#pragma once

#include <asio.hpp>
#include <functional>
#include <memory>
#include <set>
#include <vector>

#include "supervisor/spawner.h"

namespace pincer {

// One line a child wrote (without its newline).
struct OutputLine {
  const SpawnSpec& spec;  // log_tag, pool, replica
  bool err;               // stderr, else stdout
  std::string_view text;
};

class PosixSpawner final : public Spawner {
 public:
  using ExitHandler = std::function<void(pid_t, const ExitStatus&)>;
  using OutputHandler = std::function<void(const OutputLine&)>;

  // `on_exit` is called once per reaped child, from the event loop. Each
  // line of a child's output goes to `on_output`, or without one to the
  // log, tagged. `io` must outlive the spawner.
  PosixSpawner(asio::io_context& io, ExitHandler on_exit, OutputHandler on_output = nullptr);
  // SIGKILLs and reaps whatever still runs: leaving the spawner never
  // leaves an orphan behind, whatever path led here.
  ~PosixSpawner() override;

  pid_t Spawn(const SpawnSpec& spec, std::string& error) override;
  void Signal(pid_t pid, int signal) override;

  std::size_t children() const { return children_.size(); }

  class LineLogger;  // reads one pipe; defined in the .cc

 private:
  void WatchSigchld();
  void Reap();

  asio::io_context& io_;
  ExitHandler on_exit_;
  // Shared with the loggers, which may outlive the spawner by a read.
  std::shared_ptr<OutputHandler> on_output_;
  asio::signal_set sigchld_;
  std::set<pid_t> children_;
  std::vector<std::weak_ptr<LineLogger>> loggers_;
};

}  // namespace pincer
