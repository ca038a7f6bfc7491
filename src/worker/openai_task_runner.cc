#include "worker/openai_task_runner.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <utility>
#include <variant>

namespace pincer::worker {
namespace {

// Bytes of a non-2xx body kept for the error message.
constexpr std::size_t kErrorBodyCap = 4096;

}  // namespace

struct OpenAiTaskRunner::Call {
  Call(asio::io_context& io, std::size_t max_text) : sse(max_text + 4096), progress_timer(io) {
    reply.max_text = max_text;
  }

  std::string id;
  bool wanted = true;  // false once cancelled or reported
  bool cancelled = false;
  std::unique_ptr<HttpCall> http;
  openai::SseParser sse;
  openai::ChatReply reply;
  openai::HttpOutcome outcome;
  bool streaming = false;
  std::string body;  // a non-streamed reply, or the start of an error body
  std::string pending_progress;
  std::chrono::steady_clock::time_point last_progress{};
  bool progress_armed = false;
  asio::steady_timer progress_timer;
};

OpenAiTaskRunner::OpenAiTaskRunner(asio::io_context& io, OpenAiRunnerOptions options)
    : io_(io), options_(std::move(options)) {}

OpenAiTaskRunner::~OpenAiTaskRunner() = default;  // each HttpCall aborts and joins

OpenAiTaskRunner::Call* OpenAiTaskRunner::Find(uint64_t serial) {
  const auto it = calls_.find(serial);
  return it == calls_.end() ? nullptr : it->second.get();
}

std::vector<std::string> OpenAiTaskRunner::Headers(const OpenAiRunnerOptions& o,
                                                   const std::string& session) {
  std::vector<std::string> h = {"Content-Type: application/json",
                                "Accept: text/event-stream, application/json"};
  if (!o.api_key.empty()) h.push_back("Authorization: Bearer " + o.api_key);
  if (!o.session_header.empty() && !session.empty()) {
    h.push_back(o.session_header + ": " + session);
  }
  return h;
}

void OpenAiTaskRunner::Start(TaskSpec spec) {
  const uint64_t serial = next_serial_++;
  auto owned = std::make_unique<Call>(io_, options_.max_text);
  Call& c = *owned;
  c.id = spec.id;
  calls_.emplace(serial, std::move(owned));
  by_id_[spec.id] = serial;

  auto built = openai::BuildChatRequest(spec.payload, spec.session, options_.defaults);
  if (auto* error = std::get_if<std::string>(&built)) {
    // Reported from the loop, never from inside Start.
    asio::post(io_, [this, serial, error = *error] {
      if (Call* c = Find(serial); c != nullptr && c->wanted) {
        Finish(serial, {{"ok", false}, {"error", error}, {"retryable", false}}, false);
      }
      Erase(serial);
      if (gone_) gone_();
    });
    return;
  }
  HttpRequest request;
  request.url = options_.base_url + "/chat/completions";
  request.post = true;
  request.body = std::get<nlohmann::json>(built).dump(-1, ' ', false,
                                                      nlohmann::json::error_handler_t::replace);
  request.headers = Headers(options_, spec.session);
  request.connect_timeout = options_.connect_timeout;
  HttpCall::Callbacks cb;
  cb.on_head = [this, serial](const HttpResponseHead& head) { OnHead(serial, head); };
  cb.on_body = [this, serial](std::string chunk) { OnBody(serial, std::move(chunk)); };
  cb.on_end = [this, serial](const HttpEnd& end) { OnEnd(serial, end); };
  cb.on_finished = [this, serial] { OnFinished(serial); };
  c.http = std::make_unique<HttpCall>(io_, std::move(request), std::move(cb));
}

void OpenAiTaskRunner::OnHead(uint64_t serial, const HttpResponseHead& head) {
  Call* c = Find(serial);
  if (c == nullptr || !c->wanted) return;
  c->outcome.status = head.status;
  c->outcome.retry_after = head.retry_after;
  c->streaming = head.content_type.rfind("text/event-stream", 0) == 0;
}

void OpenAiTaskRunner::OnBody(uint64_t serial, std::string chunk) {
  Call* c = Find(serial);
  if (c == nullptr || !c->wanted) return;
  if (c->outcome.status < 200 || c->outcome.status > 299) {
    if (c->body.size() < kErrorBodyCap) c->body.append(chunk, 0, kErrorBodyCap - c->body.size());
    return;
  }
  if (c->streaming) {
    const bool fed = c->sse.Feed(chunk, [c](std::string_view data) {
      c->pending_progress += openai::ApplyStreamEvent(data, c->reply);
    });
    if (!fed) {
      c->http->Abort();
      Finish(serial,
             {{"ok", false},
              {"error", "the model endpoint sent an event longer than the reply limit"},
              {"retryable", false}},
             false);
      return;
    }
  } else if (c->body.size() + chunk.size() > options_.max_text + 65536) {
    c->reply.text_overflowed = true;
  } else {
    c->body += chunk;
  }
  if (c->reply.text_overflowed) {
    c->http->Abort();
    Finish(serial, openai::ChatResult(c->outcome, c->reply, std::time(nullptr)), false);
    return;
  }
  MaybeProgress(serial);
}

void OpenAiTaskRunner::OnEnd(uint64_t serial, const HttpEnd& end) {
  Call* c = Find(serial);
  if (c == nullptr || !c->wanted) return;
  c->outcome.transport_failed = end.transport_failed;
  c->outcome.transport_error = end.transport_error;
  if (end.status != 0) c->outcome.status = end.status;
  const bool ok_status = c->outcome.status >= 200 && c->outcome.status <= 299;
  if (!ok_status) {
    c->outcome.error_body = c->body;
  } else if (!c->streaming && !end.transport_failed) {
    if (!openai::ApplyWholeReply(c->body, c->reply)) {
      c->reply.error = "the reply is neither an event stream nor a chat completion";
    }
  }
  Finish(serial, openai::ChatResult(c->outcome, c->reply, std::time(nullptr)),
         end.transport_failed);
}

void OpenAiTaskRunner::OnFinished(uint64_t serial) {
  Call* c = Find(serial);
  if (c == nullptr) return;
  if (c->wanted) {
    // The thread ended without on_end: cannot happen unless aborted, but
    // never leave a task without an outcome.
    Finish(serial,
           {{"ok", false}, {"error", "the request ended unexpectedly"}, {"retryable", true}},
           false);
  }
  Erase(serial);
  if (gone_) gone_();
}

void OpenAiTaskRunner::Finish(uint64_t serial, nlohmann::json result, bool unreachable) {
  Call* c = Find(serial);
  if (c == nullptr || !c->wanted) return;
  c->wanted = false;
  c->progress_timer.cancel();
  by_id_.erase(c->id);
  TaskOutcome outcome;
  outcome.kind = TaskOutcome::Kind::kReply;
  outcome.stdout_total = c->reply.text.size();
  outcome.reply = std::move(result);
  const std::string id = c->id;
  if (done_) done_(id, std::move(outcome));
  if (unreachable && unreachable_) unreachable_();
}

void OpenAiTaskRunner::MaybeProgress(uint64_t serial) {
  Call* c = Find(serial);
  if (c == nullptr || c->pending_progress.empty() || c->progress_armed) return;
  const auto now = std::chrono::steady_clock::now();
  const auto due = c->last_progress + options_.progress_interval;
  if (now >= due) {
    EmitProgress(*c);
    return;
  }
  // Coalesce: whatever arrives until `due` goes out in one message.
  c->progress_armed = true;
  c->progress_timer.expires_at(due);
  c->progress_timer.async_wait([this, serial](std::error_code ec) {
    if (ec) return;
    Call* c = Find(serial);
    if (c == nullptr || !c->wanted) return;
    c->progress_armed = false;
    if (!c->pending_progress.empty()) EmitProgress(*c);
  });
}

void OpenAiTaskRunner::EmitProgress(Call& c) {
  c.last_progress = std::chrono::steady_clock::now();
  nlohmann::json data = {{"delta", std::move(c.pending_progress)},
                         {"text_bytes", c.reply.text.size()}};
  c.pending_progress.clear();
  if (progress_) progress_(c.id, std::move(data));
}

void OpenAiTaskRunner::Erase(uint64_t serial) {
  const auto it = calls_.find(serial);
  if (it == calls_.end()) return;
  const bool cancelled = it->second->cancelled;
  const std::string id = it->second->id;
  calls_.erase(it);
  if (cancelled && stopped_) stopped_(id);
}

bool OpenAiTaskRunner::Cancel(const std::string& id) {
  const auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  Call* c = Find(it->second);
  by_id_.erase(it);
  if (c != nullptr) {
    c->wanted = false;
    c->cancelled = true;
    c->progress_timer.cancel();
    if (c->http) c->http->Abort();  // its on_finished erases it
  }
  return true;
}

void OpenAiTaskRunner::CancelAll() {
  std::vector<std::string> ids;
  ids.reserve(by_id_.size());
  for (const auto& [id, serial] : by_id_) ids.push_back(id);
  for (const auto& id : ids) Cancel(id);
}

}  // namespace pincer::worker
