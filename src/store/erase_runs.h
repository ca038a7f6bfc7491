// Which journal segment erases each task, for the fold (docs/durability.md):
// a change to a task that a newer segment erases is skipped. Kept as runs
// of consecutive task ids erased in the same segment: purges come in id
// order, so the hundreds of thousands of erases a busy journal holds are a
// handful of runs, not one hash-map node each.
#pragma once

#include <cstdint>
#include <map>

#include "task/task_record.h"

namespace pincer {

class EraseRuns {
 public:
  // Task `id` is erased in `segment` (the later segment wins if it was
  // already listed).
  void Add(TaskId id, uint64_t segment);
  // The segment that erases task `id`; 0 when none does.
  uint64_t SegmentOf(TaskId id) const;
  // Forgets the erases of segments up to `segment` (they are folded).
  void DropUpTo(uint64_t segment);
  void clear() { runs_.clear(); }
  std::size_t runs() const { return runs_.size(); }

 private:
  struct Run {
    TaskId last;
    uint64_t segment;
  };
  std::map<TaskId, Run> runs_;  // by first id; runs never overlap
};

}  // namespace pincer
