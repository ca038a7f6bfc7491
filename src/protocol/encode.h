// Builds the daemon's outgoing lines. Each function returns or appends one
// complete line, newline included. The lines of the task hot path (task,
// ok to a submit, end) are appended to a connection's pending output by
// hand: no DOM, nothing allocated but the growth of `out`.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pincer {

// A `task` for a worker.
struct TaskLine {
  uint64_t id = 0;  // written "t<id>"
  const std::vector<std::string>& skills;
  std::string_view payload;  // raw JSON; "" = null
  int64_t attempt = 0;
  std::string_view session;            // "" = null
  std::optional<int64_t> deadline_ms;  // unix ms; none = null
  bool triage = false;                 // a triage step: "triage":true (else absent)
};
void AppendTask(std::string& out, const TaskLine& t);

// The answer to a submit once it is durable:
// {"type":"ok","req":R,"id":"tN","existing":B} and, with a `warning`,
// "existing":false and the warning (a warning is only given to a new task).
void AppendSubmitOk(std::string& out, int64_t req, uint64_t task_id, bool existing,
                    std::string_view warning);

// `{"type":"ok","req":R` without the closing brace, for an answer whose
// members the caller appends (a task view, a task list).
void AppendOkStart(std::string& out, int64_t req);
// {"type":"ok","req":R} with the members of `body` (an object) merged in.
// Invalid UTF-8 in its strings is replaced, never thrown on.
void AppendOk(std::string& out, int64_t req, const nlohmann::json& body);

// An `errors` array of a task's failed attempts: `errors` is a range of
// {attempt, worker, error} (the task model's AttemptError). A worker ""
// is written "" (`null_worker` false, as an end line has it) or null (a
// task view).
void AppendAttemptError(std::string& out, bool first, int64_t attempt, std::string_view worker,
                        std::string_view error, bool null_worker);
template <typename AttemptErrors>
void AppendAttemptErrors(std::string& out, const AttemptErrors& errors, bool null_worker) {
  out.push_back('[');
  bool first = true;
  for (const auto& e : errors) {
    AppendAttemptError(out, first, e.attempt, e.worker, e.error, null_worker);
    first = false;
  }
  out.push_back(']');
}

// The `end` of a task a client waits for (a submit with wait, or `wait`).
struct EndLine {
  int64_t req = 0;
  uint64_t id = 0;
  std::string_view state;   // a task state's name
  std::string_view output;  // raw JSON; "" = null
  std::string_view error;   // "" = null
  int64_t attempts = 0;
  std::string_view worker;  // "" = null
};
// Everything up to and including `"errors":`.
void AppendEndStart(std::string& out, const EndLine& e);
template <typename AttemptErrors>
void AppendEnd(std::string& out, const EndLine& e, const AttemptErrors& errors) {
  AppendEndStart(out, e);
  AppendAttemptErrors(out, errors, /*null_worker=*/false);
  out.append("}\n");
}

// A worker's progress streamed to a client that waits on (or watches) its
// task: {"type":"progress","req":R,"id":"tN","attempt":A,"data":D}.
struct ProgressLine {
  int64_t req = 0;
  uint64_t id = 0;
  int64_t attempt = 0;
  std::string_view data;  // raw JSON; "" = null
};
void AppendProgress(std::string& out, const ProgressLine& p);

std::string EncodeError(std::string_view code, std::string_view message,
                        std::optional<int64_t> req = std::nullopt);
// A standby's answer to a hello: error not_leader, with `leader` (the
// leader's address) unless it is empty (not known).
std::string EncodeNotLeader(std::string_view message, std::string_view leader);
// `max_json_depth`: limits.max_json_depth, for peers to bound what they send.
std::string EncodeWelcome(std::string_view id, int64_t heartbeat_ms, int max_json_depth);
// An error about one task sent to a worker: it names the task (`id`) and,
// when `attempt` > 0, the attempt, as fields; `req` when it answers a request.
std::string EncodeTaskError(std::string_view code, std::string_view message,
                            std::string_view task_id, int64_t attempt = 0,
                            std::optional<int64_t> req = std::nullopt);
// `reason`: cancelled | timed_out | shutdown | parent_ended.
std::string EncodeCancel(std::string_view task_id, int64_t attempt, std::string_view reason);
std::string EncodeDrain();
// The answer to a worker's own `drain` once it holds no task.
std::string EncodeDrained();
// The answer to a worker's `heartbeat`.
std::string EncodeHeartbeatAck();

}  // namespace pincer
