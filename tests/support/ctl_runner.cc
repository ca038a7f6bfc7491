#include "support/ctl_runner.h"

#include <sstream>

namespace pincer::test {

nlohmann::json CtlResult::Json() const {
  return nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
}

std::vector<std::string> CtlResult::Lines() const {
  std::vector<std::string> lines;
  std::istringstream stream(out);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

std::ostream& operator<<(std::ostream& os, const CtlResult& result) {
  return os << "pincerctl exit " << result.exit_code << "\n--- stdout ---\n"
            << result.out << "--- stderr ---\n"
            << result.err << "--------------";
}

CtlResult RunCtl(const std::string& addr, const std::vector<std::string>& args,
                 const CtlOptions& options) {
  std::vector<std::string> argv = {std::string(PINCER_BUILD_DIR) + "/pincerctl"};
  if (!addr.empty()) {
    argv.push_back("--addr");
    argv.push_back(addr);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  EnvChanges env = {{"PINCER_ADDR", std::nullopt},
                    {"PINCER_TOKEN", std::nullopt},
                    {"PINCER_TLS_CA", std::nullopt},
                    {"PINCER_TLS_CERT", std::nullopt},
                    {"PINCER_TLS_KEY", std::nullopt}};
  for (const auto& [name, value] : options.env) env[name] = value;
  ProcessResult run = RunProcess(argv, options.stdin_text, env, options.timeout);
  CtlResult result{run.exit_code, std::move(run.out), std::move(run.err)};
  if (run.timed_out) result.err += "\n[killed: pincerctl ran longer than the test's timeout]";
  return result;
}

}  // namespace pincer::test
