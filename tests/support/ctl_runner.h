// Running the real pincerctl binary from tests and looking at what it did.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "support/subprocess.h"

namespace pincer::test {

struct CtlResult {
  int exit_code = -1;
  std::string out;
  std::string err;

  // stdout parsed as one JSON value; null (discarded) when it is not JSON.
  nlohmann::json Json() const;
  // stdout's lines, without their newlines.
  std::vector<std::string> Lines() const;
};

// For gtest messages: exit code, stdout and stderr.
std::ostream& operator<<(std::ostream& os, const CtlResult& result);

struct CtlOptions {
  std::string stdin_text;
  EnvChanges env;  // PINCER_ADDR, PINCER_TOKEN and PINCER_TLS_* are cleared unless set here
  std::chrono::milliseconds timeout{60000};
};

// Runs `${PINCER_BUILD_DIR}/pincerctl --addr ADDR ARGS...`; with an empty
// `addr`, no --addr is passed (to test the env default).
CtlResult RunCtl(const std::string& addr, const std::vector<std::string>& args,
                 const CtlOptions& options = {});

}  // namespace pincer::test
