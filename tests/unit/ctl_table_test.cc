#include <gtest/gtest.h>

#include "ctl/table.h"

namespace pincer::ctl {
namespace {

TEST(TableTest, AlignsColumnsTwoSpacesApartWithoutTrailingBlanks) {
  Table table({"ID", "NAME", "STATE"});
  table.AddRow({"w1", "echo-long-name", "ready"});
  table.AddRow({"w10", "x", "draining"});
  EXPECT_EQ(table.Render(),
            "ID   NAME            STATE\n"
            "w1   echo-long-name  ready\n"
            "w10  x               draining\n");
}

TEST(TableTest, HeaderOnlyWhenEmpty) {
  Table table({"ID", "STATE"});
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(table.Render(), "ID  STATE\n");
}

TEST(TableTest, MissingCellsAreBlankAndExtraCellsDropped) {
  Table table({"A", "B", "C"});
  table.AddRow({"1"});
  table.AddRow({"1", "2", "3", "4"});
  EXPECT_EQ(table.Render(),
            "A  B  C\n"
            "1\n"
            "1  2  3\n");
}

TEST(TableTest, ControlCharactersCannotBreakTheLayout) {
  Table table({"NAME", "X"});
  table.AddRow({"evil\nname\t", "1"});
  EXPECT_EQ(table.Render(),
            "NAME        X\n"
            "evil name   1\n");
}

TEST(TableTest, WidthCountsCodePointsNotBytes) {
  EXPECT_EQ(DisplayWidth("héllo"), 5u);
  Table table({"NAME", "X"});
  table.AddRow({"héllo", "1"});
  EXPECT_EQ(table.Render(),
            "NAME   X\n"
            "héllo  1\n");
}

}  // namespace
}  // namespace pincer::ctl
