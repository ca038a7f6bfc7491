// The `load` object of heartbeats: CPU (in cores) and resident memory of
// the worker and the task processes it runs. Linux only; elsewhere, or when
// /proc cannot be read, it reports what it could (possibly nothing).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

namespace pincer::worker {

class LoadSampler {
 public:
  LoadSampler();

  // `now` is passed in (not read here) so the caller owns the clock.
  // `children`: pids of running task processes. The first call has no
  // earlier sample to measure CPU against, so it reports memory only.
  nlohmann::json Sample(std::chrono::steady_clock::time_point now,
                        const std::vector<pid_t>& children);

 private:
  double ticks_per_second_;
  uint64_t page_bytes_;
  std::optional<std::chrono::steady_clock::time_point> last_time_;
  uint64_t last_ticks_ = 0;
};

}  // namespace pincer::worker
