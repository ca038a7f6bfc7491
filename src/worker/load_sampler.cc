#include "worker/load_sampler.h"

#include <unistd.h>

#include <string>

#include "common/proc_stat.h"

namespace pincer::worker {

LoadSampler::LoadSampler()
    : ticks_per_second_(static_cast<double>(sysconf(_SC_CLK_TCK))),
      page_bytes_(static_cast<uint64_t>(sysconf(_SC_PAGESIZE))) {
  if (ticks_per_second_ <= 0) ticks_per_second_ = 100;
}

nlohmann::json LoadSampler::Sample(std::chrono::steady_clock::time_point now,
                                   const std::vector<pid_t>& children) {
  nlohmann::json load = nlohmann::json::object();
  uint64_t ticks = 0;
  uint64_t pages = 0;
  bool have_self = false;
  if (auto stat = ReadProcFile("/proc/self/stat")) {
    if (auto t = ParseProcStat(*stat)) {
      // Reaped children's time is in our cutime/cstime; running ones are
      // read below, so a task's CPU is counted whether or not it has ended.
      ticks += t->self + t->children;
      have_self = true;
    }
  }
  if (auto statm = ReadProcFile("/proc/self/statm")) {
    if (auto p = ParseStatmResidentPages(*statm)) pages += *p;
  }
  for (pid_t pid : children) {
    const std::string dir = "/proc/" + std::to_string(pid);
    if (auto stat = ReadProcFile(dir + "/stat")) {
      if (auto t = ParseProcStat(*stat)) ticks += t->self;
    }
    if (auto statm = ReadProcFile(dir + "/statm")) {
      if (auto p = ParseStatmResidentPages(*statm)) pages += *p;
    }
  }
  if (pages > 0) load["rss_bytes"] = pages * page_bytes_;
  if (have_self) {
    if (last_time_ && now > *last_time_ && ticks >= last_ticks_) {
      const double seconds = std::chrono::duration<double>(now - *last_time_).count();
      const double cpu = static_cast<double>(ticks - last_ticks_) / ticks_per_second_ / seconds;
      load["cpu"] = static_cast<double>(static_cast<int64_t>(cpu * 1000)) / 1000;
    }
    last_time_ = now;
    last_ticks_ = ticks;
  }
  return load;
}

}  // namespace pincer::worker
