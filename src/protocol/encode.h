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
std::string EncodeCancel(std::string_view task_id);
std::string EncodeDrain();
// The answer to a worker's own `drain` once it holds no task.
std::string EncodeDrained();
// The answer to a worker's `heartbeat`.
std::string EncodeHeartbeatAck();

}  // namespace pincer
