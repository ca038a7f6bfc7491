// One pincerd per data_dir: an advisory lock (flock) on DATA_DIR/pincerd.pid,
// held while the process lives, with the holder's pid written in the file so
// that a second pincerd can say who holds it. The kernel drops the lock when
// the holder dies (kill -9 included): a stale file never blocks a start.
#pragma once

#include <string>

#include "common/status.h"

namespace pincer {

class DataDirLock {
 public:
  // The exit code of a pincerd that finds its data_dir in use
  // (docs/operations.md).
  static constexpr int kInUseExitCode = 3;

  DataDirLock() = default;
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;
  ~DataDirLock();

  // Creates `data_dir` if needed and takes the lock. Errors: `data_dir_in_use`
  // ("another pincerd (pid N) is using DATA_DIR"), `data_dir` (cannot
  // create or open it).
  Status Acquire(const std::string& data_dir);

 private:
  int fd_ = -1;
};

}  // namespace pincer
