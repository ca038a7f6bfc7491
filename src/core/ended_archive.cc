#include "core/ended_archive.h"

#include <cassert>
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

EndedArchive::Ref EndedArchive::Add(const Task& t, TimePoint at, uint64_t take) {
  assert(IsEnded(t.rec.state));
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
  e.take = take;
  e.chunk = first_chunk_ + chunks_.size() - 1;
  e.offset = static_cast<uint32_t>(start);
  e.size = static_cast<uint32_t>(chunk.size() - start);
  e.cls = t.cls;
  e.state = t.rec.state;
  e.has_key = !t.rec.key.empty();
  entries_.push_back(e);
  return next_ref() - 1;
}

void EndedArchive::Read(Ref ref, Task& into) const {
  const Entry& e = entry(ref);
  std::string_view in = Bytes(e);
  [[maybe_unused]] const bool ok = DecodeEnded(in, into.rec);
  assert(ok && in.size() >= 4);
  uint32_t len;
  std::memcpy(&len, in.data(), 4);
  into.progress.assign(in.data() + 4, len);
  into.seq = e.seq;
  into.cls = 0;
  into.where = Task::Where::kNone;
  into.worker = 0;
  into.pin_gen = 0;
  into.turn_wait_armed = false;
  into.turn_expired = false;
  into.attempt_deadline = TimePoint{};
  into.queue_deadline = TimePoint{};
  into.waiters.clear();
}

Outcome EndedArchive::ReadOutcome(Ref ref, std::vector<AttemptError>& errors) const {
  Outcome out;
  [[maybe_unused]] const bool ok = DecodeEndedOutcome(Bytes(entry(ref)), out, errors);
  assert(ok);
  return out;
}

void EndedArchive::PopFront() {
  assert(!entries_.empty());
  entries_.pop_front();
  ++first_;
  // Chunks before the one the new front lies in hold no record now.
  const uint64_t keep_from = entries_.empty() ? first_chunk_ + chunks_.size() : entries_.front().chunk;
  while (!chunks_.empty() && first_chunk_ < keep_from) {
    if (chunks_.front().capacity() <= kChunkBytes + kChunkBytes / 4) spare_chunk_.swap(chunks_.front());
    chunks_.pop_front();
    ++first_chunk_;
  }
}

}  // namespace pincer
