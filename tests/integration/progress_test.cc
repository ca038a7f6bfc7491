// Progress streamed to those who wait, against a real pincerd: a worker's
// `progress` goes live to a `wait: true` submit, a `wait` and a `watch`
// (each line carrying that request's `req`), always before the `end`;
// `pincerctl watch` prints it and exits with the task's exit code;
// `submit --wait --follow` shows it on stderr; `tasks --tree` and
// `status --tree` draw a parent with its children.
#include <gtest/gtest.h>

#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/raw_peer.h"
#include "support/scenario.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/test_worker.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kRead = seconds(20);  // bounds a wait for a line that must come

constexpr const char* kConfig =
    "store: { kind: memory }\n"
    "heartbeat: { interval: 5s, misses: 100 }\n";

class ProgressTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<DaemonProcess>(kConfig);
    ASSERT_TRUE(daemon_->Start());
    client_ = ConnectClient(daemon_->address());
    ASSERT_NE(client_, nullptr);
    TestWorkerOptions o;
    o.name = "steps";
    o.skills = {"steps"};
    auto w = TestWorker::Connect(daemon_->address(), o);
    ASSERT_TRUE(w.ok()) << w.error().ToString();
    worker_ = std::move(w).value();
  }
  // A raw client connection: every line it gets is seen as sent.
  std::unique_ptr<RawPeer> RawClient() {
    auto peer = std::make_unique<RawPeer>();
    EXPECT_EQ(peer->Connect(daemon_->address()), "");
    auto welcome = peer->Hello("client");
    EXPECT_TRUE(welcome && welcome->value("type", "") == "welcome");
    return peer;
  }
  // The worker's next task; its id.
  std::string Take() {
    auto task = worker_->NextTask(kRead);
    EXPECT_TRUE(task);
    return task ? task->value("id", "") : "";
  }
  // Runs pincerctl in the background, stdout and stderr to files.
  void StartCtl(ChildProcess& ctl, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {std::string(PINCER_BUILD_DIR) + "/pincerctl", "--addr",
                                     daemon_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    ASSERT_EQ(ctl.Start(argv, dir_.Join("ctl.out"), dir_.Join("ctl.err")), "");
  }
  bool CtlOutHas(const std::string& text) {
    return WaitFor(
        [&] { return ReadFileOrEmpty(dir_.Join("ctl.out")).find(text) != std::string::npos; },
        kRead);
  }

  TempDir dir_{"pincer-progress"};
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<TestWorker> worker_;
};

TEST_F(ProgressTest, ARawWaiterGetsEachProgressWithItsReqBeforeTheEnd) {
  auto submitter = RawClient();
  ASSERT_TRUE(submitter->SendJson(
      {{"type", "submit"}, {"req", 7}, {"skills", {"steps"}}, {"payload", "x"}, {"wait", true}}));
  auto ok = submitter->ReadJson(kRead);
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->value("type", ""), "ok") << ok->dump();
  const std::string id = ok->value("id", "");
  ASSERT_EQ(Take(), id);

  // A second client waits with `wait`; its `status` answer, asked after the
  // wait on the same connection, says the wait is in place.
  auto waiter = RawClient();
  ASSERT_TRUE(waiter->SendJson({{"type", "wait"}, {"req", 3}, {"id", id}}));
  ASSERT_TRUE(waiter->SendJson({{"type", "status"}, {"req", 4}, {"id", id}}));
  auto st = waiter->ReadJson(kRead);
  ASSERT_TRUE(st);
  ASSERT_EQ(st->value("req", 0), 4) << st->dump();

  ASSERT_TRUE(worker_->SendProgress(id, {{"step", 1}, {"of", 2}}));
  ASSERT_TRUE(worker_->SendProgress(id, "halfway"));
  ASSERT_TRUE(worker_->SendResult(id, true, "done"));

  // Each waiter: both progress lines, in order, with its own req, then the end.
  for (const auto& [peer, req] :
       std::vector<std::pair<RawPeer*, int>>{{submitter.get(), 7}, {waiter.get(), 3}}) {
    auto first = peer->ReadJson(kRead);
    ASSERT_TRUE(first);
    EXPECT_EQ(*first, json({{"type", "progress"},
                            {"req", req},
                            {"id", id},
                            {"attempt", 1},
                            {"data", {{"step", 1}, {"of", 2}}}}));
    auto second = peer->ReadJson(kRead);
    ASSERT_TRUE(second);
    EXPECT_EQ(second->value("type", ""), "progress") << second->dump();
    EXPECT_EQ((*second)["data"], "halfway");
    auto end = peer->ReadJson(kRead);
    ASSERT_TRUE(end);
    EXPECT_EQ(end->value("type", ""), "end") << end->dump();
    EXPECT_EQ(end->value("req", 0), req);
    EXPECT_EQ(end->value("state", ""), "succeeded");
  }
}

TEST_F(ProgressTest, WatchSendsTheLatestProgressAtOnceThenLiveOnesAndTheEnd) {
  const std::string id = SubmitTask(*client_, {{"skills", {"steps"}}, {"payload", "x"}});
  ASSERT_EQ(Take(), id);
  ASSERT_TRUE(worker_->SendProgress(id, "one"));
  ASSERT_TRUE(WaitFor([&] { return TaskStatus(*client_, id)["progress"] == "one"; }));

  auto watcher = RawClient();
  ASSERT_TRUE(watcher->SendJson({{"type", "watch"}, {"req", 5}, {"id", id}}));
  auto now = watcher->ReadJson(kRead);
  ASSERT_TRUE(now);
  EXPECT_EQ(*now,
            json({{"type", "progress"}, {"req", 5}, {"id", id}, {"attempt", 1}, {"data", "one"}}));
  // A second watch (or wait) of the same task on this connection is refused.
  ASSERT_TRUE(watcher->SendJson({{"type", "wait"}, {"req", 6}, {"id", id}}));
  auto again = watcher->ReadJson(kRead);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->value("code", ""), "already_waiting") << again->dump();

  ASSERT_TRUE(worker_->SendProgress(id, "two"));
  ASSERT_TRUE(worker_->SendResult(id, false, "boom", /*retryable=*/false));
  auto two = watcher->ReadJson(kRead);
  ASSERT_TRUE(two);
  EXPECT_EQ((*two)["data"], "two") << two->dump();
  auto end = watcher->ReadJson(kRead);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->value("type", ""), "end") << end->dump();
  EXPECT_EQ(end->value("req", 0), 5);
  EXPECT_EQ(end->value("state", ""), "failed");

  // An ended task: just its end. An unknown one: not_found.
  ASSERT_TRUE(watcher->SendJson({{"type", "watch"}, {"req", 8}, {"id", id}}));
  auto ended = watcher->ReadJson(kRead);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->value("type", ""), "end") << ended->dump();
  EXPECT_EQ(ended->value("req", 0), 8);
  ASSERT_TRUE(watcher->SendJson({{"type", "watch"}, {"req", 9}, {"id", "t999"}}));
  auto unknown = watcher->ReadJson(kRead);
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->value("code", ""), "not_found") << unknown->dump();
  EXPECT_EQ(unknown->value("req", 0), 9);
  // No id: bad_message.
  ASSERT_TRUE(watcher->SendJson({{"type", "watch"}, {"req", 10}}));
  auto bad = watcher->ReadJson(kRead);
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->value("code", ""), "bad_message") << bad->dump();
}

TEST_F(ProgressTest, PincerctlWatchPrintsProgressLinesBeforeTheEndAndExitsZero) {
  const std::string id = SubmitTask(*client_, {{"skills", {"steps"}}, {"payload", "x"}});
  ASSERT_EQ(Take(), id);
  ChildProcess ctl;
  StartCtl(ctl, {"watch", id});
  // Shown whether the watch began before it or after (then at once).
  ASSERT_TRUE(worker_->SendProgress(id, {{"step", 1}}));
  ASSERT_TRUE(CtlOutHas("{\"step\":1}\n")) << ReadFileOrEmpty(dir_.Join("ctl.err"));
  ASSERT_TRUE(worker_->SendProgress(id, {{"step", 2}}));
  ASSERT_TRUE(CtlOutHas("{\"step\":2}\n"));
  ASSERT_TRUE(worker_->SendResult(id, true, "done"));
  EXPECT_EQ(ctl.Wait(kRead), 0) << ReadFileOrEmpty(dir_.Join("ctl.err"));
  const std::string out = ReadFileOrEmpty(dir_.Join("ctl.out"));
  EXPECT_EQ(out.rfind("{\"step\":1}\n{\"step\":2}\nid:", 0), 0u) << out;
  EXPECT_NE(out.find("state:    succeeded"), std::string::npos) << out;
}

TEST_F(ProgressTest, PincerctlWatchJsonAndAFailedTaskExitsOne) {
  const std::string id = SubmitTask(*client_, {{"skills", {"steps"}}, {"payload", "x"}});
  ASSERT_EQ(Take(), id);
  ChildProcess ctl;
  StartCtl(ctl, {"watch", id, "--json"});
  ASSERT_TRUE(worker_->SendProgress(id, "working"));
  ASSERT_TRUE(CtlOutHas("working"));
  ASSERT_TRUE(worker_->SendResult(id, false, "boom", /*retryable=*/false));
  EXPECT_EQ(ctl.Wait(kRead), 1) << ReadFileOrEmpty(dir_.Join("ctl.err"));
  CtlResult result;
  result.out = ReadFileOrEmpty(dir_.Join("ctl.out"));
  const std::vector<std::string> lines = result.Lines();
  ASSERT_EQ(lines.size(), 2u) << result.out;
  EXPECT_EQ(json::parse(lines[0]), json({{"id", id}, {"attempt", 1}, {"data", "working"}}));
  const json end = json::parse(lines[1]);
  EXPECT_EQ(end.value("state", ""), "failed") << lines[1];
  EXPECT_EQ(end.value("id", ""), id);
}

TEST_F(ProgressTest, PincerctlWatchOfAnUnknownTaskExitsFour) {
  CtlResult r = RunCtl(daemon_->address(), {"watch", "t404"});
  EXPECT_EQ(r.exit_code, 4) << r;
  EXPECT_NE(r.err.find("t404"), std::string::npos) << r;
}

TEST_F(ProgressTest, SubmitWaitFollowShowsProgressOnStderrAndTheEndOnStdout) {
  auto run = std::async(std::launch::async, [&] {
    return RunCtl(daemon_->address(),
                  {"submit", "--skill", "steps", "--text", "x", "--wait", "--follow"});
  });
  // The submit's wait is in place before its task is offered.
  const std::string id = Take();
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(worker_->SendProgress(id, {{"pct", 50}}));
  ASSERT_TRUE(worker_->SendResult(id, true, "done"));
  CtlResult r = run.get();
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_NE(r.err.find("progress " + id + ": {\"pct\":50}\n"), std::string::npos) << r;
  EXPECT_EQ(r.out.find("pct"), std::string::npos) << r;
  EXPECT_NE(r.out.find("succeeded"), std::string::npos) << r;
  // Without --follow nothing of it is shown; --follow needs --wait.
  CtlResult bad = RunCtl(daemon_->address(), {"submit", "--skill", "steps", "--follow"});
  EXPECT_EQ(bad.exit_code, 2) << bad;
}

TEST_F(ProgressTest, WaitFollowShowsProgressOnStderrAndExitsWithTheTasksCode) {
  const std::string id = SubmitTask(*client_, {{"skills", {"steps"}}, {"payload", "x"}});
  ASSERT_EQ(Take(), id);
  ChildProcess ctl;
  StartCtl(ctl, {"wait", "--follow", id});
  // `wait` shows only what comes once it is in place: progress is sent
  // until one shows.
  const std::string err = dir_.Join("ctl.err");
  ASSERT_TRUE(WaitFor(
      [&] {
        worker_->SendProgress(id, "tick");
        return ReadFileOrEmpty(err).find("progress " + id + ": \"tick\"\n") != std::string::npos;
      },
      kRead));
  ASSERT_TRUE(worker_->SendResult(id, false, "boom", /*retryable=*/false));
  EXPECT_EQ(ctl.Wait(kRead), 1) << ReadFileOrEmpty(err);
  const std::string out = ReadFileOrEmpty(dir_.Join("ctl.out"));
  EXPECT_EQ(out.find("tick"), std::string::npos) << out;
  EXPECT_NE(out.find("state:    failed"), std::string::npos) << out;
}

TEST_F(ProgressTest, AWorkerWaitingOnItsChildGetsTheChildsProgressBeforeItsEnd) {
  TestWorkerOptions o;
  o.name = "leaf";
  o.skills = {"leaf"};
  auto leaf = TestWorker::Connect(daemon_->address(), o);
  ASSERT_TRUE(leaf.ok()) << leaf.error().ToString();
  const std::string parent = SubmitTask(*client_, {{"skills", {"steps"}}, {"payload", "plan"}});
  ASSERT_EQ(Take(), parent);
  ASSERT_TRUE(worker_->Send({{"type", "submit"},
                             {"req", 11},
                             {"skills", {"leaf"}},
                             {"payload", "part"},
                             {"parent", parent},
                             {"wait", true}}));
  auto ok = worker_->NextMessage(kRead);
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->value("type", ""), "ok") << ok->dump();
  const std::string child = ok->value("id", "");
  auto task = (*leaf)->NextTask(kRead);
  ASSERT_TRUE(task);
  ASSERT_TRUE((*leaf)->SendProgress(child, "leaf at work"));
  ASSERT_TRUE((*leaf)->SendResult(child, true, "leaf done"));
  auto progress = worker_->NextMessage(kRead);
  ASSERT_TRUE(progress);
  EXPECT_EQ(*progress, json({{"type", "progress"},
                             {"req", 11},
                             {"id", child},
                             {"attempt", 1},
                             {"data", "leaf at work"}}));
  auto end = worker_->NextMessage(kRead);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->value("type", ""), "end") << end->dump();
  EXPECT_EQ(end->value("req", 0), 11);
  EXPECT_EQ((*end)["output"], "leaf done");
}

TEST_F(ProgressTest, TreesDrawAParentWithItsChildren) {
  const std::string parent = SubmitTask(*client_, {{"skills", {"steps"}}, {"payload", "plan"}});
  ASSERT_EQ(Take(), parent);
  std::vector<std::string> children;
  for (int i = 1; i <= 2; ++i) {
    ASSERT_TRUE(worker_->Send({{"type", "submit"},
                               {"req", i},
                               {"skills", {"leaf"}},
                               {"payload", i},
                               {"parent", parent}}));
    auto ok = worker_->NextMessage(kRead);
    ASSERT_TRUE(ok);
    ASSERT_EQ(ok->value("type", ""), "ok") << ok->dump();
    children.push_back(ok->value("id", ""));
  }
  const std::string expected = parent + "  running  [steps]\n" +  //
                               "├─ " + children[0] + "  queued  [leaf]\n" + "└─ " + children[1] +
                               "  queued  [leaf]\n";
  CtlResult tasks = RunCtl(daemon_->address(), {"tasks", "--tree", "--oldest"});
  EXPECT_EQ(tasks.exit_code, 0) << tasks;
  EXPECT_EQ(tasks.out, expected) << tasks;
  // From a child: the whole tree, the child pointed out.
  CtlResult status = RunCtl(daemon_->address(), {"status", "--tree", children[1]});
  EXPECT_EQ(status.exit_code, 0) << status;
  EXPECT_EQ(status.out, parent + "  running  [steps]\n" + "├─ " + children[0] +
                            "  queued  [leaf]\n" + "└─ " + children[1] + "  queued  [leaf]  <\n")
      << status;
  CtlResult json_tree = RunCtl(daemon_->address(), {"status", "--tree", parent, "--json"});
  EXPECT_EQ(json_tree.exit_code, 0) << json_tree;
  EXPECT_EQ(json_tree.Json(), json({{"id", parent},
                                    {"state", "running"},
                                    {"skills", {"steps"}},
                                    {"children",
                                     {{{"id", children[0]},
                                       {"state", "queued"},
                                       {"skills", {"leaf"}},
                                       {"children", json::array()}},
                                      {{"id", children[1]},
                                       {"state", "queued"},
                                       {"skills", {"leaf"}},
                                       {"children", json::array()}}}}}))
      << json_tree;
  CtlResult unknown = RunCtl(daemon_->address(), {"status", "--tree", "t404"});
  EXPECT_EQ(unknown.exit_code, 4) << unknown;
}

}  // namespace
}  // namespace pincer::test
