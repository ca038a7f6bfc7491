// A routing strategy picks one worker among the eligible ones. Eligibility
// is already applied by WorkerIndex: a strategy only orders candidates.
// "No worker" is the value 0, never an exception.
#pragma once

#include <memory>
#include <span>
#include <string_view>

#include "routing/worker_index.h"

namespace pincer {

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string_view name() const = 0;
  // `profiles` all cover the task's `task_skill_count` skills.
  // Returns a free, routable worker from them, or 0.
  virtual WorkerId Pick(const WorkerIndex& index, std::span<const ProfileId> profiles,
                        std::size_t task_skill_count) const = 0;
  // May free worker `w` (one of `profiles`) take a waiting task now? Asked
  // when a worker frees a slot and pulls the best waiting task itself.
  virtual bool Allows(const WorkerIndex&, std::span<const ProfileId>, WorkerId) const {
    return true;
  }
};

// The factory: maps a config name to a strategy; nullptr for an unknown name.
std::unique_ptr<Strategy> MakeStrategy(std::string_view name);

}  // namespace pincer
