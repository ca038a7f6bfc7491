// The dashboard (docs/dashboard.md) in a real browser: Debian's headless
// Chromium opens http://METRICS_LISTEN/ of a real pincerd with real
// workers and queued tasks, and the test reads the page as a person would
// see it: the workers by name, the queues with their counts; a drain
// clicked on the page reaches the worker. Label `browser`.
//
// The screenshot it takes is docs/img/dashboard.png: written to the build
// dir's docs/img/ on every run, and to the source tree's when
// PINCER_UPDATE_SCREENSHOT=1 (docs/testing.md).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "support/chromium.h"
#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/dashboard_fixture.h"
#include "support/http.h"
#include "support/test_worker.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

constexpr int kQueuedGpu = 7;

class DashboardBrowserTest : public DashboardFixture {
 protected:
  std::unique_ptr<TestWorker> Worker(const std::string& name, std::vector<std::string> skills,
                                     const std::string& token = "") {
    return ConnectWorker(name, std::move(skills), token, /*capacity=*/2);
  }

  // Submits the lines of a --batch file; every one must be accepted.
  void SubmitBatch(const std::string& lines, const std::string& token = "") {
    CtlOptions o;
    o.stdin_text = lines;
    if (!token.empty()) o.env["PINCER_TOKEN"] = token;
    CtlResult r = RunCtl(daemon_->address(), {"submit", "--batch", "-"}, o);
    ASSERT_EQ(r.exit_code, 0) << r;
  }

  void LaunchBrowser() {
    std::string error;
    browser_ = Chromium::Launch(error);
    ASSERT_TRUE(browser_) << error;
  }

  // Whether a JavaScript expression is true in the page now.
  bool PageSays(const std::string& expression) {
    auto v = browser_->Evaluate(expression);
    return v && *v == true;
  }
  std::string PageText(const std::string& expression) {
    auto v = browser_->Evaluate(expression);
    return v && v->is_string() ? v->get<std::string>() : "";
  }

  std::unique_ptr<Chromium> browser_;
};

TEST_F(DashboardBrowserTest, ShowsWorkersAndQueuesAndADrainFromThePageReachesTheWorker) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  auto alpha = Worker("alpha-worker", {"text", "upper"});
  auto beta = Worker("beta-worker", {"text"});
  ASSERT_TRUE(alpha && beta);
  // Some history for the charts and the recent list: tasks that succeed
  // and tasks that fail, on both workers.
  AutoOptions answer;
  answer.handler = [](const json& task) {
    TaskReply r;
    if (task.value("payload", json()).value("fail", false)) {
      r.ok = false;
      r.error = "asked to fail";
      r.retryable = false;
    } else {
      r.output = {{"echo", task.value("payload", json())}};
    }
    return r;
  };
  alpha->StartAuto(answer);
  beta->StartAuto(answer);
  std::string work;
  for (int i = 0; i < 12; ++i) {
    work +=
        json({{"skills", {"text"}}, {"payload", {{"n", i}, {"fail", i % 4 == 3}}}}).dump() + "\n";
  }
  ASSERT_NO_FATAL_FAILURE(SubmitBatch(work));
  ASSERT_TRUE(
      WaitWhileProgressing([&] { return alpha->results_sent() + beta->results_sent() == 12; },
                           [&] { return alpha->results_sent() + beta->results_sent(); }));
  // Seven tasks no worker can take: they wait, as a queue of their own.
  std::string gpu;
  for (int i = 0; i < kQueuedGpu; ++i) {
    gpu += json({{"skills", {"gpu"}}, {"payload", {{"frame", i}}}}).dump() + "\n";
  }
  ASSERT_NO_FATAL_FAILURE(SubmitBatch(gpu));

  ASSERT_NO_FATAL_FAILURE(LaunchBrowser());
  ASSERT_TRUE(browser_->Open("http://" + http_ + "/")) << browser_->log();

  // The workers by name, each in its row with its skills and state.
  ASSERT_TRUE(WaitFor(
      [&] {
        return PageSays(
            "!!document.querySelector('#workers tr[data-name=\"alpha-worker\"]') && "
            "!!document.querySelector('#workers tr[data-name=\"beta-worker\"]')");
      },
      seconds(30)))
      << browser_->log();
  EXPECT_EQ(PageText("document.querySelector('#workers tr[data-name=\"alpha-worker\"] td.name')"
                     ".textContent"),
            "alpha-worker");
  EXPECT_EQ(PageText("document.querySelector('#workers tr[data-name=\"alpha-worker\"]')"
                     ".cells[3].textContent"),
            "text,upper");
  EXPECT_EQ(PageText("document.querySelector('#workers tr[data-name=\"beta-worker\"]')"
                     ".cells[4].textContent"),
            "ready");

  // The gpu queue with its count and why it waits.
  ASSERT_TRUE(WaitFor([&] {
    return PageText(
               "(document.querySelector('#queues tr[data-skills=\"gpu\"] td.depth') || "
               "{}).textContent || ''") == std::to_string(kQueuedGpu);
  })) << browser_->log();
  EXPECT_EQ(PageText("document.querySelector('#queues tr[data-skills=\"gpu\"]').cells[3]"
                     ".textContent"),
            "no worker has skill gpu");
  // The counts (the page polls; the last results may land after it loaded).
  auto tile = [&](const std::string& stat) {
    return PageText("document.querySelector('#tiles [data-stat=\"" + stat +
                    "\"] .value').textContent");
  };
  EXPECT_TRUE(WaitFor([&] {
    return tile("queued") == std::to_string(kQueuedGpu) && tile("succeeded") == "9" &&
           tile("failed") == "3";
  })) << tile("queued")
      << " queued, " << tile("succeeded") << " succeeded, " << tile("failed") << " failed";
  // The last ended tasks, and one opened: its payload, output, error.
  EXPECT_TRUE(WaitFor([&] {
    return PageSays("document.querySelectorAll('#recent tr[data-task-row]').length == 12");
  })) << browser_->log();
  ASSERT_TRUE(
      PageSays("(() => { const a = document.querySelector('#recent a[data-task]'); "
               "a.click(); return true; })()"));
  ASSERT_TRUE(WaitFor([&] {
    return PageSays(
        "!document.getElementById('task').hidden && "
        "document.querySelector('#task-fields [data-field=\"payload\"]')"
        ".textContent.includes('\"n\"')");
  })) << browser_->log();
  // The charts were drawn (Chart.js, compiled into pincerd).
  EXPECT_TRUE(
      PageSays("typeof Chart === 'function' && "
               "!!Chart.getChart(document.getElementById('chart-throughput'))"))
      << browser_->log();

  // The picture for the README.
  const std::string shot_dir = std::string(PINCER_BUILD_DIR) + "/docs/img";
  std::filesystem::create_directories(shot_dir);
  EXPECT_TRUE(browser_->Screenshot(shot_dir + "/dashboard.png")) << browser_->log();
  if (const char* update = std::getenv("PINCER_UPDATE_SCREENSHOT"); update && *update == '1') {
    std::filesystem::copy_file(shot_dir + "/dashboard.png",
                               std::string(PINCER_SOURCE_DIR) + "/docs/img/dashboard.png",
                               std::filesystem::copy_options::overwrite_existing);
  }
  ASSERT_TRUE(
      PageSays("(() => { document.getElementById('task-close').click(); return true; })()"));

  // Drain beta from the page: the first click asks, the second drains.
  const std::string button =
      "document.querySelector('#workers tr[data-name=\"beta-worker\"] button[data-drain]')";
  ASSERT_TRUE(PageSays("(() => { " + button + ".click(); return true; })()")) << browser_->log();
  EXPECT_EQ(PageText(button + ".textContent"), "confirm drain");
  EXPECT_FALSE(beta->drain_received());
  ASSERT_TRUE(PageSays("(() => { " + button + ".click(); return true; })()")) << browser_->log();
  EXPECT_TRUE(WaitFor([&] { return beta->drain_received(); })) << browser_->log();
  EXPECT_FALSE(alpha->drain_received());
  // The page shows it.
  EXPECT_TRUE(WaitFor([&] {
    return PageText(
               "document.querySelector('#workers tr[data-name=\"beta-worker\"]')"
               ".cells[4].textContent") == "draining";
  })) << browser_->log();

  // Cancel the oldest gpu task from its panel (opened from the queue).
  ASSERT_TRUE(PageSays(
      "(() => { document.querySelector('#queues tr[data-skills=\"gpu\"] a[data-task]').click(); "
      "return true; })()"));
  ASSERT_TRUE(WaitFor([&] { return PageSays("!!document.querySelector('button[data-cancel]')"); }))
      << browser_->log();
  const std::string oldest = PageText("document.getElementById('task-id').textContent");
  ASSERT_FALSE(oldest.empty());
  const std::string cancel = "document.querySelector('button[data-cancel]')";
  ASSERT_TRUE(PageSays("(() => { " + cancel + ".click(); return true; })()"));
  ASSERT_TRUE(PageSays("(() => { " + cancel + ".click(); return true; })()"));
  EXPECT_TRUE(WaitFor([&] {
    return RunCtl(daemon_->address(), {"--json", "status", oldest}).Json().value("state", "") ==
           "cancelled";
  })) << browser_->log();
  EXPECT_TRUE(WaitFor([&] {
    return PageText(
               "(document.querySelector('#queues tr[data-skills=\"gpu\"] td.depth') || "
               "{}).textContent || ''") == std::to_string(kQueuedGpu - 1);
  })) << browser_->log();
}

// What a plain `chromium --headless --dump-dom URL` sees: the page comes
// with its data when pincerd needs no token, so even a browser that only
// loads it and prints the DOM shows the workers and the counts.
TEST_F(DashboardBrowserTest, DumpDomShowsWorkerNamesAndQueueCounts) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon());
  auto one = Worker("render-node-1", {"render"});
  auto two = Worker("render-node-2", {"render"});
  ASSERT_TRUE(one && two);
  std::string gpu;
  for (int i = 0; i < kQueuedGpu; ++i)
    gpu += R"({"skills":["gpu"],"payload":1})"
           "\n";
  ASSERT_NO_FATAL_FAILURE(SubmitBatch(gpu));

  TempDir profile("chromium");
  ProcessResult r = RunProcess(
      {Chromium::Binary(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
       "--user-data-dir=" + profile.path(), "--dump-dom", "http://" + http_ + "/"},
      "", {}, seconds(120));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(">render-node-1<"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(">render-node-2<"), std::string::npos) << r.out;
  EXPECT_TRUE(std::regex_search(
      r.out, std::regex(R"(<tr data-skills="gpu" data-depth="7"><td class="skills">gpu</td>)"
                        R"(<td class="num depth">7</td>)")))
      << r.out;
}

// With auth.client_token set the page shows nothing until it is given the
// token, asks once, and keeps it for the tab (sessionStorage).
TEST_F(DashboardBrowserTest, AsksForTheClientTokenOnceAndKeepsItInTheTab) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon(
      "auth: { client_token: page-secret, worker_token: w-secret, admin_token: a-secret }\n"));
  auto w = Worker("secret-worker", {"text"}, "w-secret");
  ASSERT_TRUE(w);
  ASSERT_NO_FATAL_FAILURE(LaunchBrowser());
  ASSERT_TRUE(browser_->Open("http://" + http_ + "/")) << browser_->log();
  ASSERT_TRUE(WaitFor([&] { return PageSays("!document.getElementById('token-form').hidden"); }))
      << browser_->log();
  EXPECT_FALSE(PageSays("!!document.querySelector('#workers tr[data-name]')"));
  // A wrong token is refused and asked for again.
  const std::string give =
      "(() => { document.getElementById('token-input').value = '%s'; "
      "document.getElementById('token-form').requestSubmit(); "
      "return true; })()";
  auto with = [&](const std::string& token) {
    std::string s = give;
    s.replace(s.find("%s"), 2, token);
    return s;
  };
  ASSERT_TRUE(PageSays(with("not-it")));
  ASSERT_TRUE(WaitFor([&] {
    return PageText("document.getElementById('token-error').textContent").find("refused") !=
           std::string::npos;
  })) << browser_->log();
  ASSERT_TRUE(PageSays(with("page-secret")));
  ASSERT_TRUE(WaitFor([&] {
    return PageSays("!!document.querySelector('#workers tr[data-name=\"secret-worker\"]')");
  })) << browser_->log();
  EXPECT_EQ(PageText("sessionStorage.getItem('pincer.token')"), "page-secret");
  EXPECT_TRUE(PageSays("document.cookie === ''"));
  // A reload of the tab does not ask again.
  ASSERT_TRUE(PageSays("(() => { location.reload(); return true; })()"));
  ASSERT_TRUE(WaitFor([&] {
    return PageSays(
        "document.readyState === 'complete' && "
        "document.getElementById('token-form').hidden && "
        "!!document.querySelector('#workers tr[data-name=\"secret-worker\"]')");
  })) << browser_->log();
}

}  // namespace
}  // namespace pincer::test
