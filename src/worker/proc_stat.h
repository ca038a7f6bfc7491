// Reading and parsing the Linux /proc files the load report is built from
// (header-only, so unit tests need not link the worker).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>

namespace pincer::worker {

// The whole of a small /proc file; nullopt when it cannot be read: the
// process is gone, or exits while it is read (read() then fails with ESRCH,
// which a std::ifstream turns into an exception).
inline std::optional<std::string> ReadProcFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      text.append(buf, static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      ::close(fd);
      if (n < 0) return std::nullopt;
      return text;
    }
  }
}

struct CpuTicks {
  uint64_t self = 0;      // utime + stime
  uint64_t children = 0;  // cutime + cstime: reaped children only
};

// From the text of /proc/PID/stat. The command name is in parentheses and
// may itself hold spaces and parentheses, so fields are counted from the
// last ')'.
inline std::optional<CpuTicks> ParseProcStat(std::string_view text) {
  const auto close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::istringstream in{std::string(text.substr(close + 1))};
  // Fields 3..13 (state .. cmajflt), then utime stime cutime cstime.
  std::string skip;
  for (int i = 3; i <= 13; ++i) {
    if (!(in >> skip)) return std::nullopt;
  }
  uint64_t utime = 0, stime = 0;
  int64_t cutime = 0, cstime = 0;  // signed in proc(5)
  if (!(in >> utime >> stime >> cutime >> cstime)) return std::nullopt;
  CpuTicks t;
  t.self = utime + stime;
  t.children = static_cast<uint64_t>(cutime < 0 ? 0 : cutime) +
               static_cast<uint64_t>(cstime < 0 ? 0 : cstime);
  return t;
}

// Resident pages from the text of /proc/PID/statm (its second field).
inline std::optional<uint64_t> ParseStatmResidentPages(std::string_view text) {
  std::istringstream in{std::string(text)};
  uint64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return std::nullopt;
  return resident;
}

}  // namespace pincer::worker
