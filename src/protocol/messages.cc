#include "protocol/messages.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <string>

#include "common/json_text.h"

namespace pincer {
namespace {

using nlohmann::json;

// Field readers. Each returns false and fills `err` when the field has the
// wrong type; a missing optional field leaves `out` untouched.
class Fields {
 public:
  // `line`: the text `obj` was parsed from, for the values carried as sent.
  Fields(const json& obj, std::string_view line, std::optional<int64_t> req)
      : obj_(obj), line_(line), req_(req) {}

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
    return IntIn(name, out, INT64_MIN, INT64_MAX, required);
  }
  // An integer in [lo, hi]. One outside, including one past int64 (which
  // nlohmann reads as unsigned), is refused with invalid_request naming the
  // range: it is never wrapped or clamped.
  bool IntIn(const char* name, int64_t& out, int64_t lo, int64_t hi, bool required = false) {
    const json* v = Find(name);
    if (!v || (v->is_null() && !required)) return Missing(name, required);
    if (!v->is_number_integer()) return Fail(name, "an integer");
    const bool fits = !v->is_number_unsigned() || v->get<uint64_t>() <= uint64_t{INT64_MAX};
    if (!fits || v->get<int64_t>() < lo || v->get<int64_t>() > hi) {
      err_ = {"invalid_request",
              std::string("field '") + name + "' must be an integer from " + std::to_string(lo) +
                  " to " + std::to_string(hi),
              req_};
      return false;
    }
    out = v->get<int64_t>();
    return true;
  }
  // An attempt number: an integer from 1 to kMaxAttemptNumber; absent or
  // null leaves `out` at 0 (not given).
  bool Attempt(int64_t& out) {
    const json* v = Find("attempt");
    if (!v || v->is_null()) return true;
    const bool fits = v->is_number_integer() &&
                      (!v->is_number_unsigned() || v->get<uint64_t>() <= uint64_t{INT64_MAX});
    if (!fits || v->get<int64_t>() < 1 || v->get<int64_t>() > kMaxAttemptNumber) {
      return Fail("attempt", "an integer from 1 to 2147483647");
    }
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
  // A carried value (payload, output, progress data): its text as the peer
  // sent it (JsonMemberText), the same bytes the fast path takes.
  bool Raw(const char* name, RawJson& out) {
    const json* v = Find(name);
    if (!v) return true;
    if (std::optional<std::string_view> text = JsonMemberText(line_, name)) {
      out.assign(*text);
    } else {
      out = v->dump();  // unreachable on a parsed line; a rebuilt value beats none
    }
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
  std::string_view line_;
  std::optional<int64_t> req_;
  ProtocolError err_;
};

// Why `skills` is out of bounds, or "" when it is not.
std::string SkillsProblem(const std::vector<std::string>& skills) {
  if (skills.size() > kMaxSkills) {
    return "field 'skills' holds " + std::to_string(skills.size()) + " skills, at most " +
           std::to_string(kMaxSkills) + " are allowed";
  }
  for (const std::string& skill : skills) {
    if (skill.size() > kMaxSkillBytes) {
      return "a skill name is " + std::to_string(skill.size()) + " bytes long, at most " +
             std::to_string(kMaxSkillBytes) + " are allowed";
    }
  }
  return "";
}

// A hello's `tasks`: an array of at most `capacity` entries (a worker runs
// no more than that), each a task id string or {"id": ..., "attempt": N}.
// Why it is refused, or "" when it is not.
std::string ParseHeldTasks(const json& v, int64_t capacity, std::vector<HeldTaskRef>& out) {
  const char* shape =
      "field 'tasks' must be an array of task ids (strings) or {\"id\", \"attempt\"} objects";
  if (!v.is_array()) return shape;
  if (capacity >= 1 && static_cast<int64_t>(v.size()) > capacity) {
    return "field 'tasks' lists " + std::to_string(v.size()) +
           " tasks, more than the worker's capacity " + std::to_string(capacity);
  }
  out.clear();
  out.reserve(v.size());
  for (const json& item : v) {
    HeldTaskRef ref;
    const json* id = &item;
    if (item.is_object()) {
      auto it = item.find("id");
      if (it == item.end()) return std::string(shape) + ": an object without 'id'";
      id = &*it;
      if (auto a = item.find("attempt"); a != item.end() && !a->is_null()) {
        const bool fits = a->is_number_integer() &&
                          (!a->is_number_unsigned() || a->get<uint64_t>() <= uint64_t{INT64_MAX});
        if (!fits || a->get<int64_t>() < 1 || a->get<int64_t>() > kMaxAttemptNumber) {
          return "field 'tasks[].attempt' must be an integer from 1 to 2147483647";
        }
        ref.attempt = a->get<int64_t>();
      }
    }
    if (!id->is_string()) return shape;
    ref.id = id->get<std::string>();
    if (ref.id.empty() || ref.id.size() > kMaxHeldTaskIdBytes) {
      return "a task id in field 'tasks' must be 1 to " + std::to_string(kMaxHeldTaskIdBytes) +
             " bytes long";
    }
    out.push_back(std::move(ref));
  }
  return "";
}

ParseResult ParseHello(Fields& f) {
  Hello h;
  if (!f.String("role", h.role, true) || !f.Int("proto", h.proto, true) ||
      !f.String("token", h.token) || !f.String("name", h.name) ||
      !f.StringArray("skills", h.skills) || !f.Int("capacity", h.capacity) ||
      !f.String("spawn_id", h.spawn_id) || !f.Bool("heartbeat_ack", h.heartbeat_ack) ||
      !f.Bool("confirms_stop", h.confirms_stop)) {
    ProtocolError e = f.error();
    e.code = "bad_hello";
    return e;
  }
  if (std::string problem = SkillsProblem(h.skills); !problem.empty()) {
    return ProtocolError{"bad_hello", std::move(problem), {}};
  }
  if (const json* labels = f.Find("labels"); labels && !labels->is_null()) {
    if (!labels->is_object()) {
      return ProtocolError{"bad_hello", "field 'labels' must be an object of strings", {}};
    }
    for (const auto& [key, value] : labels->items()) {
      if (!value.is_string()) {
        return ProtocolError{
            "bad_hello",
            "field 'labels' must be an object of strings: 'labels." + key + "' is not a string",
            {}};
      }
    }
    h.labels = labels->dump();
  }
  if (const json* tasks = f.Find("tasks"); tasks && !tasks->is_null()) {
    if (std::string problem = ParseHeldTasks(*tasks, h.capacity, h.tasks); !problem.empty()) {
      return ProtocolError{"bad_hello", std::move(problem), {}};
    }
    h.lists_tasks = true;
  }
  return Message{std::move(h)};
}

// A result's `usage` (docs/protocol.md). Refused whole, naming the field:
// a type other than the documented one, a negative number.
std::optional<ProtocolError> ParseUsage(const json& u, TaskUsage& out) {
  auto fail = [](std::string field, const char* what) {
    return ProtocolError{"bad_message", "field 'usage." + field + "' " + what, {}};
  };
  if (!u.is_object()) return ProtocolError{"bad_message", "field 'usage' must be an object", {}};
  bool have_total = false;
  for (auto [name, into] : {std::pair{"input", &out.input}, std::pair{"output", &out.output},
                            std::pair{"total", &out.total}}) {
    auto it = u.find(name);
    if (it == u.end() || it->is_null()) continue;
    if (!it->is_number_integer()) return fail(name, "must be an integer");
    if (!it->is_number_unsigned() && it->get<int64_t>() < 0)
      return fail(name, "must not be negative");
    if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t{INT64_MAX}) {
      return fail(name, "is too large");
    }
    *into = it->get<int64_t>();
    have_total |= into == &out.total;
  }
  if (!have_total && __builtin_add_overflow(out.input, out.output, &out.total))
    out.total = INT64_MAX;
  if (auto it = u.find("cost"); it != u.end() && !it->is_null()) {
    if (!it->is_number()) return fail("cost", "must be a number");
    const double cost = it->get<double>();
    if (!(cost >= 0)) return fail("cost", "must not be negative");
    if (!std::isfinite(cost)) return fail("cost", "must be finite");
    out.cost = cost;
  }
  if (auto it = u.find("model"); it != u.end() && !it->is_null()) {
    if (!it->is_string()) return fail("model", "must be a string");
    if (it->get_ref<const std::string&>().size() > kMaxModelBytes) {
      return fail("model",
                  ("must be at most " + std::to_string(kMaxModelBytes) + " bytes").c_str());
    }
    out.model = it->get<std::string>();
  }
  return std::nullopt;
}

// A submit's `backoff` (docs/protocol.md): ranges as for the config's
// tasks.retry_backoff.
std::optional<ProtocolError> ParseBackoff(const json& b, SubmitReq& s) {
  const int64_t req = s.req;
  if (!b.is_object()) {
    return ProtocolError{"bad_message", "field 'backoff' must be an object", req};
  }
  for (auto [name, into] :
       {std::pair{"initial", &s.backoff_initial}, std::pair{"max", &s.backoff_max}}) {
    auto it = b.find(name);
    if (it == b.end() || it->is_null()) continue;
    const std::string field = std::string("field 'backoff.") + name + "'";
    std::optional<std::chrono::milliseconds> d;
    if (it->is_number_integer()) {
      if (!it->is_number_unsigned() && it->get<int64_t>() < 0) {
        return ProtocolError{"invalid_request", field + " must not be negative", req};
      }
      d = std::chrono::milliseconds(it->is_number_unsigned() &&
                                            it->get<uint64_t>() > uint64_t{INT64_MAX}
                                        ? INT64_MAX
                                        : it->get<int64_t>());
    } else if (it->is_string()) {
      d = ParseWireDuration(it->get_ref<const std::string&>());
      if (!d) {
        return ProtocolError{"invalid_request",
                             field + " is not a duration like 30s or 1h30m (units h, m, s, ms)",
                             req};
      }
    } else {
      return ProtocolError{"bad_message", field + " must be a duration string or milliseconds",
                           req};
    }
    if (d->count() > kMaxBackoffMs) {
      return ProtocolError{"invalid_request", field + " must be at most 87600h", req};
    }
    *into = *d;
  }
  if (s.backoff_initial && s.backoff_max && *s.backoff_max < *s.backoff_initial) {
    return ProtocolError{"invalid_request",
                         "field 'backoff.max' must not be less than 'backoff.initial'", req};
  }
  if (auto it = b.find("jitter"); it != b.end() && !it->is_null()) {
    if (!it->is_number()) {
      return ProtocolError{"bad_message", "field 'backoff.jitter' must be a number", req};
    }
    const double j = it->get<double>();
    if (!(j >= 0 && j <= 1)) {
      return ProtocolError{"invalid_request", "field 'backoff.jitter' must be between 0 and 1",
                           req};
    }
    s.backoff_jitter = j;
  }
  return std::nullopt;
}

ParseResult ParseResult_(Fields& f) {
  ResultMsg r;
  if (!f.String("id", r.id, true) || !f.Bool("ok", r.ok) || !f.Raw("output", r.output) ||
      !f.Bool("retryable", r.retryable) || !f.Int("retry_after_ms", r.retry_after_ms) ||
      !f.Attempt(r.attempt)) {
    return f.error();
  }
  if (r.retry_after_ms < 0) {
    return ProtocolError{"bad_message", "field 'retry_after_ms' must not be negative", {}};
  }
  if (!f.Find("ok")) return ProtocolError{"bad_message", "missing field 'ok'", {}};
  if (!f.String("error", r.error)) return f.error();
  if (!r.ok && r.error.empty()) r.error = "failed (no error given)";
  if (r.output == "null") r.output.clear();
  if (const json* u = f.Find("usage"); u && !u->is_null()) {
    if (auto e = ParseUsage(*u, r.usage)) return *e;
    r.has_usage = true;
  }
  return Message{std::move(r)};
}

ParseResult ParseHeartbeat(Fields& f) {
  HeartbeatMsg h;
  const json* load = f.Find("load");
  if (!load || load->is_null()) return Message{h};
  if (!load->is_object()) return ProtocolError{"bad_message", "field 'load' must be an object", {}};
  const ProtocolError bad_cpu{"bad_message", "field 'load.cpu' must be a number from 0 up", {}};
  const ProtocolError bad_rss{
      "bad_message", "field 'load.rss_bytes' must be an integer from 0 to 9223372036854775807", {}};
  if (auto it = load->find("cpu"); it != load->end() && !it->is_null()) {
    if (!it->is_number() || it->get<double>() < 0) return bad_cpu;
    h.cpu = it->get<double>();
  }
  // An integer within int64, or a float that converts to one (a cast of
  // 1e300 would be undefined); a fraction is cut off.
  if (auto it = load->find("rss_bytes"); it != load->end() && !it->is_null()) {
    if (!it->is_number()) return bad_rss;
    if (it->is_number_float()) {
      const double v = it->get<double>();
      if (!(v >= 0 && v < 9.2e18)) return bad_rss;
      h.rss_bytes = static_cast<int64_t>(v);
    } else if (it->is_number_unsigned() ? it->get<uint64_t>() <= uint64_t{INT64_MAX}
                                        : it->get<int64_t>() >= 0) {
      h.rss_bytes = it->get<int64_t>();
    } else {
      return bad_rss;
    }
  }
  return Message{h};
}

ParseResult ParseSubmit(Fields& f, int64_t req) {
  SubmitReq s;
  s.req = req;
  if (!f.StringArray("skills", s.skills) || !f.Raw("payload", s.payload) ||
      !f.Int("priority", s.priority) || !f.String("session", s.session) ||
      !f.String("key", s.key) || !f.Bool("wait", s.wait) || !f.String("parent", s.parent)) {
    return f.error();
  }
  if (std::string problem = SkillsProblem(s.skills); !problem.empty()) {
    return ProtocolError{"invalid_request", std::move(problem), req};
  }
  if (s.payload == "null") s.payload.clear();
  if (const json* t = f.Find("timeout"); t && !t->is_null()) {
    const ProtocolError too_long{"invalid_request",
                                 "field 'timeout' must be at most 8760h (365 days, " +
                                     std::to_string(kMaxTimeoutMs) + " ms)",
                                 req};
    if (t->is_number_unsigned()) {
      if (t->get<uint64_t>() > uint64_t{kMaxTimeoutMs}) return too_long;
      s.timeout = std::chrono::milliseconds(t->get<int64_t>());
    } else if (t->is_number_integer() && t->get<int64_t>() >= 0) {
      s.timeout = std::chrono::milliseconds(t->get<int64_t>());  // non-negative: unsigned above
    } else if (t->is_string()) {
      auto d = ParseWireDuration(t->get_ref<const std::string&>());
      if (!d) {
        return ProtocolError{
            "invalid_request",
            "field 'timeout' is not a duration like 30s or 1h30m (units h, m, s, ms)", req};
      }
      if (d->count() > kMaxTimeoutMs) return too_long;
      s.timeout = *d;
    } else {
      return ProtocolError{"bad_message",
                           "field 'timeout' must be a duration string or milliseconds", req};
    }
  }
  if (const json* m = f.Find("max_attempts"); m && !m->is_null()) {
    if (!m->is_number_integer())
      return ProtocolError{"bad_message", "field 'max_attempts' must be an integer", req};
    const bool fits = !m->is_number_unsigned() || m->get<uint64_t>() <= uint64_t{kMaxAttempts};
    if (!fits || m->get<int64_t>() < 1 || m->get<int64_t>() > kMaxAttempts) {
      return ProtocolError{"invalid_request",
                           "max_attempts must be from 1 to " + std::to_string(kMaxAttempts), req};
    }
    s.max_attempts = m->get<int64_t>();
  }
  if (const json* b = f.Find("backoff"); b && !b->is_null()) {
    if (auto e = ParseBackoff(*b, s)) return *e;
  }
  return Message{std::move(s)};
}

}  // namespace

std::optional<std::chrono::milliseconds> ParseWireDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int64_t total = 0;
  std::size_t i = 0;
  bool any = false;
  bool saturated = false;
  while (i < text.size()) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
    int64_t n = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      saturated |=
          __builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, text[i] - '0', &n);
      ++i;
    }
    std::size_t u = i;
    while (u < text.size() && std::isalpha(static_cast<unsigned char>(text[u]))) ++u;
    std::string_view unit = text.substr(i, u - i);
    int64_t mult;
    if (unit == "ms")
      mult = 1;
    else if (unit == "s")
      mult = 1000;
    else if (unit == "m")
      mult = 60'000;
    else if (unit == "h")
      mult = 3'600'000;
    else if (unit.empty() && u == text.size() && !any)
      mult = 1;  // bare number = ms
    else
      return std::nullopt;
    int64_t part = 0;
    saturated |=
        __builtin_mul_overflow(n, mult, &part) || __builtin_add_overflow(total, part, &total);
    any = true;
    i = u;
  }
  return std::chrono::milliseconds(saturated ? INT64_MAX : total);
}

namespace {
ProtocolError TooDeep(int max_depth) {
  return ProtocolError{"bad_json",
                       "the line nests arrays and objects deeper than limits.max_json_depth = " +
                           std::to_string(max_depth) + " levels (the message object is level 1)",
                       {}};
}

// `bad_json` for a line the parser refused, naming where it gave up. Only
// on this error path is the line parsed again, to learn why. The parser
// refuses a syntax error (parse_error) and a number too large for a double,
// such as 1e400 (out_of_range); every other refusal is reported as syntax.
ProtocolError NotJson(std::string_view line) {
  std::string why = "syntax error at byte " + std::to_string(line.size());
  try {
    json ignored = json::parse(line.begin(), line.end());
    (void)ignored;
  } catch (const json::parse_error& e) {
    // nlohmann counts from 1, and past the end when the line ends too soon.
    why = "syntax error at byte " +
          std::to_string(std::min(e.byte > 0 ? e.byte - 1 : 0, line.size()));
  } catch (const json::out_of_range&) {
    why = "a number is too large to represent";
  } catch (const json::exception&) {
  }
  return ProtocolError{"bad_json", "the line is not valid JSON: " + why, {}};
}

// A message's integer `req`. One past int64 is no integer `req` at all
// (never wrapped).
std::optional<int64_t> IntegerReq(const json& doc) {
  if (auto it = doc.find("req");
      it != doc.end() && it->is_number_integer() &&
      (!it->is_number_unsigned() || it->get<uint64_t>() <= uint64_t{INT64_MAX})) {
    return it->get<int64_t>();
  }
  return std::nullopt;
}

ParseResult ParseMessageSlow(std::string_view line) {
  json doc = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return NotJson(line);
  if (!doc.is_object()) return ProtocolError{"bad_message", "a message must be a JSON object", {}};

  const std::optional<int64_t> req = IntegerReq(doc);
  auto type_it = doc.find("type");
  if (type_it == doc.end() || !type_it->is_string()) {
    return ProtocolError{"bad_message", "a message needs a string field 'type'", req};
  }
  const std::string& type = type_it->get_ref<const std::string&>();
  Fields f(doc, line, req);

  if (type == "result") return ParseResult_(f);
  if (type == "heartbeat") return ParseHeartbeat(f);
  if (type == "progress") {
    ProgressMsg p;
    if (!f.String("id", p.id, true) || !f.Raw("data", p.data) || !f.Attempt(p.attempt)) {
      return f.error();
    }
    if (p.data.empty()) p.data = "null";
    return Message{std::move(p)};
  }
  if (type == "stopped") {
    StoppedMsg s;
    if (!f.String("id", s.id, true) || !f.Attempt(s.attempt)) return f.error();
    return Message{std::move(s)};
  }
  if (type == "hello") return ParseHello(f);
  // `drain` without `req` is a worker's own; with one, a client's request.
  if (type == "drain" && !doc.contains("req")) return Message{WorkerDrainMsg{}};

  // Client requests: all need an integer req.
  static constexpr const char* kClientTypes[] = {"submit", "status", "wait",    "watch", "cancel",
                                                 "retry",  "tasks",  "workers", "stats", "drain",
                                                 "reload", "pools",  "pool",    "logs"};
  bool is_client = false;
  for (const char* t : kClientTypes) is_client |= (type == t);
  if (!is_client) return ProtocolError{"unknown_type", "unknown message type '" + type + "'", req};
  if (!req) return ProtocolError{"bad_message", "a request needs an integer field 'req'", {}};

  if (type == "submit") return ParseSubmit(f, *req);
  if (type == "status" || type == "wait" || type == "watch" || type == "cancel" ||
      type == "retry") {
    IdReq r{type == "status"   ? IdOp::kStatus
            : type == "wait"   ? IdOp::kWait
            : type == "watch"  ? IdOp::kWatch
            : type == "cancel" ? IdOp::kCancel
                               : IdOp::kRetry,
            *req,
            {}};
    if (!f.String("id", r.id, true)) return f.error();
    return Message{std::move(r)};
  }
  if (type == "tasks") {
    TasksReq t;
    t.req = *req;
    if (!f.String("state", t.state) || !f.String("skill", t.skill) ||
        !f.String("worker", t.worker) || !f.String("session", t.session) ||
        !f.String("order", t.order) || !f.String("after", t.after) ||
        !f.IntIn("limit", t.limit, 1, kMaxTasksLimit)) {
      return f.error();
    }
    return Message{std::move(t)};
  }
  if (type == "drain") {
    DrainReq d;
    d.req = *req;
    if (!f.String("worker", d.worker, true)) return f.error();
    return Message{std::move(d)};
  }
  if (type == "pool") {
    PoolReq r;
    r.req = *req;
    int64_t replicas = -1;
    if (!f.String("op", r.op, true) || !f.String("pool", r.pool, true) ||
        !f.IntIn("replicas", replicas, 0, kMaxPoolReplicas)) {
      return f.error();
    }
    if (r.op != "start" && r.op != "stop" && r.op != "restart" && r.op != "scale") {
      return ProtocolError{"invalid_request", "field 'op' must be start, stop, restart or scale",
                           req};
    }
    if (r.op == "scale" && replicas < 0) {
      return ProtocolError{"invalid_request", "op 'scale' needs an integer field 'replicas'", req};
    }
    if (replicas >= 0) r.replicas = replicas;
    return Message{std::move(r)};
  }
  if (type == "logs") {
    LogsReq r;
    r.req = *req;
    if (!f.String("pool", r.pool, true) || !f.IntIn("after", r.after, 0, INT64_MAX) ||
        !f.IntIn("limit", r.limit, 1, kMaxLogsLimit)) {
      return f.error();
    }
    return Message{std::move(r)};
  }
  SimpleOp op = type == "workers"  ? SimpleOp::kWorkers
                : type == "stats"  ? SimpleOp::kStats
                : type == "reload" ? SimpleOp::kReload
                                   : SimpleOp::kPools;
  return Message{SimpleReq{op, *req}};
}

}  // namespace

// ----------------------------------------------------------------------
// The fast path. `result` and `submit` are nearly every line a busy daemon
// reads, so they are parsed with simdjson (a validating DOM parser that
// runs at gigabytes per second) instead of building an nlohmann DOM of
// std::map nodes per line. The fast path gives up -- and the line goes
// through the nlohmann path above -- on anything it does not handle
// exactly like that path: other message types, any error, duplicate keys.
// Both take a carried value's text from the line the same way
// (JsonMemberText). So the two paths agree on every line by construction,
// error messages included.
namespace {

namespace dom = simdjson::dom;

// Lines longer than this go to the slow path, so the parser's buffers stay
// small (a DOM parser keeps the capacity of the longest line it has seen).
constexpr std::size_t kFastMaxLine = 64 * 1024;

// A carried value (payload, output) is taken from the line as it stands
// (JsonMemberText), as on the slow path: never rebuilt, so its keys keep
// their order and its numbers their spelling. `null` comes out as "".
bool RawField(std::string_view line, const char* name, RawJson& out) {
  std::optional<std::string_view> text = JsonMemberText(line, name);
  if (!text) return false;
  if (*text == "null") {
    out.clear();
  } else {
    out.assign(*text);
  }
  return true;
}

bool OptString(dom::element e, std::string& out) {
  if (e.is_null()) return true;
  if (!e.is_string()) return false;
  out.assign(std::string_view(e.get_string().value_unsafe()));
  return true;
}
bool OptBool(dom::element e, bool& out) {
  if (e.is_null()) return true;
  if (!e.is_bool()) return false;
  out = e.get_bool().value_unsafe();
  return true;
}
// Marks field `bit` seen; false on its second appearance (the slow path's
// last-one-wins rule, with nulls meaning "absent", is not worth copying).
bool FirstTime(uint32_t& seen, int bit) {
  const uint32_t mask = uint32_t{1} << bit;
  if (seen & mask) return false;
  seen |= mask;
  return true;
}
// Integers that fit int64; uint64-only values take the slow path's cast.
bool Int(dom::element e, int64_t& out) {
  if (e.type() != dom::element_type::INT64) return false;
  out = e.get_int64().value_unsafe();
  return true;
}

// `out` as a fresh T. When it already holds a T, that one is reset and its
// strings and vectors keep their buffers (the hot messages then parse
// without allocating).
void ResetKeepingBuffers(ResultMsg& r) { r = ResultMsg{}; }  // short strings copy into old buffers
void ResetKeepingBuffers(SubmitReq& s) {
  std::vector<std::string> skills = std::move(s.skills);
  skills.clear();
  s = SubmitReq{};
  s.skills = std::move(skills);
}
template <typename T>
T& Fresh(ParseResult& out) {
  if (auto* m = std::get_if<Message>(&out)) {
    if (auto* t = std::get_if<T>(m)) {
      ResetKeepingBuffers(*t);
      return *t;
    }
  }
  return std::get<T>(out.emplace<Message>(std::in_place_type<T>));
}

// `key` == `name`, for a literal name: the length decides most keys, and
// the byte compare of a known length is inlined (no memcmp call per key).
template <std::size_t N>
bool Is(std::string_view key, const char (&name)[N]) {
  return key.size() == N - 1 && std::memcmp(key.data(), name, N - 1) == 0;
}
// The position of `key` among `names`, or sizeof...(names) when it is none
// of them (the fields' enums list them in the same order, then kOther).
template <std::size_t... N>
int FieldOf(std::string_view key, const char (&... names)[N]) {
  int at = 0;
  ((Is(key, names) || (++at, false)) || ...);
  return at;
}

// A result's `usage`, as ParseUsage reads it; false for anything else
// (the slow path then says what is wrong).
bool FastUsage(dom::element e, TaskUsage& u) {
  if (!e.is_object()) return false;
  enum Field { kInput, kOutput, kTotal, kCost, kModel, kOther };
  uint32_t seen = 0;
  const dom::object obj = e.get_object().value_unsafe();  // a copy: the result is a temporary
  for (dom::key_value_pair kv : obj) {
    const auto f = static_cast<Field>(FieldOf(kv.key, "input", "output", "total", "cost", "model"));
    if (f == kOther || kv.value.is_null()) continue;
    if (!FirstTime(seen, f)) return false;
    switch (f) {
      case kInput:
      case kOutput:
      case kTotal: {
        int64_t n;
        if (!Int(kv.value, n) || n < 0) return false;
        (f == kInput ? u.input : f == kOutput ? u.output : u.total) = n;
        break;
      }
      case kCost: {
        double c;
        if (kv.value.is_int64()) {
          c = static_cast<double>(kv.value.get_int64().value_unsafe());
        } else if (kv.value.is_double()) {
          c = kv.value.get_double().value_unsafe();
        } else {
          return false;
        }
        if (!(c >= 0) || !std::isfinite(c)) return false;
        u.cost = c;
        break;
      }
      case kModel: {
        if (!kv.value.is_string()) return false;
        const std::string_view m = kv.value.get_string().value_unsafe();
        if (m.size() > kMaxModelBytes) return false;
        u.model.assign(m);
        break;
      }
      case kOther:
        break;
    }
  }
  if (!(seen & (1u << kTotal)) && __builtin_add_overflow(u.input, u.output, &u.total)) {
    u.total = INT64_MAX;
  }
  return true;
}

bool FastResult(std::string_view line, dom::object obj, ParseResult& out) {
  ResultMsg& r = Fresh<ResultMsg>(out);
  enum Field { kId, kOk, kOutput, kRetryable, kError, kRetryAfter, kUsage, kAttempt, kOther };
  bool have_id = false, have_ok = false, have_output = false;
  uint32_t seen = 0;
  for (dom::key_value_pair kv : obj) {
    const std::string_view k = kv.key;
    const auto f = static_cast<Field>(FieldOf(k, "id", "ok", "output", "retryable", "error",
                                              "retry_after_ms", "usage", "attempt"));
    if (f != kOther && !FirstTime(seen, f)) return false;
    switch (f) {
      case kId:
        if (!kv.value.is_string()) return false;
        r.id.assign(std::string_view(kv.value.get_string().value_unsafe()));
        have_id = true;
        break;
      case kOk:
        if (!kv.value.is_bool()) return false;
        r.ok = kv.value.get_bool().value_unsafe();
        have_ok = true;
        break;
      case kOutput:
        have_output = !kv.value.is_null();
        break;
      case kRetryable:
        if (!OptBool(kv.value, r.retryable)) return false;
        break;
      case kError:
        if (!OptString(kv.value, r.error)) return false;
        break;
      case kRetryAfter:
        if (kv.value.is_null()) break;
        if (!Int(kv.value, r.retry_after_ms) || r.retry_after_ms < 0) return false;
        break;
      case kUsage:
        if (kv.value.is_null()) break;
        if (!FastUsage(kv.value, r.usage)) return false;
        r.has_usage = true;
        break;
      case kAttempt:
        if (kv.value.is_null()) break;
        if (!Int(kv.value, r.attempt) || r.attempt < 1 || r.attempt > kMaxAttemptNumber) {
          return false;
        }
        break;
      case kOther:
        break;
    }
  }
  if (!have_id || !have_ok) return false;
  if (have_output && !RawField(line, "output", r.output)) return false;
  if (!r.ok && r.error.empty()) r.error = "failed (no error given)";
  return true;
}

bool FastSubmit(std::string_view line, dom::object obj, int64_t req, ParseResult& out) {
  SubmitReq& s = Fresh<SubmitReq>(out);
  s.req = req;
  enum Field {
    kSkills,
    kPayload,
    kPriority,
    kSession,
    kKey,
    kWait,
    kTimeout,
    kMaxAttempts,
    kBackoff,
    kParent,
    kOther
  };
  uint32_t seen = 0;
  bool have_payload = false;
  for (dom::key_value_pair kv : obj) {
    const std::string_view k = kv.key;
    dom::element v = kv.value;
    const auto f =
        static_cast<Field>(FieldOf(k, "skills", "payload", "priority", "session", "key", "wait",
                                   "timeout", "max_attempts", "backoff", "parent"));
    if (f != kOther && !FirstTime(seen, f)) return false;
    switch (f) {
      case kSkills: {
        if (v.is_null()) break;
        if (!v.is_array()) return false;
        dom::array items = v.get_array().value_unsafe();
        s.skills.clear();
        for (dom::element item : items) {
          if (!item.is_string() || s.skills.size() == kMaxSkills) return false;
          const std::string_view skill = item.get_string().value_unsafe();
          if (skill.size() > kMaxSkillBytes) return false;
          s.skills.emplace_back(skill);
        }
        break;
      }
      case kPayload:
        have_payload = !v.is_null();
        break;
      case kPriority:
        if (!v.is_null() && !Int(v, s.priority)) return false;
        break;
      case kSession:
        if (!OptString(v, s.session)) return false;
        break;
      case kKey:
        if (!OptString(v, s.key)) return false;
        break;
      case kWait:
        if (!OptBool(v, s.wait)) return false;
        break;
      case kTimeout: {
        if (v.is_null()) break;
        int64_t ms;
        if (Int(v, ms) && ms >= 0) {
          if (ms > kMaxTimeoutMs) return false;
          s.timeout = std::chrono::milliseconds(ms);
        } else if (v.is_string()) {
          auto d = ParseWireDuration(std::string_view(v.get_string().value_unsafe()));
          if (!d || d->count() > kMaxTimeoutMs) return false;
          s.timeout = *d;
        } else {
          return false;
        }
        break;
      }
      case kMaxAttempts: {
        if (v.is_null()) break;
        int64_t n;
        if (!Int(v, n) || n < 1 || n > kMaxAttempts) return false;
        s.max_attempts = n;
        break;
      }
      case kBackoff:  // rare: the slow path reads it
        if (!v.is_null()) return false;
        break;
      case kParent:
        if (!OptString(v, s.parent)) return false;
        break;
      case kOther:
        break;
    }
  }
  return !have_payload || RawField(line, "payload", s.payload);
}

// One parser and one padded copy buffer per thread: reused across lines so
// the hot path allocates nothing for parsing. (pincerd parses on a single
// thread; thread_local keeps ParseMessage safe to call from any.)
struct FastParser {
  dom::parser parser{kFastMaxLine};
  int max_depth = 0;  // the depth `parser` is allocated for
  std::string buffer;
};

static_assert(simdjson::SIMDJSON_PADDING <= kLinePadding);

// False when the line is not a hot message in the expected shape (the slow
// path then parses it, and names the error if there is one); `out` may
// then hold anything.
//
// simdjson refuses (DEPTH_ERROR) any line nested deeper than the depth its
// parser is allocated for, and may refuse one level less (it counts a
// non-empty innermost array or object one deeper than an empty one). So a
// line the fast path accepts nests at most `max_depth` levels, with no scan
// of its own; a refused one goes to the scan and the slow path, which decide
// exactly.
bool ParseFast(std::string_view line, bool padded, ParseResult& out, int max_depth) {
  if (line.size() > kFastMaxLine) return false;
  thread_local FastParser fp;
  if (fp.max_depth != max_depth) {
    if (fp.parser.allocate(kFastMaxLine, static_cast<std::size_t>(max_depth)) !=
        simdjson::SUCCESS) {
      return false;
    }
    fp.max_depth = max_depth;
  }
  // simdjson reads up to SIMDJSON_PADDING bytes past the end of its input.
  const char* input = line.data();
  if (!padded) {
    fp.buffer.resize(line.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(fp.buffer.data(), line.data(), line.size());
    input = fp.buffer.data();
  }
  dom::element root;
  if (fp.parser.parse(input, line.size(), false).get(root) != simdjson::SUCCESS) {
    return false;  // the slow path names the error
  }
  dom::object obj;
  if (root.get_object().get(obj) != simdjson::SUCCESS) return false;

  // One pass for the routing fields; a repeated key is left to the slow
  // path, whose last-one-wins rule the fast path would have to copy.
  std::string_view type;
  std::optional<int64_t> req;
  int seen_type = 0, seen_req = 0;
  for (dom::key_value_pair kv : obj) {
    const std::string_view k = kv.key;
    if (Is(k, "type")) {
      if (++seen_type > 1 || kv.value.get_string().get(type) != simdjson::SUCCESS) return false;
    } else if (Is(k, "req")) {
      int64_t v;
      if (++seen_req > 1 || !Int(kv.value, v)) return false;
      req = v;
    }
  }
  if (type == "result") return FastResult(line, obj, out);
  if (type == "submit" && req) return FastSubmit(line, obj, *req, out);
  return false;
}

}  // namespace

LineHead ReadLineHead(std::string_view line) {
  LineHead head;
  const json doc = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return head;
  if (auto it = doc.find("type"); it != doc.end() && it->is_string()) {
    head.type = it->get<std::string>();
  }
  head.req = IntegerReq(doc);
  return head;
}

// Every line is bounded before anything walks it: nlohmann parses
// iteratively, but its dump() and copies recurse once per level. The fast path is bounded by
// simdjson's depth limit (see ParseFast); every other line is scanned (JsonDepthWithin) before the
// slow path parses it.
ParseResult ParseMessageWithoutFastPathForTest(std::string_view line, int max_depth) {
  if (!JsonDepthWithin(line, max_depth)) return TooDeep(max_depth);
  return ParseMessageSlow(line);
}

ParseResult ParseMessage(std::string_view line, int max_depth) {
  ParseResult out;
  if (ParseFast(line, /*padded=*/false, out, max_depth)) return out;
  if (!JsonDepthWithin(line, max_depth)) return TooDeep(max_depth);
  return ParseMessageSlow(line);
}

ParseResult ParseMessagePadded(std::string_view line, int max_depth) {
  ParseResult out;
  ParseMessagePaddedInto(line, out, max_depth);
  return out;
}

void ParseMessagePaddedInto(std::string_view line, ParseResult& out, int max_depth) {
  if (ParseFast(line, /*padded=*/true, out, max_depth)) return;
  if (!JsonDepthWithin(line, max_depth)) {
    out = TooDeep(max_depth);
    return;
  }
  out = ParseMessageSlow(line);
}

}  // namespace pincer
