// The journal files of the SQLite store (docs/durability.md): every commit
// appends one record to the current segment, <data_dir>/journal-<N>.log,
// and syncs it; a segment that has no room left for the next record is
// complete, and the next one is started. Segments are preallocated, so a
// sync writes data, not file sizes.
//
// A record is its payload's length (u32), a checksum of the segment's
// number and the payload (u32), then the payload; a zero length ends the
// segment. A record cut short by a crash (its sync never returned, so its
// commit was never answered) fails its checksum and ends the segment too.
//
// Folded segments are recycled: the fold renames one to
// journal-spare.log, and the next segment is that file renamed, its
// blocks already written, so a sync of a record is one write of data and
// no file-system metadata. What it held before fails the checksum of its
// new number; a segment that is left for the next one is closed with a
// synced zero length.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "store/file_system.h"

namespace pincer {

std::string SegmentPath(const std::string& dir, uint64_t number);
std::string SparePath(const std::string& dir);
// The numbers of the segments in `dir`, ascending.
std::vector<uint64_t> ListSegments(const std::string& dir);

// How a segment's records ended.
enum class SegmentEnd {
  kClean,  // a zero length, or the end of the file
  kTorn,   // a record cut short or not matching its checksum
};

// Calls `visit` with each record's payload of segment `number`, in order.
// Fails only when the file cannot be read. The file is read into `buffer`
// when one is given (it keeps its size, for the next call), else into one
// of its own.
Status ReadSegment(const std::string& dir, uint64_t number,
                   const std::function<void(std::string_view)>& visit, SegmentEnd& end,
                   std::vector<char>* buffer = nullptr);

// Appends records to segments, starting a new one when a record does not
// fit. One thread at a time. Its files are written through `files`
// (store/file_system.h), which must outlive it.
class SegmentWriter {
 public:
  // `segment_bytes`: the size of a new segment (larger for a larger record).
  SegmentWriter(std::string dir, uint64_t next_number, std::size_t segment_bytes,
                FileSystem& files = PosixFileSystem());
  ~SegmentWriter();
  SegmentWriter(const SegmentWriter&) = delete;
  SegmentWriter& operator=(const SegmentWriter&) = delete;

  // Writes one record (not synced). On error nothing counts as written: a
  // retry writes the record at the same place again.
  Status Append(std::string_view payload);
  // Makes every record appended so far durable.
  Status Sync();
  // After a failed Sync: the last record counts for nothing, unless a
  // Sync returned since it was appended, and the next Append writes at its
  // place (so it must carry that record's payload again, as SqliteStore's
  // retry does). The kernel may have dropped the pages that failed to
  // write back: a record written after them would follow a hole, which
  // reads as the segment's end.
  void DropLast();

  // The segment the last record went to (0 before the first).
  uint64_t current() const { return number_; }

 private:
  // The next segment (the spare, or a new file), synced with its
  // directory; the current one is closed first.
  Status Start(std::size_t min_bytes);
  Status Close();

  std::string dir_;
  uint64_t next_number_;
  std::size_t segment_bytes_;
  FileSystem& files_;
  std::unique_ptr<WritableFile> file_;  // the current segment
  uint64_t number_ = 0;
  std::size_t size_ = 0;
  std::size_t offset_ = 0;
  std::size_t last_ = 0;       // where the last record starts
  bool last_synced_ = true;    // a sync returned since it was written
  bool replace_last_ = false;  // DropLast: the next Append writes at last_
  std::string frame_;          // header and payload, written in one call
};

}  // namespace pincer
