#include "store/journal_file.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support/temp_dir.h"

namespace pincer {
namespace {

using test::TempDir;

std::vector<std::string> Records(const std::string& path, SegmentEnd* end = nullptr) {
  std::vector<std::string> out;
  SegmentEnd e;
  EXPECT_TRUE(ReadSegment(path, [&](std::string_view r) { out.emplace_back(r); }, e).ok());
  if (end) *end = e;
  return out;
}

TEST(JournalFileTest, RecordsThatDoNotFitStartTheNextSegment) {
  TempDir dir("journal");
  SegmentWriter writer(dir.path(), 7, 4096);
  ASSERT_TRUE(writer.Append("first").ok());
  ASSERT_TRUE(writer.Append(std::string(3000, 'x')).ok());
  EXPECT_EQ(writer.current(), 7u);
  ASSERT_TRUE(writer.Append(std::string(3000, 'y')).ok());  // does not fit in 7
  EXPECT_EQ(writer.current(), 8u);
  ASSERT_TRUE(writer.Append(std::string(10000, 'z')).ok());  // larger than a segment
  EXPECT_EQ(writer.current(), 9u);
  ASSERT_TRUE(writer.Sync().ok());

  EXPECT_EQ(ListSegments(dir.path()), (std::vector<uint64_t>{7, 8, 9}));
  SegmentEnd end;
  EXPECT_EQ(Records(SegmentPath(dir.path(), 7), &end),
            (std::vector<std::string>{"first", std::string(3000, 'x')}));
  EXPECT_EQ(end, SegmentEnd::kClean);
  EXPECT_EQ(Records(SegmentPath(dir.path(), 8)), (std::vector<std::string>{std::string(3000, 'y')}));
  EXPECT_EQ(Records(SegmentPath(dir.path(), 9)), (std::vector<std::string>{std::string(10000, 'z')}));
  EXPECT_GE(std::filesystem::file_size(SegmentPath(dir.path(), 9)), 10000u);
}

TEST(JournalFileTest, ARecordCutShortOrChangedEndsTheSegmentAsTorn) {
  TempDir dir("journal");
  {
    SegmentWriter writer(dir.path(), 1, 4096);
    ASSERT_TRUE(writer.Append("kept").ok());
    ASSERT_TRUE(writer.Append("changed later").ok());
    ASSERT_TRUE(writer.Sync().ok());
  }
  const std::string path = SegmentPath(dir.path(), 1);
  {
    std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(8 + 4 + 8 + 2);  // inside the second record's payload
    f << "X";
  }
  SegmentEnd end;
  EXPECT_EQ(Records(path, &end), (std::vector<std::string>{"kept"}));
  EXPECT_EQ(end, SegmentEnd::kTorn);
}

TEST(JournalFileTest, OnlyJournalFilesAreListed) {
  TempDir dir("journal");
  for (const char* name : {"journal-000002.log", "journal-000010.log", "journal-x.log",
                           "journal-000003.log.tmp", "pincer.db", "journal-000000.log"}) {
    std::ofstream(dir.Join(name)) << "";
  }
  EXPECT_EQ(ListSegments(dir.path()), (std::vector<uint64_t>{2, 10}));
}

}  // namespace
}  // namespace pincer
