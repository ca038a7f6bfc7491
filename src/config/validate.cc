// ValidateConfig: every rule about values, including those that span fields.
// LoadConfig runs it after reading, and code that builds a Config by hand
// (tests, reload) gets the same checks.
#include <algorithm>
#include <cmath>
#include <map>
#include <string_view>
#include <vector>

#include "common/json_text.h"  // kMaxConfigJsonDepth
#include "config/config.h"
#include "config/problems.h"
#include "protocol/messages.h"  // the wire's ranges (header-only constants)
#include "tls/tls_context.h"

namespace pincer {
namespace {

using config_internal::Field;
using config_internal::Index;
using config_internal::Problems;

// The names the routing factory knows. Kept here rather than asked of the
// routing module so that config stays below routing in the dependency order.
const std::vector<std::string_view> kStrategies = {"round_robin", "least_connections",
                                                   "skill_match"};

// Rule caps: a start window keeps one time per start it counts, so the
// rate is bounded; a day is the longest quota window APIs use.
constexpr int kMaxRuleRunning = 1000000;
constexpr int kMaxRuleRate = 1000000;
constexpr Duration kMaxRateWindow{24 * 60 * 60 * 1000};

void OneOf(Problems& p, const std::string& path, std::string_view what, const std::string& value,
           const std::vector<std::string_view>& allowed) {
  for (std::string_view name : allowed) {
    if (value == name) return;
  }
  p.Add(path, config_internal::UnknownName(what, value, allowed));
}

void AtLeast(Problems& p, const std::string& path, long long value, long long min) {
  if (value < min) p.Add(path, "must be at least " + std::to_string(min));
}

void NotNegative(Problems& p, const std::string& path, Duration d) {
  if (d.count() < 0) p.Add(path, "must not be negative");
}

void Positive(Problems& p, const std::string& path, Duration d) {
  if (d.count() <= 0) p.Add(path, "must be greater than 0");
}

// HOST:PORT, with IPv6 hosts in brackets ("[::1]:7878"). Port 0 lets the OS
// choose, which tests rely on.
bool IsAddress(const std::string& text) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string_view host = std::string_view(text).substr(0, colon);
  std::string_view port = std::string_view(text).substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return false;
  } else if (host.find(':') != std::string_view::npos) {
    return false;
  }
  if (port.empty() || port.size() > 5) return false;
  int number = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    number = number * 10 + (c - '0');
  }
  return number <= 65535;
}

void Address(Problems& p, const std::string& path, const std::string& value) {
  if (!IsAddress(value)) {
    p.Add(path, "bad address '" + value + "' (expected HOST:PORT, e.g. 127.0.0.1:7878)");
  }
}

// Pool names end up in env (PINCER_POOL), metrics labels and log lines.
bool IsPoolName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

void Fraction(Problems& p, const std::string& path, double value, double max) {
  if (!(value >= 0 && value <= max)) {  // written so that NaN fails too
    p.Add(path, "must be between 0 and " + std::string(max == 1 ? "1" : "100"));
  }
}

// A backoff section at `path`: initial positive (or, with `zero_initial`,
// not negative), max not below it, jitter a fraction.
void ValidateBackoff(Problems& p, const std::string& path, const BackoffConfig& b,
                     bool zero_initial) {
  if (zero_initial) {
    NotNegative(p, Field(path, "initial"), b.initial);
  } else {
    Positive(p, Field(path, "initial"), b.initial);
  }
  if (b.max < b.initial) {
    p.Add(Field(path, "max"), "must not be less than " + Field(path, "initial") + " (" +
                                  FormatDuration(b.initial) + ")");
  }
  Fraction(p, Field(path, "jitter"), b.jitter, 1);
}

void ValidatePool(Problems& p, const std::string& path, const PoolConfig& pool) {
  if (!IsPoolName(pool.name)) {
    p.Add(Field(path, "name"),
          "bad pool name '" + pool.name + "' (use letters, digits, '_', '-' and '.')");
  }
  if (pool.command.empty()) {
    p.Add(Field(path, "command"), "must name a program (a non-empty list of strings)");
  } else if (pool.command[0].empty()) {
    p.Add(Index(Field(path, "command"), 0), "program name must not be empty");
  }
  if (!pool.sidecar.empty() && pool.sidecar[0].empty()) {
    p.Add(Index(Field(path, "sidecar"), 0), "program name must not be empty");
  }
  AtLeast(p, Field(path, "replicas"), pool.replicas, 0);
  for (const auto& [key, value] : pool.env) {
    if (key.empty() || key.find('=') != std::string::npos || key.find('\0') != std::string::npos) {
      p.Add(Field(Field(path, "env"), key), "bad environment variable name");
    }
  }
  const std::string restart = Field(path, "restart");
  // A restart at once would respawn a crashing process in a tight loop.
  ValidateBackoff(p, Field(restart, "backoff"), pool.restart.backoff, /*zero_initial=*/false);
  NotNegative(p, Field(restart, "min_uptime"), pool.restart.min_uptime);
  AtLeast(p, Field(restart, "max_restarts"), pool.restart.max_restarts, 0);
  Positive(p, Field(restart, "window"), pool.restart.window);
  NotNegative(p, Field(path, "stop_grace"), pool.stop_grace);
  NotNegative(p, Field(path, "start_timeout"), pool.start_timeout);
}

// Upper bounds on numbers: a value past them is a typo or an attack, and
// some would overflow the arithmetic that uses them (a deadline is a
// duration added to the clock in 64-bit nanoseconds; heartbeat.interval is
// multiplied by heartbeat.misses). docs/configuration.md lists each range.
void Within(Problems& p, const std::string& path, long long value, long long min, long long max) {
  if (value > max) {
    p.Add(path, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
}

void SizeWithin(Problems& p, const std::string& path, std::size_t value, std::size_t min,
                std::size_t max) {
  if (value > max) {
    p.Add(path, "must be between " + std::to_string(min) + " and " + std::to_string(max));
  }
}

void ShortEnough(Problems& p, const std::string& path, Duration d,
                 Duration max = kMaxConfigDuration) {
  if (d > max) p.Add(path, "must be at most " + FormatDuration(max));
}

void CheckRanges(Problems& p, const Config& c) {
  constexpr long long kMillion = 1000000;
  ShortEnough(p, "store.fsync_interval", c.store.fsync_interval);
  ShortEnough(p, "store.lease", c.store.lease);
  SizeWithin(p, "store.journal_bytes", c.store.journal_bytes, 0, std::size_t{1} << 40);
  ShortEnough(p, "routing.affinity_wait", c.routing.affinity_wait);
  const OutlierConfig& outlier = c.routing.outlier;
  Within(p, "routing.outlier.consecutive_failures", outlier.consecutive_failures, 1, kMillion);
  if (outlier.latency_factor > 1000) {
    p.Add("routing.outlier.latency_factor", "must be 0 (off) or between 1 and 1000");
  }
  ShortEnough(p, "routing.outlier.base_ejection", outlier.base_ejection);
  ShortEnough(p, "routing.outlier.max_ejection", outlier.max_ejection);
  ShortEnough(p, "tasks.timeout", c.tasks.timeout);
  Within(p, "tasks.max_attempts", c.tasks.max_attempts, 1, 1000);
  Within(p, "tasks.max_interruptions", c.tasks.max_interruptions, 0, 1000);
  Within(p, "tasks.max_depth", c.tasks.max_depth, 0, 1000);
  ShortEnough(p, "tasks.result_ttl", c.tasks.result_ttl);
  ShortEnough(p, "tasks.retry_backoff.initial", c.tasks.retry_backoff.initial);
  ShortEnough(p, "tasks.retry_backoff.max", c.tasks.retry_backoff.max);
  SizeWithin(p, "tasks.max_ended", c.tasks.max_ended, 0, 100 * kMillion);
  ShortEnough(p, "heartbeat.interval", c.heartbeat.interval, Duration(60 * 60 * 1000));
  Within(p, "heartbeat.misses", c.heartbeat.misses, 1, 100);
  ShortEnough(p, "heartbeat.adopt_grace", c.heartbeat.adopt_grace, Duration(60 * 60 * 1000));
  SizeWithin(p, "limits.max_frame_bytes", c.limits.max_frame_bytes, 1024, std::size_t{1} << 30);
  SizeWithin(p, "limits.max_connections", c.limits.max_connections, 1, kMillion);
  SizeWithin(p, "limits.max_queued", c.limits.max_queued, 1, 100 * kMillion);
  ShortEnough(p, "limits.hello_timeout", c.limits.hello_timeout);
  for (std::size_t i = 0; i < c.pools.size(); ++i) {
    const PoolConfig& pool = c.pools[i];
    const std::string path = Index("pools", i);
    const std::string restart = Field(path, "restart");
    Within(p, Field(path, "replicas"), pool.replicas, 0, 1000);
    Within(p, Field(restart, "max_restarts"), pool.restart.max_restarts, 0, kMillion);
    ShortEnough(p, Field(Field(restart, "backoff"), "initial"), pool.restart.backoff.initial);
    ShortEnough(p, Field(Field(restart, "backoff"), "max"), pool.restart.backoff.max);
    ShortEnough(p, Field(restart, "min_uptime"), pool.restart.min_uptime);
    ShortEnough(p, Field(restart, "window"), pool.restart.window);
    ShortEnough(p, Field(path, "stop_grace"), pool.stop_grace);
    ShortEnough(p, Field(path, "start_timeout"), pool.start_timeout);
  }
  ShortEnough(p, "shutdown.drain_timeout", c.shutdown.drain_timeout);
}

// The admin token must be its own: shared with the client or worker token,
// every holder of that token would be an admin. Worker and client may share
// one token (the hello names the role), as they could before admin_token.
void CheckTokens(Problems& p, const AuthConfig& auth) {
  auto distinct = [&](const std::string& a, const char* a_key, const std::string& b,
                      const char* b_key) {
    if (!a.empty() && a == b) p.Add(a_key, std::string("must differ from ") + b_key);
  };
  distinct(auth.admin_token, "auth.admin_token", auth.worker_token, "auth.worker_token");
  distinct(auth.admin_token, "auth.admin_token", auth.client_token, "auth.client_token");
}

// Loads the files as pincerd will, so that a file that is missing,
// unreadable or unusable (a key that does not match its certificate, say)
// stops the start or the reload here, with the key that names it.
void ValidateTls(Problems& p, const Config& c) {
  const TlsConfig& tls = c.tls;
  if (c.listen.empty())
    p.Add("tls", "applies to listen, which is not set (unix_socket stays plain)");
  if (tls.cert.empty()) p.Add("tls.cert", "missing (a PEM certificate chain file)");
  if (tls.key.empty()) p.Add("tls.key", "missing (the certificate's PEM private key file)");
  if (tls.cert.empty() || tls.key.empty()) return;
  // pincerd's own pool workers dial in without certificates.
  if (!c.pools.empty() && c.unix_socket.empty()) {
    p.Add("tls", "pools need unix_socket when tls is set (pool workers connect to it)");
  }
  std::vector<tls::Problem> problems;
  tls::MakeServerContext(tls.cert, tls.key, tls.client_ca, &problems);
  for (const tls::Problem& problem : problems) {
    p.Add(tls::ConfigKey(problem.file), problem.message);
  }
}

}  // namespace

std::optional<ConfigError> ValidateConfig(const Config& c) {
  Problems p(c.source_path);

  if (c.listen.empty() && c.unix_socket.empty()) {
    p.Add("listen", "must be set unless unix_socket is (nothing would accept connections)");
  }
  if (!c.listen.empty()) Address(p, "listen", c.listen);
  if (!c.metrics_listen.empty()) {
    Address(p, "metrics_listen", c.metrics_listen);
    // Two listeners on one fixed port cannot both bind; port 0 is fine.
    if (c.metrics_listen == c.listen && !c.listen.ends_with(":0")) {
      p.Add("metrics_listen", "must differ from listen (" + c.listen + ")");
    }
  }
  if (c.tls.enabled) ValidateTls(p, c);
  OneOf(p, "log_level", "log level", c.log_level,
        {"trace", "debug", "info", "warn", "error", "off"});

  Positive(p, "store.fsync_interval", c.store.fsync_interval);
  if (c.store.kind == StoreKind::kSqlite && c.data_dir.empty()) {
    p.Add("data_dir", "must be set when store.kind is sqlite");
  }
  // The url may hold a password: never echoed back.
  if (c.store.kind == StoreKind::kPostgres) {
    if (c.store.url.empty()) {
      p.Add("store.url", "must be set when store.kind is postgres (postgresql://...)");
    } else if (!c.store.url.starts_with("postgresql://") &&
               !c.store.url.starts_with("postgres://")) {
      p.Add("store.url", "must be a URI starting with postgresql:// or postgres://");
    }
    Positive(p, "store.lease", c.store.lease);
    Positive(p, "store.renew", c.store.renew);
    if (c.store.renew >= c.store.lease) {
      p.Add("store.renew", "must be shorter than store.lease (" + FormatDuration(c.store.lease) +
                               "): the lease would lapse between renewals");
    }
    if (!c.advertise.empty()) Address(p, "advertise", c.advertise);
  } else if (!c.store.url.empty()) {
    p.Add("store.url", "applies only to store.kind postgres (store.kind is " +
                           std::string(ConfigName(c.store.kind)) + ")");
  }

  OneOf(p, "routing.strategy", "strategy", c.routing.strategy, kStrategies);
  NotNegative(p, "routing.affinity_wait", c.routing.affinity_wait);
  for (std::size_t i = 0; i < c.routing.rules.size(); ++i) {
    const RoutingRule& rule = c.routing.rules[i];
    const std::string path = Index("routing.rules", i);
    // A rule without skills matches the tasks that need none: only a
    // triage rule has a use for that (the skills it finds route the task).
    if (rule.skills.empty() && rule.triage.empty()) {
      p.Add(Field(path, "skills"), "must name at least one skill (or set triage)");
    }
    if (!rule.triage.empty()) {
      if (std::find(rule.skills.begin(), rule.skills.end(), rule.triage) != rule.skills.end()) {
        p.Add(Field(path, "triage"), "must not be one of the rule's own skills ('" + rule.triage +
                                         "'): the triage step would match the rule it serves");
      }
      if (rule.triage_timeout.count() <= 0) {
        p.Add(Field(path, "triage_timeout"), "must be greater than 0");
      }
    }
    for (std::size_t s = 0; s < rule.skills.size(); ++s) {
      if (rule.skills[s].empty()) p.Add(Index(Field(path, "skills"), s), "must not be empty");
    }
    if (!rule.strategy.empty() || (!rule.max_running && !rule.rate && rule.triage.empty())) {
      OneOf(p, Field(path, "strategy"), "strategy", rule.strategy, kStrategies);
    }
    if (rule.max_running && (*rule.max_running < 1 || *rule.max_running > kMaxRuleRunning)) {
      p.Add(Field(path, "max_running"), "must be between 1 and " + std::to_string(kMaxRuleRunning) +
                                            " (leave it out for no cap)");
    }
    if (rule.rate) {
      const std::string rate = Field(path, "rate");
      if (rule.rate->tasks < 1 || rule.rate->tasks > kMaxRuleRate) {
        p.Add(Field(rate, "tasks"), "must be between 1 and " + std::to_string(kMaxRuleRate));
      }
      if (rule.rate->per.count() <= 0 || rule.rate->per > kMaxRateWindow) {
        p.Add(Field(rate, "per"),
              "must be greater than 0 and at most " + FormatDuration(kMaxRateWindow));
      }
    }
  }
  const OutlierConfig& outlier = c.routing.outlier;
  AtLeast(p, "routing.outlier.consecutive_failures", outlier.consecutive_failures, 1);
  if (!(outlier.latency_factor == 0 || outlier.latency_factor >= 1) ||
      std::isinf(outlier.latency_factor)) {
    p.Add("routing.outlier.latency_factor", "must be 0 (off) or at least 1");
  }
  Positive(p, "routing.outlier.base_ejection", outlier.base_ejection);
  if (outlier.max_ejection < outlier.base_ejection) {
    p.Add("routing.outlier.max_ejection", "must not be less than routing.outlier.base_ejection (" +
                                              FormatDuration(outlier.base_ejection) + ")");
  }
  Fraction(p, "routing.outlier.max_ejection_percent", outlier.max_ejection_percent, 100);

  NotNegative(p, "tasks.timeout", c.tasks.timeout);
  // The defaults of what a submit may set: the same ranges as on the wire.
  if (c.tasks.timeout.count() > kMaxTimeoutMs) {
    p.Add("tasks.timeout", "must be at most 8760h (365 days)");
  }
  AtLeast(p, "tasks.max_attempts", c.tasks.max_attempts, 1);
  AtLeast(p, "tasks.max_interruptions", c.tasks.max_interruptions, 0);
  AtLeast(p, "tasks.max_depth", c.tasks.max_depth, 0);
  if (c.tasks.max_attempts > kMaxAttempts) {
    p.Add("tasks.max_attempts", "must be at most " + std::to_string(kMaxAttempts));
  }
  NotNegative(p, "tasks.result_ttl", c.tasks.result_ttl);
  ValidateBackoff(p, "tasks.retry_backoff", c.tasks.retry_backoff, /*zero_initial=*/true);
  NotNegative(p, "tasks.queue_ttl", c.tasks.queue_ttl);
  if (c.tasks.queue_ttl.count() > kMaxTimeoutMs) {
    p.Add("tasks.queue_ttl", "must be at most 8760h (365 days)");
  }

  Positive(p, "heartbeat.interval", c.heartbeat.interval);
  AtLeast(p, "heartbeat.misses", c.heartbeat.misses, 1);

  // Below 1 KiB even a hello with a token and a few skills may not fit.
  if (c.limits.max_frame_bytes < 1024) p.Add("limits.max_frame_bytes", "must be at least 1024");
  if (c.limits.max_connections < 1) p.Add("limits.max_connections", "must be at least 1");
  if (c.limits.max_queued < 1) p.Add("limits.max_queued", "must be at least 1");
  Positive(p, "limits.hello_timeout", c.limits.hello_timeout);
  // 2: the message object and one level inside (hello labels). The top
  // stays below what pincer's clients and workers accept (kMaxPeerJsonDepth)
  // with the daemon's reply envelopes around a value.
  if (c.limits.max_json_depth < 2 || c.limits.max_json_depth > kMaxConfigJsonDepth) {
    p.Add("limits.max_json_depth", "must be from 2 to " + std::to_string(kMaxConfigJsonDepth));
  }

  std::map<std::string, std::size_t> first_with_name;
  for (std::size_t i = 0; i < c.pools.size(); ++i) {
    const std::string path = Index("pools", i);
    ValidatePool(p, path, c.pools[i]);
    auto [it, inserted] = first_with_name.emplace(c.pools[i].name, i);
    if (!inserted && !c.pools[i].name.empty()) {
      p.Add(Field(path, "name"), "duplicate pool name '" + c.pools[i].name + "' (also " +
                                     Index("pools", it->second) + ")");
    }
  }

  NotNegative(p, "shutdown.drain_timeout", c.shutdown.drain_timeout);
  CheckRanges(p, c);
  CheckTokens(p, c.auth);

  if (p.empty()) return std::nullopt;
  return p.ToError();
}

}  // namespace pincer
