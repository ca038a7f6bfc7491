#include "common/clock.h"

namespace pincer {

// Reading the wall clock costs about twice the monotonic one, and pincerd
// stamps several times per task. So wall time is derived from the monotonic
// clock and an offset taken from the wall clock at most once a second
// (per thread): a step of the system clock shows up within that second.
int64_t SystemClock::UnixMillisAt(TimePoint now) {
  using std::chrono::milliseconds;
  thread_local TimePoint synced_at{};
  thread_local std::chrono::system_clock::time_point wall_at{};
  if (synced_at == TimePoint{} || now - synced_at >= std::chrono::seconds(1)) {
    synced_at = now;
    wall_at = std::chrono::system_clock::now();
  }
  const auto wall =
      wall_at + std::chrono::duration_cast<std::chrono::system_clock::duration>(now - synced_at);
  return std::chrono::duration_cast<milliseconds>(wall.time_since_epoch()).count();
}

}  // namespace pincer
