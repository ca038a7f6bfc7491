// The lines a client or a worker sends pincerd (docs/protocol.md), as the
// daemon's parser (messages.h) reads them. Built with nlohmann/json: none
// is on pincerd's hot path, and text a peer passes on (a child's output)
// may hold invalid UTF-8, which is replaced by U+FFFD, never thrown on.
// A worker's own `drain` is EncodeDrain() (encode.h): the same line both
// ways.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pincer {

// `j` as one compact line, newline included.
std::string DumpLine(const nlohmann::json& j);

// {"type":"hello","role":role,"proto":kProtocolVersion,"token":token}
// merged with the members of `extra` (an object; anything else adds none).
std::string EncodeHello(std::string_view role, std::string_view token,
                        const nlohmann::json& extra = nlohmann::json::object());

// What a worker says of itself in its hello.
struct WorkerHello {
  std::string token;
  std::string name;
  std::vector<std::string> skills;
  int capacity = 1;
  nlohmann::json labels = nlohmann::json::object();  // sent only when not empty
  std::string spawn_id;                              // sent only when not empty
  // Promise to send `stopped` once a cancelled attempt's process is gone
  // (pincer-worker does); the daemon then never overlaps two attempts.
  bool confirms_stop = true;
  // The tasks it still holds, as (id, attempt), sent as hello `tasks`
  // when `lists_tasks` (docs/protocol.md, "Adopting a reconnecting
  // worker's tasks"); pincer-worker always lists them, even none.
  bool lists_tasks = false;
  std::vector<std::pair<std::string, int64_t>> tasks;
  // Ask for a `heartbeat_ack` to each heartbeat.
  bool heartbeat_ack = false;
};
std::string EncodeWorkerHello(const WorkerHello& h);

// `load`: {cpu, rss_bytes}, either left out when unknown; not an object
// sends {}.
std::string EncodeHeartbeat(const nlohmann::json& load);
// The attempt of a cancelled task is over: its process is gone.
std::string EncodeStopped(std::string_view id, int64_t attempt);
std::string EncodeProgress(std::string_view id, nlohmann::json data,
                           std::optional<int64_t> attempt);

// Results. A worker names the attempt afterwards (AppendAttempt).
std::string EncodeResultFailure(std::string_view id, std::string_view error, bool retryable);
std::string EncodeResultSuccess(std::string_view id, nlohmann::json output);
// A result a runner built itself: `reply`'s members ({ok, output | error,
// retryable, usage, ...}) after type and id.
std::string EncodeResultReply(std::string_view id, const nlohmann::json& reply);

// The most bytes AppendAttempt adds to a line.
inline constexpr std::size_t kAttemptFieldBytes = 32;
// `line`, one JSON object and its newline, with "attempt":N as its last
// field (a result or progress names the attempt it belongs to).
void AppendAttempt(std::string& line, int64_t attempt);

}  // namespace pincer
