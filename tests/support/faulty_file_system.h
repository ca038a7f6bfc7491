// A FileSystem (store/file_system.h) over the real one that fails chosen
// calls as a full or failing disk does, and can put back what was written
// but never synced, as a power cut does. Give it to a SegmentWriter or to
// SqliteStoreOptions::files. One thread at a time (the store's writer).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/file_system.h"

namespace pincer::test {

class FaultyFileSystem final : public FileSystem {
 public:
  enum class Op { kOpen, kAllocate, kWrite, kSync, kSyncDir };

  // From the next call on, every `op` fails with `error` (ENOSPC, EIO...)
  // until Heal(). A failing write first writes `partial` bytes of its data
  // (a record cut short on a full disk). A failing sync undoes the file's
  // writes since its last sync (DropUnsynced): Linux marks pages that
  // failed to write back clean, and they are gone once evicted.
  void Fail(Op op, int error, std::size_t partial = 0);
  // Every call works again.
  void Heal();
  // How many calls of `op` failed so far.
  int failed(Op op) const;

  // The power cut: every write since its file was last synced is undone,
  // newest first (the bytes it overwrote are put back, a file it grew is
  // cut back). Files and renames are not undone.
  void DropUnsynced();

  int Open(const std::string& path, bool truncate, std::unique_ptr<WritableFile>& file) override;
  int Rename(const std::string& from, const std::string& to) override;
  int Remove(const std::string& path) override;
  int SyncDir(const std::string& dir) override;

 private:
  class File;
  struct Fault {
    int error = 0;  // 0: none
    std::size_t partial = 0;
    int failed = 0;
  };
  // What a write overwrote: `old` at `offset`, and the file's size before.
  struct Undo {
    uint64_t offset;
    std::string old;
    uint64_t size;
  };

  // The error to fail `op` with now, or 0.
  int Check(Op op);
  // Called before `data` is written at `offset` of `path`.
  void Remember(const std::string& path, uint64_t offset, std::size_t bytes);
  // Undoes the unsynced writes to `path`, newest first.
  void UndoWrites(const std::string& path);

  std::map<Op, Fault> faults_;
  std::map<std::string, std::vector<Undo>> unsynced_;  // by path
};

}  // namespace pincer::test
