// src/common/backoff.h: restart, retry and reconnect delays, with the
// randomness injected.
#include "common/backoff.h"

#include <gtest/gtest.h>

namespace pincer {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, DoublesFromInitialUpToMax) {
  BackoffConfig c{milliseconds(500), milliseconds(30000), 0.0};
  EXPECT_EQ(BackoffDelay(c, 0, 0.0), milliseconds(500));
  EXPECT_EQ(BackoffDelay(c, 1, 0.0), milliseconds(1000));
  EXPECT_EQ(BackoffDelay(c, 2, 0.0), milliseconds(2000));
  EXPECT_EQ(BackoffDelay(c, 6, 0.0), milliseconds(30000));
  EXPECT_EQ(BackoffDelay(c, 1000, 0.0), milliseconds(30000));  // no overflow
}

TEST(BackoffTest, JitterStaysWithinItsFraction) {
  BackoffConfig c{milliseconds(1000), milliseconds(4000), 0.25};
  EXPECT_EQ(BackoffDelay(c, 0, 0.0), milliseconds(1000));
  EXPECT_EQ(BackoffDelay(c, 0, 0.5), milliseconds(1125));
  for (double r : {0.0, 0.1, 0.5, 0.999999, 1.0, 7.0, -3.0}) {
    const auto d = BackoffDelay(c, 5, r);
    EXPECT_GE(d, milliseconds(4000)) << r;
    EXPECT_LE(d, milliseconds(5000)) << r;
  }
}

TEST(BackoffTest, ReconnectsDoubleUpToTheCapWithoutJitterAtOne) {
  Backoff b(milliseconds(100), milliseconds(5000), [] { return 1.0; });
  const int64_t want[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000};
  for (int64_t w : want) EXPECT_EQ(b.Next().count(), w);
}

TEST(BackoffTest, ReconnectJitterDrawsFromTheUpperHalf) {
  Backoff low(milliseconds(100), milliseconds(5000), [] { return 0.0; });
  EXPECT_EQ(low.Next().count(), 50);
  EXPECT_EQ(low.Next().count(), 100);
  Backoff mid(milliseconds(1000), milliseconds(5000), [] { return 0.5; });
  EXPECT_EQ(mid.Next().count(), 750);
}

TEST(BackoffTest, ReconnectOutOfRangeRandomIsClamped) {
  Backoff b(milliseconds(100), milliseconds(5000), [] { return 7.0; });
  EXPECT_EQ(b.Next().count(), 100);
}

TEST(BackoffTest, ReconnectResetStartsOver) {
  Backoff b(milliseconds(100), milliseconds(5000), [] { return 1.0; });
  b.Next();
  b.Next();
  b.Next();
  b.Reset();
  EXPECT_EQ(b.Next().count(), 100);
}

}  // namespace
}  // namespace pincer
