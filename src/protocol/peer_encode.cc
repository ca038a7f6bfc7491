#include "protocol/peer_encode.h"

#include <pincer/version.h>

namespace pincer {

using nlohmann::json;

std::string DumpLine(const json& j) {
  std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace);
  line.push_back('\n');
  return line;
}

std::string EncodeHello(std::string_view role, std::string_view token, const json& extra) {
  json hello = {{"type", "hello"}, {"role", role}, {"proto", kProtocolVersion}, {"token", token}};
  if (extra.is_object()) {
    for (const auto& [key, value] : extra.items()) hello[key] = value;
  }
  return DumpLine(hello);
}

std::string EncodeWorkerHello(const WorkerHello& h) {
  json extra = {{"name", h.name}, {"skills", h.skills}, {"capacity", h.capacity}};
  if (h.labels.is_object() && !h.labels.empty()) extra["labels"] = h.labels;
  if (!h.spawn_id.empty()) extra["spawn_id"] = h.spawn_id;
  if (h.confirms_stop) extra["confirms_stop"] = true;
  if (h.heartbeat_ack) extra["heartbeat_ack"] = true;
  if (h.lists_tasks) {
    json tasks = json::array();
    for (const auto& [id, attempt] : h.tasks) tasks.push_back({{"id", id}, {"attempt", attempt}});
    extra["tasks"] = std::move(tasks);
  }
  return EncodeHello("worker", h.token, extra);
}

std::string EncodeHeartbeat(const json& load) {
  return DumpLine({{"type", "heartbeat"}, {"load", load.is_object() ? load : json::object()}});
}

std::string EncodeStopped(std::string_view id, int64_t attempt) {
  return DumpLine({{"type", "stopped"}, {"id", id}, {"attempt", attempt}});
}

std::string EncodeProgress(std::string_view id, json data, std::optional<int64_t> attempt) {
  json line = {{"type", "progress"}, {"id", id}, {"data", std::move(data)}};
  if (attempt) line["attempt"] = *attempt;
  return DumpLine(line);
}

std::string EncodeResultFailure(std::string_view id, std::string_view error, bool retryable) {
  return DumpLine(
      {{"type", "result"}, {"id", id}, {"ok", false}, {"error", error}, {"retryable", retryable}});
}

std::string EncodeResultSuccess(std::string_view id, json output) {
  return DumpLine({{"type", "result"}, {"id", id}, {"ok", true}, {"output", std::move(output)}});
}

std::string EncodeResultReply(std::string_view id, const json& reply) {
  json j = {{"type", "result"}, {"id", id}};
  if (reply.is_object()) j.update(reply);
  return DumpLine(j);
}

void AppendAttempt(std::string& line, int64_t attempt) {
  if (line.size() < 3 || line[line.size() - 2] != '}') return;
  line.resize(line.size() - 2);
  line += ",\"attempt\":" + std::to_string(attempt) + "}\n";
}

}  // namespace pincer
