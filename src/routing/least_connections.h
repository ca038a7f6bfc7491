#pragma once

#include "routing/strategy.h"

namespace pincer {

class LeastConnections final : public Strategy {
 public:
  std::string_view name() const override { return "least_connections"; }
  WorkerId Pick(const WorkerIndex& index, std::span<const ProfileId> profiles,
                std::size_t task_skill_count) const override;
};

}  // namespace pincer
