#include "support/worker_fixture.h"

#include <iostream>

#include "support/temp_dir.h"
#include "support/wait_for.h"

namespace pincer::test {

using nlohmann::json;

void WorkerFixture::StartDaemon(const std::string& extra_config) {
  daemon_ = std::make_unique<DaemonProcess>(
      "store: { kind: memory }\n"
      "heartbeat: { interval: 300ms, misses: 5 }\n" +
      extra_config);
  ASSERT_TRUE(daemon_->Start());
}

std::size_t WorkerFixture::StartWorkerProcess(const std::vector<std::string>& argv,
                                              const EnvChanges& env) {
  const std::size_t index = workers_.size();
  workers_.push_back(std::make_unique<ChildProcess>());
  EXPECT_EQ(workers_.back()->Start(argv, daemon_->dir() + "/worker.out", WorkerLogPath(index), env),
            "");
  return index;
}

std::string WorkerFixture::WorkerLogPath(std::size_t index) const {
  return daemon_->dir() + "/worker" + std::to_string(index) + ".err";
}

std::string WorkerFixture::WorkerLog(std::size_t index) const {
  return ReadFileOrEmpty(WorkerLogPath(index));
}

void WorkerFixture::TearDown() {
  if (HasFailure()) {
    for (std::size_t i = 0; i < workers_.size(); ++i) {
      std::cerr << "--- worker " << i << " stderr:\n" << WorkerLog(i);
    }
  }
  workers_.clear();  // kills what still runs
}

CtlResult WorkerFixture::Ctl(const std::vector<std::string>& args) const {
  return RunCtl(daemon_->address(), args);
}

std::optional<json> WorkerFixture::FindWorker(const std::string& name) const {
  CtlResult result = Ctl({"--json", "workers"});
  if (result.exit_code != 0 || !result.Json().is_array()) return std::nullopt;
  for (const json& w : result.Json()) {
    if (w.value("name", "") == name) return w;
  }
  return std::nullopt;
}

::testing::AssertionResult WorkerFixture::WaitForWorker(const std::string& name) const {
  if (WaitFor([&] { return FindWorker(name).has_value(); })) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "worker " << name << " never connected";
}

json WorkerFixture::SubmitWait(const std::vector<std::string>& args) const {
  std::vector<std::string> all = {"--json", "submit", "--wait"};
  all.insert(all.end(), args.begin(), args.end());
  CtlResult result = Ctl(all);
  EXPECT_TRUE(result.Json().is_object()) << result;
  return result.Json();
}

std::string WorkerFixture::Submit(const std::vector<std::string>& args) const {
  std::vector<std::string> all = {"submit"};
  all.insert(all.end(), args.begin(), args.end());
  CtlResult result = Ctl(all);
  EXPECT_EQ(result.exit_code, 0) << result;
  return result.Lines().empty() ? "" : result.Lines()[0];
}

json WorkerFixture::Status(const std::string& id) const {
  CtlResult result = Ctl({"--json", "status", id});
  return result.exit_code == 0 ? result.Json() : json();
}

}  // namespace pincer::test
