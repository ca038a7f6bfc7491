#include "worker/result_builder.h"

namespace pincer::worker {

std::optional<std::vector<int>> ParseExitCodes(std::string_view list) {
  std::vector<int> codes;
  const auto trim = [](std::string_view s) {
    while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
    while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
    return s;
  };
  if (trim(list).empty()) return codes;
  while (true) {
    const std::size_t comma = list.find(',');
    const std::string_view item = trim(list.substr(0, comma));
    int code = 0;
    if (item.empty() || item.size() > 3) return std::nullopt;
    for (char c : item) {
      if (c < '0' || c > '9') return std::nullopt;
      code = code * 10 + (c - '0');
    }
    if (code < 1 || code > 255) return std::nullopt;
    codes.push_back(code);
    if (comma == std::string_view::npos) return codes;
    list.remove_prefix(comma + 1);
  }
}

bool Succeeded(const TaskOutcome& o) {
  if (o.kind == TaskOutcome::Kind::kReply) return o.reply.value("ok", false);
  return o.kind == TaskOutcome::Kind::kExited && o.code == 0;
}

std::string PayloadToStdin(const nlohmann::json& payload, std::string_view text) {
  if (payload.is_string()) return payload.get<std::string>();
  if (!text.empty()) return std::string(text);  // as submitted: key order, number spelling
  return payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string_view TrimTrailingSpace(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

nlohmann::json StdoutToOutput(std::string_view out, int max_depth) {
  const std::string_view trimmed = TrimTrailingSpace(out);
  if (!trimmed.empty()) {
    if (!JsonDepthWithin(trimmed, max_depth)) {
      // accept() validates without building (or recursing into) a tree: deep
      // JSON is refused, deep brackets in plain text are still text.
      if (nlohmann::json::accept(trimmed)) {
        return nlohmann::json(nlohmann::json::value_t::discarded);
      }
      return std::string(out);
    }
    nlohmann::json parsed = nlohmann::json::parse(trimmed, nullptr, /*allow_exceptions=*/false);
    if (!parsed.is_discarded()) return parsed;
  }
  return std::string(out);
}

std::string DescribeFailure(const TaskOutcome& o) {
  std::string text;
  switch (o.kind) {
    case TaskOutcome::Kind::kSpawnFailed:
      return o.spawn_error;
    case TaskOutcome::Kind::kReply:
      return o.reply.value("error", std::string());
    case TaskOutcome::Kind::kExited:
      text = "exit status " + std::to_string(o.code);
      break;
    case TaskOutcome::Kind::kSignaled:
      text = "killed by signal " + std::to_string(o.code);
      break;
  }
  const std::string_view tail = TrimTrailingSpace(o.stderr_tail);
  if (!tail.empty()) {
    text += ": ";
    if (o.stderr_truncated) text += "...";
    text += tail;
  }
  return text;
}

std::string SuccessLine(std::string_view id, nlohmann::json output, std::size_t max_frame_bytes) {
  std::string line = EncodeResultSuccess(id, std::move(output));
  if (line.size() - 1 > max_frame_bytes) {
    return EncodeResultFailure(id,
                               "output too large: the result is " +
                                   std::to_string(line.size() - 1) +
                                   " bytes encoded, more than the " +
                                   std::to_string(max_frame_bytes) + "-byte frame limit",
                               /*retryable=*/false);
  }
  return line;
}

std::string TooDeepLine(std::string_view id, int max_json_depth) {
  return EncodeResultFailure(
      id,
      "output too deep: stdout is JSON nested more than " + std::to_string(max_json_depth - 1) +
          " levels, the daemon's limits.max_json_depth = " + std::to_string(max_json_depth) +
          " less the result object",
      /*retryable=*/false);
}

std::string EnvelopeLine(std::string_view id, const TaskOutcome& o, const nlohmann::json& env,
                         const ResultPolicy& policy, std::size_t max_frame_bytes) {
  bool ok = env["ok"].get<bool>();
  std::string status;
  if (auto it = env.find("status"); it != env.end() && it->is_string()) {
    status = it->get<std::string>();
    if (status == "ok") ok = true;
    if (status == "error" || status == "timeout") ok = false;
  }
  if (ok) {
    if (policy.output == ResultPolicy::Output::kText) {
      return SuccessLine(id, std::string(o.stdout_data), max_frame_bytes);
    }
    return SuccessLine(id, env, max_frame_bytes);
  }
  bool retryable = status == "timeout" || !policy.Permanent(o.code);
  if (auto it = env.find("retryable"); it != env.end() && it->is_boolean()) {
    retryable = it->get<bool>();
  }
  std::string error;
  if (auto it = env.find("error"); it != env.end() && !it->is_null()) {
    if (it->is_string()) {
      error = it->get<std::string>();
    } else if (it->is_object() && it->contains("message") && (*it)["message"].is_string()) {
      error = (*it)["message"].get<std::string>();
    } else {
      error = it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }
  if (error.empty()) error = status.empty() ? "failed (the envelope says ok: false)" : status;
  if (!status.empty() && status != "error" && error != status) error = status + ": " + error;
  if (o.code != 0) error += " (exit status " + std::to_string(o.code) + ")";
  return EncodeResultFailure(id, error, retryable);
}

std::string ResultLine(std::string_view id, const TaskOutcome& o, std::size_t max_frame_bytes,
                       int max_json_depth, const ResultPolicy& policy) {
  if (o.kind == TaskOutcome::Kind::kReply) {
    std::string line = EncodeResultReply(id, o.reply);
    if (line.size() - 1 <= max_frame_bytes) return line;
    return EncodeResultFailure(id,
                               "output too large: the result is " +
                                   std::to_string(line.size() - 1) +
                                   " bytes encoded, more than the " +
                                   std::to_string(max_frame_bytes) + "-byte frame limit",
                               /*retryable=*/false);
  }
  if (o.kind == TaskOutcome::Kind::kSpawnFailed) {
    return EncodeResultFailure(id, DescribeFailure(o), /*retryable=*/false);
  }
  const bool exited = o.kind == TaskOutcome::Kind::kExited;
  // The result object is level 1: its output may nest one level less.
  const int output_depth = max_json_depth - 1;
  if (policy.envelope && exited && !o.stdout_overflowed) {
    const std::string_view trimmed = TrimTrailingSpace(o.stdout_data);
    if (!trimmed.empty() && trimmed.front() == '{' && JsonDepthWithin(trimmed, output_depth)) {
      nlohmann::json env = nlohmann::json::parse(trimmed, nullptr, /*allow_exceptions=*/false);
      if (env.is_object() && env.contains("ok") && env["ok"].is_boolean()) {
        return EnvelopeLine(id, o, env, policy, max_frame_bytes);
      }
    }
  }
  if (!exited || o.code != 0) {
    return EncodeResultFailure(id, DescribeFailure(o),
                               /*retryable=*/!(exited && policy.Permanent(o.code)));
  }
  if (o.stdout_overflowed) {
    return EncodeResultFailure(id,
                               "output too large: stdout was " + std::to_string(o.stdout_total) +
                                   " bytes, more than the " + std::to_string(max_frame_bytes) +
                                   "-byte frame limit",
                               /*retryable=*/false);
  }
  if (policy.output == ResultPolicy::Output::kText) {
    return SuccessLine(id, std::string(o.stdout_data), max_frame_bytes);
  }
  if (policy.output == ResultPolicy::Output::kJson) {
    const std::string_view trimmed = TrimTrailingSpace(o.stdout_data);
    if (!JsonDepthWithin(trimmed, output_depth)) {
      if (nlohmann::json::accept(trimmed)) return TooDeepLine(id, max_json_depth);
    } else {
      nlohmann::json parsed = nlohmann::json::parse(trimmed, nullptr, /*allow_exceptions=*/false);
      if (!parsed.is_discarded()) return SuccessLine(id, std::move(parsed), max_frame_bytes);
    }
    return EncodeResultFailure(
        id,
        trimmed.empty()
            ? std::string("output is not JSON (--output json): stdout is empty")
            : "output is not JSON (--output json): " + std::string(trimmed.substr(0, 200)),
        /*retryable=*/false);
  }
  nlohmann::json output = StdoutToOutput(o.stdout_data, output_depth);
  if (output.is_discarded()) return TooDeepLine(id, max_json_depth);
  return SuccessLine(id, std::move(output), max_frame_bytes);
}

}  // namespace pincer::worker
