// The worker's side of the wire protocol (docs/protocol.md): daemon lines
// parsed into typed messages, and the lines the worker sends. Pure and
// header-only: no sockets, so unit tests include it directly.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/json_text.h"

namespace pincer::worker {

struct WelcomeMsg {
  std::string id;
  int64_t heartbeat_ms = 5000;
  // The daemon's limits.max_json_depth: the deepest line it accepts, so a
  // result's `output` may nest one level less (the result object is level 1).
  int max_json_depth = kDefaultMaxJsonDepth;
};
struct TaskMsg {
  std::string id;
  nlohmann::json payload;  // as submitted, parsed
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
// The answer to our own `drain`: the daemon holds no task of ours.
struct DrainedMsg {};
struct ErrorMsg {
  std::string code;
  std::string message;
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

using DaemonMessage =
    std::variant<WelcomeMsg, TaskMsg, CancelMsg, DrainMsg, DrainedMsg, ErrorMsg, UnknownMsg,
                 BadMsg>;

// Serialises without throwing: strings with invalid UTF-8 (a child's raw
// output) get U+FFFD instead of an exception.
inline std::string DumpLine(const nlohmann::json& j) {
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  return line;
}

inline DaemonMessage ParseDaemonMessage(std::string_view line) {
  using nlohmann::json;
  // Bounded before nlohmann sees it: its dump() and copies recurse.
  if (!JsonDepthWithin(line, kMaxPeerJsonDepth)) {
    return BadMsg{"nested deeper than " + std::to_string(kMaxPeerJsonDepth) + " levels"};
  }
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return BadMsg{"not JSON"};
  if (!j.is_object()) return BadMsg{"not a JSON object"};
  const auto type_it = j.find("type");
  if (type_it == j.end() || !type_it->is_string()) return BadMsg{"no string field \"type\""};
  const std::string type = type_it->get<std::string>();

  auto string_field = [&j](const char* name) -> std::optional<std::string> {
    const auto it = j.find(name);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto int_field = [&j](const char* name) -> std::optional<int64_t> {
    const auto it = j.find(name);
    if (it == j.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<int64_t>();
  };

  if (type == "welcome") {
    WelcomeMsg m;
    m.id = string_field("id").value_or("");
    if (auto hb = int_field("heartbeat_ms")) {
      if (*hb <= 0) return BadMsg{"welcome.heartbeat_ms must be positive"};
      m.heartbeat_ms = *hb;
    }
    // Absent from older daemons: theirs was the default. Anything out of
    // range is not trusted either way.
    if (auto depth = int_field("max_json_depth");
        depth && *depth >= 2 && *depth <= kMaxPeerJsonDepth) {
      m.max_json_depth = static_cast<int>(*depth);
    }
    return m;
  }
  if (type == "task") {
    TaskMsg m;
    auto id = string_field("id");
    if (!id || id->empty()) return BadMsg{"task without a string \"id\""};
    m.id = std::move(*id);
    if (auto it = j.find("payload"); it != j.end()) {
      m.payload = std::move(*it);
      if (!m.payload.is_null()) m.payload_text = JsonMemberText(line, "payload").value_or("");
    }
    m.attempt = int_field("attempt").value_or(1);
    m.session = string_field("session").value_or("");
    m.deadline_ms = int_field("deadline_ms");
    return m;
  }
  if (type == "cancel") {
    auto id = string_field("id");
    if (!id) return BadMsg{"cancel without a string \"id\""};
    return CancelMsg{std::move(*id), int_field("attempt").value_or(0),
                     string_field("reason").value_or("")};
  }
  if (type == "drain") return DrainMsg{};
  if (type == "drained") return DrainedMsg{};
  if (type == "error") {
    return ErrorMsg{string_field("code").value_or(""), string_field("message").value_or("")};
  }
  return UnknownMsg{type};
}

struct HelloFields {
  std::string token;
  std::string name;
  std::vector<std::string> skills;
  int capacity = 1;
  nlohmann::json labels = nlohmann::json::object();
  std::string spawn_id;  // sent only when non-empty
  // Promise to send `stopped` once a cancelled attempt's process is gone
  // (pincer-worker does); the daemon then never overlaps two attempts.
  bool confirms_stop = true;
};

inline std::string HelloLine(const HelloFields& h, int proto) {
  nlohmann::json j = {{"type", "hello"},       {"role", "worker"}, {"proto", proto},
                      {"token", h.token},      {"name", h.name},   {"skills", h.skills},
                      {"capacity", h.capacity}};
  if (h.labels.is_object() && !h.labels.empty()) j["labels"] = h.labels;
  if (!h.spawn_id.empty()) j["spawn_id"] = h.spawn_id;
  if (h.confirms_stop) j["confirms_stop"] = true;
  return DumpLine(j);
}

// Asks the daemon for no new tasks (answered by `drained`).
inline std::string DrainLine() { return "{\"type\":\"drain\"}\n"; }

inline std::string HeartbeatLine(const nlohmann::json& load) {
  return DumpLine(
      {{"type", "heartbeat"}, {"load", load.is_object() ? load : nlohmann::json::object()}});
}

// The attempt of a cancelled task is over: its process is gone.
inline std::string StoppedLine(std::string_view id, int64_t attempt) {
  return DumpLine({{"type", "stopped"}, {"id", id}, {"attempt", attempt}});
}

// The most bytes AppendAttempt adds to a line.
inline constexpr std::size_t kAttemptFieldBytes = 32;
// `line`, one JSON object and its newline, with "attempt":N as its last
// field (a result or progress names the attempt it belongs to).
inline void AppendAttempt(std::string& line, int64_t attempt) {
  if (line.size() < 3 || line[line.size() - 2] != '}') return;
  line.resize(line.size() - 2);
  line += ",\"attempt\":" + std::to_string(attempt) + "}\n";
}

inline std::string FailureLine(std::string_view id, std::string_view error, bool retryable) {
  return DumpLine(
      {{"type", "result"}, {"id", id}, {"ok", false}, {"error", error}, {"retryable", retryable}});
}

}  // namespace pincer::worker
