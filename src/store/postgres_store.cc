#include "store/postgres_store.h"

#include <libpq-fe.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <map>
#include <tuple>
#include <utility>
#include <vector>

#include "common/json_text.h"
#include "store/change_codec.h"
#include "store/task_json.h"

namespace pincer {
namespace {

// Bumped when the tables change. kMigrations[v] takes a database of
// version v to v + 1 (version 0: no tables yet); a database of a newer
// version is refused, never guessed at.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE pincer_tasks (
  id           bigint PRIMARY KEY,  -- submit order (ids are handed out in order)
  skills       text NOT NULL,       -- JSON array of strings, sorted
  payload      text,                -- raw JSON, NULL = null
  priority     bigint NOT NULL,
  timeout_ms   bigint NOT NULL,
  max_attempts integer NOT NULL,
  session      bytea,               -- free text from clients and workers: bytes, as sent
  key          bytea,
  state        text NOT NULL,       -- queued, running, succeeded, ...
  attempts     integer NOT NULL,
  worker       text,
  output       text,                -- raw JSON
  error        bytea,
  errors       text NOT NULL,       -- JSON array of {attempt, worker, error}
  created_ms   bigint NOT NULL,
  started_ms   bigint NOT NULL,
  ended_ms     bigint NOT NULL,
  usage_input  bigint NOT NULL DEFAULT 0,  -- tokens, summed over the attempts
  usage_output bigint NOT NULL DEFAULT 0,
  usage_total  bigint NOT NULL DEFAULT 0,
  usage_cost   double precision NOT NULL DEFAULT 0,
  usage_model  bytea,
  backoff_initial_ms bigint,               -- the task's own retry backoff; NULL = the config's
  backoff_max_ms     bigint,
  backoff_jitter     double precision
);
CREATE UNIQUE INDEX pincer_tasks_key ON pincer_tasks (key) WHERE key IS NOT NULL;
CREATE TABLE pincer_ids (
  name  text PRIMARY KEY,  -- tasks, workers
  value bigint NOT NULL
);
)sql",
    // 2: subtasks (docs/protocol.md): the task whose worker submitted this one.
    "ALTER TABLE pincer_tasks ADD COLUMN parent bigint;  -- NULL = none",
    // 3: the leader's lease (docs/high-availability.md), one row. Times are
    // the database's own (now()), never a host's. pincer_fence extends the
    // lease of its holder and epoch, and aborts the transaction it runs in
    // (SQLSTATE PCR01) when that is no longer the lease: every write of a
    // leader begins with it.
    R"sql(
CREATE TABLE pincer_lease (
  id         integer PRIMARY KEY CHECK (id = 1),
  holder     text,                  -- the leading pincerd; NULL = none yet
  address    text,                  -- where it serves (its `advertise`)
  epoch      bigint NOT NULL,       -- bumped at every takeover
  expires_at timestamptz NOT NULL
);
INSERT INTO pincer_lease (id, holder, address, epoch, expires_at) VALUES (1, NULL, NULL, 0, '-infinity');
CREATE FUNCTION pincer_fence(want_holder text, want_epoch bigint, lease_ms bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  UPDATE pincer_lease SET expires_at = now() + lease_ms * interval '1 millisecond'
    WHERE id = 1 AND holder = want_holder AND epoch = want_epoch AND expires_at > now();
  IF NOT FOUND THEN
    RAISE EXCEPTION 'the lease of epoch % is lost', want_epoch USING ERRCODE = 'PCR01';
  END IF;
  RETURN true;
END $$;
)sql",
};
constexpr int kSchemaVersion = static_cast<int>(std::size(kMigrations));

// Serializes the migrations of pincerds that start at once (a transaction
// advisory lock; any constant of pincer's own).
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(7306638138311111220)";

constexpr const char* kColumns =
    "id, skills, payload, priority, timeout_ms, max_attempts, session, key, state, attempts, "
    "worker, output, error, errors, created_ms, started_ms, ended_ms, usage_input, usage_output, "
    "usage_total, usage_cost, usage_model, backoff_initial_ms, backoff_max_ms, backoff_jitter, "
    "parent";

// One statement per kind of change, over arrays holding one element per
// task (text format, see ArrayText).
constexpr const char* kInsert = R"sql(
INSERT INTO pincer_tasks (id, skills, payload, priority, timeout_ms, max_attempts, session, key,
  state, attempts, worker, output, error, errors, created_ms, started_ms, ended_ms, usage_input,
  usage_output, usage_total, usage_cost, usage_model, backoff_initial_ms, backoff_max_ms,
  backoff_jitter, parent)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
  $6::integer[], $7::bytea[], $8::bytea[], $9::text[], $10::integer[], $11::text[], $12::text[],
  $13::bytea[], $14::text[], $15::bigint[], $16::bigint[], $17::bigint[], $18::bigint[],
  $19::bigint[], $20::bigint[], $21::float8[], $22::bytea[], $23::bigint[], $24::bigint[],
  $25::float8[], $26::bigint[])
ON CONFLICT (id) DO UPDATE SET skills = excluded.skills, payload = excluded.payload,
  priority = excluded.priority, timeout_ms = excluded.timeout_ms,
  max_attempts = excluded.max_attempts, session = excluded.session, key = excluded.key,
  state = excluded.state, attempts = excluded.attempts, worker = excluded.worker,
  output = excluded.output, error = excluded.error, errors = excluded.errors,
  created_ms = excluded.created_ms, started_ms = excluded.started_ms,
  ended_ms = excluded.ended_ms, usage_input = excluded.usage_input,
  usage_output = excluded.usage_output, usage_total = excluded.usage_total,
  usage_cost = excluded.usage_cost, usage_model = excluded.usage_model,
  backoff_initial_ms = excluded.backoff_initial_ms, backoff_max_ms = excluded.backoff_max_ms,
  backoff_jitter = excluded.backoff_jitter, parent = excluded.parent
)sql";
constexpr int kInsertParams = 26;

constexpr const char* kUpdate = R"sql(
UPDATE pincer_tasks AS t SET state = u.state, attempts = u.attempts, worker = u.worker,
  output = u.output, error = u.error, errors = u.errors, started_ms = u.started_ms,
  ended_ms = u.ended_ms, usage_input = u.usage_input, usage_output = u.usage_output,
  usage_total = u.usage_total, usage_cost = u.usage_cost, usage_model = u.usage_model
FROM unnest($1::bigint[], $2::text[], $3::integer[], $4::text[], $5::text[], $6::bytea[],
  $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[],
  $13::float8[], $14::bytea[])
  AS u(id, state, attempts, worker, output, error, errors, started_ms, ended_ms, usage_input,
       usage_output, usage_total, usage_cost, usage_model)
WHERE t.id = u.id
)sql";
constexpr int kUpdateParams = 14;

constexpr const char* kErase = "DELETE FROM pincer_tasks WHERE id = ANY($1::bigint[])";

constexpr const char* kSetIds = R"sql(
INSERT INTO pincer_ids (name, value) VALUES ('tasks', $1::bigint), ('workers', $2::bigint)
ON CONFLICT (name) DO UPDATE SET value = excluded.value
)sql";

// The same, fenced: pincer_fence runs for each row, in the statement's
// transaction.
constexpr const char* kSetIdsFenced = R"sql(
INSERT INTO pincer_ids (name, value)
SELECT n, v FROM (VALUES ('tasks', $1::bigint), ('workers', $2::bigint)) AS x(n, v)
WHERE pincer_fence($3, $4, $5)
ON CONFLICT (name) DO UPDATE SET value = excluded.value
)sql";

constexpr const char* kFence = "SELECT pincer_fence($1, $2, $3)";

// pincer_fence's error: this pincerd's lease is gone.
bool LeaseLost(const PGresult* r) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  return state && std::string_view(state) == "PCR01";
}

// One column of a batch as a PostgreSQL array literal, element by element.
// Every text element is quoted (so "", "NULL" and spaces need no care);
// bytes go as bytea's hex form, which holds any byte, NUL included.
class ArrayText {
 public:
  void Int(int64_t v) {
    Next();
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    s_.append(buf, end);
  }
  void Real(double v) {
    Next();
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);  // shortest exact form
    s_.append(buf, end);
  }
  void Null() {
    Next();
    s_.append("NULL");
  }
  // "" is NULL: "" means "none" in a TaskRecord, and NULL keys stay out of
  // the unique key index.
  void Text(std::string_view v) {
    if (v.empty()) return Null();
    Next();
    s_.push_back('"');
    for (char c : v) {
      if (c == '"' || c == '\\') s_.push_back('\\');
      s_.push_back(c);
    }
    s_.push_back('"');
  }
  void Bytes(std::string_view v) {
    if (v.empty()) return Null();
    static constexpr char kHex[] = "0123456789abcdef";
    Next();
    s_.append("\"\\\\x");
    for (unsigned char c : v) {
      s_.push_back(kHex[c >> 4]);
      s_.push_back(kHex[c & 15]);
    }
    s_.push_back('"');
  }
  const char* Finish() {
    s_.push_back('}');
    return s_.c_str();
  }

 private:
  void Next() {
    if (s_.size() > 1) s_.push_back(',');
  }
  std::string s_ = "{";
};

// Reading a row back (text format). False for a value that is not what
// the writer wrote.
bool ReadInt(const char* text, int64_t& out) {
  const char* end = text + std::char_traits<char>::length(text);
  auto [p, ec] = std::from_chars(text, end, out);
  return ec == std::errc() && p == end;
}

bool ReadInt(const char* text, int& out) {
  int64_t wide = 0;
  if (!ReadInt(text, wide) || wide < INT32_MIN || wide > INT32_MAX) return false;
  out = static_cast<int>(wide);
  return true;
}

bool ReadReal(const char* text, double& out) {
  const char* end = text + std::char_traits<char>::length(text);
  auto [p, ec] = std::from_chars(text, end, out);
  return ec == std::errc() && p == end;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// bytea in its hex output form, "\x6869".
bool ReadBytes(const char* text, int length, std::string& out) {
  out.clear();
  if (length < 2 || text[0] != '\\' || text[1] != 'x' || length % 2 != 0) return false;
  out.reserve(static_cast<std::size_t>(length - 2) / 2);
  for (int i = 2; i < length; i += 2) {
    const int hi = HexDigit(text[i]), lo = HexDigit(text[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

// A change of a batch, coalesced per task.
std::string Trimmed(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  // libpq's messages for a refused connection span lines (one per address
  // tried); one line reads better in a log.
  for (char& c : s) {
    if (c == '\n') c = ' ';
  }
  return s.empty() ? "unknown error" : s;
}

// A statement's parameters: the array texts and the pointers libpq takes.
struct Params {
  std::vector<ArrayText> arrays;
  explicit Params(int n) : arrays(static_cast<std::size_t>(n)) {}
  std::vector<const char*> Finish() {
    std::vector<const char*> values;
    values.reserve(arrays.size());
    for (ArrayText& a : arrays) values.push_back(a.Finish());
    return values;
  }
};

}  // namespace

// ------------------------------------------------------------- the url

std::string MaskPostgresUrl(std::string_view url) {
  std::string out(url);
  // The user info of a URI: scheme://user:password@host...
  if (const std::size_t scheme = out.find("://"); scheme != std::string::npos) {
    const std::size_t start = scheme + 3;
    const std::size_t end = std::min(out.find_first_of("/?", start), out.size());
    const std::size_t at = out.rfind('@', end == 0 ? 0 : end - 1);
    if (at != std::string::npos && at >= start) {
      const std::size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "****");
    }
  }
  // A password parameter: ?password=...&, or password=... in key=value form.
  for (std::size_t at = out.find("password="); at != std::string::npos;
       at = out.find("password=", at + 1)) {
    if (at > 0 && out[at - 1] != '?' && out[at - 1] != '&' && out[at - 1] != ' ') continue;
    const std::size_t value = at + 9;
    const std::size_t end = std::min(out.find_first_of("& ", value), out.size());
    out.replace(value, end - value, "****");
  }
  return out;
}

// ------------------------------------------------------------- opening

PostgresStore::PostgresStore(const PostgresStoreOptions& options)
    : options_(options), shown_url_(MaskPostgresUrl(options.url)) {}

PostgresStore::~PostgresStore() {
  std::lock_guard lock(mu_);
  Disconnect();
}

std::unique_ptr<PostgresStore> PostgresStore::Open(const PostgresStoreOptions& options,
                                                   Status& error) {
  std::unique_ptr<PostgresStore> store(new PostgresStore(options));
  std::lock_guard lock(store->mu_);
  error = store->Connect();
  if (!error.ok()) return nullptr;
  spdlog::info("store: postgres at {}", store->shown_url_);
  return store;
}

Status PostgresStore::Fail(const std::string& what, const char* reason) const {
  return Status("store_unavailable", what + " " + shown_url_ + ": " +
                                         Trimmed(reason  ? reason
                                                 : conn_ ? PQerrorMessage(conn_)
                                                         : "not connected"));
}

Status PostgresStore::LostLease(const char* reason) const {
  return Status("lease_lost",
                "this pincerd no longer holds the lease in " + shown_url_ + ": " + Trimmed(reason));
}

void PostgresStore::SetFence(const std::string& holder, int64_t epoch) {
  std::lock_guard lock(mu_);
  fence_holder_ = holder;
  fence_epoch_ = epoch;
}

void PostgresStore::Disconnect() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
}

Status PostgresStore::Connect() {
  if (conn_ && PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
  Disconnect();
  // Defaults first: the url's own parameters override them. Without a
  // connect timeout an unreachable host holds a write for minutes; the
  // keepalives find a server that went away while idle, the TCP user
  // timeout one that went away with a write unanswered.
  const char* keys[] = {
      "connect_timeout",  "application_name", "keepalives_idle", "keepalives_interval",
      "keepalives_count", "tcp_user_timeout", "dbname",          nullptr};
  const char* values[] = {"10", "pincerd", "10", "5", "3", "30000", options_.url.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    Status st = Fail("cannot connect to");
    Disconnect();
    return st;
  }
  // Text goes in and out as UTF-8 (what the protocol carries), whatever the
  // server's own encoding; a database in another encoding could not hold
  // every task, so it is refused.
  const char* encoding = PQparameterStatus(conn_, "server_encoding");
  const std::string server_encoding = encoding ? encoding : "";
  if (server_encoding != "UTF8" && server_encoding != "SQL_ASCII") {
    Disconnect();
    return Status("store_unavailable", "cannot use " + shown_url_ +
                                           ": the database's encoding is " + server_encoding +
                                           ", not UTF8 (CREATE DATABASE ... ENCODING 'UTF8')");
  }
  // The server's notices (a table that already exists, ...) are not news;
  // its warnings go to the log.
  PQsetNoticeProcessor(
      conn_, [](void*, const char* message) { spdlog::warn("postgres: {}", Trimmed(message)); },
      nullptr);
  PGresult* r = PQexec(conn_,
                       "SET client_encoding = 'UTF8'; SET bytea_output = 'hex'; "
                       "SET client_min_messages = 'warning'");
  const bool set = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  if (!set) {
    Status st = Fail("cannot use");
    Disconnect();
    return st;
  }
  Status st = Migrate();
  if (st.ok() && options_.lease.count() > 0) {
    // A leader stopped in the middle of a transaction (SIGSTOP, a lost
    // network) holds the lease row: the server ends that transaction once
    // it has waited a lease, so a standby can take over.
    const std::string set =
        "SET idle_in_transaction_session_timeout = " + std::to_string(options_.lease.count());
    PGresult* t = PQexec(conn_, set.c_str());
    if (PQresultStatus(t) != PGRES_COMMAND_OK) st = Fail("cannot use", PQresultErrorMessage(t));
    PQclear(t);
  }
  if (st.ok()) {
    for (auto [name, sql, n] :
         {std::tuple{"pincer_insert", kInsert, kInsertParams},
          std::tuple{"pincer_update", kUpdate, kUpdateParams},
          std::tuple{"pincer_erase", kErase, 1}, std::tuple{"pincer_set_ids", kSetIds, 2},
          std::tuple{"pincer_set_ids_fenced", kSetIdsFenced, 5},
          std::tuple{"pincer_fence", kFence, 3}}) {
      PGresult* p = PQprepare(conn_, name, sql, n, nullptr);
      const bool ok = PQresultStatus(p) == PGRES_COMMAND_OK;
      if (!ok)
        st = Status("store_corrupt", "cannot use the tables in " + shown_url_ + ": " +
                                         Trimmed(PQresultErrorMessage(p)));
      PQclear(p);
      if (!ok) break;
    }
  }
  if (!st.ok()) Disconnect();
  return st;
}

Status PostgresStore::Migrate() {
  auto exec = [this](const char* sql) {
    PGresult* r = PQexec(conn_, sql);
    const ExecStatusType s = PQresultStatus(r);
    const bool ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    const std::string reason = ok ? "" : Trimmed(PQresultErrorMessage(r));
    PQclear(r);
    return ok ? Status::Ok() : Fail("cannot create the tables in", reason.c_str());
  };
  if (Status st = exec("BEGIN"); !st.ok()) return st;
  auto rollback = [&](Status st) {
    PGresult* r = PQexec(conn_, "ROLLBACK");
    PQclear(r);
    return st;
  };
  if (Status st = exec(kMigrationLock); !st.ok()) return rollback(st);
  if (Status st = exec("CREATE TABLE IF NOT EXISTS pincer_schema (version integer NOT NULL)");
      !st.ok()) {
    return rollback(st);
  }
  PGresult* r = PQexec(conn_, "SELECT version FROM pincer_schema");
  int version = -1;
  if (PQresultStatus(r) == PGRES_TUPLES_OK) {
    if (PQntuples(r) == 0) {
      version = 0;
    } else if (PQntuples(r) > 1 || !ReadInt(PQgetvalue(r, 0, 0), version)) {
      version = -2;
    }
  }
  const std::string reason = Trimmed(PQresultErrorMessage(r));
  PQclear(r);
  if (version == -1) return rollback(Fail("cannot read", reason.c_str()));
  if (version < 0 || version > kSchemaVersion) {
    return rollback(Status("store_corrupt", shown_url_ +
                                                ": pincer_schema does not hold a version this "
                                                "pincerd knows (it knows up to " +
                                                std::to_string(kSchemaVersion) + ")"));
  }
  for (int v = version; v < kSchemaVersion; ++v) {
    if (Status st = exec(kMigrations[v]); !st.ok()) return rollback(st);
  }
  if (version < kSchemaVersion) {
    const std::string set =
        version == 0
            ? "INSERT INTO pincer_schema (version) VALUES (" + std::to_string(kSchemaVersion) + ")"
            : "UPDATE pincer_schema SET version = " + std::to_string(kSchemaVersion);
    if (Status st = exec(set.c_str()); !st.ok()) return rollback(st);
  }
  return exec("COMMIT");
}

// ------------------------------------------------------------ recovery

Status PostgresStore::Recover(const std::function<void(TaskRecord&&)>& visit) {
  std::lock_guard lock(mu_);
  if (Status st = Connect(); !st.ok()) return st;
  {
    PGresult* r = PQexec(conn_, "SELECT name, value FROM pincer_ids");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
      Status st = Fail("cannot read", PQresultErrorMessage(r));
      PQclear(r);
      return st;
    }
    IdMarks marks;
    bool read = true;
    for (int i = 0; i < PQntuples(r) && read; ++i) {
      const std::string_view name = PQgetvalue(r, i, 0);
      int64_t value = 0;
      read = ReadInt(PQgetvalue(r, i, 1), value) && value >= 0;
      if (name == "tasks") marks.tasks = static_cast<uint64_t>(value);
      if (name == "workers") marks.workers = static_cast<uint64_t>(value);
    }
    PQclear(r);
    if (!read) return Status("store_corrupt", shown_url_ + ": pincer_ids cannot be read back");
    reserved_ = marks;
  }

  const std::string sql = std::string("SELECT ") + kColumns + " FROM pincer_tasks ORDER BY id";
  if (!PQsendQuery(conn_, sql.c_str()) || !PQsetSingleRowMode(conn_)) {
    Status st = Fail("cannot read");
    Disconnect();
    return st;
  }
  Status st;
  while (PGresult* r = PQgetResult(conn_)) {
    const ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_SINGLE_TUPLE && st.ok()) {
      TaskRecord t;
      int64_t id = 0;
      const auto text = [&](int c) -> std::string_view {
        return PQgetisnull(r, 0, c) ? std::string_view() : PQgetvalue(r, 0, c);
      };
      const auto bytes = [&](int c, std::string& out) {
        return PQgetisnull(r, 0, c) || ReadBytes(PQgetvalue(r, 0, c), PQgetlength(r, 0, c), out);
      };
      bool ok = ReadInt(PQgetvalue(r, 0, 0), id) && id > 0 && ParseSkills(text(1), t.skills) &&
                ReadInt(PQgetvalue(r, 0, 3), t.priority) &&
                ReadInt(PQgetvalue(r, 0, 4), t.timeout_ms) &&
                ReadInt(PQgetvalue(r, 0, 5), t.max_attempts) && bytes(6, t.session) &&
                bytes(7, t.key) && ParseTaskState(text(8), t.state) &&
                ReadInt(PQgetvalue(r, 0, 9), t.attempts) && bytes(12, t.error) &&
                ParseErrors(text(13), t.errors) && ReadInt(PQgetvalue(r, 0, 14), t.created_ms) &&
                ReadInt(PQgetvalue(r, 0, 15), t.started_ms) &&
                ReadInt(PQgetvalue(r, 0, 16), t.ended_ms) &&
                ReadInt(PQgetvalue(r, 0, 17), t.usage.input) &&
                ReadInt(PQgetvalue(r, 0, 18), t.usage.output) &&
                ReadInt(PQgetvalue(r, 0, 19), t.usage.total) &&
                ReadReal(PQgetvalue(r, 0, 20), t.usage.cost) && bytes(21, t.usage.model);
      t.id = static_cast<TaskId>(id);
      t.payload = text(2);
      t.worker = text(10);
      t.output = text(11);
      if (ok && !PQgetisnull(r, 0, 22)) {
        t.has_backoff = true;
        ok = ReadInt(PQgetvalue(r, 0, 22), t.backoff.initial_ms) &&
             ReadInt(PQgetvalue(r, 0, 23), t.backoff.max_ms) &&
             ReadReal(PQgetvalue(r, 0, 24), t.backoff.jitter);
      }
      if (int64_t parent = 0; ok && !PQgetisnull(r, 0, 25)) {
        ok = ReadInt(PQgetvalue(r, 0, 25), parent) && parent > 0;
        t.parent = static_cast<TaskId>(parent);
      }
      if (ok) {
        visit(std::move(t));
      } else {
        st = Status("store_corrupt", shown_url_ + ": task row " + std::string(PQgetvalue(r, 0, 0)) +
                                         " cannot be read back");
      }
    } else if (s != PGRES_SINGLE_TUPLE && s != PGRES_TUPLES_OK && st.ok()) {
      st = Fail("cannot read", PQresultErrorMessage(r));
    }
    PQclear(r);
  }
  if (!st.ok() && st.code() == "store_unavailable") Disconnect();
  return st;
}

// ------------------------------------------------------------- changes

void PostgresStore::Insert(const TaskRecord& task) {
  EncodeChange(pending_, ChangeOp::kInsert, task);
}

void PostgresStore::Update(const TaskRecord& task) {
  EncodeChange(pending_, ChangeOp::kUpdate, task);
}

void PostgresStore::Erase(TaskId id) { EncodeErase(pending_, id); }

// -------------------------------------------------------------- commit

struct PostgresStore::Batch final : StoreBatch {
  std::string changes;
};

std::unique_ptr<StoreBatch> PostgresStore::TakeBatch() {
  std::unique_ptr<Batch> batch(static_cast<Batch*>(spare_batch_.release()));
  if (!batch) batch = std::make_unique<Batch>();
  batch->changes.clear();
  batch->changes.swap(pending_);
  CountTake();
  return batch;
}

void PostgresStore::TakeInto(StoreBatch& into) {
  static_cast<Batch&>(into).changes.append(pending_);
  pending_.clear();
  CountTake();
}

void PostgresStore::Reuse(std::unique_ptr<StoreBatch> batch) { spare_batch_ = std::move(batch); }

void PostgresStore::GiveBack(std::unique_ptr<StoreBatch> batch) {
  if (!batch) return;
  // The batch is older than anything pending now: it goes first.
  auto& old = static_cast<Batch&>(*batch);
  old.changes.append(pending_);
  pending_.swap(old.changes);
}

Status PostgresStore::Write(StoreBatch& batch) {
  std::lock_guard lock(mu_);
  return Apply(static_cast<Batch&>(batch).changes);
}

Status PostgresStore::Commit() {
  if (pending_.empty()) return Status::Ok();
  std::lock_guard lock(mu_);
  Status st = Apply(pending_);
  if (st.ok()) pending_.clear();
  return st;
}

Status PostgresStore::Apply(const std::string& encoded) {
  if (Status st = Connect(); !st.ok()) return st;
  // An empty batch (the store retry) checks the server answers.
  const std::string epoch = std::to_string(fence_epoch_);
  const std::string lease_ms = std::to_string(options_.lease.count());
  const char* fence_values[3] = {fence_holder_.c_str(), epoch.c_str(), lease_ms.c_str()};
  const bool fenced = fence_epoch_ > 0;
  if (encoded.empty()) {
    PGresult* r = fenced
                      ? PQexecPrepared(conn_, "pincer_fence", 3, fence_values, nullptr, nullptr, 0)
                      : PQexec(conn_, "SELECT 1");
    Status st = PQresultStatus(r) == PGRES_TUPLES_OK ? Status::Ok()
                : LeaseLost(r)                       ? LostLease(PQresultErrorMessage(r))
                               : Fail("cannot write to", PQresultErrorMessage(r));
    PQclear(r);
    if (!st.ok()) Disconnect();
    return st;
  }
  PendingChanges changes;
  std::string_view in = encoded;
  while (!in.empty()) {
    ChangeOp op;
    TaskRecord rec;
    if (!DecodeChange(in, op, rec)) {
      // Written by this process a moment ago: a broken invariant.
      return Status("store_corrupt", "a batch for " + shown_url_ + " does not decode");
    }
    AddPendingChange(changes, op, std::move(rec), InsertThenErase::kKeepErase);
  }

  // Erases first: a purged task's idempotency key is free before a newer
  // task takes it again.
  ArrayText erases;
  Params inserts(kInsertParams), updates(kUpdateParams);
  bool any_erase = false, any_insert = false, any_update = false;
  std::string skills;
  for (const auto& [id, p] : changes) {
    const TaskRecord& r = p.rec;
    const auto sid = static_cast<int64_t>(id);
    switch (p.op) {
      case ChangeOp::kErase:
        any_erase = true;
        erases.Int(sid);
        break;
      case ChangeOp::kInsert: {
        any_insert = true;
        auto& a = inserts.arrays;
        skills.clear();
        AppendJsonStringArray(skills, r.skills);
        a[0].Int(sid);
        a[1].Text(skills);
        a[2].Text(r.payload);
        a[3].Int(r.priority);
        a[4].Int(r.timeout_ms);
        a[5].Int(r.max_attempts);
        a[6].Bytes(r.session);
        a[7].Bytes(r.key);
        a[8].Text(TaskStateName(r.state));
        a[9].Int(r.attempts);
        a[10].Text(r.worker);
        a[11].Text(r.output);
        a[12].Bytes(r.error);
        a[13].Text(ErrorsJson(r.errors));
        a[14].Int(r.created_ms);
        a[15].Int(r.started_ms);
        a[16].Int(r.ended_ms);
        a[17].Int(r.usage.input);
        a[18].Int(r.usage.output);
        a[19].Int(r.usage.total);
        a[20].Real(r.usage.cost);
        a[21].Bytes(r.usage.model);
        if (r.has_backoff) {
          a[22].Int(r.backoff.initial_ms);
          a[23].Int(r.backoff.max_ms);
          a[24].Real(r.backoff.jitter);
        } else {
          for (int i = 22; i <= 24; ++i) a[static_cast<std::size_t>(i)].Null();
        }
        if (r.parent != 0) {
          a[25].Int(static_cast<int64_t>(r.parent));
        } else {
          a[25].Null();
        }
        break;
      }
      case ChangeOp::kUpdate: {
        any_update = true;
        auto& a = updates.arrays;
        a[0].Int(sid);
        a[1].Text(TaskStateName(r.state));
        a[2].Int(r.attempts);
        a[3].Text(r.worker);
        a[4].Text(r.output);
        a[5].Bytes(r.error);
        a[6].Text(ErrorsJson(r.errors));
        a[7].Int(r.started_ms);
        a[8].Int(r.ended_ms);
        a[9].Int(r.usage.input);
        a[10].Int(r.usage.output);
        a[11].Int(r.usage.total);
        a[12].Real(r.usage.cost);
        a[13].Bytes(r.usage.model);
        break;
      }
    }
  }

  // One transaction, sent in one round trip.
  const char* erase_values[1] = {erases.Finish()};
  const std::vector<const char*> insert_values = inserts.Finish();
  const std::vector<const char*> update_values = updates.Finish();
  int sent = 0;
  bool queued = PQenterPipelineMode(conn_) == 1;
  auto sql = [&](const char* text) {
    queued = queued && PQsendQueryParams(conn_, text, 0, nullptr, nullptr, nullptr, nullptr, 0);
    sent += queued;
  };
  auto prepared = [&](const char* name, int n, const char* const* values) {
    queued = queued && PQsendQueryPrepared(conn_, name, n, values, nullptr, nullptr, 0);
    sent += queued;
  };
  sql("BEGIN");
  // The fence first: a former leader's transaction stops here.
  if (fenced) prepared("pincer_fence", 3, fence_values);
  if (any_erase) prepared("pincer_erase", 1, erase_values);
  if (any_insert) prepared("pincer_insert", kInsertParams, insert_values.data());
  if (any_update) prepared("pincer_update", kUpdateParams, update_values.data());
  sql("COMMIT");
  if (queued) queued = PQpipelineSync(conn_) == 1;
  Status st;
  if (!queued) st = Fail("cannot write to");
  // Each statement's result, then the end of the pipeline. The first
  // error stops the reading: the connection is dropped, and with it the
  // transaction if it still runs.
  for (int i = 0; i < sent && st.ok(); ++i) {
    PGresult* r = PQgetResult(conn_);
    const ExecStatusType want = fenced && i == 1 ? PGRES_TUPLES_OK : PGRES_COMMAND_OK;
    if (LeaseLost(r)) {
      st = LostLease(PQresultErrorMessage(r));
    } else if (!r || PQresultStatus(r) != want) {
      st = Fail("cannot write to", r ? PQresultErrorMessage(r) : nullptr);
    }
    PQclear(r);
    if (st.ok() && (r = PQgetResult(conn_)) != nullptr) {
      PQclear(r);
      st = Fail("cannot write to", "an unexpected result");
    }
  }
  if (st.ok()) {
    PGresult* r = PQgetResult(conn_);
    if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC) st = Fail("cannot write to");
    PQclear(r);
  }
  if (st.ok() && PQexitPipelineMode(conn_) != 1) st = Fail("cannot write to");
  if (!st.ok()) Disconnect();
  return st;
}

// ----------------------------------------------------------------- ids

Status PostgresStore::ReserveIds(const IdMarks& marks) {
  std::lock_guard lock(mu_);
  if (Status st = Connect(); !st.ok()) return st;
  const std::string tasks = std::to_string(marks.tasks), workers = std::to_string(marks.workers);
  const std::string epoch = std::to_string(fence_epoch_);
  const std::string lease_ms = std::to_string(options_.lease.count());
  const char* values[] = {tasks.c_str(), workers.c_str(), fence_holder_.c_str(), epoch.c_str(),
                          lease_ms.c_str()};
  const bool fenced = fence_epoch_ > 0;
  PGresult* r = PQexecPrepared(conn_, fenced ? "pincer_set_ids_fenced" : "pincer_set_ids",
                               fenced ? 5 : 2, values, nullptr, nullptr, 0);
  Status st = PQresultStatus(r) == PGRES_COMMAND_OK ? Status::Ok()
              : LeaseLost(r)                        ? LostLease(PQresultErrorMessage(r))
                             : Fail("cannot write to", PQresultErrorMessage(r));
  PQclear(r);
  if (!st.ok()) {
    Disconnect();
    return st;
  }
  reserved_ = marks;
  return Status::Ok();
}

int64_t PostgresStore::TaskRowsForTest() {
  std::lock_guard lock(mu_);
  if (!Connect().ok()) return -1;
  PGresult* r = PQexec(conn_, "SELECT count(*) FROM pincer_tasks");
  int64_t n = -1;
  if (PQresultStatus(r) != PGRES_TUPLES_OK || !ReadInt(PQgetvalue(r, 0, 0), n)) n = -1;
  PQclear(r);
  return n;
}

}  // namespace pincer
