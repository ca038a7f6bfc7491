// round_robin: the free worker that has served the fewest tasks, then the
// one picked least recently: equal workers take turns in a stable order.
#include "routing/round_robin.h"

namespace pincer {

WorkerId RoundRobin::Pick(const WorkerIndex& index, std::span<const ProfileId> profiles,
                          std::size_t) const {
  const WorkerIndex::TurnKey* best = nullptr;
  for (ProfileId p : profiles) {
    const auto& set = index.profile(p).by_turn;
    if (!set.empty() && (!best || *set.begin() < *best)) best = &*set.begin();
  }
  if (!best || !Allows(index, profiles, best->id)) return 0;
  return best->id;
}

bool RoundRobin::Allows(const WorkerIndex& index, std::span<const ProfileId> profiles,
                        WorkerId w) const {
  const auto least = index.MinServed(profiles);
  return !least || index.Served(w) <= *least;
}

}  // namespace pincer
