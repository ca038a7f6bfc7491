// The tasks a worker holds: a sorted vector of ids. A worker holds at most
// its capacity, ids mostly arrive in increasing order (appended at the end),
// and a lookup is a binary search over contiguous memory: no node to
// allocate per assignment, unlike std::set.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "task/task_record.h"

namespace pincer {

class TaskIdSet {
 public:
  using const_iterator = std::vector<TaskId>::const_iterator;

  void insert(TaskId id) {
    if (ids_.empty() || ids_.back() < id) {
      ids_.push_back(id);
      return;
    }
    auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
    if (it == ids_.end() || *it != id) ids_.insert(it, id);
  }
  // Returns how many were removed (0 or 1).
  std::size_t erase(TaskId id) {
    auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
    if (it == ids_.end() || *it != id) return 0;
    ids_.erase(it);
    return 1;
  }
  std::size_t count(TaskId id) const { return std::binary_search(ids_.begin(), ids_.end(), id); }
  std::size_t size() const { return ids_.size(); }
  bool empty() const { return ids_.empty(); }
  const_iterator begin() const { return ids_.begin(); }
  const_iterator end() const { return ids_.end(); }

 private:
  std::vector<TaskId> ids_;
};

}  // namespace pincer
