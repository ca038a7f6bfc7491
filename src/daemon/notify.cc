#include "daemon/notify.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>
#include <ctime>

namespace pincer {
namespace {

uint64_t MonotonicUsec() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000u + static_cast<uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace

SystemdNotifier::SystemdNotifier(asio::io_context& io, std::function<std::string()> status)
    : status_(std::move(status)), watchdog_timer_(io), status_timer_(io) {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  enabled_ = socket != nullptr && *socket != '\0';
  if (!enabled_) return;
  uint64_t usec = 0;
  // > 0 only when WATCHDOG_USEC is set (and WATCHDOG_PID, if set, is us).
  if (sd_watchdog_enabled(/*unset_environment=*/0, &usec) > 0 && usec > 0) {
    // Half the interval, as sd_watchdog_enabled(3) advises: one late ping
    // must not be enough to get killed.
    watchdog_interval_ = std::chrono::microseconds(usec / 2);
  }
}

SystemdNotifier::~SystemdNotifier() = default;

void SystemdNotifier::Send(const std::string& state) {
  if (!enabled_) return;
  const int r = sd_notify(/*unset_environment=*/0, state.c_str());
  if (r < 0) spdlog::warn("sd_notify failed: {}", std::strerror(-r));
}

void SystemdNotifier::Ready() {
  if (!enabled_) return;
  Send("READY=1\nSTATUS=" + status_());
  if (watchdog_interval_.count() > 0) {
    spdlog::debug("systemd watchdog: pinging every {}ms", watchdog_interval_.count() / 1000);
    Send("WATCHDOG=1");
    ArmWatchdog();
  }
  ArmStatus();
}

void SystemdNotifier::Reloading() {
  Send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(MonotonicUsec()) +
       "\nSTATUS=reloading the config");
}

void SystemdNotifier::Reloaded() {
  if (!enabled_ || stopping_) return;
  Send("READY=1\nSTATUS=" + status_());
}

void SystemdNotifier::Stopping() {
  if (!enabled_ || stopping_) return;
  stopping_ = true;
  // The watchdog keeps pinging while running tasks drain: systemd still
  // watches a stopping service, and a hung drain should be noticed too.
  status_timer_.cancel();
  Send("STOPPING=1\nSTATUS=shutting down");
}

void SystemdNotifier::ArmWatchdog() {
  // The ping is a handler of the loop it vouches for: if the loop stops
  // turning, the pings stop and systemd acts.
  watchdog_timer_.expires_after(watchdog_interval_);
  watchdog_timer_.async_wait([this](const std::error_code& ec) {
    if (ec) return;
    Send("WATCHDOG=1");
    ArmWatchdog();
  });
}

void SystemdNotifier::ArmStatus() {
  status_timer_.expires_after(kStatusEvery);
  status_timer_.async_wait([this](const std::error_code& ec) {
    if (ec || stopping_) return;
    Send("STATUS=" + status_());
    ArmStatus();
  });
}

}  // namespace pincer
