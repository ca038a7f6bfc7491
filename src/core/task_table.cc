#include "core/task_table.h"

#include <cassert>

namespace pincer {

Task& TaskTable::Insert(std::unique_ptr<Task> task) {
  const TaskId id = task->rec.id;
  const uint64_t n = id / kPageSize;
  if (pages_.empty()) first_ = n;
  // Recovery may bring ids below the window (restored in id order they
  // never do, but a forgotten id can be reused): grow at the front.
  while (n < first_) {
    pages_.emplace_front();
    --first_;
  }
  while (n - first_ >= pages_.size()) pages_.emplace_back();
  auto& page = pages_[n - first_];
  if (!page) page = std::make_unique<Page>();
  auto& slot = page->slots[id % kPageSize];
  assert(!slot);
  slot = std::move(task);
  ++page->used;
  ++size_;
  return *slot;
}

std::unique_ptr<Task> TaskTable::Take(TaskId id) {
  const uint64_t n = id / kPageSize;
  if (pages_.empty() || n < first_ || n - first_ >= pages_.size()) return nullptr;
  auto& page = pages_[n - first_];
  if (!page || !page->slots[id % kPageSize]) return nullptr;
  std::unique_ptr<Task> task = std::move(page->slots[id % kPageSize]);
  --size_;
  if (--page->used == 0) page.reset();
  // Slide the window past empty pages at either end.
  while (!pages_.empty() && !pages_.front()) {
    pages_.pop_front();
    ++first_;
  }
  while (!pages_.empty() && !pages_.back()) pages_.pop_back();
  return task;
}

}  // namespace pincer
