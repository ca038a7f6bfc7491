#include "store/file_system.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace pincer {
namespace {

class PosixFile final : public WritableFile {
 public:
  explicit PosixFile(int fd) : fd_(fd) {}
  ~PosixFile() override { ::close(fd_); }
  PosixFile(const PosixFile&) = delete;
  PosixFile& operator=(const PosixFile&) = delete;

  int Size(uint64_t& size) override {
    const off_t end = ::lseek(fd_, 0, SEEK_END);
    if (end < 0) return errno;
    size = static_cast<uint64_t>(end);
    return 0;
  }

  int Allocate(uint64_t size) override {
    return ::posix_fallocate(fd_, 0, static_cast<off_t>(size));  // the error, not errno
  }

  int WriteAt(uint64_t offset, std::string_view data) override {
    std::size_t done = 0;
    while (done < data.size()) {
      const ssize_t n =
          ::pwrite(fd_, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return errno;
      }
      done += static_cast<std::size_t>(n);
    }
    return 0;
  }

  int SyncData() override { return ::fdatasync(fd_) == 0 ? 0 : errno; }
  int Sync() override { return ::fsync(fd_) == 0 ? 0 : errno; }

 private:
  const int fd_;
};

class Posix final : public FileSystem {
 public:
  int Open(const std::string& path, bool truncate, std::unique_ptr<WritableFile>& file) override {
    const int fd =
        ::open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
    if (fd < 0) return errno;
    file = std::make_unique<PosixFile>(fd);
    return 0;
  }

  int Rename(const std::string& from, const std::string& to) override {
    return ::rename(from.c_str(), to.c_str()) == 0 ? 0 : errno;
  }

  int Remove(const std::string& path) override { return ::unlink(path.c_str()) == 0 ? 0 : errno; }

  int SyncDir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    const int rc = ::fsync(fd) == 0 ? 0 : errno;
    ::close(fd);
    return rc;
  }
};

}  // namespace

FileSystem& PosixFileSystem() {
  static Posix posix;
  return posix;
}

}  // namespace pincer
