// Talking to systemd (sd_notify, libsystemd) when pincerd runs as a
// Type=notify service: READY=1 once listening and recovered, a STATUS= line
// kept current, WATCHDOG=1 pings from the event loop itself (so a stuck
// loop stops them and systemd restarts pincerd), RELOADING=1/READY=1
// around a reload and STOPPING=1 on shutdown.
//
// Outside systemd (no NOTIFY_SOCKET in the environment) every method does
// nothing and no timer is armed.
//
// Threading: the event-loop thread.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <string>

namespace pincer {

class SystemdNotifier {
 public:
  // How often STATUS= is refreshed: often enough for `systemctl status`,
  // rare enough to cost nothing.
  static constexpr std::chrono::seconds kStatusEvery{5};

  // `status` builds the STATUS= text ("3 workers, 10 queued, 2 running");
  // it is called on the loop thread.
  SystemdNotifier(asio::io_context& io, std::function<std::string()> status);
  ~SystemdNotifier();
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  bool enabled() const { return enabled_; }

  // READY=1 with the current status; starts the watchdog and status timers.
  void Ready();
  // RELOADING=1 with MONOTONIC_USEC (as systemd's Type=notify-reload wants),
  // then, once the new config is applied or refused, Reloaded() sends READY=1.
  void Reloading();
  void Reloaded();
  // STOPPING=1; the STATUS= refresh stops, the watchdog pings go on while
  // the loop runs (running tasks drain first).
  void Stopping();

 private:
  void Send(const std::string& state);
  void ArmWatchdog();
  void ArmStatus();

  bool enabled_ = false;
  bool stopping_ = false;
  std::chrono::microseconds watchdog_interval_{0};  // 0: no watchdog
  std::function<std::string()> status_;
  asio::steady_timer watchdog_timer_;
  asio::steady_timer status_timer_;
};

}  // namespace pincer
