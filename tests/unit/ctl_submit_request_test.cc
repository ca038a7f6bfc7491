#include <gtest/gtest.h>

#include "ctl/submit_request.h"

namespace pincer::ctl {
namespace {

TEST(SubmitRequestTest, MinimalRequestLeavesDefaultsToTheDaemon) {
  auto request = BuildSubmit(SubmitSpec{});
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(*request, nlohmann::json::parse(R"({"type":"submit","skills":[],"payload":null})"));
}

TEST(SubmitRequestTest, EveryFlag) {
  SubmitSpec spec;
  spec.skills = {"echo", "text"};
  spec.payload = {{"q", 1}};
  spec.priority = -3;
  spec.timeout = "1m30s";
  spec.max_attempts = 5;
  spec.session = "chat-1";
  spec.key = "order-7";
  spec.wait = true;
  auto request = BuildSubmit(spec);
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(*request, nlohmann::json::parse(R"({"type":"submit","skills":["echo","text"],
      "payload":{"q":1},"priority":-3,"timeout":90000,"max_attempts":5,"session":"chat-1",
      "key":"order-7","wait":true})"));
}

TEST(SubmitRequestTest, TimeoutIsSentAsMilliseconds) {
  for (const auto& [text, ms] : std::vector<std::pair<std::string, std::int64_t>>{
           {"250ms", 250}, {"30s", 30000}, {"10m", 600000}, {"0", 0}, {"1500", 1500}}) {
    SubmitSpec spec;
    spec.timeout = text;
    auto request = BuildSubmit(spec);
    ASSERT_TRUE(request.ok()) << text;
    EXPECT_EQ((*request)["timeout"], ms) << text;
  }
}

TEST(SubmitRequestTest, BadValuesAreUsageErrors) {
  SubmitSpec bad_timeout;
  bad_timeout.timeout = "soon";
  auto request = BuildSubmit(bad_timeout);
  ASSERT_FALSE(request.ok());
  EXPECT_EQ(request.error().kind, client::ErrorKind::kInvalidArgument);
  EXPECT_NE(request.error().message.find("soon"), std::string::npos);

  SubmitSpec bad_attempts;
  bad_attempts.max_attempts = 0;
  EXPECT_FALSE(BuildSubmit(bad_attempts).ok());
}

TEST(SubmitRequestTest, PayloadMustBeJson) {
  EXPECT_EQ(*ParsePayload(R"({"a":[1,2]})", "--payload"), nlohmann::json::parse(R"({"a":[1,2]})"));
  EXPECT_EQ(*ParsePayload(R"("text")", "--payload"), "text");
  EXPECT_EQ(*ParsePayload("42\n", "--payload"), 42);
  auto bad = ParsePayload("hello", "--payload");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().kind, client::ErrorKind::kInvalidArgument);
  EXPECT_NE(bad.error().message.find("--payload"), std::string::npos);
  EXPECT_FALSE(ParsePayload("", "stdin").ok());
}

TEST(BatchLineTest, AcceptsTheProtocolFields) {
  auto request = ParseBatchLine(
      R"({"skills":["echo"],"payload":"hi","priority":2,"timeout":"5s","max_attempts":1,)"
      R"("session":"s","key":null})");
  ASSERT_TRUE(request.ok()) << request.error().message;
  EXPECT_EQ(*request, nlohmann::json::parse(R"({"type":"submit","skills":["echo"],"payload":"hi",
      "priority":2,"timeout":5000,"max_attempts":1,"session":"s"})"));

  auto integer_timeout = ParseBatchLine(R"({"timeout":250})");
  ASSERT_TRUE(integer_timeout.ok());
  EXPECT_EQ((*integer_timeout)["timeout"], 250);
}

TEST(BatchLineTest, RefusesBadLines) {
  const char* bad_lines[] = {
      "not json",
      "[1,2]",
      R"({"skills":"echo"})",
      R"({"skills":[1]})",
      R"({"priority":"high"})",
      R"({"priority":1.5})",
      R"({"timeout":"forever"})",
      R"({"timeout":-1})",
      R"({"max_attempts":0})",
      R"({"session":5})",
      R"({"key":[]})",
      R"({"priorty":1})",
      R"({"wait":true})",
  };
  for (const char* line : bad_lines) {
    auto request = ParseBatchLine(line);
    EXPECT_FALSE(request.ok()) << line;
    if (!request.ok()) {
      EXPECT_EQ(request.error().kind, client::ErrorKind::kInvalidArgument);
    }
  }
}

TEST(BatchLineTest, UnknownFieldIsNamed) {
  auto request = ParseBatchLine(R"({"priorty":1})");
  ASSERT_FALSE(request.ok());
  EXPECT_NE(request.error().message.find("priorty"), std::string::npos);
}

TEST(SubmitRequestTest, TextIsSentAsAJsonStringExactly) {
  for (const std::string text : {"4", "null", "say \"hi\"\n", "", "{\"a\":1}", "caf\xc3\xa9"}) {
    auto payload = TextPayload(text, "--text");
    ASSERT_TRUE(payload.ok()) << text;
    EXPECT_EQ(*payload, nlohmann::json(text));
  }
  auto bad = TextPayload("caf\xe9", "text file x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "text file x is not UTF-8 text");
}

}  // namespace
}  // namespace pincer::ctl
