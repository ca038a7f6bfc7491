// pincerd's usage totals (docs/protocol.md, `usage`): tokens and cost the
// workers reported, summed since pincerd started, in all and per worker
// name, skill set and model. Each of the three keeps at most kMaxKeys
// names; reports under further names are summed under "other", so what a
// peer chooses to name cannot grow pincerd's memory.
//
// Threading: the event-loop thread.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/usage.h"

namespace pincer {

class UsageBook {
 public:
  static constexpr std::size_t kMaxKeys = 100;
  using ByName = std::map<std::string, TaskUsage, std::less<>>;

  // `skills`: the task's skills (sorted); `u.model` names the model ("" = none).
  void Add(std::string_view worker, const std::vector<std::string>& skills, const TaskUsage& u);

  const TaskUsage& total() const { return total_; }
  const ByName& by_worker() const { return by_worker_; }
  const ByName& by_skill() const { return by_skill_; }
  const ByName& by_model() const { return by_model_; }

  // "a,b" for skills {a, b}; "any" for none (the metrics' skill label).
  static std::string SkillsLabel(const std::vector<std::string>& skills);

 private:
  static void AddTo(ByName& into, std::string_view name, const TaskUsage& u);

  TaskUsage total_;
  ByName by_worker_;
  ByName by_skill_;
  ByName by_model_;
};

}  // namespace pincer
