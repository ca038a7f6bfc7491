// Reconnect delays: exponential with jitter, so a fleet of workers that
// lost the daemon at the same moment does not reconnect in lockstep. The
// random source is injected so tests get exact delays.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <utility>

namespace pincer::worker {

class Backoff {
 public:
  using Millis = std::chrono::milliseconds;
  // `unit_random` returns a value in [0, 1); each delay is drawn uniformly
  // from [d/2, d] where d doubles from `initial` up to `max`.
  Backoff(Millis initial, Millis max, std::function<double()> unit_random)
      : initial_(initial), max_(max), current_(initial), unit_random_(std::move(unit_random)) {}

  // The delay before the next attempt; each call doubles the next one.
  Millis Next() {
    const Millis base = current_;
    current_ = std::min(max_, current_ * 2);
    double r = unit_random_();
    r = std::clamp(r, 0.0, 1.0);
    const auto half = base.count() / 2;
    return Millis(half + static_cast<Millis::rep>(r * static_cast<double>(base.count() - half)));
  }

  // Called once a connection has been welcomed: the next outage starts
  // again from `initial`.
  void Reset() { current_ = initial_; }

 private:
  Millis initial_;
  Millis max_;
  Millis current_;
  std::function<double()> unit_random_;
};

}  // namespace pincer::worker
