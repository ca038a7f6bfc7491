// pincerd: the dispatcher daemon. Parses the command line, loads the
// config, and runs the Daemon until it is shut down.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <asio.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>

#include "config/command_check.h"
#include "config/config.h"
#include "daemon/daemon.h"
#include "pincer/version.h"

namespace {

// Every connection is a descriptor, and the soft limit is often 1024 while
// limits.max_connections is 10,000: raise the soft limit to the hard one,
// as daemons that need many descriptors are expected to. When even that is
// too low, accepting pauses while no descriptor is free (net/listener.cc).
void RaiseOpenFileLimit(std::size_t max_connections) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  const rlim_t want = lim.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : lim.rlim_max;
  if (lim.rlim_cur < want) {
    rlimit raised = lim;
    raised.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) lim = raised;
  }
  if (lim.rlim_cur < max_connections + 64) {
    spdlog::warn(
        "the open file limit ({}) is below limits.max_connections ({}); connections past it wait "
        "until others close (raise LimitNOFILE / ulimit -n)",
        lim.rlim_cur, max_connections);
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pincerd: the pincer task dispatcher daemon"};
  std::string config_path;
  std::string check_path;
  std::string listen;
  std::string log_level;
  std::string address_file;
  app.add_option("-c,--config", config_path,
                 "config file (YAML or JSON); without it pincerd runs on the defaults with a "
                 "memory store: tasks do not survive a restart");
  app.add_option("--check-config", check_path, "validate FILE and exit (0 when valid)");
  app.add_option("--listen", listen, "override `listen` (host:port; port 0 picks one)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off");
  app.add_option("--address-file", address_file,
                 "write the bound TCP address to FILE once listening");
  app.set_version_flag("--version", std::string("pincerd ") + pincer::kVersion);
  CLI11_PARSE(app, argc, argv);

  auto logger = spdlog::stderr_color_mt("pincerd");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  if (!check_path.empty()) {
    pincer::ConfigResult r = pincer::LoadConfig(check_path);
    if (!r.ok()) {
      std::cerr << r.error->message << "\n";
      return 1;
    }
    const char* path = std::getenv("PATH");
    for (const std::string& warning : pincer::PoolCommandWarnings(*r.config, path ? path : "")) {
      std::cerr << check_path << ": warning: " << warning << "\n";
    }
    std::cerr << check_path << ": ok\n";
    return 0;
  }

  pincer::Config config;
  if (!config_path.empty()) {
    pincer::ConfigResult r = pincer::LoadConfig(config_path);
    if (!r.ok()) {
      spdlog::critical("{}", r.error->message);
      return 2;
    }
    config = std::move(*r.config);
  } else {
    // No config file: nothing to keep tasks in.
    config.store.kind = pincer::StoreKind::kMemory;
  }
  if (!listen.empty()) config.listen = listen;
  if (!log_level.empty()) config.log_level = log_level;
  const bool no_config_file = config_path.empty();
  auto level = spdlog::level::from_str(config.log_level);
  if (level == spdlog::level::off && config.log_level != "off") {
    spdlog::critical("unknown log level '{}'", config.log_level);
    return 2;
  }
  spdlog::set_level(level);
  if (no_config_file) {
    spdlog::warn(
        "no --config: running on the defaults with a memory store; tasks are lost "
        "when pincerd stops (pincerd --config FILE keeps them, see "
        "docs/configuration.md)");
  }
  std::signal(SIGPIPE, SIG_IGN);
  // Past a file-size limit (systemd's LimitFSIZE=, ulimit -f) a store write
  // fails with EFBIG: pincerd refuses submits until it works again
  // (/healthz says 503), instead of being killed by SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
  RaiseOpenFileLimit(config.limits.max_connections);

  asio::io_context io(1);
  pincer::Daemon daemon(io, std::move(config), {config_path, address_file});
  if (pincer::Status st = daemon.Start(); !st.ok()) {
    // Another pincerd has the data_dir.
    if (st.code() == "data_dir_in_use") {
      spdlog::critical("{}", st.message());
      return pincer::DataDirLock::kInUseExitCode;
    }
    spdlog::critical("cannot start: {}", st.message());
    return 1;
  }
  spdlog::info("pincerd {} ready", pincer::kVersion);
  return daemon.Run();
}
