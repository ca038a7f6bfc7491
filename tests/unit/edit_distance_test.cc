// src/common/edit_distance.h: the distance behind "did you mean".
#include "common/edit_distance.h"

#include <gtest/gtest.h>

namespace pincer {
namespace {

TEST(EditDistanceTest, CountsInsertionsDeletionsAndSubstitutions) {
  EXPECT_EQ(EditDistance("", ""), 0u);
  EXPECT_EQ(EditDistance("status", "status"), 0u);
  EXPECT_EQ(EditDistance("", "abc"), 3u);
  EXPECT_EQ(EditDistance("abc", ""), 3u);
  EXPECT_EQ(EditDistance("stauts", "status"), 2u);  // a swap is two edits
  EXPECT_EQ(EditDistance("submt", "submit"), 1u);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

}  // namespace
}  // namespace pincer
