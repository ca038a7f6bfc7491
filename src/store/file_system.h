// The file operations of the journal's SegmentWriter (store/journal_file.h),
// behind one interface, as LevelDB's Env: pincerd uses the POSIX calls
// (PosixFileSystem()), and tests put a FileSystem in between that fails
// chosen calls as a full or failing disk does
// (tests/support/faulty_file_system.h), with no need to make a real disk
// fail.
//
// Every call returns 0 or the errno value of its failure; the caller names
// the file and the operation in its error (journal_file.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace pincer {

// A file open for writing at offsets. Closed when destroyed.
class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // The file's size in bytes.
  virtual int Size(uint64_t& size) = 0;
  // Gives bytes [0, size) blocks on disk (posix_fallocate).
  virtual int Allocate(uint64_t size) = 0;
  // Writes all of `data` at `offset`. On error an unknown prefix of it
  // may have been written.
  virtual int WriteAt(uint64_t offset, std::string_view data) = 0;
  // Makes what was written durable: the data (fdatasync), or the data and
  // the file's metadata (fsync).
  virtual int SyncData() = 0;
  virtual int Sync() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Opens `path` for writing, creating it (mode 0644) if missing;
  // `truncate` empties it.
  virtual int Open(const std::string& path, bool truncate, std::unique_ptr<WritableFile>& file) = 0;
  virtual int Rename(const std::string& from, const std::string& to) = 0;
  virtual int Remove(const std::string& path) = 0;
  // Makes the directory's entries (files created, renamed) durable.
  virtual int SyncDir(const std::string& dir) = 0;
};

// The real file system. Stateless; lives for the whole process.
FileSystem& PosixFileSystem();

}  // namespace pincer
