// The stub OpenAI-compatible model server (tests/support/stub_model.py) as
// a child of the test: started on port 0, its port read from its stdout,
// its request log read back as JSON.
#pragma once

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace pincer::test {

class StubModel {
 public:
  // `args`: stub_model.py flags (--fail-first 1, --hold-file F, ...).
  // --log is added.
  explicit StubModel(std::vector<std::string> args = {});
  ~StubModel();

  // Starts it and waits for its port. On failure the message holds its
  // stderr.
  ::testing::AssertionResult Start();
  int port() const { return port_; }
  // http://127.0.0.1:PORT/v1
  std::string url() const;
  const std::string& dir() const { return dir_.path(); }
  // Every request so far, oldest first: {"method","path","headers","body","t"}.
  std::vector<nlohmann::json> Requests() const;
  // Only the POSTs to .../chat/completions.
  std::vector<nlohmann::json> ChatRequests() const;
  void Kill();

 private:
  std::vector<std::string> args_;
  TempDir dir_{"stub-model"};
  ChildProcess process_;
  int port_ = 0;
};

}  // namespace pincer::test
