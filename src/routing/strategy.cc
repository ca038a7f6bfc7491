#include "routing/strategy.h"

#include "routing/least_connections.h"
#include "routing/round_robin.h"
#include "routing/skill_match.h"

namespace pincer {

std::unique_ptr<Strategy> MakeStrategy(std::string_view name) {
  if (name == "round_robin") return std::make_unique<RoundRobin>();
  if (name == "least_connections") return std::make_unique<LeastConnections>();
  if (name == "skill_match") return std::make_unique<SkillMatch>();
  return nullptr;
}

}  // namespace pincer
