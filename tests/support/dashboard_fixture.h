// A fixture for the dashboard's tests (tests/integration/dashboard_api_test,
// tests/browser/dashboard_test): a real pincerd serving its page and API on
// metrics_listen, and real workers connected to it by name.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "support/daemon_process.h"
#include "support/test_worker.h"

namespace pincer::test {

class DashboardFixture : public ::testing::Test {
 protected:
  // Starts pincerd with metrics_listen on a free loopback port, then
  // `config`; http_ is the bound address.
  void StartDaemon(const std::string& config = "") {
    daemon_ = std::make_unique<DaemonProcess>("metrics_listen: \"127.0.0.1:0\"\n" + config);
    ASSERT_TRUE(daemon_->Start());
    http_ = daemon_->WaitForMetricsAddress();
    ASSERT_FALSE(http_.empty()) << daemon_->ReadStderr();
  }

  // A worker named `name` offering `skills`; null (with a test failure)
  // when pincerd refuses it.
  std::unique_ptr<TestWorker> ConnectWorker(const std::string& name,
                                            std::vector<std::string> skills,
                                            const std::string& token, int capacity = 1) {
    TestWorkerOptions o;
    o.name = name;
    o.skills = std::move(skills);
    o.capacity = capacity;
    o.token = token;
    auto w = TestWorker::Connect(daemon_->address(), o);
    EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().ToString());
    return w.ok() ? std::move(w).value() : nullptr;
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::string http_;  // metrics_listen as bound
};

}  // namespace pincer::test
