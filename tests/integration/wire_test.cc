// The wire as a worker author reads docs/protocol.md, against a real
// pincerd over raw sockets: carried values (payload, progress data, output)
// keep the bytes they were sent with, through both parse paths and both
// stores; a worker drains itself and is told `drained`; a silent worker is
// told `heartbeat_timeout` before the close, and one that asks gets its
// heartbeats answered; every typed field fed the wrong type is refused
// naming the field; a queued task says why it waits with a `why_code`.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/daemon_process.h"
#include "support/raw_peer.h"
#include "support/scenario.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kRead{10000};

// The next line of `type` from `peer` (others skipped), as text; "" when
// none came.
std::string NextLineOfType(RawPeer& peer, const std::string& type) {
  while (auto line = peer.ReadLine(kRead)) {
    json j = json::parse(*line, nullptr, false);
    if (j.is_object() && j.value("type", "") == type) return *line;
  }
  return "";
}

// `needle` occurs in `hay`, with both shown when it does not.
::testing::AssertionResult Contains(const std::string& hay, const std::string& needle) {
  if (hay.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << needle << "' is not in: " << hay.substr(0, 2000);
}

class WireTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& config) {
    daemon_ = std::make_unique<DaemonProcess>(config);
    ASSERT_TRUE(daemon_->Start());
  }

  // A raw client or worker, welcomed.
  std::unique_ptr<RawPeer> Peer(const std::string& role, const json& extra = json::object()) {
    auto peer = std::make_unique<RawPeer>();
    EXPECT_EQ(peer->Connect(daemon_->address()), "");
    auto welcome = peer->Hello(role, "", extra);
    EXPECT_TRUE(welcome && welcome->value("type", "") == "welcome")
        << (welcome ? welcome->dump() : "no answer");
    return peer;
  }

  // The raw `ok` line answering `status` of `id`.
  std::string StatusLine(RawPeer& client, const std::string& id) {
    EXPECT_TRUE(client.SendJson({{"type", "status"}, {"req", 900}, {"id", id}}));
    return NextLineOfType(client, "ok");
  }

  std::unique_ptr<DaemonProcess> daemon_;
};

// --------------------------------------------------------------- payloads

class PayloadBytesTest : public WireTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(PayloadBytesTest, PayloadProgressAndOutputKeepTheirBytes) {
  StartDaemon(std::string("store: { kind: ") + GetParam() + " }\n");
  auto worker = Peer("worker", {{"skills", {"raw"}}});
  auto client = Peer("client");

  // The fast path (an ordinary submit) and the slow one (a repeated field,
  // which only the general parser takes) must both keep the text.
  const std::vector<std::string> payloads = {R"({"b":1,"a":1e3})",
                                             R"({ "b" : [1.50, -0.0, 1E+2] , "a":"\u00e9" })"};
  const std::vector<std::string> submits = {
      R"({"type":"submit","req":1,"skills":["raw"],"payload":)" + payloads[0] + "}",
      R"({"type":"submit","req":2,"skills":["x"],"skills":["raw"],"payload":  )" + payloads[1] +
          "  }"};
  // What is kept: the value from its first byte to its last, whitespace
  // inside included (docs/protocol.md, "Carried values").
  const std::vector<std::string> kept = {payloads[0],
                                         R"({ "b" : [1.50, -0.0, 1E+2] , "a":"\u00e9" })"};
  for (std::size_t i = 0; i < submits.size(); ++i) {
    SCOPED_TRACE(submits[i]);
    ASSERT_TRUE(client->SendLine(submits[i]));
    const json ok = json::parse(NextLineOfType(*client, "ok"), nullptr, false);
    ASSERT_TRUE(ok.is_object()) << "no ok for the submit";
    const std::string id = ok.value("id", "");

    const std::string task = NextLineOfType(*worker, "task");
    EXPECT_TRUE(Contains(task, R"("payload":)" + kept[i] + ","));

    const std::string data = R"({"z":2,"y":1.50,"x":[ 3 ]})";
    ASSERT_TRUE(
        worker->SendLine(R"({"type":"progress","id":")" + id + R"(","data":)" + data + "}"));
    EXPECT_TRUE(WaitFor([&] { return StatusLine(*client, id).find(data) != std::string::npos; }))
        << StatusLine(*client, id);

    const std::string output = R"({"d":[1e3, 2],"c":0.10,"a":{}})";
    ASSERT_TRUE(worker->SendLine(R"({"type":"result","id":")" + id + R"(","ok":true,"output":)" +
                                 output + "}"));
    ASSERT_TRUE(client->SendJson({{"type", "wait"}, {"req", 50 + i}, {"id", id}}));
    const std::string end = NextLineOfType(*client, "end");
    EXPECT_TRUE(Contains(end, R"("output":)" + output + ","));
    const std::string status = StatusLine(*client, id);
    EXPECT_TRUE(Contains(status, R"("payload":)" + kept[i] + ","));
    EXPECT_TRUE(Contains(status, R"("output":)" + output + ","));
    EXPECT_TRUE(Contains(status, R"("progress":)" + data));
  }

  if (std::string(GetParam()) == "sqlite") {
    // From the store after a restart: the same bytes.
    worker.reset();
    client.reset();
    daemon_->Kill9();
    ASSERT_TRUE(daemon_->Restart());
    auto again = Peer("client");
    ASSERT_TRUE(again->SendJson({{"type", "tasks"}, {"req", 1}}));
    const std::string tasks = NextLineOfType(*again, "ok");
    for (const std::string& p : kept) EXPECT_TRUE(Contains(tasks, R"("payload":)" + p + ","));
    EXPECT_TRUE(Contains(tasks, R"("output":{"d":[1e3, 2],"c":0.10,"a":{}},)"));
  }
}

INSTANTIATE_TEST_SUITE_P(Stores, PayloadBytesTest, ::testing::Values("memory", "sqlite"));

// ------------------------------------------------------------ self-drain

TEST_F(WireTest, AWorkerDrainsItselfAndIsToldDrainedOnceItHoldsNothing) {
  StartDaemon("store: { kind: memory }\n");
  auto client = ConnectClient(daemon_->address());
  ASSERT_NE(client, nullptr);

  // Holding nothing: answered at once.
  auto idle = Peer("worker", {{"skills", {"idle"}}});
  ASSERT_TRUE(idle->SendLine(R"({"type":"drain"})"));
  EXPECT_TRUE(Contains(NextLineOfType(*idle, "drained"), R"({"type":"drained"})"));

  // Holding a task: nothing new, `drained` after its result.
  auto busy = Peer("worker", {{"skills", {"busy"}}, {"capacity", 2}});
  const std::string first = SubmitTask(*client, {{"skills", {"busy"}}, {"payload", 1}});
  const json task = json::parse(NextLineOfType(*busy, "task"));
  ASSERT_EQ(task.value("id", ""), first);
  ASSERT_TRUE(busy->SendLine(R"({"type":"drain"})"));
  const std::string second = SubmitTask(*client, {{"skills", {"busy"}}, {"payload", 2}});
  ASSERT_TRUE(WaitFor(
      [&] { return TaskStatus(*client, second).value("why_code", "") == "workers_unavailable"; }));
  EXPECT_EQ(TaskStatus(*client, second).value("why", ""),
            "all 1 matching workers are draining or ejected");
  ASSERT_TRUE(
      busy->SendJson({{"type", "result"}, {"id", first}, {"ok", true}, {"output", "done"}}));
  // Its next line is `drained` (no task came in between).
  auto next = busy->ReadJson(kRead);
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, json({{"type", "drained"}}));
  EXPECT_EQ(WaitEnd(*client, first).value("state", ""), "succeeded");
  EXPECT_EQ(TaskStatus(*client, second).value("state", ""), "queued");

  // A reconnect is a new worker, ready for tasks: the queued one runs.
  busy.reset();
  auto back = Peer("worker", {{"skills", {"busy"}}});
  EXPECT_TRUE(Contains(NextLineOfType(*back, "task"), R"("id":")" + second + "\""));

  // A client's `drain` still needs its `req`.
  auto raw_client = Peer("client");
  ASSERT_TRUE(raw_client->SendLine(R"({"type":"drain","worker":"w1"})"));
  const json refused = json::parse(NextLineOfType(*raw_client, "error"));
  EXPECT_EQ(refused.value("code", ""), "bad_message") << refused.dump();
}

// ------------------------------------------------------------- heartbeats

TEST_F(WireTest, ASilentWorkerIsToldHeartbeatTimeoutBeforeTheClose) {
  StartDaemon("store: { kind: memory }\nheartbeat: { interval: 200ms, misses: 2 }\n");
  auto client = ConnectClient(daemon_->address());
  ASSERT_NE(client, nullptr);
  auto silent = Peer("worker", {{"skills", {"mute"}}});
  const std::string id = SubmitTask(*client, {{"skills", {"mute"}}, {"payload", "x"}});
  ASSERT_FALSE(NextLineOfType(*silent, "task").empty());
  // It never sends a heartbeat.
  const json error = json::parse(NextLineOfType(*silent, "error"), nullptr, false);
  ASSERT_TRUE(error.is_object());
  EXPECT_EQ(error.value("code", ""), "heartbeat_timeout") << error.dump();
  EXPECT_TRUE(Contains(error.value("message", ""), "missed 2 heartbeats"));
  EXPECT_TRUE(silent->WaitClosed(kRead));
  // Its task went back to the queue, the loss listed.
  const json st = TaskStatus(*client, id);
  EXPECT_EQ(st.value("state", ""), "queued") << st.dump();
  EXPECT_TRUE(Contains(st["errors"].dump(), "missed 2 heartbeats"));
}

TEST_F(WireTest, HeartbeatsAreAnsweredOnlyWhenTheHelloAsks) {
  StartDaemon("store: { kind: memory }\n");
  auto asks = Peer("worker", {{"heartbeat_ack", true}});
  ASSERT_TRUE(asks->SendLine(R"({"type":"heartbeat"})"));
  auto ack = asks->ReadJson(kRead);
  ASSERT_TRUE(ack);
  EXPECT_EQ(*ack, json({{"type", "heartbeat_ack"}}));

  auto plain = Peer("worker");
  ASSERT_TRUE(plain->SendLine(R"({"type":"heartbeat","load":{"cpu":0.5}})"));
  ASSERT_TRUE(plain->SendLine("{"));  // answered with an error: the first line back
  auto next = plain->ReadJson(kRead);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->value("code", ""), "bad_json") << next->dump();
}

// -------------------------------------------------------------- validation

struct WrongType {
  std::string line;
  std::string code;
  std::string names;  // what the message must mention
};

TEST_F(WireTest, EveryTypedFieldFedTheWrongTypeIsRefusedNamingIt) {
  StartDaemon("store: { kind: memory }\n");
  auto client = ConnectClient(daemon_->address());
  ASSERT_NE(client, nullptr);
  auto worker = Peer("worker", {{"skills", {"typed"}}});
  const std::string id = SubmitTask(*client, {{"skills", {"typed"}}, {"payload", "x"}});
  ASSERT_FALSE(NextLineOfType(*worker, "task").empty());

  const std::string t = R"("id":")" + id + R"(")";
  const std::vector<WrongType> worker_lines = {
      {R"({"type":"heartbeat","load":{"cpu":"hot"}})", "bad_message", "load.cpu"},
      {R"({"type":"heartbeat","load":{"cpu":-1}})", "bad_message", "load.cpu"},
      {R"({"type":"heartbeat","load":{"rss_bytes":"big"}})", "bad_message", "load.rss_bytes"},
      {R"({"type":"heartbeat","load":{"rss_bytes":-5}})", "bad_message", "load.rss_bytes"},
      {R"({"type":"heartbeat","load":"busy"})", "bad_message", "load"},
      {R"({"type":"result",)" + t + R"(,"ok":false,"error":{"why":"x"}})", "bad_message", "error"},
      {R"({"type":"result",)" + t + R"(,"ok":false,"error":5})", "bad_message", "error"},
      {R"({"type":"result",)" + t + R"(,"ok":false,"retryable":"no"})", "bad_message", "retryable"},
      {R"({"type":"result",)" + t + R"(,"ok":false,"retry_after_ms":"1s"})", "bad_message",
       "retry_after_ms"},
      {R"({"type":"result",)" + t + R"(,"ok":1})", "bad_message", "ok"},
      {R"({"type":"result","id":["t1"],"ok":true})", "bad_message", "id"},
      {R"({"type":"progress","id":7,"data":1})", "bad_message", "id"},
      {R"({"type":"progress"})", "bad_message", "id"},
      {R"({"type":"drain","req":"one"})", "bad_message", "req"},
  };
  for (const WrongType& w : worker_lines) {
    ASSERT_TRUE(worker->SendLine(w.line));
    const json e = json::parse(NextLineOfType(*worker, "error"), nullptr, false);
    ASSERT_TRUE(e.is_object()) << w.line;
    EXPECT_EQ(e.value("code", ""), w.code) << w.line << " -> " << e.dump();
    EXPECT_TRUE(Contains(e.value("message", ""), "'" + w.names + "'")) << w.line;
  }
  // None of it touched the task: it still runs, its result is taken.
  EXPECT_EQ(TaskStatus(*client, id).value("state", ""), "running");
  ASSERT_TRUE(worker->SendJson({{"type", "result"}, {"id", id}, {"ok", true}, {"output", 1}}));
  EXPECT_EQ(WaitEnd(*client, id).value("state", ""), "succeeded");

  auto raw_client = Peer("client");
  const std::vector<WrongType> client_lines = {
      {R"({"type":"submit","req":1,"skills":[1]})", "bad_message", "skills"},
      {R"({"type":"submit","req":2,"priority":1.5})", "bad_message", "priority"},
      {R"({"type":"submit","req":3,"timeout":true})", "bad_message", "timeout"},
      {R"({"type":"submit","req":4,"max_attempts":"3"})", "bad_message", "max_attempts"},
      {R"({"type":"submit","req":5,"session":5})", "bad_message", "session"},
      {R"({"type":"submit","req":6,"key":{}})", "bad_message", "key"},
      {R"({"type":"submit","req":7,"wait":1})", "bad_message", "wait"},
      {R"({"type":"status","req":8,"id":8})", "bad_message", "id"},
      {R"({"type":"wait","req":9})", "bad_message", "id"},
      {R"({"type":"cancel","req":10,"id":null})", "bad_message", "id"},
      {R"({"type":"retry","req":11,"id":[]})", "bad_message", "id"},
      {R"({"type":"tasks","req":12,"state":1})", "bad_message", "state"},
      {R"({"type":"tasks","req":13,"limit":"ten"})", "bad_message", "limit"},
      {R"({"type":"drain","req":14,"worker":3})", "bad_message", "worker"},
      {R"({"type":"stats","req":"15"})", "bad_message", "req"},
  };
  for (const WrongType& w : client_lines) {
    ASSERT_TRUE(raw_client->SendLine(w.line));
    const json e = json::parse(NextLineOfType(*raw_client, "error"), nullptr, false);
    ASSERT_TRUE(e.is_object()) << w.line;
    EXPECT_EQ(e.value("code", ""), w.code) << w.line << " -> " << e.dump();
    EXPECT_TRUE(Contains(e.value("message", ""), "'" + w.names + "'")) << w.line;
  }
  EXPECT_EQ(Stats(*client).value("submitted", 0), 1) << "a refused submit created a task";

  // bad_json names the byte where the parser gave up, counted from 0.
  ASSERT_TRUE(raw_client->SendLine(R"({"type":"stats","req":1)"));
  EXPECT_EQ(json::parse(NextLineOfType(*raw_client, "error")).value("message", ""),
            "the line is not valid JSON: syntax error at byte 23");
  ASSERT_TRUE(raw_client->SendLine(R"({"type":}")"));
  EXPECT_EQ(json::parse(NextLineOfType(*raw_client, "error")).value("message", ""),
            "the line is not valid JSON: syntax error at byte 8");

  // Hello fields: refused with bad_hello naming the field, then closed.
  const std::vector<std::pair<json, std::string>> hellos = {
      {{{"labels", {{"host", "a"}, {"rack", 7}}}}, "labels.rack"},
      {{{"labels", "box1"}}, "labels"},
      {{{"capacity", "2"}}, "capacity"},
      {{{"skills", "echo"}}, "skills"},
      {{{"name", 1}}, "name"},
      {{{"spawn_id", false}}, "spawn_id"},
      {{{"heartbeat_ack", "yes"}}, "heartbeat_ack"},
  };
  for (const auto& [extra, field] : hellos) {
    RawPeer peer;
    ASSERT_EQ(peer.Connect(daemon_->address()), "");
    auto answer = peer.Hello("worker", "", extra);
    ASSERT_TRUE(answer) << extra.dump();
    EXPECT_EQ(answer->value("code", ""), "bad_hello") << extra.dump() << " -> " << answer->dump();
    EXPECT_TRUE(Contains(answer->value("message", ""), "'" + field + "'")) << extra.dump();
    EXPECT_TRUE(peer.WaitClosed(kRead));
  }
  EXPECT_EQ(Workers(*client).size(), 1u);
}

TEST_F(WireTest, AQueuedTaskSaysWhyWithAStableCode) {
  StartDaemon("store: { kind: memory }\n");
  auto client = ConnectClient(daemon_->address());
  ASSERT_NE(client, nullptr);
  const std::string none = SubmitTask(*client, {{"payload", 1}});
  json st = TaskStatus(*client, none);
  EXPECT_EQ(st.value("why_code", ""), "no_worker") << st.dump();
  EXPECT_EQ(st.value("why", ""), "no worker is connected");

  auto worker = Peer("worker", {{"skills", {"a"}}});
  ASSERT_FALSE(NextLineOfType(*worker, "task").empty());  // takes `none`
  const std::string full = SubmitTask(*client, {{"skills", {"a"}}, {"payload", 2}});
  const std::string skill = SubmitTask(*client, {{"skills", {"gpu"}}, {"payload", 3}});
  st = TaskStatus(*client, full);
  EXPECT_EQ(st.value("why_code", ""), "workers_full") << st.dump();
  EXPECT_EQ(st.value("why", ""), "all 1 matching workers are full");
  st = TaskStatus(*client, skill);
  EXPECT_EQ(st.value("why_code", ""), "missing_skill") << st.dump();
  EXPECT_EQ(st.value("why", ""), "no worker has skill gpu");
  // In a `tasks` list too; not on a running task.
  const json tasks = Ask(*client, {{"type", "tasks"}})["tasks"];
  ASSERT_EQ(tasks.size(), 3u) << tasks.dump();
  EXPECT_FALSE(tasks[0].contains("why_code")) << tasks[0].dump();
  EXPECT_EQ(tasks[1].value("why_code", ""), "workers_full");
  EXPECT_EQ(tasks[2].value("why_code", ""), "missing_skill");
}

}  // namespace
}  // namespace pincer::test
