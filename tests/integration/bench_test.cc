// pincer-bench, the command behind `scripts/bench`, run for real (briefly):
// it starts pincerd (memory and sqlite), the line-relay floor and whichever
// peers are installed, drives the workload and prints one table with a row
// per system and window. Speed is the bench's business, not this test's:
// it checks that every pincerd and floor row moved tasks and that a peer
// that is missing or does not start is named as such instead of failing
// the run.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

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
  ProcessResult r = RunProcess({bench, "run", "--systems", "floor,pincerd-memory,pincerd-sqlite,nats",
                                "--windows", "1,8", "--warmup", "0.1", "--duration", "0.3"},
                               "", {}, std::chrono::seconds(120));
  ASSERT_FALSE(r.timed_out);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_NE(r.out.find("| system | window | tasks/s | p50 µs | p99 µs | max µs | tasks/s vs nats"),
            std::string::npos)
      << r.out;

  int moved = 0;
  bool nats_row = false;
  std::stringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (!line.starts_with("| ") || line.starts_with("| system") || line.starts_with("|---")) continue;
    const std::vector<std::string> cells = Cells(line);
    ASSERT_GE(cells.size(), 10u) << line;
    if (cells[0] == "nats-server") {
      nats_row = true;  // a number, or "–" and why: "(nats-server is not installed)"
      if (cells[2] == "–") EXPECT_NE(line.find("(nats-server"), std::string::npos) << line;
      continue;
    }
    EXPECT_GT(std::stod(cells[2]), 0) << "no task came back: " << line;
    ++moved;
  }
  EXPECT_EQ(moved, 6) << r.out;  // floor, pincerd memory, pincerd sqlite at windows 1 and 8
  EXPECT_TRUE(nats_row) << r.out;
}

}  // namespace
}  // namespace pincer::test
