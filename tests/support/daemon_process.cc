#include "support/daemon_process.h"

#include <signal.h>

#include <cctype>
#include <cstdio>
#include <iostream>
#include <regex>

#include "support/wait_for.h"

#ifndef PINCER_BUILD_DIR
#error "PINCER_BUILD_DIR must name the build directory (set in tests/CMakeLists.txt)"
#endif

namespace pincer::test {
namespace {

bool HasTopLevelKey(const std::string& yaml, const std::string& key) {
  return std::regex_search(yaml, std::regex("(^|\n)" + key + "[ \t]*:"));
}

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (auto pos = text.find(from); pos != std::string::npos;
       pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

// "HOST:PORT" with a numeric port, and nothing after it but whitespace.
bool LooksLikeAddress(const std::string& text) {
  return std::regex_match(text, std::regex("\\S+:[0-9]{1,5}\\s*"));
}

std::string Trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

}  // namespace

DaemonProcess::DaemonProcess(std::string config_yaml) {
  options_.config_yaml = std::move(config_yaml);
}

DaemonProcess::DaemonProcess(DaemonOptions options) : options_(std::move(options)) {}

DaemonProcess::~DaemonProcess() {
  if (process_) process_->KillGroup();
  if (::testing::Test::HasFailure()) {
    std::cerr << "----- pincerd stderr (" << dir() << "/pincerd.stderr) -----\n"
              << ReadStderr() << "----- end of pincerd stderr -----\n";
  }
}

std::string DaemonProcess::config_path() const { return dir_.Join("pincer.yaml"); }
std::string DaemonProcess::data_dir() const { return dir_.Join("data"); }

void DaemonProcess::SetConfig(std::string config_yaml) {
  options_.config_yaml = std::move(config_yaml);
  dir_.WriteFile("pincer.yaml", ComposeConfig());
}

std::string DaemonProcess::ComposeConfig() const {
  const std::string body = ReplaceAll(options_.config_yaml, "{dir}", dir());
  std::string header;
  if (!HasTopLevelKey(body, "listen")) {
    header += "listen: \"" + (listen_override_.empty() ? "127.0.0.1:0" : listen_override_) + "\"\n";
  }
  if (!HasTopLevelKey(body, "data_dir")) header += "data_dir: \"" + data_dir() + "\"\n";
  return header + body;
}

::testing::AssertionResult DaemonProcess::Start() {
  dir_.WriteFile("pincer.yaml", ComposeConfig());
  return Launch();
}

::testing::AssertionResult DaemonProcess::Restart() {
  if (running()) Terminate();
  // Reuse the port only when we picked it: a test that set `listen` meant it.
  if (!HasTopLevelKey(options_.config_yaml, "listen") && !address_.empty()) {
    listen_override_ = address_;
  }
  return Start();
}

::testing::AssertionResult DaemonProcess::Launch() {
  const std::string address_file = dir_.Join("addr");
  std::remove(address_file.c_str());
  address_.clear();

  std::vector<std::string> argv = {std::string(PINCER_BUILD_DIR) + "/pincerd", "--config",
                                   config_path(), "--address-file", address_file};
  argv.insert(argv.end(), options_.extra_args.begin(), options_.extra_args.end());
  argv.insert(argv.begin(), options_.prefix.begin(), options_.prefix.end());
  EnvChanges env = {{"PINCER_ADDR", std::nullopt},
                    {"PINCER_TOKEN", std::nullopt},
                    {"PINCER_TLS_CA", std::nullopt},
                    {"PINCER_TLS_CERT", std::nullopt},
                    {"PINCER_TLS_KEY", std::nullopt}};
  for (const auto& [name, value] : options_.env) env[name] = value;

  if (process_) process_->KillGroup();
  process_ = std::make_unique<ChildProcess>();
  sigterm_sent_ = false;
  const std::string stderr_path = dir_.Join("pincerd.stderr");
  if (std::string error = process_->Start(argv, dir_.Join("pincerd.stdout"), stderr_path, env);
      !error.empty()) {
    return ::testing::AssertionFailure() << error;
  }

  // pincerd writes the file once it listens. Read it twice in a row the
  // same, in case we catch it half written.
  std::string previous;
  const bool ready = WaitFor(
      [&] {
        if (!process_->running()) return true;  // fail fast below
        const std::string text = ReadFileOrEmpty(address_file);
        const bool stable = !text.empty() && text == previous && LooksLikeAddress(text);
        previous = text;
        return stable;
      },
      options_.start_timeout, std::chrono::milliseconds(10));
  if (!process_->running()) {
    return ::testing::AssertionFailure()
           << "pincerd exited with code " << process_->exit_code().value_or(-1)
           << " before listening; stderr:\n"
           << ReadStderr();
  }
  if (!ready) {
    return ::testing::AssertionFailure() << "pincerd did not write " << address_file << " within "
                                         << options_.start_timeout.count() << "ms; stderr:\n"
                                         << ReadStderr();
  }
  address_ = Trim(previous);
  return ::testing::AssertionSuccess();
}

void DaemonProcess::Kill9() {
  if (!process_) return;
  process_->Signal(SIGKILL);
  process_->Wait(std::chrono::seconds(10));
}

std::optional<int> DaemonProcess::Terminate(std::chrono::milliseconds timeout) {
  if (!process_) return std::nullopt;
  if (!process_->running()) return process_->exit_code();
  if (!sigterm_sent_) Signal(SIGTERM);
  std::optional<int> code = process_->Wait(timeout);
  if (!code) {
    process_->KillGroup();
    process_->Wait(std::chrono::seconds(10));
  }
  return code;
}

void DaemonProcess::Signal(int signal) {
  if (!process_) return;
  if (signal == SIGTERM) sigterm_sent_ = true;
  process_->Signal(signal);
}

std::string DaemonProcess::ReadStderr() const {
  return ReadFileOrEmpty(dir_.Join("pincerd.stderr"));
}

std::string DaemonProcess::WaitForMetricsAddress() const {
  const std::regex re("metrics on http://([^/ ]+)/metrics");
  std::string address;
  WaitFor([&] {
    const std::string err = ReadStderr();
    for (std::sregex_iterator it(err.begin(), err.end(), re), end; it != end; ++it) {
      address = (*it)[1];
    }
    return !address.empty();
  });
  return address;
}

}  // namespace pincer::test
