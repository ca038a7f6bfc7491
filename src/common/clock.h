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
  int64_t UnixMillis() const override { return UnixMillisAt(SteadyClock::now()); }
  // The wall-clock time at monotonic time `now` (a recent reading).
  static int64_t UnixMillisAt(TimePoint now);
};

// The system clock, read once per burst of work. Between Hold() and
// Release() every reading returns the time Hold() took: the event loop
// holds it while it handles the lines of one read, which all happen "at
// once" anyway, instead of reading the clock several times per line.
// Outside a hold it is the system clock.
class HeldClock final : public Clock {
 public:
  TimePoint Now() const override { return held_ ? now_ : SteadyClock::now(); }
  int64_t UnixMillis() const override {
    return held_ ? unix_ms_ : SystemClock::UnixMillisAt(SteadyClock::now());
  }
  void Hold() {
    now_ = SteadyClock::now();
    unix_ms_ = SystemClock::UnixMillisAt(now_);
    held_ = true;
  }
  void Release() { held_ = false; }

 private:
  bool held_ = false;
  TimePoint now_{};
  int64_t unix_ms_ = 0;
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
