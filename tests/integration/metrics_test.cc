// pincerd's HTTP endpoint under hostile use, against a real pincerd:
// idle connections to metrics_listen do not starve /healthz, and label
// values that clients choose (skill sets) do not grow /metrics without
// bound: at most Metrics::kMaxSkillSets (100) have series of their own, the
// rest share `other`, and a skill set's series leave with its last task;
// a pool removed by a reload takes its series along.
#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/http.h"
#include "support/metrics_text.h"
#include "support/raw_peer.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

constexpr std::size_t kMaxSkillSets = 100;  // docs/operations.md, "Metrics"

// The distinct values of `label` over the samples of `metric` in a
// /metrics text.
std::set<std::string> DistinctLabelValues(const std::string& text, const std::string& metric,
                                          const std::string& label) {
  const std::multiset<std::string> all = test::LabelValues(text, metric, label);
  return {all.begin(), all.end()};
}

class MetricsEndpointTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& config) {
    daemon_ = std::make_unique<DaemonProcess>("metrics_listen: \"127.0.0.1:0\"\n" + config);
    ASSERT_TRUE(daemon_->Start());
    metrics_addr_ = daemon_->WaitForMetricsAddress();
    ASSERT_FALSE(metrics_addr_.empty()) << daemon_->ReadStderr();
  }

  std::string Metrics() {
    auto r = HttpGet(metrics_addr_, "/metrics");
    EXPECT_TRUE(r && r->status == 200);
    return r ? r->body : "";
  }

  // Sends every message, then reads one answer per message: each must be ok.
  void Pipeline(RawPeer& client, const std::vector<json>& messages, std::vector<json>* answers) {
    for (const json& m : messages) ASSERT_TRUE(client.SendJson(m));
    for (std::size_t i = 0; i < messages.size(); ++i) {
      auto answer = client.ReadJson(seconds(30));
      ASSERT_TRUE(answer) << "answer " << i << " of " << messages.size();
      ASSERT_EQ((*answer)["type"], "ok") << answer->dump();
      if (answers) answers->push_back(*answer);
    }
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::string metrics_addr_;
};

TEST_F(MetricsEndpointTest, IdleConnectionsDoNotStarveHealthz) {
  StartDaemon("store: { kind: memory }\n");
  // Each idle connection holds one of the server's threads until its
  // request timeout; they are accepted before the GET below.
  std::vector<std::unique_ptr<IdleConnection>> idle;
  for (int i = 0; i < 20; ++i) {
    idle.push_back(std::make_unique<IdleConnection>(metrics_addr_));
    ASSERT_TRUE(idle.back()->connected()) << i;
  }
  auto health = HttpGet(metrics_addr_, "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  EXPECT_FALSE(Metrics().empty());
  // Served while every idle connection is still open: not by waiting for
  // the server to time them out.
  for (std::size_t i = 0; i < idle.size(); ++i) EXPECT_FALSE(idle[i]->ClosedByPeer()) << i;
}

TEST_F(MetricsEndpointTest, ManySkillSetsStayBoundedAndLeaveWithTheirTasks) {
  // At most 10 ended tasks are kept: cancelling the tasks purges most.
  StartDaemon("store: { kind: memory }\ntasks: { max_ended: 10 }\n");
  RawPeer client;
  ASSERT_EQ(client.Connect(daemon_->address()), "");
  auto welcome = client.Hello("client");
  ASSERT_TRUE(welcome && (*welcome)["type"] == "welcome") << (welcome ? welcome->dump() : "");

  constexpr int kTasks = 500;
  std::vector<json> submits;
  for (int i = 0; i < kTasks; ++i) {
    submits.push_back({{"type", "submit"},
                       {"req", i + 1},
                       {"skills", {"unique-skill-" + std::to_string(i)}},
                       {"payload", "x"}});
  }
  std::vector<json> accepted;
  Pipeline(client, submits, &accepted);

  std::string text = Metrics();
  const auto queued = DistinctLabelValues(text, "pincer_queue_depth_by_skills", "skills");
  EXPECT_EQ(queued.size(), kMaxSkillSets + 1) << "own series and other";
  EXPECT_EQ(queued.count("other"), 1u);
  EXPECT_EQ(Sample(text, R"(pincer_queue_depth_by_skills{skills="other"})"),
            kTasks - kMaxSkillSets);
  EXPECT_EQ(Sample(text, "pincer_queue_depth"), kTasks);
  // Skills that queued tasks need show in pincer_skill_workers (at 0), capped too.
  EXPECT_EQ(DistinctLabelValues(text, "pincer_skill_workers", "skill").size(), kMaxSkillSets + 1);

  std::vector<json> cancels;
  for (int i = 0; i < kTasks; ++i) {
    cancels.push_back({{"type", "cancel"}, {"req", kTasks + i + 1}, {"id", accepted[i]["id"]}});
  }
  Pipeline(client, cancels, nullptr);

  // The first 100 skill sets had series of their own; their tasks are
  // purged now, and the series are gone. The 10 tasks still kept are under
  // `other`.
  text = Metrics();
  EXPECT_EQ(DistinctLabelValues(text, "pincer_task_duration_seconds_count", "skill"),
            std::set<std::string>{"other"})
      << text;
  EXPECT_EQ(DistinctLabelValues(text, "pincer_queue_depth_by_skills", "skills"),
            std::set<std::string>{"other"})
      << text;
  EXPECT_EQ(Sample(text, R"(pincer_queue_depth_by_skills{skills="other"})"), 0);
  EXPECT_TRUE(DistinctLabelValues(text, "pincer_skill_workers", "skill").empty()) << text;
  EXPECT_EQ(Sample(text, R"(pincer_tasks_ended_total{state="cancelled"})"), kTasks);

  // The places freed serve new skill sets.
  Pipeline(client,
           {{{"type", "submit"}, {"req", 2 * kTasks + 1}, {"skills", {"fresh"}}, {"payload", 1}}},
           nullptr);
  text = Metrics();
  EXPECT_EQ(Sample(text, R"(pincer_queue_depth_by_skills{skills="fresh"})"), 1) << text;
}

TEST_F(MetricsEndpointTest, ARemovedPoolLeavesMetrics) {
  // `bad` exits at once and fails after 3 restarts; `idle` waits quietly.
  const std::string idle =
      "  - name: idle\n    command: [\"/bin/sh\", \"-c\", \"exec sleep 600\"]\n    stop_grace: "
      "1s\n";
  const std::string bad =
      "  - name: bad\n    command: [\"/bin/sh\", \"-c\", \"exit 1\"]\n    restart: { policy: "
      "on-failure, backoff: { initial: 20ms, max: 100ms }, max_restarts: 3, window: 1m }\n";
  const std::string base = "metrics_listen: \"127.0.0.1:0\"\nstore: { kind: memory }\npools:\n";
  StartDaemon("store: { kind: memory }\npools:\n" + idle + bad);
  std::string text;
  ASSERT_TRUE(WaitFor([&] {
    text = Metrics();
    return Sample(text, R"(pincer_pool_failed{pool="bad"})") == 1;
  })) << text;
  EXPECT_EQ(Sample(text, R"(pincer_pool_restarts_total{pool="bad"})"), 3) << text;
  EXPECT_EQ(Sample(text, R"(pincer_pool_failed{pool="idle"})"), 0) << text;
  EXPECT_EQ(Sample(text, R"(pincer_pool_restarts_total{pool="idle"})"), 0) << text;

  // metrics_listen stays as it was (it applies at the next start).
  daemon_->SetConfig(base + idle);
  const CtlResult reload = RunCtl(daemon_->address(), {"reload"});
  ASSERT_EQ(reload.exit_code, 0) << reload;
  text = Metrics();
  EXPECT_EQ(DistinctLabelValues(text, "pincer_pool_failed", "pool"), std::set<std::string>{"idle"})
      << text;
  EXPECT_EQ(DistinctLabelValues(text, "pincer_pool_restarts_total", "pool"),
            std::set<std::string>{"idle"})
      << text;
}

}  // namespace
}  // namespace pincer::test
