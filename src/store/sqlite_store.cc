#include "store/sqlite_store.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string_view>
#include <utility>

#include "common/json_text.h"
#include "store/task_json.h"

namespace pincer {
namespace {

// Bumped when the tables change; a newer file is refused, not guessed at.
// Version 1 had no `meta` (and no journal files); opening one adds it.
// Version 2 had no usage and backoff columns; opening one adds them.
// Version 3 had no parent column; opening one adds it.
constexpr int kSchemaVersion = 4;

constexpr const char* kSchema = R"sql(
CREATE TABLE tasks (
  id           INTEGER PRIMARY KEY,
  seq          INTEGER NOT NULL,  -- submit order (ids are handed out in order)
  skills       TEXT NOT NULL,     -- JSON array of strings, sorted
  payload      TEXT,              -- raw JSON, NULL = null
  priority     INTEGER NOT NULL,
  timeout_ms   INTEGER NOT NULL,
  max_attempts INTEGER NOT NULL,
  session      TEXT,
  key          TEXT,
  state        TEXT NOT NULL,     -- queued, running, succeeded, ...
  attempts     INTEGER NOT NULL,
  worker       TEXT,
  output       TEXT,              -- raw JSON
  error        TEXT,
  errors       TEXT NOT NULL,     -- JSON array of {attempt, worker, error}
  created_ms   INTEGER NOT NULL,
  started_ms   INTEGER NOT NULL,
  ended_ms     INTEGER NOT NULL,
  usage_input  INTEGER NOT NULL DEFAULT 0,  -- tokens, summed over the attempts
  usage_output INTEGER NOT NULL DEFAULT 0,
  usage_total  INTEGER NOT NULL DEFAULT 0,
  usage_cost   REAL NOT NULL DEFAULT 0,
  usage_model  TEXT,
  backoff_initial_ms INTEGER,              -- the task's own retry backoff; NULL = the config's
  backoff_max_ms     INTEGER,
  backoff_jitter     REAL,
  parent       INTEGER            -- the id of the task that submitted it (a subtask); NULL = none
);
CREATE UNIQUE INDEX tasks_key ON tasks(key) WHERE key IS NOT NULL;
)sql";

// Version 2 -> 3.
constexpr const char* kAddUsage = R"sql(
ALTER TABLE tasks ADD COLUMN usage_input INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN usage_output INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN usage_total INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN usage_cost REAL NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN usage_model TEXT;
ALTER TABLE tasks ADD COLUMN backoff_initial_ms INTEGER;
ALTER TABLE tasks ADD COLUMN backoff_max_ms INTEGER;
ALTER TABLE tasks ADD COLUMN backoff_jitter REAL;
)sql";

// Version 3 -> 4.
constexpr const char* kAddParent = R"sql(
ALTER TABLE tasks ADD COLUMN parent INTEGER;
)sql";

// Up to which journal segment `tasks` holds the changes (key "folded").
constexpr const char* kMeta = R"sql(
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
)sql";

constexpr const char* kColumns =
    "id, skills, payload, priority, timeout_ms, max_attempts, session, key, state, attempts, "
    "worker, output, error, errors, created_ms, started_ms, ended_ms, usage_input, usage_output, "
    "usage_total, usage_cost, usage_model, backoff_initial_ms, backoff_max_ms, backoff_jitter, "
    "parent";

// Empty strings are stored as NULL: "" means "none" in a TaskRecord, and
// NULL keys stay out of the unique key index.
void BindText(sqlite3_stmt* s, int i, const std::string& v) {
  if (v.empty()) {
    sqlite3_bind_null(s, i);
  } else {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
}

// Binds the five usage columns from parameter `first` on.
void BindUsage(sqlite3_stmt* s, int first, const TaskUsage& u) {
  sqlite3_bind_int64(s, first, u.input);
  sqlite3_bind_int64(s, first + 1, u.output);
  sqlite3_bind_int64(s, first + 2, u.total);
  sqlite3_bind_double(s, first + 3, u.cost);
  BindText(s, first + 4, u.model);
}

std::string_view ColumnText(sqlite3_stmt* s, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  if (!p) return {};
  return std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
}

// A journal segment is a quarter of the budget (so folding keeps most of
// the journal), between 4 KiB and 16 MiB.
std::size_t SegmentBytes(std::size_t journal_bytes) {
  return std::clamp<std::size_t>(journal_bytes / 4, 4096, 16 << 20);
}

}  // namespace

std::unique_ptr<SqliteStore> SqliteStore::Open(const SqliteStoreOptions& options,
                                               const Clock& clock, Status& error) {
  std::error_code ec;
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    error = Status("store_unavailable",
                   "cannot create data_dir " + options.data_dir + ": " + ec.message());
    return nullptr;
  }
  std::string path = (std::filesystem::path(options.data_dir) / "pincer.db").string();
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    error = Status("store_unavailable",
                   "cannot open " + path + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close(db);
    return nullptr;
  }
  std::unique_ptr<SqliteStore> store(
      new SqliteStore(db, options.data_dir, std::move(path), options, clock));
  error = store->Init();
  if (!error.ok()) return nullptr;
  store->StartFolding();
  return store;
}

SqliteStore::SqliteStore(sqlite3* db, std::string dir, std::string path,
                         const SqliteStoreOptions& options, const Clock& clock)
    : db_(db),
      dir_(std::move(dir)),
      path_(std::move(path)),
      options_(options),
      clock_(clock),
      last_sync_(clock.Now()) {}

SqliteStore::~SqliteStore() {
  StopFolding();
  for (sqlite3_stmt* s : {insert_, update_, update_usage_, erase_, erase_range_, set_folded_}) {
    sqlite3_finalize(s);
  }
  sqlite3_close(db_);
}

Status SqliteStore::Fail(const std::string& what) const {
  return Status("store_unavailable", what + " " + path_ + ": " + sqlite3_errmsg(db_));
}

Status SqliteStore::Init() {
  if (sqlite3_db_readonly(db_, "main") == 1) {
    return Status("store_unavailable", path_ + " is not writable");
  }
  // Exclusive locking: one pincerd per data_dir (a second one gets "database
  // is locked"), and WAL needs no shared-memory file.
  const char* pragmas =
      "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; PRAGMA cache_size=-65536;";
  if (sqlite3_exec(db_, pragmas, nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Fail("cannot use");
  }
  // A fold must be on disk before its journal segment is deleted, unless
  // nothing is synced at all.
  const char* sync =
      options_.fsync == FsyncPolicy::kOff ? "PRAGMA synchronous=OFF" : "PRAGMA synchronous=FULL";
  if (sqlite3_exec(db_, sync, nullptr, nullptr, nullptr) != SQLITE_OK) return Fail("cannot use");

  // Take the write lock now, and check what the file holds.
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Fail("cannot lock");
  }
  int version = -1, objects = -1;
  sqlite3_stmt* q = nullptr;
  if (Prepare("PRAGMA user_version", &q).ok() && sqlite3_step(q) == SQLITE_ROW) {
    version = sqlite3_column_int(q, 0);
  }
  sqlite3_finalize(q);
  q = nullptr;
  if (Prepare("SELECT count(*) FROM sqlite_master", &q).ok() && sqlite3_step(q) == SQLITE_ROW) {
    objects = sqlite3_column_int(q, 0);
  }
  sqlite3_finalize(q);
  Status st;
  if (version < 0 || objects < 0) {
    st = Fail("cannot read");
  } else if ((version == 0 && objects == 0) || (version >= 1 && version < kSchemaVersion)) {
    const std::string create = std::string(version == 0 ? kSchema : "") +
                               (version == 0 || version == 1 ? kMeta : "") +
                               (version == 1 || version == 2 ? kAddUsage : "") +
                               (version >= 1 && version <= 3 ? kAddParent : "") +
                               "PRAGMA user_version=" + std::to_string(kSchemaVersion) + ";";
    if (sqlite3_exec(db_, create.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      st = Fail("cannot create the tables in");
    }
  } else if (version != kSchemaVersion) {
    st = Status("store_corrupt", path_ + " is not a pincer database of schema version " +
                                     std::to_string(kSchemaVersion) + " (user_version " +
                                     std::to_string(version) + ")");
  }
  if (!st.ok()) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return st;
  }
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    Status failed = Fail("cannot write");
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return failed;
  }

  // An insert is applied again after a commit whose sync failed was
  // retried (the record may be in the journal twice): it replaces.
  std::string insert =
      std::string("INSERT INTO tasks (") + kColumns +
      ", seq) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,"
      "?22,?23,?24,?25,?26,?1)"
      " ON CONFLICT(id) DO UPDATE SET ";
  std::string_view columns = kColumns;
  bool first = true;
  while (!columns.empty()) {
    const std::size_t comma = columns.find(',');
    std::string_view col = columns.substr(0, comma);
    while (col.starts_with(' ')) col.remove_prefix(1);
    columns = comma == std::string_view::npos ? std::string_view() : columns.substr(comma + 1);
    if (col == "id") continue;
    if (!first) insert += ", ";
    first = false;
    insert.append(col).append("=excluded.").append(col);
  }
  if (Status s = Prepare(insert.c_str(), &insert_); !s.ok()) return s;
  if (Status s = Prepare("UPDATE tasks SET state=?2, attempts=?3, worker=?4, output=?5, error=?6, "
                         "errors=?7, started_ms=?8, ended_ms=?9 WHERE id=?1",
                         &update_);
      !s.ok()) {
    return s;
  }
  // Usage only grows: a task that has some is always updated with it.
  if (Status s =
          Prepare("UPDATE tasks SET state=?2, attempts=?3, worker=?4, output=?5, error=?6, "
                  "errors=?7, started_ms=?8, ended_ms=?9, usage_input=?10, usage_output=?11, "
                  "usage_total=?12, usage_cost=?13, usage_model=?14 WHERE id=?1",
                  &update_usage_);
      !s.ok()) {
    return s;
  }
  if (Status s = Prepare("DELETE FROM tasks WHERE id=?1", &erase_); !s.ok()) return s;
  if (Status s = Prepare("DELETE FROM tasks WHERE id BETWEEN ?1 AND ?2", &erase_range_); !s.ok()) {
    return s;
  }
  if (Status s =
          Prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('folded', ?1)", &set_folded_);
      !s.ok()) {
    return s;
  }
  // New segments are numbered after any on disk (Recover folds those).
  uint64_t folded = 0;
  if (Status s = ReadFolded(folded); !s.ok()) return s;
  const std::vector<uint64_t> on_disk = ListSegments(dir_);
  const uint64_t next = std::max(folded, on_disk.empty() ? 0 : on_disk.back()) + 1;
  journal_ = std::make_unique<SegmentWriter>(dir_, next, SegmentBytes(options_.journal_bytes),
                                             *options_.files);
  return Status::Ok();
}

Status SqliteStore::Prepare(const char* sql, sqlite3_stmt** stmt) {
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, nullptr) != SQLITE_OK) {
    // A table that does not parse as ours: not a file to trust.
    return Status("store_corrupt",
                  std::string("cannot read ") + path_ + ": " + sqlite3_errmsg(db_));
  }
  return Status::Ok();
}

Status SqliteStore::ReadFolded(uint64_t& number) {
  sqlite3_stmt* q = nullptr;
  if (Status s = Prepare("SELECT value FROM meta WHERE key='folded'", &q); !s.ok()) return s;
  number = 0;
  const int rc = sqlite3_step(q);
  if (rc == SQLITE_ROW) number = static_cast<uint64_t>(sqlite3_column_int64(q, 0));
  sqlite3_finalize(q);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Fail("cannot read");
  return Status::Ok();
}

// ------------------------------------------------------------- recovery

Status SqliteStore::Recover(const std::function<void(TaskRecord&&)>& visit) {
  if (Status st = ReadIds(); !st.ok()) return st;
  // Fold the whole journal first: then `tasks` holds everything.
  if (Status st = FoldAll(); !st.ok()) return st;
  std::lock_guard db_lock(db_mu_);
  const std::string sql = std::string("SELECT ") + kColumns + " FROM tasks ORDER BY id";
  sqlite3_stmt* q = nullptr;
  if (Status s = Prepare(sql.c_str(), &q); !s.ok()) return s;
  Status st;
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    TaskRecord r;
    r.id = static_cast<TaskId>(sqlite3_column_int64(q, 0));
    const bool parsed = ParseSkills(ColumnText(q, 1), r.skills) &&
                        ParseTaskState(ColumnText(q, 8), r.state) &&
                        ParseErrors(ColumnText(q, 13), r.errors);
    if (!parsed || r.id == 0) {
      st = Status("store_corrupt",
                  path_ + ": task row " + std::to_string(r.id) + " cannot be read back");
      break;
    }
    r.payload = ColumnText(q, 2);
    r.priority = sqlite3_column_int64(q, 3);
    r.timeout_ms = sqlite3_column_int64(q, 4);
    r.max_attempts = sqlite3_column_int(q, 5);
    r.session = ColumnText(q, 6);
    r.key = ColumnText(q, 7);
    r.attempts = sqlite3_column_int(q, 9);
    r.worker = ColumnText(q, 10);
    r.output = ColumnText(q, 11);
    r.error = ColumnText(q, 12);
    r.created_ms = sqlite3_column_int64(q, 14);
    r.started_ms = sqlite3_column_int64(q, 15);
    r.ended_ms = sqlite3_column_int64(q, 16);
    r.usage.input = sqlite3_column_int64(q, 17);
    r.usage.output = sqlite3_column_int64(q, 18);
    r.usage.total = sqlite3_column_int64(q, 19);
    r.usage.cost = sqlite3_column_double(q, 20);
    r.usage.model = ColumnText(q, 21);
    if (sqlite3_column_type(q, 22) != SQLITE_NULL) {
      r.has_backoff = true;
      r.backoff.initial_ms = sqlite3_column_int64(q, 22);
      r.backoff.max_ms = sqlite3_column_int64(q, 23);
      r.backoff.jitter = sqlite3_column_double(q, 24);
    }
    if (sqlite3_column_type(q, 25) != SQLITE_NULL) {
      r.parent = static_cast<TaskId>(sqlite3_column_int64(q, 25));
    }
    visit(std::move(r));
  }
  if (st.ok() && rc != SQLITE_DONE) {
    st = Status("store_corrupt", std::string("cannot read ") + path_ + ": " + sqlite3_errmsg(db_));
  }
  sqlite3_finalize(q);
  return st;
}

// -------------------------------------------------------------- changes

void SqliteStore::Insert(const TaskRecord& task) {
  EncodeChange(pending_, ChangeOp::kInsert, task);
}

void SqliteStore::Update(const TaskRecord& task) {
  EncodeChange(pending_, ChangeOp::kUpdate, task);
}

void SqliteStore::Erase(TaskId id) {
  EncodeErase(pending_, id);
  pending_erases_.push_back(id);
}

// -------------------------------------------------------------- commit

struct SqliteStore::Batch final : StoreBatch {
  std::string changes;
  std::vector<TaskId> erases;
};

std::unique_ptr<StoreBatch> SqliteStore::TakeBatch() {
  std::unique_ptr<Batch> batch(static_cast<Batch*>(spare_batch_.release()));
  if (!batch) batch = std::make_unique<Batch>();
  batch->changes.clear();
  batch->erases.clear();
  batch->changes.swap(pending_);
  batch->erases.swap(pending_erases_);
  CountTake();
  return batch;
}

void SqliteStore::TakeInto(StoreBatch& into) {
  auto& b = static_cast<Batch&>(into);
  b.changes.append(pending_);
  pending_.clear();
  b.erases.insert(b.erases.end(), pending_erases_.begin(), pending_erases_.end());
  pending_erases_.clear();
  CountTake();
}

Status SqliteStore::Write(StoreBatch& batch) {
  auto& b = static_cast<Batch&>(batch);
  return Append(b.changes, b.erases);
}

void SqliteStore::Reuse(std::unique_ptr<StoreBatch> batch) { spare_batch_ = std::move(batch); }

void SqliteStore::GiveBack(std::unique_ptr<StoreBatch> batch) {
  if (!batch) return;
  // The batch is older than anything pending now: it goes first.
  auto& old = static_cast<Batch&>(*batch);
  old.changes.append(pending_);
  pending_.swap(old.changes);
  pending_erases_.insert(pending_erases_.end(), old.erases.begin(), old.erases.end());
}

Status SqliteStore::Commit() {
  if (pending_.empty()) return Status::Ok();
  Status st = Append(pending_, pending_erases_);
  if (st.ok()) {
    pending_.clear();
    pending_erases_.clear();
  }
  return st;
}

// -------------------------------------------------------------- ids

namespace {

std::string IdsPath(const std::string& dir) {
  return (std::filesystem::path(dir) / "ids").string();
}

}  // namespace

Status SqliteStore::ReadIds() {
  const std::string path = IdsPath(dir_);
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && !ec) {
    reserved_ = IdMarks{};  // a new data_dir, or one from before reservations
    return Status::Ok();
  }
  std::ifstream in(path);
  if (!in) return Status("store_unavailable", "cannot read " + path + ": " + std::strerror(errno));
  IdMarks marks;
  bool tasks = false, workers = false;
  std::string line;
  while (std::getline(in, line)) {
    const std::size_t space = line.find(' ');
    const std::string_view name = std::string_view(line).substr(0, space);
    uint64_t value = 0;
    const char* first =
        space == std::string::npos ? line.data() + line.size() : line.data() + space + 1;
    const char* last = line.data() + line.size();
    auto [end, ec] = std::from_chars(first, last, value);
    if (space == std::string::npos || ec != std::errc() || end != last) {
      return Status("store_corrupt", path + ": cannot read the line \"" + line + "\"");
    }
    if (name == "tasks") {
      marks.tasks = value;
      tasks = true;
    } else if (name == "workers") {
      marks.workers = value;
      workers = true;
    }  // other names: from a newer pincer, not ours to use
  }
  if (!tasks || !workers) {
    return Status("store_corrupt", path + ": the tasks or the workers line is missing");
  }
  reserved_ = marks;
  return Status::Ok();
}

Status SqliteStore::ReserveIds(const IdMarks& marks) {
  const std::string path = IdsPath(dir_);
  if (fail_writes_) {
    return Status("store_unavailable", "cannot write to " + dir_ + ": No space left on device");
  }
  const std::string text =
      "tasks " + std::to_string(marks.tasks) + "\nworkers " + std::to_string(marks.workers) + "\n";
  const std::string tmp = path + ".tmp";
  const bool sync = options_.fsync != FsyncPolicy::kOff;
  auto failed = [&](const std::string& what) {
    Status st("store_unavailable", "cannot " + what + " " + tmp + ": " + std::strerror(errno));
    ::unlink(tmp.c_str());
    return st;
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return failed("create");
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int e = n < 0 ? errno : ENOSPC;
      ::close(fd);
      errno = e;
      return failed("write");
    }
    done += static_cast<std::size_t>(n);
  }
  if (sync && ::fsync(fd) != 0) {
    const int e = errno;
    ::close(fd);
    errno = e;
    return failed("sync");
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return failed("rename");
  if (sync) {
    // The rename is durable once the directory is.
    const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || ::fsync(dfd) != 0) {
      const int e = errno;
      if (dfd >= 0) ::close(dfd);
      return Status("store_unavailable", "cannot sync " + dir_ + ": " + std::strerror(e));
    }
    ::close(dfd);
  }
  reserved_ = marks;
  return Status::Ok();
}

Status SqliteStore::Writable() const {
  // An open file descriptor keeps writing after a chmod, so a store made
  // read-only would look fine until the next start, which then fails.
  // Checking each commit makes "not writable" show up while running.
  for (const std::string* p : {&path_, &dir_}) {
    if (access(p->c_str(), W_OK) != 0) {
      return Status("store_unavailable", *p + " is not writable: " + std::strerror(errno));
    }
  }
  return Status::Ok();
}

Status SqliteStore::Append(const std::string& changes, const std::vector<TaskId>& erases) {
  if (fail_writes_) {
    return Status("store_unavailable", "cannot write to " + dir_ + ": No space left on device");
  }
  if (Status w = Writable(); !w.ok()) return w;
  // An empty batch (the store retry) checks the journal can still sync.
  if (!changes.empty()) {
    if (Status st = journal_->Append(changes); !st.ok()) return st;
  }
  Status synced;
  if (options_.fsync == FsyncPolicy::kAlways) {
    synced = journal_->Sync();
  } else if (options_.fsync == FsyncPolicy::kInterval) {
    const TimePoint now = clock_.Now();
    if (now - last_sync_ >= options_.fsync_interval) {
      synced = journal_->Sync();
      if (synced.ok()) last_sync_ = now;
    }
  }
  if (!synced.ok()) {
    // The record's retry (these changes and newer ones) takes its place.
    if (!changes.empty()) journal_->DropLast();
    return synced;
  }
  if (changes.empty()) return Status::Ok();
  bool wake;
  {
    std::lock_guard lock(mu_);
    const uint64_t segment = journal_->current();
    segments_[segment] += changes.size();
    unfolded_bytes_ += changes.size();
    writing_ = segment;
    if (!erases.empty()) erase_queue_.emplace_back(segment, erases);
    // Most writes leave nothing to fold: waking the fold thread for each
    // one cost a context switch per write.
    wake = FoldDue();
  }
  if (wake) cv_.notify_all();
  return Status::Ok();
}

// -------------------------------------------------------------- folding

Status SqliteStore::FoldSegment(uint64_t number, const EraseRuns& erased,
                                std::vector<TaskId>& erases) {
  auto erased_in = [&erased](TaskId id) { return erased.SegmentOf(id); };
  const std::size_t first_erase = erases.size();
  Changes changes;
  bool decoded = true;
  SegmentEnd end;
  Status st = ReadSegment(
      dir_, number,
      [&](std::string_view record) {
        ChangeOp op;
        TaskId id;
        TaskRecord rec;
        while (decoded && !record.empty()) {
          // A task erased in this segment or a newer one is skipped: what
          // this one says of it would be deleted again (and the newer ones
          // replay after it). Most are, under load: their fields are never
          // copied. Its erase is applied in the segment that holds it.
          std::string_view change = record;
          if (!SkipChange(record, op, id)) {
            decoded = false;
            break;
          }
          if (op == ChangeOp::kErase) {
            if (erased_in(id) <= number) erases.push_back(id);
            continue;
          }
          if (erased_in(id) >= number) continue;
          if (!DecodeChange(change, op, rec)) {
            decoded = false;
            break;
          }
          AddPendingChange(changes, op, std::move(rec), InsertThenErase::kDrop);
          rec = TaskRecord{};
        }
      },
      end, &fold_buffer_);
  if (!st.ok()) return st;
  if (!decoded) return Status("store_corrupt", SegmentPath(dir_, number) + " cannot be read back");
  // The erases first: a purged task's idempotency key is free before a
  // newer task takes it again. Purges come about in id order, in runs of
  // consecutive ids: one range DELETE per run.
  std::sort(erases.begin() + static_cast<std::ptrdiff_t>(first_erase), erases.end());
  for (std::size_t i = first_erase; i < erases.size();) {
    std::size_t j = i + 1;
    while (j < erases.size() && erases[j] == erases[j - 1] + 1) ++j;
    if (Status s = EraseRange(erases[i], erases[j - 1]); !s.ok()) return s;
    i = j;
  }
  return ApplyChanges(changes);
}

Status SqliteStore::Transaction(const std::function<Status()>& body) {
  if (sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Fail("cannot write to");
  }
  Status st = body();
  if (st.ok() && sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    st = Fail("cannot commit to");
  }
  // SQLite may already have rolled back (disk full does); if not, undo the
  // partial transaction so a retry starts from the last commit.
  if (!st.ok() && !sqlite3_get_autocommit(db_)) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  return st;
}

Status SqliteStore::SetFolded(uint64_t number) {
  sqlite3_bind_int64(set_folded_, 1, static_cast<sqlite3_int64>(number));
  const int rc = sqlite3_step(set_folded_);
  sqlite3_reset(set_folded_);
  if (rc != SQLITE_DONE) return Fail("cannot write to");
  return Status::Ok();
}

Status SqliteStore::FoldAll() {
  StopFolding();
  std::lock_guard db_lock(db_mu_);
  uint64_t folded = 0;
  if (Status st = ReadFolded(folded); !st.ok()) return st;
  std::vector<uint64_t> segments;
  for (uint64_t n : ListSegments(dir_)) {
    if (n <= folded) {
      ::unlink(SegmentPath(dir_, n).c_str());  // folded; its deletion was cut short
    } else {
      segments.push_back(n);
    }
  }
  // Which segment erases each task, so older ones skip it. Only the last
  // segment may end in a torn record (a commit that was never answered).
  EraseRuns erased;
  for (uint64_t n : segments) {
    bool decoded = true;
    SegmentEnd end;
    Status st = ReadSegment(
        dir_, n,
        [&](std::string_view record) {
          ChangeOp op;
          TaskId id;
          while (decoded && !record.empty()) {
            decoded = SkipChange(record, op, id);
            if (decoded && op == ChangeOp::kErase) erased.Add(id, n);
          }
        },
        end, &fold_buffer_);
    if (!st.ok()) return st;
    if (!decoded || (end == SegmentEnd::kTorn && n != segments.back())) {
      return Status("store_corrupt", SegmentPath(dir_, n) + " cannot be read back");
    }
  }
  if (!segments.empty()) {
    Status st = Transaction([&] {
      std::vector<TaskId> erases;
      for (uint64_t n : segments) {
        if (Status s = FoldSegment(n, erased, erases); !s.ok()) return s;
      }
      return SetFolded(segments.back());
    });
    if (!st.ok()) return st;
    for (uint64_t n : segments) ::unlink(SegmentPath(dir_, n).c_str());
  }
  journal_ = std::make_unique<SegmentWriter>(
      dir_, std::max(folded, segments.empty() ? 0 : segments.back()) + 1,
      SegmentBytes(options_.journal_bytes), *options_.files);
  {
    std::lock_guard lock(mu_);
    segments_.clear();
    unfolded_bytes_ = 0;
    writing_ = 0;
    erase_queue_.clear();
  }
  erased_.clear();
  std::vector<char>().swap(fold_buffer_);  // grown again at the first fold
  StartFolding();
  return Status::Ok();
}

void SqliteStore::StartFolding() {
  std::lock_guard lock(mu_);
  stop_ = false;
  folder_ = std::thread([this] { FoldLoop(); });
}

void SqliteStore::StopFolding() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (folder_.joinable()) folder_.join();
}

bool SqliteStore::FoldDue() const {
  return !segments_.empty() && segments_.begin()->first != writing_ &&
         unfolded_bytes_ > options_.journal_bytes;
}

void SqliteStore::FoldLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || FoldDue(); });
    if (stop_) return;
    const uint64_t number = segments_.begin()->first;
    folding_ = true;
    std::vector<std::pair<uint64_t, std::vector<TaskId>>> queued;
    queued.swap(erase_queue_);
    lock.unlock();
    for (const auto& [segment, ids] : queued) {
      for (TaskId id : ids) erased_.Add(id, segment);
    }
    std::vector<TaskId> erases;
    Status st;
    {
      std::lock_guard db_lock(db_mu_);
      st = Transaction([&] {
        if (Status s = FoldSegment(number, erased_, erases); !s.ok()) return s;
        return SetFolded(number);
      });
    }
    if (st.ok()) {
      // Kept for the writer's next segment (replacing an older spare).
      ::rename(SegmentPath(dir_, number).c_str(), SparePath(dir_).c_str());
      erased_.DropUpTo(number);
    }
    lock.lock();
    folding_ = false;
    if (st.ok()) {
      unfolded_bytes_ -= segments_[number];
      segments_.erase(number);
    } else {
      spdlog::warn("store: folding {} into {} failed, retrying in 1s: {}",
                   SegmentPath(dir_, number), path_, st.message());
      cv_.notify_all();
      cv_.wait_for(lock, std::chrono::seconds(1), [this] { return stop_; });
    }
    cv_.notify_all();
  }
}

Status SqliteStore::Apply(TaskId id, const Pending& p) {
  sqlite3_stmt* s = nullptr;
  const TaskRecord& r = p.rec;
  // Kept alive until the statement has run: bound without copying.
  std::string skills, errors;
  switch (p.op) {
    case ChangeOp::kInsert:
      s = insert_;
      skills.clear();
      AppendJsonStringArray(skills, r.skills);
      errors = ErrorsJson(r.errors);
      sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(id));
      BindText(s, 2, skills);
      BindText(s, 3, r.payload);
      sqlite3_bind_int64(s, 4, r.priority);
      sqlite3_bind_int64(s, 5, r.timeout_ms);
      sqlite3_bind_int(s, 6, r.max_attempts);
      BindText(s, 7, r.session);
      BindText(s, 8, r.key);
      sqlite3_bind_text(s, 9, TaskStateName(r.state).data(),
                        static_cast<int>(TaskStateName(r.state).size()), SQLITE_STATIC);
      sqlite3_bind_int(s, 10, r.attempts);
      BindText(s, 11, r.worker);
      BindText(s, 12, r.output);
      BindText(s, 13, r.error);
      BindText(s, 14, errors);
      sqlite3_bind_int64(s, 15, r.created_ms);
      sqlite3_bind_int64(s, 16, r.started_ms);
      sqlite3_bind_int64(s, 17, r.ended_ms);
      BindUsage(s, 18, r.usage);
      if (r.has_backoff) {
        sqlite3_bind_int64(s, 23, r.backoff.initial_ms);
        sqlite3_bind_int64(s, 24, r.backoff.max_ms);
        sqlite3_bind_double(s, 25, r.backoff.jitter);
      } else {
        for (int i = 23; i <= 25; ++i) sqlite3_bind_null(s, i);
      }
      if (r.parent != 0) {
        sqlite3_bind_int64(s, 26, static_cast<sqlite3_int64>(r.parent));
      } else {
        sqlite3_bind_null(s, 26);
      }
      break;
    case ChangeOp::kUpdate:
      s = r.usage.empty() ? update_ : update_usage_;
      if (s == update_usage_) BindUsage(s, 10, r.usage);
      errors = ErrorsJson(r.errors);
      sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(id));
      sqlite3_bind_text(s, 2, TaskStateName(r.state).data(),
                        static_cast<int>(TaskStateName(r.state).size()), SQLITE_STATIC);
      sqlite3_bind_int(s, 3, r.attempts);
      BindText(s, 4, r.worker);
      BindText(s, 5, r.output);
      BindText(s, 6, r.error);
      BindText(s, 7, errors);
      sqlite3_bind_int64(s, 8, r.started_ms);
      sqlite3_bind_int64(s, 9, r.ended_ms);
      break;
    case ChangeOp::kErase:
      s = erase_;
      sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(id));
      break;
  }
  const int rc = sqlite3_step(s);
  sqlite3_reset(s);  // every parameter is bound again next time
  if (rc != SQLITE_DONE) return Fail("cannot write task " + TaskIdString(id) + " to");
  return Status::Ok();
}

Status SqliteStore::EraseRange(TaskId first, TaskId last) {
  sqlite3_bind_int64(erase_range_, 1, static_cast<sqlite3_int64>(first));
  sqlite3_bind_int64(erase_range_, 2, static_cast<sqlite3_int64>(last));
  const int rc = sqlite3_step(erase_range_);
  sqlite3_reset(erase_range_);
  if (rc != SQLITE_DONE)
    return Fail("cannot delete tasks " + TaskIdString(first) + ".." + TaskIdString(last) + " from");
  return Status::Ok();
}

Status SqliteStore::ApplyChanges(const Changes& changes) {
  Status st;
  for (auto it = changes.begin(); it != changes.end() && st.ok();) {
    // Ended tasks are purged about in the order they came, so erases come
    // in runs of consecutive ids: one range DELETE per run.
    if (it->second.op == ChangeOp::kErase) {
      const TaskId first = it->first;
      TaskId last = first;
      auto next = std::next(it);
      while (next != changes.end() && next->second.op == ChangeOp::kErase &&
             next->first == last + 1) {
        last = next->first;
        ++next;
      }
      if (last > first) {
        st = EraseRange(first, last);
        it = next;
        continue;
      }
    }
    st = Apply(it->first, it->second);
    ++it;
  }
  return st;
}

void SqliteStore::WaitForFolds() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return !folding_ && !FoldDue(); });
}

int64_t SqliteStore::TaskRowsForTest() {
  std::lock_guard db_lock(db_mu_);
  sqlite3_stmt* q = nullptr;
  int64_t n = -1;
  if (sqlite3_prepare_v2(db_, "SELECT count(*) FROM tasks", -1, &q, nullptr) == SQLITE_OK &&
      sqlite3_step(q) == SQLITE_ROW) {
    n = sqlite3_column_int64(q, 0);
  }
  sqlite3_finalize(q);
  return n;
}

}  // namespace pincer
