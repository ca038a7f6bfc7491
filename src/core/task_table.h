// Every task pincerd knows, by id: a live task (queued or running) as its
// Task object, an ended one as the number of its record in the
// EndedArchive. Task ids are handed out in increasing order and tasks leave
// roughly in the order they came (they end, then are purged oldest first),
// so the table is a sliding window of pages indexed directly by id: lookup
// is two array reads, insert and erase touch only the task's own slot, and
// a page is freed once all its tasks are gone. A hash map would walk bucket
// chains of cold nodes on every purge.
//
// Iteration is in id order (submit order).
#pragma once

#include <array>
#include <cstddef>
#include <deque>
#include <memory>
#include <utility>

#include "core/task.h"

namespace pincer {

class TaskTable {
 public:
  using EndedRef = uint64_t;  // EndedArchive::Ref; 0 = none

  // The live task with this id; null when it has ended or is unknown.
  Task* Find(TaskId id) const {
    const Slot* s = SlotOf(id);
    return s ? s->live.get() : nullptr;
  }
  // The archive record of the ended task with this id; 0 when it is live
  // or unknown.
  EndedRef FindEnded(TaskId id) const {
    const Slot* s = SlotOf(id);
    return s ? s->ended : 0;
  }

  // Each of these refuses (logs, returns null / false, changes nothing) a
  // call that breaks its rule; the rules hold unless pincer has a bug, and
  // are checked in every build.
  //
  // Adds a live task; its id must be unused (live or ended) and > 0. On
  // refusal `task` is left with the caller.
  Task* Insert(std::unique_ptr<Task>&& task);
  bool InsertEnded(TaskId id, EndedRef ref);
  // A live task has ended: from now on the id finds `ref`. The Task object
  // is handed back; null when the task is not live here.
  std::unique_ptr<Task> Archive(TaskId id, EndedRef ref);
  // An ended task lives again (retry); task->rec.id must be ended here. On
  // refusal `task` is left with the caller.
  Task* Revive(std::unique_ptr<Task>&& task);
  // Removes a live task and hands it back; null when there is none.
  std::unique_ptr<Task> Take(TaskId id);
  // Removes an ended task if its slot still holds `ref`; false otherwise
  // (retried or forgotten since).
  bool EraseEnded(TaskId id, EndedRef ref);

  std::size_t size() const { return size_; }  // live and ended

  // Calls fn(TaskId, Task* live, EndedRef ended) for every task, in id
  // order; exactly one of live and ended is set. Stops when fn returns false.
  template <typename F>
  void ForEachSlot(F&& fn) const {
    for (std::size_t p = 0; p < pages_.size(); ++p) {
      if (!pages_[p]) continue;
      const TaskId base = (first_ + p) * kPageSize;
      for (std::size_t i = 0; i < kPageSize; ++i) {
        const Slot& s = pages_[p]->slots[i];
        if ((s.live || s.ended) && !fn(base + i, s.live.get(), s.ended)) return;
      }
    }
  }
  // The same, newest (highest id) first.
  template <typename F>
  void ForEachSlotReverse(F&& fn) const {
    for (std::size_t p = pages_.size(); p-- > 0;) {
      if (!pages_[p]) continue;
      const TaskId base = (first_ + p) * kPageSize;
      for (std::size_t i = kPageSize; i-- > 0;) {
        const Slot& s = pages_[p]->slots[i];
        if ((s.live || s.ended) && !fn(base + i, s.live.get(), s.ended)) return;
      }
    }
  }
  // Calls fn(Task&) for every live task, in id order.
  template <typename F>
  void ForEachLive(F&& fn) const {
    ForEachSlot([&](TaskId, Task* live, EndedRef) {
      if (live) fn(*live);
      return true;
    });
  }

 private:
  static constexpr std::size_t kPageSize = 1024;
  struct Slot {
    std::unique_ptr<Task> live;
    EndedRef ended = 0;
  };
  struct Page {
    std::array<Slot, kPageSize> slots;
    std::size_t used = 0;
  };

  const Slot* SlotOf(TaskId id) const {
    const uint64_t n = id / kPageSize;
    if (pages_.empty() || n < first_ || n - first_ >= pages_.size()) return nullptr;
    const Page* page = pages_[n - first_].get();
    return page ? &page->slots[id % kPageSize] : nullptr;
  }
  Slot* SlotOf(TaskId id) { return const_cast<Slot*>(std::as_const(*this).SlotOf(id)); }
  Slot* NewSlot(TaskId id);  // null (logged) when the id is 0 or taken
  void Release(TaskId id);   // the slot is empty now

  std::deque<std::unique_ptr<Page>> pages_;  // page i holds ids of page number first_ + i
  uint64_t first_ = 0;
  std::size_t size_ = 0;
};

}  // namespace pincer
