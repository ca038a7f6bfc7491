// pincer-worker --openai end to end, all real processes: pincerctl submit
// -> pincerd -> pincer-worker --openai -> the stub model server
// (tests/support/stub_model.py) -> back. Text, usage, progress, sessions,
// 429 with Retry-After, permanent 4xx, cancel, and an endpoint that is down.
// The stub's slow replies are held by a file the test creates (a gate, not
// a timer). The pure parts are unit-tested in worker_openai_chat_test.cc.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/raw_peer.h"
#include "support/stub_model.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/wait_for.h"
#include "support/worker_fixture.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

class OpenAiWorkerTest : public WorkerFixture {
 protected:
  void SetUp() override { StartDaemon(); }

  // pincer-worker --openai URL --name NAME --skill chat ARGS...
  size_t StartWorker(const std::string& url, const std::string& name,
                     const std::vector<std::string>& args = {}) {
    std::vector<std::string> argv = {kWorker,       "--addr",  daemon_->address(),
                                     "--log-level", "debug",   "--name",
                                     name,          "--skill", "chat",
                                     "--openai",    url};
    argv.insert(argv.end(), args.begin(), args.end());
    EnvChanges env;
    for (const char* var : {"PINCER_ADDR", "PINCER_TOKEN", "PINCER_SPAWN_ID"}) {
      env.emplace(var, std::nullopt);
    }
    return StartWorkerProcess(argv, env);
  }

  bool WorkerConnected(const std::string& name) {
    const std::optional<json> w = FindWorker(name);
    return w && !(*w)["id"].is_null();
  }

  // Tasks for the `chat` skill.
  json SubmitWait(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"--skill", "chat"};
    all.insert(all.end(), args.begin(), args.end());
    return WorkerFixture::SubmitWait(all);
  }

  std::string Submit(const std::vector<std::string>& args) {
    std::vector<std::string> all = {"--skill", "chat"};
    all.insert(all.end(), args.begin(), args.end());
    return WorkerFixture::Submit(all);
  }
};

TEST_F(OpenAiWorkerTest, TextAndUsageComeBack) {
  StubModel stub;
  ASSERT_TRUE(stub.Start());
  StartWorker(stub.url(), "oa", {"--model", "stub-model"});
  ASSERT_TRUE(WaitFor([&] { return WorkerConnected("oa"); }));

  json end = SubmitWait({"--payload", R"("hello model")"});
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["attempts"], 1);
  EXPECT_EQ(end["output"], json::parse(R"({"text":"ECHO: hello model","model":"stub-model",
      "finish_reason":"stop","usage":{"input":10,"output":5,"total":15}})"))
      << end;
  // The worker sends the usage in the result's own `usage` too: pincerd
  // counts it for the task.
  EXPECT_EQ(Status(end["id"])["usage"],
            json::parse(R"({"input":10,"output":5,"total":15,"cost":0.0,"model":"stub-model"})"))
      << Status(end["id"]);

  // An object payload: messages and other params pass through; its model
  // wins over --model.
  end = SubmitWait({"--payload",
                    R"({"model":"other","temperature":0.5,"messages":[
                        {"role":"system","content":"be brief"},
                        {"role":"user","content":"second"}]})"});
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["output"]["text"], "ECHO: second");
  EXPECT_EQ(end["output"]["model"], "other");

  const auto chats = stub.ChatRequests();
  ASSERT_EQ(chats.size(), 2u);
  const json& first = chats[0]["body"];
  EXPECT_EQ(first["messages"], json::parse(R"([{"role":"user","content":"hello model"}])"));
  EXPECT_EQ(first["model"], "stub-model");
  EXPECT_EQ(first["stream"], true);
  EXPECT_EQ(first["stream_options"]["include_usage"], true);
  EXPECT_FALSE(first.contains("user")) << "no session, no user";
  EXPECT_EQ(chats[1]["body"]["temperature"], 0.5);
  EXPECT_EQ(chats[1]["body"]["messages"].size(), 2u);
  // The worker asked the endpoint before taking tasks.
  EXPECT_EQ(stub.Requests().front()["method"], "GET");
  EXPECT_EQ(stub.Requests().front()["path"], "/v1/models");
}

TEST_F(OpenAiWorkerTest, AServerThatDoesNotStreamStillWorks) {
  StubModel stub({"--ignore-stream"});
  ASSERT_TRUE(stub.Start());
  StartWorker(stub.url(), "oa");
  ASSERT_TRUE(WaitFor([&] { return WorkerConnected("oa"); }));
  const json end = SubmitWait({"--payload", R"("whole body")"});
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["output"]["text"], "ECHO: whole body") << end;
  EXPECT_EQ(end["output"]["usage"]["total"], 15);
}

TEST_F(OpenAiWorkerTest, SessionGoesAsUserAndHeaderWithTheApiKey) {
  StubModel stub;
  ASSERT_TRUE(stub.Start());
  TempDir dir("oa-key");
  const std::string key_file = dir.WriteFile("key", "sk-secret-4711\n");
  const size_t w = StartWorker(
      stub.url(), "oa", {"--session-header", "x-openclaw-session-key", "--api-key-file", key_file});
  ASSERT_TRUE(WaitFor([&] { return WorkerConnected("oa"); }));

  json end = SubmitWait({"--session", "conv-1", "--payload", R"("my word is MANGO")"});
  EXPECT_EQ(end["state"], "succeeded") << end;
  end = SubmitWait({"--session", "conv-1", "--payload", R"("what was it?")"});
  // The stub remembers the previous prompt per `user`: turn 1 reached it
  // under the same session.
  EXPECT_EQ(end["output"]["text"], "ECHO: what was it? | PREVIOUS: my word is MANGO") << end;

  for (const json& r : stub.ChatRequests()) {
    EXPECT_EQ(r["body"]["user"], "conv-1");
    EXPECT_EQ(r["headers"].value("x-openclaw-session-key", ""), "conv-1") << r;
    EXPECT_EQ(r["headers"].value("Authorization", ""), "Bearer sk-secret-4711") << r;
  }
  for (const json& r : stub.Requests()) {
    if (r["method"] == "GET") {
      EXPECT_EQ(r["headers"].value("Authorization", ""), "Bearer sk-secret-4711") << r;
    }
  }
  EXPECT_EQ(WorkerLog(w).find("sk-secret-4711"), std::string::npos) << "the key is never logged";
}

TEST_F(OpenAiWorkerTest, ProgressArrivesBeforeTheEnd) {
  TempDir gate("oa-gate");
  const std::string release = gate.Join("release");
  StubModel stub({"--hold-file", release, "--chunks", "4"});
  ASSERT_TRUE(stub.Start());
  StartWorker(stub.url(), "oa", {"--progress-interval", "0"});
  ASSERT_TRUE(WaitFor([&] { return WorkerConnected("oa"); }));

  const std::string id = Submit({"--payload", R"("HOLD the line")"});
  // The stub sent its first chunk and waits for the gate: the task runs and
  // its progress is the text so far.
  json status;
  ASSERT_TRUE(WaitFor([&] {
    status = Status(id);
    return status.value("state", "") == "running" && status["progress"].is_object();
  })) << status;
  EXPECT_EQ(status["progress"]["delta"], "ECHO:") << status;  // the first of 4 chunks
  EXPECT_EQ(status["progress"]["text_bytes"], 5);

  std::ofstream(release).put('\n');
  const json end = RunCtl(daemon_->address(), {"--json", "wait", id}).Json();
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["output"]["text"], "ECHO: HOLD the line");
}

TEST_F(OpenAiWorkerTest, CancelAbortsTheRequestAndFreesTheSlot) {
  TempDir gate("oa-gate");
  StubModel stub({"--hold-file", gate.Join("never")});
  ASSERT_TRUE(stub.Start());
  const size_t w = StartWorker(stub.url(), "oa");  // capacity 1
  ASSERT_TRUE(WaitFor([&] { return WorkerConnected("oa"); }));

  const std::string held = Submit({"--payload", R"("HOLD forever")"});
  ASSERT_TRUE(WaitFor([&] { return Status(held).value("state", "") == "running"; }));
  EXPECT_EQ(Ctl({"cancel", held}).exit_code, 0);
  ASSERT_TRUE(WaitFor([&] {
    return WorkerLog(w).find("task " + held + " attempt 1: stopped") != std::string::npos;
  }));
  // The one slot is free again while the held reply never finished.
  const json end = SubmitWait({"--payload", R"("next")"});
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(Status(held)["state"], "cancelled");
}

TEST_F(OpenAiWorkerTest, RateLimitIsRetryableAndTheTaskSucceedsLater) {
  // Retry-After: 2 is longer than the first step of tasks.retry_backoff
  // (1s, plus at most 20% jitter): the server's pause decides.
  StubModel stub({"--fail-first", "1", "--fail-status", "429", "--retry-after", "2"});
  ASSERT_TRUE(stub.Start());
  StartWorker(stub.url(), "oa");
  ASSERT_TRUE(WaitFor([&] { return WorkerConnected("oa"); }));

  const json end = SubmitWait({"--max-attempts", "3", "--payload", R"("busy?")"});
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["attempts"], 2);
  ASSERT_EQ(end["errors"].size(), 1u) << end;
  EXPECT_NE(end["errors"][0]["error"].get<std::string>().find("HTTP 429: stub rate limit"),
            std::string::npos)
      << end;
  EXPECT_EQ(end["output"]["text"], "ECHO: busy?");
  const auto chats = stub.ChatRequests();
  ASSERT_EQ(chats.size(), 2u);
  EXPECT_GE(chats[1]["t"].get<double>() - chats[0]["t"].get<double>(), 2.0)
      << "retried sooner than the server's Retry-After";
}

TEST_F(OpenAiWorkerTest, ServerErrorIsRetryable) {
  StubModel stub({"--fail-first", "1", "--fail-status", "503"});
  ASSERT_TRUE(stub.Start());
  StartWorker(stub.url(), "oa");
  ASSERT_TRUE(WaitFor([&] { return WorkerConnected("oa"); }));
  const json end = SubmitWait({"--max-attempts", "2", "--payload", R"("again")"});
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["attempts"], 2);
}

TEST_F(OpenAiWorkerTest, StreamCutShortIsRetryable) {
  StubModel stub;
  ASSERT_TRUE(stub.Start());
  StartWorker(stub.url(), "oa");
  ASSERT_TRUE(WaitFor([&] { return WorkerConnected("oa"); }));
  const json end = SubmitWait({"--max-attempts", "2", "--payload", R"("DROP me")"});
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["attempts"], 2) << "retried";
  EXPECT_EQ(end["error"], "the model endpoint closed the stream before the reply ended") << end;
}

TEST_F(OpenAiWorkerTest, BadRequestFailsAtOnce) {
  StubModel stub({"--fail-always", "400"});
  ASSERT_TRUE(stub.Start());
  StartWorker(stub.url(), "oa");
  ASSERT_TRUE(WaitFor([&] { return WorkerConnected("oa"); }));

  json end = SubmitWait({"--max-attempts", "3", "--payload", R"("bad")"});
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["attempts"], 1) << "a 400 is permanent";
  EXPECT_EQ(end["error"], "model endpoint answered HTTP 400: stub forced failure");

  // A payload that cannot be a request fails at once too, without a request.
  const size_t before = stub.ChatRequests().size();
  end = SubmitWait({"--max-attempts", "3", "--payload", "42"});
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["attempts"], 1);
  EXPECT_EQ(stub.ChatRequests().size(), before);
}

TEST_F(OpenAiWorkerTest, EndpointDownAtStartTakesNoTaskUntilItAnswers) {
  TempDir dir("oa-down");
  const std::string down = dir.WriteFile("down", "");
  StubModel stub({"--down-file", down});
  ASSERT_TRUE(stub.Start());
  const size_t w = StartWorker(stub.url(), "oa");
  // The worker probed, heard 503, and stays away from pincerd.
  ASSERT_TRUE(
      WaitFor([&] { return WorkerLog(w).find("model endpoint not ready") != std::string::npos; }));
  EXPECT_FALSE(WorkerConnected("oa"));
  const std::string id = Submit({"--payload", R"("wait for me")"});
  json status = Status(id);
  EXPECT_EQ(status["state"], "queued") << status;
  EXPECT_EQ(status["why"], "no worker has skill chat") << status;

  std::remove(down.c_str());
  const json end = RunCtl(daemon_->address(), {"--json", "wait", id}).Json();
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["attempts"], 1);
}

TEST_F(OpenAiWorkerTest, EndpointGoingDownTakesTheWorkerAwayUntilItIsBack) {
  TempDir dir("oa-down");
  const std::string down = dir.Join("down");
  StubModel stub({"--down-file", down});
  ASSERT_TRUE(stub.Start());
  const size_t w = StartWorker(stub.url(), "oa", {"--probe-interval", "0.1"});
  ASSERT_TRUE(WaitFor([&] { return WorkerConnected("oa"); }));

  std::ofstream(down).put('\n');
  ASSERT_TRUE(WaitFor([&] { return !WorkerConnected("oa"); })) << WorkerLog(w);
  EXPECT_NE(WorkerLog(w).find("model endpoint is down"), std::string::npos);

  std::remove(down.c_str());
  ASSERT_TRUE(WaitFor([&] { return WorkerConnected("oa"); }));
  const json end = SubmitWait({"--payload", R"("back")"});
  EXPECT_EQ(end["state"], "succeeded") << end;
}

TEST_F(OpenAiWorkerTest, EndpointNotListeningAtAll) {
  // A port nothing listens on: taken from a stub that is then stopped.
  StubModel stub;
  ASSERT_TRUE(stub.Start());
  const std::string url = stub.url();
  stub.Kill();
  const size_t w = StartWorker(url, "oa");
  ASSERT_TRUE(
      WaitFor([&] { return WorkerLog(w).find("model endpoint not ready") != std::string::npos; }));
  EXPECT_FALSE(WorkerConnected("oa"));
}

// pincerd's side played by the test, to see the exact result line: a 429's
// Retry-After goes out as retry_after_ms beside retryable:true.
TEST(OpenAiWorkerWireTest, RetryAfterTravelsAsRetryAfterMs) {
  StubModel stub({"--fail-first", "2", "--fail-status", "429", "--retry-after", "7"});
  ASSERT_TRUE(stub.Start());

  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(listener, 4), 0);
  socklen_t len = sizeof sa;
  ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  const std::string addr = "127.0.0.1:" + std::to_string(ntohs(sa.sin_port));

  TempDir dir("oa-wire");
  ChildProcess worker;
  ASSERT_EQ(worker.Start({kWorker, "--addr", addr, "--openai", stub.url(), "--log-level", "debug"},
                         dir.Join("out"), dir.Join("err")),
            "");
  pollfd p{listener, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 30000), 1) << ReadFileOrEmpty(dir.Join("err"));
  RawPeer daemon;
  daemon.Adopt(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  ::close(listener);

  auto hello = daemon.ReadJson(seconds(10));
  ASSERT_TRUE(hello.has_value());
  EXPECT_EQ((*hello)["type"], "hello");
  daemon.SendJson({{"type", "welcome"}, {"id", "w1"}, {"heartbeat_ms", 60000}});
  daemon.SendJson({{"type", "task"},
                   {"id", "t1"},
                   {"payload", "hi"},
                   {"attempt", 1},
                   {"session", "s9"},
                   {"deadline_ms", nullptr}});
  std::optional<json> result;
  ASSERT_TRUE(WaitFor(
      [&] {
        auto line = daemon.ReadJson(milliseconds(100));
        if (line && (*line)["type"] == "result") result = line;
        return result.has_value();
      },
      seconds(30)));
  EXPECT_EQ((*result)["id"], "t1");
  EXPECT_EQ((*result)["ok"], false);
  EXPECT_EQ((*result)["retryable"], true);
  EXPECT_EQ((*result)["retry_after_ms"], 7000) << *result;
  // SIGTERM: the worker drains itself (docs/protocol.md, "drain"), and
  // exits once the daemon says it holds nothing.
  worker.Signal(SIGTERM);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto line = daemon.ReadJson(milliseconds(100));
        return line && (*line)["type"] == "drain";
      },
      seconds(30)));
  daemon.SendJson({{"type", "drained"}});
  EXPECT_EQ(worker.Wait(seconds(30)), 0);
}

TEST(OpenAiWorkerCliTest, UsageErrors) {
  EXPECT_EQ(RunProcess({kWorker}).exit_code, 2) << "a command or --openai is required";
  EXPECT_EQ(RunProcess({kWorker, "--openai", "http://127.0.0.1:1/v1", "--", "cat"}).exit_code, 2)
      << "not both";
  EXPECT_EQ(RunProcess({kWorker, "--openai", "ftp://x/v1"}).exit_code, 2);
  EXPECT_EQ(
      RunProcess({kWorker, "--openai", "http://127.0.0.1:1/v1", "--api-key-file", "/nonexistent"})
          .exit_code,
      2);
  TempDir dir("oa-cli");
  const std::string empty = dir.WriteFile("empty", "\n");
  ProcessResult r =
      RunProcess({kWorker, "--openai", "http://127.0.0.1:1/v1", "--api-key-file", empty});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("is empty"), std::string::npos) << r.err;
  r = RunProcess({kWorker, "--openai", "http://127.0.0.1:1/v1", "--session-header", "a: b"});
  EXPECT_EQ(r.exit_code, 2);
  ProcessResult help = RunProcess({kWorker, "--help"});
  for (const char* flag : {"--openai", "--model", "--api-key-file", "--session-header"}) {
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace pincer::test
