// The durable store (docs/durability.md), in <data_dir>:
// - journal-<N>.log: every commit appends its changes, in the order they
//   happened (store/change_codec.h), as one record, and syncs it
//   (store/journal_file.h). That append is the commit.
// - pincer.db: one SQLite database in WAL mode with one row per task, the
//   state as of every journal segment folded into it so far (`meta` says
//   up to which segment).
// - ids: the id reservation (store.h, ReserveIds), two lines of text
//   ("tasks 200000", "workers 100"), replaced whole by a rename.
// The stored state is pincer.db with the newer segments replayed in order.
//
// Folding runs on a thread of its own, off the commit path: once the
// journal holds more than `journal_bytes`, its oldest complete segment is
// applied to pincer.db in one transaction and deleted. Folding late is
// what makes it cheap: a task that was inserted, ran, ended and was purged
// while its records sat in the journal never becomes a row, and one
// segment's changes to one task coalesce into one INSERT, UPDATE or
// DELETE. Recover() folds the whole journal.
//
// Threading: the loop records changes and takes batches; one writer at a
// time appends them (Write/Commit, see store.h); the fold thread is the
// store's own.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "config/config.h"  // FsyncPolicy
#include "store/change_codec.h"
#include "store/erase_runs.h"
#include "store/journal_file.h"
#include "store/store.h"

namespace pincer {

struct SqliteStoreOptions {
  std::string data_dir;  // created if missing
  FsyncPolicy fsync = FsyncPolicy::kAlways;
  std::chrono::milliseconds fsync_interval{100};
  // How many bytes of changes the journal holds before its oldest
  // segments are folded into pincer.db (0: fold each complete segment).
  std::size_t journal_bytes = 64 << 20;
  // What the journal's files are written through (store/file_system.h):
  // the real disk, or in tests one that fails as a broken disk. Must
  // outlive the store.
  FileSystem* files = &PosixFileSystem();
};

class SqliteStore final : public Store {
 public:
  // One journal segment's changes, coalesced per task (store/change_codec.h).
  using Pending = PendingChange;
  using Changes = PendingChanges;

  // Opens (creating if needed) <data_dir>/pincer.db. Returns nullptr and
  // sets `error` when the directory or the file cannot be used, or the file
  // is not a pincer database; the message names the file.
  // `clock` must outlive the store (it paces fsync: interval).
  static std::unique_ptr<SqliteStore> Open(const SqliteStoreOptions& options, const Clock& clock,
                                           Status& error);
  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Status Recover(const std::function<void(TaskRecord&&)>& visit) override;
  void Insert(const TaskRecord& task) override;
  void Update(const TaskRecord& task) override;
  void Erase(TaskId id) override;
  // Errors are "store_unavailable" with the reason (disk full, file not
  // writable, I/O error); the changes stay pending for the next call.
  Status Commit() override;
  std::unique_ptr<StoreBatch> TakeBatch() override;
  Status Write(StoreBatch& batch) override;
  void GiveBack(std::unique_ptr<StoreBatch> batch) override;
  void Reuse(std::unique_ptr<StoreBatch> batch) override;
  void TakeInto(StoreBatch& batch) override;
  // Writes <data_dir>/ids anew (synced unless fsync is off). Errors are
  // "store_unavailable"; the old file is left as it was.
  Status ReserveIds(const IdMarks& marks) override;
  bool dirty() const override { return !pending_.empty(); }

  const std::string& path() const { return path_; }

  // Waits until the journal is within its budget (nothing left to fold).
  void WaitForFolds();
  // Journal files in the data dir (the spare not counted).
  std::size_t JournalFiles() const { return ListSegments(dir_).size(); }
  // For tests: rows in pincer.db's table `tasks`; commits that fail as on
  // a full disk while `fail` is set.
  int64_t TaskRowsForTest();
  void FailWritesForTest(bool fail) { fail_writes_ = fail; }

 private:
  struct Batch;

  SqliteStore(sqlite3* db, std::string dir, std::string path, const SqliteStoreOptions& options,
              const Clock& clock);
  Status Init();
  Status Prepare(const char* sql, sqlite3_stmt** stmt);
  Status Writable() const;
  Status Fail(const std::string& what) const;  // store_unavailable naming the file

  // Writer side: appends `changes` as one record and syncs it per policy.
  Status Append(const std::string& changes, const std::vector<TaskId>& erases);

  // Folding. FoldSegment applies one segment's records to `tasks` (except
  // the tasks a newer segment erases) inside a transaction, and lists the
  // erases it held.
  Status FoldSegment(uint64_t number, const EraseRuns& erased, std::vector<TaskId>& erases);
  Status FoldAll();  // every segment on disk, synchronously (recovery)
  Status ReadIds();  // <data_dir>/ids into reserved_ (none: zeros)
  Status Transaction(const std::function<Status()>& body);
  Status SetFolded(uint64_t number);
  Status ReadFolded(uint64_t& number);
  Status ApplyChanges(const Changes& changes);
  Status Apply(TaskId id, const Pending& p);
  Status EraseRange(TaskId first, TaskId last);
  void StartFolding();
  void StopFolding();
  void FoldLoop();
  // The oldest segment is complete and the journal is over its budget.
  // REQUIRES: mu_ held.
  bool FoldDue() const;

  sqlite3* db_;
  std::string dir_;
  std::string path_;
  SqliteStoreOptions options_;
  const Clock& clock_;
  TimePoint last_sync_;
  bool fail_writes_ = false;

  // Loop side: the changes recorded since the last take, encoded, and the
  // erased ids.
  std::string pending_;
  std::vector<TaskId> pending_erases_;
  // A written batch kept for its buffers: a fresh one grew by doubling to
  // ~100 KiB on every write (copies, and memory from the allocator anew).
  std::unique_ptr<StoreBatch> spare_batch_;

  // Writer side.
  std::unique_ptr<SegmentWriter> journal_;

  // Shared by the writer and the fold thread.
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, std::size_t> segments_;  // not yet folded: number -> bytes
  std::size_t unfolded_bytes_ = 0;            // guarded by mu_
  uint64_t writing_ = 0;                      // the segment the writer appends to
  // Erases appended since the fold thread last looked: (segment, ids).
  std::vector<std::pair<uint64_t, std::vector<TaskId>>> erase_queue_;
  bool folding_ = false;  // a fold is in progress
  bool stop_ = false;
  std::thread folder_;
  EraseRuns erased_;               // the fold thread's (or FoldAll's while it is stopped)
  std::vector<char> fold_buffer_;  // the same: a segment's bytes, read by ReadSegment

  // The database connection: the fold thread's while it runs; anyone
  // else holds db_mu_ (or stops the thread first).
  std::mutex db_mu_;
  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* update_ = nullptr;
  sqlite3_stmt* update_usage_ = nullptr;  // an update of a task that has usage
  sqlite3_stmt* erase_ = nullptr;
  sqlite3_stmt* erase_range_ = nullptr;  // ids first..last, all to erase
  sqlite3_stmt* set_folded_ = nullptr;
};

}  // namespace pincer
