// Outlier ejection, driven by a ManualClock: first the detector alone, then
// through the dispatcher (ejected workers leave routing and come back when
// the cool-off deadline fires).
#include "core/outlier.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/dispatcher.h"
#include "store/memory_store.h"
#include "support/fake_outbox.h"

namespace pincer {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

OutlierConfig Cfg() {
  OutlierConfig c;
  c.consecutive_failures = 3;
  c.base_ejection = seconds(10);
  c.max_ejection = seconds(60);
  c.max_ejection_percent = 50;
  return c;
}

class OutlierDetectorTest : public ::testing::Test {
 protected:
  Worker& AddWorker(WorkerId id, std::vector<std::string> skills) {
    auto w = std::make_unique<Worker>();
    w->id = id;
    w->id_str = "w" + std::to_string(id);
    w->skills = std::move(skills);
    return registry_.Add(std::move(w));
  }
  // Records `n` attempts and returns the last decision.
  std::optional<Ejection> Fail(OutlierDetector& d, Worker& w, int n) {
    std::optional<Ejection> e;
    for (int i = 0; i < n; ++i) e = d.Record(w, /*ok=*/false, 0.1, registry_);
    return e;
  }
  void Eject(Worker& w) { registry_.SetState(w, WorkerState::kEjected); }

  ManualClock clock_;
  WorkerRegistry registry_;
};

TEST_F(OutlierDetectorTest, EjectsAfterConsecutiveFailuresOnly) {
  OutlierDetector d(Cfg(), clock_);
  Worker& a = AddWorker(1, {"x"});
  AddWorker(2, {"x"});
  EXPECT_FALSE(Fail(d, a, 2));
  EXPECT_FALSE(d.Record(a, /*ok=*/true, 0.1, registry_));  // a success breaks the streak
  EXPECT_FALSE(Fail(d, a, 2));
  auto e = Fail(d, a, 1);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->cool_off, seconds(10));
  EXPECT_EQ(e->count, 1);
  EXPECT_EQ(e->reason, "3 consecutive failed attempts");
}

TEST_F(OutlierDetectorTest, CoolOffDoublesUpToMaxAndResetsAfterLongHealth) {
  OutlierDetector d(Cfg(), clock_);
  Worker& a = AddWorker(1, {"x"});
  AddWorker(2, {"x"});
  std::vector<milliseconds> cool_offs;
  for (int round = 0; round < 5; ++round) {
    auto e = Fail(d, a, 3);
    ASSERT_TRUE(e) << "round " << round;
    cool_offs.push_back(e->cool_off);
    Eject(a);
    clock_.Advance(e->cool_off);
    ASSERT_TRUE(d.Return(a.id, e->generation));
    registry_.SetState(a, WorkerState::kReady);
  }
  EXPECT_EQ(cool_offs, (std::vector<milliseconds>{seconds(10), seconds(20), seconds(40),
                                                  seconds(60), seconds(60)}));
  // Healthy for max_ejection: the next ejection starts from the base again.
  clock_.Advance(seconds(60));
  auto e = Fail(d, a, 3);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->cool_off, seconds(10));
  EXPECT_EQ(e->count, 1);
}

TEST_F(OutlierDetectorTest, StaleReturnIsIgnoredAndStreakRestartsOnReturn) {
  OutlierDetector d(Cfg(), clock_);
  Worker& a = AddWorker(1, {"x"});
  AddWorker(2, {"x"});
  auto e = Fail(d, a, 3);
  ASSERT_TRUE(e);
  EXPECT_FALSE(d.Return(a.id, e->generation + 1));
  EXPECT_TRUE(d.Return(a.id, e->generation));
  EXPECT_EQ(d.ConsecutiveFailures(a.id), 0);
  d.Forget(a.id);
  EXPECT_FALSE(d.Return(a.id, e->generation));
}

TEST_F(OutlierDetectorTest, NeverEjectsMoreThanTheShareOfASkill) {
  OutlierDetector d(Cfg(), clock_);  // 50%
  Worker& a = AddWorker(1, {"x"});
  Worker& b = AddWorker(2, {"x"});
  Worker& c = AddWorker(3, {"x", "y"});
  AddWorker(4, {"x"});
  Worker& only_y = AddWorker(5, {"y", "z"});
  ASSERT_TRUE(Fail(d, a, 3));
  Eject(a);
  ASSERT_TRUE(Fail(d, b, 3));  // 2 of 4 workers with x
  Eject(b);
  EXPECT_FALSE(Fail(d, c, 3));  // a third would be 3 of the 4 with x
  // The only worker with skill z is never ejected: its tasks would just wait.
  EXPECT_FALSE(Fail(d, only_y, 10));
  // Once one comes back, the next outlier may go.
  registry_.SetState(a, WorkerState::kReady);
  EXPECT_TRUE(Fail(d, c, 1)) << "the streak was kept while the cap held it back";
}

TEST_F(OutlierDetectorTest, OnlyReadyWorkersAreEjectedAndDisabledEjectsNothing) {
  OutlierConfig cfg = Cfg();
  cfg.enabled = false;
  OutlierDetector d(cfg, clock_);
  Worker& a = AddWorker(1, {"x"});
  AddWorker(2, {"x"});
  EXPECT_FALSE(Fail(d, a, 10));
  cfg.enabled = true;
  d.Reconfigure(cfg);
  registry_.SetState(a, WorkerState::kDraining);
  EXPECT_FALSE(Fail(d, a, 1));
  registry_.SetState(a, WorkerState::kReady);
  EXPECT_TRUE(Fail(d, a, 1));
}

TEST_F(OutlierDetectorTest, EjectsAWorkerFarSlowerThanItsPeers) {
  OutlierConfig cfg = Cfg();
  cfg.latency_factor = 3;
  OutlierDetector d(cfg, clock_);
  Worker& slow = AddWorker(1, {"x"});
  Worker& p1 = AddWorker(2, {"x"});
  Worker& p2 = AddWorker(3, {"x", "y"});
  Worker& other = AddWorker(4, {"q"});
  for (int i = 0; i < OutlierDetector::kMinLatencySamples; ++i) {
    EXPECT_FALSE(d.Record(p1, true, 1.0, registry_));
    EXPECT_FALSE(d.Record(p2, true, 1.2, registry_));
    EXPECT_FALSE(d.Record(other, true, 100.0, registry_));  // no peers: never compared
  }
  std::optional<Ejection> e;
  for (int i = 0; i < OutlierDetector::kMinLatencySamples - 1; ++i) {
    EXPECT_FALSE(d.Record(slow, true, 10.0, registry_)) << "too few samples yet";
  }
  e = d.Record(slow, true, 10.0, registry_);
  ASSERT_TRUE(e);
  EXPECT_NE(e->reason.find("latency"), std::string::npos) << e->reason;
  // Modestly slower than the peers is not an outlier.
  Worker& fine = AddWorker(5, {"x"});
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(d.Record(fine, true, 2.0, registry_));
}

// ---------------------------------------------------------- via dispatcher

class CountingObserver final : public DispatchObserver {
 public:
  void WorkerEjected(const Worker&, const Ejection&) override { ++ejected; }
  void WorkerReturned(const Worker&) override { ++returned; }
  int ejected = 0;
  int returned = 0;
};

TEST(OutlierDispatchTest, FailingWorkerIsEjectedOthersTakeItsShareAndItComesBack) {
  Config config;
  config.store.kind = StoreKind::kMemory;
  config.routing.strategy = "round_robin";
  config.routing.outlier = Cfg();
  config.tasks.max_attempts = 10;
  config.tasks.retry_backoff = {seconds(0), seconds(0),
                                0};  // retries at once: ejection is the point
  ManualClock clock;
  MemoryStore store;
  test::FakeOutbox outbox;
  Dispatcher d(config, store, clock, outbox);
  CountingObserver observer;
  d.set_observer(&observer);

  Hello hello;
  hello.role = "worker";
  hello.proto = 1;
  hello.skills = {"x"};
  hello.capacity = 1;
  hello.name = "bad";
  d.AddWorker(1, hello);
  hello.name = "good";
  d.AddWorker(2, hello);
  Worker& bad = *d.workers().Find(1);

  // Every task the bad worker gets, it fails (retryable); the good one succeeds.
  auto answer_all = [&] {
    for (ConnId conn : {ConnId{1}, ConnId{2}}) {
      for (const auto& task : outbox.TakeType(conn, "task")) {
        ResultMsg r;
        r.id = task["id"];
        r.ok = conn == 2;
        r.error = "boom";
        d.OnResult(conn, r);
      }
    }
  };
  SubmitReq req;
  req.skills = {"x"};
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(d.Submit(req).status.ok());
    answer_all();
  }
  for (int i = 0; i < 20 && d.stats().running + d.stats().queued > 0; ++i) answer_all();

  EXPECT_EQ(bad.state, WorkerState::kEjected);
  EXPECT_EQ(observer.ejected, 1);
  EXPECT_EQ(bad.failed, 3u);
  EXPECT_EQ(d.stats().succeeded, 20u) << "the good worker took the bad one's share";

  // The cool-off is a dispatcher deadline: it fires when the clock gets there.
  ASSERT_TRUE(d.NextDeadline());
  clock.Advance(seconds(9));
  d.RunDue();
  EXPECT_EQ(bad.state, WorkerState::kEjected);
  clock.Advance(seconds(1));
  d.RunDue();
  EXPECT_EQ(bad.state, WorkerState::kReady);
  EXPECT_EQ(observer.returned, 1);
}

}  // namespace
}  // namespace pincer
