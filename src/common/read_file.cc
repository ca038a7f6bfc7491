#include "common/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pincer {

std::optional<std::string> ReadFile(const std::string& path, std::string* error) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    *error = "is a directory";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = std::strerror(errno);
    return std::nullopt;
  }
  // Inserting the stream buffer (not iterating it) keeps a failing read
  // from escaping as an exception.
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    *error = "read failed";
    return std::nullopt;
  }
  return text.str();
}

namespace {

// Closes the descriptor on every return path.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::optional<std::string> ReadRegularFile(const std::string& path, std::size_t max_bytes,
                                           std::string* error, mode_t* mode) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer. It has no effect
  // on reading a regular file, the only kind read below.
  Fd file{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)};
  if (file.fd < 0) {
    *error = std::strerror(errno);
    return std::nullopt;
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0) {
    *error = std::strerror(errno);
    return std::nullopt;
  }
  if (S_ISDIR(st.st_mode)) {
    *error = "is a directory, not a regular file";
    return std::nullopt;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = "is not a regular file (a device, FIFO or socket)";
    return std::nullopt;
  }
  const std::string too_large = "is larger than " + FormatByteLimit(max_bytes);
  if (static_cast<std::size_t>(st.st_size) > max_bytes) {
    *error = too_large;
    return std::nullopt;
  }
  // The size may change while reading (or be wrong, as for /proc files):
  // read until end of file, one byte past the limit at most.
  std::string text;
  text.resize(static_cast<std::size_t>(st.st_size) + 1);
  std::size_t used = 0;
  while (true) {
    if (used == text.size()) {
      if (text.size() > max_bytes) {
        *error = too_large;
        return std::nullopt;
      }
      text.resize(std::min(max_bytes + 1, std::max<std::size_t>(text.size() * 2, 4096)));
    }
    const ssize_t n = ::read(file.fd, text.data() + used, text.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      *error = std::strerror(errno);
      return std::nullopt;
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  if (used > max_bytes) {
    *error = too_large;
    return std::nullopt;
  }
  text.resize(used);
  if (mode) *mode = st.st_mode & 07777;
  return text;
}

std::string FormatByteLimit(std::size_t bytes) {
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  if (bytes >= (1u << 10) && bytes % (1u << 10) == 0) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " bytes";
}

}  // namespace pincer
