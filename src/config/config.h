// The daemon's configuration, as read from a YAML or JSON file (same schema,
// chosen by the file's extension). Every field has the default that
// docs/configuration.md names; LoadConfig fills only what the file sets.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pincer {

using Duration = std::chrono::milliseconds;

struct StoreConfig {
  std::string kind = "sqlite";  // "sqlite" | "memory"
  std::string fsync = "always";  // "always" | "interval" | "off"
  Duration fsync_interval{100};  // with fsync: interval
};

struct AuthConfig {
  // Empty token: that role needs no token. *_token_file is read at load time
  // into the token itself (trailing whitespace trimmed).
  std::string worker_token;
  std::string client_token;
};

struct RoutingRule {
  std::vector<std::string> skills;  // matches a task requiring all of these
  std::string strategy;             // a name known to the routing factory
};

struct OutlierConfig {
  bool enabled = true;
  int consecutive_failures = 5;
  double latency_factor = 0.0;  // 0 disables latency-based ejection
  Duration base_ejection{30000};
  Duration max_ejection{300000};
  double max_ejection_percent = 50.0;
};

struct RoutingConfig {
  std::string strategy = "least_connections";
  Duration affinity_wait{10000};
  std::vector<RoutingRule> rules;
  OutlierConfig outlier;
};

struct TasksConfig {
  Duration timeout{10 * 60 * 1000};
  int max_attempts = 3;
  Duration result_ttl{24 * 60 * 60 * 1000};
};

struct HeartbeatConfig {
  Duration interval{5000};
  int misses = 3;
};

struct LimitsConfig {
  std::size_t max_frame_bytes = 16 * 1024 * 1024;
  std::size_t max_connections = 10000;
  std::size_t max_queued = 1000000;
  Duration hello_timeout{5000};
};

struct BackoffConfig {
  Duration initial{500};
  Duration max{30000};
  double jitter = 0.1;  // fraction of the delay added at random, 0..1
};

struct RestartConfig {
  std::string policy = "on-failure";  // "always" | "on-failure" | "never"
  BackoffConfig backoff;
  Duration min_uptime{30000};
  int max_restarts = 5;
  Duration window{60000};
};

struct PoolConfig {
  std::string name;
  std::vector<std::string> command;  // argv; no shell
  int replicas = 1;
  std::map<std::string, std::string> env;
  std::string cwd;  // empty: pincerd's own working directory
  RestartConfig restart;
  Duration stop_grace{10000};    // SIGTERM -> SIGKILL
  Duration start_timeout{10000};  // spawn -> hello
};

struct ShutdownConfig {
  Duration drain_timeout{30000};  // how long running tasks may finish on SIGTERM
};

struct Config {
  std::string listen = "127.0.0.1:7878";
  std::string unix_socket;     // empty: no Unix socket
  std::string metrics_listen;  // empty: no HTTP endpoint
  std::string data_dir = "./var/pincer";
  StoreConfig store;
  AuthConfig auth;
  RoutingConfig routing;
  TasksConfig tasks;
  HeartbeatConfig heartbeat;
  LimitsConfig limits;
  std::vector<PoolConfig> pools;
  ShutdownConfig shutdown;
  std::string log_level = "info";

  std::string source_path;  // the file this came from, for messages
};

// A config error names the file and the key, e.g.
//   "config/pincer.yaml: routing.strategy: unknown strategy 'fastest'".
struct ConfigError {
  std::string message;
};

// Reads and validates `path` (.yaml/.yml or .json). Unknown keys and bad
// values are errors; nothing is partially applied.
struct ConfigResult {
  std::optional<Config> config;
  std::optional<ConfigError> error;
  bool ok() const { return config.has_value(); }
};
ConfigResult LoadConfig(const std::string& path);

// Validates an already-built Config (cross-field rules: rule strategies
// exist, pool names unique, ...). Returns an error message or nullopt.
std::optional<ConfigError> ValidateConfig(const Config& config);

// "250ms", "5s", "10m", "24h", "1h30m"; also a bare integer = milliseconds.
std::optional<Duration> ParseDuration(const std::string& text);
std::string FormatDuration(Duration d);

}  // namespace pincer
