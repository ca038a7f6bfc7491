// least_connections: the free worker with the fewest in-flight tasks
// relative to its capacity; ties go to the one picked least recently.
#include "routing/least_connections.h"

namespace pincer {

WorkerId LeastConnections::Pick(const WorkerIndex& index, std::span<const ProfileId> profiles,
                                std::size_t) const {
  const WorkerIndex::LoadKey* best = nullptr;
  for (ProfileId p : profiles) {
    const auto& set = index.profile(p).by_load;
    if (!set.empty() && (!best || *set.begin() < *best)) best = &*set.begin();
  }
  return best ? best->id : 0;
}

}  // namespace pincer
