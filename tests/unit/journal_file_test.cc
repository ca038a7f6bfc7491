#include "store/journal_file.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "support/faulty_file_system.h"
#include "support/temp_dir.h"

namespace pincer {
namespace {

using test::FaultyFileSystem;
using test::TempDir;
using Op = FaultyFileSystem::Op;

std::vector<std::string> Records(const std::string& dir, uint64_t number,
                                 SegmentEnd* end = nullptr) {
  std::vector<std::string> out;
  SegmentEnd e;
  EXPECT_TRUE(ReadSegment(
                  dir, number, [&](std::string_view r) { out.emplace_back(r); }, e)
                  .ok());
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
  EXPECT_EQ(Records(dir.path(), 7, &end),
            (std::vector<std::string>{"first", std::string(3000, 'x')}));
  EXPECT_EQ(end, SegmentEnd::kClean);
  EXPECT_EQ(Records(dir.path(), 8), (std::vector<std::string>{std::string(3000, 'y')}));
  EXPECT_EQ(Records(dir.path(), 9), (std::vector<std::string>{std::string(10000, 'z')}));
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
  EXPECT_EQ(Records(dir.path(), 1, &end), (std::vector<std::string>{"kept"}));
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

TEST(JournalFileTest, ARecycledSegmentShowsOnlyItsNewRecords) {
  TempDir dir("journal");
  {
    SegmentWriter writer(dir.path(), 1, 4096);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(writer.Append("old record " + std::to_string(i)).ok());
    ASSERT_TRUE(writer.Sync().ok());
  }
  ASSERT_EQ(::rename(SegmentPath(dir.path(), 1).c_str(), SparePath(dir.path()).c_str()), 0);
  SegmentWriter writer(dir.path(), 2, 4096);
  ASSERT_TRUE(writer.Append("new").ok());
  ASSERT_TRUE(writer.Sync().ok());
  EXPECT_EQ(ListSegments(dir.path()), (std::vector<uint64_t>{2}));  // the spare was taken
  SegmentEnd end;
  // The last segment: what follows the new record is not a record of
  // segment 2, so it reads as the torn end a crash would leave.
  EXPECT_EQ(Records(dir.path(), 2, &end), (std::vector<std::string>{"new"}));
  // Once the writer moves on, the segment ends cleanly.
  ASSERT_TRUE(writer.Append(std::string(5000, 'n')).ok());
  EXPECT_EQ(writer.current(), 3u);
  EXPECT_EQ(Records(dir.path(), 2, &end), (std::vector<std::string>{"new"}));
  EXPECT_EQ(end, SegmentEnd::kClean);
}

// Disk faults, injected through the file system under the writer.

TEST(JournalFileTest, AWriteThatFailsCountsForNothingAndItsRetryTakesItsPlace) {
  TempDir dir("journal");
  FaultyFileSystem files;
  SegmentWriter writer(dir.path(), 1, 4096, files);
  ASSERT_TRUE(writer.Append("first").ok());
  // The disk fills up halfway through the next record.
  files.Fail(Op::kWrite, ENOSPC, /*partial=*/10);
  Status st = writer.Append("second, cut short");
  EXPECT_EQ(st.code(), "store_unavailable");
  EXPECT_NE(st.message().find("cannot write " + SegmentPath(dir.path(), 1)), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("No space left on device"), std::string::npos) << st.message();
  EXPECT_FALSE(writer.Append("second, cut short").ok()) << "still full";

  files.Heal();
  ASSERT_TRUE(writer.Append("second").ok());
  ASSERT_TRUE(writer.Append("third").ok());
  ASSERT_TRUE(writer.Sync().ok());
  SegmentEnd end;
  EXPECT_EQ(Records(dir.path(), 1, &end), (std::vector<std::string>{"first", "second", "third"}));
  EXPECT_EQ(end, SegmentEnd::kClean);
}

TEST(JournalFileTest, ARecordWhoseSyncFailedIsReplacedByItsRetry) {
  TempDir dir("journal");
  FaultyFileSystem files;
  SegmentWriter writer(dir.path(), 1, 4096, files);
  ASSERT_TRUE(writer.Append("kept").ok());
  ASSERT_TRUE(writer.Sync().ok());
  ASSERT_TRUE(writer.Append("failed").ok());
  // The sync fails, and the kernel drops the pages it could not write.
  files.Fail(Op::kSync, EIO);
  Status st = writer.Sync();
  EXPECT_EQ(st.code(), "store_unavailable");
  EXPECT_NE(st.message().find("cannot sync " + SegmentPath(dir.path(), 1)), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("Input/output error"), std::string::npos) << st.message();
  writer.DropLast();
  EXPECT_FALSE(writer.Sync().ok()) << "still failing";

  files.Heal();
  // The retry takes the failed record's place: written after it, it would
  // follow the hole the dropped pages left, and be lost.
  ASSERT_TRUE(writer.Append("failed, and newer").ok());
  ASSERT_TRUE(writer.Sync().ok());
  files.DropUnsynced();  // a power cut: nothing left to lose
  SegmentEnd end;
  EXPECT_EQ(Records(dir.path(), 1, &end), (std::vector<std::string>{"kept", "failed, and newer"}));
  EXPECT_EQ(end, SegmentEnd::kClean);
}

TEST(JournalFileTest, ARecordSyncedBeforeASyncFailsIsKept) {
  TempDir dir("journal");
  FaultyFileSystem files;
  SegmentWriter writer(dir.path(), 1, 4096, files);
  ASSERT_TRUE(writer.Append("synced").ok());
  ASSERT_TRUE(writer.Sync().ok());
  files.Fail(Op::kSync, EIO);
  EXPECT_FALSE(writer.Sync().ok());
  writer.DropLast();  // nothing to drop: it was synced
  files.Heal();
  ASSERT_TRUE(writer.Append("next").ok());
  ASSERT_TRUE(writer.Sync().ok());
  EXPECT_EQ(Records(dir.path(), 1), (std::vector<std::string>{"synced", "next"}));
}

TEST(JournalFileTest, APowerCutLosesOnlyWhatWasNotSynced) {
  TempDir dir("journal");
  FaultyFileSystem files;
  {
    SegmentWriter writer(dir.path(), 1, 4096, files);
    ASSERT_TRUE(writer.Append("synced").ok());
    ASSERT_TRUE(writer.Sync().ok());
    ASSERT_TRUE(writer.Append("written only").ok());
  }
  files.DropUnsynced();
  SegmentEnd end;
  EXPECT_EQ(Records(dir.path(), 1, &end), (std::vector<std::string>{"synced"}));
  EXPECT_EQ(end, SegmentEnd::kClean);
}

TEST(JournalFileTest, ASegmentThatCannotBeStartedIsRemovedAndStartedAgainLater) {
  TempDir dir("journal");
  FaultyFileSystem files;
  SegmentWriter writer(dir.path(), 1, 4096, files);
  ASSERT_TRUE(writer.Append(std::string(3000, 'a')).ok());
  for (Op op : {Op::kAllocate, Op::kSyncDir, Op::kOpen}) {
    SCOPED_TRACE(static_cast<int>(op));
    files.Fail(op, ENOSPC);
    Status st = writer.Append(std::string(3000, 'b'));  // needs segment 2
    EXPECT_EQ(st.code(), "store_unavailable");
    EXPECT_NE(st.message().find("No space left on device"), std::string::npos) << st.message();
    EXPECT_EQ(files.failed(op), 1);
    files.Heal();
    // No half-made segment is left behind, and segment 1 was closed whole.
    EXPECT_EQ(ListSegments(dir.path()), std::vector<uint64_t>{1});
    SegmentEnd end;
    EXPECT_EQ(Records(dir.path(), 1, &end), std::vector<std::string>{std::string(3000, 'a')});
    EXPECT_EQ(end, SegmentEnd::kClean);
  }
  ASSERT_TRUE(writer.Append(std::string(3000, 'b')).ok());
  EXPECT_EQ(writer.current(), 2u);
  ASSERT_TRUE(writer.Sync().ok());
  EXPECT_EQ(Records(dir.path(), 2), std::vector<std::string>{std::string(3000, 'b')});
}

}  // namespace
}  // namespace pincer
