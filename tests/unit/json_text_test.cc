// JsonDepthWithin: the one-pass nesting bound every line passes before a
// parser sees it.
#include "common/json_text.h"

#include <gtest/gtest.h>

#include <string>

namespace pincer {
namespace {

TEST(JsonDepthWithinTest, CountsArraysAndObjects) {
  EXPECT_TRUE(JsonDepthWithin("", 0));
  EXPECT_TRUE(JsonDepthWithin("42", 0));
  EXPECT_TRUE(JsonDepthWithin(R"("text")", 0));
  EXPECT_FALSE(JsonDepthWithin("[]", 0));
  EXPECT_TRUE(JsonDepthWithin("[]", 1));
  EXPECT_TRUE(JsonDepthWithin("{}", 1));
  EXPECT_TRUE(JsonDepthWithin(R"({"a":[1,2],"b":{"c":3}})", 2));
  EXPECT_FALSE(JsonDepthWithin(R"({"a":[1,2],"b":{"c":[3]}})", 2));
  // Siblings do not add up.
  EXPECT_TRUE(JsonDepthWithin("[[],[],[[]]]", 3));
  EXPECT_FALSE(JsonDepthWithin("[[],[],[[]]]", 2));
}

TEST(JsonDepthWithinTest, BracketsInStringsAreText) {
  EXPECT_TRUE(JsonDepthWithin(R"(["[[[[{{{{"])", 1));
  // An escaped quote does not end the string; an escaped backslash does not
  // escape the quote after it.
  EXPECT_TRUE(JsonDepthWithin(R"(["a\"[[[[", "b"])", 1));
  EXPECT_FALSE(JsonDepthWithin(R"(["a\\", [[]]])", 2));
  EXPECT_TRUE(JsonDepthWithin(R"(["a\\\"[[", 1])", 1));
  // An unterminated string ends the text.
  EXPECT_TRUE(JsonDepthWithin(R"(["[[[[[[)", 1));
}

TEST(JsonDepthWithinTest, NeverRecursesOrWalksPastTheBound) {
  const std::string deep(10'000'000, '[');  // 10 MB, unterminated
  EXPECT_FALSE(JsonDepthWithin(deep, kMaxPeerJsonDepth));
  const std::string balanced = std::string(100000, '[') + std::string(100000, ']');
  EXPECT_TRUE(JsonDepthWithin(balanced, 100000));
  EXPECT_FALSE(JsonDepthWithin(balanced, 99999));
  // Unbalanced closers neither underflow nor hide later nesting.
  EXPECT_FALSE(JsonDepthWithin("]]]]]]][[[", 2));
}

}  // namespace
}  // namespace pincer
