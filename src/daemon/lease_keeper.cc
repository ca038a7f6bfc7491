#include "daemon/lease_keeper.h"

#include <spdlog/spdlog.h>

namespace pincer {

LeaseKeeper::LeaseKeeper(asio::io_context& loop, std::unique_ptr<PostgresLease> lease,
                         std::chrono::milliseconds lease_time, std::chrono::milliseconds renew,
                         Hooks hooks)
    : loop_(loop),
      lease_(std::move(lease)),
      lease_time_(lease_time),
      renew_(renew),
      hooks_(std::move(hooks)) {}

LeaseKeeper::~LeaseKeeper() { Stop(); }

void LeaseKeeper::Start(int64_t epoch, std::chrono::steady_clock::time_point taken_at) {
  epoch_ = epoch;
  if (epoch > 0) Renewed(taken_at);
  thread_ = std::thread([this] { Run(); });
}

void LeaseKeeper::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LeaseKeeper::Renewed(std::chrono::steady_clock::time_point asked) {
  renewed_at_ = asked;
  held_until_.store((asked + lease_time_).time_since_epoch().count(), std::memory_order_relaxed);
}

void LeaseKeeper::Release() {
  Stop();
  if (epoch_ > 0) {
    lease_->Release(epoch_);
    spdlog::info("lease of epoch {} released", epoch_);
    epoch_ = 0;
  }
}

void LeaseKeeper::Run() {
  using Clock = std::chrono::steady_clock;
  std::string last_error, last_leader = "\n";  // nothing heard yet
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, renew_, [this] { return stop_; })) return;
    }
    const Clock::time_point asked = Clock::now();
    if (epoch_ == 0) {
      PostgresLease::View view;
      Status st = lease_->Acquire(view);
      if (!st.ok()) {
        if (st.message() != last_error) spdlog::warn("standby: {}", st.message());
        last_error = st.message();
        continue;
      }
      last_error.clear();
      if (view.epoch > 0) {
        epoch_ = view.epoch;
        Renewed(asked);
        asio::post(loop_, [this, epoch = view.epoch] { hooks_.acquired(epoch); });
      } else if (view.leader != last_leader) {
        last_leader = view.leader;
        asio::post(loop_, [this, leader = view.leader] { hooks_.leader(leader); });
      }
      continue;
    }
    Status st = lease_->Renew(epoch_);
    if (st.ok()) {
      Renewed(asked);
      if (!last_error.empty()) spdlog::info("lease renewed again");
      last_error.clear();
      continue;
    }
    if (st.code() != "lease_lost") {
      if (Clock::now() - renewed_at_ < lease_time_) {
        if (st.message() != last_error) spdlog::warn("cannot renew the lease: {}", st.message());
        last_error = st.message();
        continue;
      }
      st = Status("lease_lost", "the lease was not renewed for store.lease (" +
                                    std::to_string(lease_time_.count()) + "ms): " + st.message());
    }
    epoch_ = 0;  // not ours: never released
    held_until_.store(0, std::memory_order_relaxed);
    asio::post(loop_, [this, st] { hooks_.lost(st); });
    return;
  }
}

}  // namespace pincer
