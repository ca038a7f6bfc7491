// One HTTP request made with libcurl on a thread of its own, reported back
// on an Asio loop. The loop never blocks on the network: the request
// streams on its thread, every callback is posted to the loop, and Abort
// wakes the thread at once (curl_multi_wakeup) instead of waiting for a
// read to time out.
#pragma once

#include <asio.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace pincer::worker {

struct HttpRequest {
  std::string url;
  bool post = false;  // POST `body`, else GET
  std::string body;
  std::vector<std::string> headers;  // "Name: value"
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds total_timeout{0};  // 0: none (a reply may stream for long)
};

struct HttpResponseHead {
  long status = 0;
  std::string content_type;
  std::optional<std::string> retry_after;
};

struct HttpEnd {
  bool transport_failed = false;
  std::string transport_error;
  long status = 0;
};

class HttpCall {
 public:
  struct Callbacks {
    // Once, before the first body bytes (also for an empty body).
    std::function<void(const HttpResponseHead&)> on_head;
    // Body bytes, in order.
    std::function<void(std::string chunk)> on_body;
    // Once, last. Not called after Abort.
    std::function<void(const HttpEnd&)> on_end;
    // Once the thread has finished, even after Abort; the call may be
    // destroyed from here on without blocking.
    std::function<void()> on_finished;
  };

  // Starts the request. Callbacks run on `io`'s thread. REQUIRES: `io`
  // runs until on_finished was called or the HttpCall destroyed;
  // curl_global_init was called.
  HttpCall(asio::io_context& io, HttpRequest request, Callbacks callbacks);
  // Aborts and joins the thread (quick: the thread is woken).
  ~HttpCall();

  HttpCall(const HttpCall&) = delete;
  HttpCall& operator=(const HttpCall&) = delete;

  // Stops the transfer; no on_head/on_body/on_end runs afterwards (when
  // called on the loop's thread). on_finished still runs.
  void Abort();
  bool finished() const;

 private:
  struct Shared;
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
};

}  // namespace pincer::worker
