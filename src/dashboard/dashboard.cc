#include "dashboard/dashboard.h"

#include <CivetServer.h>
#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>

#include "common/clock.h"
#include "common/token.h"
#include "dashboard/assets.h"
#include "dashboard/queues.h"

namespace pincer {
namespace {

using nlohmann::json;

// The connection id the dashboard's requests carry into ClientApi; its
// answers go to Dashboard::Capture, never to a peer.
constexpr ConnId kDashboardConn = ~ConnId{0};
// A request body is never needed (actions are in the path); more than this
// is refused unread.
constexpr long long kMaxBody = 4096;

std::string JsonText(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

Dashboard::Response JsonResponse(const json& v, int status = 200) {
  Dashboard::Response r;
  r.status = status;
  r.body = JsonText(v);
  return r;
}

// The part of `path` after `prefix`, when it starts with it.
bool StripPrefix(std::string_view path, std::string_view prefix, std::string_view& rest) {
  if (path.substr(0, prefix.size()) != prefix) return false;
  rest = path.substr(prefix.size());
  return true;
}

std::string_view ContentTypeOf(std::string_view name) {
  auto ends = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
  };
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  return "text/html; charset=utf-8";
}

// "Bearer TOKEN" -> TOKEN; "" when the header is absent or another scheme.
std::string_view BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "Bearer ";
  if (header.size() <= kScheme.size()) return {};
  for (std::size_t i = 0; i < kScheme.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(header[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i]))) {
      return {};
    }
  }
  header.remove_prefix(kScheme.size());
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  return header;
}

// A request from a page of another site: its Origin is not this server's
// (as the browser reached it, by Host), or the browser says cross-site.
// Requests without Origin (curl, scripts) are not from a page.
bool CrossSite(const Dashboard::Request& r) {
  if (r.fetch_site == "cross-site" || r.fetch_site == "same-site") return true;
  if (r.origin.empty()) return false;
  return r.origin != "http://" + r.host && r.origin != "https://" + r.host;
}

// Whether the Host header names this machine by address ("127.0.0.1:9464",
// "[::1]:9464", "localhost:9464"), not by a DNS name. Without tokens, a
// name could be another site's, pointed at this address (DNS rebinding):
// its pages would then be same-origin with the dashboard.
bool HostIsAddress(std::string_view host) {
  std::string name(host);
  if (!name.empty() && name.front() == '[') {
    const auto close = name.find(']');
    if (close == std::string::npos) return false;
    name = name.substr(1, close - 1);
  } else if (const auto colon = name.rfind(':'); colon != std::string::npos) {
    name = name.substr(0, colon);
  }
  if (name == "localhost") return true;
  unsigned char addr[sizeof(in6_addr)];
  return inet_pton(AF_INET, name.c_str(), addr) == 1 ||
         inet_pton(AF_INET6, name.c_str(), addr) == 1;
}

// The query's parameters; an error for a malformed query, an unknown
// parameter or one given twice.
struct Query {
  std::map<std::string, std::string> values;
  std::string error;
};
Query ParseQuery(const std::string& query, std::initializer_list<std::string_view> known) {
  Query q;
  if (query.empty()) return q;
  std::string copy = query;  // mg_split_form_urlencoded decodes in place
  std::vector<mg_header> fields(64);
  const int n =
      mg_split_form_urlencoded(copy.data(), fields.data(), static_cast<unsigned>(fields.size()));
  if (n < 0) {
    q.error = "malformed query";
    return q;
  }
  for (int i = 0; i < n; ++i) {
    const std::string name = fields[i].name ? fields[i].name : "";
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      std::string list;
      for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      q.error = "unknown parameter '" + name + "' (known: " + list + ")";
      return q;
    }
    if (!q.values.emplace(name, fields[i].value ? fields[i].value : "").second) {
      q.error = "parameter '" + name + "' given twice";
      return q;
    }
  }
  return q;
}

// A task view without the carried values, for lists that only show it.
json Summary(json task) {
  for (const char* k : {"payload", "output", "progress"}) {
    if (task.contains(k)) task[k] = nullptr;
  }
  return task;
}

}  // namespace

int HttpStatusFor(const std::string& code) {
  if (code == "not_found") return 404;
  if (code == "unauthorized") return 401;
  if (code == "forbidden" || code == "cross_site") return 403;
  if (code == "method_not_allowed") return 405;
  if (code == "invalid_state") return 409;
  if (code == "too_large") return 413;
  if (code == "unavailable" || code == "store_unavailable" || code == "shutting_down") return 503;
  return 400;  // invalid_request and any other refusal of the request itself
}

Dashboard::Response ErrorResponse(const std::string& code, const std::string& message) {
  Dashboard::Response r =
      JsonResponse({{"error", {{"code", code}, {"message", message}}}}, HttpStatusFor(code));
  if (r.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"pincer\"");
  return r;
}

// ClientApi's answers for the dashboard's own connection id.
class Dashboard::Capture final : public Outbox {
 public:
  std::string* Buffer(ConnId) override { return &out_; }
  // The dashboard submits nothing.
  void Accepted(ConnId, const SubmitAck&, std::size_t) override {}
  void Close(ConnId) override {}
  std::string Take() {
    std::string s;
    s.swap(out_);
    return s;
  }

 private:
  std::string out_;
};

Dashboard::Dashboard(Dispatcher& dispatcher, Metrics& metrics, ClientApi::Hooks api_hooks,
                     DashboardHooks hooks)
    : dispatcher_(dispatcher),
      metrics_(metrics),
      capture_(std::make_unique<Capture>()),
      api_(dispatcher, *capture_, api_hooks),
      api_hooks_(std::move(api_hooks)),
      hooks_(std::move(hooks)) {}

std::vector<std::string> Dashboard::Uris() {
  return {"/", "/index.html", "/app.js", "/app.css", "/chart.min.js", "/api"};
}

Dashboard::Response Dashboard::Serve(const Request& request) {
  // The files but the page itself need nothing from the loop.
  if (request.path != "/" && request.path != "/index.html" && request.path.rfind("/api", 0) != 0) {
    if (request.method != "GET" && request.method != "HEAD") {
      return ErrorResponse("method_not_allowed",
                           request.method + " " + request.path + ": only GET");
    }
    auto file = dashboard::FindAsset(request.path);
    if (!file) return ErrorResponse("not_found", "no file " + request.path);
    Response r;
    r.content_type = std::string(ContentTypeOf(request.path));
    r.body = std::string(*file);
    r.headers.emplace_back("Cache-Control", "max-age=300");
    return r;
  }
  auto out = std::make_shared<Response>(
      ErrorResponse("unavailable", "pincerd's event loop is not answering"));
  // On a timeout the closure may run later: it holds only copies.
  if (!metrics_.OnLoop([this, out, request] { *out = Answer(request); })) {
    return ErrorResponse("unavailable", "pincerd's event loop is not answering");
  }
  return *out;
}

Dashboard::Response Dashboard::Answer(const Request& r) {
  const AuthConfig auth = hooks_.auth ? hooks_.auth() : AuthConfig{};
  if (r.path == "/" || r.path == "/index.html") {
    if (r.method != "GET" && r.method != "HEAD") {
      return ErrorResponse("method_not_allowed", r.method + " " + r.path + ": only GET");
    }
    return Page(auth);
  }
  return Api(r, auth);
}

Dashboard::Response Dashboard::Page(const AuthConfig& auth) {
  Response r;
  r.content_type = "text/html; charset=utf-8";
  r.body = std::string(dashboard::FindAsset("/").value_or(""));
  r.headers.emplace_back("Cache-Control", "no-store");
  // Without a client token anyone may read the API, so the page comes with
  // its first data: it shows at once, and a browser that only loads it
  // (chromium --dump-dom) sees it whole. With a token it asks for one.
  std::string state = "null";
  if (auth.client_token.empty()) {
    json first = Overview();
    first["auth"] = {{"client", false}, {"admin", !auth.admin_token.empty()}};
    state = JsonText(first);
    // In a <script> element: no "</script>" may appear. '<' occurs only
    // inside strings in JSON text, where \u003c means the same.
    std::string escaped;
    escaped.reserve(state.size());
    for (char c : state) {
      if (c == '<') {
        escaped += "\\u003c";
      } else {
        escaped += c;
      }
    }
    state.swap(escaped);
  }
  constexpr std::string_view kMark = "<!--PINCER_STATE-->";
  if (auto at = r.body.find(kMark); at != std::string::npos) {
    r.body.replace(at, kMark.size(),
                   "<script id=\"pincer-state\" type=\"application/json\">" + state + "</script>");
  }
  return r;
}

Dashboard::Response Dashboard::Api(const Request& r, const AuthConfig& auth) {
  const bool post = r.method == "POST";
  if (r.method != "GET" && r.method != "HEAD" && !post) {
    return ErrorResponse("method_not_allowed", r.method + " " + r.path + ": only GET and POST");
  }
  // Actions only from this page or from outside a browser.
  if (post && CrossSite(r)) {
    return ErrorResponse("cross_site", "refused: a request from another site (Origin " +
                                           (r.origin.empty() ? std::string("not sent") : r.origin) +
                                           ")");
  }
  // Reading needs the client token (or the admin token) when one is set.
  const std::string_view given = BearerToken(r.authorization);
  const bool admin = !auth.admin_token.empty() && TokenMatches(auth.admin_token, given);
  const bool client = TokenMatches(auth.client_token, given);
  if (!admin && !client) {
    return ErrorResponse("unauthorized",
                         r.authorization.empty()
                             ? "this pincerd needs a token: Authorization: Bearer TOKEN"
                             : "wrong token");
  }
  // Changing needs the admin token when one is set.
  if (post && !auth.admin_token.empty() && !admin) {
    return ErrorResponse("forbidden", "this action needs the admin token");
  }
  // Without any token, only through an address (see HostIsAddress).
  if (post && auth.admin_token.empty() && auth.client_token.empty() && !HostIsAddress(r.host)) {
    return ErrorResponse("forbidden",
                         "without auth tokens, actions are taken only through an "
                         "address (http://127.0.0.1:PORT/), not the name '" +
                             r.host + "': set auth.client_token or auth.admin_token");
  }

  std::string_view rest;
  if (!StripPrefix(r.path, "/api/v1/", rest)) {
    return ErrorResponse("not_found", "no API at " + r.path + " (try /api/v1/stats)");
  }
  auto only_get = [&](const std::string& what) -> std::optional<Response> {
    if (post) return ErrorResponse("method_not_allowed", "POST " + r.path + ": only GET");
    if (!r.query.empty() && what != "tasks") {
      return ErrorResponse("invalid_request", r.path + " takes no parameters");
    }
    return std::nullopt;
  };
  if (rest == "stats") {
    if (auto e = only_get("stats")) return *e;
    return JsonResponse(api_.StatsView());
  }
  if (rest == "workers") {
    if (auto e = only_get("workers")) return *e;
    return JsonResponse(Workers());
  }
  if (rest == "pools") {
    if (auto e = only_get("pools")) return *e;
    return JsonResponse(api_hooks_.pools ? api_hooks_.pools() : json::array());
  }
  if (rest == "queues") {
    if (auto e = only_get("queues")) return *e;
    return JsonResponse(Queues());
  }
  if (rest == "history") {
    if (auto e = only_get("history")) return *e;
    return JsonResponse(metrics_.timeline().View(SystemClock().UnixMillis()));
  }
  if (rest == "overview") {
    if (auto e = only_get("overview")) return *e;
    json v = Overview();
    v["auth"] = {{"client", !auth.client_token.empty()}, {"admin", !auth.admin_token.empty()}};
    return JsonResponse(v);
  }
  if (rest == "tasks") {
    if (auto e = only_get("tasks")) return *e;
    return TaskList(r.query);
  }
  std::string_view id;
  if (StripPrefix(rest, "tasks/", id)) {
    std::string_view verb;
    if (auto slash = id.find('/'); slash != std::string_view::npos) {
      verb = id.substr(slash + 1);
      id = id.substr(0, slash);
    }
    if (verb.empty()) {
      if (auto e = only_get("task")) return *e;
      return TaskById(std::string(id));
    }
    if (verb != "cancel" && verb != "retry") {
      return ErrorResponse("not_found",
                           "no action '" + std::string(verb) + "' on a task (cancel, retry)");
    }
    if (!post) return ErrorResponse("method_not_allowed", "GET " + r.path + ": only POST");
    return Act(IdReq{verb == "cancel" ? IdOp::kCancel : IdOp::kRetry, 0, std::string(id)});
  }
  std::string_view worker;
  if (StripPrefix(rest, "workers/", worker)) {
    const auto slash = worker.find('/');
    if (slash == std::string_view::npos || worker.substr(slash + 1) != "drain") {
      return ErrorResponse("not_found",
                           "no such path: " + r.path + " (POST /api/v1/workers/ID/drain)");
    }
    if (!post) return ErrorResponse("method_not_allowed", "GET " + r.path + ": only POST");
    return Act(DrainReq{0, std::string(worker.substr(0, slash))});
  }
  return ErrorResponse("not_found", "no API at " + r.path +
                                        " (stats, workers, pools, queues, tasks, history, "
                                        "overview)");
}

Dashboard::Response Dashboard::Act(const Message& msg) {
  api_.Handle(kDashboardConn, msg);
  const std::string line = capture_->Take();
  json answer = json::parse(line, nullptr, false);
  if (!answer.is_object()) return ErrorResponse("internal", "no answer");
  if (answer.value("type", "") == "error") {
    return ErrorResponse(answer.value("code", "error"), answer.value("message", ""));
  }
  answer.erase("type");
  answer.erase("req");
  if (hooks_.changed) hooks_.changed();
  return JsonResponse(answer);
}

json Dashboard::Workers() {
  // As `workers` answers (ClientApi), and when each was last heard from.
  std::vector<const Worker*> sorted;
  for (const auto& [id, w] : dispatcher_.workers().all()) sorted.push_back(w.get());
  std::sort(sorted.begin(), sorted.end(),
            [](const Worker* a, const Worker* b) { return a->id < b->id; });
  const TimePoint now = SteadyClock::now();
  const int64_t now_ms = SystemClock::UnixMillisAt(now);
  json list = json::array();
  for (const Worker* w : sorted) {
    json v = api_.WorkerView(*w);
    const auto ago = std::chrono::duration_cast<std::chrono::milliseconds>(now - w->last_heard);
    v["last_seen_ms"] = now_ms - std::max<int64_t>(ago.count(), 0);
    list.push_back(std::move(v));
  }
  if (api_hooks_.starting_workers) {
    for (auto& starting : api_hooks_.starting_workers()) list.push_back(std::move(starting));
  }
  return list;
}

json Dashboard::Queues() { return dashboard::QueuesView(dispatcher_); }

json Dashboard::RunningTasks() {
  json list = json::array();
  std::string text;
  dispatcher_.tasks().ForEachLive([&](const Task& t) {
    if (list.size() >= kRecentTasks || t.rec.state != TaskState::kRunning) return;
    text.clear();
    api_.AppendTaskView(text, t);
    list.push_back(Summary(json::parse(text, nullptr, false)));
  });
  return list;
}

json Dashboard::EndedTasks() {
  // The newest ended tasks by id: those submitted last of the ended ones.
  std::vector<TaskId> ids;
  std::size_t scanned = 0;
  dispatcher_.ForEachTaskState(true, [&](TaskId id, TaskState state) {
    if (IsEnded(state)) ids.push_back(id);
    // Bounded: a huge queue in front of the ended tasks is not walked whole.
    return ids.size() < kRecentTasks && ++scanned < 100000;
  });
  json list = json::array();
  std::string text;
  for (TaskId id : ids) {
    const Task* t = dispatcher_.FindTask(id);
    if (!t) continue;
    text.clear();
    api_.AppendTaskView(text, *t);
    list.push_back(Summary(json::parse(text, nullptr, false)));
  }
  return list;
}

json Dashboard::Overview() {
  json pools = api_hooks_.pools ? api_hooks_.pools() : json::array();
  return {{"now_ms", SystemClock().UnixMillis()},
          {"stats", api_.StatsView()},
          {"workers", Workers()},
          {"pools", std::move(pools)},
          {"queues", Queues()},
          {"running", RunningTasks()},
          {"recent", EndedTasks()},
          {"history", metrics_.timeline().View(SystemClock().UnixMillis())}};
}

Dashboard::Response Dashboard::TaskList(const std::string& query) {
  Query q = ParseQuery(query, {"state", "limit", "order", "after", "skill", "worker", "session"});
  if (!q.error.empty()) return ErrorResponse("invalid_request", q.error);
  TasksReq req;
  req.limit = 100;
  auto get = [&](const char* k) {
    auto it = q.values.find(k);
    return it == q.values.end() ? std::string() : it->second;
  };
  req.state = get("state");
  req.order = get("order").empty() ? "newest" : get("order");
  req.after = get("after");
  req.skill = get("skill");
  req.worker = get("worker");
  req.session = get("session");
  if (const std::string limit = get("limit"); !limit.empty()) {
    int64_t n = 0;
    auto [end, ec] = std::from_chars(limit.data(), limit.data() + limit.size(), n);
    if (ec != std::errc() || end != limit.data() + limit.size() || n < 1 || n > kMaxListLimit) {
      return ErrorResponse("invalid_request", "limit: '" + limit + "' is not a number from 1 to " +
                                                  std::to_string(kMaxListLimit));
    }
    req.limit = n;
  }
  api_.Handle(kDashboardConn, req);
  const std::string line = capture_->Take();
  // {"type":"ok","req":0,"tasks":[...],"total":N,"next":X}: the array is
  // passed on as ClientApi wrote it (payloads exactly as they came in),
  // the rest as headers.
  constexpr std::string_view kHead = R"("tasks":)";
  constexpr std::string_view kTail = R"(,"total":)";
  const auto head = line.find(kHead);
  const auto tail = line.rfind(kTail);
  if (head == std::string::npos || tail == std::string::npos || tail < head) {
    json err = json::parse(line, nullptr, false);
    if (err.is_object() && err.value("type", "") == "error") {
      return ErrorResponse(err.value("code", "error"), err.value("message", ""));
    }
    return ErrorResponse("internal", "no answer");
  }
  Response r;
  r.body = line.substr(head + kHead.size(), tail - head - kHead.size());
  json rest = json::parse("{" + line.substr(tail + 1), nullptr, false);
  if (rest.is_object()) {
    r.headers.emplace_back("X-Total-Count", std::to_string(rest.value("total", 0)));
    if (rest.contains("next") && rest["next"].is_string()) {
      r.headers.emplace_back("X-Next-After", rest["next"].get<std::string>());
    }
  }
  return r;
}

Dashboard::Response Dashboard::TaskById(const std::string& id) {
  api_.Handle(kDashboardConn, IdReq{IdOp::kStatus, 0, id});
  const std::string line = capture_->Take();
  constexpr std::string_view kHead = R"("task":)";
  const auto head = line.find(kHead);
  if (line.rfind(R"({"type":"ok")", 0) != 0 || head == std::string::npos || line.size() < 2) {
    json err = json::parse(line, nullptr, false);
    if (err.is_object()) return ErrorResponse(err.value("code", "error"), err.value("message", ""));
    return ErrorResponse("internal", "no answer");
  }
  Response r;
  // ...,"task":{...}}\n: the object as ClientApi wrote it.
  const auto end = line.rfind('}');
  r.body = line.substr(head + kHead.size(), end - head - kHead.size());
  return r;
}

// ------------------------------------------------------------ HTTP

namespace {

// Civetweb calls this on its own threads.
class Handler final : public CivetHandler {
 public:
  explicit Handler(std::unique_ptr<Dashboard> dashboard) : dashboard_(std::move(dashboard)) {}

  bool handleGet(CivetServer*, mg_connection* c) override { return Handle(c); }
  bool handlePost(CivetServer*, mg_connection* c) override { return Handle(c); }
  bool handleHead(CivetServer*, mg_connection* c) override { return Handle(c); }
  bool handlePut(CivetServer*, mg_connection* c) override { return Handle(c); }
  bool handleDelete(CivetServer*, mg_connection* c) override { return Handle(c); }
  bool handlePatch(CivetServer*, mg_connection* c) override { return Handle(c); }
  bool handleOptions(CivetServer*, mg_connection* c) override { return Handle(c); }

 private:
  static std::string Header(mg_connection* c, const char* name) {
    const char* v = mg_get_header(c, name);
    return v ? v : "";
  }

  bool Handle(mg_connection* c) {
    const mg_request_info* info = mg_get_request_info(c);
    Dashboard::Request req;
    req.method = info->request_method ? info->request_method : "";
    req.path = info->local_uri ? info->local_uri : "";
    req.query = info->query_string ? info->query_string : "";
    req.authorization = Header(c, "Authorization");
    req.origin = Header(c, "Origin");
    req.host = Header(c, "Host");
    req.fetch_site = Header(c, "Sec-Fetch-Site");
    Dashboard::Response res;
    if (info->content_length > kMaxBody) {
      res = ErrorResponse("too_large",
                          "a request body of at most " + std::to_string(kMaxBody) + " bytes");
    } else {
      char sink[1024];
      while (mg_read(c, sink, sizeof sink) > 0) {
      }
      res = dashboard_->Serve(req);
    }
    Send(c, req.method == "HEAD", res);
    return true;
  }

  static void Send(mg_connection* c, bool head, const Dashboard::Response& res) {
    mg_response_header_start(c, res.status);
    mg_response_header_add(c, "Content-Type", res.content_type.c_str(), -1);
    const std::string length = std::to_string(res.body.size());
    mg_response_header_add(c, "Content-Length", length.c_str(), -1);
    bool cache = false;
    for (const auto& [k, v] : res.headers) {
      mg_response_header_add(c, k.c_str(), v.c_str(), -1);
      cache = cache || k == "Cache-Control";
    }
    if (!cache) mg_response_header_add(c, "Cache-Control", "no-store", -1);
    // Nothing from elsewhere, no framing by other sites (the actions are
    // buttons), no guessing of types.
    mg_response_header_add(c, "Content-Security-Policy",
                           "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                           "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
                           "form-action 'none'",
                           -1);
    mg_response_header_add(c, "X-Content-Type-Options", "nosniff", -1);
    mg_response_header_add(c, "X-Frame-Options", "DENY", -1);
    mg_response_header_add(c, "Referrer-Policy", "no-referrer", -1);
    mg_response_header_send(c);
    if (!head && !res.body.empty()) mg_write(c, res.body.data(), res.body.size());
  }

  std::unique_ptr<Dashboard> dashboard_;
};

}  // namespace

void AddDashboard(Dispatcher& dispatcher, Metrics& metrics, ClientApi::Hooks api_hooks,
                  DashboardHooks hooks) {
  auto dashboard =
      std::make_unique<Dashboard>(dispatcher, metrics, std::move(api_hooks), std::move(hooks));
  metrics.AddPages(Dashboard::Uris(), std::make_shared<Handler>(std::move(dashboard)));
}

}  // namespace pincer
