#include "daemon/data_dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace pincer {

DataDirLock::~DataDirLock() {
  if (fd_ >= 0) close(fd_);
}

Status DataDirLock::Acquire(const std::string& data_dir) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return Status("data_dir", "cannot create data_dir " + data_dir + ": " + ec.message());
  const std::string path = (std::filesystem::path(data_dir) / "pincerd.pid").string();
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Status("data_dir", "cannot open " + path + ": " + std::strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    std::string holder;
    if (err == EWOULDBLOCK) {
      char text[32] = {};
      const ssize_t n = pread(fd, text, sizeof text - 1, 0);
      for (ssize_t i = 0; i < n && text[i] >= '0' && text[i] <= '9'; ++i) holder += text[i];
    }
    close(fd);
    if (err != EWOULDBLOCK)
      return Status("data_dir", "cannot lock " + path + ": " + std::strerror(err));
    return Status("data_dir_in_use", "another pincerd (pid " + (holder.empty() ? "?" : holder) +
                                         ") is using " + data_dir);
  }
  const std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 ||
      pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    const int err = errno;
    close(fd);
    return Status("data_dir", "cannot write " + path + ": " + std::strerror(err));
  }
  fd_ = fd;
  return Status::Ok();
}

}  // namespace pincer
