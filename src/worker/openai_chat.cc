#include "worker/openai_chat.h"

namespace pincer::worker::openai {

std::variant<nlohmann::json, std::string> BuildChatRequest(const nlohmann::json& payload,
                                                           const std::string& session,
                                                           const ChatDefaults& defaults) {
  nlohmann::json body;
  if (payload.is_string()) {
    body = {{"messages", nlohmann::json::array({{{"role", "user"}, {"content", payload}}})}};
  } else if (payload.is_object()) {
    const auto it = payload.find("messages");
    if (it == payload.end() || !it->is_array() || it->empty()) {
      return std::string(
          "payload must be a prompt string or an object with a non-empty array \"messages\"");
    }
    body = payload;
  } else {
    return std::string("payload must be a prompt string or an object with \"messages\", not ") +
           payload.type_name();
  }
  if (!body.contains("model") && !defaults.model.empty()) body["model"] = defaults.model;
  body["stream"] = true;
  if (!body.contains("stream_options") || !body["stream_options"].is_object()) {
    body["stream_options"] = nlohmann::json::object();
  }
  body["stream_options"]["include_usage"] = true;
  if (!session.empty() && !body.contains("user")) body["user"] = session;
  return body;
}

std::string ContentText(const nlohmann::json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string out;
  if (content.is_array()) {
    for (const auto& part : content) {
      if (part.is_object()) {
        const auto t = part.find("text");
        if (t != part.end() && t->is_string()) out += t->get<std::string>();
      }
    }
  }
  return out;
}

void TakeCommon(const nlohmann::json& j, ChatReply& r) {
  if (const auto m = j.find("model"); m != j.end() && m->is_string())
    r.model = m->get<std::string>();
  if (const auto u = j.find("usage"); u != j.end() && u->is_object()) {
    Usage usage;
    auto num = [&u](const char* name) -> int64_t {
      const auto it = u->find(name);
      return it != u->end() && it->is_number_integer() ? it->get<int64_t>() : 0;
    };
    usage.input = num("prompt_tokens");
    usage.output = num("completion_tokens");
    usage.total = num("total_tokens");
    if (usage.total == 0) usage.total = usage.input + usage.output;
    r.usage = usage;
  }
  if (const auto e = j.find("error"); e != j.end() && !e->is_null()) {
    if (e->is_object() && e->contains("message") && (*e)["message"].is_string()) {
      r.error = (*e)["message"].get<std::string>();
    } else {
      r.error = e->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }
  }
}

std::string ApplyStreamEvent(std::string_view data, ChatReply& r) {
  if (data == "[DONE]") {
    r.done = true;
    return {};
  }
  // The endpoint is a peer too: nothing deeper than pincer's bound is parsed.
  if (!JsonDepthWithin(data, kMaxPeerJsonDepth)) return {};
  const nlohmann::json j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return {};
  TakeCommon(j, r);
  std::string added;
  const auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array() || choices->empty()) return added;
  const auto& choice = (*choices)[0];
  if (!choice.is_object()) return added;
  if (const auto d = choice.find("delta"); d != choice.end() && d->is_object()) {
    if (const auto c = d->find("content"); c != d->end()) {
      added = std::string(r.AppendText(ContentText(*c)));
    }
  }
  if (const auto f = choice.find("finish_reason"); f != choice.end() && f->is_string()) {
    r.finish_reason = f->get<std::string>();
  }
  return added;
}

bool ApplyWholeReply(std::string_view body, ChatReply& r) {
  if (!JsonDepthWithin(body, kMaxPeerJsonDepth)) return false;
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return false;
  TakeCommon(j, r);
  const auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array() || choices->empty()) return !r.error.empty();
  const auto& choice = (*choices)[0];
  if (!choice.is_object()) return false;
  if (const auto m = choice.find("message"); m != choice.end() && m->is_object()) {
    if (const auto c = m->find("content"); c != m->end()) r.AppendText(ContentText(*c));
  }
  if (const auto f = choice.find("finish_reason"); f != choice.end() && f->is_string()) {
    r.finish_reason = f->get<std::string>();
  }
  r.done = true;
  return true;
}

std::optional<int64_t> ParseRetryAfter(std::string_view value, std::time_t now) {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front()))) {
    value.remove_prefix(1);
  }
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back()))) {
    value.remove_suffix(1);
  }
  if (value.empty()) return std::nullopt;
  bool digits = true;
  for (char c : value) digits = digits && c >= '0' && c <= '9';
  if (digits) {
    if (value.size() > 9) return int64_t{999999999} * 1000;  // absurd; capped
    return std::stoll(std::string(value)) * 1000;
  }
  std::tm tm{};
  const std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const std::time_t at = timegm(&tm);
  if (at == static_cast<std::time_t>(-1)) return std::nullopt;
  return at > now ? static_cast<int64_t>(at - now) * 1000 : 0;
}

std::string ErrorBodyText(std::string_view body) {
  const nlohmann::json j = JsonDepthWithin(body, kMaxPeerJsonDepth)
                               ? nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false)
                               : nlohmann::json();
  if (j.is_object()) {
    const auto e = j.find("error");
    if (e != j.end()) {
      if (e->is_object() && e->contains("message") && (*e)["message"].is_string()) {
        return (*e)["message"].get<std::string>();
      }
      if (e->is_string()) return e->get<std::string>();
    }
  }
  std::string text(body.substr(0, 300));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

nlohmann::json ChatResult(const HttpOutcome& http, const ChatReply& reply, std::time_t now) {
  using nlohmann::json;
  auto add_usage = [&](json& r) {
    if (!reply.usage) return;
    // pincerd refuses a whole result whose usage is negative or names a
    // model past its bound: an odd endpoint's numbers are clamped here.
    auto count = [](int64_t n) { return n < 0 ? int64_t{0} : n; };
    json u = {{"input", count(reply.usage->input)},
              {"output", count(reply.usage->output)},
              {"total", count(reply.usage->total)}};
    if (!reply.model.empty() && reply.model.size() <= 256) u["model"] = reply.model;
    r["usage"] = std::move(u);
  };
  auto failure = [&](std::string error, bool retryable) {
    json r = {{"ok", false}, {"error", std::move(error)}, {"retryable", retryable}};
    if (http.retry_after) {
      if (auto ms = ParseRetryAfter(*http.retry_after, now)) r["retry_after_ms"] = *ms;
    }
    add_usage(r);
    return r;
  };
  if (http.transport_failed) {
    return failure("model endpoint unreachable: " + http.transport_error, true);
  }
  if (http.status < 200 || http.status > 299) {
    const bool retryable = http.status == 429 || http.status >= 500 || http.status == 408;
    std::string error = "model endpoint answered HTTP " + std::to_string(http.status);
    const std::string detail = ErrorBodyText(http.error_body);
    if (!detail.empty()) error += ": " + detail;
    return failure(std::move(error), retryable);
  }
  if (!reply.error.empty()) return failure("model endpoint reported: " + reply.error, true);
  if (reply.text_overflowed) {
    return failure(
        "reply too large: more than " + std::to_string(reply.max_text) + " bytes of text", false);
  }
  if (!reply.done && reply.finish_reason.empty()) {
    return failure("the model endpoint closed the stream before the reply ended", true);
  }
  json usage = nullptr;
  if (reply.usage) {
    usage = {{"input", reply.usage->input},
             {"output", reply.usage->output},
             {"total", reply.usage->total}};
  }
  json r = {{"ok", true},
            {"output",
             {{"text", reply.text},
              {"usage", usage},
              {"model", reply.model.empty() ? json(nullptr) : json(reply.model)},
              {"finish_reason",
               reply.finish_reason.empty() ? json(nullptr) : json(reply.finish_reason)}}}};
  add_usage(r);
  return r;
}

}  // namespace pincer::worker::openai
