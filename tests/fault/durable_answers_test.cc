// What a client is told is on disk. With the durable store, pipelined
// `submit`s with `wait: true` to fast workers: every submit gets its `ok`
// before its `end`, and after `kill -9` of pincerd, right after the last
// `end` arrived, every task whose `end` the client saw is still ended the
// same way. (Task lines reach workers before their insert is written, so a
// fast worker often finishes a task while that write is in flight; its end
// must still wait for its own write. The kill races with that write, so
// the second check can miss a violation; the order check cannot.)
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/raw_peer.h"
#include "support/test_worker.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

TEST(DurableAnswersTest, EveryEndAClientSawSurvivesKillNineAndComesAfterItsAck) {
  DaemonProcess daemon("store: { kind: sqlite, fsync: always }\n");
  ASSERT_TRUE(daemon.Start());
  std::vector<std::unique_ptr<TestWorker>> workers;
  for (const char* name : {"fast-1", "fast-2"}) {
    TestWorkerOptions o;
    o.name = name;
    o.skills = {"e"};
    o.capacity = 64;
    auto w = TestWorker::Connect(daemon.address(), o);
    ASSERT_TRUE(w.ok()) << w.error().ToString();
    workers.push_back(std::move(w).value());
    workers.back()->StartAuto();
  }

  RawPeer client;
  ASSERT_EQ(client.Connect(daemon.address()), "");
  ASSERT_TRUE(client.Hello("client"));
  constexpr int kTasks = 400;
  std::string burst;
  for (int req = 1; req <= kTasks; ++req) {
    burst +=
        json{{"type", "submit"}, {"req", req}, {"skills", {"e"}}, {"payload", req}, {"wait", true}}
            .dump() +
        "\n";
  }
  ASSERT_TRUE(client.SendRaw(burst));

  std::map<int, std::string> acked;   // req -> task id
  std::map<std::string, json> ended;  // task id -> end event
  while (static_cast<int>(ended.size()) < kTasks) {
    auto m = client.ReadJson(std::chrono::milliseconds(30'000));
    ASSERT_TRUE(m) << "got " << acked.size() << " acks and " << ended.size() << " ends";
    const int req = m->value("req", 0);
    const std::string type = m->value("type", "");
    if (type == "ok") {
      EXPECT_FALSE(acked.count(req)) << *m;
      acked[req] = m->value("id", "");
    } else if (type == "end") {
      ASSERT_TRUE(acked.count(req)) << "end before its ack: " << *m;
      EXPECT_EQ(m->value("state", ""), "succeeded") << *m;
      EXPECT_EQ(m->value("output", json()), req) << *m;
      ended[acked[req]] = *m;
    } else {
      ADD_FAILURE() << "unexpected " << *m;
    }
  }

  daemon.Kill9();
  ASSERT_TRUE(daemon.Restart());
  CtlResult list = RunCtl(daemon.address(), {"--json", "tasks", "--state", "succeeded"});
  ASSERT_EQ(list.exit_code, 0) << list;
  std::map<std::string, json> stored;
  for (const json& t : list.Json()) stored[t.value("id", "")] = t;
  for (const auto& [id, end] : ended) {
    ASSERT_TRUE(stored.count(id)) << id
                                  << " ended for the client but is not succeeded after kill -9";
    EXPECT_EQ(stored[id].value("output", json()), end.value("output", json())) << id;
  }
}

}  // namespace
}  // namespace pincer::test
