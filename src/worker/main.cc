// pincer-worker: connects to pincerd and runs COMMAND once per task. This
// file only turns the command line into WorkerOptions and wires the event
// loop; the protocol lives in worker_session, the processes in
// process_task_runner.
#include <curl/curl.h>
#include <pincer/version.h>
#include <signal.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <variant>
#include <vector>

#include "tls/tls_context.h"
#include "worker/child_process.h"
#include "worker/openai_mode.h"
#include "worker/process_task_runner.h"
#include "worker/worker_options.h"
#include "worker/worker_session.h"

namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? std::string(value) : fallback;
}

// COMMAND@HOST; POOL/N@HOST for a replica pincerd started (PINCER_POOL,
// PINCER_REPLICA), so the replicas of a pool tell apart in `pincerctl workers`.
std::string DefaultName(const std::vector<std::string>& command) {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  const std::string at = std::string("@") + (host[0] != '\0' ? host : "localhost");
  const std::string pool = EnvOr("PINCER_POOL", "");
  const std::string replica = EnvOr("PINCER_REPLICA", "");
  if (!pool.empty() && !replica.empty()) return pool + "/" + replica + at;
  std::string program = command.empty() ? "worker" : command.front();
  const auto slash = program.rfind('/');
  if (slash != std::string::npos) program = program.substr(slash + 1);
  return program + at;
}

}  // namespace

int main(int argc, char** argv) {
  namespace worker = pincer::worker;

  CLI::App app{
      "pincer-worker: connects to pincerd and runs COMMAND once per task.\n"
      "The task's payload is written to COMMAND's stdin; exit 0 reports its stdout\n"
      "as the output, anything else a failure with the tail of its stderr.",
      "pincer-worker"};
  app.set_version_flag("--version", std::string("pincer-worker ") + pincer::kVersion);
  app.footer("Example: pincer-worker --skill upper -- tr a-z A-Z");

  std::string addr = EnvOr("PINCER_ADDR", "127.0.0.1:7878");
  std::string token = EnvOr("PINCER_TOKEN", "");
  std::string unix_path;
  pincer::tls::ClientFiles tls_files{EnvOr("PINCER_TLS_CA", ""), EnvOr("PINCER_TLS_CERT", ""),
                                     EnvOr("PINCER_TLS_KEY", "")};
  std::string name;
  std::vector<std::string> skills;
  std::vector<std::string> labels;
  int capacity = 1;
  std::size_t max_frame_bytes = 16u << 20;
  double kill_grace_s = 2.0;
  std::string log_level = "info";
  std::vector<std::string> command;
  std::string output_mode = "auto";
  std::string permanent_codes = "3";
  bool envelope = false;

  app.add_option("--addr", addr,
                 "pincerd address HOST:PORT or unix:PATH; A,B tries each in turn, a leader and its "
                 "standbys (env PINCER_ADDR)")
      ->capture_default_str();
  app.add_option("--token", token, "worker token (env PINCER_TOKEN)");
  app.add_option("--unix", unix_path, "connect to this Unix socket instead of --addr");
  app.add_option("--tls-ca", tls_files.ca,
                 "speak TLS; pincerd's certificate must chain to a CA in this PEM file "
                 "(env PINCER_TLS_CA)");
  app.add_option("--tls-cert", tls_files.cert,
                 "client certificate (PEM), for a pincerd that requires one (env PINCER_TLS_CERT)");
  app.add_option("--tls-key", tls_files.key,
                 "the client certificate's private key (PEM) (env PINCER_TLS_KEY)");
  app.add_option(
      "--name", name,
      "name shown in `pincerctl workers` (default COMMAND@HOST; POOL/N@HOST when pincerd runs it)");
  app.add_option("--skill", skills, "a skill this worker offers (repeatable)")
      ->allow_extra_args(false);
  app.add_option("--label", labels, "KEY=VALUE shown in `pincerctl workers` (repeatable)")
      ->allow_extra_args(false);
  app.add_option("--capacity", capacity, "tasks run at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-frame-bytes", max_frame_bytes,
                 "the daemon's limits.max_frame_bytes; bounds lines and results")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 30));
  app.add_option("--kill-grace", kill_grace_s, "seconds between SIGTERM and SIGKILL on cancel")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  CLI::Option* output_opt =
      app.add_option(
             "--output", output_mode,
             "stdout as the output: auto (JSON when it parses, else text), text (always the "
             "exact text), json (must be JSON, else the task fails)")
          ->capture_default_str()
          ->check(CLI::IsMember({"auto", "text", "json"}));
  CLI::Option* permanent_opt =
      app.add_option(
             "--permanent-exit-codes", permanent_codes,
             "comma-separated exit codes that fail a task for good (not retried); \"\" for none")
          ->capture_default_str();
  CLI::Option* envelope_opt =
      app.add_flag("--envelope", envelope,
                   "stdout that is a JSON object with a boolean \"ok\" decides the result (its "
                   "\"status\", \"retryable\", \"error\"), whatever the exit status");
  app.add_option("command", command, "the command run per task (after --)");
  worker::OpenAiFlags openai;
  worker::AddOpenAiFlags(app, openai);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version land here too, with exit code 0; any real
    // usage error exits 2 like pincerctl's.
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (openai.url.empty() == command.empty()) {
    std::fprintf(stderr, "pincer-worker: %s\n%s",
                 command.empty() ? "give a COMMAND to run per task, or --openai URL"
                                 : "give either a COMMAND or --openai URL, not both",
                 "Run with --help for more information.\n");
    return 2;
  }

  if (!openai.url.empty() &&
      (output_opt->count() || permanent_opt->count() || envelope_opt->count())) {
    std::fprintf(
        stderr, "pincer-worker: %s\n%s",
        "--output, --permanent-exit-codes and --envelope apply to a COMMAND, not to --openai",
        "Run with --help for more information.\n");
    return 2;
  }

  auto logger = spdlog::stderr_color_st("pincer-worker");
  spdlog::set_default_logger(logger);
  if (!EnvOr("PINCER_SPAWN_ID", "").empty()) {
    // Run by pincerd, which logs each line with its own time and a
    // pool/replica tag: one timestamp and one tag per line, not two.
    spdlog::set_pattern("%l %v");
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ pincer-worker[%P]: %v");
  }
  spdlog::set_level(spdlog::level::from_str(log_level));

  worker::WorkerOptions options;
  const std::string target = unix_path.empty() ? addr : "unix:" + unix_path;
  auto addresses = pincer::client::ParseAddressList(target);
  if (!addresses.ok()) {
    spdlog::error("{}", addresses.error().message);
    return 2;
  }
  options.addresses = std::move(addresses).value();
  if (!tls_files.ca.empty() || !tls_files.cert.empty() || !tls_files.key.empty()) {
    std::string error;
    options.tls = pincer::tls::MakeClientContext(tls_files, &error);
    if (!options.tls) {
      spdlog::error("{}", error);
      return 2;
    }
  }
  options.hello.token = token;
  const std::vector<std::string> program =
      openai.url.empty() ? command : std::vector<std::string>{"openai"};
  options.hello.name = name.empty() ? DefaultName(program) : name;
  options.hello.skills = skills;
  options.hello.capacity = capacity;
  options.hello.spawn_id = EnvOr("PINCER_SPAWN_ID", "");
  for (const auto& label : labels) {
    const auto eq = label.find('=');
    if (eq == std::string::npos || eq == 0) {
      spdlog::error("bad --label \"{}\": expected KEY=VALUE", label);
      return 2;
    }
    options.hello.labels[label.substr(0, eq)] = label.substr(eq + 1);
  }
  options.command = command;
  options.max_frame_bytes = max_frame_bytes;
  options.result.output = output_mode == "text"   ? worker::ResultPolicy::Output::kText
                          : output_mode == "json" ? worker::ResultPolicy::Output::kJson
                                                  : worker::ResultPolicy::Output::kAuto;
  options.result.envelope = envelope;
  if (auto codes = worker::ParseExitCodes(permanent_codes)) {
    options.result.permanent_exit_codes = std::move(*codes);
  } else {
    spdlog::error(
        "bad --permanent-exit-codes \"{}\": expected exit codes 1..255 separated by commas",
        permanent_codes);
    return 2;
  }
  options.kill_grace = std::chrono::milliseconds(static_cast<int64_t>(kill_grace_s * 1000));

  worker::EnsureStdioOpen();
  // A task that closes its stdin early must not kill the worker with
  // SIGPIPE; the failed write is handled as an error instead.
  signal(SIGPIPE, SIG_IGN);

  asio::io_context io(1);
  std::unique_ptr<worker::TaskRunner> runner_owner;
  worker::OpenAiTaskRunner* openai_runner = nullptr;
  worker::OpenAiRunnerOptions openai_options;
  if (!openai.url.empty()) {
    auto made = worker::MakeOpenAiRunnerOptions(openai, options.max_frame_bytes);
    if (auto* error = std::get_if<std::string>(&made)) {
      spdlog::error("{}", *error);
      return 2;
    }
    openai_options = std::get<worker::OpenAiRunnerOptions>(std::move(made));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    auto owned = std::make_unique<worker::OpenAiTaskRunner>(io, openai_options);
    openai_runner = owned.get();
    runner_owner = std::move(owned);
  } else {
    worker::ProcessRunnerOptions runner_options;
    runner_options.command = options.command;
    runner_options.stdout_cap = options.max_frame_bytes;
    runner_options.kill_grace = options.kill_grace;
    runner_owner = std::make_unique<worker::ProcessTaskRunner>(io, runner_options);
  }
  worker::TaskRunner& runner = *runner_owner;

  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int exit_code = 0;
  worker::WorkerSession session(
      io, options, runner, [&rng, &unit] { return unit(rng); },
      [&io, &exit_code](int code) {
        exit_code = code;
        io.stop();
      });

  // The first signal drains (running tasks finish), a second one stops
  // at once.
  asio::signal_set stop_signals(io, SIGTERM, SIGINT);
  stop_signals.async_wait([&session, &stop_signals](std::error_code ec, int sig) {
    if (ec) return;
    spdlog::info("received signal {}; draining (send it again to stop at once)", sig);
    session.DrainAndExit();
    stop_signals.async_wait([&session](std::error_code ec2, int sig2) {
      if (ec2) return;
      spdlog::info("received signal {} again; stopping", sig2);
      session.Shutdown();
    });
  });

  spdlog::info("pincer-worker {} starting: {}{} (skills: {}, capacity {})", pincer::kVersion,
               target, options.tls && !target.starts_with("unix:") ? " (TLS)" : "",
               fmt::join(options.hello.skills, ","), capacity);
  std::unique_ptr<worker::EndpointProbe> probe;
  if (openai_runner != nullptr) {
    spdlog::info("tasks go to {}/chat/completions; waiting for the endpoint to answer",
                 openai_options.base_url);
    probe = worker::AttachEndpointProbe(io, openai, openai_options, session, *openai_runner);
    probe->Start();
  }
  session.Start();
  io.run();
  return exit_code;
}
