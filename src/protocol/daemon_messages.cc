#include "protocol/daemon_messages.h"

namespace pincer {

DaemonMessage ParseDaemonMessage(std::string_view line) {
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
  if (type == "heartbeat_ack") return HeartbeatAckMsg{};
  if (type == "error") {
    return ErrorMsg{string_field("code").value_or(""), string_field("message").value_or(""),
                    string_field("leader").value_or("")};
  }
  return UnknownMsg{type};
}

}  // namespace pincer
