// src/protocol/encode.h and json_writer.h: the daemon's own lines, byte for
// byte as clients and workers have always read them.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "protocol/encode.h"
#include "protocol/json_writer.h"

namespace pincer {
namespace {

struct Err {
  int attempt;
  std::string worker;
  std::string error;
};

TEST(AppendSubmitOkTest, NewExistingAndWarned) {
  std::string out;
  AppendSubmitOk(out, 7, 42, /*existing=*/false, "");
  AppendSubmitOk(out, 8, 42, /*existing=*/true, "");
  AppendSubmitOk(out, 9, 43, /*existing=*/false, "no worker has skill \"gpu\"");
  EXPECT_EQ(
      out,
      R"({"type":"ok","req":7,"id":"t42","existing":false})"
      "\n"
      R"({"type":"ok","req":8,"id":"t42","existing":true})"
      "\n"
      R"({"type":"ok","req":9,"id":"t43","existing":false,"warning":"no worker has skill \"gpu\""})"
      "\n");
}

TEST(AppendTaskTest, Bytes) {
  const std::vector<std::string> skills = {"a", "b"};
  std::string out = "x";  // appended, never replaced
  AppendTask(out, {.id = 5,
                   .skills = skills,
                   .payload = R"({"k": 1})",
                   .attempt = 2,
                   .session = "s1",
                   .deadline_ms = 1000});
  AppendTask(out, {.id = 6,
                   .skills = {},
                   .payload = "",
                   .attempt = 1,
                   .session = "",
                   .deadline_ms = std::nullopt});
  EXPECT_EQ(out,
            R"(x{"type":"task","id":"t5","skills":["a","b"],"payload":{"k": 1},"attempt":2,)"
            R"("session":"s1","deadline_ms":1000})"
            "\n"
            R"({"type":"task","id":"t6","skills":[],"payload":null,"attempt":1,"session":null,)"
            R"("deadline_ms":null})"
            "\n");
}

TEST(AppendEndTest, Bytes) {
  const std::vector<Err> errors = {{1, "w1", "boom"}, {2, "", "lost"}};
  EndLine e{.req = 3,
            .id = 9,
            .state = "failed",
            .output = "",
            .error = "lost",
            .attempts = 2,
            .worker = "w2"};
  std::string out;
  AppendEnd(out, e, errors);
  EXPECT_EQ(out,
            R"({"type":"end","req":3,"id":"t9","state":"failed","output":null,"error":"lost",)"
            R"("attempts":2,"worker":"w2","errors":[{"attempt":1,"worker":"w1","error":"boom"},)"
            R"({"attempt":2,"worker":"","error":"lost"}]})"
            "\n");
  e.state = "succeeded";
  e.output = "[1]";
  e.error = "";
  e.worker = "";
  out.clear();
  AppendEnd(out, e, std::vector<Err>{});
  EXPECT_EQ(out, R"({"type":"end","req":3,"id":"t9","state":"succeeded","output":[1],"error":null,)"
                 R"("attempts":2,"worker":null,"errors":[]})"
                 "\n");
  EXPECT_TRUE(nlohmann::json::accept(out));
}

TEST(AppendAttemptErrorsTest, ATaskViewWritesAMissingWorkerAsNull) {
  std::string out;
  AppendAttemptErrors(out, std::vector<Err>{{1, "", "e"}}, /*null_worker=*/true);
  EXPECT_EQ(out, R"([{"attempt":1,"worker":null,"error":"e"}])");
}

TEST(AppendOkTest, MergesTheBodyAndReplacesInvalidUtf8) {
  std::string out;
  AppendOkStart(out, 1);
  out.append("}\n");
  AppendOk(out, 2, {{"state", "queued"}, {"id", "t\xff"}});
  EXPECT_EQ(out,
            "{\"type\":\"ok\",\"req\":1}\n"
            "{\"id\":\"t\xef\xbf\xbd\",\"req\":2,\"state\":\"queued\",\"type\":\"ok\"}\n");
}

TEST(JsonObjectWriterTest, MembersInOrder) {
  std::string out;
  JsonObjectWriter w(out);
  w.Int("n", -3).IntOrNull("at", 0).IntOrNull("since", 12).Number("cost", 0.1);
  w.String("s", "a\"b").StringOrNull("none", "").RawOrNull("raw", R"({"x":1})").Null("z");
  {
    JsonObjectWriter inner(w.Key("inner"));
    inner.StringArray("list", {"p"}).Close();
  }
  w.Close();
  EXPECT_EQ(out, R"({"n":-3,"at":null,"since":12,"cost":0.1,"s":"a\"b","none":null,"raw":{"x":1},)"
                 R"("z":null,"inner":{"list":["p"]}})");
  EXPECT_TRUE(nlohmann::json::accept(out));
  out.clear();
  JsonObjectWriter empty(out);
  empty.Close();
  EXPECT_EQ(out, "{}");
}

}  // namespace
}  // namespace pincer
