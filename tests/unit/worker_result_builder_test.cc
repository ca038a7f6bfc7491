// src/worker/result_builder.h: how a finished task process becomes a result.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "worker/result_builder.h"

namespace pincer::worker {
namespace {

using nlohmann::json;

TaskOutcome Exited(int code, std::string out = "", std::string err = "") {
  TaskOutcome o;
  o.kind = TaskOutcome::Kind::kExited;
  o.code = code;
  o.stdout_total = out.size();
  o.stdout_data = std::move(out);
  o.stderr_tail = std::move(err);
  return o;
}

json Parse(const std::string& line) {
  EXPECT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "a result must be one line";
  return json::parse(line);
}

TEST(PayloadToStdinTest, StringPayloadIsRawText) {
  EXPECT_EQ(PayloadToStdin(json("hello\nworld")), "hello\nworld");
  EXPECT_EQ(PayloadToStdin(json("")), "");
}

TEST(PayloadToStdinTest, OtherPayloadsAreCompactJson) {
  EXPECT_EQ(PayloadToStdin(json::parse(R"({"a": [1, 2]})")), R"({"a":[1,2]})");
  EXPECT_EQ(PayloadToStdin(json(42)), "42");
  EXPECT_EQ(PayloadToStdin(json()), "null");
  EXPECT_EQ(PayloadToStdin(json(true)), "true");
}

TEST(StdoutToOutputTest, JsonIsParsedIgnoringTrailingWhitespace) {
  EXPECT_EQ(StdoutToOutput("{\"x\":1}\n"), json::parse(R"({"x":1})"));
  EXPECT_EQ(StdoutToOutput("  [1,2] \r\n\t"), json::parse("[1,2]"));
  EXPECT_EQ(StdoutToOutput("42"), json(42));
  EXPECT_EQ(StdoutToOutput("\"quoted\"\n"), json("quoted"));
  EXPECT_EQ(StdoutToOutput("null"), json());
}

TEST(StdoutToOutputTest, AnythingElseIsTheExactString) {
  EXPECT_EQ(StdoutToOutput("hello"), json("hello"));
  EXPECT_EQ(StdoutToOutput("hello\n"), json("hello\n"));
  EXPECT_EQ(StdoutToOutput(""), json(""));
  EXPECT_EQ(StdoutToOutput("\n"), json("\n"));
  EXPECT_EQ(StdoutToOutput("{\"x\":1} trailing"), json("{\"x\":1} trailing"));
  EXPECT_EQ(StdoutToOutput("1\n2\n"), json("1\n2\n"));  // two values are not one JSON
}

std::string Nest(int levels) { return std::string(levels, '[') + std::string(levels, ']'); }

TEST(ResultLineTest, OutputNestedPastTheDaemonsBoundIsAPermanentFailure) {
  // The daemon's max_json_depth 64: the result object is level 1, so the
  // output may nest 63 levels.
  json r = Parse(ResultLine("t1", Exited(0, Nest(63) + "\n"), 1 << 20, 64));
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["output"], json::parse(Nest(63)));
  for (int levels : {64, 100000}) {
    r = Parse(ResultLine("t1", Exited(0, Nest(levels)), 1 << 20, 64));
    EXPECT_EQ(r["ok"], false) << levels;
    EXPECT_EQ(r["retryable"], false);
    EXPECT_NE(r["error"].get<std::string>().find("output too deep"), std::string::npos) << r;
  }
  // Another daemon bound.
  EXPECT_EQ(Parse(ResultLine("t1", Exited(0, Nest(9)), 1 << 20, 10))["ok"], true);
  EXPECT_EQ(Parse(ResultLine("t1", Exited(0, Nest(10)), 1 << 20, 10))["ok"], false);
  // Deep brackets that are not JSON are text, as any other text.
  const std::string text(100000, '[');
  r = Parse(ResultLine("t1", Exited(0, text), 1 << 20, 64));
  EXPECT_EQ(r["output"], text);
}

TEST(DescribeFailureTest, ExitStatusWithTrimmedStderrTail) {
  EXPECT_EQ(DescribeFailure(Exited(1)), "exit status 1");
  EXPECT_EQ(DescribeFailure(Exited(3, "", "boom\n")), "exit status 3: boom");
  EXPECT_EQ(DescribeFailure(Exited(3, "", " \n")), "exit status 3");
}

TEST(DescribeFailureTest, SignalAndTruncatedTail) {
  TaskOutcome o = Exited(0, "", "...the end\n");
  o.kind = TaskOutcome::Kind::kSignaled;
  o.code = 9;
  EXPECT_EQ(DescribeFailure(o), "killed by signal 9: ...the end");
  o.stderr_truncated = true;
  o.stderr_tail = "end";
  EXPECT_EQ(DescribeFailure(o), "killed by signal 9: ...end");
}

TEST(ResultLineTest, SuccessCarriesParsedOutput) {
  const json r = Parse(ResultLine("t1", Exited(0, "{\"n\":2}\n"), 1 << 20));
  EXPECT_EQ(r, json::parse(R"({"type":"result","id":"t1","ok":true,"output":{"n":2}})"));
}

TEST(ResultLineTest, SuccessWithTextOutput) {
  const json r = Parse(ResultLine("t1", Exited(0, "two\nlines"), 1 << 20));
  EXPECT_EQ(r["output"], "two\nlines");
}

TEST(ResultLineTest, NonZeroExitIsRetryableFailure) {
  const json r = Parse(ResultLine("t2", Exited(2, "ignored", "bad input\n"), 1 << 20));
  EXPECT_EQ(r, json::parse(R"({"type":"result","id":"t2","ok":false,
                               "error":"exit status 2: bad input","retryable":true})"));
}

TEST(ResultLineTest, SignalIsRetryableFailure) {
  TaskOutcome o;
  o.kind = TaskOutcome::Kind::kSignaled;
  o.code = 15;
  const json r = Parse(ResultLine("t3", o, 1 << 20));
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["retryable"], true);
  EXPECT_EQ(r["error"], "killed by signal 15");
}

TEST(ResultLineTest, SpawnFailureIsNotRetryable) {
  TaskOutcome o;
  o.kind = TaskOutcome::Kind::kSpawnFailed;
  o.spawn_error = "cannot run \"nosuch\": No such file or directory";
  const json r = Parse(ResultLine("t4", o, 1 << 20));
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["retryable"], false);
  EXPECT_EQ(r["error"], o.spawn_error);
}

TEST(ResultLineTest, StdoutBeyondTheCapIsAPermanentFailure) {
  TaskOutcome o = Exited(0, std::string(100, 'a'));
  o.stdout_overflowed = true;
  o.stdout_total = 5000;
  const json r = Parse(ResultLine("t5", o, 100));
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["retryable"], false);
  EXPECT_NE(r["error"].get<std::string>().find("5000 bytes"), std::string::npos);
}

TEST(ResultLineTest, ResultThatWouldExceedTheFrameIsAPermanentFailure) {
  // 90 bytes of quotes double when escaped: the encoded line exceeds 150.
  const std::string out(90, '"');
  const json r = Parse(ResultLine("t6", Exited(0, out), 150));
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["retryable"], false);
  EXPECT_NE(r["error"].get<std::string>().find("output too large"), std::string::npos);
  // The same output fits a larger frame.
  EXPECT_EQ(Parse(ResultLine("t6", Exited(0, out), 1000))["output"], out);
}

TEST(ResultLineTest, InvalidUtf8IsReplacedNotThrown) {
  const json r = Parse(ResultLine("t7", Exited(0, "\xff ok"), 1 << 20));
  EXPECT_EQ(r["output"], "\xEF\xBF\xBD ok");
  const json f = Parse(ResultLine("t8", Exited(1, "", "bad \xc3"), 1 << 20));
  EXPECT_EQ(f["error"], "exit status 1: bad \xEF\xBF\xBD");
}

// ----------------------------------------- --permanent-exit-codes, --envelope, --output

std::string Line(const TaskOutcome& o, const ResultPolicy& policy) {
  return ResultLine("t1", o, 1 << 20, kDefaultMaxJsonDepth, policy);
}

TEST(ParseExitCodesTest, ListsRangesAndNone) {
  EXPECT_EQ(ParseExitCodes("3"), std::vector<int>{3});
  EXPECT_EQ(ParseExitCodes("3, 64,65"), (std::vector<int>{3, 64, 65}));
  EXPECT_EQ(ParseExitCodes(""), std::vector<int>{});
  EXPECT_EQ(ParseExitCodes(" "), std::vector<int>{});
  for (const char* bad : {"0", "256", "-1", "x", "3,", ",3", "3,,4", "1000", "3;4", "2.5"}) {
    EXPECT_EQ(ParseExitCodes(bad), std::nullopt) << bad;
  }
}

TEST(ResultLineTest, APermanentExitCodeIsNotRetryable) {
  const ResultPolicy policy;  // default: 3
  const json r = Parse(Line(Exited(3, "", "Traceback: bad input\n"), policy));
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["retryable"], false);
  EXPECT_EQ(r["error"], "exit status 3: Traceback: bad input");
  EXPECT_EQ(Parse(Line(Exited(1), policy))["retryable"], true);
  ResultPolicy none;
  none.permanent_exit_codes = {};
  EXPECT_EQ(Parse(Line(Exited(3), none))["retryable"], true);
  ResultPolicy custom;
  custom.permanent_exit_codes = {64, 65};
  EXPECT_EQ(Parse(Line(Exited(65), custom))["retryable"], false);
  EXPECT_EQ(Parse(Line(Exited(3), custom))["retryable"], true);
  TaskOutcome signaled;  // killed by signal 3 is not exit status 3
  signaled.kind = TaskOutcome::Kind::kSignaled;
  signaled.code = 3;
  EXPECT_EQ(Parse(Line(signaled, policy))["retryable"], true);
}

ResultPolicy Envelope() {
  ResultPolicy p;
  p.envelope = true;
  return p;
}

TEST(ResultLineTest, WithoutEnvelopeAnOkFalseObjectIsJustOutput) {
  const json r = Parse(Line(Exited(0, R"({"ok":false,"error":"x"})"), ResultPolicy{}));
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["output"], json::parse(R"({"ok":false,"error":"x"})"));
}

TEST(ResultLineTest, EnvelopeOkFalseFailsWhateverTheExitStatus) {
  json r = Parse(Line(Exited(0, R"({"ok":false,"error":"quota exceeded"})"), Envelope()));
  EXPECT_EQ(r, json::parse(R"({"type":"result","id":"t1","ok":false,
                               "error":"quota exceeded","retryable":true})"));
  r = Parse(Line(Exited(0, R"({"ok":false,"error":"bad prompt","retryable":false})"), Envelope()));
  EXPECT_EQ(r["retryable"], false);
  r = Parse(Line(Exited(3, R"({"ok":false})"), Envelope()));
  EXPECT_EQ(r["retryable"], false) << "no retryable in the envelope: the exit code decides";
  EXPECT_EQ(r["error"], "failed (the envelope says ok: false) (exit status 3)");
}

TEST(ResultLineTest, EnvelopeOkTrueSucceedsWithTheObjectAsOutput) {
  const json r = Parse(Line(Exited(1, "{\"ok\":true,\"answer\":4}\n", "noise"), Envelope()));
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["output"], json::parse(R"({"ok":true,"answer":4})"));
}

TEST(ResultLineTest, EnvelopeStatusDecidesAsOpenClawWritesIt) {
  // agent exec --json: exit 0 ok, 1 error, 2 timeout.
  json r = Parse(Line(Exited(0, R"({"ok":true,"status":"ok","final":"hi"})"), Envelope()));
  EXPECT_EQ(r["ok"], true);
  EXPECT_EQ(r["output"]["final"], "hi");
  r = Parse(Line(
      Exited(
          2,
          R"({"ok":false,"status":"timeout","error":{"kind":"timeout","message":"Request timed out"}})"),
      Envelope()));
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["retryable"], true);
  EXPECT_EQ(r["error"], "timeout: Request timed out (exit status 2)");
  r = Parse(Line(
      Exited(
          1,
          R"({"ok":false,"status":"error","error":{"type":"cli_error","message":"LLM request failed"}})"),
      Envelope()));
  EXPECT_EQ(r["retryable"], true);
  EXPECT_EQ(r["error"], "LLM request failed (exit status 1)");
  ResultPolicy one = Envelope();
  one.permanent_exit_codes = {1};
  r = Parse(Line(Exited(1, R"({"ok":false,"status":"error","error":"bad"})"), one));
  EXPECT_EQ(r["retryable"], false) << "error: per its exit code";
  r = Parse(Line(Exited(1, R"({"ok":false,"status":"timeout"})"), one));
  EXPECT_EQ(r["retryable"], true) << "timeout: always retryable";
  r = Parse(Line(Exited(0, R"({"ok":true,"status":"error"})"), Envelope()));
  EXPECT_EQ(r["ok"], false) << "the status wins over ok";
}

TEST(ResultLineTest, EnvelopeIgnoresWhatIsNotOne) {
  for (const char* out : {R"({"ok":"yes"})", R"({"status":"error"})", R"([{"ok":false}])",
                          "not json", R"({"ok":false} trailing)"}) {
    const json r = Parse(Line(Exited(0, out), Envelope()));
    EXPECT_EQ(r["ok"], true) << out;
  }
  EXPECT_EQ(Parse(Line(Exited(1, "plain"), Envelope()))["retryable"], true);
}

TEST(ResultLineTest, OutputTextKeepsTheExactBytes) {
  ResultPolicy text;
  text.output = ResultPolicy::Output::kText;
  EXPECT_EQ(Parse(Line(Exited(0, "4\n"), text))["output"], "4\n");
  EXPECT_EQ(Parse(Line(Exited(0, "null"), text))["output"], "null");
  EXPECT_EQ(Parse(Line(Exited(0, "{\"a\":1}"), text))["output"], "{\"a\":1}");
  EXPECT_EQ(Parse(Line(Exited(0, ""), text))["output"], "");
  EXPECT_EQ(Parse(Line(Exited(0, Nest(500)), text))["output"], Nest(500)) << "deep text is text";
  ResultPolicy both = Envelope();
  both.output = ResultPolicy::Output::kText;
  EXPECT_EQ(Parse(Line(Exited(0, "{\"ok\":true}\n"), both))["output"], "{\"ok\":true}\n");
}

TEST(ResultLineTest, OutputJsonRequiresJson) {
  ResultPolicy js;
  js.output = ResultPolicy::Output::kJson;
  EXPECT_EQ(Parse(Line(Exited(0, "4\n"), js))["output"], 4);
  EXPECT_EQ(Parse(Line(Exited(0, "\"s\""), js))["output"], "s");
  json r = Parse(Line(Exited(0, "hello"), js));
  EXPECT_EQ(r["ok"], false);
  EXPECT_EQ(r["retryable"], false);
  EXPECT_EQ(r["error"], "output is not JSON (--output json): hello");
  r = Parse(Line(Exited(0, ""), js));
  EXPECT_EQ(r["error"], "output is not JSON (--output json): stdout is empty");
  EXPECT_NE(Parse(Line(Exited(0, Nest(500)), js))["error"].get<std::string>().find("too deep"),
            std::string::npos);
}

}  // namespace
}  // namespace pincer::worker
