// StoreWriter: batches written in order on the writer thread, the one
// waiting behind a write grows (Extend), and a failed write fails the ones
// behind it unwritten until the daemon resumes it.
#include "daemon/store_writer.h"

#include <gtest/gtest.h>

#include <asio.hpp>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "store/memory_store.h"

namespace pincer {
namespace {

struct Items final : StoreBatch {
  std::vector<int> items;
};

// Keeps nothing (a MemoryStore) but records what it was asked to write,
// can be held inside a write, and can fail writes.
class GatedStore final : public MemoryStore {
 public:
  Status Write(StoreBatch& batch) override {
    std::unique_lock lock(mu);
    ++entered;
    cv.notify_all();
    cv.wait(lock, [this] { return open; });
    if (fail) return Status("store_unavailable", "disk full");
    for (int i : static_cast<Items&>(batch).items) written.push_back(i);
    return Status::Ok();
  }

  void WaitEntered(int n) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return entered >= n; });
  }
  void Open() {
    std::lock_guard lock(mu);
    open = true;
    cv.notify_all();
  }

  std::mutex mu;
  std::condition_variable cv;
  int entered = 0;
  bool open = false;
  bool fail = false;
  std::vector<int> written;
};

std::unique_ptr<StoreBatch> Batch(std::vector<int> items) {
  auto b = std::make_unique<Items>();
  b->items = std::move(items);
  return b;
}

class StoreWriterTest : public ::testing::Test {
 protected:
  // Runs the loop until every batch handed over is done.
  void Drain(StoreWriter& w) {
    io_.restart();
    auto guard = asio::make_work_guard(io_);  // run_one waits for the writer's posts
    while (w.busy()) io_.run_one();
  }

  asio::io_context io_;
  GatedStore store_;
  std::vector<std::pair<std::vector<int>, std::string>> done_;  // items, error code
  StoreWriter::Done Record() {
    return [this](std::unique_ptr<StoreBatch> b, Status st) {
      done_.emplace_back(static_cast<Items&>(*b).items, st.code());
    };
  }
};

TEST_F(StoreWriterTest, TheBatchBehindAWriteGrowsUntilTheWriterBeginsIt) {
  StoreWriter w(io_, store_);
  EXPECT_FALSE(w.Extend([](StoreBatch&) { ADD_FAILURE() << "nothing is queued"; }));
  w.Write(Batch({1}), Record());
  store_.WaitEntered(1);  // the writer is inside the first write
  EXPECT_FALSE(w.Extend([](StoreBatch&) { ADD_FAILURE() << "already begun"; }));
  w.Write(Batch({2}), Record());
  EXPECT_TRUE(w.Extend([](StoreBatch& b) { static_cast<Items&>(b).items.push_back(3); }));
  EXPECT_TRUE(w.Extend([](StoreBatch& b) { static_cast<Items&>(b).items.push_back(4); }));
  EXPECT_EQ(w.in_flight(), 2u);
  store_.Open();
  Drain(w);
  EXPECT_EQ(store_.written, (std::vector<int>{1, 2, 3, 4}));
  ASSERT_EQ(done_.size(), 2u);
  EXPECT_EQ(done_[0].first, std::vector<int>{1});
  EXPECT_EQ(done_[1].first, (std::vector<int>{2, 3, 4}));
  EXPECT_EQ(done_[1].second, "");
}

TEST_F(StoreWriterTest, AFailedWriteFailsTheBatchesBehindItUnwrittenUntilResumed) {
  StoreWriter w(io_, store_);
  store_.fail = true;
  w.Write(Batch({1}), Record());
  store_.WaitEntered(1);
  w.Write(Batch({2}), Record());
  store_.Open();
  Drain(w);
  ASSERT_EQ(done_.size(), 2u);
  EXPECT_EQ(done_[0].second, "store_unavailable");
  EXPECT_EQ(done_[1].second, "store_unavailable");
  EXPECT_EQ(store_.entered, 1) << "the batch behind the failure was not tried";

  store_.fail = false;
  w.Write(Batch({3}), Record());
  Drain(w);
  EXPECT_EQ(done_.back().second, "store_unavailable") << "still failing until resumed";
  EXPECT_EQ(store_.entered, 1);
  w.Resume();
  w.Write(Batch({1, 2, 3}), Record());  // the daemon's retry, with what it gave back
  Drain(w);
  EXPECT_EQ(done_.back().second, "");
  EXPECT_EQ(store_.written, (std::vector<int>{1, 2, 3}));
}

}  // namespace
}  // namespace pincer
