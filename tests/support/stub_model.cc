#include "support/stub_model.h"

#include <gtest/gtest.h>

#include <sstream>
#include <utility>

#include "support/wait_for.h"

namespace pincer::test {

StubModel::StubModel(std::vector<std::string> args) : args_(std::move(args)) {}

StubModel::~StubModel() {
  if (::testing::Test::HasFailure()) {
    std::cerr << "--- stub model stderr:\n" << ReadFileOrEmpty(dir_.Join("stub.err"));
  }
  Kill();
}

::testing::AssertionResult StubModel::Start() {
  std::vector<std::string> argv = {"/usr/bin/env", "python3",
                                   std::string(PINCER_SOURCE_DIR) + "/tests/support/stub_model.py",
                                   "--log", dir_.Join("requests.jsonl")};
  argv.insert(argv.end(), args_.begin(), args_.end());
  const std::string error = process_.Start(argv, dir_.Join("stub.out"), dir_.Join("stub.err"));
  if (!error.empty()) return ::testing::AssertionFailure() << "cannot start the stub: " << error;
  const bool up = WaitFor(
      [&] {
        const std::string out = ReadFileOrEmpty(dir_.Join("stub.out"));
        if (out.empty() || out.back() != '\n') return false;
        port_ = std::stoi(out);
        return true;
      },
      std::chrono::seconds(30));
  if (!up) {
    return ::testing::AssertionFailure()
           << "the stub printed no port; stderr: " << ReadFileOrEmpty(dir_.Join("stub.err"));
  }
  return ::testing::AssertionSuccess();
}

std::string StubModel::url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

std::vector<nlohmann::json> StubModel::Requests() const {
  std::vector<nlohmann::json> out;
  std::istringstream in(ReadFileOrEmpty(dir_.Join("requests.jsonl")));
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

std::vector<nlohmann::json> StubModel::ChatRequests() const {
  std::vector<nlohmann::json> out;
  for (auto& r : Requests()) {
    const std::string path = r.value("path", "");
    if (r.value("method", "") == "POST" && path.find("/chat/completions") != std::string::npos) {
      out.push_back(std::move(r));
    }
  }
  return out;
}

void StubModel::Kill() {
  if (process_.pid() > 0 && process_.running()) process_.KillGroup();
}

}  // namespace pincer::test
