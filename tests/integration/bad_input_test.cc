// Bad input against a real pincerd over raw sockets: broken lines, wrong
// types, foreign results, oversize frames, wrong tokens, no hello. Each gets
// the error docs/protocol.md names; afterwards the daemon still serves the
// others and a task accepted before the bad input still runs to its end.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/raw_peer.h"
#include "support/scenario.h"
#include "support/test_worker.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kRead{5000};

constexpr const char* kConfig =
    "store: { kind: memory }\n"
    "auth: { worker_token: wtok, client_token: ctok }\n"
    "limits: { max_frame_bytes: 4096, hello_timeout: 300ms }\n";

struct BadLine {
  std::string line;
  std::string code;
  std::optional<int64_t> req;
};

class BadInputTest : public ::testing::Test {
 protected:
  virtual std::string config() const { return kConfig; }

  void SetUp() override {
    daemon_ = std::make_unique<DaemonProcess>(config());
    ASSERT_TRUE(daemon_->Start());
    addr_ = daemon_->address();
    witness_ = ConnectClient(addr_, "ctok");
    ASSERT_NE(witness_, nullptr);
    // Accepted before any bad input; runs once a "later" worker comes.
    pending_ = SubmitTask(*witness_, {{"skills", {"later"}}, {"payload", "kept"}});
    ASSERT_FALSE(pending_.empty());
    TestWorkerOptions o;
    o.name = "echo";
    o.skills = {"echo"};
    o.token = "wtok";
    auto w = TestWorker::Connect(addr_, o);
    ASSERT_TRUE(w.ok()) << w.error().ToString();
    echo_ = std::move(w).value();
    echo_->StartAuto();
  }

  // The daemon still answers an existing client and runs new tasks.
  void ExpectStillServing() {
    json stats = Stats(*witness_);
    EXPECT_TRUE(stats.is_object());
    json end =
        WaitEnd(*witness_, SubmitTask(*witness_, {{"skills", {"echo"}}, {"payload", "ping"}}));
    EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
    EXPECT_EQ(TaskStatus(*witness_, pending_).value("state", ""), "queued");
  }

  // The task accepted before the bad input runs to success.
  void ExpectPendingTaskCompletes() {
    TestWorkerOptions o;
    o.name = "later";
    o.skills = {"later"};
    o.token = "wtok";
    auto w = TestWorker::Connect(addr_, o);
    ASSERT_TRUE(w.ok()) << w.error().ToString();
    (*w)->StartAuto();
    json end = WaitEnd(*witness_, pending_);
    EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
    EXPECT_EQ(end["output"], "kept");
    EXPECT_EQ(end.value("attempts", 0), 1);
  }

  // Sends each bad line on `peer` and checks the error; the connection must
  // stay open, which a following `probe` line (answered with `probe_code`
  // or a reply with req) proves.
  void ExpectErrorsKeepOpen(RawPeer& peer, const std::vector<BadLine>& table) {
    for (const BadLine& b : table) {
      ASSERT_TRUE(peer.SendLine(b.line)) << b.line;
      auto answer = peer.ReadJson(kRead);
      ASSERT_TRUE(answer) << "no answer to: " << b.line.substr(0, 200);
      EXPECT_EQ(answer->value("type", ""), "error") << b.line << " -> " << answer->dump();
      EXPECT_EQ(answer->value("code", ""), b.code) << b.line << " -> " << answer->dump();
      EXPECT_FALSE(answer->value("message", "").empty());
      if (b.req) {
        EXPECT_EQ(answer->value("req", int64_t{-1}), *b.req) << b.line << " -> " << answer->dump();
      }
      EXPECT_FALSE(peer.closed()) << "closed after: " << b.line;
    }
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::string addr_;
  std::unique_ptr<client::Client> witness_;
  std::unique_ptr<TestWorker> echo_;
  std::string pending_;
};

TEST_F(BadInputTest, ClientBadLinesGetErrorsAndTheConnectionStaysOpen) {
  RawPeer peer;
  ASSERT_EQ(peer.Connect(addr_), "");
  auto welcome = peer.Hello("client", "ctok");
  ASSERT_TRUE(welcome);
  ASSERT_EQ(welcome->value("type", ""), "welcome") << welcome->dump();

  ExpectErrorsKeepOpen(
      peer,
      {
          {"this is not json", "bad_json", {}},
          {"{\"type\":\"stats\",\"req\":1", "bad_json", {}},
          {"{'type':'stats'}", "bad_json", {}},
          {R"({"type":"stats","req":1e400})", "bad_json", {}},
          {R"({"type":"submit","req":1,"payload":{"n":-1e999}})", "bad_json", {}},
          {"[1,2,3]", "bad_message", {}},
          {"42", "bad_message", {}},
          {"\"submit\"", "bad_message", {}},
          {"null", "bad_message", {}},
          {"{}", "bad_message", {}},
          {R"({"type":5,"req":2})", "bad_message", 2},
          {R"({"type":"frobnicate","req":3})", "unknown_type", 3},
          {R"({"type":"submit","req":4,"skills":"echo"})", "bad_message", 4},
          {R"({"type":"submit","req":5,"priority":"high"})", "bad_message", 5},
          {R"({"type":"submit","req":6,"wait":"yes"})", "bad_message", 6},
          {R"({"type":"submit","req":7,"timeout":"soon"})", "invalid_request", 7},
          {R"({"type":"submit","req":8,"max_attempts":0})", "invalid_request", 8},
          {R"({"type":"status","req":9,"id":17})", "bad_message", 9},
          {R"({"type":"status","req":10,"id":"t999999"})", "not_found", 10},
          {R"({"type":"tasks","req":11,"state":"sleeping"})", "invalid_request", 11},
          {R"({"type":"drain","req":12,"worker":"w999"})", "not_found", 12},
          // Only a worker has tasks to be the parent of a subtask.
          {R"({"type":"submit","req":13,"parent":"t1"})", "unknown_task", 13},
          {R"({"type":"stats"})", "bad_message", {}},
          {R"({"type":"result","id":"t1","ok":true})", "unknown_type", {}},
          {R"({"type":"heartbeat"})", "unknown_type", {}},
          {R"({"type":"hello","role":"client","proto":1,"token":"ctok"})", "unknown_type", {}},
          // A worker's message is refused as such, before its fields, with its req.
          {R"({"type":"result","req":14,"id":"t1","ok":true})", "unknown_type", 14},
          {R"({"type":"progress","req":15})", "unknown_type", 15},
          {R"({"type":"stopped","req":16,"id":7})", "unknown_type", 16},
      });
  // Still a working client connection.
  ASSERT_TRUE(peer.SendJson({{"type", "stats"}, {"req", 77}}));
  auto ok = peer.ReadJson(kRead);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->value("type", ""), "ok") << ok->dump();
  EXPECT_EQ(ok->value("req", 0), 77);
  ExpectStillServing();
  ExpectPendingTaskCompletes();
}

TEST_F(BadInputTest, WorkerBadLinesAndResultsForUnknownOrForeignTasks) {
  // A worker that holds a task, answering only when told.
  TestWorkerOptions ho;
  ho.name = "holder";
  ho.skills = {"hold"};
  ho.token = "wtok";
  auto holder_r = TestWorker::Connect(addr_, ho);
  ASSERT_TRUE(holder_r.ok());
  auto holder = std::move(holder_r).value();
  const std::string held = SubmitTask(*witness_, {{"skills", {"hold"}}, {"payload", "mine"}});
  auto task = holder->NextTask(kRead);
  ASSERT_TRUE(task);
  ASSERT_EQ((*task)["id"], held);

  RawPeer peer;
  ASSERT_EQ(peer.Connect(addr_), "");
  auto welcome = peer.Hello("worker", "wtok", {{"name", "raw"}, {"skills", {"raw"}}});
  ASSERT_TRUE(welcome);
  ASSERT_EQ(welcome->value("type", ""), "welcome") << welcome->dump();

  const json foreign = {{"type", "result"}, {"id", held}, {"ok", true}, {"output", "stolen"}};
  ExpectErrorsKeepOpen(
      peer, {
                {"not json at all", "bad_json", {}},
                {R"({"type":"result","id":"t1","ok":true,"output":1e400})", "bad_json", {}},
                {"[\"result\"]", "bad_message", {}},
                {"true", "bad_message", {}},
                {"{}", "bad_message", {}},
                {R"({"type":"explode"})", "unknown_type", {}},
                // A worker may submit subtasks, but only of a task it runs.
                {R"({"type":"submit","req":1,"payload":1,"parent":")" + held + R"("})",
                 "unknown_task", 1},
                {R"({"type":"submit","req":1,"parent":"t999999"})", "unknown_task", 1},
                {R"({"type":"submit","req":1,"parent":"garbage"})", "unknown_task", 1},
                {R"({"type":"submit","req":1,"parent":7})", "bad_message", 1},
                {R"({"type":"stats","req":2})", "unknown_type", {}},
                {R"({"type":"retry","req":3,"id":")" + held + R"("})", "unknown_type", 3},
                {R"({"type":"result","id":7,"ok":true})", "bad_message", {}},
                {R"({"type":"result","id":"t1","ok":"yes"})", "bad_message", {}},
                {R"({"type":"heartbeat","load":[1,2]})", "bad_message", {}},
                {R"({"type":"result","id":"t999999","ok":true,"output":1})", "unknown_task", {}},
                {R"({"type":"result","id":"garbage","ok":false,"error":"x"})", "unknown_task", {}},
                {R"({"type":"progress","id":"t999999","data":1})", "unknown_task", {}},
                {foreign.dump(), "unknown_task", {}},
                {R"({"type":"progress","id":")" + held + R"(","data":"x"})", "unknown_task", {}},
            });
  ASSERT_TRUE(peer.SendJson({{"type", "heartbeat"}, {"load", json::object()}}));

  // The foreign result changed nothing: the task still runs on its holder.
  json st = TaskStatus(*witness_, held);
  EXPECT_EQ(st.value("state", ""), "running") << st.dump();
  EXPECT_EQ(st["worker"], holder->id());
  EXPECT_TRUE(st["progress"].is_null()) << st.dump();
  ASSERT_TRUE(holder->SendResult(held, true, "mine"));
  json end = WaitEnd(*witness_, held);
  EXPECT_EQ(end.value("state", ""), "succeeded");
  EXPECT_EQ(end["output"], "mine");
  EXPECT_EQ(end.value("attempts", 0), 1);
  // A second result for the ended task is refused as well.
  ASSERT_TRUE(holder->SendResult(held, false, "again"));
  auto refused = holder->NextMessage(kRead);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->value("code", ""), "unknown_task") << refused->dump();
  EXPECT_EQ(TaskStatus(*witness_, held).value("state", ""), "succeeded");

  // The raw worker is still connected and listed.
  EXPECT_FALSE(peer.closed());
  EXPECT_NE(FindWorker(Workers(*witness_), welcome->value("id", "")), nullptr);
  ExpectStillServing();
  ExpectPendingTaskCompletes();
}

// SPEC section 2: an error carries `req` "echoed if given", also when a
// worker sends a request only clients may send.
TEST_F(BadInputTest, AWorkerSendingAClientRequestGetsItsReqBack) {
  RawPeer peer;
  ASSERT_EQ(peer.Connect(addr_), "");
  ASSERT_TRUE(peer.Hello("worker", "wtok", {{"skills", {"raw"}}}));
  ExpectErrorsKeepOpen(peer, {
                                 {R"({"type":"retry","req":1,"id":"t1"})", "unknown_type", 1},
                                 {R"({"type":"stats","req":2})", "unknown_type", 2},
                                 {R"({"type":"pools","req":3})", "unknown_type", 3},
                                 // Refused for what it is, before its fields count.
                                 {R"({"type":"drain","req":4})", "unknown_type", 4},
                                 {R"({"type":"tasks","req":5,"limit":0})", "unknown_type", 5},
                                 {R"({"type":"retry","req":6})", "unknown_type", 6},
                                 {R"({"type":"pool","req":7,"op":"fly"})", "unknown_type", 7},
                             });
  // A refused parent is named in `id`, beside the submit's `req`.
  ASSERT_TRUE(peer.SendLine(R"({"type":"submit","req":8,"skills":["raw"],"parent":"t77"})"));
  auto answer = peer.ReadJson(kRead);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->value("code", ""), "unknown_task") << answer->dump();
  EXPECT_EQ(answer->value("id", ""), "t77") << answer->dump();
  EXPECT_EQ(answer->value("req", 0), 8) << answer->dump();
}

TEST_F(BadInputTest, ALineOverTheFrameLimitIsRefusedAndClosed) {
  const std::string big(5000, 'x');
  // From a client after hello.
  {
    RawPeer peer;
    ASSERT_EQ(peer.Connect(addr_), "");
    ASSERT_TRUE(peer.Hello("client", "ctok"));
    // Just under the limit is fine.
    json near = {
        {"type", "submit"}, {"req", 1}, {"skills", {"echo"}}, {"payload", std::string(3900, 'y')}};
    ASSERT_LT(near.dump().size(), 4096u);
    ASSERT_TRUE(peer.SendJson(near));
    auto ok = peer.ReadJson(kRead);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->value("type", ""), "ok") << ok->dump();

    ASSERT_TRUE(peer.SendLine(R"({"type":"submit","req":2,"payload":")" + big + R"("})"));
    auto err = peer.ReadJson(kRead);
    ASSERT_TRUE(err);
    EXPECT_EQ(err->value("code", ""), "frame_too_large") << err->dump();
    EXPECT_TRUE(peer.WaitClosed(kRead));
  }
  // From a worker, and from a peer that never said hello.
  {
    RawPeer peer;
    ASSERT_EQ(peer.Connect(addr_), "");
    ASSERT_TRUE(peer.Hello("worker", "wtok", {{"skills", {"big"}}}));
    peer.SendLine(big);
    auto err = peer.ReadJson(kRead);
    ASSERT_TRUE(err);
    EXPECT_EQ(err->value("code", ""), "frame_too_large") << err->dump();
    EXPECT_TRUE(peer.WaitClosed(kRead));
  }
  {
    RawPeer peer;
    ASSERT_EQ(peer.Connect(addr_), "");
    peer.SendRaw(big);  // no newline at all: the limit still applies
    auto err = peer.ReadJson(kRead);
    ASSERT_TRUE(err);
    EXPECT_EQ(err->value("code", ""), "frame_too_large") << err->dump();
    EXPECT_TRUE(peer.WaitClosed(kRead));
  }
  ExpectStillServing();
  ExpectPendingTaskCompletes();
}

TEST_F(BadInputTest, AWrongTokenIsUnauthorizedAndClosed) {
  struct Case {
    std::string role;
    std::string token;
  };
  for (const Case& c : {Case{"client", "nope"}, Case{"client", ""}, Case{"client", "wtok"},
                        Case{"worker", "ctok"}, Case{"worker", ""}}) {
    RawPeer peer;
    ASSERT_EQ(peer.Connect(addr_), "");
    auto answer = peer.Hello(c.role, c.token,
                             c.role == "worker" ? json{{"skills", {"later"}}} : json::object());
    ASSERT_TRUE(answer) << c.role << "/" << c.token;
    EXPECT_EQ(answer->value("type", ""), "error") << answer->dump();
    EXPECT_EQ(answer->value("code", ""), "unauthorized") << answer->dump();
    EXPECT_TRUE(peer.WaitClosed(kRead)) << c.role << "/" << c.token;
  }
  // pincerctl reports it with exit code 3.
  CtlResult r = RunCtl(addr_, {"--token", "nope", "stats"});
  EXPECT_EQ(r.exit_code, 3) << r;
  // The refused "later" worker took nothing.
  EXPECT_EQ(TaskStatus(*witness_, pending_).value("state", ""), "queued");
  ExpectStillServing();
  ExpectPendingTaskCompletes();
}

TEST_F(BadInputTest, NoHelloInTimeIsClosedAndABadFirstMessageIsBadHello) {
  {
    RawPeer silent;
    ASSERT_EQ(silent.Connect(addr_), "");
    auto err = silent.ReadJson(kRead);  // hello_timeout is 300ms
    ASSERT_TRUE(err);
    EXPECT_EQ(err->value("code", ""), "hello_timeout") << err->dump();
    EXPECT_TRUE(silent.WaitClosed(kRead));
  }
  for (const std::string& first :
       {std::string(R"({"type":"stats","req":1})"), std::string("garbage"), std::string("[]"),
        std::string(R"({"type":"hello","role":"boss","proto":1})"),
        std::string(R"({"type":"hello","role":"client","proto":2,"token":"ctok"})"),
        std::string(R"({"type":"hello","role":"worker","proto":1,"token":"wtok","capacity":0})")}) {
    RawPeer peer;
    ASSERT_EQ(peer.Connect(addr_), "");
    ASSERT_TRUE(peer.SendLine(first));
    auto err = peer.ReadJson(kRead);
    ASSERT_TRUE(err) << first;
    EXPECT_EQ(err->value("code", ""), "bad_hello") << first << " -> " << err->dump();
    EXPECT_TRUE(peer.WaitClosed(kRead)) << first;
  }
  ExpectStillServing();
  ExpectPendingTaskCompletes();
}

TEST_F(BadInputTest, AHelloWithBadTasksIsBadHelloNamingTheProblem) {
  // Hello `tasks` (docs/protocol.md, "Adopting a reconnecting worker's
  // tasks"): each bad shape is refused with what is wrong, and closed.
  const std::string head = R"({"type":"hello","role":"worker","proto":1,"token":"wtok",)";
  const std::string long_id(65, 't');
  for (const auto& [fields, says] : std::vector<std::pair<std::string, std::string>>{
           {R"("tasks":"t1")", "field 'tasks' must be an array of task ids"},
           {R"("tasks":{"id":"t1"})", "field 'tasks' must be an array of task ids"},
           {R"("tasks":[1])", "field 'tasks' must be an array of task ids"},
           {R"("tasks":[["t1"]])", "field 'tasks' must be an array of task ids"},
           {R"("tasks":[{"attempt":1}])", "an object without 'id'"},
           {R"("tasks":[{"id":"t1","attempt":0}])", "'tasks[].attempt' must be an integer"},
           {R"("tasks":[{"id":"t1","attempt":"1"}])", "'tasks[].attempt' must be an integer"},
           {R"("tasks":[""])", "must be 1 to 64 bytes long"},
           {R"("tasks":[")" + long_id + R"("])", "must be 1 to 64 bytes long"},
           {R"("capacity":2,"tasks":["t1","t2","t3"])",
            "lists 3 tasks, more than the worker's capacity 2"},
       }) {
    RawPeer peer;
    ASSERT_EQ(peer.Connect(addr_), "");
    ASSERT_TRUE(peer.SendLine(head + fields + "}"));
    auto err = peer.ReadJson(kRead);
    ASSERT_TRUE(err) << fields;
    EXPECT_EQ(err->value("code", ""), "bad_hello") << fields << " -> " << err->dump();
    EXPECT_NE(err->value("message", "").find(says), std::string::npos)
        << fields << " -> " << err->dump();
    EXPECT_TRUE(peer.WaitClosed(kRead)) << fields;
  }
  ExpectStillServing();
  ExpectPendingTaskCompletes();
}

// A value nested `levels` deep: [[...[]...]].
std::string Nest(int levels) { return std::string(levels, '[') + std::string(levels, ']'); }

// Hostile input that used to overflow pincerd's stack or wrap its numbers,
// with the default frame limit (16 MiB): deep lines fit in a frame.
class HostileInputTest : public BadInputTest {
 protected:
  std::string config() const override {
    return "store: { kind: memory }\n"
           "auth: { worker_token: wtok, client_token: ctok }\n"
           "limits: { hello_timeout: 2s }\n";
  }

  // `line` is answered with bad_json naming the limit; the connection stays.
  void ExpectTooDeep(RawPeer& peer, const std::string& line) {
    ASSERT_TRUE(peer.SendLine(line));
    auto answer = peer.ReadJson(kRead);
    ASSERT_TRUE(answer) << "no answer to a line of " << line.size() << " bytes";
    EXPECT_EQ(answer->value("code", ""), "bad_json") << answer->dump();
    EXPECT_NE(answer->value("message", "").find("limits.max_json_depth = 64"), std::string::npos)
        << answer->dump();
    EXPECT_FALSE(peer.closed());
  }
};

TEST_F(HostileInputTest, DeepJsonFromAClientIsRefusedAndOrdinaryNestingServed) {
  RawPeer peer;
  ASSERT_EQ(peer.Connect(addr_), "");
  ASSERT_TRUE(peer.Hello("client", "ctok"));
  // 100,000 levels: a 200 KB line.
  ExpectTooDeep(peer,
                R"({"type":"submit","req":1,"skills":["echo"],"payload":)" + Nest(100000) + "}");
  ExpectTooDeep(
      peer, R"({"type":"submit","req":2,"skills":["echo"],"payload":)" + std::string(1000000, '['));
  // The message object is level 1: 64 levels of payload are one too many.
  ExpectTooDeep(peer, R"({"type":"submit","req":3,"skills":["echo"],"payload":)" + Nest(64) + "}");
  ExpectTooDeep(peer, R"({"type":"wait","req":4,"id":"t1","x":)" + Nest(100000) + "}");
  // 63 levels run, and come back whole to a client.
  json end = WaitEnd(
      *witness_, SubmitTask(*witness_, {{"skills", {"echo"}}, {"payload", json::parse(Nest(63))}}));
  EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
  EXPECT_EQ(end["output"], json::parse(Nest(63)));
  ASSERT_TRUE(peer.SendJson({{"type", "tasks"}, {"req", 5}}));
  auto tasks = peer.ReadJson(kRead);
  ASSERT_TRUE(tasks);
  EXPECT_EQ(tasks->value("type", ""), "ok");
  ExpectStillServing();
  ExpectPendingTaskCompletes();
}

TEST_F(HostileInputTest, NumbersOutsideTheirRangesAreRefused) {
  RawPeer peer;
  ASSERT_EQ(peer.Connect(addr_), "");
  ASSERT_TRUE(peer.Hello("client", "ctok"));
  ExpectErrorsKeepOpen(
      peer, {
                {R"({"type":"submit","req":1,"skills":["echo"],"timeout":10000000000000})",
                 "invalid_request", 1},
                {R"({"type":"submit","req":2,"skills":["echo"],"timeout":"999999999999d"})",
                 "invalid_request", 2},
                {R"({"type":"submit","req":3,"skills":["echo"],"timeout":"9999999999999h"})",
                 "invalid_request", 3},
                {R"({"type":"submit","req":4,"skills":["echo"],"max_attempts":4294967296})",
                 "invalid_request", 4},
                {R"({"type":"submit","req":5,"skills":["echo"],"priority":9223372036854775808})",
                 "invalid_request", 5},
                {R"({"type":"tasks","req":6,"limit":0})", "invalid_request", 6},
                {R"({"type":"tasks","req":7,"limit":100000000000})", "invalid_request", 7},
                {R"({"type":"tasks","req":8,"order":"sideways"})", "invalid_request", 8},
                {R"({"type":"tasks","req":9,"after":"yesterday"})", "invalid_request", 9},
                {R"({"type":"tasks","req":10,"skill":7})", "bad_message", 10},
            });
  // Nothing was created.
  EXPECT_EQ(Stats(*witness_).value("submitted", -1), 1) << "only the pending task";
  // The longest timeout there is: accepted, and the task runs (it does not
  // time out at once).
  ASSERT_TRUE(peer.SendLine(
      R"({"type":"submit","req":8,"skills":["echo"],"payload":"long","timeout":31536000000,"wait":true})"));
  auto ok = peer.ReadJson(kRead);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->value("type", ""), "ok") << ok->dump();
  auto end = peer.ReadJson(kRead);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->value("state", ""), "succeeded") << end->dump();
  // A worker's capacity, past its range, is refused at hello.
  RawPeer worker;
  ASSERT_EQ(worker.Connect(addr_), "");
  auto answer = worker.Hello("worker", "wtok", {{"capacity", 1048577}});
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->value("code", ""), "bad_hello") << answer->dump();
  ExpectStillServing();
  ExpectPendingTaskCompletes();
}

TEST_F(HostileInputTest, DeepJsonFromAWorkerIsRefusedAndTheTaskStaysItsOwn) {
  RawPeer worker;
  ASSERT_EQ(worker.Connect(addr_), "");
  ASSERT_TRUE(worker.Hello("worker", "wtok", {{"name", "raw"}, {"skills", {"raw"}}}));
  const std::string id = SubmitTask(*witness_, {{"skills", {"raw"}}, {"payload", "x"}});
  std::optional<json> task;
  ASSERT_TRUE(WaitFor([&] {
    task = worker.ReadJson(milliseconds(200));
    return task && task->value("type", "") == "task";
  }));
  ASSERT_EQ(task->value("id", ""), id);
  const std::string head = R"({"type":"result","id":")" + id + R"(","ok":)";
  ExpectTooDeep(worker, head + R"(true,"output":)" + Nest(100000) + "}");
  ExpectTooDeep(worker, head + R"(false,"error":)" + Nest(100000) + "}");
  ExpectTooDeep(worker, R"({"type":"progress","id":")" + id + R"(","data":)" + Nest(100000) + "}");
  ExpectTooDeep(worker, R"({"type":"heartbeat","load":)" + Nest(100000) + "}");
  EXPECT_EQ(TaskStatus(*witness_, id).value("state", ""), "running");
  // Its ordinary result still lands.
  ASSERT_TRUE(worker.SendLine(head + R"(true,"output":)" + Nest(63) + "}"));
  json end = WaitEnd(*witness_, id);
  EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
  EXPECT_EQ(end["output"], json::parse(Nest(63)));
  ExpectStillServing();
  ExpectPendingTaskCompletes();
}

TEST_F(HostileInputTest, DeepLinesBeforeHelloAreRefusedAndClosed) {
  // Deep but within the 64 KiB a line before hello may have: refused for
  // its depth, before anything parses it.
  for (const std::string& first : {
           R"({"type":"submit","req":1,"skills":["x"],"payload":)" + Nest(30000) + "}",
           R"({"type":"hello","role":"worker","proto":1,"token":"wrong","labels":{"a":)" +
               Nest(30000) + "}}",
           R"({"type":"hello","role":"worker","proto":1,"token":"wtok","labels":{"a":)" + Nest(64) +
               "}}",
           std::string(60000, '{'),
       }) {
    RawPeer peer;
    ASSERT_EQ(peer.Connect(addr_), "");
    ASSERT_TRUE(peer.SendLine(first));
    auto err = peer.ReadJson(kRead);
    ASSERT_TRUE(err) << first.substr(0, 80);
    EXPECT_EQ(err->value("code", ""), "bad_hello") << err->dump();
    EXPECT_NE(err->value("message", "").find("limits.max_json_depth = 64"), std::string::npos)
        << err->dump();
    EXPECT_TRUE(peer.WaitClosed(kRead));
  }
  // Deeper ones are longer than a line before hello may be: refused for
  // their length.
  for (const std::string& first : {
           R"({"type":"submit","req":1,"skills":["x"],"payload":)" + Nest(100000) + "}",
           R"({"type":"hello","role":"worker","proto":1,"token":"wrong","labels":{"a":)" +
               Nest(70000) + "}}",
           std::string(1000000, '{'),
       }) {
    RawPeer peer;
    ASSERT_EQ(peer.Connect(addr_), "");
    ASSERT_TRUE(peer.SendLine(first));
    auto err = peer.ReadJson(kRead);
    ASSERT_TRUE(err) << first.substr(0, 80);
    EXPECT_EQ(err->value("code", ""), "frame_too_large") << err->dump();
    EXPECT_TRUE(peer.WaitClosed(kRead));
  }
  // A wrong token with a field nested within the bound is plainly
  // unauthorized (labels are strings: an unknown field carries the nesting).
  RawPeer peer;
  ASSERT_EQ(peer.Connect(addr_), "");
  auto answer = peer.Hello("worker", "wrong", {{"extra", {{"a", json::parse(Nest(62))}}}});
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->value("code", ""), "unauthorized") << answer->dump();
  ExpectStillServing();
  ExpectPendingTaskCompletes();
}

// One connection waits on at most 10000 live tasks: a `wait: true` submit
// past that is refused before its task exists, and a `wait` too. (One
// pipelined in the same batch as the 10000th gets its ok, then the refusal;
// Dispatcher tests hold that bound.)
TEST_F(HostileInputTest, AConnectionWaitsOnAtMostTenThousandTasks) {
  RawPeer peer;
  ASSERT_EQ(peer.Connect(addr_), "");
  ASSERT_TRUE(peer.Hello("client", "ctok"));
  constexpr int kCap = 10000;
  std::string burst;
  for (int req = 1; req <= kCap; ++req) {
    burst += R"({"type":"submit","req":)" + std::to_string(req) +
             R"(,"skills":["nobody"],"payload":1,"wait":true})" + "\n";
  }
  ASSERT_TRUE(peer.SendRaw(burst));
  for (int req = 1; req <= kCap; ++req) {
    auto ok = peer.ReadJson(kRead);
    ASSERT_TRUE(ok) << req;
    ASSERT_EQ(ok->value("type", ""), "ok") << ok->dump();
  }
  ASSERT_TRUE(peer.SendJson(
      {{"type", "submit"}, {"req", kCap + 1}, {"skills", {"nobody"}}, {"wait", true}}));
  auto refused = peer.ReadJson(kRead);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->value("code", ""), "too_many_waits") << refused->dump();
  EXPECT_EQ(refused->value("req", 0), kCap + 1);
  ASSERT_TRUE(peer.SendJson({{"type", "wait"}, {"req", kCap + 2}, {"id", pending_}}));
  refused = peer.ReadJson(kRead);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->value("code", ""), "too_many_waits") << refused->dump();
  // Without wait the connection still submits; other connections still wait.
  ASSERT_TRUE(
      peer.SendJson({{"type", "submit"}, {"req", kCap + 3}, {"skills", {"echo"}}, {"payload", 2}}));
  auto ok = peer.ReadJson(kRead);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->value("type", ""), "ok") << ok->dump();
  EXPECT_EQ(Stats(*witness_).value("submitted", 0), kCap + 2);
  ExpectStillServing();
  ExpectPendingTaskCompletes();
}

TEST_F(HostileInputTest, RepeatedWaitsOnATaskHoldOneWaiter) {
  RawPeer peer;
  ASSERT_EQ(peer.Connect(addr_), "");
  ASSERT_TRUE(peer.Hello("client", "ctok"));
  std::string lines;
  for (int req = 1; req <= 1000; ++req) {
    lines += R"({"type":"wait","req":)" + std::to_string(req) + R"(,"id":")" + pending_ + "\"}\n";
  }
  ASSERT_TRUE(peer.SendRaw(lines));
  for (int req = 2; req <= 1000; ++req) {
    auto err = peer.ReadJson(kRead);
    ASSERT_TRUE(err) << req;
    EXPECT_EQ(err->value("code", ""), "already_waiting") << err->dump();
    EXPECT_EQ(err->value("req", 0), req);
  }
  // The first wait gets the end, once.
  ExpectPendingTaskCompletes();
  auto end = peer.ReadJson(kRead);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->value("type", ""), "end") << end->dump();
  EXPECT_EQ(end->value("req", 0), 1);
  // Ended: waiting again is answered at once.
  ASSERT_TRUE(peer.SendJson({{"type", "wait"}, {"req", 1001}, {"id", pending_}}));
  end = peer.ReadJson(kRead);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->value("req", 0), 1001) << end->dump();
}

}  // namespace
}  // namespace pincer::test
