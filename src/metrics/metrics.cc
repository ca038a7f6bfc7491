#include "metrics/metrics.h"

#include <CivetServer.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <sstream>

namespace pincer {
namespace {

// How long an HTTP request waits for the event loop. A loop that cannot run
// a tiny closure in this time is stuck, and /healthz should say so.
constexpr auto kLoopWait = std::chrono::seconds(2);
// The metrics server's threads: each idle connection holds one for up to
// the request timeout (civetweb serves a connection per thread).
constexpr int kHttpThreads = 50;
constexpr std::chrono::milliseconds kHttpRequestTimeout{5000};

// Task durations run from sub-second tool calls to hour-long agent runs.
const prometheus::Histogram::BucketBoundaries& DurationBuckets() {
  static const prometheus::Histogram::BucketBoundaries b{0.1, 0.25, 0.5, 1,   2.5, 5,    10,
                                                         30,  60,   120, 300, 600, 1800, 3600};
  return b;
}

}  // namespace

// Civetweb calls this on its own threads.
class Metrics::Handler final : public CivetHandler {
 public:
  explicit Handler(Metrics& m) : m_(m) {}

  bool handleGet(CivetServer*, mg_connection* conn) override {
    const mg_request_info* req = mg_get_request_info(conn);
    const std::string uri = req->local_uri ? req->local_uri : "";
    if (uri == "/metrics") {
      // Stale gauges are better than none if the loop is slow: counters and
      // histograms are current either way.
      m_.OnLoop([this] { m_.Refresh(); });
      const std::string body = m_.Text();
      mg_send_http_ok(conn, "text/plain; version=0.0.4; charset=utf-8",
                      static_cast<long long>(body.size()));
      mg_write(conn, body.data(), body.size());
      return true;
    }
    if (uri == "/healthz") {
      // A loop that cannot run an empty closure in time is stuck.
      const bool loop_ok = m_.OnLoop([] {});
      auto [status, body] =
          loop_ok ? m_.Health() : std::pair<int, std::string>{503, "event loop not responding\n"};
      if (status == 200) {
        mg_send_http_ok(conn, "text/plain; charset=utf-8", static_cast<long long>(body.size()));
        mg_write(conn, body.data(), body.size());
      } else {
        mg_send_http_error(conn, status, "%s", body.c_str());
      }
      return true;
    }
    mg_send_http_error(conn, 404, "not found; try /, /metrics or /healthz\n");
    return true;
  }

 private:
  Metrics& m_;
};

Metrics::Metrics(asio::io_context& io, Dispatcher& dispatcher, std::size_t max_skill_sets)
    : io_(io),
      dispatcher_(dispatcher),
      registry_(std::make_shared<prometheus::Registry>()),
      max_skill_sets_(max_skill_sets) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  auto& r = *registry_;
  submitted_ = &BuildCounter()
                    .Name("pincer_tasks_submitted_total")
                    .Help("Tasks accepted by submit (idempotent repeats not counted).")
                    .Register(r)
                    .Add({});
  ended_ = &BuildCounter()
                .Name("pincer_tasks_ended_total")
                .Help("Tasks that reached an end state, by state.")
                .Register(r);
  for (TaskState s :
       {TaskState::kSucceeded, TaskState::kFailed, TaskState::kCancelled, TaskState::kTimedOut}) {
    // Added up front so rate() sees 0, not nothing.
    ended_by_state_[static_cast<std::size_t>(s)] =
        &ended_->Add({{"state", std::string(TaskStateName(s))}});
  }
  attempts_ = &BuildCounter()
                   .Name("pincer_task_attempts_total")
                   .Help("Attempts that a worker answered, by result (ok or failed).")
                   .Register(r);
  attempts_ok_ = &attempts_->Add({{"result", "ok"}});
  attempts_failed_ = &attempts_->Add({{"result", "failed"}});
  tokens_ = &BuildCounter()
                 .Name("pincer_tokens_total")
                 .Help(
                     "Tokens the workers reported in results' usage, by the task's skill set, "
                     "the model (\"none\": not named) and kind (input or output); at most " +
                     std::to_string(kMaxUsageSeries) +
                     " skill/model pairs of their own, the rest \"other\".")
                 .Register(r);
  cost_ = &BuildCounter()
               .Name("pincer_cost_total")
               .Help("Cost the workers reported in results' usage, by skill set and model.")
               .Register(r);
  duration_ = &BuildHistogram()
                   .Name("pincer_task_duration_seconds")
                   .Help("Time from submit to end state, by the task's skill set (at most " +
                         std::to_string(max_skill_sets) +
                         " of their own, the rest \"other\") and end state.")
                   .Register(r);
  queue_depth_ = &BuildGauge()
                      .Name("pincer_queue_depth")
                      .Help("Tasks waiting for a worker (state queued).")
                      .Register(r)
                      .Add({});
  queue_by_skills_ = &BuildGauge()
                          .Name("pincer_queue_depth_by_skills")
                          .Help(
                              "Queued tasks by the skill set they require (\"any\": none; "
                              "\"other\": the skill sets over the cap).")
                          .Register(r);
  running_ = &BuildGauge()
                  .Name("pincer_tasks_running")
                  .Help("Tasks running on a worker now.")
                  .Register(r)
                  .Add({});
  unroutable_ = &BuildGauge()
                     .Name("pincer_unroutable_tasks")
                     .Help("Queued tasks that need a skill no connected worker has.")
                     .Register(r)
                     .Add({});
  workers_ = &BuildGauge()
                  .Name("pincer_workers")
                  .Help("Connected workers by state (ready, draining, ejected).")
                  .Register(r);
  skill_workers_ = &BuildGauge()
                        .Name("pincer_skill_workers")
                        .Help(
                            "Ready workers that have the skill, for skills a worker or a live task "
                            "has (\"other\": ready workers with a skill over the cap).")
                        .Register(r);
  worker_inflight_ =
      &BuildGauge().Name("pincer_worker_inflight").Help("Tasks running on the worker.").Register(r);
  worker_capacity_ = &BuildGauge()
                          .Name("pincer_worker_capacity")
                          .Help("Tasks the worker runs at once.")
                          .Register(r);
  worker_cpu_ = &BuildGauge()
                     .Name("pincer_worker_cpu_ratio")
                     .Help("CPU use the worker last reported (1 = one core).")
                     .Register(r);
  worker_rss_ = &BuildGauge()
                     .Name("pincer_worker_rss_bytes")
                     .Help("Resident memory the worker last reported.")
                     .Register(r);
  ejections_ = &BuildCounter()
                    .Name("pincer_worker_ejections_total")
                    .Help("Times outlier detection took a worker out of routing.")
                    .Register(r)
                    .Add({});
  pool_restarts_ = &BuildCounter()
                        .Name("pincer_pool_restarts_total")
                        .Help("Worker processes of the pool restarted by the supervisor.")
                        .Register(r);
  pool_failed_ = &BuildGauge()
                      .Name("pincer_pool_failed")
                      .Help("1 while the pool is failed (restarted too often; no more restarts).")
                      .Register(r);
  for (const char* s : {"ready", "draining", "ejected"}) workers_->Add({{"state", s}});
  SkillSlot& other = slots_.emplace_back();
  other.label = "other";
  other.classes = 1;  // never freed
  slot_by_label_.emplace(other.label, kOtherSlot);
}

Metrics::~Metrics() {
  // Stop civetweb first: its threads call back into this object.
  server_.reset();
}

Status Metrics::Serve(const std::string& address) {
  handler_ = std::make_unique<Handler>(*this);
  // Idle or slow connections must not starve /healthz: civetweb gives
  // each connection a thread of its own until its request is read, so
  // there are many threads, a request must arrive within a few seconds,
  // connections are not kept alive between requests, and a close never
  // waits for the peer (no SO_LINGER). docs/operations.md, "/healthz".
  const std::vector<std::string> options{
      // clang-format off
      "listening_ports",       address,
      "num_threads",           std::to_string(kHttpThreads),
      "request_timeout_ms",    std::to_string(kHttpRequestTimeout.count()),
      "enable_keep_alive",     "no",
      "keep_alive_timeout_ms", "500",
      "linger_timeout_ms",     "-1",
      // clang-format on
  };
  try {
    server_ = std::make_unique<CivetServer>(options);
  } catch (const CivetException& e) {
    return Status("metrics_listen", "cannot serve metrics on " + address + ": " + e.what());
  }
  server_->addHandler("/metrics", *handler_);
  server_->addHandler("/healthz", *handler_);
  for (const auto& [uris, handler] : pages_) {
    for (const auto& uri : uris) server_->addHandler(uri, *handler);
  }
  std::string host = address.substr(0, address.rfind(':'));
  const std::vector<int> ports = server_->getListeningPorts();
  bound_ = host + ":" + (ports.empty() ? std::string("?") : std::to_string(ports.front()));
  spdlog::info("metrics on http://{}/metrics, health on /healthz{}", bound_,
               pages_.empty() ? "" : ", dashboard on /");
  return Status::Ok();
}

void Metrics::AddPages(std::vector<std::string> uris, std::shared_ptr<CivetHandler> handler) {
  pages_.emplace_back(std::move(uris), std::move(handler));
}

bool Metrics::OnLoop(std::function<void()> fn) {
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> f = done->get_future();
  asio::post(io_, [fn = std::move(fn), done] {
    fn();
    done->set_value();
  });
  // On a timeout `fn` may still run later, so it must not capture the
  // caller's stack.
  return f.wait_for(kLoopWait) == std::future_status::ready;
}

std::string Metrics::Text() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

// ------------------------------------------------------------ health

void Metrics::SetStoreStatus(const Status& st) {
  {
    std::lock_guard lock(store_error_mu_);
    store_error_ = st.ok() ? "" : st.message();
  }
  store_failing_ = !st.ok();
}

std::pair<int, std::string> Metrics::Health() const {
  switch (phase_.load()) {
    case kStarting:
      return {503, "not ready: starting\n"};
    case kStandby:
      return {503, "not ready: standby (another pincerd leads)\n"};
    case kStopping:
      return {503, "not ready: shutting down\n"};
    case kReady:
      break;
  }
  if (store_failing_) {
    std::lock_guard lock(store_error_mu_);
    return {503, "not ready: the task store cannot commit: " + store_error_ + "\n"};
  }
  return {200, "ok\n"};
}

// ------------------------------------------------------------ events

void Metrics::TaskSubmitted(const Task&) { ++pending_submitted_; }

uint32_t Metrics::SlotFor(const Task& t) {
  if (t.cls < slot_of_class_.size() && slot_of_class_[t.cls] != kNoSlot) {
    return slot_of_class_[t.cls];
  }
  if (t.cls >= slot_of_class_.size()) slot_of_class_.resize(t.cls + 1, kNoSlot);
  const std::string label = UsageBook::SkillsLabel(t.rec.skills);
  uint32_t slot = kOtherSlot;
  if (auto it = slot_by_label_.find(label); it != slot_by_label_.end()) {
    slot = it->second;
  } else if (slot_by_label_.size() - 1 < max_skill_sets_) {  // -1: `other`
    if (free_slots_.empty()) {
      slot = static_cast<uint32_t>(slots_.size());
      slots_.emplace_back();
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
    }
    slots_[slot].label = label;
    slot_by_label_.emplace(label, slot);
  }
  ++slots_[slot].classes;
  slot_of_class_[t.cls] = slot;
  mapped_classes_.push_back(t.cls);
  return slot;
}

void Metrics::DropGoneSkillSets() {
  std::erase_if(mapped_classes_, [this](ClassId cls) {
    if (dispatcher_.held(cls) > 0) return false;
    const uint32_t slot = slot_of_class_[cls];
    slot_of_class_[cls] = kNoSlot;
    SkillSlot& s = slots_[slot];
    if (--s.classes > 0) return true;
    // The last class of this label: its series leave /metrics.
    for (Durations& d : s.durations) {
      if (d.histogram) duration_->Remove(d.histogram);
      d = Durations{};
    }
    if (s.queued) queue_by_skills_->Remove(s.queued);
    slot_by_label_.erase(s.label);
    s = SkillSlot{};
    free_slots_.push_back(slot);
    return true;
  });
}

void Metrics::TaskEnded(const Task& t, double seconds) {
  const auto state = static_cast<std::size_t>(t.rec.state);
  ++pending_ended_[state];
  timeline_.Record(t.rec.state, t.rec.ended_ms, seconds);
  const uint32_t slot = SlotFor(t);
  Durations& d = slots_[slot].durations[state];
  const auto& bounds = DurationBuckets();
  if (!d.histogram) {
    d.histogram = &duration_->Add(
        {{"skill", slots_[slot].label}, {"state", std::string(TaskStateName(t.rec.state))}},
        bounds);
    d.pending.assign(bounds.size() + 1, 0);
  }
  // The first bucket whose bound is >= the value (prometheus' `le`).
  d.pending[std::lower_bound(bounds.begin(), bounds.end(), seconds) - bounds.begin()] += 1;
  d.pending_sum += seconds;
  if (!d.dirty) {
    d.dirty = true;
    dirty_durations_.emplace_back(slot, state);
  }
}

void Metrics::AttemptEnded(const Worker&, const Task&, bool ok, double) {
  ++(ok ? pending_attempts_ok_ : pending_attempts_failed_);
}

void Metrics::FlushCounts() {
  auto flush = [](uint64_t& pending, prometheus::Counter* counter) {
    if (pending && counter) counter->Increment(static_cast<double>(pending));
    pending = 0;
  };
  flush(pending_submitted_, submitted_);
  for (std::size_t s = 0; s < kStates; ++s) flush(pending_ended_[s], ended_by_state_[s]);
  flush(pending_attempts_ok_, attempts_ok_);
  flush(pending_attempts_failed_, attempts_failed_);
  for (const auto& [slot, state] : dirty_durations_) {
    Durations& d = slots_[slot].durations[state];
    d.histogram->ObserveMultiple(d.pending, d.pending_sum);
    std::fill(d.pending.begin(), d.pending.end(), 0);
    d.pending_sum = 0;
    d.dirty = false;
  }
  dirty_durations_.clear();
}

void Metrics::WorkerEjected(const Worker& w, const Ejection& e) {
  ejections_->Increment();
  // The observer sees every ejection, so the log line lives here.
  spdlog::warn("worker {} ({}) ejected for {}ms (ejection #{}): {}", w.id_str, w.name,
               e.cool_off.count(), e.count, e.reason);
}

void Metrics::UsageReported(const Worker&, const Task& t, const TaskUsage& u) {
  std::pair<std::string, std::string> key{UsageBook::SkillsLabel(t.rec.skills),
                                          u.model.empty() ? "none" : u.model};
  auto it = usage_series_.find(key);
  if (it == usage_series_.end()) {
    if (usage_series_.size() >= kMaxUsageSeries) key = {"other", "other"};
    it = usage_series_.try_emplace(key).first;
  }
  UsageSeries& series = it->second;
  if (!series.input) {
    series.input = &tokens_->Add({{"skill", key.first}, {"model", key.second}, {"kind", "input"}});
    series.output =
        &tokens_->Add({{"skill", key.first}, {"model", key.second}, {"kind", "output"}});
    series.cost = &cost_->Add({{"skill", key.first}, {"model", key.second}});
  }
  series.input->Increment(static_cast<double>(u.input));
  series.output->Increment(static_cast<double>(u.output));
  series.cost->Increment(u.cost);
}

void Metrics::WorkerReturned(const Worker& w) {
  spdlog::info("worker {} ({}) back in routing after its cool-off", w.id_str, w.name);
}

Metrics::PoolSeries& Metrics::Pool(const std::string& pool) {
  PoolSeries& p = pools_[pool];
  if (!p.restarts) p.restarts = &pool_restarts_->Add({{"pool", pool}});
  if (!p.failed) p.failed = &pool_failed_->Add({{"pool", pool}});
  return p;
}

void Metrics::PoolRestarted(const std::string& pool) { Pool(pool).restarts->Increment(); }

void Metrics::PoolFailed(const std::string& pool, bool failed) {
  Pool(pool).failed->Set(failed ? 1 : 0);
}

void Metrics::SetPools(const std::vector<std::string>& pools) {
  std::erase_if(pools_, [&](auto& entry) {
    if (std::find(pools.begin(), pools.end(), entry.first) != pools.end()) return false;
    pool_restarts_->Remove(entry.second.restarts);
    pool_failed_->Remove(entry.second.failed);
    return true;
  });
  for (const auto& pool : pools) Pool(pool);
}

// ------------------------------------------------------------ gauges

void Metrics::RemoveWorkerGauges(WorkerId, WorkerGauges& g) {
  worker_inflight_->Remove(g.inflight);
  worker_capacity_->Remove(g.capacity);
  worker_cpu_->Remove(g.cpu);
  worker_rss_->Remove(g.rss);
}

void Metrics::Refresh() {
  FlushCounts();
  DropGoneSkillSets();
  const DispatcherStats& s = dispatcher_.stats();
  queue_depth_->Set(static_cast<double>(s.queued));
  running_->Set(static_cast<double>(s.running));
  unroutable_->Set(static_cast<double>(dispatcher_.Unroutable()));

  // Queue depth by skill set, and the skills live tasks need: a walk over
  // the live tasks, once per scrape.
  std::map<std::string, int> by_skill;  // ready workers per skill
  std::vector<bool> class_seen;
  for (SkillSlot& slot : slots_) slot.queued_now = 0;
  dispatcher_.tasks().ForEachLive([&](const Task& t) {
    if (t.rec.state == TaskState::kQueued) ++slots_[SlotFor(t)].queued_now;
    if (t.cls >= class_seen.size()) class_seen.resize(t.cls + 1, false);
    if (!class_seen[t.cls]) {
      class_seen[t.cls] = true;
      for (const auto& skill : t.rec.skills) by_skill.emplace(skill, 0);
    }
  });
  for (SkillSlot& slot : slots_) {
    if (slot.label.empty() || (!slot.queued && slot.queued_now == 0)) continue;
    if (!slot.queued) slot.queued = &queue_by_skills_->Add({{"skills", slot.label}});
    slot.queued->Set(static_cast<double>(slot.queued_now));
  }

  // Workers: one series per connected worker; a gone worker's series go.
  std::map<std::string, int> by_state{{"ready", 0}, {"draining", 0}, {"ejected", 0}};
  std::unordered_map<WorkerId, WorkerGauges> seen;
  for (const auto& [id, wp] : dispatcher_.workers().all()) {
    const Worker& w = *wp;
    ++by_state[std::string(WorkerStateName(w.state))];
    for (const auto& skill : w.skills) by_skill[skill] += w.state == WorkerState::kReady;
    WorkerGauges g;
    if (auto it = worker_gauges_.find(id); it != worker_gauges_.end()) {
      g = it->second;
      worker_gauges_.erase(it);
    } else {
      const prometheus::Labels labels{{"worker", w.id_str}, {"name", w.name}};
      g = {&worker_inflight_->Add(labels), &worker_capacity_->Add(labels),
           &worker_cpu_->Add(labels), &worker_rss_->Add(labels)};
    }
    g.inflight->Set(w.inflight());
    g.capacity->Set(w.capacity);
    g.cpu->Set(w.cpu < 0 ? std::nan("") : w.cpu);  // NaN: not reported
    g.rss->Set(w.rss_bytes < 0 ? std::nan("") : static_cast<double>(w.rss_bytes));
    seen.emplace(id, g);
  }
  for (auto& [id, g] : worker_gauges_) RemoveWorkerGauges(id, g);
  worker_gauges_ = std::move(seen);
  for (const auto& [state, n] : by_state) workers_->Add({{"state", state}}).Set(n);

  // Ready workers by skill, for the skills a worker or a live task has: a
  // skill no one has any more leaves; at most max_skill_sets_ skills have
  // a series, those that had one first, and `other` counts the ready
  // workers that have any skill over the cap.
  std::erase_if(skill_gauges_, [&](auto& entry) {
    if (entry.first == "other" || by_skill.count(entry.first)) return false;
    skill_workers_->Remove(entry.second);
    return true;
  });
  // (A skill named "other" is counted there too: one series, one meaning.)
  std::size_t own = skill_gauges_.size() - skill_gauges_.count("other");
  bool over_cap = false;
  for (const auto& [skill, n] : by_skill) {
    if (skill == "other") {
      over_cap = true;
      continue;
    }
    if (!skill_gauges_.count(skill)) {
      if (own >= max_skill_sets_) {
        over_cap = true;
        continue;
      }
      ++own;
    }
    auto& g = skill_gauges_[skill];
    if (!g) g = &skill_workers_->Add({{"skill", skill}});
    g->Set(n);
  }
  if (over_cap) {
    int other = 0;
    for (const auto& [id, wp] : dispatcher_.workers().all()) {
      if (wp->state != WorkerState::kReady) continue;
      other += std::any_of(wp->skills.begin(), wp->skills.end(), [&](const std::string& k) {
        return k == "other" || !skill_gauges_.count(k);
      });
    }
    auto& g = skill_gauges_["other"];
    if (!g) g = &skill_workers_->Add({{"skill", "other"}});
    g->Set(other);
  } else if (auto it = skill_gauges_.find("other"); it != skill_gauges_.end()) {
    skill_workers_->Remove(it->second);
    skill_gauges_.erase(it);
  }
}

}  // namespace pincer
