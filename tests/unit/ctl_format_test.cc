#include <gtest/gtest.h>

#include "ctl/format.h"

namespace pincer::ctl {
namespace {

TEST(FormatTest, CellText) {
  EXPECT_EQ(CellText(nullptr), "-");
  EXPECT_EQ(CellText(""), "-");
  EXPECT_EQ(CellText("w1"), "w1");
  EXPECT_EQ(CellText(17), "17");
  EXPECT_EQ(CellText(true), "true");
  EXPECT_EQ(CellText(nlohmann::json::array()), "-");
  EXPECT_EQ(CellText({"echo", "text"}), "echo,text");
  EXPECT_EQ(CellText(nlohmann::json{{"a", 1}}), "{\"a\":1}");
}

TEST(FormatTest, FieldOfMissingKeyOrNonObjectIsDash) {
  const nlohmann::json task = {{"id", "t1"}};
  EXPECT_EQ(Field(task, "id"), "t1");
  EXPECT_EQ(Field(task, "worker"), "-");
  EXPECT_EQ(Field(nlohmann::json::array(), "id"), "-");
}

TEST(FormatTest, FormatAge) {
  EXPECT_EQ(FormatAge(-5), "0s");
  EXPECT_EQ(FormatAge(999), "0s");
  EXPECT_EQ(FormatAge(45'000), "45s");
  EXPECT_EQ(FormatAge(12 * 60'000 + 59'000), "12m");
  EXPECT_EQ(FormatAge(3 * 3'600'000), "3h");
  EXPECT_EQ(FormatAge(5 * 86'400'000LL), "5d");
}

TEST(FormatTest, AgeOf) {
  const nlohmann::json task = {{"created_ms", 1'000}, {"ended_ms", nullptr}};
  EXPECT_EQ(AgeOf(task, "created_ms", 61'000), "1m");
  EXPECT_EQ(AgeOf(task, "ended_ms", 61'000), "-");
  EXPECT_EQ(AgeOf(task, "missing", 61'000), "-");
}

TEST(FormatTest, FormatCpuIsAShareOfOneCore) {
  EXPECT_EQ(FormatCpu(0), "0%");
  EXPECT_EQ(FormatCpu(0.24), "24%");
  EXPECT_EQ(FormatCpu(2.5), "250%");
  EXPECT_EQ(FormatCpu(-1), "0%");
}

TEST(FormatTest, FormatBytes) {
  EXPECT_EQ(FormatBytes(0), "0B");
  EXPECT_EQ(FormatBytes(1023), "1023B");
  EXPECT_EQ(FormatBytes(1536), "1.5Ki");
  EXPECT_EQ(FormatBytes(100 * 1024 * 1024), "100Mi");
  EXPECT_EQ(FormatBytes(2LL * 1024 * 1024 * 1024), "2.0Gi");
}

TEST(FormatTest, FormatTimestampIsUtc) {
  EXPECT_EQ(FormatTimestamp(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatTimestamp(1764000000123), "2025-11-24T16:00:00Z");
}

}  // namespace
}  // namespace pincer::ctl
