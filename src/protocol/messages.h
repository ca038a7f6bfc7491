// The wire protocol's messages as typed values (docs/protocol.md).
// Parsing is pure: a line goes in, a Message or a ProtocolError comes out.
// JSON values that pincer only carries (payload, output, progress data,
// labels) stay as their JSON text, so they cross the daemon without being
// rebuilt.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/json_text.h"  // kDefaultMaxJsonDepth
#include "common/usage.h"
#include "protocol/line_framer.h"  // kLinePadding

namespace pincer {

// Raw JSON text of one value ("" only where the value is absent).
using RawJson = std::string;

// A task a reconnecting worker says it holds (hello `tasks`): its id and,
// when the worker names it, the attempt it runs (0 = not given).
struct HeldTaskRef {
  std::string id;
  int64_t attempt = 0;
  bool operator==(const HeldTaskRef&) const = default;
};

struct Hello {
  std::string role;  // "worker" | "client"
  int64_t proto = 0;
  std::string token;
  // Worker fields.
  std::string name;
  std::vector<std::string> skills;
  int64_t capacity = 1;
  RawJson labels;  // object or ""
  std::string spawn_id;
  bool heartbeat_ack = false;  // answer each heartbeat with `heartbeat_ack`
  // The worker sends `stopped` once a cancelled attempt's process is gone
  // (docs/protocol.md, "One attempt at a time").
  bool confirms_stop = false;
  // The tasks the worker still holds from an earlier connection (hello
  // `tasks`, docs/protocol.md "Adopting a reconnecting worker's tasks"):
  // adopted when pincerd knows them as not running elsewhere, dropped
  // (`cancel` with reason `not_adopted`) otherwise. `lists_tasks`: the
  // field was given (even empty): the worker keeps its tasks across a lost
  // connection, and tasks recovered running wait for their own worker
  // rather than go to it.
  std::vector<HeldTaskRef> tasks;
  bool lists_tasks = false;
};

// Worker -> daemon.
struct ResultMsg {
  std::string id;
  bool ok = false;
  RawJson output;  // ok: any JSON ("" when absent = null)
  std::string error;
  bool retryable = true;
  int64_t retry_after_ms = 0;  // the pause the worker asks for before a retry; 0 = none
  bool has_usage = false;      // `usage` given (and not null)
  TaskUsage usage;             // what this attempt used
  int64_t attempt = 0;         // the attempt it answers; 0 = not given (the current one)
};
struct ProgressMsg {
  std::string id;
  RawJson data;
  int64_t attempt = 0;  // 0 = not given
};
// The process of a cancelled or timed-out attempt is gone.
struct StoppedMsg {
  std::string id;
  int64_t attempt = 0;  // 0 = not given (the attempt of `id` being stopped)
};
struct HeartbeatMsg {
  std::optional<double> cpu;
  std::optional<int64_t> rss_bytes;
};
// A worker's own `drain` (no `req`): send it nothing new.
struct WorkerDrainMsg {};

// Client -> daemon. Every request has `req`.
struct SubmitReq {
  int64_t req = 0;
  std::vector<std::string> skills;
  RawJson payload;  // "" = null
  int64_t priority = 0;
  std::optional<std::chrono::milliseconds> timeout;
  std::optional<int64_t> max_attempts;
  std::string session;  // "" = none
  std::string key;      // "" = none
  bool wait = false;
  // `parent`: the task (held by the submitting worker) this one is a
  // subtask of; "" = none.
  std::string parent;
  // `backoff`: the task's own retry backoff; each part absent = the config's.
  std::optional<std::chrono::milliseconds> backoff_initial;
  std::optional<std::chrono::milliseconds> backoff_max;
  std::optional<double> backoff_jitter;
};
enum class IdOp { kStatus, kWait, kWatch, kCancel, kRetry };
struct IdReq {
  IdOp op;
  int64_t req = 0;
  std::string id;
};
struct TasksReq {
  int64_t req = 0;
  std::string state;    // "" = any
  std::string skill;    // "" = any; else tasks that need this skill
  std::string worker;   // "" = any; else tasks whose (last) worker has this id
  std::string session;  // "" = any
  std::string order;    // "" or "oldest": by id ascending; "newest": descending
  std::string after;    // "" = from the start; else a task id: list past it in `order`
  int64_t limit = 1000;
};
struct DrainReq {
  int64_t req = 0;
  std::string worker;
};
// `pool`: an operator verb on one supervised pool (docs/supervisor.md).
struct PoolReq {
  int64_t req = 0;
  std::string op;  // start | stop | restart | scale
  std::string pool;
  std::optional<int64_t> replicas;  // scale only: 0..kMaxPoolReplicas
};
inline constexpr int64_t kMaxPoolReplicas = 1000;  // as the config's pools[].replicas
// `logs`: a pool's recent output.
struct LogsReq {
  int64_t req = 0;
  std::string pool;
  int64_t after = 0;    // only lines with a larger seq
  int64_t limit = 200;  // the newest this many
};
inline constexpr int64_t kMaxLogsLimit = 100000;
enum class SimpleOp { kWorkers, kStats, kReload, kPools };
struct SimpleReq {
  SimpleOp op;
  int64_t req = 0;
};

using Message = std::variant<Hello, ResultMsg, ProgressMsg, HeartbeatMsg, WorkerDrainMsg, SubmitReq,
                             IdReq, TasksReq, DrainReq, SimpleReq, PoolReq, LogsReq, StoppedMsg>;

struct ProtocolError {
  std::string code;  // bad_json | bad_message | unknown_type | ...
  std::string message;
  std::optional<int64_t> req;
};

using ParseResult = std::variant<Message, ProtocolError>;

// The `req` of a client request; nullopt for other messages.
inline std::optional<int64_t> RequestId(const Message& m) {
  return std::visit(
      [](const auto& v) -> std::optional<int64_t> {
        if constexpr (requires { v.req; }) {
          return v.req;
        } else {
          return std::nullopt;
        }
      },
      m);
}

// The ranges of the numbers clients and workers send (docs/protocol.md). A
// value outside is refused with an error naming the range, never wrapped
// or clamped.
inline constexpr int64_t kMaxTimeoutMs = int64_t{365} * 24 * 60 * 60 * 1000;  // 365 days
inline constexpr int64_t kMaxAttempts = 1000;
// The largest `attempt` a worker may name (attempt numbers are ints; a
// retried task counts again from 1).
inline constexpr int64_t kMaxAttemptNumber = INT32_MAX;
inline constexpr int64_t kMaxCapacity = int64_t{1} << 20;
inline constexpr int64_t kMaxTasksLimit = 10000000;  // above any task count pincerd keeps
// Skills of one submit or hello, and bytes of one skill name: every routing
// decision compares skill sets, so their size is bounded like a number.
inline constexpr std::size_t kMaxSkills = 256;
// Bytes of one id in a hello's `tasks` (task ids are far shorter).
inline constexpr std::size_t kMaxHeldTaskIdBytes = 64;
inline constexpr std::size_t kMaxSkillBytes = 256;
// A submit's `backoff.initial` and `backoff.max`: the bound of the config's
// durations (87600h).
inline constexpr int64_t kMaxBackoffMs = int64_t{87600} * 60 * 60 * 1000;
// Bytes of a result's `usage.model` (a metrics label).
inline constexpr std::size_t kMaxModelBytes = 256;

// What a line says of itself: its `type` (empty when it has no string
// `type`) and its integer `req`. For error paths only (it parses the whole
// line again); never throws. REQUIRES: the line nests at most
// kMaxPeerJsonDepth levels.
struct LineHead {
  std::string type;
  std::optional<int64_t> req;
};
LineHead ReadLineHead(std::string_view line);

// Parses one line (without its newline). Never throws. A line whose arrays
// and objects nest deeper than `max_depth` levels (the message object is
// level 1, see JsonDepthWithin) is refused with `bad_json` before any
// recursive code sees it. REQUIRES: 1 <= max_depth <= kMaxPeerJsonDepth.
ParseResult ParseMessage(std::string_view line, int max_depth = kDefaultMaxJsonDepth);
// The same, for a line followed in memory by at least kLinePadding readable
// bytes (any content), as LineFramer hands them out: the fast path then
// parses it in place, uncopied.
ParseResult ParseMessagePadded(std::string_view line, int max_depth = kDefaultMaxJsonDepth);
// The same, into `out`. When `out` holds a message of the line's type from
// an earlier line, a hot message (submit, result) reuses its buffers: the
// event loop parses every line into one ParseResult and allocates nothing.
void ParseMessagePaddedInto(std::string_view line, ParseResult& out,
                            int max_depth = kDefaultMaxJsonDepth);
// The same, with the simdjson fast path for hot messages turned off: what
// ParseMessage must agree with on every line (tests compare the two).
ParseResult ParseMessageWithoutFastPathForTest(std::string_view line,
                                               int max_depth = kDefaultMaxJsonDepth);

// Parses a duration given as "250ms"/"5s"/"10m"/"1h30m" text (units ms, s,
// m, h; a bare integer is milliseconds). A sum past INT64_MAX ms comes out
// as INT64_MAX ms: callers check their range and name it.
std::optional<std::chrono::milliseconds> ParseWireDuration(std::string_view text);

}  // namespace pincer
