#include "ctl/exit_code.h"

namespace pincer::ctl {

int ExitCodeForServerCode(std::string_view code) {
  if (code == "not_found") return kExitNotFound;
  if (code == "unauthorized" || code == "bad_hello" || code == "hello_timeout" ||
      code == "too_many_connections" || code == "not_leader") {
    return kExitUnavailable;
  }
  if (code == "invalid_request" || code == "invalid_state" || code == "bad_json" ||
      code == "bad_message" || code == "unknown_type" || code == "frame_too_large" ||
      code == "conflict") {
    return kExitUsage;
  }
  return kExitFailed;
}

int ExitCodeFor(const client::Error& error) {
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

int ExitCodeForState(std::string_view state) {
  return state == "succeeded" ? kExitOk : kExitFailed;
}

}  // namespace pincer::ctl
