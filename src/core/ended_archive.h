// Tasks that have ended, kept for `status`, `wait` and `tasks` until they
// are purged (tasks.result_ttl, tasks.max_ended): each one a compact binary
// record (store/change_codec) appended to chunks of memory, in the order the
// tasks ended, and purged from the front in that same order.
//
// Why not keep the Task objects: a busy pincerd holds 100,000 ended tasks,
// ~70 MB of objects and buffers scattered over the heap. Purging the oldest
// one then read and wrote memory nothing else touched for 100,000 tasks,
// and those cold misses were the largest single cost per task. Here a task
// that ends is written once, front to back, and its live object goes back
// to the dispatcher's spare pool while it is still in cache; a purge reads
// one small entry and frees a chunk now and then (docs/architecture.md,
// "Ended tasks").
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "core/task.h"

namespace pincer {

class EndedArchive {
 public:
  // A record's number: 1, 2, 3... in the order records were added. 0 = none.
  using Ref = uint64_t;

  struct Entry {
    TaskId id = 0;
    TimePoint at{};  // when the task ended (monotonic clock)
    uint64_t seq = 0;
    uint64_t chunk = 0;  // chunk number, and where in it the record lies
    uint32_t offset = 0;
    uint32_t size = 0;
    ClassId cls = 0;  // the task's skill class (Dispatcher::held)
    TaskState state = TaskState::kSucceeded;
    bool has_key = false;
  };

  // Appends the record of ended task `t` (its TaskRecord, seq and last
  // progress). Only for an ended task: one that is not is logged and kept
  // as failed.
  Ref Add(const Task& t, TimePoint at);

  // The entry / the whole task of a record still held (front_ref() <= ref
  // < next_ref()). Read sets every field of `into`; what an ended task does
  // not have (queue position, deadlines, waiters) is left empty.
  const Entry& entry(Ref ref) const { return entries_[ref - first_]; }
  void Read(Ref ref, Task& into) const;
  // Only what an `end` event tells, without copying it: valid until the
  // record is purged. Attempt errors are copied into `errors`.
  Outcome ReadOutcome(Ref ref, std::vector<AttemptError>& errors) const;

  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }
  Ref front_ref() const { return first_; }
  Ref next_ref() const { return first_ + entries_.size(); }
  const Entry& front() const { return entries_.front(); }
  const Entry& back() const { return entries_.back(); }
  // Drops the oldest record (and any chunk no record lies in any more).
  void PopFront();

 private:
  static constexpr std::size_t kChunkBytes = 256 * 1024;

  std::string& ChunkFor();
  std::string_view Bytes(const Entry& e) const {
    return std::string_view(chunks_[e.chunk - first_chunk_]).substr(e.offset, e.size);
  }

  std::deque<Entry> entries_;
  Ref first_ = 1;
  std::deque<std::string> chunks_;  // chunk number first_chunk_ + i
  uint64_t first_chunk_ = 0;
  std::string spare_chunk_;  // the last chunk freed, reused by the next
};

}  // namespace pincer
