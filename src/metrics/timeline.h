// The last 15 minutes of task ends, for the dashboard's charts
// (docs/dashboard.md): per 10-second slot, how many tasks ended in each
// end state and how long they took from submit to end (a log-scale
// histogram, for p50 and p99). Fed on the loop thread as tasks end (one
// array increment each, no allocation); read there too.
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "task/task_record.h"

namespace pincer {

class Timeline {
 public:
  static constexpr int64_t kSlotMs = 10'000;
  static constexpr std::size_t kSlots = 90;  // 15 minutes
  // Duration buckets: [0, 1ms), then 8 a power of two from 1 ms (each
  // about 9% wide) up to 2^27 ms (37 hours), and one for anything longer.
  static constexpr std::size_t kOctaves = 27;
  static constexpr std::size_t kBuckets = 2 + kOctaves * 8;

  // A task reached end state `state` at unix ms `ended_ms`, `seconds`
  // after it was submitted. An end older than the window is not counted.
  void Record(TaskState state, int64_t ended_ms, double seconds);

  // The window that ends with the slot holding `now_ms`, oldest slot first:
  //   {"slot_ms":10000,"start_ms":..,"now_ms":..,
  //    "ended":{"succeeded":[..],"failed":[..],"cancelled":[..],"timed_out":[..]},
  //    "p50_seconds":[..],"p99_seconds":[..]}
  // Counts are per slot (the last slot is still filling up to now_ms); a
  // slot without ends has null quantiles.
  nlohmann::json View(int64_t now_ms) const;

  // The bucket of a duration and the value a bucket stands for (its
  // geometric middle), in milliseconds. Exposed for tests.
  static std::size_t Bucket(double ms);
  static double BucketValue(std::size_t bucket);

 private:
  struct Slot {
    int64_t index = -1;               // ended_ms / kSlotMs of the ends counted here
    std::array<uint32_t, 4> ended{};  // succeeded, failed, cancelled, timed_out
    std::vector<uint32_t> durations;  // kBuckets, allocated at the slot's first end
    uint32_t total = 0;
  };
  // The quantile q (0..1) of a slot's durations, in seconds; -1 if none.
  static double Quantile(const Slot& s, double q);

  std::array<Slot, kSlots> slots_;
};

}  // namespace pincer
