// Waiting for something to become true in tests: poll with short intervals
// under a bounded timeout, instead of sleeping "long enough".
#pragma once

#include <chrono>
#include <thread>

namespace pincer::test {

// Calls `predicate` until it returns true or `timeout` passes; returns the
// last result. The predicate is always called at least once, and once more
// after the timeout, so a condition that became true late still counts.
// For one event (a reply, a connection, a state change); a workload whose
// length depends on the machine's speed waits with WaitWhileProgressing.
template <typename Predicate>
bool WaitFor(Predicate&& predicate, std::chrono::milliseconds timeout = std::chrono::seconds(10),
             std::chrono::milliseconds interval = std::chrono::milliseconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(interval);
  }
  return predicate();
}

// How long a workload may go without any progress before a test calls it
// stuck. Generous: a slow or loaded machine (or a sanitizer build) moves
// slowly but moves; a stuck one does not move at all.
inline constexpr std::chrono::milliseconds kStallTimeout = std::chrono::seconds(60);

// Waits for a workload to finish however long it takes, as long as it
// moves: calls `done` until it returns true, and gives up only when
// `progress` (a count that grows as the work advances: tasks ended,
// answers read) has not changed for `stall`. Each round calls `done` first,
// then `progress`, so `progress` may return what `done` just measured.
// Returns the last result of `done`.
template <typename Done, typename Progress>
bool WaitWhileProgressing(Done&& done, Progress&& progress,
                          std::chrono::milliseconds stall = kStallTimeout,
                          std::chrono::milliseconds interval = std::chrono::milliseconds(10)) {
  using Clock = std::chrono::steady_clock;
  if (done()) return true;
  auto last = progress();
  auto last_change = Clock::now();
  while (Clock::now() - last_change < stall) {
    std::this_thread::sleep_for(interval);
    if (done()) return true;
    auto now_progress = progress();
    if (now_progress != last) {
      last = now_progress;
      last_change = Clock::now();
    }
  }
  return done();
}

}  // namespace pincer::test
