// The PostgreSQL store (store.kind: postgres, docs/durability.md): the
// tasks in a database pincerd shares with nobody, reached through libpq.
//
// Tables (created and migrated by pincerd; `pincer_schema` says which
// version they are):
// - pincer_tasks: one row per task, the fields of TaskRecord;
// - pincer_ids: the id reservation (store.h, ReserveIds), one row per kind;
// - pincer_schema: one row, the schema version.
//
// The loop records changes as the SQLite store does (store/change_codec.h,
// appended to a string); a Write coalesces a batch per task and applies it
// in one transaction: the erases, one INSERT ... ON CONFLICT and one UPDATE,
// each a single statement over arrays of the batch's rows, sent in one
// round trip (libpq pipeline mode). The batch is durable when its COMMIT
// returns (how durable is the server's synchronous_commit).
//
// Fencing (docs/high-availability.md): once SetFence has named this
// pincerd's lease (store/postgres_lease.h), every write begins with
// pincer_fence, in its own transaction: a write of a pincerd whose lease
// is gone changes nothing and fails with `lease_lost`.
//
// One connection, guarded by a mutex: Write runs on the daemon's writer
// thread, Recover, Commit and ReserveIds on the loop (store.h). A
// connection that broke is dropped; the next call connects again.
//
// Several pincerd may open the same tables: the lease decides which one
// writes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "store/store.h"

struct pg_conn;  // libpq's PGconn

namespace pincer {

struct PostgresStoreOptions {
  // A libpq URI, postgresql://[user[:password]@][host][:port][/dbname][?param=value&...].
  std::string url;
  // store.lease: what pincer_fence extends the lease by; also how long
  // the server lets a transaction of this store sit idle. 0: neither.
  std::chrono::milliseconds lease{0};
};

// `url` with its password shown as "****" (in the user info and in a
// `password=` parameter), for logs and error messages.
std::string MaskPostgresUrl(std::string_view url);

class PostgresStore final : public Store {
 public:
  // Connects, creates or migrates the tables. Returns nullptr and sets
  // `error` when the server cannot be reached (store_unavailable) or holds
  // tables of a newer pincer or not ours (store_corrupt); the message
  // names the url, its password masked.
  static std::unique_ptr<PostgresStore> Open(const PostgresStoreOptions& options, Status& error);
  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  Status Recover(const std::function<void(TaskRecord&&)>& visit) override;
  void Insert(const TaskRecord& task) override;
  void Update(const TaskRecord& task) override;
  void Erase(TaskId id) override;
  // Errors are "store_unavailable" naming the url and the server's reason;
  // the changes stay pending for the next call.
  Status Commit() override;
  std::unique_ptr<StoreBatch> TakeBatch() override;
  Status Write(StoreBatch& batch) override;
  void GiveBack(std::unique_ptr<StoreBatch> batch) override;
  void Reuse(std::unique_ptr<StoreBatch> batch) override;
  void TakeInto(StoreBatch& batch) override;
  Status ReserveIds(const IdMarks& marks) override;
  bool dirty() const override { return !pending_.empty(); }

  // Fences every later write with this lease (holder and epoch, as
  // PostgresLease took it); epoch 0: writes are not fenced. Any thread.
  void SetFence(const std::string& holder, int64_t epoch);

  // The url with its password masked.
  const std::string& shown_url() const { return shown_url_; }

  // For tests: rows in pincer_tasks (-1 when the query fails).
  int64_t TaskRowsForTest();

 private:
  struct Batch;

  explicit PostgresStore(const PostgresStoreOptions& options);
  // REQUIRES: mu_ held. Connects if there is no connection: sets the
  // session up, migrates the tables, takes the lock, prepares statements.
  Status Connect();
  Status Migrate();
  // REQUIRES: mu_ held. Closes the connection (the next call connects).
  void Disconnect();
  // REQUIRES: mu_ held. Applies encoded changes in one transaction.
  Status Apply(const std::string& changes);
  // store_unavailable: "<what> <url>: <libpq's message>".
  Status Fail(const std::string& what, const char* reason = nullptr) const;
  // lease_lost: the fence refused a write.
  Status LostLease(const char* reason) const;

  PostgresStoreOptions options_;
  std::string shown_url_;

  // Loop side: the changes recorded since the last take, encoded.
  std::string pending_;
  std::unique_ptr<StoreBatch> spare_batch_;

  // The connection (null: none; the next call connects).
  std::mutex mu_;
  pg_conn* conn_ = nullptr;
  std::string fence_holder_;  // guarded by mu_
  int64_t fence_epoch_ = 0;   // guarded by mu_
};

}  // namespace pincer
