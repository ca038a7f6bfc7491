// pincerctl: the command-line client for pincerd (docs/cli.md).
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <iostream>

#include "ctl/app.h"

namespace {

std::int64_t UnixNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  pincer::ctl::ProcessIo io;
  io.in = &std::cin;
  io.in_fd = STDIN_FILENO;
  io.out = &std::cout;
  io.err = &std::cerr;
  io.out_is_terminal = ::isatty(STDOUT_FILENO) == 1;
  io.err_is_terminal = ::isatty(STDERR_FILENO) == 1;
  io.now_ms = UnixNowMs;
  return pincer::ctl::RunCtl(argc, argv, io);
}
