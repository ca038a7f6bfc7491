// A fixture for tests that run real worker processes (pincer-worker, the
// Python library's example) against a real pincerd and look at them the
// way an operator would, through pincerctl.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/subprocess.h"

namespace pincer::test {

class WorkerFixture : public ::testing::Test {
 protected:
  // A memory store and heartbeats every 300 ms, so a worker's state shows
  // quickly; `extra_config` is appended.
  void StartDaemon(const std::string& extra_config = "");

  // Starts `argv` as worker process number workers_.size() (returned), its
  // stderr in WorkerLogPath(index); `env` changes its environment.
  std::size_t StartWorkerProcess(const std::vector<std::string>& argv, const EnvChanges& env = {});
  std::string WorkerLogPath(std::size_t index) const;
  std::string WorkerLog(std::size_t index) const;

  // On failure, prints every worker's stderr; then stops the workers.
  void TearDown() override;

  CtlResult Ctl(const std::vector<std::string>& args) const;
  // The worker named `name` in `pincerctl workers --json`.
  std::optional<nlohmann::json> FindWorker(const std::string& name) const;
  ::testing::AssertionResult WaitForWorker(const std::string& name) const;
  // `pincerctl --json submit --wait ARGS`: the end state as an object.
  nlohmann::json SubmitWait(const std::vector<std::string>& args) const;
  // `pincerctl submit ARGS`: the task id.
  std::string Submit(const std::vector<std::string>& args) const;
  // `pincerctl --json status ID`; null when that fails.
  nlohmann::json Status(const std::string& id) const;

  std::unique_ptr<DaemonProcess> daemon_;
  std::vector<std::unique_ptr<ChildProcess>> workers_;
};

}  // namespace pincer::test
