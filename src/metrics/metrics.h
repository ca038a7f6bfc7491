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

#include <array>
#include <asio.hpp>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "common/status.h"
#include "core/dispatcher.h"

class CivetServer;

namespace pincer {

class Metrics final : public DispatchObserver {
 public:
  // `io` runs the event loop; `dispatcher` must outlive this object and is
  // only read on the loop thread.
  Metrics(asio::io_context& io, Dispatcher& dispatcher);
  // Stops the HTTP server (waits for requests in progress).
  ~Metrics() override;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Serves /metrics and /healthz on `address` ("host:port"; port 0 picks
  // one). Call on the loop thread, before the loop runs.
  Status Serve(const std::string& address);
  // "host:port" actually bound, once serving; "" otherwise.
  const std::string& bound() const { return bound_; }

  // Whether /healthz says 200: set once pincerd listens and has recovered,
  // cleared when it starts shutting down. Loop thread.
  void set_ready(bool ready) { ready_ = ready; }

  // For the supervisor (src/supervisor), on the loop thread.
  void PoolRestarted(const std::string& pool);
  void PoolFailed(const std::string& pool, bool failed = true);

  // Brings every metric up to date: the gauges with the dispatcher, the
  // counters and histograms with the events counted since. Loop thread.
  void Refresh();
  // The text exposition of every metric, as /metrics answers. Any thread.
  std::string Text() const;

  // DispatchObserver (loop thread).
  void TaskSubmitted(const Task& task) override;
  void TaskEnded(const Task& task, double seconds_since_submit) override;
  void AttemptEnded(const Worker& worker, const Task& task, bool ok, double seconds) override;
  void WorkerEjected(const Worker& worker, const Ejection& ejection) override;
  void WorkerReturned(const Worker& worker) override;

 private:
  class Handler;
  struct WorkerGauges {
    prometheus::Gauge* inflight;
    prometheus::Gauge* capacity;
    prometheus::Gauge* cpu;
    prometheus::Gauge* rss;
  };

  // From an HTTP thread: runs `fn` on the loop and waits for it; false when
  // the loop did not get to it in time.
  bool OnLoop(std::function<void()> fn);
  void RemoveWorkerGauges(WorkerId id, WorkerGauges& g);

  asio::io_context& io_;
  Dispatcher& dispatcher_;
  std::shared_ptr<prometheus::Registry> registry_;
  bool ready_ = false;

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
  std::vector<std::array<Durations, kStates>> duration_by_class_;  // by ClassId
  // Per-task counts wait here and reach prometheus when a scrape refreshes
  // the metrics (each prometheus update takes a lock or an atomic loop: too
  // dear for every task). Loop thread.
  uint64_t pending_submitted_ = 0;
  std::array<uint64_t, kStates> pending_ended_{};
  uint64_t pending_attempts_ok_ = 0;
  uint64_t pending_attempts_failed_ = 0;
  std::vector<std::pair<ClassId, std::size_t>> dirty_durations_;  // (class, state)
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

  std::unordered_map<WorkerId, WorkerGauges> worker_gauges_;
  std::map<std::string, prometheus::Gauge*> queue_gauges_;  // by skill set
  std::map<std::string, prometheus::Gauge*> skill_gauges_;  // kept at 0 once seen

  std::unique_ptr<Handler> handler_;
  std::unique_ptr<CivetServer> server_;
  std::string bound_;
};

}  // namespace pincer
