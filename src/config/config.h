// The daemon's configuration, as read from a YAML or JSON file (same schema,
// chosen by the file's extension). Every field has the default that
// docs/configuration.md names; LoadConfig fills only what the file sets.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/backoff.h"  // BackoffConfig

namespace pincer {

using Duration = std::chrono::milliseconds;

// The values of the config's named choices, read from their spelling in the
// file once (ConfigName gives the spelling back, for logs and views).
enum class StoreKind { kSqlite, kMemory, kPostgres };  // store.kind: sqlite, memory, postgres
// store.fsync: always, interval, off
enum class FsyncPolicy {
  kAlways,    // every commit is on disk when it returns
  kInterval,  // the journal is synced at most every interval, at a commit
  kOff,       // never synced by pincer: survives kill -9, not a power cut
};
// pools.restart.policy: always, on-failure, never
enum class RestartPolicy { kAlways, kOnFailure, kNever };

std::string_view ConfigName(StoreKind kind);
std::string_view ConfigName(FsyncPolicy policy);
std::string_view ConfigName(RestartPolicy policy);

struct StoreConfig {
  StoreKind kind = StoreKind::kSqlite;
  FsyncPolicy fsync = FsyncPolicy::kAlways;
  Duration fsync_interval{100};  // with fsync: interval
  // sqlite: bytes of changes the journal holds before its oldest rows are
  // folded into the tasks table (docs/durability.md)
  std::size_t journal_bytes = 64 << 20;
  // postgres: the libpq URI of the database (postgresql://...). It may
  // hold a password: logs and messages show it masked (MaskPostgresUrl).
  std::string url;
  // postgres: the leader's lease (docs/high-availability.md). It lasts
  // `lease` past its last renewal (by the database's clock) and is renewed
  // every `renew`; a standby looks for a free lease as often.
  Duration lease{4000};
  Duration renew{1000};

  bool operator==(const StoreConfig&) const = default;
};

struct AuthConfig {
  // Empty token: that role needs no token. *_token_file is read at load time
  // into the token itself (trailing whitespace trimmed).
  std::string worker_token;
  std::string client_token;
  // Set: a client hello with this token gets the admin role, and drain,
  // reload and retry need it. Empty: every client may send them.
  std::string admin_token;

  bool operator==(const AuthConfig&) const = default;
};

// TLS on the `listen` address (the unix socket stays plain). The files are
// read and checked at load time, and read again at every reload (rotation).
struct TlsConfig {
  bool enabled = false;   // the `tls` section is present
  std::string cert;       // PEM certificate chain, leaf first
  std::string key;        // its private key (PEM, unencrypted)
  std::string client_ca;  // empty: no client certificate asked for

  bool operator==(const TlsConfig&) const = default;
};

// At most `tasks` starts of a rule's tasks within any window of `per`.
struct RateCap {
  int tasks = 0;
  Duration per{0};

  bool operator==(const RateCap&) const = default;
};

struct RoutingRule {
  // Matches a task requiring all of these; [] (a triage rule only) matches
  // the tasks that require no skill.
  std::vector<std::string> skills;
  std::string strategy;  // a name known to the routing factory; "" = routing.strategy
  // Caps on the rule's tasks (an API quota): at most this many running at
  // once, at most rate.tasks started per rate.per. Unset: no cap.
  std::optional<int> max_running;
  std::optional<RateCap> rate;
  // A triage skill: a matching task is first run as a triage step on a
  // worker with this skill, whose output names the skills the task is then
  // routed by (docs/configuration.md). "" = no triage.
  std::string triage;
  Duration triage_timeout{60000};  // the triage step's attempt timeout

  bool operator==(const RoutingRule&) const = default;
};

struct OutlierConfig {
  bool enabled = true;
  int consecutive_failures = 5;
  double latency_factor = 0.0;  // 0 disables latency-based ejection
  Duration base_ejection{30000};
  Duration max_ejection{300000};
  double max_ejection_percent = 50.0;

  bool operator==(const OutlierConfig&) const = default;
};

struct RoutingConfig {
  std::string strategy = "least_connections";
  Duration affinity_wait{10000};
  std::vector<RoutingRule> rules;
  OutlierConfig outlier;

  bool operator==(const RoutingConfig&) const = default;
};

struct TasksConfig {
  Duration timeout{10 * 60 * 1000};
  int max_attempts = 3;
  Duration result_ttl{24 * 60 * 60 * 1000};
  // At most this many ended tasks are kept; beyond it the oldest ended go
  // first, before their result_ttl. 0: no limit.
  std::size_t max_ended = 100000;
  // Attempts of one task cut short by pincerd restarts (not counted toward
  // max_attempts): one more fails the task, so a crash loop ends.
  int max_interruptions = 5;
  // The deepest a subtask may nest below a task submitted by a client (a
  // child of that task is at depth 1). 0: workers may not submit subtasks.
  int max_depth = 8;
  // The pause before attempt n + 1 of a task whose attempt n failed
  // retryably or timed out: initial * 2^(n-1), capped at max, plus up to
  // jitter of it at random (docs/configuration.md, `tasks`).
  BackoffConfig retry_backoff{Duration{1000}, Duration{5 * 60 * 1000}, 0.2};
  // A task that waits (queued, not running) longer than this at a stretch
  // ends timed_out with an `expired:` error. 0: no limit.
  Duration queue_ttl{0};

  bool operator==(const TasksConfig&) const = default;
};

struct HeartbeatConfig {
  Duration interval{5000};
  int misses = 3;
  // How long a running task whose worker may come back (pincerd took over
  // or restarted; a worker that lists its tasks lost its connection) waits
  // for that worker to adopt it before it is retried (docs/configuration.md).
  // Negative: not set, interval × misses.
  Duration adopt_grace{-1};
  Duration AdoptGrace() const { return adopt_grace.count() >= 0 ? adopt_grace : interval * misses; }

  bool operator==(const HeartbeatConfig&) const = default;
};

struct LimitsConfig {
  std::size_t max_frame_bytes = 16 * 1024 * 1024;
  std::size_t max_connections = 10000;
  std::size_t max_queued = 1000000;
  Duration hello_timeout{5000};
  // Deepest nesting of arrays and objects in a message line (the message
  // object is level 1); 2..kMaxConfigJsonDepth (common/json_text.h).
  int max_json_depth = 64;

  bool operator==(const LimitsConfig&) const = default;
};

struct RestartConfig {
  RestartPolicy policy = RestartPolicy::kOnFailure;
  BackoffConfig backoff;
  Duration min_uptime{30000};
  int max_restarts = 5;
  Duration window{60000};

  bool operator==(const RestartConfig&) const = default;
};

struct PoolConfig {
  std::string name;
  std::vector<std::string> command;  // argv; no shell
  // A companion process per replica (e.g. the model gateway its worker talks
  // to), started before `command`; the two live and die as a pair. Empty: none.
  std::vector<std::string> sidecar;
  int replicas = 1;
  std::map<std::string, std::string> env;
  std::string cwd;  // empty: pincerd's own working directory
  RestartConfig restart;
  Duration stop_grace{10000};     // SIGTERM -> SIGKILL
  Duration start_timeout{10000};  // spawn -> hello

  bool operator==(const PoolConfig&) const = default;
};

struct ShutdownConfig {
  Duration drain_timeout{30000};  // how long running tasks may finish on SIGTERM

  bool operator==(const ShutdownConfig&) const = default;
};

struct Config {
  std::string listen = "127.0.0.1:7878";
  std::string unix_socket;     // empty: no Unix socket
  std::string metrics_listen;  // empty: no HTTP endpoint
  // What a standby names as the leader's address when this pincerd leads
  // (postgres store); empty: the address `listen` bound.
  std::string advertise;
  std::string data_dir = "./var/pincer";
  StoreConfig store;
  AuthConfig auth;
  TlsConfig tls;
  RoutingConfig routing;
  TasksConfig tasks;
  HeartbeatConfig heartbeat;
  LimitsConfig limits;
  std::vector<PoolConfig> pools;
  ShutdownConfig shutdown;
  std::string log_level = "info";

  std::string source_path;  // the file this came from, for messages

  // Field by field, source_path included: lets a reload tell whether anything changed.
  bool operator==(const Config&) const = default;
};

// A config error names the file and the key, e.g.
//   "config/pincer.yaml: routing.strategy: unknown strategy 'fastest' (...)".
// When a file has several problems, `message` holds one such line for each.
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

// Every key LoadConfig reads, as dotted paths ("store.journal_bytes",
// "pools.restart.backoff.initial"; a list item adds no segment), sorted.
// Sections are not listed, only the keys under them. Derived from the
// reader itself, so that tests can hold docs/configuration.md and
// config/examples/full.yaml to it.
std::vector<std::string> ConfigKeys();

// Validates an already-built Config (cross-field rules: rule strategies
// exist, pool names unique, ...). Returns an error message or nullopt.
std::optional<ConfigError> ValidateConfig(const Config& config);

// The longest duration a config may set (10 years): far below the limits
// of the clock's arithmetic (nanoseconds in 64 bits, about 292 years).
inline constexpr Duration kMaxConfigDuration{87600LL * 60 * 60 * 1000};

// "250ms", "5s", "10m", "24h", "1h30m", "1.5s"; also a bare integer =
// milliseconds. Units go from large to small. nullopt for anything else:
// negative, unknown unit, finer than a millisecond, overflow.
std::optional<Duration> ParseDuration(const std::string& text);
// The shortest exact form that ParseDuration reads back: 0 -> "0s",
// 250 -> "250ms", 1500 -> "1.5s", 5400000 -> "1h30m".
std::string FormatDuration(Duration d);

}  // namespace pincer
