#include "supervisor/backoff.h"

#include <algorithm>
#include <cmath>

namespace pincer {

Duration BackoffDelay(const BackoffConfig& config, int failures, double random01) {
  const double initial = static_cast<double>(std::max<int64_t>(config.initial.count(), 0));
  const double cap = static_cast<double>(std::max<int64_t>(config.max.count(), 0));
  // Doubling in floating point and capping before the conversion keeps a
  // long crash loop from overflowing an integer shift.
  const double grown = initial * std::pow(2.0, std::clamp(failures, 0, 62));
  const double base = std::min(grown, cap);
  const double r = std::clamp(random01, 0.0, 1.0);
  const double jitter = std::clamp(config.jitter, 0.0, 1.0);
  return Duration(static_cast<int64_t>(base + base * jitter * r));
}

}  // namespace pincer
