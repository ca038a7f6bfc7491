// The leader's lease in a postgres store's database (store.kind: postgres,
// docs/high-availability.md): one row, pincer_lease, that says which
// pincerd leads (holder), where it serves (address), since which takeover
// (epoch) and until when (expires_at, by the database's clock: the hosts'
// clocks never count).
//
// - Acquire takes the row when it has expired (or was never held) and
//   bumps the epoch; otherwise it tells who holds it.
// - Renew extends it while holder and epoch still match (pincer_fence, the
//   same check that fences every write of the store: postgres_store.h).
// - Release lets it expire now (a clean stop: a standby need not wait).
//
// A connection of its own, apart from the store's: renewals never wait
// behind a write. Not thread-safe: one thread uses it (daemon/lease_keeper.h).
// The tables exist: PostgresStore::Open has migrated them.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/status.h"

struct pg_conn;  // libpq's PGconn

namespace pincer {

class PostgresLease {
 public:
  // `holder`: this pincerd, unique (MakeLeaseHolder); `address`: what a
  // standby names as the leader's while this one leads.
  PostgresLease(std::string url, std::string holder, std::string address,
                std::chrono::milliseconds lease);
  ~PostgresLease();
  PostgresLease(const PostgresLease&) = delete;
  PostgresLease& operator=(const PostgresLease&) = delete;

  struct View {
    int64_t epoch = 0;   // > 0: this pincerd took the lease, with this epoch
    std::string leader;  // epoch 0: the holder's address while its lease runs ("" none)
  };
  // store_unavailable when the server cannot be asked.
  Status Acquire(View& out);
  // lease_lost when `epoch` is no longer this pincerd's lease (expired or
  // taken); store_unavailable when the server cannot be asked.
  Status Renew(int64_t epoch);
  // Ends the lease of `epoch` now; best effort.
  void Release(int64_t epoch);

  const std::string& holder() const { return holder_; }

 private:
  Status Connect();
  Status Fail(const std::string& reason);

  std::string url_;
  std::string shown_url_;
  std::string holder_;
  std::string address_;
  std::string lease_ms_;
  pg_conn* conn_ = nullptr;
};

// "<hostname>:<pid>:<random>": a holder no other pincerd (nor a later
// run of this one) has.
std::string MakeLeaseHolder();

}  // namespace pincer
