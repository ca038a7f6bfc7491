// Time as the core sees it. Logic never reads the system clock directly:
// it takes a Clock, so tests drive time with a ManualClock instead of sleeping.
#pragma once

#include <chrono>
#include <cstdint>

namespace pincer {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time, for deadlines and durations.
  virtual TimePoint Now() const = 0;
  // Wall-clock time in unix milliseconds, for what users and workers see.
  virtual int64_t UnixMillis() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint Now() const override { return SteadyClock::now(); }
  int64_t UnixMillis() const override;
};

// A clock that moves only when told to. For tests.
class ManualClock final : public Clock {
 public:
  TimePoint Now() const override { return now_; }
  int64_t UnixMillis() const override {
    return unix_base_ms_ +
           std::chrono::duration_cast<std::chrono::milliseconds>(now_.time_since_epoch()).count();
  }
  void Advance(std::chrono::milliseconds d) { now_ += d; }

 private:
  TimePoint now_{std::chrono::hours(1)};
  int64_t unix_base_ms_ = 1'700'000'000'000;
};

}  // namespace pincer
