// pincerctl's exit codes (SPEC section 7, docs/cli.md) and the one place
// that maps an error to one of them. Header-only: pure.
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

inline int ExitCodeForServerCode(std::string_view code) {
  if (code == "not_found") return kExitNotFound;
  if (code == "unauthorized" || code == "bad_hello" || code == "hello_timeout" ||
      code == "too_many_connections") {
    return kExitUnavailable;
  }
  if (code == "invalid_request" || code == "invalid_state" || code == "bad_json" ||
      code == "bad_message" || code == "unknown_type" || code == "frame_too_large" ||
      code == "conflict") {
    return kExitUsage;
  }
  return kExitFailed;
}

inline int ExitCodeFor(const client::Error& error) {
  switch (error.kind) {
    case client::ErrorKind::kInvalidArgument:
      return kExitUsage;
    case client::ErrorKind::kConnect:
    case client::ErrorKind::kClosed:
      return kExitUnavailable;
    case client::ErrorKind::kServer:
      return ExitCodeForServerCode(error.code);
    case client::ErrorKind::kTimeout:
    case client::ErrorKind::kProtocol:
      return kExitFailed;
  }
  return kExitFailed;
}

// Exit code for a task's end state (submit --wait, wait).
inline int ExitCodeForState(std::string_view state) {
  return state == "succeeded" ? kExitOk : kExitFailed;
}

}  // namespace pincer::ctl
