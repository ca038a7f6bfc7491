// src/worker/backoff.h: reconnect delays, with the randomness injected.
#include <gtest/gtest.h>

#include "worker/backoff.h"

namespace pincer::worker {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, DoublesUpToTheCapWithoutJitterAtOne) {
  Backoff b(milliseconds(100), milliseconds(5000), [] { return 1.0; });
  const int64_t want[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000};
  for (int64_t w : want) EXPECT_EQ(b.Next().count(), w);
}

TEST(BackoffTest, JitterDrawsFromTheUpperHalf) {
  Backoff low(milliseconds(100), milliseconds(5000), [] { return 0.0; });
  EXPECT_EQ(low.Next().count(), 50);
  EXPECT_EQ(low.Next().count(), 100);
  Backoff mid(milliseconds(1000), milliseconds(5000), [] { return 0.5; });
  EXPECT_EQ(mid.Next().count(), 750);
}

TEST(BackoffTest, OutOfRangeRandomIsClamped) {
  Backoff b(milliseconds(100), milliseconds(5000), [] { return 7.0; });
  EXPECT_EQ(b.Next().count(), 100);
}

TEST(BackoffTest, ResetStartsOver) {
  Backoff b(milliseconds(100), milliseconds(5000), [] { return 1.0; });
  b.Next();
  b.Next();
  b.Next();
  b.Reset();
  EXPECT_EQ(b.Next().count(), 100);
}

}  // namespace
}  // namespace pincer::worker
