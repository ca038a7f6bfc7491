#include "core/task_table.h"

#include <spdlog/spdlog.h>

namespace pincer {

// The checks below hold unless pincer has a bug or its store handed back
// something it never wrote. They stay in Release builds: a broken one is
// logged and the one call refused, instead of overwriting or dereferencing
// a slot that is not what the caller thinks.

TaskTable::Slot* TaskTable::NewSlot(TaskId id) {
  if (id == 0) {
    spdlog::error("task table: refused a task with id 0");
    return nullptr;
  }
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
  Slot& slot = page->slots[id % kPageSize];
  // Taken: its page existed already, so nothing above grew.
  if (slot.live || slot.ended) {
    spdlog::error("task table: refused a second task {}", TaskIdString(id));
    return nullptr;
  }
  ++page->used;
  ++size_;
  return &slot;
}

void TaskTable::Release(TaskId id) {
  auto& page = pages_[id / kPageSize - first_];
  --size_;
  if (--page->used == 0) page.reset();
  // Slide the window past empty pages at either end.
  while (!pages_.empty() && !pages_.front()) {
    pages_.pop_front();
    ++first_;
  }
  while (!pages_.empty() && !pages_.back()) pages_.pop_back();
}

Task* TaskTable::Insert(std::unique_ptr<Task>&& task) {
  Slot* slot = NewSlot(task->rec.id);
  if (!slot) return nullptr;
  slot->live = std::move(task);
  return slot->live.get();
}

bool TaskTable::InsertEnded(TaskId id, EndedRef ref) {
  if (ref == 0) {
    spdlog::error("task table: refused ended task {} without an archive record", TaskIdString(id));
    return false;
  }
  Slot* slot = NewSlot(id);
  if (!slot) return false;
  slot->ended = ref;
  return true;
}

std::unique_ptr<Task> TaskTable::Archive(TaskId id, EndedRef ref) {
  Slot* slot = SlotOf(id);
  if (!slot || !slot->live || ref == 0) {
    spdlog::error("task table: cannot archive task {}: it is not live here", TaskIdString(id));
    return nullptr;
  }
  slot->ended = ref;
  return std::move(slot->live);
}

Task* TaskTable::Revive(std::unique_ptr<Task>&& task) {
  Slot* slot = SlotOf(task->rec.id);
  if (!slot || !slot->ended || slot->live) {
    spdlog::error("task table: cannot revive task {}: it has not ended here",
                  TaskIdString(task->rec.id));
    return nullptr;
  }
  slot->ended = 0;
  slot->live = std::move(task);
  return slot->live.get();
}

std::unique_ptr<Task> TaskTable::Take(TaskId id) {
  Slot* slot = SlotOf(id);
  if (!slot || !slot->live) return nullptr;
  std::unique_ptr<Task> task = std::move(slot->live);
  Release(id);
  return task;
}

bool TaskTable::EraseEnded(TaskId id, EndedRef ref) {
  Slot* slot = SlotOf(id);
  if (!slot || slot->live || slot->ended != ref) return false;
  slot->ended = 0;
  Release(id);
  return true;
}

}  // namespace pincer
