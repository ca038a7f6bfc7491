// Reading and parsing the Linux /proc files that give a process's CPU time
// and resident memory: the worker's heartbeat `load` and the supervisor's
// per-replica stats both read them here.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pincer {

// The whole of a small /proc file; nullopt when it cannot be read: the
// process is gone, or exits while it is read (read() then fails with ESRCH,
// which a std::ifstream turns into an exception).
std::optional<std::string> ReadProcFile(const std::string& path);

struct CpuTicks {
  uint64_t self = 0;      // utime + stime
  uint64_t children = 0;  // cutime + cstime: reaped children only
};

// From the text of /proc/PID/stat. The command name is in parentheses and
// may itself hold spaces and parentheses, so fields are counted from the
// last ')'.
std::optional<CpuTicks> ParseProcStat(std::string_view text);

// Resident pages from the text of /proc/PID/statm (its second field).
std::optional<uint64_t> ParseStatmResidentPages(std::string_view text);

struct ProcStats {
  double cpu_seconds = 0;  // user + system time so far
  int64_t rss_bytes = 0;
};

// Reads /proc/<pid>/stat and /proc/<pid>/statm; nullopt when the process is
// gone or /proc cannot be read.
std::optional<ProcStats> ReadProcStats(pid_t pid);

}  // namespace pincer
