#include "supervisor/proc_stats.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace pincer {
namespace {

std::vector<std::string_view> Fields(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) ++i;
    const std::size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\n') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

std::optional<int64_t> ToInt(std::string_view s) {
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::optional<double> ParseStatCpuSeconds(std::string_view stat, long ticks_per_second) {
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) return std::nullopt;
  // After ")": field 3 (state) is index 0, so utime (14) is 11 and stime (15) is 12.
  const auto f = Fields(stat.substr(close + 1));
  if (f.size() < 13) return std::nullopt;
  const auto utime = ToInt(f[11]);
  const auto stime = ToInt(f[12]);
  if (!utime || !stime) return std::nullopt;
  return static_cast<double>(*utime + *stime) / static_cast<double>(ticks_per_second);
}

std::optional<int64_t> ParseStatmRssBytes(std::string_view statm, long page_size) {
  const auto f = Fields(statm);
  if (f.size() < 2 || page_size <= 0) return std::nullopt;
  const auto pages = ToInt(f[1]);
  if (!pages) return std::nullopt;
  return *pages * page_size;
}

std::optional<ProcStats> ReadProcStats(pid_t pid) {
  const std::string base = "/proc/" + std::to_string(pid);
  const auto cpu = ParseStatCpuSeconds(Slurp(base + "/stat"), sysconf(_SC_CLK_TCK));
  const auto rss = ParseStatmRssBytes(Slurp(base + "/statm"), sysconf(_SC_PAGESIZE));
  if (!cpu || !rss) return std::nullopt;
  return ProcStats{*cpu, *rss};
}

}  // namespace pincer
