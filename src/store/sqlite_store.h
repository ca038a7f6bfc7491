// The durable store: one SQLite database, <data_dir>/pincer.db, in WAL mode
// (docs/durability.md). Two tables:
// - `journal`: one row per commit, holding that commit's changes in their
//   binary form (store/change_codec.h), in the order they happened;
// - `tasks`: one row per task, the state as of every journal row folded
//   into it so far.
// The stored state is `tasks` with the journal rows replayed in order.
//
// A commit is one transaction: BEGIN, the new journal row, then (while the
// journal is over its size budget) the oldest rows folded into `tasks` and
// deleted, COMMIT, synced per the fsync policy. Folding late is what makes
// it cheap: a task that was inserted, ran, ended and was purged while its
// rows sat in the journal never becomes a `tasks` row, and the changes of
// one row to one task coalesce into one INSERT, UPDATE or DELETE. If any
// step fails the transaction is rolled back and the changes stay pending,
// so a later commit writes them all again; nothing is half-applied and
// nothing is lost while pincerd runs. Recover() folds the whole journal.
//
// Threading: see store.h.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "store/change_codec.h"
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
  // How many bytes of changes the journal holds before its oldest rows
  // are folded into `tasks` (0: fold every row at the next commit).
  std::size_t journal_bytes = 64 << 20;
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
  bool HasPending(TaskId id) const override;
  bool durable() const override { return true; }

  const std::string& path() const { return path_; }
  // Rows in table `tasks` or `journal`, counted in the file (-1 on error).
  int64_t RowsForTest(const std::string& table);
  // Caps the database at `pages` pages (PRAGMA max_page_count), so a test
  // can make writes fail the way a full disk does.
  void SetMaxPagesForTest(int pages);

 private:
  // One journal row's changes, coalesced per task for folding.
  struct Pending {
    ChangeOp op;
    TaskRecord rec;  // kInsert: the whole record; kUpdate: the mutable fields
  };
  // Ordered by id: applying in id order keeps an erased task's idempotency
  // key free before a newer task (a larger id) takes it again.
  using Changes = std::map<TaskId, Pending>;
  struct Batch;
  struct JournalRow {
    int64_t seq;
    std::size_t bytes;
  };
  // Erases recorded in journal rows: task id -> seq of the row.
  using EraseIndex = std::unordered_map<TaskId, int64_t>;

  // BEGIN, the journal row, folds, COMMIT (rolled back on any error).
  Status WriteJournal(const std::string& changes);
  // Applies journal row `seq` to `tasks` (except the tasks a newer row
  // erases) and deletes it. Inside a transaction.
  // `erases` collects the erases folded (for erased_ once committed).
  Status FoldRow(int64_t seq, const EraseIndex& erased, const EraseIndex& erased_now,
                 std::vector<TaskId>* erases);
  // Coalesces one task's changes within a journal row, the way they would
  // have been applied one after the other.
  static void AddChange(Changes& changes, ChangeOp op, TaskRecord&& rec);
  Status ReadRow(int64_t seq, std::string& changes);
  Status ApplyChanges(const Changes& changes);

  SqliteStore(sqlite3* db, std::string dir, std::string path, const SqliteStoreOptions& options,
              const Clock& clock);
  Status Init();
  Status Prepare(const char* sql, sqlite3_stmt** stmt);
  Status Apply(TaskId id, const Pending& p);
  Status LoadJournal();  // rows_, erased_ and next_seq_ from the file
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

  // Loop side: the changes recorded since the last take, encoded, and the
  // ids they touch (sorted on demand for HasPending).
  std::string pending_;
  mutable std::vector<TaskId> pending_ids_;
  mutable bool ids_sorted_ = true;

  // Writer side: the journal's rows, oldest first, and their erases.
  std::deque<JournalRow> rows_;
  std::size_t journal_bytes_ = 0;
  int64_t next_seq_ = 1;
  EraseIndex erased_;

  sqlite3_stmt* insert_ = nullptr;
  sqlite3_stmt* update_ = nullptr;
  sqlite3_stmt* erase_ = nullptr;
  sqlite3_stmt* erase_range_ = nullptr;  // ids first..last, all to erase
  sqlite3_stmt* journal_add_ = nullptr;
  sqlite3_stmt* journal_get_ = nullptr;
  sqlite3_stmt* journal_drop_ = nullptr;
};

}  // namespace pincer
