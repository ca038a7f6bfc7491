// Ids across crashes (docs/durability.md, "Ids"): pincerd is killed with
// SIGKILL while tasks it has just sent to a worker are not yet on disk,
// then restarted on the same data dir, several times over. A task id must
// never reach a worker with two different payloads, and a worker id must
// never name two connections. And a restart is not the task's fault: it
// does not use up one of its max_attempts.
//
// Raw sockets play the worker (it records what it is given and never
// answers) and the client (it pipelines submits without waiting), so the
// kill lands while inserts are in flight. Everything waits on lines read,
// never on time.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "support/daemon_process.h"
#include "support/raw_peer.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kRead{10000};

// What workers were given, over every run: task id -> payload.
struct Delivered {
  std::map<std::string, std::string> payload;
  std::vector<std::string> clashes;

  // Records a task line; returns its payload.
  std::string Add(const json& task) {
    const std::string id = task.at("id");
    const std::string p = task.at("payload").dump();
    auto [it, fresh] = payload.emplace(id, p);
    if (!fresh && it->second != p) clashes.push_back(id + ": " + it->second + " then " + p);
    return p;
  }
};

std::optional<json> Worker(RawPeer& peer, const std::string& address, int capacity = 100000) {
  if (!peer.Connect(address).empty()) return std::nullopt;
  auto welcome = peer.Hello("worker", "", {{"name", "recorder"}, {"capacity", capacity}});
  if (!welcome || welcome->value("type", "") != "welcome") return std::nullopt;
  return welcome;
}

TEST(IdsTest, NoTaskIdReachesWorkersWithTwoPayloadsAcrossKillNine) {
  DaemonProcess daemon(
      "metrics_listen: \"\"\n"
      "store: { kind: sqlite, fsync: always }\n"
      "tasks: { timeout: 0, max_attempts: 1, max_interruptions: 1000 }\n");
  ASSERT_TRUE(daemon.Start());
  constexpr int kCycles = 6;
  constexpr int kBurst = 300;
  Delivered delivered;
  std::set<std::string> worker_ids;
  int unanswered_but_sent = 0;  // how often the kill fell between dispatch and commit

  for (int cycle = 0; cycle < kCycles; ++cycle) {
    const std::string address = daemon.address();
    RawPeer worker;
    auto welcome = Worker(worker, address);
    ASSERT_TRUE(welcome) << "cycle " << cycle << "\n" << daemon.ReadStderr();
    const std::string wid = welcome->at("id");
    EXPECT_TRUE(worker_ids.insert(wid).second) << "worker id " << wid << " issued twice";

    RawPeer client;
    ASSERT_EQ(client.Connect(address), "");
    ASSERT_TRUE(client.Hello("client"));
    // One write: pincerd reads the whole burst and dispatches at once.
    const std::string tag = "c" + std::to_string(cycle) + "-";
    std::string burst;
    for (int i = 0; i < kBurst; ++i) {
      burst +=
          json({{"type", "submit"}, {"req", i + 1}, {"payload", tag + std::to_string(i)}}).dump() +
          "\n";
    }
    ASSERT_TRUE(client.SendRaw(burst));

    // Kill the moment the worker holds a task of this cycle's burst: its
    // insert is most likely still on its way to disk.
    std::set<std::string> sent_now;
    bool got = false;
    while (!got) {
      auto line = worker.ReadJson(kRead);
      ASSERT_TRUE(line) << "cycle " << cycle << ": no task of this cycle reached the worker";
      if (line->value("type", "") != "task") continue;
      const std::string p = delivered.Add(*line);
      if (p.find(tag) != std::string::npos) {
        sent_now.insert(p);
        got = true;
      }
    }
    daemon.Kill9();
    // What was on its way before the kill still counts.
    while (auto line = worker.ReadJson(kRead)) {
      if (line->value("type", "") != "task") continue;
      const std::string p = delivered.Add(*line);
      if (p.find(tag) != std::string::npos) sent_now.insert(p);
    }
    std::set<std::string> answered;
    while (auto line = client.ReadJson(kRead)) {
      if (line->value("type", "") == "ok") {
        answered.insert("\"" + tag + std::to_string(line->at("req").get<int>() - 1) + "\"");
      }
    }
    for (const std::string& p : sent_now) unanswered_but_sent += !answered.count(p);
    ASSERT_TRUE(daemon.Restart()) << "restart " << cycle;
  }

  // One more run: every task still held comes back to a new worker, each
  // with the payload it first went out with.
  RawPeer worker;
  auto welcome = Worker(worker, daemon.address());
  ASSERT_TRUE(welcome);
  EXPECT_TRUE(worker_ids.insert(welcome->at("id")).second) << "worker id issued twice";
  RawPeer client;
  ASSERT_EQ(client.Connect(daemon.address()), "");
  ASSERT_TRUE(client.Hello("client"));
  ASSERT_TRUE(client.SendJson({{"type", "submit"}, {"req", 1}, {"payload", "last"}}));
  for (bool last = false; !last;) {
    auto line = worker.ReadJson(kRead);
    ASSERT_TRUE(line) << "the last task never came";
    if (line->value("type", "") == "task") last = delivered.Add(*line) == "\"last\"";
  }

  std::printf(
      "%zu task ids delivered over %d kills; %d tasks reached the worker before their "
      "submit was answered\n",
      delivered.payload.size(), kCycles, unanswered_but_sent);
  EXPECT_TRUE(delivered.clashes.empty())
      << delivered.clashes.size() << " ids reused, e.g. " << delivered.clashes.front();
}

TEST(IdsTest, AKillNineDoesNotUseUpTheOnlyAttempt) {
  DaemonProcess daemon(
      "metrics_listen: \"\"\n"
      "store: { kind: sqlite, fsync: always }\n"
      "tasks: { timeout: 0, max_attempts: 1 }\n");
  ASSERT_TRUE(daemon.Start());
  RawPeer worker;
  auto welcome = Worker(worker, daemon.address(), 1);
  ASSERT_TRUE(welcome);
  const std::string first_worker = welcome->at("id");
  RawPeer client;
  ASSERT_EQ(client.Connect(daemon.address()), "");
  ASSERT_TRUE(client.Hello("client"));
  // A task that goes to a worker at once is stored running, by the insert
  // the submit's answer waits for.
  ASSERT_TRUE(client.SendJson({{"type", "submit"}, {"req", 1}, {"payload", "once"}}));
  auto ok = client.ReadJson(kRead);
  ASSERT_TRUE(ok && ok->value("type", "") == "ok") << (ok ? ok->dump() : "no answer");
  const std::string id = ok->at("id");
  auto task = worker.ReadJson(kRead);
  ASSERT_TRUE(task && task->value("type", "") == "task") << (task ? task->dump() : "no task");
  EXPECT_EQ(task->at("attempt"), 1);

  daemon.Kill9();
  ASSERT_TRUE(daemon.Restart());

  RawPeer worker2;
  welcome = Worker(worker2, daemon.address(), 1);
  ASSERT_TRUE(welcome);
  EXPECT_NE(welcome->at("id"), first_worker) << "a new process, a new worker id";
  RawPeer client2;
  ASSERT_EQ(client2.Connect(daemon.address()), "");
  ASSERT_TRUE(client2.Hello("client"));
  ASSERT_TRUE(client2.SendJson({{"type", "wait"}, {"req", 1}, {"id", id}}));
  std::optional<json> again;
  while (!again) {
    auto line = worker2.ReadJson(kRead);
    ASSERT_TRUE(line) << "the task did not run again\n" << daemon.ReadStderr();
    if (line->value("type", "") == "task" && line->at("id") == id) again = line;
  }
  EXPECT_EQ(again->at("payload"), "once");
  EXPECT_EQ(again->at("attempt"), 2) << "a new attempt number";
  ASSERT_TRUE(worker2.SendJson({{"type", "result"}, {"id", id}, {"ok", true}, {"output", "done"}}));
  std::optional<json> end;
  while (!end) {
    auto line = client2.ReadJson(kRead);
    ASSERT_TRUE(line) << "no end event";
    if (line->value("type", "") == "end") end = line;
  }
  EXPECT_EQ(end->at("state"), "succeeded") << end->dump();
  EXPECT_EQ(end->at("output"), "done");
  ASSERT_EQ(end->at("errors").size(), 1u) << end->dump();
  EXPECT_EQ(end->at("errors")[0].at("error"), "pincerd restarted during the attempt");
  EXPECT_EQ(end->at("errors")[0].at("attempt"), 1);
  EXPECT_EQ(end->at("errors")[0].at("worker"), first_worker);
}

}  // namespace
}  // namespace pincer::test
