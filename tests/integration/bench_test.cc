// pincer-bench, the command behind `scripts/bench`, run for real (briefly):
// it starts pincerd (memory, sqlite, memory with 4 clients), the line-relay
// floor and the peers (nats-server, gearmand, Redis Streams, beanstalkd),
// drives the workload and prints one table with a row per system and
// window. Speed is the bench's business, not this test's: it checks that
// every pincerd and floor row moved tasks, and that each peer row either
// moved tasks or names why it could not run (scripts/bench installs the
// peers; scripts/test does not), instead of failing the run. With a real
// PostgreSQL: the postgres row at two windows (each starts on emptied
// tables), and `takeover` kills the leader of two pincerd and reports each
// takeover.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "support/postgres_server.h"
#include "support/subprocess.h"

namespace pincer::test {
namespace {

std::vector<std::string> Cells(const std::string& row) {
  std::vector<std::string> cells;
  std::stringstream in(row);
  std::string cell;
  std::getline(in, cell, '|');  // before the first '|'
  while (std::getline(in, cell, '|')) {
    const auto b = cell.find_first_not_of(' ');
    const auto e = cell.find_last_not_of(' ');
    cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
  }
  return cells;
}

TEST(BenchTest, PrintsOneTableWithARowPerSystemAndWindow) {
  const std::string bench = std::string(PINCER_BUILD_DIR) + "/pincer-bench";
  // The sanitizer build (scripts/test --sanitize) leaves the bench out.
  if (access(bench.c_str(), X_OK) != 0)
    GTEST_SKIP() << bench << " is not built (PINCER_BUILD_BENCH=OFF)";
  ProcessResult r =
      RunProcess({bench, "run", "--systems",
                  "floor,pincerd-memory,pincerd-sqlite,pincerd-memory-4c,nats,gearman,"
                  "redis,beanstalk",
                  "--windows", "1,8", "--warmup", "0.1", "--duration", "0.3"},
                 "", {}, std::chrono::seconds(240));
  ASSERT_FALSE(r.timed_out);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_NE(r.out.find("| system | window | tasks/s | p50 µs | p99 µs | max µs | tasks/s vs nats"),
            std::string::npos)
      << r.out;

  // The row names the table uses.
  const std::vector<std::string> ours = {"floor (line relay)", "pincerd memory",
                                         "pincerd sqlite fsync=always",
                                         "pincerd memory, 4 clients"};
  const std::vector<std::string> peers = {"nats-server", "gearmand", "redis-streams", "beanstalkd"};
  std::map<std::string, int> rows;
  std::stringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("| ") || line.starts_with("| system") || line.starts_with("|---"))
      continue;
    const std::vector<std::string> cells = Cells(line);
    ASSERT_GE(cells.size(), 10u) << line;
    ++rows[cells[0]];
    const bool peer = std::find(peers.begin(), peers.end(), cells[0]) != peers.end();
    if (peer && cells[2] == "–") {
      // Could not run, and says why, e.g. "|  (nats-server is not installed)".
      EXPECT_NE(line.find("|  ("), std::string::npos) << line;
      continue;
    }
    EXPECT_GT(std::stod(cells[2]), 0) << "no task came back: " << line;
  }
  for (const std::string& name : ours) EXPECT_EQ(rows[name], 2) << name << "\n" << r.out;
  for (const std::string& name : peers) EXPECT_EQ(rows[name], 2) << name << "\n" << r.out;
  EXPECT_EQ(rows.size(), ours.size() + peers.size()) << r.out;
}

std::string Bench() { return std::string(PINCER_BUILD_DIR) + "/pincer-bench"; }

TEST(BenchTest, ThePostgresRowRunsAtEveryWindowOnEmptiedTables) {
  if (access(Bench().c_str(), X_OK) != 0) GTEST_SKIP() << "pincer-bench is not built";
  if (!PostgresServer::Available()) GTEST_SKIP() << PostgresServer::kMissing;
  PostgresServer pg;
  ASSERT_TRUE(pg.Start());
  const ProcessResult r =
      RunProcess({Bench(), "run", "--systems", "pincerd-postgres", "--windows", "1,8", "--warmup",
                  "0.1", "--duration", "0.3", "--postgres-url", pg.url()},
                 "", {}, std::chrono::seconds(240));
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  int rows = 0;
  std::stringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("| pincerd postgres")) continue;
    ++rows;
    const std::vector<std::string> cells = Cells(line);
    ASSERT_GE(cells.size(), 3u) << line;
    EXPECT_NE(cells[2], "–") << line;
  }
  EXPECT_EQ(rows, 2) << r.out;
}

TEST(BenchTest, TakeoverKillsTheLeaderAndReportsEachTakeover) {
  if (access(Bench().c_str(), X_OK) != 0) GTEST_SKIP() << "pincer-bench is not built";
  // Bad usage first: it needs a database and at least one kill.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"takeover"},
        std::vector<std::string>{"takeover", "--postgres-url", "postgresql:///x", "--kills",
                                 "0"}}) {
    std::vector<std::string> argv = {Bench()};
    argv.insert(argv.end(), args.begin(), args.end());
    const ProcessResult bad = RunProcess(argv);
    EXPECT_EQ(bad.exit_code, 2) << bad.out << bad.err;
    EXPECT_NE(bad.err.find("takeover needs --postgres-url, --kills N >= 1"), std::string::npos)
        << bad.err;
  }
  if (!PostgresServer::Available()) GTEST_SKIP() << PostgresServer::kMissing;
  PostgresServer pg;
  ASSERT_TRUE(pg.Start());
  const ProcessResult r = RunProcess(
      {Bench(), "takeover", "--postgres-url", pg.url(), "--kills", "2", "--queued", "10"}, "", {},
      std::chrono::seconds(240));
  ASSERT_FALSE(r.timed_out);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // One row per kill, the leaders alternating, then the summary.
  EXPECT_NE(r.out.find("| 1 | a | b | "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| 2 | b | a | "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("takeover over 2 kills: min "), std::string::npos) << r.out;
}

}  // namespace
}  // namespace pincer::test
