// pincerd's dashboard (docs/dashboard.md): a page at / and a JSON API under
// /api/v1 on `metrics_listen`, beside /metrics and /healthz, served by the
// metrics module's HTTP server (civetweb).
//
// Threading: requests arrive on civetweb's threads. Everything that reads
// or changes the dispatcher is posted to the event loop and waited for
// (bounded, Metrics::OnLoop): the loop never waits for HTTP, and a stuck
// loop answers 503 instead of hanging a request.
//
// The API answers with the objects `pincerctl --json` prints (the views
// ClientApi builds), so a script can move between the two.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/client_api.h"
#include "core/dispatcher.h"
#include "metrics/metrics.h"

namespace pincer {

// What the dashboard needs from the daemon. Both are called on the loop.
struct DashboardHooks {
  // The tokens in force now (a reload may change them).
  std::function<AuthConfig()> auth;
  // An action changed the dispatcher's state: commit it and send what it
  // sends (the daemon's flush).
  std::function<void()> changed;
};

class Dashboard {
 public:
  // One HTTP request, as the handler read it.
  struct Request {
    std::string method;  // GET, POST, ...
    std::string path;    // decoded, without the query
    std::string query;   // raw, "" = none
    std::string authorization;
    std::string origin;      // "" = not sent
    std::string host;        // the Host header
    std::string fetch_site;  // Sec-Fetch-Site; "" = not sent
  };
  struct Response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
  };

  // The most tasks one /api/v1/tasks answer lists.
  static constexpr int64_t kMaxListLimit = 1000;
  // Tasks in the overview's `running` and `recent` lists.
  static constexpr std::size_t kRecentTasks = 20;

  // `api_hooks`: the ones the daemon's ClientApi has (pools, the fields a
  // supervisor adds to workers and stats, drained workers). All referenced
  // objects must outlive the dashboard.
  Dashboard(Dispatcher& dispatcher, Metrics& metrics, ClientApi::Hooks api_hooks,
            DashboardHooks hooks);

  // Answers from an HTTP thread: static files at once, the rest on the loop.
  Response Serve(const Request& request);
  // The answer to an API request (or the page with its first data); loop
  // thread only.
  Response Answer(const Request& request);

  // The URIs to serve (Metrics::AddPages).
  static std::vector<std::string> Uris();

 private:
  class Capture;
  Response Api(const Request& r, const AuthConfig& auth);
  Response Page(const AuthConfig& auth);
  nlohmann::json Overview();
  nlohmann::json Workers();
  nlohmann::json Queues();
  // Up to kRecentTasks task views (payload and output left out): the oldest
  // running, or the last ended.
  nlohmann::json RunningTasks();
  nlohmann::json EndedTasks();
  Response TaskList(const std::string& query);
  Response TaskById(const std::string& id);
  // Runs a request through ClientApi and answers with its body, less
  // `type` and `req` (what pincerctl --json prints).
  Response Act(const Message& msg);

  Dispatcher& dispatcher_;
  Metrics& metrics_;
  std::unique_ptr<Capture> capture_;  // where api_'s answers go
  ClientApi api_;
  ClientApi::Hooks api_hooks_;
  DashboardHooks hooks_;
};

// Builds the dashboard and hands it to `metrics` to serve (call before
// Metrics::Serve). Arguments as Dashboard's.
void AddDashboard(Dispatcher& dispatcher, Metrics& metrics, ClientApi::Hooks api_hooks,
                  DashboardHooks hooks);

// Error answers: {"error":{"code":..,"message":..}} with the HTTP status
// that fits the code (not_found 404, invalid_state 409, ...).
Dashboard::Response ErrorResponse(const std::string& code, const std::string& message);
int HttpStatusFor(const std::string& code);

}  // namespace pincer
