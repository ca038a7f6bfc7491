// pincerctl's exit codes (SPEC section 7, docs/cli.md) and the one place
// that maps an error to one of them. Pure.
#pragma once

#include <string_view>

#include "client/result.h"

namespace pincer::ctl {

enum ExitCode : int {
  kExitOk = 0,
  // The task ended in a state other than succeeded; also the daemon
  // refused for a reason that is neither bad input nor "not found"
  // (queue_full, store_unavailable, shutting_down, reload_failed, ...).
  kExitFailed = 1,
  kExitUsage = 2,        // bad flags or bad input, refused by us or by the daemon
  kExitUnavailable = 3,  // cannot connect, connection lost, or unauthorized
  kExitNotFound = 4,     // no such task or worker
};

int ExitCodeForServerCode(std::string_view code);

int ExitCodeFor(const client::Error& error);

// Exit code for a task's end state (submit --wait, wait).
int ExitCodeForState(std::string_view state);

}  // namespace pincer::ctl
