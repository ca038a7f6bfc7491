// The pure half of `pincer-worker --openai`: a task payload turned into a
// chat-completions request body, the server-sent-event stream parsed back
// into text and usage, and an HTTP outcome turned into a result. No sockets
// and no clock (the time is passed in), so unit tests include it directly.
#pragma once

#include <time.h>

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "common/json_text.h"

namespace pincer::worker::openai {

// What the command line fixes for every request.
struct ChatDefaults {
  std::string model;  // sent when the payload names none; empty: not sent
};

// The request body for a task, or why the payload cannot be one (a
// permanent failure: another attempt would send the same payload).
// - a string is one user message;
// - an object must have an array `messages`; every other field (model,
//   temperature, tools, ...) is passed through as given.
// `stream` and `stream_options.include_usage` are always set; the session
// becomes `user` unless the payload sets `user` itself.
inline std::variant<nlohmann::json, std::string> BuildChatRequest(const nlohmann::json& payload,
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

// Splits a text/event-stream into the `data` of each event (SPEC of
// server-sent events: lines, `data:` fields joined by "\n", an empty line
// ends an event; comments and other fields are skipped). Bounded: a line
// longer than `max_line` is an error rather than a growing buffer.
class SseParser {
 public:
  explicit SseParser(std::size_t max_line) : max_line_(max_line) {}

  // Feeds bytes; calls `on_data(std::string_view)` for every complete
  // event. False once a line was too long (nothing more is parsed).
  template <typename F>
  bool Feed(std::string_view bytes, F&& on_data) {
    if (failed_) return false;
    for (char c : bytes) {
      if (c != '\n') {
        if (line_.size() >= max_line_) {
          failed_ = true;
          return false;
        }
        line_.push_back(c);
        continue;
      }
      if (!line_.empty() && line_.back() == '\r') line_.pop_back();
      if (line_.empty()) {
        if (have_data_) on_data(std::string_view(data_));
        data_.clear();
        have_data_ = false;
      } else if (line_.rfind("data:", 0) == 0) {
        std::string_view value(line_);
        value.remove_prefix(5);
        if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        if (have_data_) data_.push_back('\n');
        if (data_.size() + value.size() > max_line_) {
          failed_ = true;
          return false;
        }
        data_.append(value);
        have_data_ = true;
      }
      line_.clear();
    }
    return true;
  }

 private:
  std::size_t max_line_;
  std::string line_;
  std::string data_;
  bool have_data_ = false;
  bool failed_ = false;
};

struct Usage {
  int64_t input = 0;
  int64_t output = 0;
  int64_t total = 0;
};

// The reply as it streams in: chunks of `chat.completion.chunk`, or one
// whole `chat.completion` when a server ignores `stream`.
struct ChatReply {
  std::string text;
  std::string model;
  std::string finish_reason;
  std::optional<Usage> usage;
  bool done = false;         // saw `data: [DONE]`
  std::string error;         // the server reported an error inside the stream
  std::size_t max_text = 0;  // 0: unbounded
  bool text_overflowed = false;

  // Appends content, bounded by max_text. Returns the bytes appended.
  std::string_view AppendText(std::string_view s) {
    if (max_text != 0 && text.size() + s.size() > max_text) {
      text_overflowed = true;
      s = s.substr(0, max_text > text.size() ? max_text - text.size() : 0);
    }
    text.append(s);
    return s;
  }
};

inline std::string ContentText(const nlohmann::json& content) {
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

inline void TakeCommon(const nlohmann::json& j, ChatReply& r) {
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

// Applies one event's data to the reply; returns the content it added
// (for progress). Data that is not JSON is skipped.
inline std::string ApplyStreamEvent(std::string_view data, ChatReply& r) {
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

// A whole non-streamed `chat.completion` body. False when it is not one.
inline bool ApplyWholeReply(std::string_view body, ChatReply& r) {
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

// `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date
// (RFC 9110: IMF-fixdate; the obsolete forms are not accepted). nullopt
// when it is neither; a date in the past is 0.
inline std::optional<int64_t> ParseRetryAfter(std::string_view value, std::time_t now) {
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

// What the HTTP side observed for one request, once it ended.
struct HttpOutcome {
  bool transport_failed = false;  // no complete HTTP exchange (refused, reset, timed out)
  std::string transport_error;    // libcurl's message
  long status = 0;
  std::optional<std::string> retry_after;  // the header's value
  std::string error_body;                  // the first bytes of a non-2xx body
};

// The short text of an error body: OpenAI's error.message when it is one,
// else the body itself, cut to a readable length.
inline std::string ErrorBodyText(std::string_view body) {
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

// The result object (everything but `type` and `id`) for a finished
// request: ok with {text, usage, model, finish_reason}, or a failure whose
// `retryable` follows the status (429, 5xx and lost connections may pass
// on another attempt; other statuses will not) and which carries the
// server's Retry-After as `retry_after_ms`.
//
// Whatever tokens the endpoint reported also go in the result's own
// `usage` (with the model), which pincerd adds up per task, failed
// attempts included (docs/protocol.md).
inline nlohmann::json ChatResult(const HttpOutcome& http, const ChatReply& reply, std::time_t now) {
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
