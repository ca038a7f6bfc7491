#include "worker/endpoint_probe.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace pincer::worker {

EndpointProbe::EndpointProbe(asio::io_context& io, ProbeOptions options, ChangeHandler on_change)
    : io_(io), options_(std::move(options)), on_change_(std::move(on_change)), timer_(io) {}

void EndpointProbe::Start() { Probe(); }

void EndpointProbe::CheckNow() {
  if (in_flight_) return;
  timer_.cancel();
  Probe();
}

void EndpointProbe::Schedule(std::chrono::milliseconds delay) {
  timer_.expires_after(delay);
  timer_.async_wait([this](std::error_code ec) {
    if (!ec) Probe();
  });
}

void EndpointProbe::Probe() {
  in_flight_ = true;
  status_ = 0;
  finished_call_.reset();
  HttpRequest request;
  request.url = options_.url;
  request.headers = options_.headers;
  request.connect_timeout = options_.timeout;
  request.total_timeout = options_.timeout;
  HttpCall::Callbacks cb;
  cb.on_head = [this](const HttpResponseHead& head) { status_ = head.status; };
  cb.on_body = [](std::string) {};
  cb.on_end = [this](const HttpEnd& end) {
    if (end.transport_failed) {
      OnResult(false, end.transport_error);
    } else if (end.status != 200) {
      OnResult(false, "GET " + options_.url + " answered HTTP " + std::to_string(end.status));
    } else {
      OnResult(true, "GET " + options_.url + " answered 200");
    }
  };
  call_ = std::make_unique<HttpCall>(io_, std::move(request), std::move(cb));
}

void EndpointProbe::OnResult(bool ok, const std::string& why) {
  in_flight_ = false;
  finished_call_ = std::move(call_);  // its thread is ending; joined on the next probe
  if (ok) {
    failures_ = 0;
    if (!up_) {
      up_ = true;
      spdlog::info("model endpoint is up: {}", why);
      on_change_(true, why);
    }
    Schedule(options_.interval_up);
    return;
  }
  ++failures_;
  if (up_ && failures_ >= options_.failures_to_down) {
    up_ = false;
    spdlog::warn("model endpoint is down: {}", why);
    on_change_(false, why);
  } else if (!up_ && (failures_ == 1 || why != last_why_)) {
    spdlog::warn("model endpoint not ready: {} (probing every {}ms)", why,
                 options_.interval_down.count());
  }
  last_why_ = why;
  Schedule(options_.interval_down);
}

}  // namespace pincer::worker
