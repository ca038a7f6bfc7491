// The durable store: one SQLite database, <data_dir>/pincer.db, in WAL mode,
// one row per task (docs/durability.md).
//
// Changes are buffered in memory, coalesced per task (a task submitted,
// started and finished within one loop batch costs one INSERT), and written
// in one transaction by Commit(): BEGIN, the rows in task-id order, COMMIT,
// synced per the fsync policy. If any step fails the transaction is rolled
// back and the buffered changes are kept, so a later Commit() writes them
// all again; nothing is half-applied and nothing is lost while pincerd runs.
//
// Threading: one thread at a time (pincerd's event loop).
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "common/clock.h"
#include "store/store.h"

namespace pincer {

enum class FsyncPolicy {
  kAlways,    // synchronous=FULL: every Commit() is on disk when it returns
  kInterval,  // synchronous=NORMAL; the WAL is synced at most every interval
  kOff,       // synchronous=OFF: survives kill -9, not a power cut
};

struct SqliteStoreOptions {
  std::string data_dir;  // created if missing
  FsyncPolicy fsync = FsyncPolicy::kAlways;
  std::chrono::milliseconds fsync_interval{100};
};

class SqliteStore final : public Store {
 public:
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
  bool dirty() const override { return !pending_.empty(); }
  bool HasPending(TaskId id) const override { return pending_.count(id) != 0; }
  bool durable() const override { return true; }

  const std::string& path() const { return path_; }
  std::size_t pending_for_test() const { return pending_.size(); }
  // Caps the database at `pages` pages (PRAGMA max_page_count), so a test
  // can make writes fail the way a full disk does.
  void SetMaxPagesForTest(int pages);

 private:
  enum class Op : uint8_t { kInsert, kUpdate, kErase };
  struct Pending {
    Op op;
    TaskRecord rec;  // kInsert: the whole record; kUpdate: the mutable fields
  };
  // Ordered by id: replaying in id order keeps an erased task's idempotency
  // key free before a newer task (a larger id) takes it again.
  using Changes = std::map<TaskId, Pending>;
  struct Batch;
  // BEGIN, the rows, COMMIT (rolled back on any error).
  Status WriteChanges(const Changes& changes);

  SqliteStore(sqlite3* db, std::string dir, std::string path, const SqliteStoreOptions& options,
              const Clock& clock);
  Status Init();
  Status Prepare(const char* sql, sqlite3_stmt** stmt);
  Status Apply(TaskId id, const Pending& p);
  Status EraseRange(TaskId first, TaskId last);
  Status Writable() const;
  Status Fail(const std::string& what) const;  // store_unavailable naming the file
  void MaybeCheckpoint();

  sqlite3* db_;
  std::string dir_;
  std::string path_;
  SqliteStoreOptions options_;
  const Clock& clock_;
  TimePoint last_sync_;

  Changes pending_;

  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* update_ = nullptr;
  sqlite3_stmt* erase_ = nullptr;
  sqlite3_stmt* erase_range_ = nullptr;  // ids first..last, all to erase
};

}  // namespace pincer
