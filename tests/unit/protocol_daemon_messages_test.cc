// src/protocol/daemon_messages.h: the daemon's lines into the typed
// messages a worker acts on.
#include <gtest/gtest.h>

#include "protocol/daemon_messages.h"
#include "protocol/encode.h"

namespace pincer {
namespace {

using nlohmann::json;

TEST(ParseDaemonMessageTest, Welcome) {
  auto m = ParseDaemonMessage(R"({"type":"welcome","id":"w3","heartbeat_ms":250})");
  ASSERT_TRUE(std::holds_alternative<WelcomeMsg>(m));
  EXPECT_EQ(std::get<WelcomeMsg>(m).id, "w3");
  EXPECT_EQ(std::get<WelcomeMsg>(m).heartbeat_ms, 250);
}

TEST(ParseDaemonMessageTest, WelcomeWithoutIntervalKeepsTheDefault) {
  auto m = ParseDaemonMessage(R"({"type":"welcome","id":"w3"})");
  ASSERT_TRUE(std::holds_alternative<WelcomeMsg>(m));
  EXPECT_EQ(std::get<WelcomeMsg>(m).heartbeat_ms, 5000);
  EXPECT_TRUE(std::holds_alternative<BadMsg>(
      ParseDaemonMessage(R"({"type":"welcome","id":"w3","heartbeat_ms":0})")));
}

TEST(ParseDaemonMessageTest, WelcomeCarriesTheDaemonsDepthBound) {
  auto m = ParseDaemonMessage(R"({"type":"welcome","id":"w3","max_json_depth":200})");
  EXPECT_EQ(std::get<WelcomeMsg>(m).max_json_depth, 200);
  // Absent (an older daemon) or nonsense: the default.
  for (const char* line :
       {R"({"type":"welcome","id":"w3"})", R"({"type":"welcome","id":"w3","max_json_depth":0})",
        R"({"type":"welcome","id":"w3","max_json_depth":99999})",
        R"({"type":"welcome","id":"w3","max_json_depth":"64"})"}) {
    EXPECT_EQ(std::get<WelcomeMsg>(ParseDaemonMessage(line)).max_json_depth, kDefaultMaxJsonDepth)
        << line;
  }
}

TEST(ParseDaemonMessageTest, LinesNestedPastTheBoundAreBadMessages) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto m = ParseDaemonMessage(R"({"type":"task","id":"t1","payload":)" + deep + "}");
  ASSERT_TRUE(std::holds_alternative<BadMsg>(m));
  EXPECT_NE(std::get<BadMsg>(m).reason.find("1024"), std::string::npos);
  EXPECT_TRUE(std::holds_alternative<BadMsg>(ParseDaemonMessage(std::string(1000000, '{'))));
  // Up to the bound a payload passes whole.
  const std::string ok = std::string(1023, '[') + std::string(1023, ']');
  auto t = ParseDaemonMessage(R"({"type":"task","id":"t1","payload":)" + ok + "}");
  ASSERT_TRUE(std::holds_alternative<TaskMsg>(t));
  EXPECT_EQ(std::get<TaskMsg>(t).payload.dump(), ok);
}

TEST(ParseDaemonMessageTest, FullTask) {
  auto m = ParseDaemonMessage(
      R"({"type":"task","id":"t18","skills":["echo"],"payload":{"a":1},"attempt":2,)"
      R"("session":"chat-1","deadline_ms":1764000000000})");
  ASSERT_TRUE(std::holds_alternative<TaskMsg>(m));
  const auto& t = std::get<TaskMsg>(m);
  EXPECT_EQ(t.id, "t18");
  EXPECT_EQ(t.payload, json::parse(R"({"a":1})"));
  EXPECT_EQ(t.attempt, 2);
  EXPECT_EQ(t.session, "chat-1");
  EXPECT_EQ(t.deadline_ms, 1764000000000);
}

TEST(ParseDaemonMessageTest, MinimalTaskGetsDefaults) {
  auto m = ParseDaemonMessage(R"({"type":"task","id":"t1","session":null,"deadline_ms":null})");
  ASSERT_TRUE(std::holds_alternative<TaskMsg>(m));
  const auto& t = std::get<TaskMsg>(m);
  EXPECT_TRUE(t.payload.is_null());
  EXPECT_EQ(t.attempt, 1);
  EXPECT_EQ(t.session, "");
  EXPECT_FALSE(t.deadline_ms.has_value());
}

TEST(ParseDaemonMessageTest, CancelDrainError) {
  auto c = ParseDaemonMessage(R"({"type":"cancel","id":"t9"})");
  ASSERT_TRUE(std::holds_alternative<CancelMsg>(c));
  EXPECT_EQ(std::get<CancelMsg>(c).id, "t9");
  EXPECT_TRUE(std::holds_alternative<DrainMsg>(ParseDaemonMessage(R"({"type":"drain"})")));
  auto e = ParseDaemonMessage(R"({"type":"error","code":"unknown_task","message":"no task t0"})");
  ASSERT_TRUE(std::holds_alternative<ErrorMsg>(e));
  EXPECT_EQ(std::get<ErrorMsg>(e).code, "unknown_task");
  EXPECT_EQ(std::get<ErrorMsg>(e).message, "no task t0");
}

// What the daemon encodes (encode.h) reads back as the same message.
TEST(ParseDaemonMessageTest, ReadsTheDaemonsOwnLines) {
  auto welcome = ParseDaemonMessage(EncodeWelcome("w7", 250, 32));
  ASSERT_TRUE(std::holds_alternative<WelcomeMsg>(welcome));
  EXPECT_EQ(std::get<WelcomeMsg>(welcome).id, "w7");
  EXPECT_EQ(std::get<WelcomeMsg>(welcome).heartbeat_ms, 250);
  EXPECT_EQ(std::get<WelcomeMsg>(welcome).max_json_depth, 32);

  std::string line;
  const std::vector<std::string> skills = {"echo"};
  AppendTask(line, {.id = 18,
                    .skills = skills,
                    .payload = R"({"b":1, "a":2.50})",
                    .attempt = 3,
                    .session = "s",
                    .deadline_ms = 99});
  ASSERT_EQ(line.back(), '\n');
  line.pop_back();
  auto task = ParseDaemonMessage(line);
  ASSERT_TRUE(std::holds_alternative<TaskMsg>(task));
  const auto& t = std::get<TaskMsg>(task);
  EXPECT_EQ(t.id, "t18");
  EXPECT_EQ(t.payload_text, R"({"b":1, "a":2.50})");  // as submitted, spelling and order
  EXPECT_EQ(t.attempt, 3);
  EXPECT_EQ(t.session, "s");
  EXPECT_EQ(t.deadline_ms, 99);

  auto cancel = ParseDaemonMessage(EncodeCancel("t18", 3, "timed_out"));
  ASSERT_TRUE(std::holds_alternative<CancelMsg>(cancel));
  EXPECT_EQ(std::get<CancelMsg>(cancel).id, "t18");
  EXPECT_EQ(std::get<CancelMsg>(cancel).attempt, 3);
  EXPECT_EQ(std::get<CancelMsg>(cancel).reason, "timed_out");

  EXPECT_TRUE(std::holds_alternative<DrainMsg>(ParseDaemonMessage(EncodeDrain())));
  EXPECT_TRUE(std::holds_alternative<DrainedMsg>(ParseDaemonMessage(EncodeDrained())));
  EXPECT_TRUE(std::holds_alternative<HeartbeatAckMsg>(ParseDaemonMessage(EncodeHeartbeatAck())));
  auto error = ParseDaemonMessage(EncodeTaskError("unknown_task", "no task t0", "t0"));
  ASSERT_TRUE(std::holds_alternative<ErrorMsg>(error));
  EXPECT_EQ(std::get<ErrorMsg>(error).code, "unknown_task");
}

TEST(ParseDaemonMessageTest, UnknownTypeIsToleratedForNewerDaemons) {
  auto m = ParseDaemonMessage(R"({"type":"ping","seq":1})");
  ASSERT_TRUE(std::holds_alternative<UnknownMsg>(m));
  EXPECT_EQ(std::get<UnknownMsg>(m).type, "ping");
}

TEST(ParseDaemonMessageTest, BadLines) {
  for (const char* line :
       {"not json", "[1,2]", "42", R"({"no":"type"})", R"({"type":7})", R"({"type":"task"})",
        R"({"type":"task","id":""})", R"({"type":"task","id":5})", R"({"type":"cancel"})",
        R"({"type":"task","id":"t1"} trailing)"}) {
    EXPECT_TRUE(std::holds_alternative<BadMsg>(ParseDaemonMessage(line))) << line;
  }
}

}  // namespace
}  // namespace pincer
