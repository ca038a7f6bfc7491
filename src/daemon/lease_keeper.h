// Keeps (or waits for) the leader's lease of a postgres store
// (store/postgres_lease.h, docs/high-availability.md) on a thread of its
// own: the event loop never waits for the database.
//
// Every store.renew it either renews the lease it holds or, as a standby,
// tries to take it. What it finds goes to the loop (posted):
// - acquired(epoch): this pincerd took the lease and leads from now on;
// - leader(address): a standby heard who leads ("" when nobody does);
// - lost(status): the lease is gone (taken, or not renewed for a whole
//   lease): this pincerd must step down. The thread stops then.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "store/postgres_lease.h"

namespace pincer {

class LeaseKeeper {
 public:
  struct Hooks {
    std::function<void(int64_t epoch)> acquired;
    std::function<void(const std::string& address)> leader;
    std::function<void(const Status&)> lost;
  };

  LeaseKeeper(asio::io_context& loop, std::unique_ptr<PostgresLease> lease,
              std::chrono::milliseconds lease_time, std::chrono::milliseconds renew, Hooks hooks);
  // Stops the thread.
  ~LeaseKeeper();
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // Starts the thread; `epoch` > 0: the lease is held already (renewed
  // from `taken_at`, when it was asked for), 0: wait for it.
  void Start(int64_t epoch, std::chrono::steady_clock::time_point taken_at);
  // Stops the thread, then lets the lease go if it holds it (a clean stop).
  void Release();
  // Whether the lease is surely still this pincerd's at `now`: a whole
  // lease has not passed since a renewal (or the take) was asked for. Any
  // thread. The database's lease runs from when it got the renewal, which
  // is later, so past this point a standby may lead already: a pincerd
  // that was paused (SIGSTOP, a frozen VM) finds out here before it sends
  // anything, without waiting for the keeper thread to hear it.
  bool HeldAt(std::chrono::steady_clock::time_point now) const {
    return now.time_since_epoch().count() < held_until_.load(std::memory_order_relaxed);
  }

 private:
  void Run();
  void Stop();

  asio::io_context& loop_;
  std::unique_ptr<PostgresLease> lease_;
  std::chrono::milliseconds lease_time_, renew_;
  Hooks hooks_;
  int64_t epoch_ = 0;  // the keeper thread's (before Start and after Stop: any)
  std::chrono::steady_clock::time_point renewed_at_;
  // renewed_at_ + lease_time_ while the lease is held, else 0 (steady ticks).
  std::atomic<std::chrono::steady_clock::rep> held_until_{0};
  void Renewed(std::chrono::steady_clock::time_point asked);

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace pincer
