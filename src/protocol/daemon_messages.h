// The daemon's lines as a worker reads them (docs/protocol.md): welcome,
// task, cancel, drain, drained, error and heartbeat_ack, parsed into typed
// values. Pure: a line goes in, a DaemonMessage comes out, never an
// exception. pincer-worker's one parser of what pincerd sends it.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/json_text.h"  // kDefaultMaxJsonDepth

namespace pincer {

struct WelcomeMsg {
  std::string id;
  int64_t heartbeat_ms = 5000;
  // The daemon's limits.max_json_depth: the deepest line it accepts, so a
  // result's `output` may nest one level less (the result object is level 1).
  int max_json_depth = kDefaultMaxJsonDepth;
};
struct TaskMsg {
  std::string id;
  nlohmann::json payload;    // as submitted, parsed
  std::string payload_text;  // its JSON text exactly as submitted ("" = null)
  int64_t attempt = 1;
  std::string session;  // empty when the task has none
  std::optional<int64_t> deadline_ms;
};
struct CancelMsg {
  std::string id;
  int64_t attempt = 0;  // 0: not given (older daemons)
  std::string reason;   // cancelled | timed_out | shutdown | parent_ended; "" from older daemons
};
struct DrainMsg {};
// The answer to a worker's own `drain`: the daemon holds no task of its.
struct DrainedMsg {};
// The answer to a heartbeat, for a worker that asked for one in its hello.
struct HeartbeatAckMsg {};
struct ErrorMsg {
  std::string code;
  std::string message;
  std::string leader;  // not_leader: where the leader serves, when known
};
// A well-formed message of a type this worker does not know: newer daemons
// may send more, so it is logged and skipped rather than treated as fatal.
struct UnknownMsg {
  std::string type;
};
// Not a message at all (bad JSON, missing fields). Also logged and skipped:
// one bad line is no reason to drop the tasks in flight.
struct BadMsg {
  std::string reason;
};

using DaemonMessage = std::variant<WelcomeMsg, TaskMsg, CancelMsg, DrainMsg, DrainedMsg,
                                   HeartbeatAckMsg, ErrorMsg, UnknownMsg, BadMsg>;

// One line from the daemon, without its line end. A line nested deeper
// than kMaxPeerJsonDepth is a BadMsg before any recursive code sees it.
DaemonMessage ParseDaemonMessage(std::string_view line);

}  // namespace pincer
