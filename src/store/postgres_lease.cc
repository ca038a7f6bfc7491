#include "store/postgres_lease.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <random>
#include <string_view>

#include "store/postgres_store.h"

namespace pincer {
namespace {

// Takes the lease if it ran out; either way, the holder's address as it
// was before (the CTE's UPDATE is not seen by the outer SELECT).
constexpr const char* kAcquire = R"sql(
WITH took AS (
  UPDATE pincer_lease SET holder = $1, address = $2, epoch = epoch + 1,
    expires_at = now() + $3::bigint * interval '1 millisecond'
  WHERE id = 1 AND expires_at <= now()
  RETURNING epoch)
SELECT (SELECT epoch FROM took),
       (SELECT address FROM pincer_lease WHERE id = 1 AND expires_at > now())
)sql";

constexpr const char* kRenew = "SELECT pincer_fence($1, $2::bigint, $3::bigint)";

constexpr const char* kRelease =
    "UPDATE pincer_lease SET expires_at = '-infinity' WHERE id = 1 AND holder = $1 AND epoch = "
    "$2::bigint";

std::string OneLine(const char* message) {
  std::string s = message ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& c : s) {
    if (c == '\n') c = ' ';
  }
  return s.empty() ? "unknown error" : s;
}

}  // namespace

PostgresLease::PostgresLease(std::string url, std::string holder, std::string address,
                             std::chrono::milliseconds lease)
    : url_(std::move(url)),
      shown_url_(MaskPostgresUrl(url_)),
      holder_(std::move(holder)),
      address_(std::move(address)),
      lease_ms_(std::to_string(lease.count())) {}

PostgresLease::~PostgresLease() {
  if (conn_) PQfinish(conn_);
}

Status PostgresLease::Fail(const std::string& reason) {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  return Status("store_unavailable", "cannot reach the lease in " + shown_url_ + ": " + reason);
}

Status PostgresLease::Connect() {
  if (conn_ && PQstatus(conn_) == CONNECTION_OK) return Status::Ok();
  if (conn_) PQfinish(conn_);
  // A renewal must not hang past the lease: short timeouts.
  const char* keys[] = {
      "connect_timeout",  "application_name", "keepalives_idle", "keepalives_interval",
      "keepalives_count", "tcp_user_timeout", "dbname",          nullptr};
  const std::string user_timeout = lease_ms_;
  const char* values[] = {"2", "pincerd-lease",      "2",          "1",
                          "2", user_timeout.c_str(), url_.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) {
    return Fail(OneLine(conn_ ? PQerrorMessage(conn_) : "out of memory"));
  }
  return Status::Ok();
}

Status PostgresLease::Acquire(View& out) {
  out = View{};
  if (Status st = Connect(); !st.ok()) return st;
  const char* values[] = {holder_.c_str(), address_.c_str(), lease_ms_.c_str()};
  PGresult* r = PQexecParams(conn_, kAcquire, 3, nullptr, values, nullptr, nullptr, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    Status st = Fail(OneLine(PQresultErrorMessage(r)));
    PQclear(r);
    return st;
  }
  if (!PQgetisnull(r, 0, 0)) {
    const char* text = PQgetvalue(r, 0, 0);
    std::from_chars(text, text + PQgetlength(r, 0, 0), out.epoch);
  }
  if (out.epoch == 0 && !PQgetisnull(r, 0, 1)) out.leader = PQgetvalue(r, 0, 1);
  PQclear(r);
  return Status::Ok();
}

Status PostgresLease::Renew(int64_t epoch) {
  if (Status st = Connect(); !st.ok()) return st;
  const std::string e = std::to_string(epoch);
  const char* values[] = {holder_.c_str(), e.c_str(), lease_ms_.c_str()};
  PGresult* r = PQexecParams(conn_, kRenew, 3, nullptr, values, nullptr, nullptr, 0);
  const char* state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  Status st;
  if (state && std::string_view(state) == "PCR01") {
    st = Status("lease_lost", "the lease in " + shown_url_ + " is no longer this pincerd's: " +
                                  OneLine(PQresultErrorMessage(r)));
  } else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    st = Fail(OneLine(PQresultErrorMessage(r)));
  }
  PQclear(r);
  return st;
}

void PostgresLease::Release(int64_t epoch) {
  if (!Connect().ok()) return;
  const std::string e = std::to_string(epoch);
  const char* values[] = {holder_.c_str(), e.c_str()};
  PQclear(PQexecParams(conn_, kRelease, 2, nullptr, values, nullptr, nullptr, 0));
}

std::string MakeLeaseHolder() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::random_device random;
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%08x%08x", random(), random());
  return std::string(host) + ":" + std::to_string(::getpid()) + ":" + suffix;
}

}  // namespace pincer
