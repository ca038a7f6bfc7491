// Every task pincerd knows, by id. Task ids are handed out in increasing
// order and tasks leave roughly in the order they came (they end, then are
// purged oldest first), so the table is a sliding window of pages indexed
// directly by id: lookup is two array reads, insert and erase touch only
// the task's own slot, and a page is freed once all its tasks are gone. A
// hash map would walk bucket chains of cold nodes on every purge.
//
// Iteration is in id order (submit order).
#pragma once

#include <array>
#include <cstddef>
#include <deque>
#include <memory>

#include "core/task.h"

namespace pincer {

class TaskTable {
 public:
  Task* Find(TaskId id) const {
    const Page* p = PageOf(id);
    return p ? p->slots[id % kPageSize].get() : nullptr;
  }

  // REQUIRES: no task with this id; id > 0.
  Task& Insert(std::unique_ptr<Task> task);
  // Removes the task and hands it back; null when there is none.
  std::unique_ptr<Task> Take(TaskId id);

  std::size_t size() const { return size_; }

  // Calls fn(Task&) for every task, in id order.
  template <typename F>
  void ForEach(F&& fn) const {
    for (const auto& page : pages_) {
      if (!page) continue;
      for (const auto& slot : page->slots) {
        if (slot) fn(*slot);
      }
    }
  }

 private:
  static constexpr std::size_t kPageSize = 1024;
  struct Page {
    std::array<std::unique_ptr<Task>, kPageSize> slots;
    std::size_t used = 0;
  };

  const Page* PageOf(TaskId id) const {
    const uint64_t n = id / kPageSize;
    if (pages_.empty() || n < first_ || n - first_ >= pages_.size()) return nullptr;
    return pages_[n - first_].get();
  }

  std::deque<std::unique_ptr<Page>> pages_;  // page i holds ids of page number first_ + i
  uint64_t first_ = 0;
  std::size_t size_ = 0;
};

}  // namespace pincer
