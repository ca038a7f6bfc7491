#include "common/backoff.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

namespace pincer {

std::chrono::milliseconds BackoffDelay(const BackoffConfig& config, int failures, double random01) {
  const double initial = static_cast<double>(std::max<int64_t>(config.initial.count(), 0));
  const double cap = static_cast<double>(std::max<int64_t>(config.max.count(), 0));
  // Doubling in floating point and capping before the conversion keeps a
  // long run of failures from overflowing an integer shift.
  const double grown = initial * std::pow(2.0, std::clamp(failures, 0, 62));
  const double base = std::min(grown, cap);
  const double r = std::clamp(random01, 0.0, 1.0);
  const double jitter = std::clamp(config.jitter, 0.0, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(base + base * jitter * r));
}

Backoff::Backoff(Millis initial, Millis max, std::function<double()> unit_random)
    : config_{initial, max, 0.0}, unit_random_(std::move(unit_random)) {}

Backoff::Millis Backoff::Next() {
  const Millis base = BackoffDelay(config_, failures_, 0.0);
  if (failures_ < 62) ++failures_;
  const double r = std::clamp(unit_random_(), 0.0, 1.0);
  const auto half = base.count() / 2;
  return Millis(half + static_cast<Millis::rep>(r * static_cast<double>(base.count() - half)));
}

}  // namespace pincer
