#include "core/outlier.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace pincer {
namespace {

// Weight of the newest attempt in the smoothed latency: recent enough to
// notice a worker that turned slow within a few attempts, smooth enough
// that one slow task does not make an outlier.
constexpr double kLatencyWeight = 0.3;

bool ShareSkill(const Worker& a, const Worker& b) {
  if (a.skills.empty() || b.skills.empty()) return a.skills.empty() && b.skills.empty();
  // Both sorted and unique (WorkerRegistry keeps them so).
  auto i = a.skills.begin();
  auto j = b.skills.begin();
  while (i != a.skills.end() && j != b.skills.end()) {
    if (*i == *j) return true;
    if (*i < *j) {
      ++i;
    } else {
      ++j;
    }
  }
  return false;
}

std::string Seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3gs", s);
  return buf;
}

}  // namespace

OutlierDetector::OutlierDetector(const OutlierConfig& config, const Clock& clock)
    : config_(config), clock_(clock) {}

std::optional<Ejection> OutlierDetector::Record(const Worker& w, bool ok, double seconds,
                                                const WorkerRegistry& workers) {
  History& h = history_[w.id];
  h.consecutive_failures = ok ? 0 : h.consecutive_failures + 1;
  h.latency =
      h.samples == 0 ? seconds : kLatencyWeight * seconds + (1 - kLatencyWeight) * h.latency;
  ++h.samples;

  // Attempts that end while a worker is out (or draining) still count
  // towards its history, but only a ready worker can be ejected.
  if (!config_.enabled || w.state != WorkerState::kReady) return std::nullopt;
  std::optional<std::string> why = WhyOutlier(w, h, workers);
  if (!why || !WithinEjectionCap(w, workers)) return std::nullopt;

  const TimePoint now = clock_.Now();
  // Like Envoy, a worker that has behaved for a long while starts again
  // from the base cool-off instead of paying for an old streak.
  if (h.ejections > 0 && now - h.returned_at >= config_.max_ejection) h.ejections = 0;
  ++h.ejections;
  return Ejection{CoolOff(h.ejections), ++h.generation, h.ejections, *why};
}

std::optional<std::string> OutlierDetector::WhyOutlier(const Worker& w, const History& h,
                                                       const WorkerRegistry& workers) const {
  if (config_.consecutive_failures > 0 && h.consecutive_failures >= config_.consecutive_failures) {
    return std::to_string(h.consecutive_failures) + " consecutive failed attempts";
  }
  if (config_.latency_factor <= 0 || h.samples < kMinLatencySamples) return std::nullopt;
  // Peers: workers sharing a skill with `w`. A scan, but only at the end of
  // an attempt and only with latency ejection on; routing never pays it.
  std::vector<double> peers;
  for (const auto& [id, other] : workers.all()) {
    if (id == w.id || !ShareSkill(w, *other)) continue;
    auto it = history_.find(id);
    if (it != history_.end() && it->second.samples >= kMinLatencySamples) {
      peers.push_back(it->second.latency);
    }
  }
  if (peers.empty()) return std::nullopt;
  auto mid = peers.begin() + static_cast<std::ptrdiff_t>(peers.size() / 2);
  std::nth_element(peers.begin(), mid, peers.end());
  const double median = *mid;
  if (median <= 0 || h.latency <= config_.latency_factor * median) return std::nullopt;
  return "attempt latency " + Seconds(h.latency) + " is more than " +
         Seconds(config_.latency_factor) + "x its peers' median " + Seconds(median);
}

bool OutlierDetector::WithinEjectionCap(const Worker& w, const WorkerRegistry& workers) const {
  // For each skill of `w` (or, for a worker without skills, among workers
  // without skills): after ejecting `w`, at most max_ejection_percent of
  // the workers with that skill may be out. Rounded down, so the only
  // worker of a skill is never ejected: its tasks would merely wait.
  auto allowed = [&](int total, int ejected) {
    const double cap = std::floor(total * config_.max_ejection_percent / 100.0 + 1e-9);
    return ejected + 1 <= cap;
  };
  if (w.skills.empty()) {
    int total = 0, ejected = 0;
    for (const auto& [id, other] : workers.all()) {
      if (!other->skills.empty()) continue;
      ++total;
      ejected += other->state == WorkerState::kEjected;
    }
    return allowed(total, ejected);
  }
  for (const std::string& skill : w.skills) {
    int total = 0, ejected = 0;
    for (const auto& [id, other] : workers.all()) {
      if (!std::binary_search(other->skills.begin(), other->skills.end(), skill)) continue;
      ++total;
      ejected += other->state == WorkerState::kEjected;
    }
    if (!allowed(total, ejected)) return false;
  }
  return true;
}

Duration OutlierDetector::CoolOff(int ejections) const {
  Duration d = config_.base_ejection;
  for (int i = 1; i < ejections && d < config_.max_ejection; ++i) d *= 2;
  return std::min(d, std::max(config_.max_ejection, config_.base_ejection));
}

bool OutlierDetector::Return(WorkerId id, uint64_t generation) {
  auto it = history_.find(id);
  if (it == history_.end() || it->second.generation != generation) return false;
  it->second.consecutive_failures = 0;
  it->second.returned_at = clock_.Now();
  return true;
}

int OutlierDetector::ConsecutiveFailures(WorkerId id) const {
  auto it = history_.find(id);
  return it == history_.end() ? 0 : it->second.consecutive_failures;
}

}  // namespace pincer
