// skill_match: the best fit. Among free workers, the one with the fewest
// skills beyond those the task needs (specialists first, so generalists stay
// free for what only they can do); ties by least connections.
#include "routing/skill_match.h"

namespace pincer {

WorkerId SkillMatch::Pick(const WorkerIndex& index, std::span<const ProfileId> profiles,
                          std::size_t task_skill_count) const {
  const WorkerIndex::LoadKey* best = nullptr;
  std::size_t best_extra = 0;
  for (ProfileId p : profiles) {
    const auto& profile = index.profile(p);
    if (profile.by_load.empty()) continue;
    const std::size_t extra = profile.skills.size() - task_skill_count;
    const auto& head = *profile.by_load.begin();
    if (!best || extra < best_extra || (extra == best_extra && head < *best)) {
      best = &head;
      best_extra = extra;
    }
  }
  return best ? best->id : 0;
}

}  // namespace pincer
