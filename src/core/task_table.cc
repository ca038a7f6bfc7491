#include "core/task_table.h"

#include <cassert>

namespace pincer {

TaskTable::Slot& TaskTable::NewSlot(TaskId id) {
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
  assert(!slot.live && !slot.ended);
  ++page->used;
  ++size_;
  return slot;
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

Task& TaskTable::Insert(std::unique_ptr<Task> task) {
  Slot& slot = NewSlot(task->rec.id);
  slot.live = std::move(task);
  return *slot.live;
}

void TaskTable::InsertEnded(TaskId id, EndedRef ref) {
  assert(ref != 0);
  NewSlot(id).ended = ref;
}

std::unique_ptr<Task> TaskTable::Archive(TaskId id, EndedRef ref) {
  Slot* slot = SlotOf(id);
  assert(slot && slot->live && ref != 0);
  slot->ended = ref;
  return std::move(slot->live);
}

Task& TaskTable::Revive(std::unique_ptr<Task> task) {
  Slot* slot = SlotOf(task->rec.id);
  assert(slot && slot->ended && !slot->live);
  slot->ended = 0;
  slot->live = std::move(task);
  return *slot->live;
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
