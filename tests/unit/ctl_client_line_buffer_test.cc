// src/client/line_buffer.h: framing of the daemon's newline-delimited JSON.
#include <gtest/gtest.h>

#include "client/line_buffer.h"

namespace pincer::client {
namespace {

TEST(LineBufferTest, SplitsLinesAcrossAppends) {
  LineBuffer buffer(100);
  buffer.Append("{\"a\":1}\n{\"b\"");
  EXPECT_EQ(buffer.NextLine(), "{\"a\":1}");
  EXPECT_EQ(buffer.NextLine(), std::nullopt);
  buffer.Append(":2}\r\n\n");
  EXPECT_EQ(buffer.NextLine(), "{\"b\":2}");
  EXPECT_EQ(buffer.NextLine(), "");  // empty lines are the caller's to skip
  EXPECT_EQ(buffer.NextLine(), std::nullopt);
  EXPECT_EQ(buffer.buffered(), 0u);
  EXPECT_FALSE(buffer.overflowed());
}

TEST(LineBufferTest, LineOfExactlyTheLimitFits) {
  LineBuffer buffer(5);
  buffer.Append("12345\r\n");
  EXPECT_EQ(buffer.NextLine(), "12345");
  EXPECT_FALSE(buffer.overflowed());
}

TEST(LineBufferTest, OverlongCompleteLineOverflows) {
  LineBuffer buffer(5);
  buffer.Append("123456\nok\n");
  EXPECT_EQ(buffer.NextLine(), std::nullopt);
  EXPECT_TRUE(buffer.overflowed());
  EXPECT_EQ(buffer.NextLine(), std::nullopt);  // no resynchronising
}

TEST(LineBufferTest, UnfinishedLineIsBounded) {
  LineBuffer buffer(5);
  buffer.Append("12345\r");  // may still become a 5-byte line
  EXPECT_EQ(buffer.NextLine(), std::nullopt);
  EXPECT_FALSE(buffer.overflowed());
  buffer.Append("x");
  EXPECT_EQ(buffer.NextLine(), std::nullopt);
  EXPECT_TRUE(buffer.overflowed());
}

TEST(LineBufferTest, ManySmallAppendsOfOneLine) {
  LineBuffer buffer(1 << 20);
  std::string expected;
  for (int i = 0; i < 10000; ++i) {
    buffer.Append("ab");
    expected += "ab";
    ASSERT_EQ(buffer.NextLine(), std::nullopt);
  }
  buffer.Append("\n");
  EXPECT_EQ(buffer.NextLine(), expected);
}

}  // namespace
}  // namespace pincer::client
