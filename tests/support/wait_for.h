// Waiting for something to become true in tests: poll with short intervals
// under a bounded timeout, instead of sleeping "long enough".
#pragma once

#include <chrono>
#include <thread>

namespace pincer::test {

// Calls `predicate` until it returns true or `timeout` passes; returns the
// last result. The predicate is always called at least once, and once more
// after the timeout, so a condition that became true late still counts.
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

}  // namespace pincer::test
