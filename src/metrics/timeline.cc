#include "metrics/timeline.h"

#include <bit>
#include <cmath>

namespace pincer {

std::size_t Timeline::Bucket(double ms) {
  if (!(ms >= 1)) return 0;  // also NaN
  // The exponent and the top three bits of the mantissa: 8 buckets a
  // power of two, no log() on the path of every task.
  const auto bits = std::bit_cast<uint64_t>(ms);
  const int64_t exponent = static_cast<int64_t>((bits >> 52) & 0x7ff) - 1023;
  if (exponent >= static_cast<int64_t>(kOctaves)) return kBuckets - 1;
  return 1 + static_cast<std::size_t>(exponent) * 8 + ((bits >> 49) & 7);
}

double Timeline::BucketValue(std::size_t bucket) {
  if (bucket == 0) return 0.5;
  if (bucket >= kBuckets - 1) return std::ldexp(1.0, kOctaves);
  const std::size_t b = bucket - 1;
  const double low = std::ldexp(1.0 + static_cast<double>(b % 8) / 8, static_cast<int>(b / 8));
  const double high = std::ldexp(1.0 + static_cast<double>(b % 8 + 1) / 8, static_cast<int>(b / 8));
  return std::sqrt(low * high);
}

void Timeline::Record(TaskState state, int64_t ended_ms, double seconds) {
  if (!IsEnded(state) || ended_ms < 0) return;
  const int64_t index = ended_ms / kSlotMs;
  Slot& s = slots_[static_cast<std::size_t>(index) % kSlots];
  if (s.index != index) {
    if (s.index > index) return;  // older than the window
    s.index = index;
    s.ended.fill(0);
    s.total = 0;
    std::fill(s.durations.begin(), s.durations.end(), 0);
  }
  ++s.ended[static_cast<std::size_t>(state) - static_cast<std::size_t>(TaskState::kSucceeded)];
  if (s.durations.empty()) s.durations.assign(kBuckets, 0);
  ++s.durations[Bucket(seconds * 1000)];
  ++s.total;
}

double Timeline::Quantile(const Slot& s, double q) {
  if (s.total == 0) return -1;
  // The smallest bucket at or below which a share q of the ends lie.
  const auto rank = static_cast<uint64_t>(std::ceil(q * s.total));
  uint64_t seen = 0;
  for (std::size_t b = 0; b < s.durations.size(); ++b) {
    seen += s.durations[b];
    if (seen >= rank && seen > 0) return BucketValue(b) / 1000;
  }
  return BucketValue(kBuckets - 1) / 1000;
}

nlohmann::json Timeline::View(int64_t now_ms) const {
  using nlohmann::json;
  const int64_t last = now_ms / kSlotMs;
  const int64_t first = last - static_cast<int64_t>(kSlots) + 1;
  static constexpr const char* kNames[] = {"succeeded", "failed", "cancelled", "timed_out"};
  std::array<json, 4> ended;
  for (auto& e : ended) e = json::array();
  json p50 = json::array(), p99 = json::array();
  for (int64_t i = first; i <= last; ++i) {
    const Slot& s = slots_[static_cast<std::size_t>(i) % kSlots];
    const bool here = s.index == i;
    for (std::size_t k = 0; k < 4; ++k) ended[k].push_back(here ? s.ended[k] : 0);
    const double a = here ? Quantile(s, 0.5) : -1;
    const double b = here ? Quantile(s, 0.99) : -1;
    p50.push_back(a < 0 ? json(nullptr) : json(a));
    p99.push_back(b < 0 ? json(nullptr) : json(b));
  }
  json by_state = json::object();
  for (std::size_t k = 0; k < 4; ++k) by_state[kNames[k]] = std::move(ended[k]);
  return {{"slot_ms", kSlotMs},
          {"start_ms", first * kSlotMs},
          {"now_ms", now_ms},
          {"ended", std::move(by_state)},
          {"p50_seconds", std::move(p50)},
          {"p99_seconds", std::move(p99)}};
}

}  // namespace pincer
