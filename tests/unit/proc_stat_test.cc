// src/common/proc_stat.h: reading and parsing /proc/PID/stat and
// /proc/PID/statm.
#include "common/proc_stat.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace pincer {
namespace {

TEST(ParseProcStatTest, SumsUserAndSystemTicks) {
  // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt
  // majflt cmajflt utime stime cutime cstime ...
  const char* line =
      "1234 (pincer-worker) S 1 1234 1234 0 -1 4194560 500 0 0 0 "
      "70 30 5 7 20 0 1 0 100 1000000 300 ...";
  auto t = ParseProcStat(line);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->self, 100u);
  EXPECT_EQ(t->children, 12u);
}

TEST(ParseProcStatTest, CommandNameWithSpacesAndParens) {
  const char* line = "99 (my (odd) name) R 1 99 99 0 -1 0 0 0 0 0 1 2 3 4 20 0";
  auto t = ParseProcStat(line);
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->self, 3u);
  EXPECT_EQ(t->children, 7u);
}

TEST(ParseProcStatTest, Truncated) {
  EXPECT_FALSE(ParseProcStat("1234 (x) S 1 2 3").has_value());
  EXPECT_FALSE(ParseProcStat("no parens at all").has_value());
}

TEST(ParseStatmTest, ResidentIsTheSecondField) {
  EXPECT_EQ(ParseStatmResidentPages("2000 345 100 10 0 500 0\n"), 345u);
  EXPECT_FALSE(ParseStatmResidentPages("2000").has_value());
}

TEST(ReadProcFileTest, ReadsAProcFileWhole) {
  const auto stat = ReadProcFile("/proc/self/stat");
  ASSERT_TRUE(stat.has_value());
  EXPECT_TRUE(ParseProcStat(*stat).has_value()) << *stat;
}

TEST(ReadProcFileTest, AFileThatCannotBeReadIsNulloptNotAnException) {
  EXPECT_FALSE(ReadProcFile("/proc/self/no-such-file").has_value());
  // Opens, then read() fails (EISDIR), as it does (ESRCH) for a process
  // that exits between the open and the read.
  EXPECT_FALSE(ReadProcFile("/proc/self").has_value());
}

TEST(ReadProcStatsTest, ReadsTheCpuAndMemoryOfALiveProcess) {
  auto self = ReadProcStats(getpid());
  ASSERT_TRUE(self.has_value());
  EXPECT_GT(self->rss_bytes, 0);
  EXPECT_GE(self->cpu_seconds, 0.0);
}

TEST(ParseProcStatTest, Garbage) { EXPECT_FALSE(ParseProcStat("garbage").has_value()); }

TEST(ParseStatmTest, Empty) { EXPECT_FALSE(ParseStatmResidentPages("").has_value()); }

}  // namespace
}  // namespace pincer
