// Builds the daemon's outgoing lines. Each function returns or appends one
// complete line, newline included.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pincer {

std::string EncodeError(std::string_view code, std::string_view message,
                        std::optional<int64_t> req = std::nullopt);
// `max_json_depth`: limits.max_json_depth, for peers to bound what they send.
std::string EncodeWelcome(std::string_view id, int64_t heartbeat_ms, int max_json_depth);
// An error about one task sent to a worker: it names the task (`id`) and,
// when `attempt` > 0, the attempt, as fields.
std::string EncodeTaskError(std::string_view code, std::string_view message,
                            std::string_view task_id, int64_t attempt = 0);
// `reason`: cancelled | timed_out | shutdown | parent_ended.
std::string EncodeCancel(std::string_view task_id, int64_t attempt, std::string_view reason);
std::string EncodeDrain();
// The answer to a worker's own `drain` once it holds no task.
std::string EncodeDrained();
// The answer to a worker's `heartbeat`.
std::string EncodeHeartbeatAck();

}  // namespace pincer

namespace pincer {

// The `ok` answering an accepted submit: task `task_id` ("t<id>"),
// `existing` (an earlier task with the same key), `warning` ("" = none).
void AppendSubmitOk(std::string& out, int64_t req, uint64_t task_id, bool existing,
                    std::string_view warning);

}  // namespace pincer
