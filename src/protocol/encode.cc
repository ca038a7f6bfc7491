#include "protocol/encode.h"

#include "common/json_text.h"

namespace pincer {

using namespace std::string_view_literals;

std::string EncodeError(std::string_view code, std::string_view message,
                        std::optional<int64_t> req) {
  std::string out = R"({"type":"error","code":)";
  AppendJsonString(out, code);
  out.append(R"(,"message":)"sv);
  AppendJsonString(out, message);
  if (req) {
    out.append(R"(,"req":)"sv);
    AppendInt(out, *req);
  }
  out.append("}\n"sv);
  return out;
}

std::string EncodeWelcome(std::string_view id, int64_t heartbeat_ms, int max_json_depth) {
  std::string out = R"({"type":"welcome","id":)";
  AppendJsonString(out, id);
  out.append(R"(,"heartbeat_ms":)"sv);
  AppendInt(out, heartbeat_ms);
  out.append(R"(,"max_json_depth":)"sv);
  AppendInt(out, max_json_depth);
  out.append("}\n"sv);
  return out;
}

std::string EncodeTaskError(std::string_view code, std::string_view message,
                            std::string_view task_id, int64_t attempt) {
  std::string out = R"({"type":"error","code":)";
  AppendJsonString(out, code);
  out.append(R"(,"message":)"sv);
  AppendJsonString(out, message);
  out.append(R"(,"id":)"sv);
  AppendJsonString(out, task_id);
  if (attempt > 0) {
    out.append(R"(,"attempt":)"sv);
    AppendInt(out, attempt);
  }
  out.append("}\n"sv);
  return out;
}

std::string EncodeCancel(std::string_view task_id, int64_t attempt, std::string_view reason) {
  std::string out = R"({"type":"cancel","id":)";
  AppendJsonString(out, task_id);
  out.append(R"(,"attempt":)"sv);
  AppendInt(out, attempt);
  out.append(R"(,"reason":")"sv);
  out.append(reason);
  out.append("\"}\n"sv);
  return out;
}

std::string EncodeDrain() { return "{\"type\":\"drain\"}\n"; }
std::string EncodeDrained() { return "{\"type\":\"drained\"}\n"; }
std::string EncodeHeartbeatAck() { return "{\"type\":\"heartbeat_ack\"}\n"; }

}  // namespace pincer

namespace pincer {

using namespace std::string_view_literals;

void AppendSubmitOk(std::string& out, int64_t req, uint64_t task_id, bool existing,
                    std::string_view warning) {
  out.append(R"({"type":"ok","req":)"sv);
  AppendInt(out, req);
  out.append(R"(,"id":"t)"sv);
  AppendInt(out, static_cast<int64_t>(task_id));
  if (warning.empty()) {
    out.append(existing ? R"(","existing":true})" "\n"sv : R"(","existing":false})" "\n"sv);
  } else {
    out.append(R"(","existing":false,"warning":)"sv);
    AppendJsonString(out, warning);
    out.append("}\n"sv);
  }
}

}  // namespace pincer
