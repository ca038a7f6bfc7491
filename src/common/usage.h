// Tokens and cost a worker reports for a task's attempt (docs/protocol.md,
// `usage`), and their sums: per task over its attempts, and pincerd's
// totals per worker, skill set and model.
#pragma once

#include <cstdint>
#include <string>

namespace pincer {

struct TaskUsage {
  int64_t input = 0;  // tokens
  int64_t output = 0;
  int64_t total = 0;
  double cost = 0;    // in whatever unit the workers report
  std::string model;  // of the last attempt that named one; "" = none

  bool empty() const {
    return input == 0 && output == 0 && total == 0 && cost == 0 && model.empty();
  }
  // Adds `u`'s counts (saturating at INT64_MAX); its model, when it names
  // one, replaces ours.
  void Add(const TaskUsage& u) {
    input = Sum(input, u.input);
    output = Sum(output, u.output);
    total = Sum(total, u.total);
    cost += u.cost;
    if (!u.model.empty()) model = u.model;
  }
  bool operator==(const TaskUsage&) const = default;

 private:
  static int64_t Sum(int64_t a, int64_t b) {
    int64_t s;
    return __builtin_add_overflow(a, b, &s) ? INT64_MAX : s;
  }
};

}  // namespace pincer
