// round_robin: the free worker that was picked least recently, so equal
// workers take turns in a stable order and get equal shares.
#include "routing/round_robin.h"

namespace pincer {

WorkerId RoundRobin::Pick(const WorkerIndex& index, std::span<const ProfileId> profiles,
                          std::size_t) const {
  const std::pair<uint64_t, WorkerId>* best = nullptr;
  for (ProfileId p : profiles) {
    const auto& set = index.profile(p).by_rotation;
    if (!set.empty() && (!best || *set.begin() < *best)) best = &*set.begin();
  }
  return best ? best->second : 0;
}

}  // namespace pincer
