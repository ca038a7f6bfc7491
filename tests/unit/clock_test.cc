// HeldClock: one reading per burst of work, the live clock otherwise.
#include "common/clock.h"

#include <gtest/gtest.h>

namespace pincer {
namespace {

// Spins until the steady clock has moved past `t` (no sleeping: the
// monotonic clock is guaranteed to advance).
void WaitPast(TimePoint t) {
  while (SteadyClock::now() <= t) {
  }
}

TEST(HeldClockTest, ReadsTheSameTimeWhileHeldAndMovesOnceReleased) {
  HeldClock clock;
  clock.Hold();
  const TimePoint held = clock.Now();
  const int64_t held_ms = clock.UnixMillis();
  WaitPast(held + std::chrono::milliseconds(2));
  EXPECT_EQ(clock.Now(), held);
  EXPECT_EQ(clock.UnixMillis(), held_ms);
  clock.Release();
  EXPECT_GT(clock.Now(), held);
  EXPECT_GT(clock.UnixMillis(), held_ms);
}

TEST(HeldClockTest, WallTimeAgreesWithTheSystemClock) {
  HeldClock clock;
  clock.Hold();
  const int64_t system_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
  // Derived from the monotonic clock and an offset: within a second.
  EXPECT_NEAR(static_cast<double>(clock.UnixMillis()), static_cast<double>(system_ms), 1000.0);
}

}  // namespace
}  // namespace pincer
