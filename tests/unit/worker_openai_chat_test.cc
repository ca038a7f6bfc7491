// src/worker/openai_chat.h: payload to request, event stream to reply,
// HTTP outcome to result (pincer-worker --openai), with no socket.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "worker/openai_chat.h"
#include "worker/result_builder.h"

namespace pincer::worker::openai {
namespace {

using nlohmann::json;

constexpr std::time_t kNow = 1764000000;  // Mon, 24 Nov 2025 16:00:00 GMT

TEST(BuildChatRequestTest, PromptStringIsOneUserMessage) {
  auto r = BuildChatRequest("hi", "", ChatDefaults{"m1"});
  ASSERT_TRUE(std::holds_alternative<json>(r));
  EXPECT_EQ(std::get<json>(r), json::parse(R"({"messages":[{"role":"user","content":"hi"}],
      "model":"m1","stream":true,"stream_options":{"include_usage":true}})"));
}

TEST(BuildChatRequestTest, ObjectPassesThroughAndSessionBecomesUser) {
  const json payload = json::parse(R"({"messages":[{"role":"user","content":"x"}],
      "model":"own","temperature":0.2,"stream":false,"stream_options":{"foo":1}})");
  auto r = BuildChatRequest(payload, "s1", ChatDefaults{"m1"});
  ASSERT_TRUE(std::holds_alternative<json>(r));
  const json& body = std::get<json>(r);
  EXPECT_EQ(body["model"], "own");
  EXPECT_EQ(body["temperature"], 0.2);
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"], json::parse(R"({"foo":1,"include_usage":true})"));
  EXPECT_EQ(body["user"], "s1");

  // A payload's own user wins; no --model and none in the payload: no model.
  auto own = BuildChatRequest(json::parse(R"({"messages":[1],"user":"me"})"), "s1", {});
  EXPECT_EQ(std::get<json>(own)["user"], "me");
  EXPECT_FALSE(std::get<json>(own).contains("model"));
}

TEST(BuildChatRequestTest, OtherPayloadsAreRefused) {
  for (const char* bad : {"42", "null", "[1]", "{}", R"({"messages":[]})", R"({"messages":"x"})"}) {
    auto r = BuildChatRequest(json::parse(bad), "", {});
    ASSERT_TRUE(std::holds_alternative<std::string>(r)) << bad;
    EXPECT_NE(std::get<std::string>(r).find("payload must be"), std::string::npos);
  }
}

std::vector<std::string> FeedAll(SseParser& p, const std::vector<std::string>& chunks,
                                 bool* ok = nullptr) {
  std::vector<std::string> events;
  bool all = true;
  for (const auto& c : chunks) {
    all = p.Feed(c, [&](std::string_view d) { events.emplace_back(d); }) && all;
  }
  if (ok != nullptr) *ok = all;
  return events;
}

TEST(SseParserTest, EventsSplitAnywhere) {
  SseParser p(1024);
  const auto events = FeedAll(p, {"da", "ta: {\"a\"", ":1}\n", "\ndata: [DONE]\r\n\r", "\n"});
  EXPECT_EQ(events, (std::vector<std::string>{"{\"a\":1}", "[DONE]"}));
}

TEST(SseParserTest, MultiLineDataCommentsAndOtherFields) {
  SseParser p(1024);
  const auto events =
      FeedAll(p, {": keep-alive\n\nevent: x\nid: 3\ndata:one\ndata: two\n\nretry: 5\n\n"});
  EXPECT_EQ(events, (std::vector<std::string>{"one\ntwo"}));
}

TEST(SseParserTest, LongLineIsAnErrorNotAGrowingBuffer) {
  SseParser p(16);
  bool ok = true;
  FeedAll(p, {"data: " + std::string(100, 'x')}, &ok);
  EXPECT_FALSE(ok);
  EXPECT_FALSE(p.Feed("data: y\n\n", [](std::string_view) { FAIL(); }));
}

TEST(ApplyStreamEventTest, DeltasUsageModelAndFinish) {
  ChatReply r;
  EXPECT_EQ(
      ApplyStreamEvent(
          R"({"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})", r),
      "");
  EXPECT_EQ(ApplyStreamEvent(R"({"choices":[{"delta":{"content":"Hel"}}]})", r), "Hel");
  EXPECT_EQ(
      ApplyStreamEvent(R"({"choices":[{"delta":{"content":[{"type":"text","text":"lo"}]}}]})", r),
      "lo");
  ApplyStreamEvent(R"({"choices":[{"delta":{},"finish_reason":"stop"}]})", r);
  ApplyStreamEvent(
      R"({"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})", r);
  ApplyStreamEvent("not json", r);
  ApplyStreamEvent("[DONE]", r);
  EXPECT_EQ(r.text, "Hello");
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.finish_reason, "stop");
  ASSERT_TRUE(r.usage.has_value());
  EXPECT_EQ(r.usage->total, 5);
  EXPECT_TRUE(r.done);
  EXPECT_TRUE(r.error.empty());
}

TEST(ApplyStreamEventTest, TextIsBounded) {
  ChatReply r;
  r.max_text = 4;
  EXPECT_EQ(ApplyStreamEvent(R"({"choices":[{"delta":{"content":"abcdef"}}]})", r), "abcd");
  EXPECT_TRUE(r.text_overflowed);
}

TEST(ApplyWholeReplyTest, ChatCompletionBody) {
  ChatReply r;
  ASSERT_TRUE(ApplyWholeReply(R"({"model":"m","choices":[{"message":{"content":"hi"},
      "finish_reason":"length"}],"usage":{"prompt_tokens":1,"completion_tokens":1}})",
                              r));
  EXPECT_EQ(r.text, "hi");
  EXPECT_EQ(r.finish_reason, "length");
  EXPECT_EQ(r.usage->total, 2) << "total from the parts when absent";
  ChatReply bad;
  EXPECT_FALSE(ApplyWholeReply("<html>", bad));
}

TEST(ParseRetryAfterTest, SecondsDatesAndGarbage) {
  EXPECT_EQ(ParseRetryAfter("2", kNow), 2000);
  EXPECT_EQ(ParseRetryAfter(" 0 ", kNow), 0);
  EXPECT_EQ(ParseRetryAfter("Mon, 24 Nov 2025 16:00:30 GMT", kNow), 30000);
  EXPECT_EQ(ParseRetryAfter("Mon, 24 Nov 2025 15:00:00 GMT", kNow), 0) << "in the past";
  EXPECT_EQ(ParseRetryAfter("", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("-1", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("Mon, 24 Nov 2025 16:00:30 GMT trailing", kNow), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("99999999999999999999", kNow), int64_t{999999999} * 1000);
}

ChatReply Finished(std::string text) {
  ChatReply r;
  r.text = std::move(text);
  r.finish_reason = "stop";
  r.done = true;
  r.model = "m";
  r.usage = Usage{10, 5, 15};
  return r;
}

TEST(ChatResultTest, Success) {
  HttpOutcome http;
  http.status = 200;
  EXPECT_EQ(ChatResult(http, Finished("hi"), kNow), json::parse(R"({"ok":true,"output":{
      "text":"hi","model":"m","finish_reason":"stop","usage":{"input":10,"output":5,"total":15}},
      "usage":{"input":10,"output":5,"total":15,"model":"m"}})"))
      << "the usage also goes in the result's own field, for pincerd to count";
  ChatReply no_usage = Finished("hi");
  no_usage.usage.reset();
  EXPECT_TRUE(ChatResult(http, no_usage, kNow)["output"]["usage"].is_null());
  EXPECT_FALSE(ChatResult(http, no_usage, kNow).contains("usage"));
  ChatReply odd = Finished("hi");
  odd.usage->input = -3;  // an odd server: clamped, never a result pincerd refuses
  EXPECT_EQ(ChatResult(http, odd, kNow)["usage"]["input"], 0);
}

TEST(ChatResultTest, StatusDecidesRetryable) {
  struct Case {
    long status;
    bool retryable;
  };
  for (const Case c : {Case{429, true}, Case{500, true}, Case{503, true}, Case{408, true},
                       Case{400, false}, Case{401, false}, Case{404, false}, Case{422, false}}) {
    HttpOutcome http;
    http.status = c.status;
    http.error_body = R"({"error":{"message":"nope","type":"x"}})";
    const json r = ChatResult(http, ChatReply{}, kNow);
    EXPECT_EQ(r["ok"], false);
    EXPECT_EQ(r["retryable"], c.retryable) << c.status;
    EXPECT_EQ(r["error"], "model endpoint answered HTTP " + std::to_string(c.status) + ": nope");
    EXPECT_FALSE(r.contains("retry_after_ms"));
  }
}

TEST(ChatResultTest, RetryAfterBecomesRetryAfterMs) {
  HttpOutcome http;
  http.status = 429;
  http.retry_after = "3";
  EXPECT_EQ(ChatResult(http, ChatReply{}, kNow)["retry_after_ms"], 3000);
  http.retry_after = "Mon, 24 Nov 2025 16:01:00 GMT";
  EXPECT_EQ(ChatResult(http, ChatReply{}, kNow)["retry_after_ms"], 60000);
  http.retry_after = "garbage";
  EXPECT_FALSE(ChatResult(http, ChatReply{}, kNow).contains("retry_after_ms"));
  http.status = 503;
  http.error_body = "plain text\n";
  http.retry_after = "1";
  const json r = ChatResult(http, ChatReply{}, kNow);
  EXPECT_EQ(r["error"], "model endpoint answered HTTP 503: plain text");
  EXPECT_EQ(r["retry_after_ms"], 1000);
}

TEST(ChatResultTest, LostConnectionsAndBrokenStreams) {
  HttpOutcome refused;
  refused.transport_failed = true;
  refused.transport_error = "Couldn't connect to server";
  json r = ChatResult(refused, ChatReply{}, kNow);
  EXPECT_EQ(r["retryable"], true);
  EXPECT_EQ(r["error"], "model endpoint unreachable: Couldn't connect to server");

  HttpOutcome ok;
  ok.status = 200;
  ChatReply cut;
  cut.text = "half";
  r = ChatResult(ok, cut, kNow);
  EXPECT_EQ(r["retryable"], true);
  EXPECT_NE(r["error"].get<std::string>().find("closed the stream"), std::string::npos);

  ChatReply in_stream_error;
  in_stream_error.error = "overloaded";
  EXPECT_EQ(ChatResult(ok, in_stream_error, kNow)["error"], "model endpoint reported: overloaded");

  ChatReply huge = Finished("xxxx");
  huge.max_text = 4;
  huge.text_overflowed = true;
  EXPECT_EQ(ChatResult(ok, huge, kNow)["retryable"], false);
}

TEST(ReplyResultLineTest, RunnerBuiltResultBecomesTheLine) {
  TaskOutcome o;
  o.kind = TaskOutcome::Kind::kReply;
  o.reply = {{"ok", false}, {"error", "busy"}, {"retryable", true}, {"retry_after_ms", 2000}};
  EXPECT_FALSE(Succeeded(o));
  EXPECT_EQ(DescribeFailure(o), "busy");
  EXPECT_EQ(json::parse(ResultLine("t1", o, 1 << 20)),
            json::parse(R"({"type":"result","id":"t1","ok":false,"error":"busy","retryable":true,
                "retry_after_ms":2000})"));
  o.reply = {{"ok", true}, {"output", {{"text", std::string(5000, 'x')}}}};
  EXPECT_TRUE(Succeeded(o));
  const json big = json::parse(ResultLine("t1", o, 1024));
  EXPECT_EQ(big["ok"], false);
  EXPECT_EQ(big["retryable"], false);
  EXPECT_NE(big["error"].get<std::string>().find("output too large"), std::string::npos);
}

}  // namespace
}  // namespace pincer::worker::openai
