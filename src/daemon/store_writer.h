// Writes store batches on a thread of its own, so the event loop never
// waits for SQL or fsync: while one batch is written, the loop handles the
// next events and records their changes (group commit). The daemon holds
// back every answer of a batch until its write is done.
//
// Threading: Write() is called on the loop thread; `done` runs there too
// (posted to the loop's io_context). One write at a time.
#pragma once

#include <asio.hpp>
#include <condition_variable>
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
  // Waits for a write in progress, then stops the thread.
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // REQUIRES: !busy(). A null batch is done at once (Ok).
  void Write(std::unique_ptr<StoreBatch> batch, Done done);
  bool busy() const { return busy_; }  // loop thread

 private:
  void Run();

  asio::io_context& loop_;
  Store& store_;
  bool busy_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  bool has_job_ = false;               // guarded by mu_
  std::unique_ptr<StoreBatch> batch_;  // guarded by mu_
  Done done_;                          // guarded by mu_
  bool stop_ = false;                  // guarded by mu_
  std::thread thread_;
};

}  // namespace pincer
