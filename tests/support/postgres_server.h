// A real PostgreSQL server for tests of the postgres store: initdb into a
// temp dir, postgres listening only on a Unix socket in that dir, stopped
// and removed at the end. Debian's server binaries live in
// /usr/lib/postgresql/<version>/bin (scripts/deps installs them); when they
// are missing, Available() is false and the test skips.
//
// postgres refuses to run as root: as root (CI), initdb and the server run
// as the `postgres` user the Debian package creates, through runuser.
//
//   PostgresServer pg;
//   if (!PostgresServer::Available()) GTEST_SKIP() << PostgresServer::kMissing;
//   ASSERT_TRUE(pg.Start());
//   store.url = pg.url();
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/temp_dir.h"

namespace pincer::test {

class PostgresServer {
 public:
  static constexpr const char* kMissing =
      "PostgreSQL's server binaries are not installed (Debian: postgresql; scripts/deps)";
  // The server binaries are there.
  static bool Available();

  PostgresServer();
  // Stops the server at once (immediate shutdown) if it runs.
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // The first call creates the cluster (initdb); every call starts the
  // server and waits until it accepts connections. On failure the message
  // holds the tools' output and the server's log.
  ::testing::AssertionResult Start();
  // A clean shutdown (what is committed stays); Start() brings it back.
  ::testing::AssertionResult Stop();

  // postgresql:///postgres?host=<socket dir>&port=...&user=postgres
  std::string url() const;
  // Runs one SQL statement through psql; its output (unaligned, tuples
  // only), or the failure with psql's error.
  ::testing::AssertionResult Sql(const std::string& sql, std::string* out = nullptr) const;

 private:
  ::testing::AssertionResult Run(const std::vector<std::string>& argv, std::string* out) const;

  TempDir dir_{"pg"};
  std::string bin_;
  bool initialized_ = false;
  bool running_ = false;
};

}  // namespace pincer::test
