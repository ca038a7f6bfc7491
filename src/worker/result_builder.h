// How a finished child becomes a `result` line: the contract of SPEC
// section 8 in one pure place.
#pragma once

#include <algorithm>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_text.h"
#include "protocol/peer_encode.h"

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

// How a command's exit and stdout become a result (pincer-worker flags;
// docs/worker.md, "Results").
struct ResultPolicy {
  // --output: auto parses stdout as JSON when it is one JSON value, else
  // keeps it as text; text always keeps the exact bytes as a string; json
  // requires one JSON value (anything else fails, not retryable).
  enum class Output { kAuto, kText, kJson };
  Output output = Output::kAuto;
  // --permanent-exit-codes: a command exiting with one of these failed for
  // good (retryable: false).
  std::vector<int> permanent_exit_codes{3};
  // --envelope: stdout that is a JSON object with a boolean `ok` is a result
  // envelope and decides the result, whatever the exit status.
  bool envelope = false;

  bool Permanent(int code) const {
    return std::find(permanent_exit_codes.begin(), permanent_exit_codes.end(), code) !=
           permanent_exit_codes.end();
  }
};

// "3" or "3,64,65" (spaces allowed around the commas), "" for none: the
// codes, or nullopt when an item is not an integer from 1 to 255.
std::optional<std::vector<int>> ParseExitCodes(std::string_view list);

bool Succeeded(const TaskOutcome& o);

// The bytes a task's stdin receives: a JSON string payload as its raw text
// (so `cat`, `tr`, `wc` work on plain text), anything else as compact JSON.
std::string PayloadToStdin(const nlohmann::json& payload, std::string_view text = {});

std::string_view TrimTrailingSpace(std::string_view s);

// stdout as the result's `output`: parsed as JSON when it is one JSON value
// (ignoring the trailing newline most programs print), else the exact bytes
// as a string. Discarded (is_discarded()) when it is JSON nesting deeper
// than `max_depth` levels: the daemon would refuse the result line.
nlohmann::json StdoutToOutput(std::string_view out, int max_depth = kMaxPeerJsonDepth - 1);

// The `error` text of a failed run: "exit status N: <stderr tail>" or
// "killed by signal N: <stderr tail>".
std::string DescribeFailure(const TaskOutcome& o);

// The success line for `output`, or a non-retryable failure when it would
// not fit in a frame.
std::string SuccessLine(std::string_view id, nlohmann::json output, std::size_t max_frame_bytes);

std::string TooDeepLine(std::string_view id, int max_json_depth);

// The result an envelope (a JSON object with a boolean `ok`) decides: its
// `status` ("ok", "error", "timeout") when it has one of those, else its
// `ok`. A failure is retryable as its boolean `retryable` says; without
// one, `timeout` is retryable and anything else is unless the exit code is
// permanent. The error is the envelope's `error` (a string, or an object's
// `message`), else its status.
std::string EnvelopeLine(std::string_view id, const TaskOutcome& o, const nlohmann::json& env,
                         const ResultPolicy& policy, std::size_t max_frame_bytes);

// The full result line for a task. A result that would not fit in one frame
// of `max_frame_bytes`, or whose output nests deeper than the daemon's
// `max_json_depth` allows, becomes a non-retryable failure instead: the
// daemon would refuse the line, and running the task again would not
// change it.
std::string ResultLine(std::string_view id, const TaskOutcome& o, std::size_t max_frame_bytes,
                       int max_json_depth = kDefaultMaxJsonDepth, const ResultPolicy& policy = {});

}  // namespace pincer::worker
