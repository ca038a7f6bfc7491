#include "queue/task_queue.h"

#include <algorithm>

namespace pincer {

ClassId TaskQueue::ClassFor(const std::vector<std::string>& skills) {
  auto [it, inserted] = class_ids_.try_emplace(skills, static_cast<ClassId>(classes_.size()));
  if (inserted) {
    classes_.push_back(Class{skills, {}});
    covered_cache_.clear();
  }
  return it->second;
}

void TaskQueue::Push(ClassId c, const QueueEntry& e) {
  if (classes_[c].waiting.insert(e).second) ++total_;
}

bool TaskQueue::Erase(ClassId c, const QueueEntry& e) {
  if (classes_[c].waiting.erase(e) == 0) return false;
  --total_;
  return true;
}

const QueueEntry* TaskQueue::Head(ClassId c) const {
  const auto& w = classes_[c].waiting;
  return w.empty() ? nullptr : &*w.begin();
}

const std::vector<ClassId>& TaskQueue::CoveredBy(ProfileId profile,
                                                 const std::vector<std::string>& worker_skills) {
  if (covered_cache_.size() <= profile) covered_cache_.resize(profile + 1);
  auto& slot = covered_cache_[profile];
  if (!slot) {
    slot.emplace();
    for (ClassId c = 0; c < classes_.size(); ++c) {
      const auto& need = classes_[c].skills;
      if (std::includes(worker_skills.begin(), worker_skills.end(), need.begin(), need.end())) {
        slot->push_back(c);
      }
    }
  }
  return *slot;
}

std::optional<std::pair<ClassId, QueueEntry>> TaskQueue::Best(
    const std::vector<ClassId>& classes) const {
  std::optional<std::pair<ClassId, QueueEntry>> best;
  for (ClassId c : classes) {
    const QueueEntry* head = Head(c);
    if (head && (!best || *head < best->second)) best.emplace(c, *head);
  }
  return best;
}

}  // namespace pincer
