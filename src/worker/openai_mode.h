// The command-line side of `pincer-worker --openai URL`: its flags, the
// runner options they make (the API key read from its file), and the
// wiring that keeps the session away from pincerd while the endpoint is
// down.
#pragma once

#include <CLI/CLI.hpp>
#include <asio.hpp>
#include <memory>
#include <string>
#include <variant>

#include "worker/endpoint_probe.h"
#include "worker/openai_task_runner.h"
#include "worker/worker_session.h"

namespace pincer::worker {

struct OpenAiFlags {
  std::string url;  // empty: not in --openai mode
  std::string model;
  std::string api_key_file;
  std::string session_header;
  std::string health_url;  // default URL/models
  double probe_interval_s = 5.0;
  double progress_interval_s = 0.25;
};

void AddOpenAiFlags(CLI::App& app, OpenAiFlags& flags);

// The runner's options, or what is wrong with the flags (no key in the
// key file, a URL that is not http(s), ...).
std::variant<OpenAiRunnerOptions, std::string> MakeOpenAiRunnerOptions(const OpenAiFlags& flags,
                                                                       std::size_t max_text);

// Holds the session until the endpoint answers, then releases it; holds it
// again when the endpoint stops answering. REQUIRES: all three outlive
// the returned probe.
std::unique_ptr<EndpointProbe> AttachEndpointProbe(asio::io_context& io, const OpenAiFlags& flags,
                                                   const OpenAiRunnerOptions& runner_options,
                                                   WorkerSession& session,
                                                   OpenAiTaskRunner& runner);

}  // namespace pincer::worker
