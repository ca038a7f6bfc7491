// The dashboard's JSON API (docs/dashboard.md) against a real pincerd over
// real HTTP: tokens, cross-site refusals, the same objects as
// `pincerctl --json`, the actions reaching workers and tasks, and bad
// input answered with a JSON error that changes nothing.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/dashboard_fixture.h"
#include "support/http.h"
#include "support/test_worker.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using Headers = std::map<std::string, std::string>;

constexpr const char* kClient = "client-secret";
constexpr const char* kAdmin = "admin-secret";
constexpr const char* kWorkerToken = "worker-secret";

class DashboardApiTest : public DashboardFixture {
 protected:
  void StartWithTokens() {
    StartDaemon(std::string("auth: { client_token: ") + kClient + ", admin_token: " + kAdmin +
                ", worker_token: " + kWorkerToken + " }\n");
    token_ = kClient;
    admin_ = kAdmin;
  }

  std::unique_ptr<TestWorker> Worker(const std::string& name, std::vector<std::string> skills) {
    return ConnectWorker(name, std::move(skills), token_.empty() ? "" : kWorkerToken);
  }

  CtlResult Ctl(std::vector<std::string> args) {
    CtlOptions o;
    if (!admin_.empty()) o.env["PINCER_TOKEN"] = admin_;
    return RunCtl(daemon_->address(), args, o);
  }
  std::string Submit(const std::string& skill, const std::string& payload = "1") {
    CtlResult r = Ctl({"submit", "--skill", skill, "--payload", payload});
    EXPECT_EQ(r.exit_code, 0) << r;
    return r.Lines().empty() ? "" : r.Lines()[0];
  }

  // With the client token (when there is one).
  HttpResponse Get(const std::string& path, Headers h = {}) {
    if (!token_.empty() && !h.count("Authorization")) h["Authorization"] = "Bearer " + token_;
    auto r = HttpRequest(http_, "GET", path, h);
    EXPECT_TRUE(r) << path;
    return r.value_or(HttpResponse{});
  }
  // With the admin token (when there is one) and no Origin, as curl sends.
  HttpResponse Post(const std::string& path, Headers h = {}) {
    if (!admin_.empty() && !h.count("Authorization")) h["Authorization"] = "Bearer " + admin_;
    auto r = HttpRequest(http_, "POST", path, h);
    EXPECT_TRUE(r) << path;
    return r.value_or(HttpResponse{});
  }
  static json Json(const HttpResponse& r) { return json::parse(r.body, nullptr, false); }
  // An error answer: its status and code.
  static void ExpectError(const HttpResponse& r, int status, const std::string& code) {
    EXPECT_EQ(r.status, status) << r.body;
    const json j = Json(r);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r.body;
    EXPECT_EQ(j["error"].value("code", ""), code) << r.body;
    EXPECT_FALSE(j["error"].value("message", "").empty()) << r.body;
    EXPECT_EQ(r.headers.count("content-type") ? r.headers.at("content-type") : "",
              "application/json");
  }

  std::string token_;  // the client token, "" = none
  std::string admin_;  // the admin token, "" = none
};

TEST_F(DashboardApiTest, TokensAreNeededWhenSet) {
  ASSERT_NO_FATAL_FAILURE(StartWithTokens());
  auto w = Worker("tok-worker", {"text"});
  ASSERT_TRUE(w);

  auto none = HttpRequest(http_, "GET", "/api/v1/workers");
  ASSERT_TRUE(none);
  ExpectError(*none, 401, "unauthorized");
  EXPECT_EQ(none->headers["www-authenticate"], "Bearer realm=\"pincer\"");
  ExpectError(Get("/api/v1/workers", {{"Authorization", "Bearer wrong"}}), 401, "unauthorized");
  ExpectError(Get("/api/v1/workers", {{"Authorization", std::string("Basic ") + kClient}}), 401,
              "unauthorized");
  for (const char* path : {"/api/v1/stats", "/api/v1/tasks", "/api/v1/overview"}) {
    auto r = HttpRequest(http_, "GET", path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << path;
  }

  const HttpResponse ok = Get("/api/v1/workers");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.headers.at("content-type"), "application/json");
  const json workers = Json(ok);
  ASSERT_TRUE(workers.is_array()) << ok.body;
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0]["name"], "tok-worker");
  // The admin token reads too.
  EXPECT_EQ(Get("/api/v1/workers", {{"Authorization", std::string("Bearer ") + kAdmin}}).status,
            200);
  // The page itself carries no data without the token.
  auto page = HttpRequest(http_, "GET", "/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->body.find("tok-worker"), std::string::npos);
  EXPECT_NE(page->body.find(R"(<script id="pincer-state" type="application/json">null</script>)"),
            std::string::npos);
  EXPECT_EQ(page->headers.count("set-cookie"), 0u);
}

TEST_F(DashboardApiTest, ActionsNeedTheAdminTokenAndTheSameOrigin) {
  ASSERT_NO_FATAL_FAILURE(StartWithTokens());
  auto w = Worker("drain-me", {"text"});
  ASSERT_TRUE(w);
  w->StartAuto();  // reads what pincerd sends it
  const std::string path = "/api/v1/workers/" + w->id() + "/drain";

  ExpectError(*HttpRequest(http_, "POST", path), 401, "unauthorized");
  ExpectError(Post(path, {{"Authorization", std::string("Bearer ") + kClient}}), 403, "forbidden");
  ExpectError(Post(path, {{"Origin", "http://evil.example"}}), 403, "cross_site");
  ExpectError(Post(path, {{"Origin", "http://" + http_}, {"Sec-Fetch-Site", "cross-site"}}), 403,
              "cross_site");
  EXPECT_FALSE(w->drain_received());
  EXPECT_EQ(Ctl({"--json", "workers"}).Json()[0]["state"], "ready");

  // From the page itself (its Origin is this server) with the admin token.
  const HttpResponse ok = Post(path, {{"Origin", "http://" + http_}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Json(ok), (json{{"state", "draining"}, {"worker", w->id()}}));
  EXPECT_TRUE(WaitFor([&] { return w->drain_received(); }));
  EXPECT_EQ(Ctl({"--json", "workers"}).Json()[0]["state"], "draining");
}

TEST_F(DashboardApiTest, WithoutAnAdminTokenTheClientTokenActs) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(std::string("auth: { client_token: ") + kClient + " }\n"));
  token_ = kClient;
  admin_ = kClient;
  const std::string id = Submit("nobody-has-it");
  const HttpResponse r = Post("/api/v1/tasks/" + id + "/cancel");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Json(r), (json{{"id", id}, {"state", "cancelled"}}));
  EXPECT_EQ(Ctl({"--json", "status", id}).Json()["state"], "cancelled");
}

TEST_F(DashboardApiTest, AnswersWithTheObjectsPincerctlPrints) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  auto w = Worker("same-shape", {"text"});
  ASSERT_TRUE(w);
  w->StartAuto();
  CtlResult done =
      Ctl({"--json", "submit", "--skill", "text", "--payload", R"({"s":"</script>"})", "--wait"});
  ASSERT_EQ(done.exit_code, 0) << done;
  const std::string id = done.Json()["id"];
  const std::string queued = Submit("gpu", R"({"frame":1})");

  // status ID: what pincerctl prints.
  const HttpResponse task = Get("/api/v1/tasks/" + id);
  ASSERT_EQ(task.status, 200) << task.body;
  EXPECT_EQ(Json(task), Ctl({"--json", "status", id}).Json());
  // tasks: the array pincerctl prints, newest first, with the total.
  const HttpResponse tasks = Get("/api/v1/tasks");
  ASSERT_EQ(tasks.status, 200) << tasks.body;
  EXPECT_EQ(Json(tasks), Ctl({"--json", "tasks"}).Json());
  EXPECT_EQ(tasks.headers.at("x-total-count"), "2");
  const json only = Json(Get("/api/v1/tasks?state=queued&limit=5"));
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0]["id"], queued);
  const HttpResponse page = Get("/api/v1/tasks?limit=1");
  EXPECT_EQ(Json(page).size(), 1u);
  EXPECT_EQ(page.headers.at("x-next-after"), queued);
  EXPECT_EQ(Json(Get("/api/v1/tasks?limit=1&after=" + queued))[0]["id"], id);
  // stats and workers: the same fields (the counters move between calls
  // only by time: usage and uptimes).
  const json stats = Json(Get("/api/v1/stats"));
  const json ctl_stats = Ctl({"--json", "stats"}).Json();
  for (const auto& [key, value] : ctl_stats.items()) {
    EXPECT_TRUE(stats.contains(key)) << key;
  }
  EXPECT_EQ(stats["succeeded"], 1);
  EXPECT_EQ(stats["queued"], 1);
  const json workers = Json(Get("/api/v1/workers"));
  const json ctl_workers = Ctl({"--json", "workers"}).Json();
  ASSERT_EQ(workers.size(), 1u);
  for (const auto& [key, value] : ctl_workers[0].items()) {
    EXPECT_TRUE(workers[0].contains(key)) << key;
  }
  EXPECT_EQ(workers[0]["completed"], 1);
  EXPECT_TRUE(workers[0]["last_seen_ms"].is_number());
  EXPECT_EQ(Json(Get("/api/v1/pools")), Ctl({"--json", "pools"}).Json());

  // queues: by skill set, with the depth and why.
  const json queues = Json(Get("/api/v1/queues"));
  ASSERT_EQ(queues.size(), 1u) << queues.dump();
  EXPECT_EQ(queues[0]["label"], "gpu");
  EXPECT_EQ(queues[0]["depth"], 1);
  EXPECT_EQ(queues[0]["unroutable"], 1);
  EXPECT_EQ(queues[0]["why_code"], "missing_skill");
  EXPECT_EQ(queues[0]["oldest_id"], queued);

  // history: the task that ended is counted in the last 15 minutes.
  const json history = Json(Get("/api/v1/history"));
  int succeeded = 0;
  for (const auto& n : history["ended"]["succeeded"]) succeeded += n.get<int>();
  EXPECT_EQ(succeeded, 1) << history.dump();
  EXPECT_EQ(history["ended"]["succeeded"].size(), 90u);

  // The page comes with the same data, escaped for its <script> element.
  auto html = HttpRequest(http_, "GET", "/");
  ASSERT_TRUE(html);
  EXPECT_EQ(html->status, 200);
  EXPECT_NE(html->body.find("same-shape"), std::string::npos);
  EXPECT_EQ(html->body.find("</script>\""), std::string::npos);
}

TEST_F(DashboardApiTest, CancelAndRetryFromTheApi) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  auto w = Worker("fails", {"text"});
  ASSERT_TRUE(w);
  AutoOptions fail;
  fail.handler = [](const json&) {
    TaskReply r;
    r.ok = false;
    r.error = "broken";
    r.retryable = false;
    return r;
  };
  w->StartAuto(fail);
  CtlResult failed = Ctl({"--json", "submit", "--skill", "text", "--payload", "1", "--wait"});
  const std::string id = failed.Json()["id"];
  ASSERT_EQ(failed.Json()["state"], "failed") << failed;

  // A dead task back to the queue: it runs again (and fails again).
  const HttpResponse retry = Post("/api/v1/tasks/" + id + "/retry");
  ASSERT_EQ(retry.status, 200) << retry.body;
  EXPECT_EQ(Json(retry), (json{{"id", id}, {"state", "queued"}}));
  EXPECT_TRUE(WaitFor([&] { return w->tasks_received() == 2; }));
  // Retrying a task that is not dead, cancelling one that has ended.
  const std::string queued = Submit("gpu");
  ExpectError(Post("/api/v1/tasks/" + queued + "/retry"), 409, "invalid_state");
  ASSERT_TRUE(WaitFor([&] { return Ctl({"--json", "status", id}).Json()["state"] == "failed"; }));
  ExpectError(Post("/api/v1/tasks/" + id + "/cancel"), 409, "invalid_state");
  // A queued task cancelled (through "localhost": a name, but this machine's).
  const HttpResponse cancel = Post("/api/v1/tasks/" + queued + "/cancel",
                                   {{"Host", "localhost" + http_.substr(http_.rfind(':'))}});
  ASSERT_EQ(cancel.status, 200) << cancel.body;
  EXPECT_EQ(Ctl({"--json", "status", queued}).Json()["state"], "cancelled");
  // And through an IPv6 address.
  const std::string other = Submit("gpu");
  ASSERT_EQ(Post("/api/v1/tasks/" + other + "/cancel", {{"Host", "[::1]:9464"}}).status, 200);
  EXPECT_EQ(Ctl({"--json", "status", other}).Json()["state"], "cancelled");
}

TEST_F(DashboardApiTest, BadRequestsGetAJsonErrorAndChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  auto w = Worker("steady", {"text"});
  ASSERT_TRUE(w);
  const std::string queued = Submit("gpu");

  ExpectError(Get("/api/v1/tasks/t999999"), 404, "not_found");
  ExpectError(Get("/api/v1/tasks/banana"), 404, "not_found");
  ExpectError(Get("/api/v1/tasks/"), 404, "not_found");
  ExpectError(Post("/api/v1/tasks/t999999/cancel"), 404, "not_found");
  ExpectError(Post("/api/v1/tasks/banana/retry"), 404, "not_found");
  ExpectError(Post("/api/v1/tasks/" + queued + "/explode"), 404, "not_found");
  ExpectError(Post("/api/v1/workers/w999999/drain"), 404, "not_found");
  ExpectError(Post("/api/v1/workers/" + w->id() + "/pause"), 404, "not_found");
  ExpectError(Get("/api/v1/nothing"), 404, "not_found");
  ExpectError(Get("/api/v2/stats"), 404, "not_found");
  ExpectError(Get("/api/v1/tasks?limit=abc"), 400, "invalid_request");
  ExpectError(Get("/api/v1/tasks?limit=0"), 400, "invalid_request");
  ExpectError(Get("/api/v1/tasks?limit=1001"), 400, "invalid_request");
  ExpectError(Get("/api/v1/tasks?state=sleeping"), 400, "invalid_request");
  ExpectError(Get("/api/v1/tasks?order=sideways"), 400, "invalid_request");
  ExpectError(Get("/api/v1/tasks?after=banana"), 400, "invalid_request");
  ExpectError(Get("/api/v1/tasks?colour=red"), 400, "invalid_request");
  ExpectError(Get("/api/v1/tasks?state=queued&state=running"), 400, "invalid_request");
  ExpectError(Get("/api/v1/workers?x=1"), 400, "invalid_request");
  // Methods: reads are GET, actions POST.
  ExpectError(Get("/api/v1/workers/" + w->id() + "/drain"), 405, "method_not_allowed");
  ExpectError(Get("/api/v1/tasks/" + queued + "/cancel"), 405, "method_not_allowed");
  ExpectError(Post("/api/v1/stats"), 405, "method_not_allowed");
  auto put = HttpRequest(http_, "PUT", "/api/v1/tasks/" + queued);
  ASSERT_TRUE(put);
  ExpectError(*put, 405, "method_not_allowed");
  // Without tokens, an action through a DNS name could come from another
  // site's page (DNS rebinding): only through an address.
  ExpectError(Post("/api/v1/workers/" + w->id() + "/drain", {{"Host", "evil.example:80"}}), 403,
              "forbidden");
  ExpectError(Post("/api/v1/workers/" + w->id() + "/drain",
                   {{"Host", "evil.example"}, {"Origin", "http://evil.example"}}),
              403, "forbidden");
  auto big = HttpRequest(http_, "POST", "/api/v1/tasks/" + queued + "/cancel", {},
                         std::string(100000, 'x'));
  ASSERT_TRUE(big);
  ExpectError(*big, 413, "too_large");
  // Files that are not there.
  auto missing = HttpRequest(http_, "GET", "/secret.txt");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  // Nothing changed.
  EXPECT_FALSE(w->drain_received());
  EXPECT_EQ(Ctl({"--json", "status", queued}).Json()["state"], "queued");
  EXPECT_EQ(Ctl({"--json", "workers"}).Json()[0]["state"], "ready");
  // /metrics and /healthz are where they were.
  EXPECT_EQ(HttpGet(http_, "/metrics")->status, 200);
  EXPECT_EQ(HttpGet(http_, "/healthz")->status, 200);
}

}  // namespace
}  // namespace pincer::test
