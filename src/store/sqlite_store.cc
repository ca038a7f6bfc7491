#include "store/sqlite_store.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/json_text.h"

namespace pincer {
namespace {

// Bumped when the table changes; a newer file is refused, not guessed at.
constexpr int kSchemaVersion = 1;

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
  ended_ms     INTEGER NOT NULL
);
CREATE UNIQUE INDEX tasks_key ON tasks(key) WHERE key IS NOT NULL;
)sql";

constexpr const char* kColumns =
    "id, skills, payload, priority, timeout_ms, max_attempts, session, key, state, attempts, "
    "worker, output, error, errors, created_ms, started_ms, ended_ms";

// The fields that change after submit; an Update writes only these.
void CopyMutable(const TaskRecord& from, TaskRecord& to) {
  to.state = from.state;
  to.attempts = from.attempts;
  to.worker = from.worker;
  to.output = from.output;
  to.error = from.error;
  to.errors = from.errors;
  to.started_ms = from.started_ms;
  to.ended_ms = from.ended_ms;
}

std::string ErrorsJson(const std::vector<AttemptError>& errors) {
  std::string out = "[";
  for (std::size_t i = 0; i < errors.size(); ++i) {
    if (i) out.push_back(',');
    out.append(R"({"attempt":)");
    AppendInt(out, errors[i].attempt);
    out.append(R"(,"worker":)");
    AppendJsonString(out, errors[i].worker);
    out.append(R"(,"error":)");
    AppendJsonString(out, errors[i].error);
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

// Empty strings are stored as NULL: "" means "none" in a TaskRecord, and
// NULL keys stay out of the unique key index.
void BindText(sqlite3_stmt* s, int i, const std::string& v) {
  if (v.empty()) {
    sqlite3_bind_null(s, i);
  } else {
    sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
}

std::string_view ColumnText(sqlite3_stmt* s, int i) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, i));
  if (!p) return {};
  return std::string_view(p, static_cast<std::size_t>(sqlite3_column_bytes(s, i)));
}

// Parsing the JSON columns of a million rows dominates recovery, so the
// common empty arrays skip the parser.
bool ParseSkills(std::string_view text, std::vector<std::string>& out) {
  if (text == "[]") return true;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return false;
  for (const auto& s : j) {
    if (!s.is_string()) return false;
    out.push_back(s.get<std::string>());
  }
  return true;
}

bool ParseErrors(std::string_view text, std::vector<AttemptError>& out) {
  if (text == "[]") return true;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return false;
  for (const auto& e : j) {
    if (!e.is_object()) return false;
    AttemptError a;
    a.attempt = e.value("attempt", 0);
    a.worker = e.value("worker", "");
    a.error = e.value("error", "");
    out.push_back(std::move(a));
  }
  return true;
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
  const int rc = sqlite3_open_v2(path.c_str(), &db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
  if (rc != SQLITE_OK) {
    error = Status("store_unavailable", "cannot open " + path + ": " +
                                            (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close(db);
    return nullptr;
  }
  std::unique_ptr<SqliteStore> store(
      new SqliteStore(db, options.data_dir, std::move(path), options, clock));
  error = store->Init();
  if (!error.ok()) return nullptr;
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
  sqlite3_finalize(insert_);
  sqlite3_finalize(update_);
  sqlite3_finalize(erase_);
  sqlite3_finalize(erase_range_);
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
  const char* sync = options_.fsync == FsyncPolicy::kAlways     ? "PRAGMA synchronous=FULL"
                     : options_.fsync == FsyncPolicy::kInterval ? "PRAGMA synchronous=NORMAL"
                                                                : "PRAGMA synchronous=OFF";
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
  } else if (version == 0 && objects == 0) {
    const std::string create =
        std::string(kSchema) + "PRAGMA user_version=" + std::to_string(kSchemaVersion) + ";";
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

  const std::string insert = std::string("INSERT INTO tasks (") + kColumns +
                             ", seq) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?1)";
  if (Status s = Prepare(insert.c_str(), &insert_); !s.ok()) return s;
  if (Status s = Prepare("UPDATE tasks SET state=?2, attempts=?3, worker=?4, output=?5, error=?6, "
                         "errors=?7, started_ms=?8, ended_ms=?9 WHERE id=?1",
                         &update_);
      !s.ok()) {
    return s;
  }
  if (Status s = Prepare("DELETE FROM tasks WHERE id=?1", &erase_); !s.ok()) return s;
  return Prepare("DELETE FROM tasks WHERE id BETWEEN ?1 AND ?2", &erase_range_);
}

Status SqliteStore::Prepare(const char* sql, sqlite3_stmt** stmt) {
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, nullptr) != SQLITE_OK) {
    // A table that does not parse as ours: not a file to trust.
    return Status("store_corrupt", std::string("cannot read ") + path_ + ": " + sqlite3_errmsg(db_));
  }
  return Status::Ok();
}

// ------------------------------------------------------------- recovery

Status SqliteStore::Recover(const std::function<void(TaskRecord&&)>& visit) {
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
  Pending& p = pending_[task.id];
  p.op = Op::kInsert;
  p.rec = task;
}

void SqliteStore::Update(const TaskRecord& task) {
  auto [it, fresh] = pending_.try_emplace(task.id);
  Pending& p = it->second;
  if (fresh) {
    p.op = Op::kUpdate;
    p.rec.id = task.id;
  } else if (p.op == Op::kErase) {
    return;  // erased tasks are not updated; nothing to keep
  }
  CopyMutable(task, p.rec);  // a pending insert takes the new state along
}

void SqliteStore::Erase(TaskId id) {
  auto [it, fresh] = pending_.try_emplace(id);
  if (!fresh && it->second.op == Op::kInsert) {
    pending_.erase(it);  // never written: nothing to delete
    return;
  }
  it->second.op = Op::kErase;
  it->second.rec = TaskRecord{};
}

Status SqliteStore::Apply(TaskId id, const Pending& p) {
  sqlite3_stmt* s = nullptr;
  const TaskRecord& r = p.rec;
  // Kept alive until the statement has run: bound without copying.
  std::string skills, errors;
  switch (p.op) {
    case Op::kInsert:
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
      break;
    case Op::kUpdate:
      s = update_;
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
    case Op::kErase:
      s = erase_;
      sqlite3_bind_int64(s, 1, static_cast<sqlite3_int64>(id));
      break;
  }
  const int rc = sqlite3_step(s);
  sqlite3_reset(s);  // every parameter is bound again next time
  if (rc != SQLITE_DONE) return Fail("cannot write task " + TaskIdString(id) + " to");
  return Status::Ok();
}

// -------------------------------------------------------------- commit

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

struct SqliteStore::Batch final : StoreBatch {
  Changes changes;
};

std::unique_ptr<StoreBatch> SqliteStore::TakeBatch() {
  auto batch = std::make_unique<Batch>();
  batch->changes.swap(pending_);
  return batch;
}

Status SqliteStore::Write(StoreBatch& batch) { return WriteChanges(static_cast<Batch&>(batch).changes); }

void SqliteStore::GiveBack(std::unique_ptr<StoreBatch> batch) {
  if (!batch) return;
  // The batch is older than anything pending now: merge it underneath.
  for (auto& [id, old] : static_cast<Batch&>(*batch).changes) {
    auto [it, fresh] = pending_.try_emplace(id);
    Pending& now = it->second;
    if (fresh) {
      now = std::move(old);
      continue;
    }
    if (old.op != Op::kInsert) continue;  // the newer update or erase supersedes it
    if (now.op == Op::kErase) {
      pending_.erase(it);  // inserted and erased, never written: nothing to do
    } else if (now.op == Op::kUpdate) {
      CopyMutable(now.rec, old.rec);  // the insert, with the newest state
      now = std::move(old);
    }
  }
}

Status SqliteStore::Commit() {
  if (pending_.empty()) return Status::Ok();
  Status st = WriteChanges(pending_);
  if (st.ok()) pending_.clear();
  return st;
}

Status SqliteStore::EraseRange(TaskId first, TaskId last) {
  sqlite3_bind_int64(erase_range_, 1, static_cast<sqlite3_int64>(first));
  sqlite3_bind_int64(erase_range_, 2, static_cast<sqlite3_int64>(last));
  const int rc = sqlite3_step(erase_range_);
  sqlite3_reset(erase_range_);
  if (rc != SQLITE_DONE) return Fail("cannot delete tasks " + TaskIdString(first) + ".." + TaskIdString(last) + " from");
  return Status::Ok();
}

Status SqliteStore::WriteChanges(const Changes& changes) {
  if (Status w = Writable(); !w.ok()) return w;
  if (sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Fail("cannot write to");
  }
  Status st;
  for (auto it = changes.begin(); it != changes.end() && st.ok();) {
    // Ended tasks are purged about in the order they came, so erases come
    // in runs of consecutive ids: one range DELETE per run.
    if (it->second.op == Op::kErase) {
      const TaskId first = it->first;
      TaskId last = first;
      auto next = std::next(it);
      while (next != changes.end() && next->second.op == Op::kErase && next->first == last + 1) {
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
  if (st.ok() && sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
    st = Fail("cannot commit to");
  }
  if (!st.ok()) {
    // SQLite may already have rolled back (disk full does); if not, undo
    // the partial transaction so the retry starts from the last commit.
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    return st;
  }
  MaybeCheckpoint();
  return Status::Ok();
}

void SqliteStore::SetMaxPagesForTest(int pages) {
  const std::string sql = "PRAGMA max_page_count=" + std::to_string(pages);
  sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
}

void SqliteStore::MaybeCheckpoint() {
  if (options_.fsync != FsyncPolicy::kInterval) return;
  const TimePoint now = clock_.Now();
  if (now - last_sync_ < options_.fsync_interval) return;
  last_sync_ = now;
  // With synchronous=NORMAL a checkpoint syncs the WAL first: everything
  // committed so far is then on disk.
  sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
}

}  // namespace pincer
