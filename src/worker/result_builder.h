// How a finished child becomes a `result` line: the contract of SPEC
// section 8 in one pure place. Header-only so unit tests include it.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "worker/wire.h"

namespace pincer::worker {

// What the task runner observed, handed over once the child has been reaped
// and its pipes have been read to the end.
struct TaskOutcome {
  // kReply: a runner that talks to a service rather than a process
  // (pincer-worker --openai) built the result itself, in `reply`.
  enum class Kind { kExited, kSignaled, kSpawnFailed, kReply };
  Kind kind = Kind::kExited;
  int code = 0;                    // exit status (kExited) or signal (kSignaled)
  std::string stdout_data;         // the first bytes of stdout, up to the cap
  bool stdout_overflowed = false;  // stdout was longer than the cap
  std::size_t stdout_total = 0;    // bytes the child wrote to stdout
  std::string stderr_tail;         // the last bytes of stderr
  bool stderr_truncated = false;   // earlier stderr was dropped
  std::string spawn_error;         // kSpawnFailed: why
  nlohmann::json reply;            // kReply: {ok, output | error, retryable, ...}
};

inline bool Succeeded(const TaskOutcome& o) {
  if (o.kind == TaskOutcome::Kind::kReply) return o.reply.value("ok", false);
  return o.kind == TaskOutcome::Kind::kExited && o.code == 0;
}

// The bytes a task's stdin receives: a JSON string payload as its raw text
// (so `cat`, `tr`, `wc` work on plain text), anything else as compact JSON.
inline std::string PayloadToStdin(const nlohmann::json& payload) {
  if (payload.is_string()) return payload.get<std::string>();
  return payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

inline std::string_view TrimTrailingSpace(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// stdout as the result's `output`: parsed as JSON when it is one JSON value
// (ignoring the trailing newline most programs print), else the exact bytes
// as a string. Discarded (is_discarded()) when it is JSON nesting deeper
// than `max_depth` levels: the daemon would refuse the result line.
inline nlohmann::json StdoutToOutput(std::string_view out, int max_depth = kMaxPeerJsonDepth - 1) {
  const std::string_view trimmed = TrimTrailingSpace(out);
  if (!trimmed.empty()) {
    if (!JsonDepthWithin(trimmed, max_depth)) {
      // accept() validates without building (or recursing into) a tree: deep
      // JSON is refused, deep brackets in plain text are still text.
      if (nlohmann::json::accept(trimmed)) {
        return nlohmann::json(nlohmann::json::value_t::discarded);
      }
      return std::string(out);
    }
    nlohmann::json parsed = nlohmann::json::parse(trimmed, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) return parsed;
  }
  return std::string(out);
}

// The `error` text of a failed run: "exit status N: <stderr tail>" or
// "killed by signal N: <stderr tail>".
inline std::string DescribeFailure(const TaskOutcome& o) {
  std::string text;
  switch (o.kind) {
    case TaskOutcome::Kind::kSpawnFailed:
      return o.spawn_error;
    case TaskOutcome::Kind::kReply:
      return o.reply.value("error", std::string());
    case TaskOutcome::Kind::kExited:
      text = "exit status " + std::to_string(o.code);
      break;
    case TaskOutcome::Kind::kSignaled:
      text = "killed by signal " + std::to_string(o.code);
      break;
  }
  const std::string_view tail = TrimTrailingSpace(o.stderr_tail);
  if (!tail.empty()) {
    text += ": ";
    if (o.stderr_truncated) text += "...";
    text += tail;
  }
  return text;
}

// The full result line for a task. A result that would not fit in one frame
// of `max_frame_bytes`, or whose output nests deeper than the daemon's
// `max_json_depth` allows, becomes a non-retryable failure instead: the
// daemon would refuse the line, and running the task again would not
// change it.
inline std::string ResultLine(std::string_view id, const TaskOutcome& o,
                              std::size_t max_frame_bytes,
                              int max_json_depth = kDefaultMaxJsonDepth) {
  if (o.kind == TaskOutcome::Kind::kReply) {
    nlohmann::json j = {{"type", "result"}, {"id", id}};
    if (o.reply.is_object()) j.update(o.reply);
    std::string line = DumpLine(j);
    if (line.size() - 1 <= max_frame_bytes) return line;
    return FailureLine(id,
                       "output too large: the result is " + std::to_string(line.size() - 1) +
                           " bytes encoded, more than the " + std::to_string(max_frame_bytes) +
                           "-byte frame limit",
                       /*retryable=*/false);
  }
  if (o.kind == TaskOutcome::Kind::kSpawnFailed) {
    return FailureLine(id, DescribeFailure(o), /*retryable=*/false);
  }
  if (o.kind != TaskOutcome::Kind::kExited || o.code != 0) {
    return FailureLine(id, DescribeFailure(o), /*retryable=*/true);
  }
  if (o.stdout_overflowed) {
    return FailureLine(id,
                       "output too large: stdout was " + std::to_string(o.stdout_total) +
                           " bytes, more than the " + std::to_string(max_frame_bytes) +
                           "-byte frame limit",
                       /*retryable=*/false);
  }
  // The result object is level 1: its output may nest one level less.
  nlohmann::json output = StdoutToOutput(o.stdout_data, max_json_depth - 1);
  if (output.is_discarded()) {
    return FailureLine(
        id,
        "output too deep: stdout is JSON nested more than " + std::to_string(max_json_depth - 1) +
            " levels, the daemon's limits.max_json_depth = " + std::to_string(max_json_depth) +
            " less the result object",
        /*retryable=*/false);
  }
  std::string line =
      DumpLine({{"type", "result"}, {"id", id}, {"ok", true}, {"output", std::move(output)}});
  if (line.size() - 1 > max_frame_bytes) {
    return FailureLine(id,
                       "output too large: the result is " + std::to_string(line.size() - 1) +
                           " bytes encoded, more than the " + std::to_string(max_frame_bytes) +
                           "-byte frame limit",
                       /*retryable=*/false);
  }
  return line;
}

}  // namespace pincer::worker
