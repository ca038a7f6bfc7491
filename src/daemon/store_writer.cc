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
  ++in_flight_;
  {
    std::lock_guard lock(mu_);
    jobs_.push_back({std::move(batch), std::move(done)});
  }
  cv_.notify_one();
}

bool StoreWriter::Extend(const std::function<void(StoreBatch&)>& extend) {
  std::lock_guard lock(mu_);
  if (jobs_.empty() || !jobs_.back().batch) return false;
  extend(*jobs_.back().batch);
  return true;
}

void StoreWriter::Resume() {
  std::lock_guard lock(mu_);
  failing_ = false;
}

void StoreWriter::Run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, nothing left to write
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    const bool skip = failing_;
    lock.unlock();
    Status st;
    if (skip) {
      st = Status("store_unavailable", "not written: a write before it failed");
    } else if (job.batch) {
      st = store_.Write(*job.batch);
    }
    lock.lock();
    if (!st.ok()) failing_ = true;
    lock.unlock();
    asio::post(loop_,
               [this, done = std::move(job.done), batch = std::move(job.batch), st]() mutable {
                 --in_flight_;
                 done(std::move(batch), std::move(st));
               });
    lock.lock();
  }
}

}  // namespace pincer
