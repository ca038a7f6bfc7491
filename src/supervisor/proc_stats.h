// CPU time and resident memory of a process, from /proc (Linux).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace pincer {

struct ProcStats {
  double cpu_seconds = 0;  // user + system time so far
  int64_t rss_bytes = 0;
};

// Reads /proc/<pid>/stat and /proc/<pid>/statm; nullopt when the process is
// gone or /proc cannot be read.
std::optional<ProcStats> ReadProcStats(pid_t pid);

// The parsing, apart from the file system. `stat` is the content of
// /proc/<pid>/stat: its second field (the command name) may hold spaces and
// parentheses, so fields are counted from the last ')'.
std::optional<double> ParseStatCpuSeconds(std::string_view stat, long ticks_per_second);
// `statm` is the content of /proc/<pid>/statm; its second field is the
// resident set in pages.
std::optional<int64_t> ParseStatmRssBytes(std::string_view statm, long page_size);

}  // namespace pincer
