#include "worker/http_call.h"

#include <curl/curl.h>

#include <cctype>
#include <string_view>
#include <utility>

namespace pincer::worker {

struct HttpCall::Shared {
  Shared(asio::io_context& io_in, HttpRequest request_in, Callbacks callbacks_in)
      : io(io_in), request(std::move(request_in)), callbacks(std::move(callbacks_in)) {}

  asio::io_context& io;
  HttpRequest request;
  Callbacks callbacks;  // used on the loop's thread only
  CURLM* multi = nullptr;
  // Set on the loop's thread, read by both: the request thread stops, and
  // handlers already posted do nothing.
  std::atomic<bool> aborted{false};
  std::atomic<bool> finished{false};
  // Set when the HttpCall is destroyed: on_finished must not run then.
  std::atomic<bool> destroyed{false};

  // Request thread only.
  CURL* easy = nullptr;
  HttpResponseHead head;
  bool head_sent = false;
};

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool HeaderIs(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':') return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(line[i])) != name[i]) return false;
  }
  return true;
}

}  // namespace

HttpCall::HttpCall(asio::io_context& io, HttpRequest request, Callbacks callbacks)
    : shared_(std::make_shared<Shared>(io, std::move(request), std::move(callbacks))) {
  shared_->multi = curl_multi_init();
  thread_ = std::thread([s = shared_] {
    auto post = [&s](auto f) {
      asio::post(s->io, [s, f = std::move(f)]() mutable {
        if (!s->aborted.load()) f();
      });
    };
    auto send_head = [&s, &post] {
      if (s->head_sent) return;
      s->head_sent = true;
      long status = 0;
      curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
      s->head.status = status;
      post([s, head = s->head] {
        if (s->callbacks.on_head) s->callbacks.on_head(head);
      });
    };

    HttpEnd end;
    CURL* easy = curl_easy_init();
    s->easy = easy;
    curl_slist* headers = nullptr;
    for (const auto& h : s->request.headers) headers = curl_slist_append(headers, h.c_str());
    headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip

    struct Ctx {
      std::shared_ptr<Shared> s;
      decltype(post)* post_fn;
      decltype(send_head)* head_fn;
    } ctx{s, &post, &send_head};

    curl_easy_setopt(easy, CURLOPT_URL, s->request.url.c_str());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(s->request.connect_timeout.count()));
    if (s->request.total_timeout.count() > 0) {
      curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                       static_cast<long>(s->request.total_timeout.count()));
    }
    if (s->request.post) {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(s->request.body.size()));
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, s->request.body.data());
    }
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, &ctx);
    curl_easy_setopt(
        easy, CURLOPT_HEADERFUNCTION, +[](char* data, size_t size, size_t n, void* user) -> size_t {
          auto* c = static_cast<Ctx*>(user);
          const std::string_view line(data, size * n);
          const std::string_view trimmed = Trim(line);
          if (line.rfind("HTTP/", 0) == 0) {
            c->s->head = HttpResponseHead{};  // a new response (after a 1xx)
          } else if (trimmed.empty()) {
            long status = 0;
            curl_easy_getinfo(c->s->easy, CURLINFO_RESPONSE_CODE, &status);
            if (status >= 200) (*c->head_fn)();
          } else if (HeaderIs(line, "retry-after")) {
            c->s->head.retry_after = std::string(Trim(line.substr(12)));
          } else if (HeaderIs(line, "content-type")) {
            c->s->head.content_type = std::string(Trim(line.substr(13)));
          }
          return size * n;
        });
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &ctx);
    curl_easy_setopt(
        easy, CURLOPT_WRITEFUNCTION, +[](char* data, size_t size, size_t n, void* user) -> size_t {
          auto* c = static_cast<Ctx*>(user);
          if (c->s->aborted.load()) return 0;
          (*c->head_fn)();
          (*c->post_fn)([s = c->s, chunk = std::string(data, size * n)]() mutable {
            if (s->callbacks.on_body) s->callbacks.on_body(std::move(chunk));
          });
          return size * n;
        });

    curl_multi_add_handle(s->multi, easy);
    int running = 1;
    CURLMcode mc = CURLM_OK;
    while (!s->aborted.load()) {
      mc = curl_multi_perform(s->multi, &running);
      if (mc != CURLM_OK || running == 0) break;
      mc = curl_multi_poll(s->multi, nullptr, 0, 1000, nullptr);
      if (mc != CURLM_OK) break;
    }
    if (!s->aborted.load()) {
      CURLcode code = CURLE_OK;
      bool have_code = false;
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(s->multi, &left)) {
        if (msg->msg == CURLMSG_DONE) {
          code = msg->data.result;
          have_code = true;
        }
      }
      if (mc != CURLM_OK) {
        end.transport_failed = true;
        end.transport_error = curl_multi_strerror(mc);
      } else if (!have_code || code != CURLE_OK) {
        end.transport_failed = true;
        end.transport_error = have_code ? curl_easy_strerror(code) : "transfer did not finish";
      } else {
        send_head();
      }
      long status = 0;
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
      end.status = status;
      post([s, end] {
        if (s->callbacks.on_end) s->callbacks.on_end(end);
      });
    }
    curl_multi_remove_handle(s->multi, easy);
    curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
    s->easy = nullptr;
    asio::post(s->io, [s] {
      s->finished.store(true);
      if (!s->destroyed.load() && s->callbacks.on_finished) s->callbacks.on_finished();
    });
  });
}

HttpCall::~HttpCall() {
  shared_->destroyed.store(true);
  Abort();
  if (thread_.joinable()) thread_.join();
  curl_multi_cleanup(shared_->multi);
}

void HttpCall::Abort() {
  if (shared_->aborted.exchange(true)) return;
  curl_multi_wakeup(shared_->multi);
}

bool HttpCall::finished() const { return shared_->finished.load(); }

}  // namespace pincer::worker
