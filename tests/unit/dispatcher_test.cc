// The task state machine and placement, driven by calls: a ManualClock for
// time (deadlines fire on RunDue after Advance), a FakeOutbox for what the
// dispatcher sends, a store that only records the changes it is given. No
// sockets, no sleeps.
#include "core/dispatcher.h"

#include <gtest/gtest.h>

#include <ctime>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/clock.h"
#include "store/memory_store.h"
#include "store/store.h"
#include "support/fake_outbox.h"

namespace pincer {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using test::FakeOutbox;

constexpr ConnId kClient = 1000;  // a client connection waiting for end events

// Keeps nothing, as the memory store, but lists the changes it was given.
class RecordingStore final : public MemoryStore {
 public:
  struct Change {
    char op;  // 'i'nsert, 'u'pdate, 'e'rase
    TaskId id;
    TaskState state;
  };
  void Insert(const TaskRecord& r) override { changes.push_back({'i', r.id, r.state}); }
  void Update(const TaskRecord& r) override { changes.push_back({'u', r.id, r.state}); }
  void Erase(TaskId id) override { changes.push_back({'e', id, TaskState::kQueued}); }

  std::vector<Change> changes;
};

Config BaseConfig() {
  Config c;
  c.store.kind = StoreKind::kMemory;
  c.routing.strategy = "least_connections";
  c.routing.affinity_wait = seconds(10);
  c.routing.outlier.enabled = false;  // ejection has its own tests
  c.tasks.timeout = milliseconds(0);  // no per-attempt timeout unless a test sets one
  c.tasks.max_attempts = 3;
  c.tasks.result_ttl = std::chrono::hours(1);
  // Retries go at once unless a test means a backoff (those set their own).
  c.tasks.retry_backoff = {milliseconds(0), milliseconds(0), 0};
  // Long enough that silent test workers never die unless a test means it.
  c.heartbeat.interval = std::chrono::hours(10);
  c.heartbeat.misses = 3;
  // Recovered running tasks are placed at once unless a test means to
  // hold them for their worker (adoption has its own tests).
  c.heartbeat.adopt_grace = milliseconds(0);
  return c;
}

struct SubmitOpts {
  std::vector<std::string> skills;
  std::string payload = "\"p\"";
  int64_t priority = 0;
  std::optional<milliseconds> timeout;
  std::optional<int64_t> max_attempts;
  std::string session;
  std::string key;
};

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest() { Make(BaseConfig()); }

  void Make(const Config& config) {
    d_ = std::make_unique<Dispatcher>(config, store_, clock_, out_);
  }
  // A dispatcher that keeps at most `max_ended` ended tasks.
  void MakeKeepingEnded(std::size_t max_ended) {
    Config c = BaseConfig();
    c.tasks.max_ended = max_ended;
    Make(c);
  }

  std::string AddWorker(ConnId conn, std::vector<std::string> skills = {}, int capacity = 1,
                        std::string name = "") {
    Hello h;
    h.role = "worker";
    h.proto = 1;
    h.name = name;
    h.skills = std::move(skills);
    h.capacity = capacity;
    return d_->AddWorker(conn, h);
  }

  // A submitted task, looked up by id at each use: a task that ends goes
  // into the dispatcher's archive and its Task object serves later submits.
  struct TaskHandle {
    Dispatcher* d = nullptr;
    TaskId id = 0;
    const Task* operator->() const {
      const Task* t = d->FindTask(id);
      EXPECT_NE(t, nullptr) << "task t" << id << " is gone";
      return t;
    }
    const Task& operator*() const { return *operator->(); }
  };

  TaskHandle Submit(const SubmitOpts& o = {}) {
    SubmitReq r;
    r.req = ++req_;
    r.skills = o.skills;
    r.payload = o.payload;
    r.priority = o.priority;
    r.timeout = o.timeout;
    r.max_attempts = o.max_attempts;
    r.session = o.session;
    r.key = o.key;
    auto outcome = d_->Submit(r);
    EXPECT_TRUE(outcome.status.ok()) << outcome.status.code() << ": " << outcome.status.message();
    EXPECT_NE(outcome.task, nullptr);
    if (!outcome.task) return {d_.get(), 0};
    d_->AddWaiter(outcome.task->rec.id, kClient, r.req);
    return {d_.get(), outcome.task->rec.id};
  }

  // Ids of the tasks sent to `conn` since the last look.
  std::vector<std::string> TasksSent(ConnId conn) {
    std::vector<std::string> ids;
    for (const json& m : out_.TakeType(conn, "task")) ids.push_back(m["id"]);
    return ids;
  }

  void Result(ConnId conn, const TaskHandle& t, bool ok, const std::string& error = "",
              bool retryable = true) {
    Result(conn, t.id, ok, error, retryable);
  }
  void Result(ConnId conn, TaskId id, bool ok, const std::string& error = "",
              bool retryable = true) {
    ResultMsg m;
    m.id = TaskIdString(id);
    m.ok = ok;
    if (ok) m.output = R"({"done":true})";
    m.error = error;
    m.retryable = retryable;
    d_->OnResult(conn, m);
  }

  // The end events the client got, by task id.
  std::vector<json> Ends() { return out_.TakeType(kClient, "end"); }

  void Advance(milliseconds d) {
    clock_.Advance(d);
    d_->RunDue();
  }

  ManualClock clock_;
  RecordingStore store_;
  FakeOutbox out_;
  std::unique_ptr<Dispatcher> d_;
  int64_t req_ = 0;
};

TEST_F(DispatcherTest, ATaskRunsOnAFreeWorkerAndSucceeds) {
  AddWorker(1, {"echo"});
  SubmitOpts o;
  o.skills = {"echo"};
  o.payload = R"({"q":1})";
  o.timeout = seconds(30);
  TaskHandle t = Submit(o);
  auto sent = out_.TakeType(1, "task");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["id"], t->id_string());
  EXPECT_EQ(sent[0]["payload"], json({{"q", 1}}));
  EXPECT_EQ(sent[0]["attempt"], 1);
  EXPECT_EQ(sent[0]["skills"], json({"echo"}));
  EXPECT_TRUE(sent[0]["session"].is_null());
  EXPECT_EQ(sent[0]["deadline_ms"], clock_.UnixMillis() + 30000);
  EXPECT_EQ(t->rec.state, TaskState::kRunning);
  EXPECT_EQ(d_->stats().running, 1u);

  Result(1, t, true);
  EXPECT_EQ(t->rec.state, TaskState::kSucceeded);
  EXPECT_EQ(t->rec.attempts, 1);
  EXPECT_EQ(d_->stats().succeeded, 1u);
  EXPECT_EQ(d_->stats().running, 0u);
  EXPECT_EQ(d_->workers().Find(1)->completed, 1u);
  auto ends = Ends();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0]["state"], "succeeded");
  EXPECT_EQ(ends[0]["output"], json({{"done", true}}));
  EXPECT_EQ(ends[0]["worker"], "w1");
  EXPECT_EQ(ends[0]["attempts"], 1);
}

TEST_F(DispatcherTest, AttemptTimeoutSendsCancelRequeuesThenEndsTimedOutWithEveryError) {
  AddWorker(1);
  SubmitOpts o;
  o.timeout = seconds(5);
  o.max_attempts = 2;
  TaskHandle t = Submit(o);
  EXPECT_EQ(TasksSent(1).size(), 1u);

  Advance(milliseconds(4999));
  EXPECT_EQ(t->rec.state, TaskState::kRunning) << "not due yet";
  Advance(milliseconds(1));
  auto msgs = out_.Take(1);
  ASSERT_EQ(msgs.size(), 2u) << "cancel, then the second attempt";
  EXPECT_EQ(msgs[0]["type"], "cancel");
  EXPECT_EQ(msgs[0]["id"], t->id_string());
  EXPECT_EQ(msgs[1]["type"], "task");
  EXPECT_EQ(msgs[1]["attempt"], 2);
  EXPECT_EQ(t->rec.state, TaskState::kRunning);
  ASSERT_EQ(t->rec.errors.size(), 1u);
  EXPECT_NE(t->rec.errors[0].error.find("timed out"), std::string::npos) << t->rec.errors[0].error;

  // Attempt 2 times out as well: the task ends.
  Advance(seconds(5));
  msgs = out_.Take(1);
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0]["type"], "cancel");
  EXPECT_EQ(t->rec.state, TaskState::kTimedOut);
  EXPECT_EQ(t->rec.attempts, 2);
  ASSERT_EQ(t->rec.errors.size(), 2u);
  EXPECT_EQ(t->rec.errors[0].attempt, 1);
  EXPECT_EQ(t->rec.errors[1].attempt, 2);
  EXPECT_EQ(t->rec.errors[1].worker, "w1");
  EXPECT_EQ(d_->stats().timed_out, 1u);
  EXPECT_EQ(d_->stats().running, 0u);
  auto ends = Ends();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0]["state"], "timed_out");
  EXPECT_EQ(ends[0]["errors"].size(), 2u);

  // The worker's slot is free again, and a result now is refused.
  Result(1, t, true);
  auto err = out_.TakeType(1, "error");
  ASSERT_EQ(err.size(), 1u);
  EXPECT_EQ(err[0]["code"], "unknown_task");
  EXPECT_EQ(t->rec.state, TaskState::kTimedOut);
  EXPECT_EQ(d_->stats().succeeded, 0u);
  EXPECT_TRUE(d_->workers().index().HasFreeSlot(1));
}

TEST_F(DispatcherTest, RetryableFailureRequeuesNonRetryableEndsAtOnce) {
  AddWorker(1);
  AddWorker(2);
  TaskHandle a = Submit();
  TaskHandle b = Submit();
  const std::string wa = a->rec.worker;
  const ConnId ca = wa == "w1" ? 1 : 2;
  Result(ca, a, false, "model returned 503", /*retryable=*/true);
  EXPECT_EQ(a->rec.state, TaskState::kRunning) << "back in the queue and placed again";
  EXPECT_EQ(a->rec.attempts, 2);
  ASSERT_EQ(a->rec.errors.size(), 1u);
  EXPECT_EQ(a->rec.errors[0].error, "model returned 503");
  EXPECT_EQ(a->rec.errors[0].worker, wa);

  const ConnId cb = b->rec.worker == "w1" ? 1 : 2;
  Result(cb, b, false, "bad input", /*retryable=*/false);
  EXPECT_EQ(b->rec.state, TaskState::kFailed);
  EXPECT_EQ(b->rec.attempts, 1);
  ASSERT_EQ(b->rec.errors.size(), 1u);
  EXPECT_EQ(b->rec.error, "bad input");
  EXPECT_EQ(d_->stats().failed, 1u);
}

TEST_F(DispatcherTest, KeepsFailingEndsFailedAfterMaxAttemptsWithEveryError) {
  AddWorker(1);
  SubmitOpts o;
  o.max_attempts = 3;
  TaskHandle t = Submit(o);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_EQ(TasksSent(1).size(), 1u) << "attempt " << i;
    EXPECT_EQ(t->rec.attempts, i);
    Result(1, t, false, "boom " + std::to_string(i));
  }
  EXPECT_TRUE(TasksSent(1).empty());
  EXPECT_EQ(t->rec.state, TaskState::kFailed);
  ASSERT_EQ(t->rec.errors.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(t->rec.errors[i].attempt, i + 1);
    EXPECT_EQ(t->rec.errors[i].error, "boom " + std::to_string(i + 1));
  }
  auto ends = Ends();
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0]["state"], "failed");
  EXPECT_EQ(ends[0]["error"], "boom 3");
  EXPECT_EQ(ends[0]["errors"].size(), 3u);
  EXPECT_EQ(d_->workers().Find(1)->failed, 3u);
}

TEST_F(DispatcherTest, MaxAttemptsDefaultsFromTheConfig) {
  Config c = BaseConfig();
  c.tasks.max_attempts = 2;
  Make(c);
  AddWorker(1);
  TaskHandle t = Submit();
  EXPECT_EQ(t->rec.max_attempts, 2);
  Result(1, t, false, "x");
  Result(1, t, false, "y");
  EXPECT_EQ(t->rec.state, TaskState::kFailed);
  EXPECT_EQ(t->rec.errors.size(), 2u);
}

TEST_F(DispatcherTest, WorkerDisconnectRequeuesItsTasksElsewhere) {
  AddWorker(1, {}, 2);
  TaskHandle a = Submit();
  TaskHandle b = Submit();
  EXPECT_EQ(TasksSent(1).size(), 2u);
  AddWorker(2, {}, 2);
  d_->OnDisconnect(1, "worker w1 disconnected");
  EXPECT_EQ(d_->workers().Find(1), nullptr);
  EXPECT_EQ(TasksSent(2).size(), 2u);
  for (const TaskHandle& t : {a, b}) {
    EXPECT_EQ(t->rec.state, TaskState::kRunning);
    EXPECT_EQ(t->rec.attempts, 2);
    EXPECT_EQ(t->rec.worker, "w2");
    ASSERT_EQ(t->rec.errors.size(), 1u);
    EXPECT_EQ(t->rec.errors[0].worker, "w1");
    EXPECT_EQ(t->rec.errors[0].error, "worker w1 disconnected");
    Result(2, t, true);
    EXPECT_EQ(t->rec.state, TaskState::kSucceeded);
  }
  // A result from the gone connection changes nothing.
  Result(1, a, false, "late");
  EXPECT_EQ(a->rec.state, TaskState::kSucceeded);
}

TEST_F(DispatcherTest, DisconnectWithNoOtherWorkerRequeuesUntilOneComes) {
  AddWorker(1);
  TaskHandle t = Submit();
  d_->OnDisconnect(1, "gone");
  EXPECT_EQ(t->rec.state, TaskState::kQueued);
  EXPECT_EQ(d_->stats().queued, 1u);
  EXPECT_EQ(d_->stats().running, 0u);
  AddWorker(2);
  EXPECT_EQ(TasksSent(2).size(), 1u);
  EXPECT_EQ(t->rec.attempts, 2);
}

TEST_F(DispatcherTest, MissedHeartbeatsDeclareAWorkerDeadAndRequeue) {
  Config c = BaseConfig();
  c.heartbeat.interval = seconds(1);
  c.heartbeat.misses = 3;
  Make(c);
  AddWorker(1);
  TaskHandle t = Submit();
  AddWorker(2);
  // Worker 2 keeps talking, worker 1 goes silent.
  for (int i = 0; i < 2; ++i) {
    Advance(seconds(1));
    d_->Touch(2);
  }
  Advance(milliseconds(999));
  EXPECT_NE(d_->workers().Find(1), nullptr) << "2.999s of silence: still alive";
  EXPECT_FALSE(out_.closed(1));
  d_->Touch(2);
  Advance(milliseconds(1));  // 3s = interval * misses
  EXPECT_EQ(d_->workers().Find(1), nullptr);
  EXPECT_TRUE(out_.closed(1)) << "its connection is closed so a late result cannot land";
  EXPECT_EQ(t->rec.worker, "w2");
  EXPECT_EQ(t->rec.attempts, 2);
  ASSERT_EQ(t->rec.errors.size(), 1u);
  EXPECT_NE(t->rec.errors[0].error.find("heartbeat"), std::string::npos) << t->rec.errors[0].error;
  EXPECT_EQ(TasksSent(2).size(), 1u);
  // Worker 2 lives on as long as it speaks.
  for (int i = 0; i < 10; ++i) {
    Advance(seconds(1));
    d_->OnHeartbeat(2, HeartbeatMsg{0.5, 1024});
    d_->Touch(2);
  }
  ASSERT_NE(d_->workers().Find(2), nullptr);
  EXPECT_DOUBLE_EQ(d_->workers().Find(2)->cpu, 0.5);
  Result(2, t, true);
  EXPECT_EQ(t->rec.state, TaskState::kSucceeded);
  EXPECT_EQ(t->rec.attempts, 2);
}

TEST_F(DispatcherTest, IdempotencyKeyReturnsTheSameTask) {
  SubmitOpts o;
  o.key = "order-7";
  TaskHandle first = Submit(o);
  SubmitReq again;
  again.req = 99;
  again.key = "order-7";
  again.payload = o.payload;  // another payload is a conflict (ARepeatedKeyNeedsTheSamePayload)
  auto outcome = d_->Submit(again);
  ASSERT_TRUE(outcome.status.ok());
  EXPECT_TRUE(outcome.existing);
  EXPECT_EQ(outcome.task->rec.id, first.id);
  EXPECT_EQ(d_->stats().submitted, 1u);
  EXPECT_EQ(d_->tasks().size(), 1u);
  SubmitReq other;
  other.req = 100;
  other.key = "order-8";
  auto o2 = d_->Submit(other);
  EXPECT_FALSE(o2.existing);
  EXPECT_NE(o2.task->rec.id, first.id);
}

TEST_F(DispatcherTest, CancelQueuedAndRunningTasks) {
  TaskHandle queued = Submit();  // no worker yet
  EXPECT_TRUE(d_->Cancel(queued->rec.id).ok());
  EXPECT_EQ(queued->rec.state, TaskState::kCancelled);
  EXPECT_EQ(d_->stats().queued, 0u);
  EXPECT_EQ(d_->stats().cancelled, 1u);

  AddWorker(1);
  EXPECT_TRUE(TasksSent(1).empty()) << "the cancelled task is not run";
  TaskHandle running = Submit();
  TaskHandle next = Submit();
  EXPECT_EQ(running->rec.state, TaskState::kRunning);
  EXPECT_EQ(next->rec.state, TaskState::kQueued);
  out_.Take(1);
  EXPECT_TRUE(d_->Cancel(running->rec.id).ok());
  auto msgs = out_.Take(1);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0]["type"], "cancel");
  EXPECT_EQ(msgs[0]["id"], running->id_string());
  EXPECT_EQ(msgs[1]["type"], "task") << "the freed slot takes the next task";
  EXPECT_EQ(msgs[1]["id"], next->id_string());
  EXPECT_EQ(running->rec.state, TaskState::kCancelled);

  // The cancelled attempt's late result is refused and changes nothing.
  Result(1, running, true);
  auto err = out_.TakeType(1, "error");
  ASSERT_EQ(err.size(), 1u);
  EXPECT_EQ(err[0]["code"], "unknown_task");
  EXPECT_EQ(running->rec.state, TaskState::kCancelled);

  Status again = d_->Cancel(running->rec.id);
  EXPECT_EQ(again.code(), "invalid_state");
  EXPECT_EQ(d_->Cancel(424242).code(), "not_found");
  auto ends = Ends();
  ASSERT_EQ(ends.size(), 2u);
  EXPECT_EQ(ends[0]["state"], "cancelled");
  EXPECT_EQ(ends[1]["state"], "cancelled");
}

TEST_F(DispatcherTest, ResultsForUnknownOrForeignTasksAreRefusedAndChangeNothing) {
  AddWorker(1);
  AddWorker(2);
  TaskHandle t = Submit();
  const ConnId holder = t->rec.worker == "w1" ? 1 : 2;
  const ConnId other = holder == 1 ? 2 : 1;
  out_.Clear();
  const DispatcherStats before = d_->stats();

  Result(other, t, true);  // foreign: sent to someone else
  ResultMsg unknown;
  unknown.id = "t999";
  unknown.ok = true;
  d_->OnResult(other, unknown);
  ResultMsg garbage;
  garbage.id = "not-a-task";
  d_->OnResult(holder, garbage);
  ProgressMsg progress;
  progress.id = t->id_string();
  progress.data = "1";
  d_->OnProgress(other, progress);
  d_->OnResult(4242, unknown);  // not even a worker

  auto errs = out_.TakeType(other, "error");
  ASSERT_EQ(errs.size(), 3u);
  for (const json& e : errs) EXPECT_EQ(e["code"], "unknown_task");
  auto herrs = out_.TakeType(holder, "error");
  ASSERT_EQ(herrs.size(), 1u);
  EXPECT_EQ(herrs[0]["code"], "unknown_task");

  EXPECT_EQ(t->rec.state, TaskState::kRunning);
  EXPECT_EQ(t->rec.worker, holder == 1 ? "w1" : "w2");
  EXPECT_TRUE(t->progress.empty());
  EXPECT_EQ(d_->stats().succeeded, before.succeeded);
  EXPECT_EQ(d_->stats().running, before.running);
  EXPECT_EQ(d_->workers().Find(other)->completed, 0u);
  EXPECT_TRUE(d_->workers().index().HasFreeSlot(other));
  EXPECT_FALSE(d_->workers().index().HasFreeSlot(holder));

  // The holder's own result still works.
  Result(holder, t, true);
  EXPECT_EQ(t->rec.state, TaskState::kSucceeded);
  // And a second result for the ended task is refused.
  Result(holder, t, false, "again");
  EXPECT_EQ(out_.TakeType(holder, "error").size(), 1u);
  EXPECT_EQ(t->rec.state, TaskState::kSucceeded);
  EXPECT_EQ(d_->stats().succeeded, 1u);
  EXPECT_EQ(d_->stats().failed, 0u);
}

TEST_F(DispatcherTest, SessionTasksRunOneAtATimeInOrderOnTheirHome) {
  AddWorker(1, {}, 4);
  AddWorker(2, {}, 4);
  SubmitOpts o;
  o.session = "chat-42";
  TaskHandle s1 = Submit(o);
  TaskHandle s2 = Submit(o);
  TaskHandle s3 = Submit(o);
  const std::string home = s1->rec.worker;
  const ConnId home_conn = home == "w1" ? 1 : 2;
  EXPECT_EQ(s1->rec.state, TaskState::kRunning);
  EXPECT_EQ(s2->rec.state, TaskState::kQueued);
  EXPECT_EQ(s3->rec.state, TaskState::kQueued);
  EXPECT_EQ(d_->WhyWaiting(*s2), "its session's previous task is still running");

  // Other work lands on the home too (free slots), it does not matter.
  for (int i = 0; i < 3; ++i) Submit();

  std::vector<std::string> order;
  for (const TaskHandle& t : {s1, s2, s3}) {
    ASSERT_EQ(t->rec.state, TaskState::kRunning);
    EXPECT_EQ(t->rec.worker, home);
    order.push_back(t->id_string());
    for (const TaskHandle& later : {s1, s2, s3}) {
      if (later->seq > t->seq) {
        EXPECT_EQ(later->rec.state, TaskState::kQueued);
      }
    }
    Result(home_conn, t, true);
  }
  EXPECT_EQ(order, (std::vector<std::string>{s1->id_string(), s2->id_string(), s3->id_string()}));
}

TEST_F(DispatcherTest, SessionWaitsForItsBusyHomeThenSpillsAndTheNewWorkerBecomesHome) {
  AddWorker(1);  // H
  SubmitOpts so;
  so.session = "chat";
  TaskHandle s1 = Submit(so);
  ASSERT_EQ(s1->rec.worker, "w1");
  Result(1, s1, true);
  AddWorker(2);  // O
  TaskHandle x1 = Submit();
  TaskHandle x2 = Submit();
  ASSERT_EQ(x1->rec.state, TaskState::kRunning);
  ASSERT_EQ(x2->rec.state, TaskState::kRunning);
  const ConnId x1c = x1->rec.worker == "w1" ? 1 : 2;
  const ConnId x2c = x1c == 1 ? 2 : 1;
  TaskHandle busy_on_h = x1c == 1 ? x1 : x2;
  TaskHandle busy_on_o = x1c == 1 ? x2 : x1;
  (void)x2c;

  TaskHandle s2 = Submit(so);  // its home w1 is full: wait for it
  EXPECT_EQ(s2->rec.state, TaskState::kQueued);
  EXPECT_EQ(d_->WhyWaiting(*s2), "waiting for its session's worker w1");
  Result(2, busy_on_o, true);  // O is free, but s2 keeps waiting for its home
  EXPECT_EQ(s2->rec.state, TaskState::kQueued);
  Advance(milliseconds(9999));
  EXPECT_EQ(s2->rec.state, TaskState::kQueued);
  Advance(milliseconds(1));  // affinity_wait over: spill to O
  EXPECT_EQ(s2->rec.state, TaskState::kRunning);
  EXPECT_EQ(s2->rec.worker, "w2");

  Result(1, busy_on_h, true);  // H is free now
  Result(2, s2, true);
  TaskHandle s3 = Submit(so);
  EXPECT_EQ(s3->rec.worker, "w2") << "O became the session's home";
  Result(2, s3, true);

  // When the home is gone, the next task goes to another worker.
  d_->OnDisconnect(2, "gone");
  TaskHandle s4 = Submit(so);
  EXPECT_EQ(s4->rec.worker, "w1");
}

TEST_F(DispatcherTest, ASessionTaskWaitingForItsHomeRunsThereWhenItFrees) {
  AddWorker(1);
  AddWorker(2);
  SubmitOpts so;
  so.session = "s";
  TaskHandle s1 = Submit(so);
  const ConnId home = s1->rec.worker == "w1" ? 1 : 2;
  Result(home, s1, true);
  SubmitOpts plain;
  TaskHandle x = Submit(plain);
  TaskHandle y = Submit(plain);  // both workers busy now
  TaskHandle s2 = Submit(so);
  EXPECT_EQ(s2->rec.state, TaskState::kQueued);
  TaskHandle on_home = x->rec.worker == s1->rec.worker ? x : y;
  Result(home, on_home, true);
  EXPECT_EQ(s2->rec.state, TaskState::kRunning);
  EXPECT_EQ(s2->rec.worker, s1->rec.worker);
}

TEST_F(DispatcherTest, UnroutableTasksAreCountedAndSayWhy) {
  AddWorker(1, {"echo"});
  SubmitOpts gpu;
  gpu.skills = {"gpu"};
  TaskHandle g = Submit(gpu);
  SubmitOpts both;
  both.skills = {"echo", "gpu", "text"};
  TaskHandle b = Submit(both);
  SubmitOpts echo;
  echo.skills = {"echo"};
  Submit(echo);                  // runs
  TaskHandle e2 = Submit(echo);  // waits for the busy echo worker
  EXPECT_EQ(d_->Unroutable(), 2u);
  EXPECT_EQ(d_->WhyWaiting(*g), "no worker has skill gpu");
  EXPECT_NE(d_->WhyWaiting(*b).find("gpu"), std::string::npos) << d_->WhyWaiting(*b);
  EXPECT_NE(d_->WhyWaiting(*b).find("text"), std::string::npos) << d_->WhyWaiting(*b);
  EXPECT_EQ(d_->WhyWaiting(*e2), "all 1 matching workers are full");

  AddWorker(2, {"gpu"});  // g runs at once
  EXPECT_EQ(g->rec.state, TaskState::kRunning);
  EXPECT_EQ(g->rec.worker, "w2");
  EXPECT_EQ(d_->Unroutable(), 1u);
  ASSERT_EQ(d_->Drain("w2").code(), "");
  EXPECT_EQ(out_.TakeType(2, "drain").size(), 1u);
  TaskHandle g2 = Submit(gpu);
  EXPECT_EQ(g2->rec.state, TaskState::kQueued);
  EXPECT_EQ(d_->Unroutable(), 1u) << "a draining gpu worker is still connected";
  EXPECT_EQ(d_->WhyWaiting(*g2), "all 1 matching workers are draining or ejected");
}

TEST_F(DispatcherTest, AWaitingTaskForAMissingSkillEndsTimedOutAfterItsTimeout) {
  SubmitOpts o;
  o.skills = {"gpu"};
  o.timeout = seconds(2);
  TaskHandle t = Submit(o);
  Advance(seconds(2));
  EXPECT_EQ(t->rec.state, TaskState::kTimedOut);
  EXPECT_NE(t->rec.error.find("no worker has skill gpu"), std::string::npos) << t->rec.error;
  EXPECT_EQ(d_->Unroutable(), 0u);
}

TEST_F(DispatcherTest, PriorityOrdersTheQueueWithoutHeadOfLineBlocking) {
  SubmitOpts gpu;
  gpu.skills = {"gpu"};
  gpu.priority = 100;
  TaskHandle top = Submit(gpu);
  std::vector<TaskHandle> echo;
  for (int p : {0, 5, 0, 9, 5}) {
    SubmitOpts o;
    o.skills = {"echo"};
    o.priority = p;
    echo.push_back(Submit(o));
  }
  AddWorker(1, {"echo"});
  std::vector<std::string> ran;
  for (int i = 0; i < 5; ++i) {
    auto sent = TasksSent(1);
    ASSERT_EQ(sent.size(), 1u);
    ran.push_back(sent[0]);
    Result(1, ParseTaskId(sent[0]), true);
  }
  // 9, 5 (older), 5, 0 (older), 0
  EXPECT_EQ(ran, (std::vector<std::string>{echo[3]->id_string(), echo[1]->id_string(),
                                           echo[4]->id_string(), echo[0]->id_string(),
                                           echo[2]->id_string()}));
  EXPECT_EQ(top->rec.state, TaskState::kQueued);
}

TEST_F(DispatcherTest, ADrainingWorkerGetsNothingNew) {
  AddWorker(1, {}, 2, "alpha");
  TaskHandle a = Submit();
  ASSERT_TRUE(d_->Drain("alpha").ok());
  EXPECT_EQ(out_.TakeType(1, "drain").size(), 1u);
  TaskHandle b = Submit();
  EXPECT_EQ(b->rec.state, TaskState::kQueued);
  Result(1, a, true);
  EXPECT_EQ(a->rec.state, TaskState::kSucceeded);
  EXPECT_EQ(b->rec.state, TaskState::kQueued);
  EXPECT_EQ(d_->Drain("nobody").code(), "not_found");
}

TEST_F(DispatcherTest, ABackloggedWorkerIsOfferedNothingUntilItIsClearedThenFilledAtOnce) {
  AddWorker(1, {}, 3);
  TaskHandle a = Submit();
  EXPECT_EQ(TasksSent(1).size(), 1u);
  d_->SetBacklogged(1, true);
  TaskHandle b = Submit();
  TaskHandle c = Submit();
  EXPECT_EQ(b->rec.state, TaskState::kQueued);
  EXPECT_EQ(c->rec.state, TaskState::kQueued);
  EXPECT_TRUE(TasksSent(1).empty());
  // What it runs still ends; its freed slot is not refilled meanwhile.
  Result(1, a, true);
  EXPECT_EQ(a->rec.state, TaskState::kSucceeded);
  EXPECT_TRUE(TasksSent(1).empty());
  // Another worker takes what waits.
  AddWorker(2, {}, 1);
  EXPECT_EQ(TasksSent(2), std::vector<std::string>({b->id_string()}));
  d_->SetBacklogged(1, false);
  EXPECT_EQ(TasksSent(1), std::vector<std::string>({c->id_string()}));
  EXPECT_FALSE(d_->workers().Find(1)->backlogged);
  // Unknown workers and repeats change nothing.
  d_->SetBacklogged(99, true);
  d_->SetBacklogged(1, false);
  EXPECT_EQ(c->rec.state, TaskState::kRunning);
}

TEST_F(DispatcherTest, AClientsWaitsAreWeighedUntilTheirEndIsSent) {
  AddWorker(1);
  SubmitOpts o;
  o.payload = "\"" + std::string(1000, 'x') + "\"";
  TaskHandle t = Submit(o);  // a waiter for kClient
  EXPECT_EQ(out_.waiting(kClient), static_cast<int64_t>(o.payload.size()) + Dispatcher::kWaitBytes);
  d_->AddWaiter(t.id, 77, 1);
  EXPECT_EQ(out_.waiting(77), static_cast<int64_t>(o.payload.size()) + Dispatcher::kWaitBytes);
  Result(1, t, true);
  EXPECT_EQ(Ends().size(), 1u);
  EXPECT_EQ(out_.waiting(kClient), 0);
  EXPECT_EQ(out_.waiting(77), 0);
  // A wait on an ended task is answered at once and weighs nothing.
  d_->AddWaiter(t.id, 78, 1);
  EXPECT_EQ(out_.TakeType(78, "end").size(), 1u);
  EXPECT_EQ(out_.waiting(78), 0);
}

TEST_F(DispatcherTest, ResultsArePurgedAfterResultTtl) {
  AddWorker(1);
  SubmitOpts o;
  o.key = "k";
  TaskHandle t = Submit(o);
  const TaskId id = t->rec.id;
  Result(1, t, true);
  Advance(std::chrono::minutes(59));
  EXPECT_NE(d_->FindTask(id), nullptr);
  Advance(std::chrono::minutes(1));
  EXPECT_EQ(d_->FindTask(id), nullptr);
  // The key is free again: a new submit with it creates a new task.
  SubmitReq again;
  again.req = 1;
  again.key = "k";
  auto outcome = d_->Submit(again);
  EXPECT_FALSE(outcome.existing);
  EXPECT_NE(outcome.task->rec.id, id);
}

TEST_F(DispatcherTest, WaitOnAnEndedTaskAnswersAtOnce) {
  AddWorker(1);
  TaskHandle t = Submit();
  Result(1, t, true);
  Ends();
  d_->AddWaiter(t.id, 77, 5);
  auto ends = out_.TakeType(77, "end");
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0]["req"], 5);
  EXPECT_EQ(ends[0]["state"], "succeeded");
}

TEST_F(DispatcherTest, AConnectionWaitsOnATaskOnce) {
  TaskHandle t = Submit();  // kClient waits on it (req 1)
  Status again = d_->AddWaiter(t.id, kClient, 9);
  EXPECT_EQ(again.code(), "already_waiting");
  EXPECT_NE(again.message().find("req 1"), std::string::npos) << again.message();
  EXPECT_TRUE(d_->AddWaiter(t.id, 77, 2).ok()) << "another connection may";
  EXPECT_EQ(d_->WaitsOf(kClient), 1u);
  // The end goes to each waiter once, and the waits are over.
  AddWorker(1);
  Result(1, t, true);
  EXPECT_EQ(out_.TakeType(kClient, "end").size(), 1u);
  EXPECT_EQ(out_.TakeType(77, "end").size(), 1u);
  EXPECT_EQ(d_->WaitsOf(kClient), 0u);
  EXPECT_EQ(d_->WaitsOf(77), 0u);
  // An ended task answers every wait at once and holds nothing.
  EXPECT_TRUE(d_->AddWaiter(t.id, kClient, 10).ok());
  EXPECT_TRUE(d_->AddWaiter(t.id, kClient, 11).ok());
  EXPECT_EQ(out_.TakeType(kClient, "end").size(), 2u);
  EXPECT_EQ(d_->WaitsOf(kClient), 0u);
}

TEST_F(DispatcherTest, AConnectionWaitsOnBoundedlyManyTasks) {
  constexpr ConnId kGreedy = 55;
  std::vector<TaskId> ids;
  for (std::size_t i = 0; i <= Dispatcher::kMaxWaitsPerConnection; ++i) {
    SubmitReq r;
    r.req = static_cast<int64_t>(i);
    auto outcome = d_->Submit(r);
    ASSERT_TRUE(outcome.status.ok());
    ids.push_back(outcome.task->rec.id);
  }
  for (std::size_t i = 0; i < Dispatcher::kMaxWaitsPerConnection; ++i) {
    ASSERT_TRUE(d_->AddWaiter(ids[i], kGreedy, static_cast<int64_t>(i)).ok());
  }
  EXPECT_EQ(d_->AddWaiter(ids.back(), kGreedy, 1).code(), "too_many_waits");
  EXPECT_TRUE(d_->AddWaiter(ids.back(), 77, 1).ok()) << "the bound is per connection";
  // The connection closes: its waiters leave every task, and its bound with it.
  d_->DropWaiters(kGreedy);
  EXPECT_EQ(d_->WaitsOf(kGreedy), 0u);
  for (TaskId id : ids) {
    for (const auto& [conn, req] : d_->FindTask(id)->waiters) EXPECT_NE(conn, kGreedy);
  }
  EXPECT_EQ(d_->FindTask(ids.back())->waiters.size(), 1u);
  EXPECT_EQ(d_->WaitsOf(77), 1u);
}

TEST_F(DispatcherTest, RoundRobinThroughTheDispatcherGivesEqualShares) {
  Config c = BaseConfig();
  c.routing.strategy = "round_robin";
  Make(c);
  AddWorker(1);
  AddWorker(2);
  AddWorker(3);
  // Submitted in one batch, faster than they run; workers answer in turn.
  std::vector<TaskHandle> all;
  for (int i = 0; i < 300; ++i) all.push_back(Submit());
  for (int round = 0; round < 300; ++round) {
    bool any = false;
    for (ConnId w : {3, 1, 2}) {
      for (const std::string& id : TasksSent(w)) {
        Result(w, ParseTaskId(id), true);
        any = true;
      }
    }
    if (!any) break;
  }
  EXPECT_EQ(d_->stats().succeeded, 300u);
  for (ConnId w : {1, 2, 3}) {
    EXPECT_NEAR(static_cast<double>(d_->workers().Find(w)->completed), 100.0, 1.0) << "w" << w;
  }
}

TEST_F(DispatcherTest, AtMostMaxEndedTasksAreKeptTheOldestEndedGoFirst) {
  MakeKeepingEnded(2);
  AddWorker(1, {}, 10);
  SubmitOpts keyed;
  keyed.key = "first";
  TaskHandle a = Submit(keyed);
  TaskHandle b = Submit();
  TaskHandle c3 = Submit();
  TaskHandle waiting = Submit();  // never ends in this test
  const TaskId ida = a->rec.id, idb = b->rec.id, idc = c3->rec.id;
  // End b first, then a: a ended last of the two, so b is the older.
  Result(1, b, true);
  Result(1, a, true);
  EXPECT_NE(d_->FindTask(ida), nullptr);
  EXPECT_NE(d_->FindTask(idb), nullptr);
  Result(1, c3, true);  // a third ended task: the oldest ended (b) goes
  EXPECT_EQ(d_->FindTask(idb), nullptr);
  EXPECT_NE(d_->FindTask(ida), nullptr);
  EXPECT_NE(d_->FindTask(idc), nullptr);
  EXPECT_EQ(d_->FindTask(waiting->rec.id)->rec.state, TaskState::kRunning);
  EXPECT_EQ(Ends().size(), 3u);  // every waiter got its end before any purge

  // One more end pushes out a, and with it its idempotency key.
  Result(1, waiting, true);
  EXPECT_EQ(d_->FindTask(ida), nullptr);
  SubmitReq again;
  again.req = 99;
  again.key = "first";
  EXPECT_FALSE(d_->Submit(again).existing);
}

TEST_F(DispatcherTest, ARetriedTaskIsNotPurgedForItsEarlierEnd) {
  MakeKeepingEnded(1);
  AddWorker(1, {}, 10);
  SubmitOpts once;
  once.max_attempts = 1;
  TaskHandle t = Submit(once);
  const TaskId id = t->rec.id;
  Result(1, t, false, "boom", /*retryable=*/false);
  ASSERT_EQ(t->rec.state, TaskState::kFailed);
  ASSERT_TRUE(d_->Retry(id).ok());
  ASSERT_EQ(t->rec.state, TaskState::kRunning);
  TaskHandle other = Submit();
  Result(1, other, true);  // over the cap: the failed end of `t` is dropped, not `t`
  ASSERT_NE(d_->FindTask(id), nullptr);
  EXPECT_EQ(d_->FindTask(id)->rec.state, TaskState::kRunning);
}

TEST_F(DispatcherTest, ProgressGoesToEachWaiterWithItsReqAndAWatchGetsTheLatestAtOnce) {
  AddWorker(1, {"echo"}, 1);
  SubmitOpts o;
  o.skills = {"echo"};
  TaskHandle t = Submit(o);
  ProgressMsg p;
  p.id = TaskIdString(t.id);
  p.data = R"({"step":1})";
  d_->OnProgress(1, p);  // Submit's own waiter (kClient) gets it
  auto first = out_.TakeType(kClient, "progress");
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0]["data"], json({{"step", 1}}));
  ASSERT_TRUE(d_->AddWaiter(t.id, 40, 5).ok());
  ASSERT_TRUE(d_->AddWaiter(t.id, 41, 6, /*watch=*/true).ok());
  EXPECT_TRUE(out_.TakeType(40, "progress").empty());  // a wait: only what comes later
  EXPECT_EQ(
      out_.TakeType(41, "progress"),
      std::vector<json>({json::parse(R"({"type":"progress","req":6,"id":")" + TaskIdString(t.id) +
                                     R"(","attempt":1,"data":{"step":1}})")}));
  p.data = "\"two\"";
  d_->OnProgress(1, p);
  for (auto [conn, req] : {std::pair<ConnId, int>{40, 5}, {41, 6}, {kClient, 1}}) {
    auto lines = out_.TakeType(conn, "progress");
    ASSERT_EQ(lines.size(), 1u) << conn;
    EXPECT_EQ(lines[0]["req"], req);
    EXPECT_EQ(lines[0]["data"], "two");
  }
}

TEST_F(DispatcherTest, AnEndedTaskKeepsItsOwnFieldsWhileLaterTasksReuseItsObject) {
  AddWorker(1, {"echo"}, 1);
  SubmitOpts o;
  o.skills = {"echo"};
  o.payload = R"({"first":true})";
  o.session = "chat-1";
  TaskHandle first = Submit(o);
  ProgressMsg p;
  p.id = TaskIdString(first.id);
  p.data = R"({"step":1})";
  d_->OnProgress(1, p);
  Result(1, first, true);  // output {"done":true}
  // Many more tasks, each ending: they reuse the first one's Task object.
  for (int i = 0; i < 50; ++i) {
    SubmitOpts later;
    later.skills = {"echo"};
    later.payload = "\"later " + std::to_string(i) + "\"";
    Result(1, Submit(later), false, "nope", /*retryable=*/false);
  }
  const Task* t = d_->FindTask(first.id);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->rec.state, TaskState::kSucceeded);
  EXPECT_EQ(t->rec.payload, R"({"first":true})");
  EXPECT_EQ(t->rec.output, R"({"done":true})");
  EXPECT_EQ(t->rec.session, "chat-1");
  EXPECT_EQ(t->rec.skills, std::vector<std::string>{"echo"});
  EXPECT_TRUE(t->rec.errors.empty());
  EXPECT_EQ(t->progress, R"({"step":1})");
  EXPECT_EQ(d_->StateOf(first.id), TaskState::kSucceeded);
  EXPECT_EQ(d_->StateOf(first.id + 1000), std::nullopt);
  // A wait now answers from what was kept.
  Ends();
  EXPECT_TRUE(d_->AddWaiter(first.id, 77, 3).ok());
  EXPECT_EQ(d_->AddWaiter(first.id + 1000, 77, 4).code(), "not_found");
  auto ends = out_.TakeType(77, "end");
  ASSERT_EQ(ends.size(), 1u);
  EXPECT_EQ(ends[0]["output"], json::parse(R"({"done":true})"));
}

TEST_F(DispatcherTest, ATaskThatStartsAtOnceIsStoredByOneInsertThatSaysRunning) {
  AddWorker(1, {}, 1);
  TaskHandle runs = Submit();
  TaskHandle waits = Submit();  // the only slot is taken
  ASSERT_EQ(store_.changes.size(), 2u);
  EXPECT_EQ(store_.changes[0].op, 'i');
  EXPECT_EQ(store_.changes[0].id, runs.id);
  EXPECT_EQ(store_.changes[0].state, TaskState::kRunning);
  EXPECT_EQ(store_.changes[1].op, 'i');
  EXPECT_EQ(store_.changes[1].id, waits.id);
  EXPECT_EQ(store_.changes[1].state, TaskState::kQueued);
  store_.changes.clear();
  Result(1, runs, true);  // ends; the waiting one starts
  ASSERT_EQ(store_.changes.size(), 2u);
  EXPECT_EQ(store_.changes[0].op, 'u');
  EXPECT_EQ(store_.changes[0].state, TaskState::kSucceeded);
  EXPECT_EQ(store_.changes[1].op, 'u');
  EXPECT_EQ(store_.changes[1].id, waits.id);
  EXPECT_EQ(store_.changes[1].state, TaskState::kRunning);
}

TEST_F(DispatcherTest, ARetriedTaskRunsAgainWithItsPayloadAndHistory) {
  AddWorker(1, {}, 1);
  SubmitOpts o;
  o.payload = R"({"try":"again"})";
  o.max_attempts = 1;
  TaskHandle t = Submit(o);
  TasksSent(1);
  Result(1, t, false, "boom", /*retryable=*/false);
  ASSERT_EQ(t->rec.state, TaskState::kFailed);
  EXPECT_EQ(d_->Cancel(t.id).code(), "invalid_state") << "ended: nothing to cancel";
  EXPECT_EQ(d_->Retry(t.id + 1000).code(), "not_found");
  ASSERT_TRUE(d_->Retry(t.id).ok());
  EXPECT_EQ(d_->Retry(t.id).code(), "invalid_state") << "running, not failed";
  auto sent = out_.TakeType(1, "task");
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0]["id"], TaskIdString(t.id));
  EXPECT_EQ(sent[0]["payload"], json::parse(R"({"try":"again"})"));
  EXPECT_EQ(t->rec.state, TaskState::kRunning);
  ASSERT_EQ(t->rec.errors.size(), 1u);
  EXPECT_EQ(t->rec.errors[0].error, "boom");
  EXPECT_EQ(d_->stats().failed, 0u);
  EXPECT_EQ(d_->stats().running, 1u);
  Result(1, t, true);
  EXPECT_EQ(t->rec.state, TaskState::kSucceeded);
}

TEST_F(DispatcherTest, ForgettingATaskThatAlreadyEndedLeavesNoTrace) {
  AddWorker(1, {}, 2);
  SubmitOpts keyed;
  keyed.key = "k1";
  TaskHandle ended = Submit(keyed);
  TaskHandle running = Submit();
  Result(1, ended, true);
  ASSERT_EQ(d_->stats().succeeded, 1u);
  d_->Forget(ended.id);  // its insert was never committed
  d_->Forget(running.id);
  EXPECT_EQ(d_->FindTask(ended.id), nullptr);
  EXPECT_EQ(d_->FindTask(running.id), nullptr);
  EXPECT_EQ(out_.TakeType(1, "cancel").size(), 1u) << "the running one's worker stops";
  EXPECT_EQ(d_->stats().submitted, 0u);
  EXPECT_EQ(d_->stats().succeeded, 0u);
  EXPECT_EQ(d_->stats().cancelled, 0u);
  EXPECT_EQ(d_->tasks().size(), 0u);
  SubmitReq again;
  again.req = 50;
  again.key = "k1";
  EXPECT_FALSE(d_->Submit(again).existing) << "the key went with it";
}

TEST_F(DispatcherTest, EveryTaskIsListedInIdOrderLiveAndEndedByState) {
  AddWorker(1, {}, 1);
  TaskHandle a = Submit();   // runs, then succeeds
  TaskHandle b = Submit();   // runs after a, stays running
  TaskHandle c3 = Submit();  // queued
  Result(1, a, true);
  std::vector<std::pair<TaskId, TaskState>> all;
  d_->ForEachTask([&](const Task& t) {
    all.emplace_back(t.rec.id, t.rec.state);
    return true;
  });
  EXPECT_EQ(all, (std::vector<std::pair<TaskId, TaskState>>{{a.id, TaskState::kSucceeded},
                                                            {b.id, TaskState::kRunning},
                                                            {c3.id, TaskState::kQueued}}));
  std::vector<TaskId> succeeded;
  d_->ForEachTask(
      [&](const Task& t) {
        succeeded.push_back(t.rec.id);
        return true;
      },
      TaskState::kSucceeded);
  EXPECT_EQ(succeeded, std::vector<TaskId>{a.id});
  int seen = 0;
  d_->ForEachTask([&](const Task&) { return ++seen < 2; });
  EXPECT_EQ(seen, 2);
}

TEST_F(DispatcherTest, RecoveredEndedTasksArePurgedWhenTheirResultTtlIsOver) {
  const int64_t now = clock_.UnixMillis();
  auto ended = [&](TaskId id, int64_t ended_ago_ms) {
    TaskRecord r;
    r.id = id;
    r.state = TaskState::kSucceeded;
    r.created_ms = now - ended_ago_ms - 10;
    r.ended_ms = now - ended_ago_ms;
    return r;
  };
  // Restored in id order; their end times are not in that order.
  d_->Restore(ended(1, 30 * 60 * 1000));      // 30 min ago: 30 min left
  d_->Restore(ended(2, 2 * 60 * 60 * 1000));  // 2 h ago: over its 1 h ttl
  d_->Restore(ended(3, 50 * 60 * 1000));      // 50 min ago: 10 min left
  Advance(milliseconds(0));
  EXPECT_EQ(d_->FindTask(2), nullptr);
  EXPECT_NE(d_->FindTask(1), nullptr);
  EXPECT_NE(d_->FindTask(3), nullptr);
  Advance(std::chrono::minutes(11));
  EXPECT_EQ(d_->FindTask(3), nullptr);
  EXPECT_NE(d_->FindTask(1), nullptr);
  Advance(std::chrono::minutes(20));
  EXPECT_EQ(d_->FindTask(1), nullptr);
}

// A store hands back what it was given; a record that breaks that (no id,
// an id seen already) is dropped and logged, in every build: it neither
// overwrites the task that has the id nor stops recovery.
TEST_F(DispatcherTest, RecoveryDropsARecordWithoutAnIdOrWithARepeatedOne) {
  TaskRecord queued;
  queued.id = 5;
  queued.skills = {"x"};
  queued.payload = "\"first\"";
  d_->Restore(TaskRecord(queued));
  TaskRecord ended;
  ended.id = 6;
  ended.state = TaskState::kSucceeded;
  ended.created_ms = ended.ended_ms = clock_.UnixMillis();
  d_->Restore(TaskRecord(ended));

  TaskRecord again = queued;
  again.payload = "\"second\"";
  d_->Restore(std::move(again));
  TaskRecord again_ended = queued;
  again_ended.id = 6;
  d_->Restore(std::move(again_ended));
  TaskRecord no_id = queued;
  no_id.id = 0;
  d_->Restore(std::move(no_id));

  ASSERT_NE(d_->FindTask(5), nullptr);
  EXPECT_EQ(d_->FindTask(5)->rec.payload, "\"first\"");
  ASSERT_NE(d_->FindTask(6), nullptr);
  EXPECT_EQ(d_->FindTask(6)->rec.state, TaskState::kSucceeded);
  EXPECT_EQ(d_->stats().submitted, 2u);
  EXPECT_EQ(d_->stats().queued, 1u);
}

TEST_F(DispatcherTest, TimeoutsOfAttemptsAndWaitsThatEndedEarlyDoNotPileUp) {
  Config c = BaseConfig();
  c.tasks.timeout = std::chrono::minutes(10);  // long: nothing fires in this test
  Make(c);
  AddWorker(1, {}, 2);
  const std::size_t baseline = d_->deadlines_pending();  // the worker's heartbeat
  for (int i = 0; i < 1000; ++i) {
    TaskHandle a = Submit();
    TaskHandle b = Submit();
    TaskHandle queued = Submit();  // waits for a slot, with a queue-wait timeout
    Result(1, a, true);            // frees a slot: `queued` starts
    Result(1, b, true);
    Result(1, queued, true);
  }
  EXPECT_EQ(d_->stats().succeeded, 3000u);
  EXPECT_EQ(d_->deadlines_pending(), baseline);
}

TEST_F(DispatcherTest, SessionTasksWaitingForAnEjectedHomeGoElsewhereAtOnce) {
  Config c = BaseConfig();
  c.routing.outlier.enabled = true;
  c.routing.outlier.consecutive_failures = 1;
  c.routing.outlier.max_ejection_percent = 50;
  Make(c);
  AddWorker(1);
  AddWorker(2);
  SubmitOpts s;
  s.session = "chat";
  TaskHandle first = Submit(s);
  const ConnId home = first->worker;
  const ConnId other = home == 1 ? 2 : 1;
  Result(home, first, true);  // the session's home is now `home`
  TaskHandle x = Submit();
  TaskHandle y = Submit();  // both workers full now
  TaskHandle on_home = x->worker == home ? x : y;
  TaskHandle on_other = x->worker == home ? y : x;
  TaskHandle next = Submit(s);  // waits for its home (affinity)
  EXPECT_EQ(next->rec.state, TaskState::kQueued);
  Result(other, on_other, true);  // a slot frees elsewhere; `next` still waits for home
  EXPECT_EQ(next->rec.state, TaskState::kQueued);
  Result(home, on_home, false, "boom", /*retryable=*/false);  // the home fails: ejected
  ASSERT_EQ(d_->workers().Find(home)->state, WorkerState::kEjected);
  EXPECT_EQ(next->rec.state, TaskState::kRunning) << "no wait for affinity_wait";
  EXPECT_EQ(next->worker, other);
}

// ---- Ids across restarts (docs/durability.md, "Ids") ----

// A store whose id reservations fail, as on a full disk.
class NoReserveStore final : public MemoryStore {
 public:
  Status ReserveIds(const IdMarks&) override {
    return Status("store_unavailable", "cannot write to /data: No space left on device");
  }
};

TEST_F(DispatcherTest, TaskIdsAreNotReusedWhenTheirInsertsNeverReachedTheStore) {
  AddWorker(1, {}, 10);
  TaskHandle a = Submit();
  TaskHandle b = Submit();
  EXPECT_EQ(a.id, 1u);
  EXPECT_EQ(b.id, 2u);
  EXPECT_EQ(TasksSent(1), (std::vector<std::string>{"t1", "t2"}));  // they left the process
  EXPECT_EQ(store_.reserved_ids().tasks, 100000u) << "one reservation covers a block";
  // pincerd dies before the inserts are durable: nothing is recovered, but
  // the reservation is, and the new run issues ids above it.
  Make(BaseConfig());
  EXPECT_EQ(Submit().id, 100001u);
  EXPECT_EQ(Submit().id, 100002u);
  EXPECT_EQ(store_.reserved_ids().tasks, 200000u);
}

TEST_F(DispatcherTest, TaskIdsCarryOnAboveRecoveredTasksAndTheReservation) {
  // A data_dir from before reservations: only the stored tasks say how far
  // ids went.
  TaskRecord r;
  r.id = 7;
  d_->Restore(std::move(r));
  EXPECT_EQ(Submit().id, 8u);
  // One whole block used up: the next block is reserved before its first id.
  Make(BaseConfig());
  for (int i = 0; i < 3; ++i) Submit();
  EXPECT_EQ(store_.reserved_ids().tasks, 200000u);
}

TEST_F(DispatcherTest, SubmitIsRefusedWhenIdsCannotBeReserved) {
  NoReserveStore store;
  Dispatcher d(BaseConfig(), store, clock_, out_);
  SubmitReq r;
  r.req = 1;
  r.payload = "1";
  auto outcome = d.Submit(r);
  EXPECT_EQ(outcome.status.code(), "store_unavailable");
  EXPECT_NE(outcome.status.message().find("No space left"), std::string::npos);
  EXPECT_EQ(outcome.task, nullptr);
  EXPECT_EQ(d.stats().submitted, 0u);
  std::string wid;
  EXPECT_EQ(d.NewWorkerId(wid).code(), "store_unavailable");
}

TEST_F(DispatcherTest, WorkerIdsHaveTheirOwnCounterAndAreNotReusedAcrossRestarts) {
  EXPECT_EQ(AddWorker(7), "w1") << "not the connection number";
  EXPECT_EQ(AddWorker(3), "w2");
  EXPECT_EQ(store_.reserved_ids().workers, 100u);
  Submit();  // task ids do not take worker numbers
  EXPECT_EQ(AddWorker(9), "w3");
  Make(BaseConfig());
  EXPECT_EQ(AddWorker(7), "w101");
  std::string next;
  ASSERT_TRUE(d_->NewWorkerId(next).ok());
  EXPECT_EQ(next, "w102");
  ASSERT_TRUE(d_->Drain("w101").ok());
  EXPECT_EQ(d_->workers().Find(7)->state, WorkerState::kDraining);
}

// ---- Attempts cut short by a pincerd restart ----

TaskRecord RunningRecord(TaskId id, int attempts, int max_attempts) {
  TaskRecord r;
  r.id = id;
  r.payload = "1";
  r.state = TaskState::kRunning;
  r.attempts = attempts;
  r.max_attempts = max_attempts;
  r.worker = "w4";
  r.started_ms = 1;
  return r;
}

TEST_F(DispatcherTest, AnInterruptedAttemptDoesNotCountTowardMaxAttempts) {
  d_->Restore(RunningRecord(1, 1, 1));
  const Task* t = d_->FindTask(1);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->rec.state, TaskState::kQueued) << "max_attempts 1, but the restart is not its fault";
  ASSERT_EQ(t->rec.errors.size(), 1u);
  EXPECT_EQ(t->rec.errors[0].attempt, 1);
  EXPECT_EQ(t->rec.errors[0].worker, "w4");
  EXPECT_EQ(t->rec.errors[0].error, "pincerd restarted during the attempt");
  AddWorker(1);
  EXPECT_EQ(TasksSent(1), std::vector<std::string>{"t1"});
  EXPECT_EQ(d_->FindTask(1)->rec.attempts, 2) << "a new attempt number";
  Result(1, 1, true);
  t = d_->FindTask(1);
  EXPECT_EQ(t->rec.state, TaskState::kSucceeded);
  EXPECT_EQ(t->rec.errors.size(), 1u);
}

// ---- Adopting a reconnecting worker's tasks ----

TEST_F(DispatcherTest, ARecoveredRunningTaskWaitsForItsWorkerWhichAdoptsItAsTheSameAttempt) {
  Config c = BaseConfig();
  c.heartbeat.adopt_grace = seconds(10);
  Make(c);
  d_->Restore(RunningRecord(1, 2, 3));
  Hello h;
  h.role = "worker";
  h.proto = 1;
  h.lists_tasks = true;  // `tasks: []`: an idle worker that adopts, but not this task
  d_->AddWorker(1, h);
  EXPECT_TRUE(TasksSent(1).empty()) << "held for the worker that ran it";
  EXPECT_EQ(d_->WaitReason(*d_->FindTask(1)).code, WhyCode::kAwaitingHolder);
  h.tasks = {{"t1", 2}, {"t77", 0}};
  h.capacity = 2;
  d_->AddWorker(2, h);
  std::vector<json> cancels;
  for (json& m : out_.Take(2)) {
    EXPECT_NE(m["type"], "task") << "adopted, not sent again: " << m;
    if (m["type"] == "cancel") cancels.push_back(m);
  }
  const Task* t = d_->FindTask(1);
  EXPECT_EQ(t->rec.state, TaskState::kRunning);
  EXPECT_EQ(t->rec.attempts, 2) << "the same attempt goes on";
  EXPECT_TRUE(t->rec.errors.empty()) << "its interruption is taken back";
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0]["id"], "t77");
  EXPECT_EQ(cancels[0]["reason"], "not_adopted");
  Result(2, 1, true);
  EXPECT_EQ(d_->FindTask(1)->rec.state, TaskState::kSucceeded);
}

TEST_F(DispatcherTest, ARecoveredRunningTaskGoesAtOnceToAWorkerThatDoesNotAdoptTasks) {
  Config c = BaseConfig();
  c.heartbeat.adopt_grace = seconds(10);
  Make(c);
  d_->Restore(RunningRecord(1, 2, 3));
  AddWorker(1);  // its hello gives no `tasks`: its fleet cannot adopt
  EXPECT_EQ(TasksSent(1), std::vector<std::string>{"t1"});
  EXPECT_EQ(d_->FindTask(1)->rec.attempts, 3);
}

TEST_F(DispatcherTest, ADisconnectedWorkersTaskIsPlacedAtOnceAndAdoptedOnlyUntilItStartsElsewhere) {
  Config c = BaseConfig();
  c.heartbeat.adopt_grace = seconds(10);  // for recovered tasks only
  Make(c);
  Hello h;
  h.role = "worker";
  h.proto = 1;
  h.tasks = {};
  d_->AddWorker(1, h);
  TaskHandle t = Submit();
  EXPECT_EQ(TasksSent(1), std::vector<std::string>{"t1"});
  // Its connection closes with no other worker to take the task: it waits,
  // and the worker, back, adopts it as the same attempt.
  d_->OnDisconnect(1, "worker w1 disconnected");
  EXPECT_EQ(t->rec.state, TaskState::kQueued);
  h.tasks = {{"t1", 1}};
  d_->AddWorker(3, h);
  EXPECT_TRUE(TasksSent(3).empty()) << "adopted, not sent again";
  EXPECT_EQ(t->rec.state, TaskState::kRunning);
  EXPECT_EQ(t->rec.attempts, 1);
  EXPECT_TRUE(t->rec.errors.empty());
  // With another worker free, a closed connection's task starts there at
  // once (a crashed worker is not waited for); back late, the first is
  // told to drop it.
  AddWorker(2);
  d_->OnDisconnect(3, "worker w3 disconnected");
  EXPECT_EQ(TasksSent(2), std::vector<std::string>{"t1"});
  EXPECT_EQ(t->rec.attempts, 2);
  d_->AddWorker(4, h);
  std::vector<json> cancels = out_.TakeType(4, "cancel");
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0]["id"], "t1");
  EXPECT_EQ(cancels[0]["reason"], "not_adopted");
  EXPECT_EQ(t->worker, 2u) << "it stays with the worker that runs it now";
}

TEST_F(DispatcherTest, AFailureAfterAnInterruptionStillUsesUpTheRealAttempts) {
  d_->Restore(RunningRecord(1, 1, 2));  // attempt 1 interrupted
  AddWorker(1);
  Result(1, 1, false, "boom");  // attempt 2: the first that counts
  EXPECT_EQ(d_->FindTask(1)->rec.state, TaskState::kRunning) << "attempt 3 (the second counted)";
  Result(1, 1, false, "boom");
  EXPECT_EQ(d_->FindTask(1)->rec.state, TaskState::kFailed);
  EXPECT_EQ(d_->FindTask(1)->rec.attempts, 3);
}

TEST_F(DispatcherTest, MoreInterruptionsThanMaxInterruptionsFailTheTask) {
  Config c = BaseConfig();
  c.tasks.max_interruptions = 2;
  Make(c);
  TaskRecord r = RunningRecord(1, 3, 1);
  r.errors = {{1, "w1", "pincerd restarted during the attempt"},
              {2, "w2", "pincerd restarted during the attempt"}};
  d_->Restore(std::move(r));  // the third interruption
  const Task* t = d_->FindTask(1);
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->rec.state, TaskState::kFailed);
  EXPECT_EQ(t->rec.errors.size(), 3u);
  EXPECT_NE(t->rec.error.find("tasks.max_interruptions = 2"), std::string::npos) << t->rec.error;

  // Interruptions before a retry do not count after it: attempt numbers
  // start again at 1 there.
  r = RunningRecord(2, 1, 1);
  r.errors = {{1, "w1", "pincerd restarted during the attempt"},
              {2, "w2", "pincerd restarted during the attempt"},
              {3, "w3", "boom"}};
  d_->Restore(std::move(r));
  EXPECT_EQ(d_->FindTask(2)->rec.state, TaskState::kQueued);
}

TEST_F(DispatcherTest, WithNoInterruptionsAllowedTheFirstFailsTheTask) {
  Config c = BaseConfig();
  c.tasks.max_interruptions = 0;
  Make(c);
  d_->Restore(RunningRecord(1, 1, 3));
  EXPECT_EQ(d_->FindTask(1)->rec.state, TaskState::kFailed);
}

}  // namespace
// ---------------------------------------------------------- retry backoff

class BackoffTest : public DispatcherTest {
 protected:
  // initial 1s, max 3s, no jitter: the delays are exact.
  void MakeBackoff(milliseconds initial = seconds(1), milliseconds max = seconds(3),
                   double jitter = 0) {
    Config c = BaseConfig();
    c.tasks.retry_backoff = {initial, max, jitter};
    c.tasks.max_attempts = 6;
    Make(c);
  }
  void Fail(ConnId conn, const TaskHandle& t, int64_t retry_after_ms = 0) {
    ResultMsg m;
    m.id = TaskIdString(t.id);
    m.ok = false;
    m.error = "model returned 503";
    m.retry_after_ms = retry_after_ms;
    d_->OnResult(conn, m);
  }
  // Advances to just before `delay` is over (nothing sent), then to it (the
  // next attempt goes to `conn`).
  void ExpectRetryAfter(ConnId conn, const TaskHandle& t, milliseconds delay) {
    Advance(delay - milliseconds(1));
    EXPECT_TRUE(TasksSent(conn).empty())
        << "offered before its backoff of " << delay.count() << "ms";
    EXPECT_EQ(t->rec.state, TaskState::kQueued);
    Advance(milliseconds(1));
    EXPECT_EQ(TasksSent(conn).size(), 1u)
        << "not offered after its backoff of " << delay.count() << "ms";
    EXPECT_EQ(t->rec.state, TaskState::kRunning);
  }
};

TEST_F(BackoffTest, RetriesWaitInitialThenDoubleUpToMax) {
  MakeBackoff();
  AddWorker(1);
  TaskHandle t = Submit();
  ASSERT_EQ(TasksSent(1).size(), 1u);
  Fail(1, t);
  EXPECT_EQ(t->rec.state, TaskState::kQueued);
  EXPECT_EQ(d_->stats().queued, 1u);
  EXPECT_EQ(d_->NextDeadline(), clock_.Now() + seconds(1));
  ExpectRetryAfter(1, t, seconds(1));
  Fail(1, t);
  ExpectRetryAfter(1, t, seconds(2));
  Fail(1, t);
  ExpectRetryAfter(1, t, seconds(3));  // 4s, capped at max
  Fail(1, t);
  ExpectRetryAfter(1, t, seconds(3));
  EXPECT_EQ(t->rec.attempts, 5);
  Result(1, t, true);
  EXPECT_EQ(t->rec.state, TaskState::kSucceeded);
  EXPECT_EQ(t->rec.errors.size(), 4u);
}

TEST_F(BackoffTest, WhySaysUntilWhenAndStatusShowsRetryAt) {
  MakeBackoff();
  AddWorker(1);
  TaskHandle t = Submit();
  Fail(1, t);
  const int64_t until = clock_.UnixMillis() + 1000;
  EXPECT_EQ(t->retry_at_ms, until);
  const std::time_t secs = until / 1000;
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  char ms[8];
  std::snprintf(ms, sizeof ms, ".%03dZ", static_cast<int>(until % 1000));
  EXPECT_EQ(d_->WhyWaiting(*t), std::string("retrying after backoff until ") + text + ms);
  Advance(seconds(1));
  EXPECT_EQ(t->retry_at_ms, 0);
}

TEST_F(BackoffTest, NotOfferedEarlyToAnyFreeWorker) {
  MakeBackoff();
  AddWorker(1);
  AddWorker(2);
  TaskHandle t = Submit();
  const ConnId first = t->rec.worker == "w1" ? 1 : 2;
  TasksSent(1), TasksSent(2);
  Fail(first, t);
  AddWorker(3);  // a worker joining during the backoff takes nothing
  Advance(milliseconds(999));
  EXPECT_TRUE(TasksSent(1).empty());
  EXPECT_TRUE(TasksSent(2).empty());
  EXPECT_TRUE(TasksSent(3).empty());
  // Another task submitted meanwhile runs at once: only the retry waits.
  TaskHandle other = Submit();
  EXPECT_EQ(other->rec.state, TaskState::kRunning);
  Advance(milliseconds(1));
  EXPECT_EQ(t->rec.state, TaskState::kRunning);
  EXPECT_EQ(t->rec.attempts, 2);
}

TEST_F(BackoffTest, RetryAfterWinsWhenLongerUpToMax) {
  MakeBackoff(seconds(1), seconds(10));
  AddWorker(1);
  TaskHandle t = Submit();
  ASSERT_EQ(TasksSent(1).size(), 1u);
  Fail(1, t, /*retry_after_ms=*/5000);
  ExpectRetryAfter(1, t, seconds(5));
  Fail(1, t, /*retry_after_ms=*/200);  // shorter than the 2s backoff: the backoff wins
  ExpectRetryAfter(1, t, seconds(2));
  Fail(1, t, /*retry_after_ms=*/3600 * 1000);  // an hour: capped at max
  ExpectRetryAfter(1, t, seconds(10));
}

TEST_F(BackoffTest, JitterAddsAtMostItsFractionOfTheDelay) {
  MakeBackoff(seconds(1), seconds(10), 0.5);
  AddWorker(1);
  for (int i = 0; i < 20; ++i) {
    TaskHandle t = Submit();
    Fail(1, t);
    const auto wait = *d_->NextDeadline() - clock_.Now();
    EXPECT_GE(wait, seconds(1));
    EXPECT_LE(wait, milliseconds(1500));
    d_->Cancel(t.id);
    TasksSent(1);
  }
}

TEST_F(BackoffTest, ANonRetryableFailureEndsAtOnceWithoutBackoff) {
  MakeBackoff();
  AddWorker(1);
  TaskHandle t = Submit();
  Result(1, t, false, "bad input", /*retryable=*/false);
  EXPECT_EQ(t->rec.state, TaskState::kFailed);
}

TEST_F(BackoffTest, ALostWorkerRequeuesAtOnceATimeoutBacksOff) {
  MakeBackoff();
  AddWorker(1);
  AddWorker(2);
  TaskHandle t = Submit();
  const ConnId first = t->rec.worker == "w1" ? 1 : 2;
  const ConnId second = 3 - first;
  TasksSent(first);
  d_->OnDisconnect(first, "gone");
  EXPECT_EQ(TasksSent(second).size(), 1u) << "a dead worker's task goes elsewhere at once";

  SubmitOpts o;
  o.timeout = seconds(5);
  TaskHandle slow = Submit(o);  // queued behind t on the one worker left
  Result(second, t, true);
  ASSERT_EQ(TasksSent(second).size(), 1u);
  Advance(seconds(5));  // slow's attempt 1 times out
  EXPECT_EQ(slow->rec.state, TaskState::kQueued);
  EXPECT_NE(d_->WhyWaiting(*slow).find("retrying after backoff"), std::string::npos);
  ExpectRetryAfter(second, slow, seconds(1));
}

TEST_F(BackoffTest, CancelDuringBackoffEndsItAndTheWakeUpIsHarmless) {
  MakeBackoff();
  AddWorker(1);
  TaskHandle t = Submit();
  ASSERT_EQ(TasksSent(1).size(), 1u);
  Fail(1, t);
  ASSERT_TRUE(d_->Cancel(t.id).ok());
  EXPECT_EQ(t->rec.state, TaskState::kCancelled);
  EXPECT_EQ(d_->stats().queued, 0u);
  Advance(seconds(1));
  EXPECT_TRUE(TasksSent(1).empty());
  EXPECT_EQ(t->rec.state, TaskState::kCancelled);
}

TEST_F(BackoffTest, ASessionKeepsItsTurnWhileItsTaskBacksOff) {
  MakeBackoff();
  AddWorker(1, {}, 2);
  SubmitOpts o;
  o.session = "s";
  TaskHandle first = Submit(o);
  TaskHandle second = Submit(o);
  Fail(1, first);
  EXPECT_EQ(TasksSent(1).size(), 1u);  // first's attempt 1 only
  EXPECT_EQ(second->rec.state, TaskState::kQueued);
  EXPECT_EQ(d_->WhyWaiting(*second), "its session's previous task is still running");
  Advance(seconds(1));
  EXPECT_EQ(first->rec.state, TaskState::kRunning);
  EXPECT_EQ(second->rec.state, TaskState::kQueued);
}

TEST_F(BackoffTest, RecoveredAfterAFailureWaitsTheInitialBackoffFromTheRestart) {
  MakeBackoff();
  AddWorker(1);
  TaskRecord r;
  r.id = 7;
  r.payload = "\"p\"";
  r.max_attempts = 6;
  r.state = TaskState::kQueued;
  r.attempts = 2;
  r.errors = {{1, "w1", "x"}, {2, "w1", "y"}};
  d_->Restore(std::move(r));
  TaskHandle t{d_.get(), 7};
  ExpectRetryAfter(1, t, seconds(1));  // reset to initial, from the restart

  TaskRecord running;  // in flight at the restart: lost, not failed
  running.id = 8;
  running.payload = "\"p\"";
  running.state = TaskState::kRunning;
  running.attempts = 1;
  running.worker = "w9";
  d_->Restore(std::move(running));
  Result(1, t, true);
  EXPECT_EQ(TasksSent(1).size(), 1u) << "a lost attempt is retried at once";
}

TEST_F(BackoffTest, ATaskOwnBackoffOverridesTheConfig) {
  MakeBackoff();  // config: 1s, max 3s
  AddWorker(1);
  SubmitReq req;
  req.req = 1;
  req.backoff_initial = seconds(10);  // no max: at least the initial
  auto outcome = d_->Submit(req);
  ASSERT_TRUE(outcome.status.ok()) << outcome.status.message();
  TaskHandle t{d_.get(), outcome.task->rec.id};
  EXPECT_TRUE(t->rec.has_backoff);
  EXPECT_EQ(t->rec.backoff, (TaskBackoff{10000, 10000, 0}));
  ASSERT_EQ(TasksSent(1).size(), 1u);
  Fail(1, t);
  ExpectRetryAfter(1, t, seconds(10));
  Fail(1, t);
  ExpectRetryAfter(1, t, seconds(10));  // 20s, capped at its own max

  // A max alone shorter than the config's initial is refused, and nothing is made.
  SubmitReq bad;
  bad.req = 2;
  bad.backoff_max = milliseconds(500);
  const uint64_t submitted = d_->stats().submitted;
  outcome = d_->Submit(bad);
  EXPECT_EQ(outcome.status.code(), "invalid_request");
  EXPECT_EQ(d_->stats().submitted, submitted);
}

TEST_F(BackoffTest, UsageAddsUpOverAttemptsAndIntoTheTotals) {
  MakeBackoff();
  AddWorker(1);
  TaskHandle t = Submit();
  ResultMsg m;
  m.id = TaskIdString(t.id);
  m.ok = false;
  m.error = "503";
  m.has_usage = true;
  m.usage = {100, 20, 120, 0.5, "m1"};
  d_->OnResult(1, m);
  Advance(seconds(1));
  m.ok = true;
  m.usage = {10, 5, 15, 0.25, ""};  // names no model: the task keeps m1
  d_->OnResult(1, m);
  EXPECT_EQ(t->rec.state, TaskState::kSucceeded);
  EXPECT_EQ(t->rec.usage, (TaskUsage{110, 25, 135, 0.75, "m1"}));
  EXPECT_EQ(d_->usage().total().total, 135);
  EXPECT_EQ(d_->usage().by_model().at("m1").input, 100);
  EXPECT_EQ(d_->usage().by_model().at("none").input, 10);
  EXPECT_EQ(d_->usage().by_skill().at("any").output, 25);
  ASSERT_EQ(d_->usage().by_worker().size(), 1u);
  EXPECT_EQ(d_->usage().by_worker().begin()->second.cost, 0.75);

  // A result without usage adds nothing.
  TaskHandle plain = Submit();
  Result(1, plain, true);
  EXPECT_TRUE(plain->rec.usage.empty());
  EXPECT_EQ(d_->usage().total().total, 135);
}

}  // namespace pincer

namespace pincer {
namespace {

// routing.rules[].rate: a sliding window of starts. A task past the quota
// waits, its why naming the rule and the cap, and starts when the oldest
// start leaves the window; retries count as starts.
TEST_F(DispatcherTest, RateCapHoldsStartsUntilTheWindowMoves) {
  Config c = BaseConfig();
  RoutingRule rule;
  rule.skills = {"paid"};
  rule.rate = RateCap{2, seconds(10)};
  c.routing.rules = {rule};
  Make(c);
  AddWorker(1, {"paid"}, 4);
  SubmitOpts o;
  o.skills = {"paid"};
  TaskHandle a = Submit(o);
  Advance(seconds(4));
  TaskHandle b = Submit(o);
  TaskHandle held = Submit(o);
  EXPECT_EQ(TasksSent(1).size(), 2u);
  EXPECT_EQ(held->rec.state, TaskState::kQueued);
  EXPECT_EQ(d_->WhyWaiting(*held),
            "held by routing.rules[0] (skills paid): rate 2 per 10s reached (next start in 6s)");
  EXPECT_EQ(d_->WaitReason(*held).code, WhyCode::kRuleRate);
  Result(1, a, true);  // an end frees no rate
  EXPECT_TRUE(TasksSent(1).empty());
  Advance(seconds(6));  // a's start leaves the window
  EXPECT_EQ(TasksSent(1), std::vector<std::string>{held->id_string()});
  EXPECT_EQ(held->rec.state, TaskState::kRunning);
  // A retry is a start too: b's failure waits for the window.
  Result(1, b, false, "429");
  EXPECT_EQ(b->rec.state, TaskState::kQueued);
  EXPECT_TRUE(TasksSent(1).empty());
  Advance(seconds(4));  // b's first start (t=4) leaves
  EXPECT_EQ(TasksSent(1), std::vector<std::string>{b->id_string()});
}

// max_running across workers, and tasks of other rules untouched.
TEST_F(DispatcherTest, MaxRunningCountsOverAllWorkersAndFreesOnEnd) {
  Config c = BaseConfig();
  RoutingRule rule;
  rule.skills = {"tts"};
  rule.max_running = 1;
  c.routing.rules = {rule};
  Make(c);
  AddWorker(1, {"tts"});
  AddWorker(2, {"tts", "echo"}, 2);
  SubmitOpts tts;
  tts.skills = {"tts"};
  TaskHandle first = Submit(tts);
  TaskHandle second = Submit(tts);
  SubmitOpts echo;
  echo.skills = {"echo"};
  TaskHandle other = Submit(echo);
  EXPECT_EQ(first->rec.state, TaskState::kRunning);
  EXPECT_EQ(second->rec.state, TaskState::kQueued);
  EXPECT_EQ(other->rec.state, TaskState::kRunning) << "another rule's task is not held";
  EXPECT_EQ(d_->WhyWaiting(*second),
            "held by routing.rules[0] (skills tts): max_running 1 reached (1 running)");
  EXPECT_EQ(d_->WaitReason(*second).code, WhyCode::kRuleMaxRunning);
  const ConnId first_worker = first->worker;
  Result(first_worker, first, true);
  d_->RunDue();
  EXPECT_EQ(second->rec.state, TaskState::kRunning);
  // A reload that lifts the cap starts what waits at once.
  TaskHandle third = Submit(tts);
  EXPECT_EQ(third->rec.state, TaskState::kQueued);
  c.routing.rules[0].max_running = 2;
  d_->Reconfigure(c);
  EXPECT_EQ(third->rec.state, TaskState::kRunning);
}

// tasks.queue_ttl counts from the submit, or from the end of the last
// attempt; the task ends timed_out with its why.
TEST_F(DispatcherTest, QueueTtlExpiresAWaitingTaskWithItsWhy) {
  Config c = BaseConfig();
  c.tasks.queue_ttl = seconds(30);
  Make(c);
  SubmitOpts o;
  o.skills = {"gpu"};
  TaskHandle t = Submit(o);
  EXPECT_EQ(d_->NextDeadline(), clock_.Now() + seconds(30)) << "the event loop wakes for it";
  Advance(seconds(29));
  EXPECT_EQ(t->rec.state, TaskState::kQueued);
  AddWorker(1, {"gpu"});  // takes it: the ttl is withdrawn
  EXPECT_EQ(t->rec.state, TaskState::kRunning);
  Advance(seconds(5));
  Result(1, t, false, "boom");  // queued again: a new stretch
  EXPECT_EQ(t->rec.state, TaskState::kRunning) << "the free worker takes the retry";
  d_->Drain("w1");
  Result(1, t, false, "boom");
  EXPECT_EQ(t->rec.state, TaskState::kQueued);
  Advance(seconds(29));
  EXPECT_EQ(t->rec.state, TaskState::kQueued);
  Advance(seconds(1));
  EXPECT_EQ(t->rec.state, TaskState::kTimedOut);
  EXPECT_EQ(
      t->rec.error,
      "expired: waited longer than tasks.queue_ttl (30s): all 1 matching workers are draining "
      "or ejected");
  EXPECT_EQ(t->rec.errors.back().worker, "");
}

TEST_F(DispatcherTest, ARepeatedKeyNeedsTheSamePayload) {
  SubmitOpts o;
  o.key = "k";
  o.payload = R"({"a":1,"b":[1,2]})";
  TaskHandle t = Submit(o);
  SubmitReq r;
  r.key = "k";
  r.payload = R"({ "b": [1, 2], "a": 1 })";
  auto same = d_->Submit(r);
  ASSERT_TRUE(same.status.ok());
  EXPECT_TRUE(same.existing);
  EXPECT_EQ(same.task->rec.id, t.id);
  r.payload = R"({"a":2})";
  auto other = d_->Submit(r);
  EXPECT_EQ(other.status.code(), "conflict");
  EXPECT_EQ(other.status.message(),
            "key 'k' is task " + t->id_string() + ", submitted with a different payload");
  r.payload = "";  // null
  EXPECT_EQ(d_->Submit(r).status.code(), "conflict");
  EXPECT_EQ(d_->stats().submitted, 1u);
}

TEST_F(DispatcherTest, ASubmitWarnsWhenNoWorkerEverOfferedItsSkills) {
  SubmitReq r;
  r.skills = {"gpu", "vision"};
  auto first = d_->Submit(r);
  EXPECT_EQ(first.warning,
            "no worker has offered skill gpu, vision since pincerd started; the task waits for one "
            "that does");
  AddWorker(1, {"gpu"}, 1);
  d_->OnDisconnect(1, "gone");
  r.skills = {"gpu"};
  EXPECT_EQ(d_->Submit(r).warning, "") << "a worker offered it once";
  r.skills = {"gpu", "vision"};
  EXPECT_EQ(d_->Submit(r).warning,
            "no worker has offered skill vision since pincerd started; the task waits for one that "
            "does");
}

// Subtasks: a child is linked to the task its worker runs; the links are
// rebuilt from the records on recovery, and a child left unfinished by a
// parent that ended before a restart is cancelled then.
TEST_F(DispatcherTest, SubtasksAreLinkedToTheirParentAndRebuiltOnRecovery) {
  AddWorker(1, {"plan"});
  SubmitOpts plan;
  plan.skills = {"plan"};
  auto parent = Submit(plan);
  ASSERT_EQ(parent->rec.state, TaskState::kRunning);
  SubmitReq child;
  child.req = 1;
  child.skills = {"leaf"};
  child.parent = TaskIdString(parent.id);
  EXPECT_EQ(d_->Submit(child, kClient).status.code(), "unknown_task") << "not a worker";
  EXPECT_EQ(d_->Submit(child, 2).status.code(), "unknown_task") << "no such worker";
  auto a = d_->Submit(child, 1);
  ASSERT_TRUE(a.status.ok()) << a.status.message();
  const TaskId first = a.task->rec.id;
  EXPECT_EQ(a.task->rec.parent, parent.id);
  auto b = d_->Submit(child, 1);
  ASSERT_TRUE(b.status.ok());
  const TaskId second = b.task->rec.id;
  ASSERT_NE(d_->ChildrenOf(parent.id), nullptr);
  EXPECT_EQ(*d_->ChildrenOf(parent.id), (std::vector<TaskId>{first, second}));
  // A child never accepted (its insert failed) is no child.
  d_->Forget(second);
  EXPECT_EQ(*d_->ChildrenOf(parent.id), (std::vector<TaskId>{first}));

  // Recovery: an ended parent with one child ended, one unfinished.
  Make(BaseConfig());
  TaskRecord p;
  p.id = 10;
  p.state = TaskState::kSucceeded;
  p.created_ms = p.ended_ms = clock_.UnixMillis();
  TaskRecord done = p;
  done.id = 11;
  done.parent = 10;
  TaskRecord open;
  open.id = 12;
  open.parent = 10;
  open.created_ms = clock_.UnixMillis();
  d_->Restore(std::move(p));
  d_->Restore(std::move(done));
  d_->Restore(std::move(open));
  ASSERT_NE(d_->ChildrenOf(10), nullptr);
  EXPECT_EQ(*d_->ChildrenOf(10), (std::vector<TaskId>{11, 12}));
  EXPECT_EQ(d_->StateOf(12), TaskState::kCancelled);
  EXPECT_EQ(d_->FindTask(12)->rec.parent, 10u);
}

}  // namespace
}  // namespace pincer
