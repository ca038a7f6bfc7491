#include "daemon/store_writer.h"

namespace pincer {

StoreWriter::StoreWriter(asio::io_context& loop, Store& store)
    : loop_(loop), store_(store), thread_([this] { Run(); }) {}

StoreWriter::~StoreWriter() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void StoreWriter::Write(std::unique_ptr<StoreBatch> batch, Done done) {
  busy_ = true;
  {
    std::lock_guard lock(mu_);
    batch_ = std::move(batch);
    done_ = std::move(done);
    has_job_ = true;
  }
  cv_.notify_one();
}

void StoreWriter::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || has_job_; });
    if (!has_job_) return;  // stopping, nothing left to write
    has_job_ = false;
    std::unique_ptr<StoreBatch> batch = std::move(batch_);
    Done done = std::move(done_);
    lock.unlock();
    Status st = batch ? store_.Write(*batch) : Status::Ok();
    asio::post(loop_, [this, done = std::move(done), batch = std::move(batch), st]() mutable {
      busy_ = false;
      done(std::move(batch), std::move(st));
    });
    lock.lock();
  }
}

}  // namespace pincer
