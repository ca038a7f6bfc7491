#include "store/sqlite_store.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

#include <nlohmann/json.hpp>

#include "common/json_text.h"

namespace pincer {
namespace {

// Bumped when the tables change; a newer file is refused, not guessed at.
// Version 1 had no journal; opening one adds it.
constexpr int kSchemaVersion = 2;

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

// Changes committed and not yet folded into `tasks` (store/change_codec.h).
constexpr const char* kJournal = R"sql(
CREATE TABLE journal (
  seq     INTEGER PRIMARY KEY,  -- commit order
  changes BLOB NOT NULL
);
)sql";

constexpr const char* kColumns =
    "id, skills, payload, priority, timeout_ms, max_attempts, session, key, state, attempts, "
    "worker, output, error, errors, created_ms, started_ms, ended_ms";

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
  sqlite3_finalize(journal_add_);
  sqlite3_finalize(journal_get_);
  sqlite3_finalize(journal_drop_);
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
  } else if ((version == 0 && objects == 0) || version == 1) {
    const std::string create = std::string(version == 0 ? kSchema : "") + kJournal +
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
  if (Status s = Prepare("DELETE FROM tasks WHERE id BETWEEN ?1 AND ?2", &erase_range_); !s.ok()) {
    return s;
  }
  if (Status s = Prepare("INSERT INTO journal (seq, changes) VALUES (?1, ?2)", &journal_add_);
      !s.ok()) {
    return s;
  }
  if (Status s = Prepare("SELECT changes FROM journal WHERE seq=?1", &journal_get_); !s.ok()) {
    return s;
  }
  if (Status s = Prepare("DELETE FROM journal WHERE seq=?1", &journal_drop_); !s.ok()) return s;
  return LoadJournal();
}

Status SqliteStore::Prepare(const char* sql, sqlite3_stmt** stmt) {
  if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, stmt, nullptr) != SQLITE_OK) {
    // A table that does not parse as ours: not a file to trust.
    return Status("store_corrupt", std::string("cannot read ") + path_ + ": " + sqlite3_errmsg(db_));
  }
  return Status::Ok();
}

// ------------------------------------------------------------- recovery

Status SqliteStore::LoadJournal() {
  sqlite3_stmt* q = nullptr;
  if (Status s = Prepare("SELECT seq, changes FROM journal ORDER BY seq", &q); !s.ok()) return s;
  Status st;
  int rc;
  while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
    const int64_t seq = sqlite3_column_int64(q, 0);
    const auto* data = static_cast<const char*>(sqlite3_column_blob(q, 1));
    std::string_view in(data ? data : "", static_cast<std::size_t>(sqlite3_column_bytes(q, 1)));
    rows_.push_back({seq, in.size()});
    journal_bytes_ += in.size();
    next_seq_ = seq + 1;
    ChangeOp op;
    TaskRecord rec;
    while (!in.empty()) {
      if (!DecodeChange(in, op, rec)) {
        st = Status("store_corrupt",
                    path_ + ": journal row " + std::to_string(seq) + " cannot be read back");
        break;
      }
      if (op == ChangeOp::kErase) erased_[rec.id] = seq;
    }
    if (!st.ok()) break;
  }
  if (st.ok() && rc != SQLITE_DONE) {
    st = Status("store_corrupt", std::string("cannot read ") + path_ + ": " + sqlite3_errmsg(db_));
  }
  sqlite3_finalize(q);
  return st;
}

Status SqliteStore::Recover(const std::function<void(TaskRecord&&)>& visit) {
  // Fold the whole journal first: then `tasks` holds everything.
  if (!rows_.empty()) {
    if (sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return Fail("cannot write to");
    }
    Status st;
    for (const JournalRow& row : rows_) {
      st = FoldRow(row.seq, erased_, {}, nullptr);
      if (!st.ok()) break;
    }
    if (st.ok() && sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) != SQLITE_OK) {
      st = Fail("cannot commit to");
    }
    if (!st.ok()) {
      if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      return st;
    }
    rows_.clear();
    erased_.clear();
    journal_bytes_ = 0;
  }

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
  EncodeChange(pending_, ChangeOp::kInsert, task);
  pending_ids_.push_back(task.id);
  ids_sorted_ = false;
}

void SqliteStore::Update(const TaskRecord& task) {
  EncodeChange(pending_, ChangeOp::kUpdate, task);
  pending_ids_.push_back(task.id);
  ids_sorted_ = false;
}

void SqliteStore::Erase(TaskId id) {
  TaskRecord erased;
  erased.id = id;
  EncodeChange(pending_, ChangeOp::kErase, erased);
  pending_ids_.push_back(id);
  ids_sorted_ = false;
}

bool SqliteStore::HasPending(TaskId id) const {
  // Asked for a batch's tasks after its write: sort once, then search.
  if (!ids_sorted_) {
    std::sort(pending_ids_.begin(), pending_ids_.end());
    ids_sorted_ = true;
  }
  return std::binary_search(pending_ids_.begin(), pending_ids_.end(), id);
}

void SqliteStore::AddChange(Changes& changes, ChangeOp op, TaskRecord&& rec) {
  auto [it, fresh] = changes.try_emplace(rec.id);
  Pending& p = it->second;
  switch (op) {
    case ChangeOp::kInsert:
      p.op = ChangeOp::kInsert;
      p.rec = std::move(rec);
      break;
    case ChangeOp::kUpdate:
      if (fresh) {
        p.op = ChangeOp::kUpdate;
        p.rec = std::move(rec);
      } else if (p.op != ChangeOp::kErase) {
        CopyMutableFields(rec, p.rec);  // a pending insert takes the new state along
      }
      break;
    case ChangeOp::kErase:
      if (!fresh && p.op == ChangeOp::kInsert) {
        changes.erase(it);  // inserted and erased in one row: nothing to do
      } else {
        p.op = ChangeOp::kErase;
        p.rec = TaskRecord{};
      }
      break;
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
      break;
    case ChangeOp::kUpdate:
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
  std::string changes;
  std::vector<TaskId> ids;
};

std::unique_ptr<StoreBatch> SqliteStore::TakeBatch() {
  auto batch = std::make_unique<Batch>();
  batch->changes.swap(pending_);
  batch->ids.swap(pending_ids_);
  ids_sorted_ = true;
  return batch;
}

Status SqliteStore::Write(StoreBatch& batch) { return WriteJournal(static_cast<Batch&>(batch).changes); }

void SqliteStore::GiveBack(std::unique_ptr<StoreBatch> batch) {
  if (!batch) return;
  // The batch is older than anything pending now: it goes first.
  auto& old = static_cast<Batch&>(*batch);
  old.changes.append(pending_);
  pending_.swap(old.changes);
  pending_ids_.insert(pending_ids_.end(), old.ids.begin(), old.ids.end());
  ids_sorted_ = false;
}

Status SqliteStore::Commit() {
  if (pending_.empty()) return Status::Ok();
  Status st = WriteJournal(pending_);
  if (st.ok()) {
    pending_.clear();
    pending_ids_.clear();
    ids_sorted_ = true;
  }
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

Status SqliteStore::ReadRow(int64_t seq, std::string& changes) {
  sqlite3_bind_int64(journal_get_, 1, seq);
  const int rc = sqlite3_step(journal_get_);
  if (rc == SQLITE_ROW) {
    const auto* data = static_cast<const char*>(sqlite3_column_blob(journal_get_, 0));
    changes.assign(data ? data : "", static_cast<std::size_t>(sqlite3_column_bytes(journal_get_, 0)));
  }
  sqlite3_reset(journal_get_);
  if (rc != SQLITE_ROW) return Fail("cannot read journal row " + std::to_string(seq) + " of");
  return Status::Ok();
}

Status SqliteStore::FoldRow(int64_t seq, const EraseIndex& erased, const EraseIndex& erased_now,
                            std::vector<TaskId>* erases) {
  std::string row;
  if (Status st = ReadRow(seq, row); !st.ok()) return st;
  // A task a newer row erases is skipped: what this row says of it would
  // be deleted again, and the newer rows replay after this one anyway.
  auto erased_later = [&](TaskId id) {
    auto it = erased.find(id);
    return (it != erased.end() && it->second > seq) || erased_now.count(id) != 0;
  };
  Changes changes;
  std::string_view in = row;
  ChangeOp op;
  TaskRecord rec;
  while (!in.empty()) {
    if (!DecodeChange(in, op, rec)) {
      return Status("store_corrupt",
                    path_ + ": journal row " + std::to_string(seq) + " cannot be read back");
    }
    if (erased_later(rec.id)) continue;
    if (op == ChangeOp::kErase && erases) erases->push_back(rec.id);
    AddChange(changes, op, std::move(rec));
    rec = TaskRecord{};
  }
  if (Status st = ApplyChanges(changes); !st.ok()) return st;
  sqlite3_bind_int64(journal_drop_, 1, seq);
  const int rc = sqlite3_step(journal_drop_);
  sqlite3_reset(journal_drop_);
  if (rc != SQLITE_DONE) return Fail("cannot delete journal row " + std::to_string(seq) + " from");
  return Status::Ok();
}

Status SqliteStore::WriteJournal(const std::string& changes) {
  if (Status w = Writable(); !w.ok()) return w;
  if (sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Fail("cannot write to");
  }
  // The erases of this row: its older rows' changes to those tasks need
  // not reach `tasks`.
  EraseIndex erased_now;
  std::string_view in = changes;
  ChangeOp op;
  TaskRecord rec;
  while (!in.empty() && DecodeChange(in, op, rec)) {
    if (op == ChangeOp::kErase) erased_now[rec.id] = next_seq_;
  }
  Status st;
  if (!changes.empty()) {
    sqlite3_bind_int64(journal_add_, 1, next_seq_);
    sqlite3_bind_blob(journal_add_, 2, changes.data(), static_cast<int>(changes.size()),
                      SQLITE_STATIC);
    const int rc = sqlite3_step(journal_add_);
    sqlite3_reset(journal_add_);
    if (rc != SQLITE_DONE) st = Fail("cannot write to");
  }
  // Fold the oldest rows while the journal is over its budget.
  std::size_t folded = 0, bytes = journal_bytes_ + changes.size();
  std::vector<TaskId> folded_erases;
  while (st.ok() && folded < rows_.size() && bytes > options_.journal_bytes) {
    st = FoldRow(rows_[folded].seq, erased_, erased_now, &folded_erases);
    bytes -= rows_[folded].bytes;
    ++folded;
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
  // Committed: the writer's view of the journal follows.
  rows_.erase(rows_.begin(), rows_.begin() + static_cast<std::ptrdiff_t>(folded));
  for (TaskId id : folded_erases) erased_.erase(id);
  erased_.insert(erased_now.begin(), erased_now.end());
  if (!changes.empty()) {
    rows_.push_back({next_seq_, changes.size()});
    ++next_seq_;
  }
  journal_bytes_ = bytes;
  MaybeCheckpoint();
  return Status::Ok();
}

int64_t SqliteStore::RowsForTest(const std::string& table) {
  sqlite3_stmt* q = nullptr;
  int64_t n = -1;
  const std::string sql = "SELECT count(*) FROM " + table;
  if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &q, nullptr) == SQLITE_OK &&
      sqlite3_step(q) == SQLITE_ROW) {
    n = sqlite3_column_int64(q, 0);
  }
  sqlite3_finalize(q);
  return n;
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
