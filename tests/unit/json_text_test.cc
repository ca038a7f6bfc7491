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

namespace pincer {
namespace {

TEST(JsonMemberTextTest, FindsATopLevelValueAsWritten) {
  const std::string line = R"({"type":"submit","payload":{"b":1,"a":1e3},"req":1})";
  EXPECT_EQ(JsonMemberText(line, "payload"), R"({"b":1,"a":1e3})");
  EXPECT_EQ(JsonMemberText(line, "req"), "1");
  EXPECT_EQ(JsonMemberText(line, "type"), R"("submit")");
  EXPECT_EQ(JsonMemberText(line, "b"), std::nullopt) << "only the top level";
  EXPECT_EQ(JsonMemberText(line, "absent"), std::nullopt);
}

TEST(JsonMemberTextTest, WhitespaceAroundIsDroppedInsideKept) {
  EXPECT_EQ(JsonMemberText(" {\t\"a\" :  [ 1 , 2 ]\n, \"b\":true } ", "a"), "[ 1 , 2 ]");
  EXPECT_EQ(JsonMemberText(R"({"a":  -1.50e+3  })", "a"), "-1.50e+3");
  EXPECT_EQ(JsonMemberText(R"({"a":null})", "a"), "null");
}

TEST(JsonMemberTextTest, StringsWithBracketsQuotesAndEscapes) {
  const std::string line = R"({"x":"}],\"{[","payload":"a\\\"b\u00e9","y":{"k":"\"}"}})";
  EXPECT_EQ(JsonMemberText(line, "payload"), R"("a\\\"b\u00e9")");
  EXPECT_EQ(JsonMemberText(line, "y"), R"({"k":"\"}"})");
}

TEST(JsonMemberTextTest, TheLastOfRepeatedKeysCountsAndEscapedKeysMatch) {
  EXPECT_EQ(JsonMemberText(R"({"a":1,"a":[2]})", "a"), "[2]");
  EXPECT_EQ(JsonMemberText(R"({"pay\u006coad":{"z":0}})", "payload"), R"({"z":0})");
  EXPECT_EQ(JsonMemberText(R"({"\ud83d\ude00":3})", "\xf0\x9f\x98\x80"), "3");
  EXPECT_EQ(JsonMemberText(R"({"a\"b":4})", "a\"b"), "4");
}

TEST(JsonMemberTextTest, NeverReadsPastTheEndOfBrokenText) {
  for (const char* text : {"", "{", "{\"a", "{\"a\"", "{\"a\":", "{\"a\":\"x", "{\"a\":[1,",
                           "[1,2]", "\"a\"", "{\"a\":1,", "{\"a\":{\"b\":\"\\"}) {
    const std::string copy(text);  // exact size: ASan sees an overread
    (void)JsonMemberText(copy, "a");
  }
  EXPECT_EQ(JsonMemberText("{\"a\":[1,", "a"), "[1,");
}

}  // namespace
}  // namespace pincer
