#include "protocol/encode.h"

#include <nlohmann/json.hpp>

#include "common/json_text.h"
#include "protocol/json_writer.h"

namespace pincer {

using namespace std::string_view_literals;

void AppendNumber(std::string& out, double v) { out.append(nlohmann::json(v).dump()); }

void AppendTask(std::string& out, const TaskLine& t) {
  AppendInt(out.append(R"({"type":"task","id":"t)"sv), static_cast<int64_t>(t.id));
  AppendJsonStringArray(out.append(R"(","skills":)"sv), t.skills);
  AppendRawOrNull(out.append(R"(,"payload":)"sv), t.payload);
  AppendInt(out.append(R"(,"attempt":)"sv), t.attempt);
  AppendStringOrNull(out.append(R"(,"session":)"sv), t.session);
  out.append(R"(,"deadline_ms":)"sv);
  if (t.deadline_ms) {
    AppendInt(out, *t.deadline_ms);
  } else {
    out.append("null"sv);
  }
  if (t.triage) out.append(R"(,"triage":true)"sv);
  out.append("}\n"sv);
}

void AppendOkStart(std::string& out, int64_t req) {
  out.append(R"({"type":"ok","req":)"sv);
  AppendInt(out, req);
}

void AppendSubmitOk(std::string& out, int64_t req, uint64_t task_id, bool existing,
                    std::string_view warning) {
  AppendOkStart(out, req);
  out.append(R"(,"id":"t)"sv);
  AppendInt(out, static_cast<int64_t>(task_id));
  if (warning.empty()) {
    out.append(existing ? R"(","existing":true})"sv : R"(","existing":false})"sv);
  } else {
    out.append(R"(","existing":false,"warning":)"sv);
    AppendJsonString(out, warning);
    out.push_back('}');
  }
  out.push_back('\n');
}

void AppendOk(std::string& out, int64_t req, const nlohmann::json& body) {
  nlohmann::json msg = {{"type", "ok"}, {"req", req}};
  msg.update(body);
  out.append(msg.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  out.push_back('\n');
}

void AppendAttemptError(std::string& out, bool first, int64_t attempt, std::string_view worker,
                        std::string_view error, bool null_worker) {
  if (!first) out.push_back(',');
  out.append(R"({"attempt":)"sv);
  AppendInt(out, attempt);
  out.append(R"(,"worker":)"sv);
  if (null_worker) {
    AppendStringOrNull(out, worker);
  } else {
    AppendJsonString(out, worker);
  }
  out.append(R"(,"error":)"sv);
  AppendJsonString(out, error);
  out.push_back('}');
}

void AppendEndStart(std::string& out, const EndLine& e) {
  AppendInt(out.append(R"({"type":"end","req":)"sv), e.req);
  AppendInt(out.append(R"(,"id":"t)"sv), static_cast<int64_t>(e.id));
  out.append(R"(","state":")"sv).append(e.state).append(R"(","output":)"sv);
  AppendRawOrNull(out, e.output);
  AppendStringOrNull(out.append(R"(,"error":)"sv), e.error);
  AppendInt(out.append(R"(,"attempts":)"sv), e.attempts);
  AppendStringOrNull(out.append(R"(,"worker":)"sv), e.worker);
  out.append(R"(,"errors":)"sv);
}

void AppendProgress(std::string& out, const ProgressLine& p) {
  AppendInt(out.append(R"({"type":"progress","req":)"sv), p.req);
  AppendInt(out.append(R"(,"id":"t)"sv), static_cast<int64_t>(p.id));
  AppendInt(out.append(R"(","attempt":)"sv), p.attempt);
  AppendRawOrNull(out.append(R"(,"data":)"sv), p.data);
  out.append("}\n"sv);
}

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

std::string EncodeNotLeader(std::string_view message, std::string_view leader) {
  std::string out = R"({"type":"error","code":"not_leader","message":)";
  AppendJsonString(out, message);
  if (!leader.empty()) {
    out.append(R"(,"leader":)"sv);
    AppendJsonString(out, leader);
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
                            std::string_view task_id, int64_t attempt, std::optional<int64_t> req) {
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
  if (req) {
    out.append(R"(,"req":)"sv);
    AppendInt(out, *req);
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
