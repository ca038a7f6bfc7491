// src/worker/output_capture.h: bounded capture of a child's stdout/stderr.
#include <gtest/gtest.h>

#include "worker/output_capture.h"

namespace pincer::worker {
namespace {

TEST(HeadBufferTest, KeepsEverythingUnderTheCap) {
  HeadBuffer b(10);
  b.Append("abc");
  b.Append("def");
  EXPECT_EQ(b.data(), "abcdef");
  EXPECT_FALSE(b.overflowed());
  EXPECT_EQ(b.total(), 6u);
}

TEST(HeadBufferTest, ExactlyTheCapIsNotAnOverflow) {
  HeadBuffer b(4);
  b.Append("ab");
  b.Append("cd");
  EXPECT_EQ(b.data(), "abcd");
  EXPECT_FALSE(b.overflowed());
}

TEST(HeadBufferTest, KeepsTheStartAndCountsTheRest) {
  HeadBuffer b(4);
  b.Append("abc");
  b.Append("defgh");
  b.Append("ij");
  EXPECT_EQ(b.data(), "abcd");
  EXPECT_TRUE(b.overflowed());
  EXPECT_EQ(b.total(), 10u);
  EXPECT_EQ(b.Take(), "abcd");
}

TEST(TailBufferTest, KeepsTheEnd) {
  TailBuffer b(5);
  b.Append("hello ");
  b.Append("world");
  EXPECT_TRUE(b.truncated());
  EXPECT_EQ(b.Take(), "world");
}

TEST(TailBufferTest, ShortInputIsUntouched) {
  TailBuffer b(5);
  b.Append("ab");
  b.Append("c");
  EXPECT_FALSE(b.truncated());
  EXPECT_EQ(b.Take(), "abc");
}

TEST(TailBufferTest, ManySmallAppendsStayBounded) {
  TailBuffer b(8);
  for (int i = 0; i < 1000; ++i) b.Append(std::to_string(i % 10));
  EXPECT_EQ(b.Take(), "23456789");
  EXPECT_TRUE(b.truncated());
}

TEST(TailBufferTest, OneHugeAppend) {
  TailBuffer b(3);
  b.Append("abcdefg");
  EXPECT_EQ(b.Take(), "efg");
  EXPECT_TRUE(b.truncated());
}

}  // namespace
}  // namespace pincer::worker
