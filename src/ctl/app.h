// pincerctl's command line: flags (CLI11), dispatch to a command, exit code.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>

namespace pincer::ctl {

struct ProcessIo {
  std::istream* in = nullptr;
  int in_fd = -1;  // the same stdin as a file descriptor, for `top`'s keys; -1 = none
  std::ostream* out = nullptr;
  std::ostream* err = nullptr;
  bool out_is_terminal = false;
  bool err_is_terminal = false;
  std::function<std::int64_t()> now_ms;
};

// Parses argv, runs the chosen subcommand and returns the process's exit
// code (ctl/exit_code.h). Never throws; a usage error is exit 2.
int RunCtl(int argc, const char* const* argv, const ProcessIo& io);

}  // namespace pincer::ctl
