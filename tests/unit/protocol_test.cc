// ParseMessage, table-driven: bad lines map to the error codes of
// docs/protocol.md; good lines of every message type parse to typed values.
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <variant>
#include <vector>

#include "protocol/messages.h"

namespace pincer {
namespace {

struct BadLine {
  const char* line;
  const char* code;
  std::optional<int64_t> req;  // echoed back when the line had one
};

std::ostream& operator<<(std::ostream& os, const BadLine& b) { return os << b.line; }

class BadLineTest : public ::testing::TestWithParam<BadLine> {};

TEST_P(BadLineTest, MapsToItsErrorCode) {
  const BadLine& b = GetParam();
  ParseResult r = ParseMessage(b.line);
  const auto* err = std::get_if<ProtocolError>(&r);
  ASSERT_NE(err, nullptr) << "parsed without error: " << b.line;
  EXPECT_EQ(err->code, b.code) << err->message;
  EXPECT_FALSE(err->message.empty());
  EXPECT_EQ(err->req, b.req) << err->message;
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadLineTest,
    ::testing::Values(
        // Not JSON at all.
        BadLine{"", "bad_json", {}}, BadLine{"hello", "bad_json", {}},
        BadLine{"{\"type\":\"stats\",\"req\":1", "bad_json", {}},
        BadLine{"{'type':'stats'}", "bad_json", {}}, BadLine{"\xff\xfe", "bad_json", {}},
        // Numbers past a double's range: the parser refuses them (not thrown).
        BadLine{"{\"type\":\"stats\",\"req\":1e400}", "bad_json", {}},
        BadLine{"555555555555555555555555E5555555555555555#}", "bad_json", {}},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"payload\":[-1e999]}", "bad_json", {}},
        // JSON but not an object.
        BadLine{"[]", "bad_message", {}},
        BadLine{"[{\"type\":\"stats\",\"req\":1}]", "bad_message", {}},
        BadLine{"42", "bad_message", {}}, BadLine{"\"submit\"", "bad_message", {}},
        BadLine{"null", "bad_message", {}}, BadLine{"true", "bad_message", {}},
        // No string type.
        BadLine{"{}", "bad_message", {}}, BadLine{"{\"req\":3}", "bad_message", 3},
        BadLine{"{\"type\":7,\"req\":1}", "bad_message", 1},
        BadLine{"{\"type\":null}", "bad_message", {}},
        BadLine{"{\"type\":[\"submit\"]}", "bad_message", {}},
        // Unknown types.
        BadLine{"{\"type\":\"frobnicate\",\"req\":9}", "unknown_type", 9},
        BadLine{"{\"type\":\"SUBMIT\",\"req\":1}", "unknown_type", 1},
        BadLine{"{\"type\":\"\"}", "unknown_type", {}},
        // Requests without an integer req.
        BadLine{"{\"type\":\"stats\"}", "bad_message", {}},
        BadLine{"{\"type\":\"stats\",\"req\":\"1\"}", "bad_message", {}},
        BadLine{"{\"type\":\"stats\",\"req\":1.5}", "bad_message", {}},
        // Wrong field types in a submit.
        BadLine{"{\"type\":\"submit\",\"req\":1,\"skills\":\"echo\"}", "bad_message", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"skills\":[1,2]}", "bad_message", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"priority\":\"high\"}", "bad_message", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"priority\":1.5}", "bad_message", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"session\":5}", "bad_message", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"key\":{}}", "bad_message", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"wait\":\"yes\"}", "bad_message", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"max_attempts\":\"3\"}", "bad_message", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"timeout\":true}", "bad_message", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"timeout\":-5}", "bad_message", 1},
        // Bad values.
        BadLine{"{\"type\":\"submit\",\"req\":1,\"timeout\":\"soon\"}", "invalid_request", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"timeout\":\"5 s\"}", "invalid_request", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"timeout\":\"\"}", "invalid_request", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"timeout\":\"-1s\"}", "invalid_request", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"max_attempts\":0}", "invalid_request", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"max_attempts\":-2}", "invalid_request", 1},
        // Other requests.
        BadLine{"{\"type\":\"status\",\"req\":2}", "bad_message", 2},
        BadLine{"{\"type\":\"status\",\"req\":2,\"id\":17}", "bad_message", 2},
        BadLine{"{\"type\":\"cancel\",\"req\":2,\"id\":null}", "bad_message", 2},
        BadLine{"{\"type\":\"wait\",\"req\":2,\"id\":[\"t1\"]}", "bad_message", 2},
        BadLine{"{\"type\":\"tasks\",\"req\":2,\"state\":1}", "bad_message", 2},
        BadLine{"{\"type\":\"tasks\",\"req\":2,\"limit\":\"10\"}", "bad_message", 2},
        BadLine{"{\"type\":\"drain\",\"req\":2}", "bad_message", 2},
        BadLine{"{\"type\":\"drain\",\"req\":2,\"worker\":3}", "bad_message", 2},
        // Worker messages.
        BadLine{"{\"type\":\"result\",\"ok\":true}", "bad_message", {}},
        BadLine{"{\"type\":\"result\",\"id\":\"t1\"}", "bad_message", {}},
        BadLine{"{\"type\":\"result\",\"id\":5,\"ok\":true}", "bad_message", {}},
        BadLine{"{\"type\":\"result\",\"id\":\"t1\",\"ok\":\"true\"}", "bad_message", {}},
        BadLine{
            "{\"type\":\"result\",\"id\":\"t1\",\"ok\":false,\"retryable\":1}", "bad_message", {}},
        BadLine{"{\"type\":\"result\",\"id\":\"t1\",\"ok\":false,\"retry_after_ms\":-1}",
                "bad_message",
                {}},
        BadLine{"{\"type\":\"result\",\"id\":\"t1\",\"ok\":false,\"retry_after_ms\":\"5\"}",
                "bad_message",
                {}},
        BadLine{"{\"type\":\"result\",\"id\":\"t1\",\"ok\":false,\"retry_after_ms\":1.5}",
                "bad_message",
                {}},
        BadLine{
            R"({"type":"result","id":"t1","ok":true,"usage":{"input":"1"}})", "bad_message", {}},
        BadLine{
            R"({"type":"result","id":"t1","ok":true,"usage":{"output":-1}})", "bad_message", {}},
        BadLine{R"({"type":"result","id":"t1","ok":true,"usage":{"cost":-1}})", "bad_message", {}},
        BadLine{R"({"type":"result","id":"t1","ok":true,"usage":7})", "bad_message", {}},
        BadLine{R"({"type":"submit","req":1,"backoff":{"initial":true}})", "bad_message", 1},
        BadLine{R"({"type":"submit","req":1,"backoff":{"jitter":1.5}})", "invalid_request", 1},
        BadLine{R"({"type":"submit","req":1,"backoff":{"initial":"9s","max":"1s"}})",
                "invalid_request", 1},
        BadLine{"{\"type\":\"progress\",\"data\":1}", "bad_message", {}},
        BadLine{"{\"type\":\"heartbeat\",\"load\":[1]}", "bad_message", {}},
        BadLine{"{\"type\":\"heartbeat\",\"load\":0.5}", "bad_message", {}},
        BadLine{"{\"type\":\"result\",\"id\":\"t1\",\"ok\":false,\"error\":{\"e\":1}}",
                "bad_message",
                {}},
        BadLine{"{\"type\":\"result\",\"id\":\"t1\",\"ok\":false,\"error\":5}", "bad_message", {}},
        BadLine{"{\"type\":\"drain\",\"req\":\"x\"}", "bad_message", {}},
        // Hello.
        BadLine{"{\"type\":\"hello\",\"proto\":1}", "bad_hello", {}},
        BadLine{"{\"type\":\"hello\",\"role\":\"worker\"}", "bad_hello", {}},
        BadLine{"{\"type\":\"hello\",\"role\":\"worker\",\"proto\":\"1\"}", "bad_hello", {}},
        BadLine{
            "{\"type\":\"hello\",\"role\":\"worker\",\"proto\":1,\"token\":5}", "bad_hello", {}},
        BadLine{"{\"type\":\"hello\",\"role\":\"worker\",\"proto\":1,\"skills\":\"echo\"}",
                "bad_hello",
                {}},
        BadLine{"{\"type\":\"hello\",\"role\":\"worker\",\"proto\":1,\"capacity\":\"2\"}",
                "bad_hello",
                {}},
        BadLine{
            "{\"type\":\"hello\",\"role\":\"worker\",\"proto\":1,\"labels\":[]}", "bad_hello", {}},
        BadLine{"{\"type\":\"hello\",\"role\":\"worker\",\"proto\":1,\"labels\":{\"a\":1}}",
                "bad_hello",
                {}},
        BadLine{"{\"type\":\"hello\",\"role\":\"worker\",\"proto\":1,\"heartbeat_ack\":\"yes\"}",
                "bad_hello",
                {}},
        BadLine{"{\"type\":\"hello\",\"role\":\"worker\",\"proto\":1,\"capacity\":"
                "18446744073709551615}",
                "bad_hello",
                {}},
        // Numbers past their ranges: refused and named, never wrapped.
        BadLine{"{\"type\":\"submit\",\"req\":1,\"timeout\":31536000001}", "invalid_request", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"timeout\":10000000000000}", "invalid_request", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"timeout\":18446744073709551615}",
                "invalid_request", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"timeout\":\"8761h\"}", "invalid_request", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"timeout\":\"999999999999d\"}", "invalid_request",
                1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"timeout\":\"9999999999999999999999h\"}",
                "invalid_request", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"max_attempts\":1001}", "invalid_request", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"max_attempts\":4294967296}", "invalid_request",
                1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"max_attempts\":18446744073709551615}",
                "invalid_request", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"priority\":9223372036854775808}",
                "invalid_request", 1},
        BadLine{"{\"type\":\"submit\",\"req\":1,\"priority\":18446744073709551615}",
                "invalid_request", 1},
        BadLine{"{\"type\":\"tasks\",\"req\":2,\"limit\":0}", "invalid_request", 2},
        BadLine{"{\"type\":\"tasks\",\"req\":2,\"limit\":-1}", "invalid_request", 2},
        BadLine{"{\"type\":\"tasks\",\"req\":2,\"limit\":10000001}", "invalid_request", 2},
        BadLine{"{\"type\":\"tasks\",\"req\":2,\"limit\":9223372036854775808}", "invalid_request",
                2},
        BadLine{"{\"type\":\"stats\",\"req\":9223372036854775808}", "bad_message", {}},
        // Nesting past limits.max_json_depth (64 by default).
        BadLine{
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "bad_json", {}}));

template <typename T>
T Parse(const std::string& line) {
  ParseResult r = ParseMessage(line);
  if (const auto* err = std::get_if<ProtocolError>(&r)) {
    ADD_FAILURE() << line << " -> " << err->code << ": " << err->message;
    return T{};
  }
  const Message& m = std::get<Message>(r);
  const T* v = std::get_if<T>(&m);
  if (!v) {
    ADD_FAILURE() << line << " parsed to another message type (index " << m.index() << ")";
    return T{};
  }
  return *v;
}

TEST(ProtocolTest, WorkerHello) {
  auto h = Parse<Hello>(
      R"({"type":"hello","role":"worker","proto":1,"token":"wtok","name":"echo-1","skills":["echo","text"],"capacity":2,"labels":{"host":"box1"},"spawn_id":"s-3"})");
  EXPECT_EQ(h.role, "worker");
  EXPECT_EQ(h.proto, 1);
  EXPECT_EQ(h.token, "wtok");
  EXPECT_EQ(h.name, "echo-1");
  EXPECT_EQ(h.skills, (std::vector<std::string>{"echo", "text"}));
  EXPECT_EQ(h.capacity, 2);
  EXPECT_EQ(h.labels, R"({"host":"box1"})");
  EXPECT_EQ(h.spawn_id, "s-3");
}

TEST(ProtocolTest, ClientHelloWithDefaults) {
  auto h = Parse<Hello>(R"({"type":"hello","role":"client","proto":1})");
  EXPECT_EQ(h.role, "client");
  EXPECT_EQ(h.token, "");
  EXPECT_EQ(h.capacity, 1);
  EXPECT_TRUE(h.skills.empty());
  EXPECT_EQ(h.labels, "");
}

TEST(ProtocolTest, Results) {
  auto ok = Parse<ResultMsg>(R"({"type":"result","id":"t18","ok":true,"output":{"text":"hello"}})");
  EXPECT_EQ(ok.id, "t18");
  EXPECT_TRUE(ok.ok);
  EXPECT_EQ(ok.output, R"({"text":"hello"})");

  auto bad = Parse<ResultMsg>(
      R"({"type":"result","id":"t18","ok":false,"error":"model returned 503","retryable":false})");
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.error, "model returned 503");
  EXPECT_FALSE(bad.retryable);

  auto dflt = Parse<ResultMsg>(R"({"type":"result","id":"t1","ok":false,"error":"x"})");
  EXPECT_TRUE(dflt.retryable) << "retryable defaults to true";
  EXPECT_EQ(dflt.retry_after_ms, 0);
  auto later = Parse<ResultMsg>(
      R"({"type":"result","id":"t1","ok":false,"error":"429","retry_after_ms":2000})");
  EXPECT_EQ(later.retry_after_ms, 2000);
  auto null_later =
      Parse<ResultMsg>(R"({"type":"result","id":"t1","ok":false,"retry_after_ms":null})");
  EXPECT_EQ(null_later.retry_after_ms, 0);

  auto null_out = Parse<ResultMsg>(R"({"type":"result","id":"t1","ok":true,"output":null})");
  EXPECT_EQ(null_out.output, "");
}

TEST(ProtocolTest, WorkerDrainAndBadJsonOffset) {
  Parse<WorkerDrainMsg>(R"({"type":"drain"})");
  auto d = Parse<DrainReq>(R"({"type":"drain","req":3,"worker":"w1"})");
  EXPECT_EQ(d.worker, "w1");
  EXPECT_TRUE(Parse<Hello>(R"({"type":"hello","role":"worker","proto":1,"heartbeat_ack":true})")
                  .heartbeat_ack);
  const std::pair<const char*, const char*> cases[] = {
      {R"({"type":})", "the line is not valid JSON: syntax error at byte 8"},
      {R"({"type":"stats","req":1)", "the line is not valid JSON: syntax error at byte 23"},
      {"[1,,2]", "the line is not valid JSON: syntax error at byte 3"},
  };
  for (const auto& [line, message] : cases) {
    ParseResult r = ParseMessage(line);
    const auto* err = std::get_if<ProtocolError>(&r);
    ASSERT_NE(err, nullptr) << line;
    EXPECT_EQ(err->code, "bad_json");
    EXPECT_EQ(err->message, message);
  }
}

TEST(ProtocolTest, AttemptsAndStopped) {
  EXPECT_EQ(Parse<ResultMsg>(R"({"type":"result","id":"t1","ok":true})").attempt, 0) << "not given";
  EXPECT_EQ(Parse<ResultMsg>(R"({"type":"result","id":"t1","ok":true,"attempt":3})").attempt, 3);
  EXPECT_EQ(Parse<ProgressMsg>(R"({"type":"progress","id":"t1","attempt":2,"data":1})").attempt, 2);
  auto s = Parse<StoppedMsg>(R"({"type":"stopped","id":"t4","attempt":2})");
  EXPECT_EQ(s.id, "t4");
  EXPECT_EQ(s.attempt, 2);
  EXPECT_EQ(Parse<StoppedMsg>(R"({"type":"stopped","id":"t4"})").attempt, 0);
  EXPECT_TRUE(Parse<Hello>(R"({"type":"hello","role":"worker","proto":1,"confirms_stop":true})")
                  .confirms_stop);
  EXPECT_FALSE(Parse<Hello>(R"({"type":"hello","role":"worker","proto":1})").confirms_stop);
  for (const char* line : {
           R"({"type":"result","id":"t1","ok":true,"attempt":0})",
           R"({"type":"result","id":"t1","ok":true,"attempt":"1"})",
           R"({"type":"result","id":"t1","ok":true,"attempt":2147483648})",
           R"({"type":"progress","id":"t1","attempt":-1})",
           R"({"type":"stopped","id":"t1","attempt":1.5})",
           R"({"type":"stopped","attempt":1})",
           R"({"type":"stopped","id":5})",
       }) {
    ParseResult r = ParseMessage(line);
    ASSERT_TRUE(std::holds_alternative<ProtocolError>(r)) << line;
    EXPECT_EQ(std::get<ProtocolError>(r).code, "bad_message") << line;
  }
  ParseResult r = ParseMessage(R"({"type":"hello","role":"worker","proto":1,"confirms_stop":1})");
  ASSERT_TRUE(std::holds_alternative<ProtocolError>(r));
  EXPECT_EQ(std::get<ProtocolError>(r).code, "bad_hello");
}

TEST(ProtocolTest, ProgressAndHeartbeat) {
  auto p = Parse<ProgressMsg>(R"({"type":"progress","id":"t18","data":{"step":3,"of":10}})");
  EXPECT_EQ(p.id, "t18");
  EXPECT_EQ(p.data, R"({"step":3,"of":10})");  // as sent
  EXPECT_EQ(Parse<ProgressMsg>(R"({"type":"progress","id":"t1"})").data, "null");

  auto h = Parse<HeartbeatMsg>(R"({"type":"heartbeat","load":{"cpu":0.35,"rss_bytes":104857600}})");
  ASSERT_TRUE(h.cpu);
  EXPECT_DOUBLE_EQ(*h.cpu, 0.35);
  ASSERT_TRUE(h.rss_bytes);
  EXPECT_EQ(*h.rss_bytes, 104857600);
  auto empty = Parse<HeartbeatMsg>(R"({"type":"heartbeat"})");
  EXPECT_FALSE(empty.cpu);
  // rss_bytes out of int64 (or negative) is refused naming the field, never
  // cast; so is a cpu that is not a number from 0 up.
  for (const char* load : {R"({"rss_bytes":1e300})", R"({"rss_bytes":-1.5})", R"({"rss_bytes":-1})",
                           R"({"rss_bytes":18446744073709551615})", R"({"rss_bytes":"1"})",
                           R"({"cpu":"hot"})", R"({"cpu":-0.5})", R"({"cpu":[1]})"}) {
    ParseResult r = ParseMessage(std::string(R"({"type":"heartbeat","load":)") + load + "}");
    const auto* err = std::get_if<ProtocolError>(&r);
    ASSERT_NE(err, nullptr) << load;
    EXPECT_EQ(err->code, "bad_message") << load;
    EXPECT_NE(err->message.find("'load."), std::string::npos) << err->message;
  }
  auto nulls =
      Parse<HeartbeatMsg>(R"({"type":"heartbeat","load":{"cpu":null,"rss_bytes":null,"x":"y"}})");
  EXPECT_FALSE(nulls.cpu);
  EXPECT_FALSE(nulls.rss_bytes);
  EXPECT_EQ(Parse<HeartbeatMsg>(R"({"type":"heartbeat","load":{"rss_bytes":2048.0}})").rss_bytes,
            2048);
}

TEST(ProtocolTest, SubmitWithEveryField) {
  auto s = Parse<SubmitReq>(
      R"({"type":"submit","req":1,"skills":["echo"],"payload":"hello","priority":-2,"timeout":"30s","max_attempts":3,"session":"chat-42","key":"order-7","wait":true})");
  EXPECT_EQ(s.req, 1);
  EXPECT_EQ(s.skills, (std::vector<std::string>{"echo"}));
  EXPECT_EQ(s.payload, R"("hello")");
  EXPECT_EQ(s.priority, -2);
  ASSERT_TRUE(s.timeout);
  EXPECT_EQ(*s.timeout, std::chrono::seconds(30));
  ASSERT_TRUE(s.max_attempts);
  EXPECT_EQ(*s.max_attempts, 3);
  EXPECT_EQ(s.session, "chat-42");
  EXPECT_EQ(s.key, "order-7");
  EXPECT_TRUE(s.wait);
}

TEST(ProtocolTest, SubmitDefaultsAndTimeoutForms) {
  auto s = Parse<SubmitReq>(R"({"type":"submit","req":7})");
  EXPECT_TRUE(s.skills.empty());
  EXPECT_EQ(s.payload, "");
  EXPECT_EQ(s.priority, 0);
  EXPECT_FALSE(s.timeout);
  EXPECT_FALSE(s.max_attempts);
  EXPECT_FALSE(s.wait);
  EXPECT_EQ(Parse<SubmitReq>(R"({"type":"submit","req":1,"timeout":250})").timeout,
            std::chrono::milliseconds(250));
  EXPECT_EQ(Parse<SubmitReq>(R"({"type":"submit","req":1,"timeout":0})").timeout,
            std::chrono::milliseconds(0));
  EXPECT_EQ(Parse<SubmitReq>(R"({"type":"submit","req":1,"timeout":"250ms"})").timeout,
            std::chrono::milliseconds(250));
  EXPECT_EQ(Parse<SubmitReq>(R"({"type":"submit","req":1,"timeout":"10m"})").timeout,
            std::chrono::minutes(10));
  EXPECT_EQ(Parse<SubmitReq>(R"({"type":"submit","req":1,"timeout":"1h30m"})").timeout,
            std::chrono::minutes(90));
  EXPECT_EQ(Parse<SubmitReq>(R"({"type":"submit","req":1,"payload":{"a":[1,2]}})").payload,
            R"({"a":[1,2]})");
  // Carried values keep their bytes, on both parse paths.
  for (auto parse : {&ParseMessage, &ParseMessageWithoutFastPathForTest}) {
    ParseResult r = parse(R"({"type":"submit","req":1,"payload": {"b":1,"a":1e3, "c":[ -0.0 ]} })",
                          kDefaultMaxJsonDepth);
    EXPECT_EQ(std::get<SubmitReq>(std::get<Message>(r)).payload,
              R"({"b":1,"a":1e3, "c":[ -0.0 ]})");
    r = parse(R"({"type":"result","id":"t1","ok":true,"output":{"y":1.50,"x":"é"}})",
              kDefaultMaxJsonDepth);
    EXPECT_EQ(std::get<ResultMsg>(std::get<Message>(r)).output, R"({"y":1.50,"x":"é"})");
  }
}

TEST(ProtocolTest, IdRequests) {
  struct Case {
    const char* type;
    IdOp op;
  };
  for (const Case& c :
       {Case{"status", IdOp::kStatus}, Case{"wait", IdOp::kWait}, Case{"watch", IdOp::kWatch},
        Case{"cancel", IdOp::kCancel}, Case{"retry", IdOp::kRetry}}) {
    auto r = Parse<IdReq>(std::string(R"({"type":")") + c.type + R"(","req":3,"id":"t18"})");
    EXPECT_EQ(r.op, c.op) << c.type;
    EXPECT_EQ(r.req, 3) << c.type;
    EXPECT_EQ(r.id, "t18") << c.type;
  }
}

TEST(ProtocolTest, TasksDrainAndSimpleRequests) {
  auto t = Parse<TasksReq>(R"({"type":"tasks","req":5,"state":"failed","limit":100})");
  EXPECT_EQ(t.req, 5);
  EXPECT_EQ(t.state, "failed");
  EXPECT_EQ(t.limit, 100);
  auto all = Parse<TasksReq>(R"({"type":"tasks","req":5})");
  EXPECT_EQ(all.state, "");
  EXPECT_EQ(all.limit, 1000);
  EXPECT_EQ(all.order, "");
  EXPECT_EQ(all.after, "");
  auto page = Parse<TasksReq>(R"({"type":"tasks","req":5,"skill":"gpu","worker":"w2",
      "session":"s1","order":"newest","after":"t40"})");
  EXPECT_EQ(page.skill, "gpu");
  EXPECT_EQ(page.worker, "w2");
  EXPECT_EQ(page.session, "s1");
  EXPECT_EQ(page.order, "newest");
  EXPECT_EQ(page.after, "t40");

  auto d = Parse<DrainReq>(R"({"type":"drain","req":8,"worker":"w1"})");
  EXPECT_EQ(d.req, 8);
  EXPECT_EQ(d.worker, "w1");

  struct Case {
    const char* type;
    SimpleOp op;
  };
  for (const Case& c : {Case{"workers", SimpleOp::kWorkers}, Case{"stats", SimpleOp::kStats},
                        Case{"reload", SimpleOp::kReload}}) {
    auto r = Parse<SimpleReq>(std::string(R"({"type":")") + c.type + R"(","req":6})");
    EXPECT_EQ(r.op, c.op) << c.type;
    EXPECT_EQ(r.req, 6) << c.type;
  }
}

TEST(ProtocolTest, UnknownFieldsAreIgnored) {
  auto s = Parse<SubmitReq>(R"({"type":"submit","req":1,"extra":{"x":1},"skills":["a"]})");
  EXPECT_EQ(s.skills, (std::vector<std::string>{"a"}));
}

// A value nested `levels` deep: [[...[]...]].
std::string Nest(int levels) { return std::string(levels, '[') + std::string(levels, ']'); }

// Every place a line can carry a value nested without bound, before a hello
// and after: refused as bad_json naming the bound, at 100,000 levels (the
// depth that overflowed the stack of a recursive walk) and one past it.
TEST(ProtocolTest, NestingPastTheBoundIsRefusedEverywhere) {
  const std::vector<std::string> wrappers = {
      R"({"type":"submit","req":1,"skills":["x"],"payload":%})",
      R"({"type":"result","id":"t1","ok":true,"output":%})",
      R"({"type":"result","id":"t1","ok":false,"error":%})",
      R"({"type":"progress","id":"t1","data":%})",
      R"({"type":"hello","role":"worker","proto":1,"token":"wrong","labels":{"a":%}})",
      R"({"type":"heartbeat","load":{"cpu":%}})",
      R"({"type":"status","req":1,"id":"t1","extra":%})",
      R"({"type":"nonsense","x":%})",
      R"(%)",
  };
  for (const std::string& w : wrappers) {
    const std::size_t at = w.find('%');
    // Levels the wrapper itself adds around `%`.
    int outer = 0;
    for (std::size_t i = 0; i < at; ++i)
      outer += (w[i] == '{' || w[i] == '[') - (w[i] == '}' || w[i] == ']');
    for (int levels : {kDefaultMaxJsonDepth - outer + 1, 100000}) {
      const std::string line = w.substr(0, at) + Nest(levels) + w.substr(at + 1);
      for (const ParseResult& r : {ParseMessage(line), ParseMessageWithoutFastPathForTest(line)}) {
        const auto* err = std::get_if<ProtocolError>(&r);
        ASSERT_NE(err, nullptr) << w << " at " << levels;
        EXPECT_EQ(err->code, "bad_json") << w;
        EXPECT_NE(err->message.find("limits.max_json_depth = 64"), std::string::npos)
            << err->message;
      }
    }
    // Unterminated, 1,000,000 deep: no parser may walk it either.
    const std::string open = w.substr(0, at) + std::string(1000000, '[');
    const ParseResult r = ParseMessage(open);
    ASSERT_TRUE(std::holds_alternative<ProtocolError>(r));
    EXPECT_EQ(std::get<ProtocolError>(r).code, "bad_json");
  }
}

TEST(ProtocolTest, NestingUpToTheBoundIsAccepted) {
  // The message object is level 1: a payload may nest max_json_depth - 1.
  auto s = Parse<SubmitReq>(R"({"type":"submit","req":1,"payload":)" + Nest(63) + "}");
  EXPECT_EQ(s.payload, Nest(63));
  auto r = Parse<ResultMsg>(R"({"type":"result","id":"t1","ok":true,"output":)" + Nest(63) + "}");
  EXPECT_EQ(r.output, Nest(63));
  // (Hello labels are an object of strings: nesting there is refused as a type.)
  // Brackets inside strings are text, not nesting.
  const std::string text = "\"" + std::string(1000, '[') + "\\\"{\"";
  auto q = Parse<SubmitReq>(R"({"type":"submit","req":1,"payload":)" + text + "}");
  EXPECT_EQ(q.payload, text);
  // Another bound, from the config.
  ParseResult deep = ParseMessage(R"({"type":"submit","req":1,"payload":)" + Nest(200) + "}", 201);
  ASSERT_TRUE(std::holds_alternative<Message>(deep));
  ParseResult deeper =
      ParseMessage(R"({"type":"submit","req":1,"payload":)" + Nest(201) + "}", 201);
  ASSERT_TRUE(std::holds_alternative<ProtocolError>(deeper));
  EXPECT_NE(std::get<ProtocolError>(deeper).message.find("= 201"), std::string::npos);
}

TEST(ProtocolTest, NumbersAtTheEdgesOfTheirRanges) {
  EXPECT_EQ(Parse<SubmitReq>(R"({"type":"submit","req":1,"timeout":31536000000})").timeout,
            std::chrono::milliseconds(kMaxTimeoutMs));
  EXPECT_EQ(Parse<SubmitReq>(R"({"type":"submit","req":1,"timeout":"8760h"})").timeout,
            std::chrono::hours(8760));
  EXPECT_EQ(Parse<SubmitReq>(R"({"type":"submit","req":1,"max_attempts":1000})").max_attempts,
            1000);
  EXPECT_EQ(
      Parse<SubmitReq>(R"({"type":"submit","req":1,"priority":9223372036854775807})").priority,
      INT64_MAX);
  EXPECT_EQ(
      Parse<SubmitReq>(R"({"type":"submit","req":1,"priority":-9223372036854775808})").priority,
      INT64_MIN);
  EXPECT_EQ(Parse<TasksReq>(R"({"type":"tasks","req":1,"limit":10000000})").limit, 10000000);
  EXPECT_EQ(Parse<TasksReq>(R"({"type":"tasks","req":1,"limit":1})").limit, 1);
  // The messages name the range.
  ParseResult r = ParseMessage(R"({"type":"submit","req":1,"timeout":10000000000000})");
  EXPECT_NE(std::get<ProtocolError>(r).message.find("365 days"), std::string::npos);
  r = ParseMessage(R"({"type":"submit","req":1,"max_attempts":4294967296})");
  EXPECT_NE(std::get<ProtocolError>(r).message.find("from 1 to 1000"), std::string::npos);
  r = ParseMessage(R"({"type":"tasks","req":1,"limit":0})");
  EXPECT_NE(std::get<ProtocolError>(r).message.find("from 1 to 10000000"), std::string::npos);
}

TEST(ProtocolTest, SkillListsAreBounded) {
  const auto list = [](std::size_t n, std::size_t bytes) {
    nlohmann::json skills = nlohmann::json::array();
    for (std::size_t i = 0; i < n; ++i)
      skills.push_back(std::to_string(i) + std::string(bytes, 's'));
    return skills.dump();
  };
  EXPECT_EQ(
      Parse<SubmitReq>(R"({"type":"submit","req":1,"skills":)" + list(256, 3) + "}").skills.size(),
      256u);
  EXPECT_EQ(
      Parse<Hello>(R"({"type":"hello","role":"worker","proto":1,"skills":)" + list(256, 3) + "}")
          .skills.size(),
      256u);
  struct Case {
    std::string skills;
    std::string words;
  };
  for (const Case& c : {Case{list(257, 3), "at most 256 are allowed"},
                        Case{R"([")" + std::string(257, 'x') + R"("])", "257 bytes long"}}) {
    ParseResult s = ParseMessage(R"({"type":"submit","req":7,"skills":)" + c.skills + "}");
    ASSERT_TRUE(std::holds_alternative<ProtocolError>(s));
    EXPECT_EQ(std::get<ProtocolError>(s).code, "invalid_request");
    EXPECT_EQ(std::get<ProtocolError>(s).req, 7);
    EXPECT_NE(std::get<ProtocolError>(s).message.find(c.words), std::string::npos);
    ParseResult h =
        ParseMessage(R"({"type":"hello","role":"worker","proto":1,"skills":)" + c.skills + "}");
    ASSERT_TRUE(std::holds_alternative<ProtocolError>(h));
    EXPECT_EQ(std::get<ProtocolError>(h).code, "bad_hello");
  }
}

TEST(ProtocolTest, WireDurations) {
  EXPECT_EQ(ParseWireDuration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(ParseWireDuration("5s"), std::chrono::seconds(5));
  EXPECT_EQ(ParseWireDuration("24h"), std::chrono::hours(24));
  EXPECT_EQ(ParseWireDuration("1500"), std::chrono::milliseconds(1500));
  EXPECT_FALSE(ParseWireDuration(""));
  EXPECT_FALSE(ParseWireDuration("s"));
  EXPECT_FALSE(ParseWireDuration("5 s"));
  EXPECT_FALSE(ParseWireDuration("5x"));
  EXPECT_FALSE(ParseWireDuration("-5s"));
  EXPECT_FALSE(ParseWireDuration("1d"));  // not a unit: 24h
  // Past INT64_MAX ms it saturates, for the caller's range check to name.
  EXPECT_EQ(ParseWireDuration("99999999999999999999h"), std::chrono::milliseconds(INT64_MAX));
  EXPECT_EQ(ParseWireDuration("2562047788015h2562047788015h"),
            std::chrono::milliseconds(INT64_MAX));
}

}  // namespace
}  // namespace pincer
