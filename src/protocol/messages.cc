#include "protocol/messages.h"

#include <cctype>
#include <nlohmann/json.hpp>

namespace pincer {
namespace {

using nlohmann::json;

// Field readers. Each returns false and fills `err` when the field has the
// wrong type; a missing optional field leaves `out` untouched.
class Fields {
 public:
  Fields(const json& obj, std::optional<int64_t> req) : obj_(obj), req_(req) {}

  const json* Find(const char* name) const {
    auto it = obj_.find(name);
    return it == obj_.end() ? nullptr : &*it;
  }

  bool String(const char* name, std::string& out, bool required = false) {
    const json* v = Find(name);
    if (!v || (v->is_null() && !required)) return Missing(name, required);
    if (!v->is_string()) return Fail(name, "a string");
    out = v->get_ref<const std::string&>();
    return true;
  }
  bool Int(const char* name, int64_t& out, bool required = false) {
    const json* v = Find(name);
    if (!v || (v->is_null() && !required)) return Missing(name, required);
    if (!v->is_number_integer()) return Fail(name, "an integer");
    out = v->get<int64_t>();
    return true;
  }
  bool Bool(const char* name, bool& out) {
    const json* v = Find(name);
    if (!v || v->is_null()) return true;
    if (!v->is_boolean()) return Fail(name, "a boolean");
    out = v->get<bool>();
    return true;
  }
  bool StringArray(const char* name, std::vector<std::string>& out) {
    const json* v = Find(name);
    if (!v || v->is_null()) return true;
    if (!v->is_array()) return Fail(name, "an array of strings");
    out.clear();
    out.reserve(v->size());
    for (const auto& item : *v) {
      if (!item.is_string()) return Fail(name, "an array of strings");
      out.push_back(item.get<std::string>());
    }
    return true;
  }
  bool Raw(const char* name, RawJson& out) {
    const json* v = Find(name);
    if (!v) return true;
    out = v->dump();
    return true;
  }

  ProtocolError error() const { return err_; }

 private:
  bool Missing(const char* name, bool required) {
    if (!required) return true;
    err_ = {"bad_message", std::string("missing field '") + name + "'", req_};
    return false;
  }
  bool Fail(const char* name, const char* what) {
    err_ = {"bad_message", std::string("field '") + name + "' must be " + what, req_};
    return false;
  }

  const json& obj_;
  std::optional<int64_t> req_;
  ProtocolError err_;
};

ParseResult ParseHello(Fields& f) {
  Hello h;
  if (!f.String("role", h.role, true) || !f.Int("proto", h.proto, true) ||
      !f.String("token", h.token) || !f.String("name", h.name) ||
      !f.StringArray("skills", h.skills) || !f.Int("capacity", h.capacity) ||
      !f.String("spawn_id", h.spawn_id)) {
    ProtocolError e = f.error();
    e.code = "bad_hello";
    return e;
  }
  if (const json* labels = f.Find("labels"); labels && !labels->is_null()) {
    if (!labels->is_object()) return ProtocolError{"bad_hello", "field 'labels' must be an object", {}};
    h.labels = labels->dump();
  }
  return Message{std::move(h)};
}

ParseResult ParseResult_(Fields& f) {
  ResultMsg r;
  if (!f.String("id", r.id, true) || !f.Bool("ok", r.ok) || !f.Raw("output", r.output) ||
      !f.Bool("retryable", r.retryable)) {
    return f.error();
  }
  if (!f.Find("ok")) return ProtocolError{"bad_message", "missing field 'ok'", {}};
  if (const json* e = f.Find("error"); e && !e->is_null()) {
    r.error = e->is_string() ? e->get<std::string>() : e->dump();
  }
  if (!r.ok && r.error.empty()) r.error = "failed (no error given)";
  if (r.output == "null") r.output.clear();
  return Message{std::move(r)};
}

ParseResult ParseHeartbeat(Fields& f) {
  HeartbeatMsg h;
  const json* load = f.Find("load");
  if (load && !load->is_null()) {
    if (!load->is_object()) return ProtocolError{"bad_message", "field 'load' must be an object", {}};
    if (auto it = load->find("cpu"); it != load->end() && it->is_number()) h.cpu = it->get<double>();
    if (auto it = load->find("rss_bytes"); it != load->end() && it->is_number())
      h.rss_bytes = it->get<int64_t>();
  }
  return Message{h};
}

ParseResult ParseSubmit(Fields& f, int64_t req) {
  SubmitReq s;
  s.req = req;
  if (!f.StringArray("skills", s.skills) || !f.Raw("payload", s.payload) ||
      !f.Int("priority", s.priority) || !f.String("session", s.session) ||
      !f.String("key", s.key) || !f.Bool("wait", s.wait)) {
    return f.error();
  }
  if (s.payload == "null") s.payload.clear();
  if (const json* t = f.Find("timeout"); t && !t->is_null()) {
    if (t->is_number_integer() && t->get<int64_t>() >= 0) {
      s.timeout = std::chrono::milliseconds(t->get<int64_t>());
    } else if (t->is_string()) {
      auto d = ParseWireDuration(t->get_ref<const std::string&>());
      if (!d) return ProtocolError{"invalid_request", "field 'timeout' is not a duration like 30s", req};
      s.timeout = *d;
    } else {
      return ProtocolError{"bad_message", "field 'timeout' must be a duration string or milliseconds", req};
    }
  }
  if (const json* m = f.Find("max_attempts"); m && !m->is_null()) {
    if (!m->is_number_integer()) return ProtocolError{"bad_message", "field 'max_attempts' must be an integer", req};
    s.max_attempts = m->get<int64_t>();
    if (*s.max_attempts < 1) return ProtocolError{"invalid_request", "max_attempts must be at least 1", req};
  }
  return Message{std::move(s)};
}

}  // namespace

std::optional<std::chrono::milliseconds> ParseWireDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t total = 0;
  std::size_t i = 0;
  bool any = false;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    int64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      n = n * 10 + (text[i] - '0');
      if (n > 1'000'000'000'000) return std::nullopt;
      ++i;
    }
    std::size_t u = i;
    while (u < text.size() && std::isalpha(static_cast<unsigned char>(text[u]))) ++u;
    std::string_view unit = text.substr(i, u - i);
    int64_t mult;
    if (unit == "ms") mult = 1;
    else if (unit == "s") mult = 1000;
    else if (unit == "m") mult = 60'000;
    else if (unit == "h") mult = 3'600'000;
    else if (unit == "d") mult = 86'400'000;
    else if (unit.empty() && u == text.size() && !any) mult = 1;  // bare number = ms
    else return std::nullopt;
    total += n * mult;
    any = true;
    i = u;
  }
  return std::chrono::milliseconds(total);
}

ParseResult ParseMessage(std::string_view line) {
  json doc = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return ProtocolError{"bad_json", "the line is not valid JSON", {}};
  if (!doc.is_object()) return ProtocolError{"bad_message", "a message must be a JSON object", {}};

  std::optional<int64_t> req;
  if (auto it = doc.find("req"); it != doc.end() && it->is_number_integer()) req = it->get<int64_t>();
  auto type_it = doc.find("type");
  if (type_it == doc.end() || !type_it->is_string()) {
    return ProtocolError{"bad_message", "a message needs a string field 'type'", req};
  }
  const std::string& type = type_it->get_ref<const std::string&>();
  Fields f(doc, req);

  if (type == "result") return ParseResult_(f);
  if (type == "heartbeat") return ParseHeartbeat(f);
  if (type == "progress") {
    ProgressMsg p;
    if (!f.String("id", p.id, true) || !f.Raw("data", p.data)) return f.error();
    if (p.data.empty()) p.data = "null";
    return Message{std::move(p)};
  }
  if (type == "hello") return ParseHello(f);

  // Client requests: all need an integer req.
  static constexpr const char* kClientTypes[] = {"submit", "status", "wait",    "cancel", "retry", "tasks",
                                                 "workers", "stats", "drain", "reload", "pools"};
  bool is_client = false;
  for (const char* t : kClientTypes) is_client |= (type == t);
  if (!is_client) return ProtocolError{"unknown_type", "unknown message type '" + type + "'", req};
  if (!req) return ProtocolError{"bad_message", "a request needs an integer field 'req'", {}};

  if (type == "submit") return ParseSubmit(f, *req);
  if (type == "status" || type == "wait" || type == "cancel" || type == "retry") {
    IdReq r{type == "status" ? IdOp::kStatus
            : type == "wait" ? IdOp::kWait
            : type == "cancel" ? IdOp::kCancel
                               : IdOp::kRetry,
            *req, {}};
    if (!f.String("id", r.id, true)) return f.error();
    return Message{std::move(r)};
  }
  if (type == "tasks") {
    TasksReq t;
    t.req = *req;
    if (!f.String("state", t.state) || !f.Int("limit", t.limit)) return f.error();
    return Message{std::move(t)};
  }
  if (type == "drain") {
    DrainReq d;
    d.req = *req;
    if (!f.String("worker", d.worker, true)) return f.error();
    return Message{std::move(d)};
  }
  SimpleOp op = type == "workers" ? SimpleOp::kWorkers
                : type == "stats" ? SimpleOp::kStats
                : type == "reload" ? SimpleOp::kReload
                                   : SimpleOp::kPools;
  return Message{SimpleReq{op, *req}};
}

}  // namespace pincer
