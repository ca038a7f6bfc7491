// Runs each task as one streamed chat-completions request to an
// OpenAI-compatible endpoint (pincer-worker --openai): the payload becomes
// the request, the streamed text becomes progress and the result. HTTP
// happens on a thread per request (HttpCall); everything here runs on the
// loop's thread.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "worker/http_call.h"
#include "worker/openai_chat.h"
#include "worker/task_runner.h"

namespace pincer::worker {

struct OpenAiRunnerOptions {
  std::string base_url;  // e.g. http://127.0.0.1:18790/v1, no trailing slash
  openai::ChatDefaults defaults;
  std::string api_key;         // sent as "Authorization: Bearer"; empty: none. Never logged.
  std::string session_header;  // also send the session in this header; empty: none
  std::size_t max_text = 16u << 20;
  std::chrono::milliseconds progress_interval{250};
  std::chrono::milliseconds connect_timeout{10000};
};

class OpenAiTaskRunner final : public TaskRunner {
 public:
  // REQUIRES: `io` outlives this object; curl_global_init was called.
  OpenAiTaskRunner(asio::io_context& io, OpenAiRunnerOptions options);
  ~OpenAiTaskRunner() override;

  void SetOnDone(DoneCallback done) override { done_ = std::move(done); }
  void SetOnProcessGone(std::function<void()> gone) override { gone_ = std::move(gone); }
  void SetOnStopped(StoppedCallback stopped) override { stopped_ = std::move(stopped); }
  void SetOnProgress(ProgressCallback progress) override { progress_ = std::move(progress); }
  // Called when a request could not reach the endpoint at all (the
  // health probe then checks it at once).
  void SetOnUnreachable(std::function<void()> f) { unreachable_ = std::move(f); }

  void Start(TaskSpec spec) override;
  bool Cancel(const std::string& id) override;
  void CancelAll() override;

  bool IsRunning(const std::string& id) const override { return by_id_.count(id) != 0; }
  std::size_t running() const override { return by_id_.size(); }
  // Requests whose thread has not finished yet, cancelled ones included.
  std::size_t processes() const override { return calls_.size(); }
  std::vector<pid_t> pids() const override { return {}; }

  // The request headers for a call (auth, session header, content type).
  static std::vector<std::string> Headers(const OpenAiRunnerOptions& o, const std::string& session);

 private:
  struct Call;

  void OnHead(uint64_t serial, const HttpResponseHead& head);
  void OnBody(uint64_t serial, std::string chunk);
  void OnEnd(uint64_t serial, const HttpEnd& end);
  void OnFinished(uint64_t serial);
  void Finish(uint64_t serial, nlohmann::json result, bool unreachable);
  // Erases a call whose request thread is done; a cancelled one is stopped.
  void Erase(uint64_t serial);
  void MaybeProgress(uint64_t serial);
  void EmitProgress(Call& c);
  Call* Find(uint64_t serial);

  asio::io_context& io_;
  OpenAiRunnerOptions options_;
  DoneCallback done_;
  std::function<void()> gone_;
  StoppedCallback stopped_;
  ProgressCallback progress_;
  std::function<void()> unreachable_;

  uint64_t next_serial_ = 1;
  std::map<uint64_t, std::unique_ptr<Call>> calls_;  // until the request thread finished
  std::unordered_map<std::string, uint64_t> by_id_;  // tasks whose outcome is wanted
};

}  // namespace pincer::worker
