// Exponential backoff with jitter: the pause before the next try of
// something that failed (a supervised process's restart, a task's retry, a
// worker's reconnect). Randomness is passed in so tests get exact delays.
#pragma once

#include <chrono>
#include <functional>

namespace pincer {

// The delays of one kind of retry: initial * 2^failures, capped at max, plus
// up to `jitter` of that at random. The config's restart.backoff and
// tasks.retry_backoff sections (docs/configuration.md).
struct BackoffConfig {
  std::chrono::milliseconds initial{500};
  std::chrono::milliseconds max{30000};
  double jitter = 0.1;  // fraction of the delay added at random, 0..1

  bool operator==(const BackoffConfig&) const = default;
};

// The delay before try number `failures` + 1 after `failures` failed ones:
// failures = 0 -> initial, 1 -> 2*initial, ... capped at max; then
// `random01` (in [0,1), clamped) times `jitter` of that delay is added. The
// result never exceeds max * (1 + jitter), and a long run of failures does
// not overflow.
std::chrono::milliseconds BackoffDelay(const BackoffConfig& config, int failures, double random01);

// A backoff that counts its own failures (a worker's reconnects): each
// delay is drawn uniformly from [d/2, d], where d = BackoffDelay without
// jitter, so a fleet of workers that lost the daemon at the same moment
// does not reconnect in lockstep.
class Backoff {
 public:
  using Millis = std::chrono::milliseconds;
  // `unit_random` returns a value in [0, 1) (clamped).
  Backoff(Millis initial, Millis max, std::function<double()> unit_random);

  // The delay before the next attempt; each call doubles the next one.
  Millis Next();
  // Called once a connection has been welcomed: the next outage starts
  // again from `initial`.
  void Reset() { failures_ = 0; }

 private:
  BackoffConfig config_;
  int failures_ = 0;
  std::function<double()> unit_random_;
};

}  // namespace pincer
