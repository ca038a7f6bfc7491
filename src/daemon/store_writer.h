// Writes store batches on a thread of its own, so the event loop never
// waits for the disk: while batches are written, the loop handles the next
// events and records their changes (group commit). A line to a client
// waits in the daemon's answer gate until a batch holding the changes it
// tells of is written (daemon/answer_gate.h).
//
// Batches are written one after the other, in the order they were handed
// over. While one is being written the loop hands over the next one and
// keeps adding to it (Extend) until the writer begins it: the moment a
// write is synced, the writer starts on everything that came in meanwhile,
// without waiting for the loop to hear of it. When a write fails, the
// batches queued behind it fail too without being written: the journal
// never holds a batch whose predecessor is missing, and the daemon gives
// them all back, then calls Resume() before it writes again.
//
// Threading: Write() and Extend() are called on the loop thread; `done`
// runs there too (posted to the loop's io_context).
#pragma once

#include <asio.hpp>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "common/status.h"
#include "store/store.h"

namespace pincer {

class StoreWriter {
 public:
  using Done = std::function<void(std::unique_ptr<StoreBatch>, Status)>;

  // `store` must outlive the writer.
  StoreWriter(asio::io_context& loop, Store& store);
  // Writes what is queued, then stops the thread.
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Queues a batch; `done` runs once it is written (or failed). A null
  // batch is done at once (Ok) in its turn.
  void Write(std::unique_ptr<StoreBatch> batch, Done done);
  // Runs `extend` on the batch handed over last, under the writer's lock,
  // if the writer has not begun it; returns false (and runs nothing) if it
  // has, or if there is none.
  bool Extend(const std::function<void(StoreBatch&)>& extend);
  // After a failed write, every batch handed over fails unwritten until
  // this is called. REQUIRES: !busy().
  void Resume();
  // Loop thread: batches handed over whose `done` has not run yet.
  std::size_t in_flight() const { return in_flight_; }
  bool busy() const { return in_flight_ > 0; }

 private:
  struct Job {
    std::unique_ptr<StoreBatch> batch;
    Done done;
  };
  void Run();

  asio::io_context& loop_;
  Store& store_;
  std::size_t in_flight_ = 0;  // loop thread

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;  // guarded by mu_
  bool stop_ = false;     // guarded by mu_
  bool failing_ = false;  // guarded by mu_: a write failed; fail the ones after it
  std::thread thread_;
};

}  // namespace pincer
