// The pure half of `pincer-worker --openai`: a task payload turned into a
// chat-completions request body, the server-sent-event stream parsed back
// into text and usage, and an HTTP outcome turned into a result. No sockets
// and no clock (the time is passed in), so unit tests drive it directly.
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
std::variant<nlohmann::json, std::string> BuildChatRequest(const nlohmann::json& payload,
                                                           const std::string& session,
                                                           const ChatDefaults& defaults);

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

std::string ContentText(const nlohmann::json& content);

void TakeCommon(const nlohmann::json& j, ChatReply& r);

// Applies one event's data to the reply; returns the content it added
// (for progress). Data that is not JSON is skipped.
std::string ApplyStreamEvent(std::string_view data, ChatReply& r);

// A whole non-streamed `chat.completion` body. False when it is not one.
bool ApplyWholeReply(std::string_view body, ChatReply& r);

// `Retry-After` as milliseconds from `now`: delta-seconds or an HTTP date
// (RFC 9110: IMF-fixdate; the obsolete forms are not accepted). nullopt
// when it is neither; a date in the past is 0.
std::optional<int64_t> ParseRetryAfter(std::string_view value, std::time_t now);

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
std::string ErrorBodyText(std::string_view body);

// The result object (everything but `type` and `id`) for a finished
// request: ok with {text, usage, model, finish_reason}, or a failure whose
// `retryable` follows the status (429, 5xx and lost connections may pass
// on another attempt; other statuses will not) and which carries the
// server's Retry-After as `retry_after_ms`.
//
// Whatever tokens the endpoint reported also go in the result's own
// `usage` (with the model), which pincerd adds up per task, failed
// attempts included (docs/protocol.md).
nlohmann::json ChatResult(const HttpOutcome& http, const ChatReply& reply, std::time_t now);

}  // namespace pincer::worker::openai
