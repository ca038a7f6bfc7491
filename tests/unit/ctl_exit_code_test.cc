#include <gtest/gtest.h>

#include "ctl/exit_code.h"

namespace pincer::ctl {
namespace {

using client::Error;
using client::ErrorKind;

TEST(ExitCodeTest, ServerCodes) {
  struct Case {
    const char* code;
    int exit;
  };
  const Case cases[] = {
      {"not_found", 4},       {"unauthorized", 3},         {"bad_hello", 3},
      {"hello_timeout", 3},   {"too_many_connections", 3}, {"not_leader", 3},
      {"invalid_request", 2}, {"invalid_state", 2},        {"bad_json", 2},
      {"bad_message", 2},     {"unknown_type", 2},         {"frame_too_large", 2},
      {"queue_full", 1},      {"store_unavailable", 1},    {"shutting_down", 1},
      {"reload_failed", 1},   {"something_new", 1},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ExitCodeForServerCode(c.code), c.exit) << c.code;
    EXPECT_EQ(ExitCodeFor(Error{ErrorKind::kServer, c.code, ""}), c.exit) << c.code;
  }
}

TEST(ExitCodeTest, LocalErrors) {
  EXPECT_EQ(ExitCodeFor(Error{ErrorKind::kInvalidArgument, "bad_address", ""}), kExitUsage);
  EXPECT_EQ(ExitCodeFor(Error{ErrorKind::kConnect, "connect_failed", ""}), kExitUnavailable);
  EXPECT_EQ(ExitCodeFor(Error{ErrorKind::kClosed, "closed", ""}), kExitUnavailable);
  EXPECT_EQ(ExitCodeFor(Error{ErrorKind::kTimeout, "timeout", ""}), kExitFailed);
  EXPECT_EQ(ExitCodeFor(Error{ErrorKind::kProtocol, "bad_json", ""}), kExitFailed);
}

TEST(ExitCodeTest, EndStates) {
  EXPECT_EQ(ExitCodeForState("succeeded"), 0);
  for (const char* state : {"failed", "cancelled", "timed_out", "-"}) {
    EXPECT_EQ(ExitCodeForState(state), 1) << state;
  }
}

}  // namespace
}  // namespace pincer::ctl
