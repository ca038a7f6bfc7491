// Whether an OpenAI-compatible endpoint can take work: `GET URL/models`
// answering 200, asked now and then (pincer-worker --openai). The worker
// stays away from pincerd while the answer is no, so tasks never go to an
// endpoint that is still starting or has died. Single-threaded: runs on
// the loop's thread (the GET itself on an HttpCall thread).
#pragma once

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "worker/http_call.h"

namespace pincer::worker {

struct ProbeOptions {
  std::string url;  // e.g. http://127.0.0.1:18790/v1/models
  std::vector<std::string> headers;
  std::chrono::milliseconds interval_up{5000};    // between probes while up
  std::chrono::milliseconds interval_down{1000};  // between probes while down
  std::chrono::milliseconds timeout{5000};        // per probe
  int failures_to_down = 2;                       // consecutive failures while up
};

class EndpointProbe {
 public:
  // `on_change(up, why)` runs on every change, the first success
  // included (the state starts "down": unknown).
  using ChangeHandler = std::function<void(bool up, const std::string& why)>;

  // REQUIRES: `io` outlives this object.
  EndpointProbe(asio::io_context& io, ProbeOptions options, ChangeHandler on_change);

  void Start();
  // Probes at once (unless a probe is under way): a request just failed to
  // reach the endpoint.
  void CheckNow();
  bool up() const { return up_; }

 private:
  void Probe();
  void OnResult(bool ok, const std::string& why);
  void Schedule(std::chrono::milliseconds delay);

  asio::io_context& io_;
  ProbeOptions options_;
  ChangeHandler on_change_;
  asio::steady_timer timer_;
  std::unique_ptr<HttpCall> call_;
  std::unique_ptr<HttpCall> finished_call_;  // destroyed on the next probe, not in its own callback
  bool in_flight_ = false;
  bool up_ = false;
  int failures_ = 0;
  long status_ = 0;
  std::string last_why_;
};

}  // namespace pincer::worker
