// Outlier ejection: the feedback loop that keeps tasks away from a worker
// that keeps failing them or is far slower than its peers (the idea of
// Envoy's outlier detection, per routing.outlier in the config).
//
// The detector only decides; the dispatcher applies: it marks an ejected
// worker WorkerState::kEjected (out of routing), arms a deadline for the
// end of the cool-off, and calls Return() when that deadline fires. So the
// detector is pure and a unit test drives it with a ManualClock.
//
// Threading: the event-loop thread, like the dispatcher that owns it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/clock.h"
#include "config/config.h"
#include "registry/worker_registry.h"

namespace pincer {

struct Ejection {
  Duration cool_off{0};     // how long the worker stays out
  uint64_t generation = 0;  // pass back to Return() when the cool-off ends
  int count = 0;            // 1 for the first ejection, 2 for the next, ...
  std::string reason;       // for logs: "5 consecutive failed attempts"
};

class OutlierDetector {
 public:
  // Attempts needed before a worker's latency is compared with its peers':
  // a worker's first few attempts say little about its speed.
  static constexpr int kMinLatencySamples = 5;

  // `clock` must outlive the detector.
  OutlierDetector(const OutlierConfig& config, const Clock& clock);

  void Reconfigure(const OutlierConfig& config) { config_ = config; }

  // Records the end of an attempt on `w`, which took `seconds`. Returns the
  // ejection to apply when `w` is ready and has just become an outlier and
  // ejecting it keeps within max_ejection_percent for each of its skills.
  // `workers` is the registry `w` belongs to (peers and the share cap).
  // REQUIRES: the caller applies a returned ejection at once.
  std::optional<Ejection> Record(const Worker& w, bool ok, double seconds,
                                 const WorkerRegistry& workers);

  // The cool-off of ejection `generation` of worker `id` is over. True when
  // that ejection is still the worker's latest, so it should come back; its
  // failure count starts afresh.
  bool Return(WorkerId id, uint64_t generation);

  // The worker is gone; its history goes with it.
  void Forget(WorkerId id) { history_.erase(id); }

  // For tests and views.
  int ConsecutiveFailures(WorkerId id) const;

 private:
  struct History {
    int consecutive_failures = 0;
    double latency = 0;  // exponentially weighted mean of attempt seconds
    int samples = 0;
    int ejections = 0;  // drives the doubling; forgotten after a long healthy spell
    uint64_t generation = 0;
    TimePoint returned_at{};
  };

  std::optional<std::string> WhyOutlier(const Worker& w, const History& h,
                                        const WorkerRegistry& workers) const;
  bool WithinEjectionCap(const Worker& w, const WorkerRegistry& workers) const;
  Duration CoolOff(int ejections) const;

  OutlierConfig config_;
  const Clock& clock_;
  std::unordered_map<WorkerId, History> history_;
};

}  // namespace pincer
