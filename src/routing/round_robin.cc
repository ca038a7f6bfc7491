// round_robin: the free worker picked least recently. Picking moves a worker
// to the back, so equal workers take turns in a stable order; a worker that
// joins (never picked) takes the next turn, and one that comes back from
// ejection or drain keeps its old place, near the front. No worker catches
// up on tasks it missed.
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
  const auto holder = index.TurnHolder(profiles);
  return !holder || index.Turn(w) <= *holder;
}

}  // namespace pincer
