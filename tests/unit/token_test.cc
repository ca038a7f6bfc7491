#include "common/token.h"

#include <gtest/gtest.h>

#include <string>

namespace pincer {
namespace {

TEST(TokenTest, MatchesOnlyTheSameToken) {
  EXPECT_TRUE(TokenMatches("s3cret", "s3cret"));
  EXPECT_FALSE(TokenMatches("s3cret", "s3creT"));
  EXPECT_FALSE(TokenMatches("s3cret", "s3cre"));    // a prefix
  EXPECT_FALSE(TokenMatches("s3cret", "s3cret!"));  // longer
  EXPECT_FALSE(TokenMatches("s3cret", ""));
  EXPECT_FALSE(TokenMatches("s3cret", std::string("s3cret\0", 7)));
  EXPECT_FALSE(TokenMatches(std::string("a\0b", 3), "a"));
  EXPECT_TRUE(TokenMatches(std::string("a\0b", 3), std::string("a\0b", 3)));
}

TEST(TokenTest, EmptyExpectedTokenMeansNoTokenNeeded) {
  EXPECT_TRUE(TokenMatches("", ""));
  EXPECT_TRUE(TokenMatches("", "anything"));
}

// How long TokenMatches takes depends on the expected token's length only
// (it reads every byte of it, whatever `given` holds); a timing test would
// be flaky, so this covers the answers at every mismatch position.
TEST(TokenTest, EveryMismatchPositionIsRefused) {
  const std::string token(64, 'k');
  for (std::size_t i = 0; i < token.size(); ++i) {
    std::string given = token;
    given[i] = 'x';
    EXPECT_FALSE(TokenMatches(token, given)) << i;
  }
}

}  // namespace
}  // namespace pincer
