#pragma once

#include "routing/strategy.h"

namespace pincer {

// Strict rotation: a worker takes a turn only while no eligible worker was
// picked less recently (busy or not), so equal workers get equal shares (±1)
// even when tasks queue up. The dispatcher bounds how long a task waits for a busy
// turn-holder (see Dispatcher, kMaxTurnWait).
class RoundRobin final : public Strategy {
 public:
  std::string_view name() const override { return "round_robin"; }
  WorkerId Pick(const WorkerIndex& index, std::span<const ProfileId> profiles,
                std::size_t task_skill_count) const override;
  bool Allows(const WorkerIndex& index, std::span<const ProfileId> profiles,
              WorkerId w) const override;
};

}  // namespace pincer
