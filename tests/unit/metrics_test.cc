// pincerd's metrics driven without a socket: a real Dispatcher (memory
// store, ManualClock, FakeOutbox) reports to a Metrics whose /metrics text
// is read with Refresh() and Text(), as a scrape does. Covers the bounds on
// client- and worker-chosen label values (skill sets, skills), series that
// leave with their last task, worker or pool, and the /healthz state.
#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "store/memory_store.h"
#include "support/fake_outbox.h"
#include "support/metrics_text.h"

namespace pincer {
namespace {

using std::chrono::milliseconds;
using test::FakeOutbox;
using test::LabelValues;

constexpr std::size_t kCap = 3;  // skill sets with series of their own, in these tests

Config BaseConfig() {
  Config c;
  c.store.kind = StoreKind::kMemory;
  c.routing.outlier.enabled = false;
  c.tasks.timeout = milliseconds(0);
  c.tasks.result_ttl = std::chrono::hours(1);
  c.heartbeat.interval = std::chrono::hours(10);
  return c;
}

// The value of one sample, e.g. `pincer_queue_depth_by_skills{skills="a"}`; -1 if absent.
double Sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

class MetricsTest : public ::testing::Test {
 protected:
  MetricsTest() { Make(BaseConfig()); }

  void Make(const Config& config) {
    metrics_.reset();
    d_ = std::make_unique<Dispatcher>(config, store_, clock_, out_);
    metrics_ = std::make_unique<Metrics>(io_, *d_, kCap);
    d_->set_observer(metrics_.get());
  }

  TaskId Submit(std::vector<std::string> skills) {
    SubmitReq r;
    r.req = ++req_;
    r.skills = std::move(skills);
    r.payload = "\"p\"";
    auto outcome = d_->Submit(r);
    EXPECT_TRUE(outcome.status.ok()) << outcome.status.message();
    return outcome.task ? outcome.task->rec.id : 0;
  }

  void AddWorker(ConnId conn, std::vector<std::string> skills, std::string name = "w") {
    Hello h;
    h.role = "worker";
    h.proto = 1;
    h.name = std::move(name);
    h.skills = std::move(skills);
    h.capacity = 1;
    d_->AddWorker(conn, h);
  }

  std::string Scrape() {
    metrics_->Refresh();
    return metrics_->Text();
  }

  asio::io_context io_;
  ManualClock clock_;
  MemoryStore store_;
  FakeOutbox out_;
  std::unique_ptr<Dispatcher> d_;
  std::unique_ptr<Metrics> metrics_;
  int64_t req_ = 0;
};

TEST_F(MetricsTest, SkillSetsOverTheCapShareOther) {
  for (int i = 0; i < 10; ++i) Submit({"s" + std::to_string(i)});
  Submit({"s0"});  // a second task of a set that has its own series
  const std::string text = Scrape();
  const auto labels = LabelValues(text, "pincer_queue_depth_by_skills", "skills");
  EXPECT_EQ(labels, (std::multiset<std::string>{"s0", "s1", "s2", "other"})) << text;
  EXPECT_EQ(Sample(text, R"(pincer_queue_depth_by_skills{skills="s0"})"), 2) << text;
  EXPECT_EQ(Sample(text, R"(pincer_queue_depth_by_skills{skills="other"})"), 7) << text;
  EXPECT_EQ(Sample(text, "pincer_queue_depth"), 11) << text;
}

TEST_F(MetricsTest, DurationSeriesAreCappedAndLeaveWhenTheirTasksAreForgotten) {
  std::vector<TaskId> ids;
  for (int i = 0; i < 500; ++i) ids.push_back(Submit({"skill-" + std::to_string(i)}));
  for (TaskId id : ids) ASSERT_TRUE(d_->Cancel(id).ok());
  std::string text = Scrape();
  auto skills = LabelValues(text, "pincer_task_duration_seconds_count", "skill");
  EXPECT_EQ(skills.size(), kCap + 1) << text;  // one state (cancelled): 3 sets and other
  EXPECT_EQ(skills.count("other"), 1u) << text;
  EXPECT_EQ(Sample(text, R"(pincer_task_duration_seconds_count{skill="other",state="cancelled"})"),
            500 - kCap)
      << text;
  // Counters by state are not by skill set: they count every task.
  EXPECT_EQ(Sample(text, R"(pincer_tasks_ended_total{state="cancelled"})"), 500) << text;

  for (TaskId id : ids) d_->Forget(id);
  text = Scrape();
  skills = LabelValues(text, "pincer_task_duration_seconds_count", "skill");
  EXPECT_EQ(skills, (std::multiset<std::string>{"other"})) << text;
  EXPECT_TRUE(LabelValues(text, "pincer_queue_depth_by_skills", "skills").count("skill-0") == 0)
      << text;

  // The freed places serve new skill sets.
  Submit({"fresh"});
  text = Scrape();
  EXPECT_EQ(Sample(text, R"(pincer_queue_depth_by_skills{skills="fresh"})"), 1) << text;
}

TEST_F(MetricsTest, PurgedEndedTasksTakeTheirSeriesAlong) {
  Config c = BaseConfig();
  c.tasks.max_ended = 1;  // each end purges the task that ended before
  Make(c);
  for (const char* skill : {"a", "b", "c"}) ASSERT_TRUE(d_->Cancel(Submit({skill})).ok());
  const std::string text = Scrape();
  // Only c's task is still held.
  EXPECT_EQ(LabelValues(text, "pincer_task_duration_seconds_count", "skill"),
            (std::multiset<std::string>{"c"}))
      << text;
}

TEST_F(MetricsTest, PurgedByResultTtl) {
  AddWorker(1, {"a"});
  const TaskId id = Submit({"a"});
  ResultMsg m;
  m.id = TaskIdString(id);
  m.ok = true;
  m.output = "1";
  d_->OnResult(1, m);
  std::string text = Scrape();
  EXPECT_EQ(Sample(text, R"(pincer_task_duration_seconds_count{skill="a",state="succeeded"})"), 1)
      << text;
  clock_.Advance(std::chrono::hours(2));
  d_->RunDue();
  text = Scrape();
  EXPECT_TRUE(LabelValues(text, "pincer_task_duration_seconds_count", "skill").empty()) << text;
}

TEST_F(MetricsTest, ARetriedTaskKeepsItsSeries) {
  Config c = BaseConfig();
  c.tasks.max_ended = 1;
  Make(c);
  AddWorker(1, {"r"});
  const TaskId id = Submit({"r"});
  ResultMsg fail;
  fail.id = TaskIdString(id);
  fail.ok = false;
  fail.error = "no";
  fail.retryable = false;
  d_->OnResult(1, fail);
  ASSERT_EQ(d_->StateOf(id), TaskState::kFailed);
  ASSERT_TRUE(d_->Retry(id).ok());
  // Another task ends: the retried task's old record is purged, but the
  // task lives on.
  ASSERT_TRUE(d_->Cancel(Submit({"x"})).ok());
  EXPECT_EQ(d_->held(d_->FindTask(id)->cls), 1u);
  const std::string text = Scrape();
  EXPECT_EQ(Sample(text, R"(pincer_task_duration_seconds_count{skill="r",state="failed"})"), 1)
      << text;
}

TEST_F(MetricsTest, SkillSetsWithTheSameLabelShareASeries) {
  // ["a,b"] and ["a","b"] print alike; "any" is also the label of no skills.
  Submit({"a,b"});
  Submit({"a", "b"});
  Submit({});
  const TaskId any = Submit({"any"});
  std::string text = Scrape();
  EXPECT_EQ(Sample(text, R"(pincer_queue_depth_by_skills{skills="a,b"})"), 2) << text;
  EXPECT_EQ(Sample(text, R"(pincer_queue_depth_by_skills{skills="any"})"), 2) << text;
  d_->Forget(any);
  text = Scrape();
  EXPECT_EQ(Sample(text, R"(pincer_queue_depth_by_skills{skills="any"})"), 1) << text;
}

TEST_F(MetricsTest, WorkerSeriesLeaveWithTheWorkerAndSkillsAreCapped) {
  AddWorker(1, {"k1", "k2", "k3", "k4", "k5"}, "many");
  AddWorker(2, {"k1"}, "one");
  std::string text = Scrape();
  EXPECT_EQ(LabelValues(text, "pincer_skill_workers", "skill"),
            (std::multiset<std::string>{"k1", "k2", "k3", "other"}))
      << text;
  EXPECT_EQ(Sample(text, R"(pincer_skill_workers{skill="k1"})"), 2) << text;
  EXPECT_EQ(Sample(text, R"(pincer_skill_workers{skill="other"})"), 1) << text;  // "many"
  EXPECT_EQ(LabelValues(text, "pincer_worker_capacity", "name"),
            (std::multiset<std::string>{"many", "one"}))
      << text;

  d_->OnDisconnect(1, "gone");
  text = Scrape();
  EXPECT_EQ(LabelValues(text, "pincer_skill_workers", "skill"), (std::multiset<std::string>{"k1"}))
      << text;
  EXPECT_EQ(LabelValues(text, "pincer_worker_capacity", "name"),
            (std::multiset<std::string>{"one"}))
      << text;
  EXPECT_EQ(LabelValues(text, "pincer_worker_inflight", "name"),
            (std::multiset<std::string>{"one"}))
      << text;

  // A skill a queued task needs stays at 0 while no worker has it.
  Submit({"gpu"});
  d_->OnDisconnect(2, "gone");
  text = Scrape();
  EXPECT_EQ(Sample(text, R"(pincer_skill_workers{skill="gpu"})"), 0) << text;
  EXPECT_EQ(LabelValues(text, "pincer_skill_workers", "skill"), (std::multiset<std::string>{"gpu"}))
      << text;
  EXPECT_TRUE(LabelValues(text, "pincer_worker_capacity", "name").empty()) << text;
}

TEST_F(MetricsTest, PoolSeriesFollowTheConfiguredPools) {
  metrics_->SetPools({"a", "b"});
  metrics_->PoolRestarted("b");
  metrics_->PoolFailed("b");
  std::string text = Scrape();
  EXPECT_EQ(Sample(text, R"(pincer_pool_restarts_total{pool="a"})"), 0) << text;
  EXPECT_EQ(Sample(text, R"(pincer_pool_restarts_total{pool="b"})"), 1) << text;
  EXPECT_EQ(Sample(text, R"(pincer_pool_failed{pool="b"})"), 1) << text;

  metrics_->SetPools({"a"});  // b removed by a reload
  text = Scrape();
  EXPECT_EQ(LabelValues(text, "pincer_pool_restarts_total", "pool"),
            (std::multiset<std::string>{"a"}))
      << text;
  EXPECT_EQ(LabelValues(text, "pincer_pool_failed", "pool"), (std::multiset<std::string>{"a"}))
      << text;
}

TEST_F(MetricsTest, HealthSaysWhyItIsNotReady) {
  EXPECT_EQ(metrics_->Health(), (std::pair<int, std::string>{503, "not ready: starting\n"}));
  metrics_->set_ready(true);
  EXPECT_EQ(metrics_->Health(), (std::pair<int, std::string>{200, "ok\n"}));
  metrics_->SetStoreStatus(Status("store", "disk I/O error"));
  EXPECT_EQ(metrics_->Health(),
            (std::pair<int, std::string>{
                503, "not ready: the task store cannot commit: disk I/O error\n"}));
  metrics_->SetStoreStatus(Status::Ok());
  EXPECT_EQ(metrics_->Health(), (std::pair<int, std::string>{200, "ok\n"}));
  metrics_->SetStoreStatus(Status("store", "disk I/O error"));
  metrics_->set_ready(false);  // shutting down says so first
  EXPECT_EQ(metrics_->Health(), (std::pair<int, std::string>{503, "not ready: shutting down\n"}));
}

TEST(DispatcherHeldTest, RecoveredTasksCountUntilPurged) {
  ManualClock clock;
  MemoryStore store;
  FakeOutbox out;
  Config c = BaseConfig();
  c.tasks.max_ended = 1;
  Dispatcher d(c, store, clock, out);
  // Recovered out of end order: the first purge sorts the archive, which
  // must keep each record's skill class.
  auto ended = [&](TaskId id, const std::string& skill, int64_t ended_ms) {
    TaskRecord r;
    r.id = id;
    r.skills = {skill};
    r.state = TaskState::kSucceeded;
    r.created_ms = 1;
    r.ended_ms = ended_ms;
    r.max_attempts = 1;
    r.payload = "1";
    d.Restore(std::move(r));
  };
  ended(1, "late", clock.UnixMillis() - 10);
  ended(2, "early", clock.UnixMillis() - 1000);
  ended(3, "late", clock.UnixMillis() - 5);
  d.RunDue();  // sorts, then purges to max_ended (keeps the last to end: t3)
  SubmitReq r;
  r.req = 1;
  r.skills = {"late"};
  r.payload = "1";
  auto live = d.Submit(r);
  ASSERT_TRUE(live.task);
  const ClassId late = live.task->cls;
  EXPECT_EQ(d.held(late), 2u);  // t3 and the new one
  r.skills = {"early"};
  r.req = 2;
  auto early = d.Submit(r);
  ASSERT_TRUE(early.task);
  EXPECT_EQ(d.held(early.task->cls), 1u);  // t2 was purged
}

}  // namespace
}  // namespace pincer
