// LoadConfig: file -> JSON tree (document.cc) -> Config (here) -> cross-field
// checks (validate.cc). The reader here checks shapes and types, and turns
// the names of choices (store.kind, store.fsync, restart.policy) into enums,
// which a Config built in code cannot get wrong; every other rule about
// values lives in ValidateConfig, so a Config built in code is held to the
// same rules as one read from a file.
#include "config/config.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <set>
#include <sstream>
#include <string_view>
#include <vector>

#include "common/edit_distance.h"
#include "common/read_file.h"
#include "config/document.h"
#include "config/problems.h"

namespace pincer {
namespace {

using config_internal::Field;
using config_internal::Format;
using config_internal::Index;
using config_internal::Problems;
using nlohmann::json;

std::string TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null:
      return "nothing (null)";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "an integer";
    case json::value_t::number_float:
      return "a number";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "a list";
    case json::value_t::object:
      return "a map";
    default:
      return "an unsupported value";
  }
}

// The spelling of each value of a named choice in the config file.
template <typename E>
struct Named {
  E value;
  std::string_view name;
};
constexpr Named<StoreKind> kStoreKinds[] = {{StoreKind::kSqlite, "sqlite"},
                                            {StoreKind::kMemory, "memory"},
                                            {StoreKind::kPostgres, "postgres"}};
constexpr Named<FsyncPolicy> kFsyncPolicies[] = {{FsyncPolicy::kAlways, "always"},
                                                 {FsyncPolicy::kInterval, "interval"},
                                                 {FsyncPolicy::kOff, "off"}};
constexpr Named<RestartPolicy> kRestartPolicies[] = {{RestartPolicy::kAlways, "always"},
                                                     {RestartPolicy::kOnFailure, "on-failure"},
                                                     {RestartPolicy::kNever, "never"}};

template <typename E, std::size_t N>
std::string_view NameOf(const Named<E> (&names)[N], E value) {
  for (const Named<E>& n : names) {
    if (n.value == value) return n.name;
  }
  return "?";
}

// While ConfigKeys runs: every key path a reader is asked for, list
// indexes left out ("pools.restart.policy"). Null otherwise.
thread_local std::set<std::string>* key_record = nullptr;

// Reads the keys of one map. Each getter names a key it knows, converts its
// value if present (absent keys keep the default already in *out), and
// reports a wrong type at the key's path. Finish() reports the keys nobody
// asked for.
class MapReader {
 public:
  // `value` must outlive the reader. null reads as an empty map, so a YAML
  // section whose keys are all commented out means "all defaults".
  MapReader(Problems& problems, const json& value, std::string path)
      : problems_(problems), value_(value), path_(std::move(path)) {
    if (!value_.is_null() && !value_.is_object()) {
      problems_.Add(path_, "expected a map, got " + TypeName(value_));
    }
  }

  std::string PathOf(std::string_view key) const { return Field(path_, key); }

  // The value under `key`, or nullptr if absent.
  const json* Get(std::string_view key) {
    known_.emplace(key);
    if (key_record != nullptr) {
      std::string path = PathOf(key);
      for (std::size_t open; (open = path.find('[')) != std::string::npos;) {
        path.erase(open, path.find(']', open) + 1 - open);
      }
      key_record->insert(std::move(path));
    }
    if (!value_.is_object()) return nullptr;
    auto it = value_.find(key);
    return it == value_.end() ? nullptr : &*it;
  }

  void String(std::string_view key, std::string* out) {
    if (const json* v = Get(key); v && Expect(key, *v, v->is_string(), "a string")) {
      *out = v->get<std::string>();
    }
  }

  // A string naming one of `names`: an unknown name is a problem
  // ("unknown <what> '...' (expected a, b or c)").
  template <typename E, std::size_t N>
  void Choice(std::string_view key, std::string_view what, const Named<E> (&names)[N], E* out) {
    const json* v = Get(key);
    if (!v || !Expect(key, *v, v->is_string(), "a string")) return;
    const std::string& text = v->get_ref<const std::string&>();
    std::vector<std::string_view> allowed;
    for (const Named<E>& n : names) {
      if (text == n.name) {
        *out = n.value;
        return;
      }
      allowed.push_back(n.name);
    }
    problems_.Add(PathOf(key), config_internal::UnknownName(what, text, allowed));
  }

  void Bool(std::string_view key, bool* out) {
    if (const json* v = Get(key); v && Expect(key, *v, v->is_boolean(), "true or false")) {
      *out = v->get<bool>();
    }
  }

  void Int(std::string_view key, int* out) {
    std::int64_t wide = 0;
    if (Integer(key, &wide, std::numeric_limits<int>::min(), std::numeric_limits<int>::max())) {
      *out = static_cast<int>(wide);
    }
  }

  void Size(std::string_view key, std::size_t* out) {
    std::int64_t wide = 0;
    if (Integer(key, &wide, 0, std::numeric_limits<std::int64_t>::max())) {
      *out = static_cast<std::size_t>(wide);
    }
  }

  void Number(std::string_view key, double* out) {
    if (const json* v = Get(key); v && Expect(key, *v, v->is_number(), "a number")) {
      *out = v->get<double>();
    }
  }

  // A duration string ("5s", "1h30m") or an integer number of milliseconds.
  void Dur(std::string_view key, Duration* out) {
    const json* v = Get(key);
    if (!v) return;
    if (v->is_number_integer()) {
      if (v->is_number_unsigned() && v->get<std::uint64_t>() > INT64_MAX) {
        problems_.Add(PathOf(key), "duration is out of range (at most " +
                                       FormatDuration(kMaxConfigDuration) + ")");
      } else if (v->get<std::int64_t>() < 0) {
        problems_.Add(PathOf(key), "duration must not be negative");
      } else {
        *out = Duration(v->get<std::int64_t>());
      }
      return;
    }
    if (v->is_string()) {
      if (auto d = ParseDuration(v->get<std::string>())) {
        *out = *d;
      } else {
        problems_.Add(PathOf(key), "bad duration '" +
                                       config_internal::Shown(v->get<std::string>()) +
                                       "' (expected e.g. 250ms, 5s, 10m, 24h, 1h30m, or an "
                                       "integer number of milliseconds; at most " +
                                       FormatDuration(kMaxConfigDuration) + ")");
      }
      return;
    }
    problems_.Add(PathOf(key), "expected a duration such as 5s, got " + TypeName(*v));
  }

  // null or absent leaves *out alone; otherwise a list whose items are strings.
  void StringList(std::string_view key, std::vector<std::string>* out) {
    const json* v = Get(key);
    if (!v || v->is_null()) return;
    if (!Expect(key, *v, v->is_array(), "a list of strings")) return;
    std::vector<std::string> items;
    for (std::size_t i = 0; i < v->size(); ++i) {
      const json& item = (*v)[i];
      if (!item.is_string()) {
        problems_.Add(Index(PathOf(key), i), "expected a string, got " + TypeName(item));
        continue;
      }
      items.push_back(item.get<std::string>());
    }
    *out = std::move(items);
  }

  void StringMap(std::string_view key, std::map<std::string, std::string>* out) {
    const json* v = Get(key);
    if (!v || v->is_null()) return;
    if (!Expect(key, *v, v->is_object(), "a map of strings")) return;
    std::map<std::string, std::string> items;
    for (const auto& [name, item] : v->items()) {
      if (!item.is_string()) {
        problems_.Add(Field(PathOf(key), name),
                      "expected a string, got " + TypeName(item) + " (quote it)");
        continue;
      }
      items[name] = item.get<std::string>();
    }
    *out = std::move(items);
  }

  void Finish() {
    if (!value_.is_object()) return;
    for (const auto& [key, unused] : value_.items()) {
      if (known_.count(key)) continue;
      // A near miss is almost always a typo of a known key; name it.
      std::string message = "unknown key";
      std::size_t best = 3;
      for (const std::string& candidate : known_) {
        // The distance is at least the difference in length: a long key
        // skips the quadratic comparison.
        const std::size_t gap = key.size() > candidate.size() ? key.size() - candidate.size()
                                                              : candidate.size() - key.size();
        if (gap >= best) continue;
        if (std::size_t d = EditDistance(key, candidate); d < best) {
          best = d;
          message = "unknown key (did you mean '" + candidate + "'?)";
        }
      }
      problems_.Add(PathOf(key), message);
    }
  }

 private:
  bool Expect(std::string_view key, const json& v, bool ok, std::string_view wanted) {
    if (!ok) problems_.Add(PathOf(key), "expected " + std::string(wanted) + ", got " + TypeName(v));
    return ok;
  }

  bool Integer(std::string_view key, std::int64_t* out, std::int64_t min, std::int64_t max) {
    const json* v = Get(key);
    if (!v || !Expect(key, *v, v->is_number_integer(), "an integer")) return false;
    bool too_big = v->is_number_unsigned() && v->get<std::uint64_t>() > INT64_MAX;
    std::int64_t n = too_big ? 0 : v->get<std::int64_t>();
    if (too_big || n > max) {
      problems_.Add(PathOf(key), "value is too large (at most " + std::to_string(max) + ")");
      return false;
    }
    if (n < min) {
      problems_.Add(PathOf(key), "must not be negative");
      return false;
    }
    *out = n;
    return true;
  }

  Problems& problems_;
  const json& value_;
  std::string path_;
  std::set<std::string, std::less<>> known_;
};

// Calls read(item_json, item_path) for each item of the list under `key`.
template <typename ReadItem>
void ForEachItem(MapReader& parent, Problems& problems, std::string_view key, ReadItem read) {
  const json* v = parent.Get(key);
  if (!v || v->is_null()) return;
  if (!v->is_array()) {
    problems.Add(parent.PathOf(key), "expected a list, got " + TypeName(*v));
    return;
  }
  for (std::size_t i = 0; i < v->size(); ++i) read((*v)[i], Index(parent.PathOf(key), i));
}

// `<role>_token` or `<role>_token_file`, never both. The file is read now so
// that a missing secret stops the daemon at start, not at the first hello.
void ReadToken(MapReader& auth, Problems& problems, const std::string& key, std::string* out) {
  const std::string file_key = key + "_file";
  auth.String(key, out);
  std::string file;
  auth.String(file_key, &file);
  if (!auth.Get(file_key)) return;
  if (auth.Get(key)) {
    problems.Add(auth.PathOf(file_key), "cannot be set together with " + auth.PathOf(key));
    return;
  }
  std::string error;
  mode_t mode = 0;
  std::optional<std::string> text =
      ReadRegularFile(file, config_internal::kMaxTokenBytes, &error, &mode);
  if (!text) {
    problems.Add(auth.PathOf(file_key), "cannot read '" + file + "': " + error);
    return;
  }
  // A secret others can read (or replace) is no secret; sshd refuses such
  // key files the same way.
  if (mode & (S_IRGRP | S_IWGRP | S_IROTH | S_IWOTH)) {
    char octal[16];
    std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
    problems.Add(auth.PathOf(file_key), "'" + file + "' is accessible by group or others (mode " +
                                            octal + "); run: chmod 600 '" + file + "'");
    return;
  }
  // Editors and `echo secret > file` leave a trailing newline.
  text->erase(text->find_last_not_of(" \t\r\n\f\v") + 1);
  if (text->empty()) {
    problems.Add(auth.PathOf(file_key), "'" + file + "' is empty");
    return;
  }
  *out = std::move(*text);
}

// A sub-map of `parent` under `key`, absent or null reading as empty.
MapReader Section(MapReader& parent, Problems& problems, std::string_view key) {
  static const json kNull;
  const json* v = parent.Get(key);
  return MapReader(problems, v ? *v : kNull, parent.PathOf(key));
}

void ReadBackoff(MapReader& parent, Problems& problems, std::string_view key, BackoffConfig* out) {
  MapReader backoff = Section(parent, problems, key);
  backoff.Dur("initial", &out->initial);
  backoff.Dur("max", &out->max);
  backoff.Number("jitter", &out->jitter);
  backoff.Finish();
}

void ReadRouting(MapReader& r, Problems& problems, RoutingConfig* out) {
  r.String("strategy", &out->strategy);
  r.Dur("affinity_wait", &out->affinity_wait);
  ForEachItem(r, problems, "rules", [&](const json& item, const std::string& path) {
    MapReader rule(problems, item, path);
    RoutingRule parsed;
    rule.StringList("skills", &parsed.skills);
    rule.String("strategy", &parsed.strategy);
    if (rule.Get("max_running")) {
      parsed.max_running = 0;
      rule.Int("max_running", &*parsed.max_running);
    }
    if (const json* rate = rule.Get("rate"); rate && !rate->is_null()) {
      MapReader cap = Section(rule, problems, "rate");
      parsed.rate = RateCap{};
      cap.Int("tasks", &parsed.rate->tasks);
      cap.Dur("per", &parsed.rate->per);
      if (rate->is_object()) {
        if (!cap.Get("tasks")) problems.Add(cap.PathOf("tasks"), "missing");
        if (!cap.Get("per")) problems.Add(cap.PathOf("per"), "missing");
      }
      cap.Finish();
    }
    rule.String("triage", &parsed.triage);
    if (rule.Get("triage") && parsed.triage.empty()) {
      problems.Add(rule.PathOf("triage"), "must name a skill (leave it out for no triage)");
    }
    rule.Dur("triage_timeout", &parsed.triage_timeout);
    if (rule.Get("triage_timeout") && !rule.Get("triage")) {
      problems.Add(rule.PathOf("triage_timeout"), "applies only to a rule with triage");
    }
    // A rule that only caps or triages keeps the default strategy.
    if (item.is_object() && !rule.Get("strategy") && !parsed.max_running && !parsed.rate &&
        !rule.Get("triage")) {
      problems.Add(rule.PathOf("strategy"), "missing (or set max_running, rate or triage)");
    }
    rule.Finish();
    out->rules.push_back(std::move(parsed));
  });

  MapReader outlier = Section(r, problems, "outlier");
  outlier.Bool("enabled", &out->outlier.enabled);
  outlier.Int("consecutive_failures", &out->outlier.consecutive_failures);
  outlier.Number("latency_factor", &out->outlier.latency_factor);
  outlier.Dur("base_ejection", &out->outlier.base_ejection);
  outlier.Dur("max_ejection", &out->outlier.max_ejection);
  outlier.Number("max_ejection_percent", &out->outlier.max_ejection_percent);
  outlier.Finish();
}

void ReadPool(const json& item, const std::string& path, Problems& problems, PoolConfig* out) {
  MapReader pool(problems, item, path);
  pool.String("name", &out->name);
  pool.StringList("command", &out->command);
  pool.StringList("sidecar", &out->sidecar);
  pool.Int("replicas", &out->replicas);
  pool.StringMap("env", &out->env);
  pool.String("cwd", &out->cwd);
  pool.Dur("stop_grace", &out->stop_grace);
  pool.Dur("start_timeout", &out->start_timeout);
  if (item.is_object()) {
    if (!pool.Get("name")) problems.Add(pool.PathOf("name"), "missing");
    if (!pool.Get("command")) problems.Add(pool.PathOf("command"), "missing");
    const json* sidecar = pool.Get("sidecar");
    if (sidecar && sidecar->is_array() && sidecar->empty()) {
      problems.Add(pool.PathOf("sidecar"), "must name a program (a non-empty list of strings)");
    }
  }

  MapReader restart = Section(pool, problems, "restart");
  restart.Choice("policy", "restart policy", kRestartPolicies, &out->restart.policy);
  restart.Dur("min_uptime", &out->restart.min_uptime);
  restart.Int("max_restarts", &out->restart.max_restarts);
  restart.Dur("window", &out->restart.window);
  ReadBackoff(restart, problems, "backoff", &out->restart.backoff);
  restart.Finish();
  pool.Finish();
}

void ReadConfig(const json& root, Problems& problems, Config* out) {
  MapReader top(problems, root, "");
  top.String("listen", &out->listen);
  top.String("unix_socket", &out->unix_socket);
  top.String("metrics_listen", &out->metrics_listen);
  top.String("advertise", &out->advertise);
  top.String("data_dir", &out->data_dir);
  top.String("log_level", &out->log_level);

  MapReader store = Section(top, problems, "store");
  store.Choice("kind", "store kind", kStoreKinds, &out->store.kind);
  store.Choice("fsync", "fsync policy", kFsyncPolicies, &out->store.fsync);
  store.Dur("fsync_interval", &out->store.fsync_interval);
  store.Size("journal_bytes", &out->store.journal_bytes);
  store.String("url", &out->store.url);
  store.Dur("lease", &out->store.lease);
  store.Dur("renew", &out->store.renew);
  if (out->store.kind != StoreKind::kPostgres) {
    for (std::string_view key : {"lease", "renew"}) {
      if (store.Get(key)) {
        problems.Add(store.PathOf(key), "applies only to store.kind postgres (store.kind is " +
                                            std::string(ConfigName(out->store.kind)) + ")");
      }
    }
  }
  store.Finish();

  MapReader auth = Section(top, problems, "auth");
  ReadToken(auth, problems, "worker_token", &out->auth.worker_token);
  ReadToken(auth, problems, "client_token", &out->auth.client_token);
  ReadToken(auth, problems, "admin_token", &out->auth.admin_token);
  auth.Finish();

  if (const json* tls_value = top.Get("tls"); tls_value && !tls_value->is_null()) {
    out->tls.enabled = true;
    MapReader tls = Section(top, problems, "tls");
    tls.String("cert", &out->tls.cert);
    tls.String("key", &out->tls.key);
    tls.String("client_ca", &out->tls.client_ca);
    tls.Finish();
  }

  MapReader routing = Section(top, problems, "routing");
  ReadRouting(routing, problems, &out->routing);
  routing.Finish();

  MapReader tasks = Section(top, problems, "tasks");
  tasks.Dur("timeout", &out->tasks.timeout);
  tasks.Int("max_attempts", &out->tasks.max_attempts);
  tasks.Int("max_interruptions", &out->tasks.max_interruptions);
  tasks.Int("max_depth", &out->tasks.max_depth);
  tasks.Dur("result_ttl", &out->tasks.result_ttl);
  tasks.Size("max_ended", &out->tasks.max_ended);
  ReadBackoff(tasks, problems, "retry_backoff", &out->tasks.retry_backoff);
  tasks.Dur("queue_ttl", &out->tasks.queue_ttl);
  tasks.Finish();

  MapReader heartbeat = Section(top, problems, "heartbeat");
  heartbeat.Dur("interval", &out->heartbeat.interval);
  heartbeat.Int("misses", &out->heartbeat.misses);
  heartbeat.Dur("adopt_grace", &out->heartbeat.adopt_grace);
  heartbeat.Finish();

  MapReader limits = Section(top, problems, "limits");
  limits.Size("max_frame_bytes", &out->limits.max_frame_bytes);
  limits.Size("max_connections", &out->limits.max_connections);
  limits.Size("max_queued", &out->limits.max_queued);
  limits.Dur("hello_timeout", &out->limits.hello_timeout);
  limits.Int("max_json_depth", &out->limits.max_json_depth);
  limits.Finish();

  ForEachItem(top, problems, "pools", [&](const json& item, const std::string& path) {
    PoolConfig pool;
    ReadPool(item, path, problems, &pool);
    out->pools.push_back(std::move(pool));
  });

  MapReader shutdown = Section(top, problems, "shutdown");
  shutdown.Dur("drain_timeout", &out->shutdown.drain_timeout);
  shutdown.Finish();

  top.Finish();
}

}  // namespace

std::string_view ConfigName(StoreKind kind) { return NameOf(kStoreKinds, kind); }
std::string_view ConfigName(FsyncPolicy policy) { return NameOf(kFsyncPolicies, policy); }
std::string_view ConfigName(RestartPolicy policy) { return NameOf(kRestartPolicies, policy); }

std::vector<std::string> ConfigKeys() {
  // Read a document with one of each list item and every optional section,
  // so that every reader runs; the problems it has (missing names, ...) do
  // not matter here.
  const json probe = {{"tls", json::object()},
                      {"routing", {{"rules", json::array({json::object()})}}},
                      {"pools", json::array({json::object()})}};
  std::set<std::string> seen;
  key_record = &seen;
  Problems problems("");
  Config config;
  ReadConfig(probe, problems, &config);
  key_record = nullptr;
  // A section ("store", "pools.restart") is the prefix of its keys: only
  // the keys that hold values are listed.
  std::vector<std::string> keys;
  for (auto it = seen.begin(); it != seen.end(); ++it) {
    auto next = std::next(it);
    if (next != seen.end() && next->rfind(*it + ".", 0) == 0) continue;
    keys.push_back(*it);
  }
  return keys;
}

ConfigResult LoadConfig(const std::string& path) {
  Problems problems(path);
  auto fail = [&]() { return ConfigResult{std::nullopt, problems.ToError()}; };

  std::optional<Format> format = config_internal::FormatOf(path);
  if (!format) {
    problems.Add("", "unknown config format (expected a .yaml, .yml or .json file)");
    return fail();
  }
  std::string error;
  std::optional<std::string> text = ReadRegularFile(path, config_internal::kMaxConfigBytes, &error);
  if (!text) {
    problems.Add("", "cannot read config: " + error);
    return fail();
  }
  json root = config_internal::ParseDocument(*text, *format, problems);
  if (!problems.empty()) return fail();

  Config config;
  config.source_path = path;
  ReadConfig(root, problems, &config);
  if (!problems.empty()) return fail();

  if (std::optional<ConfigError> invalid = ValidateConfig(config)) {
    return ConfigResult{std::nullopt, std::move(invalid)};
  }
  return ConfigResult{std::move(config), std::nullopt};
}

}  // namespace pincer
