#include "core/ended_archive.h"

#include <spdlog/spdlog.h>

#include <cstring>

#include "store/change_codec.h"

namespace pincer {

std::string& EndedArchive::ChunkFor() {
  // A chunk is filled to kChunkBytes; the record that crosses that mark
  // still goes in (into the slack reserved), the next one starts a chunk.
  if (chunks_.empty() || chunks_.back().size() >= kChunkBytes) {
    std::string chunk;
    chunk.swap(spare_chunk_);
    chunk.clear();
    chunk.reserve(kChunkBytes + kChunkBytes / 4);
    chunks_.push_back(std::move(chunk));
  }
  return chunks_.back();
}

EndedArchive::Ref EndedArchive::Add(const Task& t, TimePoint at) {
  // Only ended tasks come here; the entry's state is what `status` and the
  // purge read, so a live state would stand for an ended task forever.
  if (!IsEnded(t.rec.state)) {
    spdlog::error("ended archive: task {} added while {}; kept as failed", TaskIdString(t.rec.id),
                  TaskStateName(t.rec.state));
  }
  std::string& chunk = ChunkFor();
  const std::size_t start = chunk.size();
  EncodeEnded(chunk, t.rec);
  // The last progress: a 4-byte length, then its bytes.
  const auto len = static_cast<uint32_t>(t.progress.size());
  char len_bytes[4];
  std::memcpy(len_bytes, &len, 4);
  chunk.append(len_bytes, 4);
  chunk.append(t.progress);

  Entry e;
  e.id = t.rec.id;
  e.at = at;
  e.seq = t.seq;
  e.chunk = first_chunk_ + chunks_.size() - 1;
  e.offset = static_cast<uint32_t>(start);
  e.size = static_cast<uint32_t>(chunk.size() - start);
  e.cls = t.cls;
  e.state = IsEnded(t.rec.state) ? t.rec.state : TaskState::kFailed;
  e.has_key = !t.rec.key.empty();
  entries_.push_back(e);
  return next_ref() - 1;
}

// The records were encoded by Add, in memory: a decode fails only if that
// memory was overwritten. Checked in every build all the same: the task is
// then shown from its entry alone, with an error saying so, instead of
// reading past the record.
void EndedArchive::Read(Ref ref, Task& into) const {
  const Entry& e = entry(ref);
  std::string_view in = Bytes(e);
  uint32_t len = 0;
  bool ok = DecodeEnded(in, into.rec) && in.size() >= 4;
  if (ok) {
    std::memcpy(&len, in.data(), 4);
    ok = len <= in.size() - 4;
  }
  if (!ok) {
    spdlog::error("ended archive: the record of task {} cannot be read back", TaskIdString(e.id));
    into.rec = TaskRecord{};
    into.rec.id = e.id;
    into.rec.state = e.state;
    into.rec.error = "pincerd could not read this task's record back";
    len = 0;
    in = {};
  }
  into.progress.assign(in.empty() ? "" : in.data() + 4, len);
  into.seq = e.seq;
  into.cls = 0;
  into.where = Task::Where::kNone;
  into.worker = 0;
  into.pin_gen = 0;
  into.turn_wait_armed = false;
  into.turn_expired = false;
  into.triage_step = false;
  into.triage = 0;
  into.attempt_deadline = TimePoint{};
  into.queue_deadline = TimePoint{};
  into.waiters.clear();
}

Outcome EndedArchive::ReadOutcome(Ref ref, std::vector<AttemptError>& errors) const {
  const Entry& e = entry(ref);
  Outcome out;
  if (!DecodeEndedOutcome(Bytes(e), out, errors)) {
    spdlog::error("ended archive: the outcome of task {} cannot be read back", TaskIdString(e.id));
    errors.clear();
    out = Outcome{};
    out.id = e.id;
    out.state = e.state;
    out.error = "pincerd could not read this task's record back";
  }
  return out;
}

void EndedArchive::PopFront() {
  if (entries_.empty()) return;
  entries_.pop_front();
  ++first_;
  // Chunks before the one the new front lies in hold no record now.
  const uint64_t keep_from =
      entries_.empty() ? first_chunk_ + chunks_.size() : entries_.front().chunk;
  while (!chunks_.empty() && first_chunk_ < keep_from) {
    if (chunks_.front().capacity() <= kChunkBytes + kChunkBytes / 4)
      spare_chunk_.swap(chunks_.front());
    chunks_.pop_front();
    ++first_chunk_;
  }
}

}  // namespace pincer
