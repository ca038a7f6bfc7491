#include "config/config_diff.h"

#include <algorithm>
#include <map>

namespace pincer {
namespace {

std::string Text(const std::string& s) { return s.empty() ? "\"\"" : s; }
std::string Text(Duration d) { return FormatDuration(d); }
std::string Text(bool b) { return b ? "true" : "false"; }
std::string Text(RestartPolicy p) { return std::string(ConfigName(p)); }
std::string Text(int n) { return std::to_string(n); }
std::string Text(std::size_t n) { return std::to_string(n); }
std::string Text(double x) {
  std::string s = std::to_string(x);
  s.erase(s.find_last_not_of('0') + 1);
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}
std::string Text(const std::vector<std::string>& list) {
  std::string s = "[";
  for (std::size_t i = 0; i < list.size(); ++i) s += (i ? ", " : "") + list[i];
  return s + "]";
}
std::string Text(const RoutingRule& r) {
  std::string s =
      "skills " + Text(r.skills) + " strategy " + (r.strategy.empty() ? "(default)" : r.strategy);
  if (r.max_running) s += " max_running " + std::to_string(*r.max_running);
  if (r.rate) s += " rate " + std::to_string(r.rate->tasks) + " per " + FormatDuration(r.rate->per);
  if (!r.triage.empty()) s += " triage " + r.triage + " (" + FormatDuration(r.triage_timeout) + ")";
  return s;
}

class Changes {
 public:
  template <typename T>
  void Key(const std::string& key, const T& before, const T& after) {
    if (!(before == after)) lines_.push_back(key + ": " + Text(before) + " -> " + Text(after));
  }
  // A secret or a file's content: said to have changed, not shown.
  void Hidden(const std::string& key, bool changed) {
    if (changed) lines_.push_back(key + ": changed");
  }
  void Line(std::string line) { lines_.push_back(std::move(line)); }
  std::vector<std::string> Take() { return std::move(lines_); }

 private:
  std::vector<std::string> lines_;
};

void BackoffKeys(Changes& c, const std::string& key, const BackoffConfig& a,
                 const BackoffConfig& b) {
  c.Key(key + ".initial", a.initial, b.initial);
  c.Key(key + ".max", a.max, b.max);
  c.Key(key + ".jitter", a.jitter, b.jitter);
}

void Pool(Changes& c, const PoolConfig& a, const PoolConfig& b) {
  const std::string key = "pools[" + a.name + "]";
  c.Key(key + ".command", a.command, b.command);
  c.Key(key + ".replicas", a.replicas, b.replicas);
  c.Hidden(key + ".env", a.env != b.env);
  c.Key(key + ".cwd", a.cwd, b.cwd);
  c.Key(key + ".stop_grace", a.stop_grace, b.stop_grace);
  c.Key(key + ".start_timeout", a.start_timeout, b.start_timeout);
  c.Key(key + ".restart.policy", a.restart.policy, b.restart.policy);
  BackoffKeys(c, key + ".restart.backoff", a.restart.backoff, b.restart.backoff);
  c.Key(key + ".restart.min_uptime", a.restart.min_uptime, b.restart.min_uptime);
  c.Key(key + ".restart.max_restarts", a.restart.max_restarts, b.restart.max_restarts);
  c.Key(key + ".restart.window", a.restart.window, b.restart.window);
}

}  // namespace

std::vector<std::string> DescribeConfigChanges(const Config& a, const Config& b) {
  Changes c;
  c.Key("log_level", a.log_level, b.log_level);
  c.Hidden("auth.worker_token", a.auth.worker_token != b.auth.worker_token);
  c.Hidden("auth.client_token", a.auth.client_token != b.auth.client_token);
  c.Hidden("auth.admin_token", a.auth.admin_token != b.auth.admin_token);
  c.Key("tls.cert", a.tls.cert, b.tls.cert);
  c.Key("tls.key", a.tls.key, b.tls.key);
  c.Key("tls.client_ca", a.tls.client_ca, b.tls.client_ca);

  c.Key("routing.strategy", a.routing.strategy, b.routing.strategy);
  c.Key("routing.affinity_wait", a.routing.affinity_wait, b.routing.affinity_wait);
  const std::size_t rules = std::max(a.routing.rules.size(), b.routing.rules.size());
  for (std::size_t i = 0; i < rules; ++i) {
    const std::string key = "routing.rules[" + std::to_string(i) + "]";
    if (i >= a.routing.rules.size()) {
      c.Line(key + ": added (" + Text(b.routing.rules[i]) + ")");
    } else if (i >= b.routing.rules.size()) {
      c.Line(key + ": removed (" + Text(a.routing.rules[i]) + ")");
    } else if (!(a.routing.rules[i] == b.routing.rules[i])) {
      c.Line(key + ": " + Text(a.routing.rules[i]) + " -> " + Text(b.routing.rules[i]));
    }
  }
  const OutlierConfig& oa = a.routing.outlier;
  const OutlierConfig& ob = b.routing.outlier;
  c.Key("routing.outlier.enabled", oa.enabled, ob.enabled);
  c.Key("routing.outlier.consecutive_failures", oa.consecutive_failures, ob.consecutive_failures);
  c.Key("routing.outlier.latency_factor", oa.latency_factor, ob.latency_factor);
  c.Key("routing.outlier.base_ejection", oa.base_ejection, ob.base_ejection);
  c.Key("routing.outlier.max_ejection", oa.max_ejection, ob.max_ejection);
  c.Key("routing.outlier.max_ejection_percent", oa.max_ejection_percent, ob.max_ejection_percent);

  c.Key("tasks.timeout", a.tasks.timeout, b.tasks.timeout);
  c.Key("tasks.max_attempts", a.tasks.max_attempts, b.tasks.max_attempts);
  c.Key("tasks.result_ttl", a.tasks.result_ttl, b.tasks.result_ttl);
  c.Key("tasks.max_ended", a.tasks.max_ended, b.tasks.max_ended);
  c.Key("tasks.max_interruptions", a.tasks.max_interruptions, b.tasks.max_interruptions);
  c.Key("tasks.max_depth", a.tasks.max_depth, b.tasks.max_depth);
  BackoffKeys(c, "tasks.retry_backoff", a.tasks.retry_backoff, b.tasks.retry_backoff);
  c.Key("tasks.queue_ttl", a.tasks.queue_ttl, b.tasks.queue_ttl);

  c.Key("heartbeat.interval", a.heartbeat.interval, b.heartbeat.interval);
  c.Key("heartbeat.misses", a.heartbeat.misses, b.heartbeat.misses);
  c.Key("heartbeat.adopt_grace", a.heartbeat.adopt_grace, b.heartbeat.adopt_grace);

  c.Key("limits.max_frame_bytes", a.limits.max_frame_bytes, b.limits.max_frame_bytes);
  c.Key("limits.max_connections", a.limits.max_connections, b.limits.max_connections);
  c.Key("limits.max_queued", a.limits.max_queued, b.limits.max_queued);
  c.Key("limits.hello_timeout", a.limits.hello_timeout, b.limits.hello_timeout);
  c.Key("limits.max_json_depth", a.limits.max_json_depth, b.limits.max_json_depth);

  c.Key("shutdown.drain_timeout", a.shutdown.drain_timeout, b.shutdown.drain_timeout);

  std::map<std::string, const PoolConfig*> before;
  for (const PoolConfig& p : a.pools) before[p.name] = &p;
  for (const PoolConfig& p : b.pools) {
    auto it = before.find(p.name);
    if (it == before.end()) {
      c.Line("pools: " + p.name + " added (" + std::to_string(p.replicas) + " replicas)");
      continue;
    }
    Pool(c, *it->second, p);
    before.erase(it);
  }
  for (const auto& [name, p] : before) c.Line("pools: " + name + " removed");
  return c.Take();
}

}  // namespace pincer
