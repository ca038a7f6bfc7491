#include "store/erase_runs.h"

#include <iterator>

namespace pincer {

uint64_t EraseRuns::SegmentOf(TaskId id) const {
  auto it = runs_.upper_bound(id);
  if (it == runs_.begin()) return 0;
  --it;
  return id <= it->second.last ? it->second.segment : 0;
}

void EraseRuns::Add(TaskId id, uint64_t segment) {
  if (const uint64_t had = SegmentOf(id)) {
    if (had >= segment) return;
    // Listed with an older segment: cut it out of its run first.
    auto it = std::prev(runs_.upper_bound(id));
    const TaskId first = it->first;
    const Run run = it->second;
    runs_.erase(it);
    if (first < id) runs_.emplace(first, Run{id - 1, run.segment});
    if (id < run.last) runs_.emplace(id + 1, Run{run.last, run.segment});
  }
  auto next = runs_.upper_bound(id);
  // Extends the run ending just before it, if that is of the same segment.
  if (next != runs_.begin()) {
    auto prev = std::prev(next);
    if (prev->second.last + 1 == id && prev->second.segment == segment) {
      prev->second.last = id;
      if (next != runs_.end() && next->first == id + 1 && next->second.segment == segment) {
        prev->second.last = next->second.last;
        runs_.erase(next);
      }
      return;
    }
  }
  if (next != runs_.end() && next->first == id + 1 && next->second.segment == segment) {
    const Run run = next->second;
    runs_.erase(next);
    runs_.emplace(id, run);
    return;
  }
  runs_.emplace(id, Run{id, segment});
}

void EraseRuns::DropUpTo(uint64_t segment) {
  std::erase_if(runs_, [segment](const auto& r) { return r.second.segment <= segment; });
}

}  // namespace pincer
