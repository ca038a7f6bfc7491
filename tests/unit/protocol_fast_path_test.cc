// The simdjson fast path for `result` and `submit` must parse every line
// exactly as the nlohmann path does: same message, same error, same bytes
// for carried JSON values. Differential: each line goes through both.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "protocol/messages.h"

namespace pincer {
namespace {

std::string Describe(const ParseResult& r) {
  if (auto* e = std::get_if<ProtocolError>(&r)) {
    return "error " + e->code + " '" + e->message +
           "' req=" + (e->req ? std::to_string(*e->req) : "-");
  }
  const Message& m = std::get<Message>(r);
  if (auto* x = std::get_if<ResultMsg>(&m)) {
    return "result id=" + x->id + " ok=" + std::to_string(x->ok) + " output=" + x->output +
           " error=" + x->error + " retryable=" + std::to_string(x->retryable) + " usage=" +
           (x->has_usage ? std::to_string(x->usage.input) + "/" + std::to_string(x->usage.output) +
                               "/" + std::to_string(x->usage.total) + "/" +
                               std::to_string(x->usage.cost) + "/" + x->usage.model
                         : "-") +
           " attempt=" + std::to_string(x->attempt);
  }
  if (auto* s = std::get_if<SubmitReq>(&m)) {
    std::string skills;
    for (const auto& k : s->skills) skills += k + "|";
    return "submit req=" + std::to_string(s->req) + " skills=" + skills + " payload=" + s->payload +
           " priority=" + std::to_string(s->priority) +
           " timeout=" + (s->timeout ? std::to_string(s->timeout->count()) : "-") +
           " max_attempts=" + (s->max_attempts ? std::to_string(*s->max_attempts) : "-") +
           " session=" + s->session + " key=" + s->key + " wait=" + std::to_string(s->wait) +
           " backoff=" + (s->backoff_initial ? std::to_string(s->backoff_initial->count()) : "-") +
           "/" + (s->backoff_max ? std::to_string(s->backoff_max->count()) : "-") + "/" +
           (s->backoff_jitter ? std::to_string(*s->backoff_jitter) : "-");
  }
  return "other message #" + std::to_string(m.index());
}

// Lines that set every field the hot messages have.
const char* const kEarlier[] = {
    R"({"type":"result","id":"t12345678901234567890","ok":false,"error":"an error longer than a short string","retryable":false})",
    R"({"type":"result","id":"t1","ok":true,"attempt":7})",
    R"({"type":"result","id":"t1","ok":true,"output":{"a":"an output longer than a short string"}})",
    R"({"type":"result","id":"t1","ok":true,"usage":{"input":1,"output":2,"total":4,"cost":0.5,"model":"a model name longer than a short string"}})",
    R"({"type":"submit","req":99,"skills":["alpha","beta","gamma"],"payload":"a payload longer than a short string","priority":7,"timeout":"30s","max_attempts":9,"session":"a session longer than a short string","key":"a key longer than a short string","wait":true})",
};

void ExpectBothPathsAgree(const std::string& line, int max_depth) {
  const std::string want = Describe(ParseMessageWithoutFastPathForTest(line, max_depth));
  EXPECT_EQ(Describe(ParseMessage(line, max_depth)), want) << line;
  // In place, as a connection's buffer holds it: the next line (or any
  // bytes) follow it, and the parse must stop at the line's end.
  const std::string buffer =
      line + "\n" + R"({"type":"result","id":"t9","ok":true})" + std::string(kLinePadding, '}');
  const std::string_view padded = std::string_view(buffer).substr(0, line.size());
  EXPECT_EQ(Describe(ParseMessagePadded(padded, max_depth)), want) << line;
  // Into a message that still holds an earlier line (the daemon reuses
  // one): none of the earlier fields may show through.
  for (const char* earlier : kEarlier) {
    ParseResult reused = ParseMessage(earlier);
    ParseMessagePaddedInto(padded, reused, max_depth);
    EXPECT_EQ(Describe(reused), want) << earlier << " then " << line;
  }
}

TEST(ProtocolFastPathTest, AgreesWithTheSlowPathOnEveryLine) {
  const char* lines[] = {
      R"({"type":"result","id":"t1","ok":true,"output":"hi"})",
      R"({"type":"result","id":"t1","ok":true,"output":{"b":1,"a":[true,null,-3,18446744073709551615]}})",
      R"({"type":"result","id":"t1","ok":true,"output":{"x":1.5}})",
      R"({"type":"result","id":"t1","ok":true,"output":"a\"b\\c\n\t\b\f\u0001\u00e9\/"})",
      R"({"type":"result","id":"t1","ok":true,"output":null})",
      R"({"type":"result","id":"t1","ok":true})",
      R"({"type":"result","id":"t1","ok":false,"error":"boom","retryable":false})",
      R"({"type":"result","id":"t1","ok":false})",
      R"({"type":"result","id":"t1","ok":false,"error":{"e":1}})",
      R"({"type":"result","id":"t1","ok":null})",
      R"({"type":"result","id":"t1"})",
      R"({"type":"result","ok":true})",
      R"({"type":"result","id":7,"ok":true})",
      R"({"type":"result","id":"t1","id":"t2","ok":true})",
      R"({"type":"result","id":"t1","ok":true,"output":{"a":1,"a":2}})",
      R"({"type":"result","id":"t1","ok":true,"retryable":"no"})",
      R"({"type":"result","id":"t1","ok":true,"output":"x"} trailing)",
      R"({"type":"result","id":"t1","ok":true,"output":[1,2)",
      R"({"type":"submit","req":1,"skills":["echo"],"payload":"hello","priority":-2,"timeout":"30s","max_attempts":3,"session":"chat-42","key":"order-7","wait":true})",
      R"({"type":"submit","req":2,"payload":{"z":{"y":[{"b":2,"a":1}]}},"timeout":2500})",
      R"({"type":"submit","req":3,"skills":null,"payload":null,"priority":null,"timeout":null,"max_attempts":null,"wait":null})",
      R"({"type":"submit","req":4,"timeout":"soon"})",
      R"({"type":"submit","req":5,"timeout":-1})",
      R"({"type":"submit","req":6,"timeout":1.5})",
      R"({"type":"submit","req":7,"max_attempts":0})",
      R"({"type":"submit","req":8,"max_attempts":"3"})",
      R"({"type":"submit","req":9,"skills":["a",1]})",
      R"({"type":"submit","req":10,"skills":"a"})",
      R"({"type":"submit","req":11,"priority":1.0})",
      R"({"type":"submit","req":12,"priority":5,"priority":null})",
      R"({"type":"submit","req":13,"wait":"yes"})",
      R"({"type":"submit","req":14,"session":3})",
      R"({"type":"submit","skills":["a"]})",
      R"({"type":"submit","req":"1"})",
      R"({"type":"submit","req":1,"req":2})",
      R"({"type":"submit","req":9223372036854775808})",
      R"({"type":"submit","req":15,"payload":123456789012345678901234567890})",
      R"({"type":"submit","req":16,"payload":-0})",
      R"({"type":"submit","req":17,"payload":"\ud83d\ude00 ok"})",
      R"({"type":"submit","req":18,"payload":"\ud83d"})",
      R"({"type":"submit","req":19,"payload":[],"skills":[]})",
      R"({"type":"submit","req":20,"payload":{}})",
      R"({"type":"submit","req":21,"payload":"abcdefghijklmnopqrstuvwxyz0123456789 plain, long and clean"})",
      R"({"type":"submit","req":22,"payload":"abcdefgh"ijklmnop\qrstuvwx
yz0123456789éÿ~~~~~~~~"})",
      R"({"type":"submit","req":23,"payload":"éééééééééé"})",
      R"({"type":"heartbeat","load":{"cpu":0.5}})",
      R"({"type":"status","req":1,"id":"t1"})",
      R"({"type":"nope"})",
      R"([1,2])",
      R"(not json)",
      R"({"type":1})",
      "{\"type\":\"result\",\"id\":\"t\xff\",\"ok\":true}",
      // Numbers at the edges of their ranges, and past them.
      R"({"type":"submit","req":24,"timeout":31536000000})",
      R"({"type":"submit","req":25,"timeout":31536000001})",
      R"({"type":"submit","req":26,"timeout":10000000000000})",
      R"({"type":"submit","req":27,"timeout":18446744073709551615})",
      R"({"type":"submit","req":28,"timeout":"8760h"})",
      R"({"type":"submit","req":29,"timeout":"8760h1ms"})",
      R"({"type":"submit","req":30,"timeout":"999999999999d"})",
      R"({"type":"submit","req":31,"timeout":"99999999999999999999999h"})",
      R"({"type":"submit","req":32,"timeout":"2562047788015h2562047788015h"})",
      R"({"type":"submit","req":33,"max_attempts":1000})",
      R"({"type":"submit","req":34,"max_attempts":1001})",
      R"({"type":"submit","req":35,"max_attempts":4294967296})",
      R"({"type":"submit","req":36,"max_attempts":18446744073709551615})",
      R"({"type":"submit","req":37,"priority":9223372036854775807})",
      R"({"type":"submit","req":38,"priority":-9223372036854775808})",
      R"({"type":"submit","req":39,"priority":9223372036854775808})",
      // Usage and backoff.
      R"({"type":"result","id":"t1","ok":true,"usage":{"input":120,"output":40,"cost":0.0042,"model":"gpt-x"}})",
      R"({"type":"result","id":"t1","ok":false,"error":"x","usage":{"input":1,"output":2,"total":10}})",
      R"({"type":"result","id":"t1","ok":true,"usage":{}})",
      R"({"type":"result","id":"t1","ok":true,"usage":null})",
      R"({"type":"result","id":"t1","ok":true,"usage":{"input":null,"cost":3,"extra":[1]}})",
      R"({"type":"result","id":"t1","ok":true,"usage":{"input":9223372036854775807,"output":1}})",
      R"({"type":"result","id":"t1","ok":true,"usage":{"input":18446744073709551615}})",
      R"({"type":"result","id":"t1","ok":true,"usage":{"input":-1}})",
      R"({"type":"result","id":"t1","ok":true,"usage":{"input":1.0}})",
      R"({"type":"result","id":"t1","ok":true,"usage":{"input":"1"}})",
      R"({"type":"result","id":"t1","ok":true,"usage":{"cost":-0.1}})",
      R"({"type":"result","id":"t1","ok":true,"usage":{"cost":"1"}})",
      R"({"type":"result","id":"t1","ok":true,"usage":{"cost":18446744073709551615}})",
      R"({"type":"result","id":"t1","ok":true,"usage":{"model":1}})",
      R"({"type":"result","id":"t1","ok":true,"usage":{"input":1,"input":2}})",
      R"({"type":"result","id":"t1","ok":true,"usage":[1]})",
      R"({"type":"submit","req":41,"backoff":{"initial":"30s","max":"10m","jitter":0.5}})",
      R"({"type":"submit","req":42,"backoff":{"initial":1000}})",
      R"({"type":"submit","req":43,"backoff":null})",
      R"({"type":"submit","req":44,"backoff":{"initial":"2s","max":"1s"}})",
      R"({"type":"submit","req":45,"backoff":{"jitter":2}})",
      R"({"type":"submit","req":46,"backoff":{"initial":-1}})",
      R"({"type":"submit","req":47,"backoff":{"max":"87601h"}})",
      R"({"type":"submit","req":48,"backoff":"1s"})",
      // attempt: an integer from 1 to 2147483647, or absent.
      R"({"type":"result","id":"t1","ok":true,"attempt":3})",
      R"({"type":"result","id":"t1","ok":true,"attempt":null})",
      R"({"type":"result","id":"t1","ok":true,"attempt":2147483647})",
      R"({"type":"result","id":"t1","ok":true,"attempt":2147483648})",
      R"({"type":"result","id":"t1","ok":true,"attempt":0})",
      R"({"type":"result","id":"t1","ok":true,"attempt":-1})",
      R"({"type":"result","id":"t1","ok":true,"attempt":"2"})",
      R"({"type":"result","id":"t1","ok":true,"attempt":1.0})",
      R"({"type":"result","id":"t1","ok":true,"attempt":18446744073709551615})",
      R"({"type":"result","id":"t1","ok":true,"attempt":1,"attempt":2})",
  };
  for (const char* line : lines) ExpectBothPathsAgree(line, kDefaultMaxJsonDepth);
  // Skills at their bounds and past them.
  const auto skills = [](std::size_t n, std::size_t bytes) {
    std::string list;
    for (std::size_t i = 0; i < n; ++i)
      list += (i ? ",\"" : "\"") + std::string(bytes, 'a' + i % 26) + "\"";
    return R"({"type":"submit","req":40,"skills":[)" + list + "]}";
  };
  for (const std::string& line :
       {skills(256, 1), skills(257, 1), skills(1, 256), skills(1, 257), skills(300, 300)}) {
    ExpectBothPathsAgree(line, kDefaultMaxJsonDepth);
  }
}

// Nesting at the bound and past it, with the default bound and others:
// the fast path refuses exactly what the slow path refuses.
TEST(ProtocolFastPathTest, AgreesOnNestingAtAndPastTheBound) {
  for (int max_depth : {2, 3, 64, 100}) {
    for (int extra = -1; extra <= 1; ++extra) {
      const int inner = max_depth - 1 + extra;  // levels inside the message object
      const std::string nest = std::string(inner, '[') + std::string(inner, ']');
      ExpectBothPathsAgree(R"({"type":"submit","req":1,"skills":["a"],"payload":)" + nest + "}",
                           max_depth);
      ExpectBothPathsAgree(R"({"type":"result","id":"t1","ok":true,"output":)" + nest + "}",
                           max_depth);
      ExpectBothPathsAgree(R"({"type":"result","id":"t1","ok":false,"error":)" + nest + "}",
                           max_depth);
    }
  }
}

}  // namespace
}  // namespace pincer
