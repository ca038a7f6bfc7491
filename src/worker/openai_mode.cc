#include "worker/openai_mode.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <iterator>
#include <utility>

namespace pincer::worker {

void AddOpenAiFlags(CLI::App& app, OpenAiFlags& flags) {
  auto* group = app.add_option_group("OpenAI-compatible endpoint (instead of COMMAND)");
  group->add_option("--openai", flags.url,
                    "POST each task to URL/chat/completions (e.g. http://127.0.0.1:18790/v1)");
  group->add_option("--model", flags.model, "model sent when the payload names none");
  group->add_option("--api-key-file", flags.api_key_file,
                    "file holding the key sent as Authorization: Bearer");
  group->add_option("--session-header", flags.session_header,
                    "also send the task's session in this header (x-openclaw-session-key)");
  group->add_option("--health-url", flags.health_url,
                    "URL that must answer 200 before tasks are taken (default URL/models)");
  group
      ->add_option("--probe-interval", flags.probe_interval_s,
                   "seconds between health probes while the endpoint is up")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 3600.0));
  group
      ->add_option("--progress-interval", flags.progress_interval_s,
                   "at most one progress message per this many seconds per task")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
}

std::variant<OpenAiRunnerOptions, std::string> MakeOpenAiRunnerOptions(const OpenAiFlags& flags,
                                                                       std::size_t max_text) {
  OpenAiRunnerOptions o;
  std::string url = flags.url;
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    return "bad --openai \"" + url + "\": expected an http:// or https:// URL";
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  o.base_url = url;
  o.defaults.model = flags.model;
  o.session_header = flags.session_header;
  if (o.session_header.find_first_of(":\r\n ") != std::string::npos) {
    return "bad --session-header \"" + o.session_header + "\": expected a header name";
  }
  if (!flags.api_key_file.empty()) {
    std::ifstream in(flags.api_key_file, std::ios::binary);
    if (!in) return "cannot read --api-key-file " + flags.api_key_file;
    std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r' || key.back() == ' ')) {
      key.pop_back();
    }
    if (key.empty()) return "--api-key-file " + flags.api_key_file + " is empty";
    if (key.find_first_of("\r\n") != std::string::npos) {
      return "--api-key-file " + flags.api_key_file + " holds more than one line";
    }
    o.api_key = std::move(key);
  }
  o.max_text = max_text;
  o.progress_interval =
      std::chrono::milliseconds(static_cast<int64_t>(flags.progress_interval_s * 1000));
  return o;
}

std::unique_ptr<EndpointProbe> AttachEndpointProbe(asio::io_context& io, const OpenAiFlags& flags,
                                                   const OpenAiRunnerOptions& runner_options,
                                                   WorkerSession& session,
                                                   OpenAiTaskRunner& runner) {
  ProbeOptions p;
  p.url = flags.health_url.empty() ? runner_options.base_url + "/models" : flags.health_url;
  if (!runner_options.api_key.empty()) {
    p.headers.push_back("Authorization: Bearer " + runner_options.api_key);
  }
  p.interval_up = std::chrono::milliseconds(static_cast<int64_t>(flags.probe_interval_s * 1000));
  p.interval_down = std::min(p.interval_up, std::chrono::milliseconds(1000));
  auto probe = std::make_unique<EndpointProbe>(
      io, std::move(p), [&session](bool up, const std::string& why) {
        if (up) {
          session.Release();
        } else {
          session.Hold("the model endpoint answers again (" + why + ")");
        }
      });
  EndpointProbe* raw = probe.get();
  runner.SetOnUnreachable([raw] { raw->CheckNow(); });
  session.Hold("the model endpoint answers");
  return probe;
}

}  // namespace pincer::worker
