// pincerd's metrics (docs/operations.md, "Metrics"): Prometheus counters,
// gauges and histograms, and the HTTP endpoint on `metrics_listen` that
// serves them at /metrics with /healthz beside it.
//
// Threading: counters and histograms move on the event-loop thread, as the
// dispatcher reports events (DispatchObserver) and the supervisor calls
// PoolRestarted/PoolFailed. HTTP requests arrive on civetweb's threads;
// they never touch the dispatcher themselves but post a refresh of the
// gauges to the event loop and wait (bounded) for it, so a scrape sees
// current values and a stalled loop shows as a failing /healthz.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <asio.hpp>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "core/dispatcher.h"
#include "metrics/timeline.h"

class CivetServer;
class CivetHandler;

namespace pincer {

class Metrics final : public DispatchObserver {
 public:
  // Skill sets (client-chosen) with series of their own, at most; the rest
  // share the label `other` (docs/operations.md, "Metrics"). The same cap
  // holds for the skills of pincer_skill_workers (worker-chosen).
  static constexpr std::size_t kMaxSkillSets = 100;
  // (skill set, model) pairs with usage series of their own, at most; the
  // rest share skill="other", model="other".
  static constexpr std::size_t kMaxUsageSeries = 200;

  // `io` runs the event loop; `dispatcher` must outlive this object and is
  // only read on the loop thread.
  Metrics(asio::io_context& io, Dispatcher& dispatcher, std::size_t max_skill_sets = kMaxSkillSets);
  // Stops the HTTP server (waits for requests in progress).
  ~Metrics() override;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Serves /metrics and /healthz on `address` ("host:port"; port 0 picks
  // one). Call on the loop thread, before the loop runs.
  Status Serve(const std::string& address);
  // "host:port" actually bound, once serving; "" otherwise.
  const std::string& bound() const { return bound_; }
  // More pages on the same server (the dashboard, src/dashboard): served
  // at each of `uris` and below, by `handler`, on civetweb's threads.
  // Call before Serve. Kept here, and stopped with the server.
  void AddPages(std::vector<std::string> uris, std::shared_ptr<CivetHandler> handler);

  // The last 15 minutes of task ends (the dashboard's charts). Loop thread.
  const Timeline& timeline() const { return timeline_; }
  // From an HTTP thread: runs `fn` on the loop and waits for it; false when
  // the loop did not get to it in time (`fn` may then still run later, so
  // it must not capture the caller's stack). Any thread but the loop's.
  bool OnLoop(std::function<void()> fn);

  // /healthz (docs/operations.md): 200 only while ready and the store
  // commits. set_ready(true) once pincerd listens and has recovered;
  // set_ready(false) when it starts shutting down (for good). Loop thread;
  // civetweb's threads read the state.
  void set_ready(bool ready) { phase_ = ready ? kReady : kStopping; }
  // A standby (docs/high-availability.md): 503 until set_ready(true).
  void set_standby() { phase_ = kStandby; }
  // Not ok while the store cannot commit (its error says why); ok again
  // once a commit works. Loop thread.
  void SetStoreStatus(const Status& st);
  // The /healthz answer: 200 "ok\n", or 503 and why. Any thread (it does
  // not check the event loop; the HTTP handler does that first).
  std::pair<int, std::string> Health() const;

  // For the supervisor (src/supervisor), on the loop thread.
  void PoolRestarted(const std::string& pool);
  void PoolFailed(const std::string& pool, bool failed = true);
  // The configured pools: each has its series (at 0 until something
  // happens); a pool no longer configured loses them. Loop thread.
  void SetPools(const std::vector<std::string>& pools);

  // Brings every metric up to date: the gauges with the dispatcher, the
  // counters and histograms with the events counted since; drops the
  // series of skill sets whose last task is gone. Loop thread.
  void Refresh();
  // The text exposition of every metric, as /metrics answers. Any thread.
  std::string Text() const;

  // DispatchObserver (loop thread).
  void TaskSubmitted(const Task& task) override;
  void TaskEnded(const Task& task, double seconds_since_submit) override;
  void AttemptEnded(const Worker& worker, const Task& task, bool ok, double seconds) override;
  void WorkerEjected(const Worker& worker, const Ejection& ejection) override;
  void WorkerReturned(const Worker& worker) override;
  void UsageReported(const Worker& worker, const Task& task, const TaskUsage& usage) override;

 private:
  class Handler;
  struct WorkerGauges {
    prometheus::Gauge* inflight;
    prometheus::Gauge* capacity;
    prometheus::Gauge* cpu;
    prometheus::Gauge* rss;
  };
  enum Phase : uint8_t { kStarting, kStandby, kReady, kStopping };

  void RemoveWorkerGauges(WorkerId id, WorkerGauges& g);

  asio::io_context& io_;
  Dispatcher& dispatcher_;
  std::shared_ptr<prometheus::Registry> registry_;
  // Health: written on the loop, read by civetweb's threads.
  std::atomic<Phase> phase_{kStarting};
  std::atomic<bool> store_failing_{false};
  mutable std::mutex store_error_mu_;
  std::string store_error_;  // under store_error_mu_

  prometheus::Counter* submitted_;
  prometheus::Family<prometheus::Counter>* ended_;
  prometheus::Family<prometheus::Counter>* attempts_;
  prometheus::Family<prometheus::Histogram>* duration_;
  // Children of the per-task families, looked up once: a label lookup
  // builds a label map and hashes it, too dear for every task.
  static constexpr std::size_t kStates = 6;  // TaskState values
  std::array<prometheus::Counter*, kStates> ended_by_state_{};
  prometheus::Counter* attempts_ok_;
  prometheus::Counter* attempts_failed_;
  // A histogram child and the observations that have not reached it yet.
  struct Durations {
    prometheus::Histogram* histogram = nullptr;
    std::vector<double> pending;  // per bucket (+Inf last), not cumulative
    double pending_sum = 0;
    bool dirty = false;  // listed in dirty_durations_
  };
  // The series of one skill-set label: the duration histograms and the
  // queue depth. Slot 0 is `other`, kept for good; the others serve the
  // skill classes mapped to them and go when the last of those has no
  // task left (Dispatcher::held). Distinct classes can share a label
  // ("a,b" and ["a","b"]), hence a count.
  struct SkillSlot {
    std::string label;  // "" while free
    std::array<Durations, kStates> durations;
    prometheus::Gauge* queued = nullptr;
    uint32_t classes = 0;    // skill classes mapped here
    int64_t queued_now = 0;  // scratch for Refresh
  };
  static constexpr uint32_t kOtherSlot = 0;
  static constexpr uint32_t kNoSlot = UINT32_MAX;
  // The slot of the task's skill class, given one when it has none yet.
  uint32_t SlotFor(const Task& t);
  // Takes skill classes that have no task left off their slots, and
  // removes the series of slots left without classes.
  void DropGoneSkillSets();
  std::size_t max_skill_sets_;
  std::vector<SkillSlot> slots_;
  std::vector<uint32_t> free_slots_;
  std::unordered_map<std::string, uint32_t> slot_by_label_;
  std::vector<uint32_t> slot_of_class_;  // by ClassId; kNoSlot = none
  std::vector<ClassId> mapped_classes_;  // those with a slot
  // Per-task counts wait here and reach prometheus when a scrape refreshes
  // the metrics (each prometheus update takes a lock or an atomic loop: too
  // dear for every task). Loop thread.
  uint64_t pending_submitted_ = 0;
  std::array<uint64_t, kStates> pending_ended_{};
  uint64_t pending_attempts_ok_ = 0;
  uint64_t pending_attempts_failed_ = 0;
  std::vector<std::pair<uint32_t, std::size_t>> dirty_durations_;  // (slot, state)
  void FlushCounts();
  prometheus::Gauge* queue_depth_;
  prometheus::Family<prometheus::Gauge>* queue_by_skills_;
  prometheus::Gauge* running_;
  prometheus::Gauge* unroutable_;
  prometheus::Family<prometheus::Gauge>* workers_;
  prometheus::Family<prometheus::Gauge>* skill_workers_;
  prometheus::Family<prometheus::Gauge>* worker_inflight_;
  prometheus::Family<prometheus::Gauge>* worker_capacity_;
  prometheus::Family<prometheus::Gauge>* worker_cpu_;
  prometheus::Family<prometheus::Gauge>* worker_rss_;
  prometheus::Counter* ejections_;
  prometheus::Family<prometheus::Counter>* pool_restarts_;
  prometheus::Family<prometheus::Gauge>* pool_failed_;
  struct PoolSeries {
    prometheus::Counter* restarts = nullptr;
    prometheus::Gauge* failed = nullptr;
  };
  PoolSeries& Pool(const std::string& pool);
  std::map<std::string, PoolSeries> pools_;

  std::unordered_map<WorkerId, WorkerGauges> worker_gauges_;
  // pincer_skill_workers, by skill; "other" for the skills over the cap.
  std::map<std::string, prometheus::Gauge*> skill_gauges_;

  // pincer_tokens_total and pincer_cost_total, by (skill set, model).
  // Counted as results come (results with usage are rare next to tasks).
  struct UsageSeries {
    prometheus::Counter* input = nullptr;
    prometheus::Counter* output = nullptr;
    prometheus::Counter* cost = nullptr;
  };
  prometheus::Family<prometheus::Counter>* tokens_;
  prometheus::Family<prometheus::Counter>* cost_;
  std::map<std::pair<std::string, std::string>, UsageSeries> usage_series_;

  Timeline timeline_;

  std::unique_ptr<Handler> handler_;
  std::vector<std::pair<std::vector<std::string>, std::shared_ptr<CivetHandler>>> pages_;
  std::unique_ptr<CivetServer> server_;
  std::string bound_;
};

}  // namespace pincer
