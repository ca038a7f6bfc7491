// Usage accounting and per-task retry backoff, end to end: a real pincerd on
// the SQLite store, a raw worker speaking the protocol by hand, pincerctl
// and /metrics. A task's usage is summed over its attempts (failed ones
// too), survives kill -9 of pincerd, and shows in stats and /metrics; a
// bad usage is refused naming its field and changes nothing; a task's own
// backoff decides when it is retried.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/clock.h"
#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/http.h"
#include "support/raw_peer.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

constexpr char kConfig[] =
    "metrics_listen: \"127.0.0.1:0\"\n"
    "store: { kind: sqlite }\n"
    "tasks: { retry_backoff: { initial: 1ms, max: 1ms, jitter: 0 } }\n";

class UsageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<DaemonProcess>(kConfig);
    ASSERT_TRUE(daemon_->Start());
  }

  // The metrics address of the pincerd running now (the last one logged).
  std::string MetricsAddress() {
    std::string addr = daemon_->WaitForMetricsAddress();
    EXPECT_FALSE(addr.empty());
    return addr;
  }

  // A worker with skill "llm", connected and welcomed.
  std::unique_ptr<RawPeer> Worker(const std::string& name) {
    auto w = std::make_unique<RawPeer>();
    EXPECT_EQ(w->Connect(daemon_->address()), "");
    auto welcome = w->Hello("worker", "", {{"name", name}, {"skills", {"llm"}}, {"capacity", 1}});
    EXPECT_TRUE(welcome && (*welcome)["type"] == "welcome") << (welcome ? welcome->dump() : "");
    return w;
  }

  // The next task line the worker gets.
  json NextTask(RawPeer& w) {
    std::optional<json> line;
    while ((line = w.ReadJson(seconds(30)))) {
      if ((*line)["type"] == "task") return *line;
    }
    ADD_FAILURE() << "no task came";
    return json();
  }

  CtlResult Ctl(const std::vector<std::string>& args) { return RunCtl(daemon_->address(), args); }

  json Status(const std::string& id) {
    CtlResult r = Ctl({"--json", "status", id});
    EXPECT_EQ(r.exit_code, 0) << r;
    return r.Json();
  }

  std::string Submit(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"submit", "--skill",        "llm", "--payload",
                                     "\"hi\"", "--max-attempts", "3"};
    args.insert(args.end(), extra.begin(), extra.end());
    CtlResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r;
    return r.Lines().empty() ? "" : r.Lines()[0];
  }

  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(UsageTest, UsageAddsUpOverAttemptsAndSurvivesACrash) {
  auto w = Worker("agent-1");
  const std::string id = Submit();

  json task = NextTask(*w);
  ASSERT_EQ(task["id"], id);
  ASSERT_TRUE(
      w->SendJson({{"type", "result"},
                   {"id", id},
                   {"ok", false},
                   {"error", "HTTP 503"},
                   {"retryable", true},
                   {"usage", {{"input", 100}, {"output", 20}, {"cost", 0.5}, {"model", "m1"}}}}));
  task = NextTask(*w);
  ASSERT_EQ(task["attempt"], 2);
  ASSERT_TRUE(w->SendJson(
      {{"type", "result"},
       {"id", id},
       {"ok", true},
       {"output", "done"},
       {"usage", {{"input", 10}, {"output", 5}, {"total", 16}, {"cost", 0.25}, {"model", "m1"}}}}));
  ASSERT_TRUE(WaitFor([&] { return Status(id)["state"] == "succeeded"; }));

  const json expected =
      json::parse(R"({"input":110,"output":25,"total":136,"cost":0.75,"model":"m1"})");
  json status = Status(id);
  EXPECT_EQ(status["usage"], expected) << status;
  CtlResult table = Ctl({"status", id});
  EXPECT_NE(table.out.find("136 tokens (110 in, 25 out), cost 0.75, model m1"), std::string::npos)
      << table;

  // The totals: in all, by model, skill set and worker name.
  json stats = Ctl({"--json", "stats"}).Json();
  EXPECT_EQ(stats["usage"]["total"], 136) << stats;
  EXPECT_EQ(stats["usage"]["cost"], 0.75) << stats;
  EXPECT_EQ(stats["usage"]["by_model"]["m1"]["input"], 110) << stats;
  EXPECT_EQ(stats["usage"]["by_skill"]["llm"]["output"], 25) << stats;
  EXPECT_EQ(stats["usage"]["by_worker"]["agent-1"]["total"], 136) << stats;
  CtlResult stats_table = Ctl({"stats"});
  EXPECT_NE(stats_table.out.find("usage model m1"), std::string::npos) << stats_table;

  auto metrics = HttpGet(MetricsAddress(), "/metrics");
  ASSERT_TRUE(metrics && metrics->status == 200);
  EXPECT_EQ(Sample(metrics->body, R"(pincer_tokens_total{kind="input",model="m1",skill="llm"})"),
            110)
      << metrics->body;
  EXPECT_EQ(Sample(metrics->body, R"(pincer_tokens_total{kind="output",model="m1",skill="llm"})"),
            25);
  EXPECT_EQ(Sample(metrics->body, R"(pincer_cost_total{model="m1",skill="llm"})"), 0.75);

  // The sum is the task's: it survives kill -9 and a restart on the store.
  w.reset();
  daemon_->Kill9();
  ASSERT_TRUE(daemon_->Restart());
  status = Status(id);
  EXPECT_EQ(status["usage"], expected) << status;
  EXPECT_EQ(status["state"], "succeeded");
}

TEST_F(UsageTest, AFailedTaskKeepsItsUsageAcrossACrash) {
  // Still running (one failed attempt with usage) when pincerd dies.
  auto w = Worker("agent-1");
  const std::string id = Submit();
  NextTask(*w);
  ASSERT_TRUE(w->SendJson({{"type", "result"},
                           {"id", id},
                           {"ok", false},
                           {"error", "x"},
                           {"retryable", true},
                           {"usage", {{"input", 7}, {"output", 3}}}}));
  NextTask(*w);  // attempt 2 runs
  daemon_->Kill9();
  w.reset();
  ASSERT_TRUE(daemon_->Restart());
  const json status = Status(id);
  EXPECT_EQ(status["usage"],
            json::parse(R"({"input":7,"output":3,"total":10,"cost":0.0,"model":null})"))
      << status;
}

TEST_F(UsageTest, ABadUsageIsRefusedNamingTheFieldAndChangesNothing) {
  auto w = Worker("agent-1");
  const std::string id = Submit();
  NextTask(*w);
  const std::vector<std::pair<json, std::string>> bad = {
      {"many", "field 'usage' must be an object"},
      {{{"input", "12"}}, "field 'usage.input' must be an integer"},
      {{{"output", 1.5}}, "field 'usage.output' must be an integer"},
      {{{"total", -1}}, "field 'usage.total' must not be negative"},
      {{{"input", -5}}, "field 'usage.input' must not be negative"},
      {{{"cost", "1"}}, "field 'usage.cost' must be a number"},
      {{{"cost", -0.5}}, "field 'usage.cost' must not be negative"},
      {{{"model", 3}}, "field 'usage.model' must be a string"},
      {{{"model", std::string(300, 'm')}}, "field 'usage.model' must be at most 256 bytes"},
  };
  for (const auto& [usage, message] : bad) {
    ASSERT_TRUE(w->SendJson(
        {{"type", "result"}, {"id", id}, {"ok", true}, {"output", 1}, {"usage", usage}}));
    auto answer = w->ReadJson(seconds(30));
    ASSERT_TRUE(answer) << usage;
    EXPECT_EQ((*answer)["type"], "error") << *answer;
    EXPECT_EQ((*answer)["code"], "bad_message") << *answer;
    EXPECT_EQ((*answer)["message"], message) << *answer;
  }
  json status = Status(id);
  EXPECT_EQ(status["state"], "running") << status;
  EXPECT_TRUE(status["usage"].is_null()) << status;
  // The connection stays open and the task still ends with a good result.
  ASSERT_TRUE(w->SendJson({{"type", "result"},
                           {"id", id},
                           {"ok", true},
                           {"output", 1},
                           {"usage", {{"input", 1}, {"output", 2}, {"cost", 3}}}}));
  ASSERT_TRUE(WaitFor([&] { return Status(id)["state"] == "succeeded"; }));
  EXPECT_EQ(Status(id)["usage"]["total"], 3);
  EXPECT_EQ(Status(id)["usage"]["cost"], 3.0);
}

TEST_F(UsageTest, ATaskOwnBackoffDecidesWhenItIsRetried) {
  auto w = Worker("agent-1");
  const std::string id =
      Submit({"--backoff-initial", "1h", "--backoff-max", "2h", "--backoff-jitter", "0"});
  json status = Status(id);
  EXPECT_EQ(status["backoff"],
            json::parse(R"({"initial_ms":3600000,"max_ms":7200000,"jitter":0.0})"))
      << status;
  NextTask(*w);
  const int64_t before_failure = SystemClock().UnixMillis();
  ASSERT_TRUE(w->SendJson(
      {{"type", "result"}, {"id", id}, {"ok", false}, {"error", "busy"}, {"retryable", true}}));
  ASSERT_TRUE(WaitFor([&] {
    status = Status(id);
    return status["state"] == "queued" && status.contains("retry_at_ms");
  })) << status;
  // The config says 1ms; the task said 1h.
  EXPECT_GE(status["retry_at_ms"].get<int64_t>(), before_failure + 3600 * 1000) << status;
  EXPECT_EQ(status["why"].get<std::string>().rfind("retrying after backoff until ", 0), 0u)
      << status;

  // The backoff is stored with the task: a restart waits its initial again.
  w.reset();
  daemon_->Kill9();
  const int64_t before_restart = SystemClock().UnixMillis();
  ASSERT_TRUE(daemon_->Restart());
  status = Status(id);
  EXPECT_EQ(status["backoff"]["initial_ms"], 3600000) << status;
  ASSERT_TRUE(status["retry_at_ms"].is_number_integer()) << status;
  EXPECT_GE(status["retry_at_ms"].get<int64_t>(), before_restart + 3600 * 1000) << status;

  // A task without one follows the config (1ms): retried at once.
  auto w2 = Worker("agent-2");
  const std::string plain = Submit();
  NextTask(*w2);
  ASSERT_TRUE(w2->SendJson(
      {{"type", "result"}, {"id", plain}, {"ok", false}, {"error", "busy"}, {"retryable", true}}));
  EXPECT_EQ(NextTask(*w2)["attempt"], 2);
}

TEST_F(UsageTest, ABadBackoffIsRefusedAndSubmitsNothing) {
  const std::vector<std::vector<std::string>> bad_flags = {
      {"--backoff-initial", "soon"},
      {"--backoff-initial", "10s", "--backoff-max", "1s"},
      {"--backoff-jitter", "2"},
      {"--backoff-initial", "87601h"},
  };
  for (const auto& flags : bad_flags) {
    std::vector<std::string> args = {"submit", "--payload", "1"};
    args.insert(args.end(), flags.begin(), flags.end());
    CtlResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 2) << r;
  }
  // On the wire.
  RawPeer client;
  ASSERT_EQ(client.Connect(daemon_->address()), "");
  ASSERT_TRUE(client.Hello("client"));
  const std::vector<std::pair<json, std::string>> bad = {
      {"1s", "field 'backoff' must be an object"},
      {{{"initial", true}}, "field 'backoff.initial' must be a duration string or milliseconds"},
      {{{"initial", -1}}, "field 'backoff.initial' must not be negative"},
      {{{"max", "later"}},
       "field 'backoff.max' is not a duration like 30s or 1h30m (units h, m, s, ms)"},
      {{{"initial", "2s"}, {"max", "1s"}},
       "field 'backoff.max' must not be less than 'backoff.initial'"},
      {{{"jitter", 1.5}}, "field 'backoff.jitter' must be between 0 and 1"},
      {{{"jitter", "a"}}, "field 'backoff.jitter' must be a number"},
      // A max alone is checked against the config's initial (1ms).
      {{{"max", "0ms"}}, "backoff.max (0 ms) must not be less than backoff.initial (1 ms)"},
  };
  int64_t req = 1;
  for (const auto& [backoff, message] : bad) {
    ASSERT_TRUE(client.SendJson({{"type", "submit"}, {"req", req}, {"backoff", backoff}}));
    auto answer = client.ReadJson(seconds(30));
    ASSERT_TRUE(answer);
    EXPECT_EQ((*answer)["type"], "error") << *answer;
    EXPECT_EQ((*answer)["req"], req) << *answer;
    EXPECT_EQ((*answer)["message"], message) << *answer;
    ++req;
  }
  EXPECT_EQ(Ctl({"--json", "tasks"}).Json(), json::array()) << "nothing was submitted";
}

}  // namespace
}  // namespace pincer::test
