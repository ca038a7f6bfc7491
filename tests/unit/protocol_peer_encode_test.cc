// src/protocol/peer_encode.h: the lines clients and workers send, read back
// by the daemon's own parser (messages.h).
#include <gtest/gtest.h>
#include <pincer/version.h>

#include "protocol/messages.h"
#include "protocol/peer_encode.h"

namespace pincer {
namespace {

using nlohmann::json;

// `line` without its newline, as the daemon parses it.
Message Parsed(std::string line) {
  EXPECT_EQ(line.back(), '\n');
  line.pop_back();
  ParseResult r = ParseMessage(line);
  if (auto* e = std::get_if<ProtocolError>(&r)) {
    ADD_FAILURE() << line << ": " << e->code << ": " << e->message;
    return WorkerDrainMsg{};
  }
  return std::get<Message>(r);
}

TEST(EncodeWorkerHelloTest, CarriesEveryWorkerField) {
  WorkerHello h;
  h.token = "wtok";
  h.name = "echo-1";
  h.skills = {"echo", "text"};
  h.capacity = 2;
  h.labels = {{"host", "box1"}};
  h.spawn_id = "s-4";
  const std::string line = EncodeWorkerHello(h);
  ASSERT_EQ(line.back(), '\n');
  EXPECT_EQ(json::parse(line),
            json::parse(R"({"type":"hello","role":"worker","proto":1,"token":"wtok",
                            "name":"echo-1","skills":["echo","text"],"capacity":2,
                            "labels":{"host":"box1"},"spawn_id":"s-4","confirms_stop":true})"));
  const auto hello = std::get<Hello>(Parsed(line));
  EXPECT_EQ(hello.role, "worker");
  EXPECT_EQ(hello.proto, kProtocolVersion);
  EXPECT_EQ(hello.skills, h.skills);
  EXPECT_EQ(hello.labels, R"({"host":"box1"})");
  EXPECT_TRUE(hello.confirms_stop);
}

TEST(EncodeWorkerHelloTest, OptionalFieldsAreLeftOut) {
  WorkerHello h;
  h.name = "n";
  const json j = json::parse(EncodeWorkerHello(h));
  EXPECT_FALSE(j.contains("spawn_id"));
  EXPECT_FALSE(j.contains("labels"));
  EXPECT_EQ(j["skills"], json::array());
  EXPECT_EQ(j["capacity"], 1);
}

TEST(EncodeHelloTest, AClientsHelloMergesItsExtraFields) {
  EXPECT_EQ(EncodeHello("client", "ctok", {{"name", "ctl"}}),
            R"({"name":"ctl","proto":1,"role":"client","token":"ctok","type":"hello"})"
            "\n");
  EXPECT_EQ(std::get<Hello>(Parsed(EncodeHello("client", ""))).role, "client");
}

TEST(EncodeHeartbeatTest, LoadIsAlwaysAnObject) {
  EXPECT_EQ(json::parse(EncodeHeartbeat(json{{"cpu", 0.5}})),
            json::parse(R"({"type":"heartbeat","load":{"cpu":0.5}})"));
  EXPECT_EQ(json::parse(EncodeHeartbeat(json())), json::parse(R"({"type":"heartbeat","load":{}})"));
  EXPECT_EQ(std::get<HeartbeatMsg>(Parsed(EncodeHeartbeat(json{{"cpu", 0.5}}))).cpu, 0.5);
}

TEST(EncodeResultTest, FailureShape) {
  EXPECT_EQ(json::parse(EncodeResultFailure("t1", "worker is draining", true)),
            json::parse(R"({"type":"result","id":"t1","ok":false,
                            "error":"worker is draining","retryable":true})"));
  const auto r = std::get<ResultMsg>(Parsed(EncodeResultFailure("t1", "boom", false)));
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "boom");
  EXPECT_FALSE(r.retryable);
}

TEST(EncodeResultTest, SuccessAndReplyReadBack) {
  std::string line = EncodeResultSuccess("t2", json{{"n", 1}});
  AppendAttempt(line, 4);
  auto r = std::get<ResultMsg>(Parsed(line));
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.output, R"({"n":1})");
  EXPECT_EQ(r.attempt, 4);

  r = std::get<ResultMsg>(Parsed(
      EncodeResultReply("t3", json{{"ok", true}, {"output", "hi"}, {"usage", {{"input", 3}}}})));
  EXPECT_EQ(r.id, "t3");
  EXPECT_EQ(r.output, R"("hi")");
  EXPECT_TRUE(r.has_usage);
  EXPECT_EQ(r.usage.input, 3);
}

TEST(EncodeResultTest, InvalidUtf8IsReplacedNotThrown) {
  const std::string line = EncodeResultSuccess("t1", std::string("a\xff"
                                                                 "b"));
  EXPECT_TRUE(std::get<ResultMsg>(Parsed(line)).ok);
  EXPECT_NE(line.find("\xef\xbf\xbd"), std::string::npos);  // U+FFFD
}

TEST(AppendAttemptTest, AddsTheLastFieldWithinItsBound) {
  std::string line = R"({"type":"result","id":"t1","ok":true})"
                     "\n";
  const std::size_t before = line.size();
  AppendAttempt(line, 2147483647);
  EXPECT_EQ(line, R"({"type":"result","id":"t1","ok":true,"attempt":2147483647})"
                  "\n");
  EXPECT_LE(line.size() - before, kAttemptFieldBytes);
}

TEST(EncodeStoppedAndProgressTest, ReadBack) {
  const auto s = std::get<StoppedMsg>(Parsed(EncodeStopped("t5", 2)));
  EXPECT_EQ(s.id, "t5");
  EXPECT_EQ(s.attempt, 2);
  auto p = std::get<ProgressMsg>(Parsed(EncodeProgress("t5", json{{"pct", 50}}, 2)));
  EXPECT_EQ(p.data, R"({"pct":50})");
  EXPECT_EQ(p.attempt, 2);
  p = std::get<ProgressMsg>(Parsed(EncodeProgress("t5", json(1), std::nullopt)));
  EXPECT_EQ(p.attempt, 0);
}

}  // namespace
}  // namespace pincer
