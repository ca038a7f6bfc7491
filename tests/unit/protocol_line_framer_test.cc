// src/protocol/line_framer.h: framing of newline-delimited JSON, as pincerd,
// the client library and pincer-worker read it.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "protocol/line_framer.h"

namespace pincer {
namespace {

TEST(LineFramerTest, SplitsLinesAcrossAppendsAndSkipsEmptyOnes) {
  LineFramer framer(100);
  framer.Append("{\"a\":1}\n{\"b\"");
  EXPECT_EQ(framer.NextLine(), "{\"a\":1}");
  EXPECT_EQ(framer.NextLine(), std::nullopt);
  framer.Append(":2}\r\n\n\r\n{}\n");
  EXPECT_EQ(framer.NextLine(), "{\"b\":2}");
  EXPECT_EQ(framer.NextLine(), "{}");  // the empty lines between are skipped
  EXPECT_EQ(framer.NextLine(), std::nullopt);
  EXPECT_EQ(framer.buffered(), 0u);
  EXPECT_FALSE(framer.overflowed());
}

TEST(LineFramerTest, ReadsStraightIntoItsBuffer) {
  LineFramer framer(100);
  const std::string bytes = "one\ntw";
  char* into = framer.Prepare(4096);
  std::memcpy(into, bytes.data(), bytes.size());
  framer.Commit(bytes.size());
  EXPECT_EQ(framer.NextLine(), "one");
  EXPECT_EQ(framer.NextLine(), std::nullopt);
  EXPECT_EQ(framer.buffered(), 2u);
  into = framer.Prepare(4096);  // the partial line moves to the front
  std::memcpy(into, "o\n", 2);
  framer.Commit(2);
  EXPECT_EQ(framer.NextLine(), "two");
}

TEST(LineFramerTest, EveryLineIsFollowedByPadding) {
  LineFramer framer(1000);
  framer.Append("a\nbb\n" + std::string(500, 'c') + "\n");
  while (auto line = framer.NextLine()) {
    // Readable (if uninitialised in meaning) bytes past the end: touch them.
    volatile char sink = 0;
    for (std::size_t i = 0; i < kLinePadding; ++i) sink = sink ^ line->data()[line->size() + i];
    (void)sink;
  }
  EXPECT_FALSE(framer.overflowed());
}

TEST(LineFramerTest, ALineOfTheLimitFitsAndALongerOneOverflowsForGood) {
  LineFramer framer(5);
  framer.Append("12345\r\n123456\nok\n");
  EXPECT_EQ(framer.NextLine(), "12345");
  EXPECT_EQ(framer.NextLine(), std::nullopt);
  EXPECT_TRUE(framer.overflowed());
  EXPECT_EQ(framer.NextLine(), std::nullopt);  // no resynchronising
  EXPECT_EQ(framer.buffered(), 3u);
}

TEST(LineFramerTest, UnfinishedLineIsBounded) {
  LineFramer framer(5);
  framer.Append("12345\r");  // may still become a 5-byte line
  EXPECT_EQ(framer.NextLine(), std::nullopt);
  EXPECT_FALSE(framer.overflowed());
  framer.Append("x");
  EXPECT_EQ(framer.NextLine(), std::nullopt);
  EXPECT_TRUE(framer.overflowed());
}

TEST(LineFramerTest, TheLimitMayChangeBetweenLines) {
  LineFramer framer(4);
  framer.Append("1234\n12345678\n");
  EXPECT_EQ(framer.NextLine(), "1234");
  framer.set_max_line(8);  // e.g. raised once a peer said hello
  EXPECT_EQ(framer.NextLine(), "12345678");
}

TEST(LineFramerTest, ManySmallAppendsOfOneLine) {
  LineFramer framer(1 << 20);
  std::string expected;
  for (int i = 0; i < 10000; ++i) {
    framer.Append("ab");
    expected += "ab";
    ASSERT_EQ(framer.NextLine(), std::nullopt);
  }
  framer.Append("\n");
  EXPECT_EQ(framer.NextLine(), expected);
}

}  // namespace
}  // namespace pincer
