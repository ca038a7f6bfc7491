// Fuzz target: the daemon's message parser (protocol/messages.cc). Every
// line goes through the simdjson fast path and the nlohmann slow path;
// they must agree on whether the line is a message and, when both accept
// it, on every field. JSON the daemon carries (payload, output, progress
// data, labels) must be one valid JSON value, or it would reach other
// peers broken. A parse into a result that held an earlier message of the
// same type (the event loop reuses one) must give the same message.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "protocol/messages.h"

namespace pincer {
namespace {

void CheckRaw(const std::string& raw, const char* what) {
  if (raw.empty()) return;
  if (!nlohmann::json::accept(raw)) {
    std::fprintf(stderr, "%s is not one JSON value: %s\n", what, raw.c_str());
    std::abort();
  }
}

std::string Describe(const ParseResult& r) {
  if (std::holds_alternative<ProtocolError>(r)) return "error";
  const Message& m = std::get<Message>(r);
  std::string out = "message #" + std::to_string(m.index());
  if (auto* x = std::get_if<ResultMsg>(&m)) {
    CheckRaw(x->output, "result output");
    out += " result id=" + x->id + " ok=" + std::to_string(x->ok) + " output=" + x->output +
           " error=" + x->error + " retryable=" + std::to_string(x->retryable);
  } else if (auto* s = std::get_if<SubmitReq>(&m)) {
    CheckRaw(s->payload, "submit payload");
    std::string skills;
    for (const auto& k : s->skills) skills += k + "|";
    out += " submit req=" + std::to_string(s->req) + " skills=" + skills +
           " payload=" + s->payload + " priority=" + std::to_string(s->priority) +
           " timeout=" + (s->timeout ? std::to_string(s->timeout->count()) : "-") +
           " max_attempts=" + (s->max_attempts ? std::to_string(*s->max_attempts) : "-") +
           " session=" + s->session + " key=" + s->key + " wait=" + std::to_string(s->wait);
  } else if (auto* h = std::get_if<Hello>(&m)) {
    CheckRaw(h->labels, "hello labels");
  } else if (auto* p = std::get_if<ProgressMsg>(&m)) {
    CheckRaw(p->data, "progress data");
  }
  return out;
}

// Lines that set every field of the hot messages, to parse over.
const char* const kEarlier[] = {
    R"({"type":"result","id":"t12345678901234567890","ok":false,"error":"an error longer than a short string","retryable":false})",
    R"({"type":"result","id":"t1","ok":true,"output":{"a":"an output longer than a short string"}})",
    R"({"type":"submit","req":99,"skills":["alpha","beta","gamma"],"payload":"a payload longer than a short string","priority":7,"timeout":"30s","max_attempts":9,"session":"a session longer than a short string","key":"a key longer than a short string","wait":true})",
};

}  // namespace
}  // namespace pincer

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pincer;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  const ParseResult fast = ParseMessage(line);
  const ParseResult slow = ParseMessageWithoutFastPathForTest(line);
  const std::string fast_text = Describe(fast);
  const std::string slow_text = Describe(slow);
  if (fast_text != slow_text) {
    std::fprintf(stderr, "fast and slow paths disagree\n fast: %s\n slow: %s\n", fast_text.c_str(),
                 slow_text.c_str());
    std::abort();
  }

  // In place, with padding after the line, into a reused result.
  std::string padded(line);
  padded.append(kLinePadding, '\xff');
  ParseResult reused = ParseMessage(kEarlier[size % 3]);
  ParseMessagePaddedInto(std::string_view(padded.data(), size), reused);
  const std::string reused_text = Describe(reused);
  if (reused_text != fast_text) {
    std::fprintf(stderr, "a reused result differs\n fresh:  %s\n reused: %s\n", fast_text.c_str(),
                 reused_text.c_str());
    std::abort();
  }
  ParseWireDuration(line);
  return 0;
}
