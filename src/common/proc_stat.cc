#include "common/proc_stat.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

namespace pincer {

std::optional<std::string> ReadProcFile(const std::string& path) {
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

std::optional<CpuTicks> ParseProcStat(std::string_view text) {
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

std::optional<uint64_t> ParseStatmResidentPages(std::string_view text) {
  std::istringstream in{std::string(text)};
  uint64_t size = 0, resident = 0;
  if (!(in >> size >> resident)) return std::nullopt;
  return resident;
}

std::optional<ProcStats> ReadProcStats(pid_t pid) {
  const long ticks_per_second = sysconf(_SC_CLK_TCK);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (ticks_per_second <= 0 || page_size <= 0) return std::nullopt;
  const std::string dir = "/proc/" + std::to_string(pid);
  const auto stat = ReadProcFile(dir + "/stat");
  const auto statm = ReadProcFile(dir + "/statm");
  const auto ticks = stat ? ParseProcStat(*stat) : std::nullopt;
  const auto pages = statm ? ParseStatmResidentPages(*statm) : std::nullopt;
  if (!ticks || !pages) return std::nullopt;
  return ProcStats{static_cast<double>(ticks->self) / static_cast<double>(ticks_per_second),
                   static_cast<int64_t>(*pages) * page_size};
}

}  // namespace pincer
