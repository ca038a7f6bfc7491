#include "config/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pincer {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

// Each test gets its own directory, so tests may run in parallel.
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "pincer-config-XXXXXX");
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  // A file only its owner may read, as token files must be.
  std::string WriteSecret(const std::string& name, const std::string& text) {
    std::string path = Write(name, text);
    EXPECT_EQ(chmod(path.c_str(), 0600), 0);
    return path;
  }

  // Loads text that must be valid; fails the test with the error otherwise.
  Config Load(const std::string& name, const std::string& text) {
    ConfigResult result = LoadConfig(Write(name, text));
    EXPECT_TRUE(result.ok()) << (result.error ? result.error->message : "");
    return result.ok() ? *result.config : Config{};
  }

  // Loads text that must be refused and returns the message.
  std::string Error(const std::string& name, const std::string& text) {
    ConfigResult result = LoadConfig(Write(name, text));
    EXPECT_FALSE(result.ok()) << "accepted: " << text;
    return result.error ? result.error->message : "";
  }

  std::filesystem::path dir_;
};

Config WithSource(Config c, const std::string& path) {
  c.source_path = path;
  return c;
}

// ---- durations ---------------------------------------------------------

TEST(DurationTest, ParsesEveryForm) {
  struct Case {
    const char* text;
    milliseconds want;
  };
  const Case cases[] = {
      {"250ms", milliseconds(250)},
      {"5s", seconds(5)},
      {"10m", minutes(10)},
      {"24h", hours(24)},
      {"1h30m", minutes(90)},
      {"1m30s", seconds(90)},
      {"2h3m4s5ms", milliseconds(7384005)},
      {"1.5s", milliseconds(1500)},
      {"0.25s", milliseconds(250)},
      {"1.5h", minutes(90)},
      {"0", milliseconds(0)},
      {"0s", milliseconds(0)},
      {"1500", milliseconds(1500)},
      {"007s", seconds(7)},
  };
  for (const Case& c : cases) {
    std::optional<Duration> got = ParseDuration(c.text);
    ASSERT_TRUE(got.has_value()) << c.text;
    EXPECT_EQ(*got, c.want) << c.text;
  }
}

TEST(DurationTest, RefusesBadForms) {
  for (const char* text : {"",
                           "s",
                           "-5s",
                           "-5",
                           "5 s",
                           " 5s",
                           "5s ",
                           "5sec",
                           "5d",
                           "5us",
                           "1.5",
                           "1.s",
                           ".5s",
                           "1.0005s",
                           "30m1h",
                           "1m1m",
                           "5S",
                           "1e3ms",
                           "99999999999999999999",
                           "9999999999999999h",
                           "+5s",
                           "5s5"}) {
    EXPECT_FALSE(ParseDuration(text).has_value()) << "'" << text << "'";
  }
}

TEST(DurationTest, FormatsShortestExactForm) {
  EXPECT_EQ(FormatDuration(milliseconds(0)), "0s");
  EXPECT_EQ(FormatDuration(milliseconds(250)), "250ms");
  EXPECT_EQ(FormatDuration(milliseconds(1000)), "1s");
  EXPECT_EQ(FormatDuration(milliseconds(1500)), "1.5s");
  EXPECT_EQ(FormatDuration(milliseconds(1001)), "1.001s");
  EXPECT_EQ(FormatDuration(seconds(90)), "1m30s");
  EXPECT_EQ(FormatDuration(minutes(10)), "10m");
  EXPECT_EQ(FormatDuration(minutes(90)), "1h30m");
  EXPECT_EQ(FormatDuration(hours(24)), "24h");
  EXPECT_EQ(FormatDuration(hours(1) + milliseconds(1500)), "1h1.5s");
  EXPECT_EQ(FormatDuration(milliseconds(-1500)), "-1.5s");
}

TEST(DurationTest, FormatRoundTrips) {
  for (std::int64_t ms :
       {1, 999, 1000, 1010, 59999, 60000, 3599999, 3600000, 86400000 + 1, 123456789}) {
    std::string text = FormatDuration(milliseconds(ms));
    EXPECT_EQ(ParseDuration(text), milliseconds(ms)) << text;
  }
}

// ---- defaults and equivalence ------------------------------------------

TEST_F(ConfigTest, EmptyFilesMeanAllDefaults) {
  for (auto [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"empty.yaml", ""},
           {"comments.yml", "# nothing set\n\n# at all\n"},
           {"null.yaml", "~\n"},
           {"empty.json", ""},
           {"blank.json", "  \n"},
           {"object.json", "{}"},
           {"sections.yaml", "store:\nauth:\nrouting:\ntasks:\npools:\n"}}) {
    std::string path = Write(name, text);
    ConfigResult result = LoadConfig(path);
    ASSERT_TRUE(result.ok()) << name << ": " << result.error->message;
    EXPECT_EQ(*result.config, WithSource(Config{}, path)) << name;
  }
}

TEST_F(ConfigTest, DefaultsMatchTheDocumentedValues) {
  Config c = Load("d.yaml", "");
  EXPECT_EQ(c.listen, "127.0.0.1:7878");
  EXPECT_EQ(c.store.kind, StoreKind::kSqlite);
  EXPECT_EQ(c.store.fsync, FsyncPolicy::kAlways);
  EXPECT_EQ(c.store.journal_bytes, 64u << 20);
  EXPECT_EQ(c.routing.strategy, "least_connections");
  EXPECT_EQ(c.routing.affinity_wait, seconds(10));
  EXPECT_EQ(c.tasks.timeout, minutes(10));
  EXPECT_EQ(c.tasks.max_attempts, 3);
  EXPECT_EQ(c.tasks.result_ttl, hours(24));
  EXPECT_EQ(c.tasks.max_ended, 100000u);
  EXPECT_EQ(c.tasks.max_interruptions, 5);
  EXPECT_EQ(c.heartbeat.interval, seconds(5));
  EXPECT_EQ(c.heartbeat.misses, 3);
  EXPECT_EQ(c.limits.max_frame_bytes, 16u * 1024 * 1024);
  EXPECT_EQ(c.limits.hello_timeout, seconds(5));
  EXPECT_EQ(c.limits.max_json_depth, 64);
  EXPECT_EQ(c.log_level, "info");
  EXPECT_TRUE(c.pools.empty());
  EXPECT_FALSE(ValidateConfig(Config{}).has_value());
}

const char kEveryKeyYaml[] = R"(
listen: "0.0.0.0:7000"
unix_socket: /tmp/pincer.sock
metrics_listen: "127.0.0.1:9000"
data_dir: /var/lib/pincer
log_level: debug
store: { kind: sqlite, fsync: interval, fsync_interval: 50ms, journal_bytes: 1048576 }
auth: { worker_token: w-secret, client_token: "c-secret", admin_token: a-secret }
routing:
  strategy: round_robin
  affinity_wait: 2s
  rules:
    - { skills: [code], strategy: skill_match }
    - skills: [gpu, vision]
      strategy: least_connections
  outlier:
    enabled: false
    consecutive_failures: 7
    latency_factor: 2.5
    base_ejection: 10s
    max_ejection: 5m
    max_ejection_percent: 25
tasks: { timeout: 1h30m, max_attempts: 5, result_ttl: 0, max_ended: 0, max_interruptions: 0 }
heartbeat: { interval: 2500, misses: 4 }
limits: { max_frame_bytes: 2048, max_connections: 10, max_queued: 100, hello_timeout: 1.5s }
pools:
  - name: coder
    command: [pincer-worker, --skill, code, --, openclaw]
    replicas: 0
    env: { MODEL: large, THREADS: "4" }
    cwd: /srv/coder
    restart:
      policy: always
      backoff: { initial: 1s, max: 1m, jitter: 0.5 }
      min_uptime: 0
      max_restarts: 0
      window: 10m
    stop_grace: 20s
    start_timeout: 0s
shutdown: { drain_timeout: 2m }
)";

const char kEveryKeyJson[] = R"({
  "listen": "0.0.0.0:7000",
  "unix_socket": "/tmp/pincer.sock",
  "metrics_listen": "127.0.0.1:9000",
  "data_dir": "/var/lib/pincer",
  "log_level": "debug",
  "store": {"kind": "sqlite", "fsync": "interval", "fsync_interval": 50, "journal_bytes": 1048576},
  "auth": {"worker_token": "w-secret", "client_token": "c-secret", "admin_token": "a-secret"},
  "routing": {
    "strategy": "round_robin",
    "affinity_wait": "2s",
    "rules": [
      {"skills": ["code"], "strategy": "skill_match"},
      {"skills": ["gpu", "vision"], "strategy": "least_connections"}
    ],
    "outlier": {"enabled": false, "consecutive_failures": 7, "latency_factor": 2.5,
                "base_ejection": "10s", "max_ejection": "5m", "max_ejection_percent": 25}
  },
  // comments are accepted in JSON configs
  "tasks": {"timeout": "90m", "max_attempts": 5, "result_ttl": "0", "max_ended": 0,
            "max_interruptions": 0},
  "heartbeat": {"interval": "2.5s", "misses": 4},
  "limits": {"max_frame_bytes": 2048, "max_connections": 10, "max_queued": 100,
             "hello_timeout": "1500ms"},
  "pools": [{
    "name": "coder",
    "command": ["pincer-worker", "--skill", "code", "--", "openclaw"],
    "replicas": 0,
    "env": {"MODEL": "large", "THREADS": "4"},
    "cwd": "/srv/coder",
    "restart": {"policy": "always", "backoff": {"initial": 1000, "max": "60s", "jitter": 0.5},
                "min_uptime": 0, "max_restarts": 0, "window": "600s"},
    "stop_grace": "20s",
    "start_timeout": 0
  }],
  "shutdown": {"drain_timeout": "120s"}
})";

TEST_F(ConfigTest, YamlAndJsonGiveTheSameConfig) {
  Config yaml = Load("all.yaml", kEveryKeyYaml);
  Config json = Load("all.json", kEveryKeyJson);
  json.source_path = yaml.source_path;
  EXPECT_EQ(yaml, json);

  // And every key really was read (nothing left at its default).
  Config want;
  want.listen = "0.0.0.0:7000";
  want.unix_socket = "/tmp/pincer.sock";
  want.metrics_listen = "127.0.0.1:9000";
  want.data_dir = "/var/lib/pincer";
  want.log_level = "debug";
  want.store = {StoreKind::kSqlite, FsyncPolicy::kInterval, milliseconds(50), 1048576, ""};
  want.auth = {"w-secret", "c-secret", "a-secret"};
  want.routing.strategy = "round_robin";
  want.routing.affinity_wait = seconds(2);
  want.routing.rules = {{{"code"}, "skill_match", {}, {}, "", seconds(60)},
                        {{"gpu", "vision"}, "least_connections", {}, {}, "", seconds(60)}};
  want.routing.outlier = {false, 7, 2.5, seconds(10), minutes(5), 25.0};
  want.tasks = {minutes(90), 5, milliseconds(0), 0, 0};
  want.heartbeat = {milliseconds(2500), 4};
  want.limits = {2048, 10, 100, milliseconds(1500)};
  PoolConfig pool;
  pool.name = "coder";
  pool.command = {"pincer-worker", "--skill", "code", "--", "openclaw"};
  pool.replicas = 0;
  pool.env = {{"MODEL", "large"}, {"THREADS", "4"}};
  pool.cwd = "/srv/coder";
  pool.restart = {
      RestartPolicy::kAlways, {seconds(1), minutes(1), 0.5}, milliseconds(0), 0, minutes(10)};
  pool.stop_grace = seconds(20);
  pool.start_timeout = milliseconds(0);
  want.pools = {pool};
  want.shutdown.drain_timeout = minutes(2);
  want.source_path = yaml.source_path;
  EXPECT_EQ(yaml, want);
}

TEST_F(ConfigTest, ShippedConfigsAreValidAndEquivalent) {
  const std::string root = PINCER_SOURCE_DIR;
  ConfigResult yaml = LoadConfig(root + "/config/pincer.yaml");
  ConfigResult json = LoadConfig(root + "/config/examples/pincer.json");
  ASSERT_TRUE(yaml.ok()) << yaml.error->message;
  ASSERT_TRUE(json.ok()) << json.error->message;
  EXPECT_EQ(WithSource(*yaml.config, ""), WithSource(*json.config, ""));

  const Config& c = *yaml.config;
  EXPECT_EQ(c.listen, "127.0.0.1:7878");
  EXPECT_EQ(c.metrics_listen, "127.0.0.1:9464");
  EXPECT_EQ(c.store.kind, StoreKind::kSqlite);
  EXPECT_EQ(c.routing.strategy, "least_connections");
  ASSERT_EQ(c.pools.size(), 1u);
  EXPECT_EQ(c.pools[0].name, "echo");
  EXPECT_EQ(c.pools[0].replicas, 2);
  EXPECT_EQ(c.pools[0].command,
            (std::vector<std::string>{"build/pincer-worker", "--skill", "echo", "--", "cat"}));

  ConfigResult full = LoadConfig(root + "/config/examples/full.yaml");
  ASSERT_TRUE(full.ok()) << full.error->message;
  ASSERT_EQ(full.config->pools.size(), 3u);
  EXPECT_EQ(full.config->pools[1].sidecar,
            (std::vector<std::string>{"/usr/share/pincer/openclaw-replica", "gateway"}));

  ConfigResult openclaw = LoadConfig(root + "/config/examples/openclaw.yaml");
  ASSERT_TRUE(openclaw.ok()) << openclaw.error->message;
  ASSERT_EQ(openclaw.config->pools.size(), 1u);
  EXPECT_EQ(openclaw.config->pools[0].replicas, 2);
  EXPECT_FALSE(openclaw.config->pools[0].sidecar.empty());
  EXPECT_EQ(full.config->tasks.retry_backoff,
            (BackoffConfig{Duration(2000), Duration(600000), 0.3}));
}

TEST_F(ConfigTest, RuleCapsAndQueueTtl) {
  EXPECT_EQ(Config{}.tasks.queue_ttl.count(), 0) << "off by default";
  Config c =
      Load("a.yaml",
           "tasks: { queue_ttl: 10m }\n"
           "routing:\n"
           "  rules:\n"
           "    - { skills: [tts], max_running: 1 }\n"
           "    - { skills: [paid], strategy: round_robin, rate: { tasks: 60, per: 1m } }\n");
  EXPECT_EQ(c.tasks.queue_ttl, minutes(10));
  ASSERT_EQ(c.routing.rules.size(), 2u);
  EXPECT_EQ(c.routing.rules[0].strategy, "") << "a rule that only caps keeps the default";
  EXPECT_EQ(c.routing.rules[0].max_running, 1);
  EXPECT_FALSE(c.routing.rules[0].rate);
  EXPECT_FALSE(c.routing.rules[1].max_running);
  ASSERT_TRUE(c.routing.rules[1].rate);
  EXPECT_EQ(*c.routing.rules[1].rate, (RateCap{60, minutes(1)}));
}

TEST_F(ConfigTest, TriageRules) {
  Config c = Load("a.yaml",
                  "routing:\n"
                  "  rules:\n"
                  "    - { skills: [], triage: classify }\n"
                  "    - { skills: [llm], triage: pick-model, triage_timeout: 10s,"
                  " strategy: round_robin }\n");
  ASSERT_EQ(c.routing.rules.size(), 2u);
  EXPECT_TRUE(c.routing.rules[0].skills.empty()) << "[]: the tasks of no skills";
  EXPECT_EQ(c.routing.rules[0].triage, "classify");
  EXPECT_EQ(c.routing.rules[0].strategy, "") << "a triage rule keeps the default strategy";
  EXPECT_EQ(c.routing.rules[0].triage_timeout, minutes(1)) << "the default";
  EXPECT_EQ(c.routing.rules[1].triage, "pick-model");
  EXPECT_EQ(c.routing.rules[1].triage_timeout, seconds(10));
  EXPECT_TRUE(Config{}.routing.rules.empty());
}

TEST_F(ConfigTest, RetryBackoffDefaultsAndKeys) {
  EXPECT_EQ(Config{}.tasks.retry_backoff, (BackoffConfig{Duration(1000), Duration(300000), 0.2}));
  Config c = Load("a.yaml", "tasks: { retry_backoff: { initial: 0, max: 0 } }");
  EXPECT_EQ(c.tasks.retry_backoff.initial.count(), 0) << "0: retries at once";
  c = Load("a.yaml", "tasks: { retry_backoff: { initial: 250ms, max: 1m, jitter: 0 } }");
  EXPECT_EQ(c.tasks.retry_backoff, (BackoffConfig{Duration(250), Duration(60000), 0}));
}

// The reference example in docs/configuration.md must stay loadable.
TEST_F(ConfigTest, DocumentedExampleIsValid) {
  std::ifstream in(std::string(PINCER_SOURCE_DIR) + "/docs/configuration.md");
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t section = doc.find("## The whole file");
  ASSERT_NE(section, std::string::npos);
  std::size_t start = doc.find("```yaml\n", section);
  ASSERT_NE(start, std::string::npos);
  start += 8;
  std::string yaml = doc.substr(start, doc.find("```", start) - start);
  Config c = Load("doc.yaml", yaml);
  EXPECT_EQ(c.pools.size(), 1u);
  EXPECT_EQ(c.routing.rules.size(), 4u);
}

TEST_F(ConfigTest, DurationsInFiles) {
  struct Case {
    std::string value;  // as written in YAML and in JSON
    milliseconds want;
  };
  for (const Case& c : std::vector<Case>{{"\"250ms\"", milliseconds(250)},
                                         {"\"5s\"", seconds(5)},
                                         {"\"10m\"", minutes(10)},
                                         {"\"24h\"", hours(24)},
                                         {"\"1h30m\"", minutes(90)},
                                         {"\"1.5s\"", milliseconds(1500)},
                                         {"1500", milliseconds(1500)},
                                         {"\"1500\"", milliseconds(1500)},
                                         {"0", milliseconds(0)},
                                         {"\"0\"", milliseconds(0)}}) {
    Config json = Load("d.json", R"({"tasks": {"timeout": )" + c.value + "}}");
    EXPECT_EQ(json.tasks.timeout, c.want) << c.value;
    Config quoted = Load("d.yaml", "tasks: { timeout: " + c.value + " }\n");
    EXPECT_EQ(quoted.tasks.timeout, c.want) << c.value;
    std::string plain = c.value;
    std::erase(plain, '"');
    Config unquoted = Load("d.yaml", "tasks: { timeout: " + plain + " }\n");
    EXPECT_EQ(unquoted.tasks.timeout, c.want) << plain;
  }
}

// ---- refused input -----------------------------------------------------

struct BadCase {
  const char* name;  // file name; its extension picks the format
  const char* text;
  const char* key;   // the dotted path the message must name ("" = file-level)
  const char* says;  // another fragment the message must contain
};

const BadCase kBadCases[] = {
    // Unknown keys, at every level.
    {"a.yaml", "tasks: { timeoutt: 5s }", "tasks.timeoutt",
     "unknown key (did you mean 'timeout'?)"},
    {"a.yaml", "listn: 1.2.3.4:5", "listn", "unknown key"},
    {"a.yaml", "source_path: x", "source_path", "unknown key"},
    {"a.json", R"({"routing": {"outlier": {"enable": true}}})", "routing.outlier.enable",
     "unknown key"},
    {"a.yaml", "pools: [{name: a, command: [x], restart: {backoff: {factor: 2}}}]",
     "pools[0].restart.backoff.factor", "unknown key"},
    {"a.yaml", "routing: { rules: [ { skills: [a], strategy: skill_match, weight: 2 } ] }",
     "routing.rules[0].weight", "unknown key"},
    // Enumerations.
    {"a.yaml",
     "routing:\n  rules:\n    - { skills: [a], strategy: skill_match }\n"
     "    - { skills: [b], strategy: fastest }\n",
     "routing.rules[1].strategy",
     "unknown strategy 'fastest' (expected round_robin, least_connections or skill_match)"},
    {"a.json", R"({"routing": {"strategy": "random"}})", "routing.strategy", "unknown strategy"},
    {"a.yaml", "store: { kind: mysql }", "store.kind",
     "unknown store kind 'mysql' (expected sqlite, memory or postgres)"},
    {"a.yaml", "store: { fsync: sometimes }", "store.fsync", "unknown fsync policy"},
    {"a.yaml", "log_level: verbose", "log_level", "unknown log level 'verbose'"},
    {"a.yaml", "pools: [{name: a, command: [x], restart: {policy: maybe}}]",
     "pools[0].restart.policy", "unknown restart policy 'maybe'"},
    // Wrong types.
    {"a.yaml", "listen: 7878", "listen", "expected a string, got an integer"},
    {"a.yaml", "tasks: { max_attempts: \"5\" }", "tasks.max_attempts",
     "expected an integer, got a string"},
    {"a.yaml", "tasks: { max_attempts: 2.5 }", "tasks.max_attempts", "expected an integer"},
    {"a.json", R"({"tasks": {"max_attempts": true}})", "tasks.max_attempts", "expected an integer"},
    {"a.yaml", "tasks: 5", "tasks", "expected a map, got an integer"},
    {"a.yaml", "- a\n- b\n", "", "expected a map, got a list"},
    {"a.json", "[]", "", "expected a map, got a list"},
    {"a.yaml", "routing: { outlier: { enabled: yes } }", "routing.outlier.enabled",
     "expected true or false"},
    {"a.yaml", "routing: { rules: { skills: [a] } }", "routing.rules", "expected a list"},
    {"a.yaml", "routing: { rules: [ { skills: a, strategy: skill_match } ] }",
     "routing.rules[0].skills", "expected a list of strings"},
    {"a.yaml", "routing: { rules: [ { skills: [a, 3], strategy: skill_match } ] }",
     "routing.rules[0].skills[1]", "expected a string"},
    {"a.yaml", "routing: { rules: [ { skills: [a] } ] }", "routing.rules[0].strategy", "missing"},
    // Triage rules (issue 18).
    {"a.yaml", "routing: { rules: [ { skills: [], triage: \"\" } ] }", "routing.rules[0].triage",
     "must name a skill"},
    {"a.yaml", "routing: { rules: [ { skills: [], triage: [classify] } ] }",
     "routing.rules[0].triage", "expected a string"},
    {"a.yaml", "routing: { rules: [ { skills: [], triage: 3 } ] }", "routing.rules[0].triage",
     "expected a string"},
    {"a.yaml", "routing: { rules: [ { skills: [], strategy: round_robin } ] }",
     "routing.rules[0].skills", "at least one skill (or set triage)"},
    {"a.yaml", "routing: { rules: [ { skills: [a, classify], triage: classify } ] }",
     "routing.rules[0].triage", "must not be one of the rule's own skills"},
    {"a.yaml", "routing: { rules: [ { skills: [], triage: classify, triage_timeout: 0 } ] }",
     "routing.rules[0].triage_timeout", "must be greater than 0"},
    {"a.yaml", "routing: { rules: [ { skills: [], triage: classify, triage_timeout: soon } ] }",
     "routing.rules[0].triage_timeout", ""},
    {"a.yaml", "routing: { rules: [ { skills: [a], strategy: round_robin, triage_timeout: 5s } ] }",
     "routing.rules[0].triage_timeout", "applies only to a rule with triage"},
    // Rule caps (issue 16) and tasks.queue_ttl.
    {"a.yaml", "routing: { rules: [ { skills: [a], max_running: 0 } ] }",
     "routing.rules[0].max_running", "must be between 1 and 1000000 (leave it out for no cap)"},
    {"a.yaml", "routing: { rules: [ { skills: [a], max_running: -1 } ] }",
     "routing.rules[0].max_running", "must be between 1 and 1000000"},
    {"a.yaml", "routing: { rules: [ { skills: [a], max_running: 1000001 } ] }",
     "routing.rules[0].max_running", "must be between 1 and 1000000"},
    {"a.yaml", "routing: { rules: [ { skills: [a], max_running: one } ] }",
     "routing.rules[0].max_running", "expected an integer"},
    {"a.yaml", "routing: { rules: [ { skills: [a], rate: { tasks: 0, per: 1m } } ] }",
     "routing.rules[0].rate.tasks", "must be between 1 and 1000000"},
    {"a.yaml", "routing: { rules: [ { skills: [a], rate: { tasks: 5, per: 0s } } ] }",
     "routing.rules[0].rate.per", "must be greater than 0 and at most 24h"},
    {"a.yaml", "routing: { rules: [ { skills: [a], rate: { tasks: 5, per: 25h } } ] }",
     "routing.rules[0].rate.per", "at most 24h"},
    {"a.yaml", "routing: { rules: [ { skills: [a], rate: { tasks: 5 } } ] }",
     "routing.rules[0].rate.per", "missing"},
    {"a.yaml", "routing: { rules: [ { skills: [a], rate: { per: 1m } } ] }",
     "routing.rules[0].rate.tasks", "missing"},
    {"a.yaml", "routing: { rules: [ { skills: [a], rate: { tasks: 5, per: 1m, burst: 2 } } ] }",
     "routing.rules[0].rate.burst", "unknown key"},
    {"a.yaml", "routing: { rules: [ { skills: [a], rate: 60 } ] }", "routing.rules[0].rate",
     "expected a map"},
    {"a.yaml", "routing: { rules: [ { skills: [a], max_running: 1, strategy: fast } ] }",
     "routing.rules[0].strategy", "unknown strategy 'fast'"},
    {"a.yaml", "tasks: { queue_ttl: -1 }", "tasks.queue_ttl", "must not be negative"},
    {"a.yaml", "tasks: { queue_ttl: 9000h }", "tasks.queue_ttl", "at most 8760h"},
    {"a.yaml", "routing: { rules: [ { skills: [], strategy: skill_match } ] }",
     "routing.rules[0].skills", "at least one skill"},
    {"a.yaml", "limits: { max_queued: 1e6 }", "limits.max_queued", "expected an integer"},
    {"a.yaml", "tasks: { max_attempts: 99999999999 }", "tasks.max_attempts", "too large"},
    {"a.yaml", "tasks: { max_attempts: 99999999999999999999 }", "tasks.max_attempts",
     "out of range"},
    // Durations.
    {"a.yaml", "tasks: { timeout: 5 minutes }", "tasks.timeout", "bad duration '5 minutes'"},
    {"a.yaml", "tasks: { timeout: -5s }", "tasks.timeout", "bad duration"},
    {"a.yaml", "tasks: { timeout: -5 }", "tasks.timeout", "must not be negative"},
    {"a.yaml", "tasks: { timeout: 1.5 }", "tasks.timeout", "expected a duration"},
    {"a.json", R"({"heartbeat": {"interval": [5]}})", "heartbeat.interval", "expected a duration"},
    {"a.yaml", "heartbeat: { interval: 0 }", "heartbeat.interval", "greater than 0"},
    {"a.yaml", "limits: { hello_timeout: 0s }", "limits.hello_timeout", "greater than 0"},
    {"a.yaml", "store: { fsync_interval: 0 }", "store.fsync_interval", "greater than 0"},
    {"a.yaml", "store: { journal_bytes: -1 }", "store.journal_bytes", "must not be negative"},
    // Ranges.
    {"a.yaml", "tasks: { max_attempts: 0 }", "tasks.max_attempts", "at least 1"},
    {"a.yaml", "heartbeat: { misses: 0 }", "heartbeat.misses", "at least 1"},
    {"a.yaml", "tasks: { max_interruptions: -1 }", "tasks.max_interruptions", "at least 0"},
    {"a.yaml", "tasks: { max_interruptions: 1001 }", "tasks.max_interruptions",
     "between 0 and 1000"},
    {"a.yaml", "tasks: { max_interruptions: lots }", "tasks.max_interruptions",
     "expected an integer"},
    {"a.yaml", "limits: { max_frame_bytes: 1023 }", "limits.max_frame_bytes", "at least 1024"},
    {"a.yaml", "limits: { max_connections: -1 }", "limits.max_connections", "must not be negative"},
    {"a.yaml", "limits: { max_queued: 0 }", "limits.max_queued", "at least 1"},
    {"a.yaml", "limits: { max_json_depth: 1 }", "limits.max_json_depth", "from 2 to 1000"},
    {"a.yaml", "limits: { max_json_depth: 1001 }", "limits.max_json_depth", "from 2 to 1000"},
    {"a.yaml", "limits: { max_json_depth: deep }", "limits.max_json_depth", "expected an integer"},
    {"a.yaml", "tasks: { max_attempts: 1001 }", "tasks.max_attempts", "at most 1000"},
    {"a.yaml", "tasks: { timeout: 8761h }", "tasks.timeout", "at most 8760h"},
    {"a.yaml", "tasks: { max_ended: -1 }", "tasks.max_ended", "must not be negative"},
    {"a.yaml", "tasks: { max_ended: many }", "tasks.max_ended", "expected an integer"},
    {"a.yaml", "routing: { outlier: { consecutive_failures: 0 } }",
     "routing.outlier.consecutive_failures", "at least 1"},
    {"a.yaml", "routing: { outlier: { latency_factor: 0.5 } }", "routing.outlier.latency_factor",
     "0 (off) or at least 1"},
    {"a.yaml", "routing: { outlier: { max_ejection_percent: 101 } }",
     "routing.outlier.max_ejection_percent", "between 0 and 100"},
    {"a.yaml", "routing: { outlier: { base_ejection: 1m, max_ejection: 30s } }",
     "routing.outlier.max_ejection", "must not be less than routing.outlier.base_ejection (1m)"},
    // Upper bounds: every number has a range.
    {"a.yaml", "pools: [{name: a, command: [x], replicas: 1001}]", "pools[0].replicas",
     "must be between 0 and 1000"},
    {"a.yaml", "pools: [{name: a, command: [x], replicas: 4294967296}]", "pools[0].replicas",
     "too large"},
    {"a.yaml", "pools: [{name: a, command: [x], restart: {max_restarts: 1000001}}]",
     "pools[0].restart.max_restarts", "must be between 0 and 1000000"},
    {"a.yaml", "pools: [{name: a, command: [x], stop_grace: 87601h}]", "pools[0].stop_grace",
     "must be at most 87600h"},
    {"a.yaml", "pools: [{name: a, command: [x], restart: {backoff: {max: 87601h}}}]",
     "pools[0].restart.backoff.max", "must be at most 87600h"},
    {"a.yaml", "tasks: { retry_backoff: { initial: 10s, max: 5s } }", "tasks.retry_backoff.max",
     "must not be less than tasks.retry_backoff.initial (10s)"},
    {"a.yaml", "tasks: { retry_backoff: { jitter: 2 } }", "tasks.retry_backoff.jitter",
     "must be between 0 and 1"},
    {"a.yaml", "tasks: { retry_backoff: { initial: -1 } }", "tasks.retry_backoff.initial",
     "must not be negative"},
    {"a.yaml", "tasks: { retry_backoff: { max: 87601h } }", "tasks.retry_backoff.max",
     "must be at most 87600h"},
    {"a.yaml", "tasks: { retry_backoff: { factor: 2 } }", "tasks.retry_backoff.factor",
     "unknown key"},
    {"a.yaml", "limits: { max_frame_bytes: 1073741825 }", "limits.max_frame_bytes",
     "must be between 1024 and 1073741824"},
    {"a.yaml", "limits: { max_frame_bytes: 9223372036854775807 }", "limits.max_frame_bytes",
     "must be between 1024 and 1073741824"},
    {"a.yaml", "limits: { max_connections: 1000001 }", "limits.max_connections",
     "must be between 1 and 1000000"},
    {"a.yaml", "limits: { max_queued: 100000001 }", "limits.max_queued",
     "must be between 1 and 100000000"},
    {"a.yaml", "tasks: { max_ended: 100000001 }", "tasks.max_ended",
     "must be between 0 and 100000000"},
    {"a.yaml", "tasks: { max_attempts: 1001 }", "tasks.max_attempts", "must be between 1 and 1000"},
    {"a.yaml", "store: { journal_bytes: 1099511627777 }", "store.journal_bytes",
     "must be between 0 and 1099511627776"},
    {"a.yaml", "heartbeat: { misses: 101 }", "heartbeat.misses", "must be between 1 and 100"},
    {"a.yaml", "heartbeat: { interval: 61m }", "heartbeat.interval", "must be at most 1h"},
    {"a.yaml", "routing: { outlier: { consecutive_failures: 1000001 } }",
     "routing.outlier.consecutive_failures", "must be between 1 and 1000000"},
    {"a.yaml", "routing: { outlier: { latency_factor: 1001 } }", "routing.outlier.latency_factor",
     "between 1 and 1000"},
    {"a.yaml", "routing: { outlier: { latency_factor: .inf } }", "routing.outlier.latency_factor",
     "at least 1"},
    {"a.yaml", "routing: { outlier: { max_ejection_percent: .nan } }",
     "routing.outlier.max_ejection_percent", "between 0 and 100"},
    {"a.yaml", "tasks: { timeout: 87601h }", "tasks.timeout", "must be at most 87600h"},
    {"a.json", R"({"tasks": {"timeout": 315360000001}})", "tasks.timeout",
     "must be at most 87600h"},
    {"a.json", R"({"tasks": {"result_ttl": 9223372036854775807}})", "tasks.result_ttl",
     "must be at most 87600h"},
    {"a.json", R"({"tasks": {"result_ttl": 18446744073709551615}})", "tasks.result_ttl",
     "out of range (at most 87600h)"},
    {"a.yaml", "tasks: { timeout: 999999999999h }", "tasks.timeout", "must be at most 87600h"},
    {"a.yaml", "tasks: { timeout: 9999999999999h }", "tasks.timeout",
     "bad duration '9999999999999h' (expected e.g. 250ms"},
    {"a.yaml", "tasks: { timeout: 9999999999999h }", "tasks.timeout", "at most 87600h)"},
    {"a.yaml", "limits: { hello_timeout: 87601h }", "limits.hello_timeout", "at most 87600h"},
    {"a.yaml", "shutdown: { drain_timeout: 87601h }", "shutdown.drain_timeout", "at most 87600h"},
    {"a.yaml", "routing: { affinity_wait: 87601h }", "routing.affinity_wait", "at most 87600h"},
    {"a.yaml", "store: { fsync_interval: 87601h }", "store.fsync_interval", "at most 87600h"},
    // The admin token is its own.
    {"a.yaml", "auth: { client_token: c, admin_token: c }", "auth.admin_token",
     "must differ from auth.client_token"},
    {"a.yaml", "auth: { worker_token: w, admin_token: w }", "auth.admin_token",
     "must differ from auth.worker_token"},
    {"a.yaml", "auth: { admin_token: 5 }", "auth.admin_token", "expected a string"},
    // Addresses and cross-field rules.
    {"a.yaml", "listen: localhost", "listen", "bad address 'localhost'"},
    {"a.yaml", "listen: \"host:99999\"", "listen", "bad address"},
    {"a.yaml", "metrics_listen: \"::1:80\"", "metrics_listen", "bad address"},
    {"a.yaml", "listen: \"\"", "listen", "must be set unless unix_socket"},
    {"a.yaml", "metrics_listen: \"127.0.0.1:7878\"", "metrics_listen", "must differ from listen"},
    {"a.yaml", "data_dir: \"\"", "data_dir", "must be set when store.kind is sqlite"},
    {"a.yaml", "store: { kind: postgres }", "store.url",
     "must be set when store.kind is postgres (postgresql://...)"},
    {"a.yaml", "store: { kind: postgres, url: \"mysql://db/pincer\" }", "store.url",
     "must be a URI starting with postgresql:// or postgres://"},
    {"a.yaml", "store: { url: \"postgresql://db/pincer\" }", "store.url",
     "applies only to store.kind postgres (store.kind is sqlite)"},
    {"a.yaml", "store: { kind: memory, url: \"postgresql://db/pincer\" }", "store.url",
     "applies only to store.kind postgres (store.kind is memory)"},
    {"a.yaml", "store: { lease: 4s }", "store.lease",
     "applies only to store.kind postgres (store.kind is sqlite)"},
    {"a.yaml", "store: { kind: memory, renew: 1s }", "store.renew",
     "applies only to store.kind postgres (store.kind is memory)"},
    {"a.yaml", "store: { kind: postgres, url: 5 }", "store.url",
     "expected a string, got an integer"},
    {"a.yaml", "store: { kind: postgres, url: \"postgresql://db/p\", lease: 2s, renew: 2s }",
     "store.renew", "must be shorter than store.lease (2s)"},
    {"a.yaml", "store: { kind: postgres, url: \"postgresql://db/p\", lease: 0s }", "store.lease",
     "must be"},
    {"a.yaml", "store: { kind: postgres, url: \"postgresql://db/p\" }\nadvertise: nowhere",
     "advertise", "bad address"},
    // Duplicate keys.
    {"a.yaml", "tasks:\n  timeout: 5s\n  timeout: 6s\n", "tasks.timeout", "duplicate key"},
    {"a.json", R"({"pools": [{"name": "a", "command": ["x"], "name": "b"}]})", "pools[0].name",
     "duplicate key"},
    // Syntax errors name the line.
    {"a.yaml", "tasks:\n  timeout: [5s\n", "", "line 3"},
    {"a.yaml", "tasks: {\n", "", "YAML syntax error"},
    {"a.json", "{\n  \"tasks\": {\n    \"timeout\": 5s\n  }\n}\n", "", "line 3"},
    {"a.json", "{\"listen\": ", "", "JSON parse error"},
    {"a.yaml", "a: 1\n---\nb: 2\n", "", "2 YAML documents"},
    {"a.yaml", "log_level: \xff\n", "", "YAML error: invalid leading UTF-8 octet at byte 11"},
    {"a.yaml", "? [a]\n: 1\n", "", "keys must be plain strings"},
    {"a.yaml", "pools: [{name: a, command: [x], env: {? {b: 1} : c}}]", "pools[0].env",
     "keys must be plain strings"},
    {"a.yaml", "tasks: &t {timeout: 5s}\nheartbeat: *t\n", "heartbeat.timeout", "unknown key"},
    // Text on which yaml-cpp's LoadAll never returned (found by fuzz_config).
    {"a.yaml", ",", "", "line 1, column 1: YAML syntax error"},
    {"a.yaml",
     ",h\xff"
     "3\xff\"\xff\xff",
     "", "YAML"},
    {"a.yaml", "listen: x\n---\n,\n", "", "line 3, column 1: YAML syntax error"},
    // Not a config file at all.
    {"a.toml", "listen = 1", "", "unknown config format"},
};

TEST_F(ConfigTest, BadInputsNameTheFileAndTheKey) {
  for (const BadCase& c : kBadCases) {
    std::string path = Write(c.name, c.text);
    std::string message = Error(c.name, c.text);
    SCOPED_TRACE(std::string(c.name) + ": " + c.text);
    std::string prefix = path + ": ";
    if (*c.key) prefix += std::string(c.key) + ": ";
    EXPECT_EQ(message.rfind(prefix, 0), 0u)
        << "message: " << message << "\nwant prefix: " << prefix;
    EXPECT_NE(message.find(c.says), std::string::npos) << "message: " << message;
  }
}

TEST_F(ConfigTest, ReportsEveryProblemAtOnce) {
  std::string message = Error("m.yaml", "tasks: { max_attempts: 0, timeoutt: 1s }\nlog_level: x\n");
  EXPECT_NE(message.find("tasks.timeoutt: unknown key"), std::string::npos) << message;
  // Shape errors stop before value rules, so max_attempts/log_level come next run.
  message = Error("n.yaml", "tasks: { max_attempts: 0 }\nlog_level: x\nheartbeat: { misses: 0 }\n");
  EXPECT_NE(message.find("tasks.max_attempts"), std::string::npos) << message;
  EXPECT_NE(message.find("log_level"), std::string::npos) << message;
  EXPECT_NE(message.find("heartbeat.misses"), std::string::npos) << message;
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 2) << message;
}

TEST_F(ConfigTest, MissingFileAndDirectoryAreErrors) {
  std::string missing = (dir_ / "nope.yaml").string();
  ConfigResult result = LoadConfig(missing);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error->message, missing + ": cannot read config: No such file or directory");

  std::filesystem::create_directory(dir_ / "d.yaml");
  result = LoadConfig((dir_ / "d.yaml").string());
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error->message.find("is a directory"), std::string::npos);
}

TEST_F(ConfigTest, YamlScalarsAreTypedByTheCoreSchema) {
  // YAML 1.2 core schema: only true/false are booleans ("off", "yes" are
  // strings), quoted scalars are always strings, and 0x/0o/+ integers work.
  Config c = Load("t.yaml",
                  "listen: 127.0.0.1:0\n"
                  "data_dir: \"123\"\n"
                  "unix_socket: 'null'\n"
                  "log_level: off\n"
                  "tasks: { max_attempts: 0x10 }\n"
                  "heartbeat: { misses: +4 }\n"
                  "pools: [{ name: a, command: [x], env: { A: yes, B: '1' } }]\n");
  EXPECT_EQ(c.listen, "127.0.0.1:0");
  EXPECT_EQ(c.data_dir, "123");
  EXPECT_EQ(c.unix_socket, "null");
  EXPECT_EQ(c.log_level, "off");
  EXPECT_EQ(c.tasks.max_attempts, 16);
  EXPECT_EQ(c.heartbeat.misses, 4);
  EXPECT_EQ(c.pools[0].env, (std::map<std::string, std::string>{{"A", "yes"}, {"B", "1"}}));

  EXPECT_NE(Error("u.yaml", "data_dir: 123\n").find("data_dir: expected a string, got an integer"),
            std::string::npos);
  EXPECT_NE(Error("u.yaml", "unix_socket: null\n")
                .find("unix_socket: expected a string, got "
                      "nothing (null)"),
            std::string::npos);
}

// ---- tokens ------------------------------------------------------------

TEST_F(ConfigTest, TokenFilesAreReadAndTrimmed) {
  std::string worker = WriteSecret("worker.token", "s3cret worker\n\n");
  std::string client = WriteSecret("client.token", "  client-token \t\r\n");
  std::string admin = WriteSecret("admin.token", "admin-token\n");
  Config c =
      Load("t.yaml", "auth:\n  worker_token_file: " + worker + "\n  client_token_file: " + client +
                         "\n  admin_token_file: " + admin + "\n");
  EXPECT_EQ(c.auth.worker_token, "s3cret worker");
  EXPECT_EQ(c.auth.client_token, "  client-token");
  EXPECT_EQ(c.auth.admin_token, "admin-token");

  c = Load("t.json",
           R"({"auth": {"worker_token": "inline", "client_token_file": ")" + client + R"("}})");
  EXPECT_EQ(c.auth.worker_token, "inline");
  EXPECT_EQ(c.auth.client_token, "  client-token");
}

// Loading the files themselves (PEM, key match) is covered with real
// certificates in tests/integration/tls_test.cc.
TEST_F(ConfigTest, TlsSectionShape) {
  EXPECT_FALSE(Load("t.yaml", "log_level: info\n").tls.enabled);
  EXPECT_FALSE(Load("t.yaml", "tls:\n").tls.enabled);  // null: absent

  std::string message = Error("t.yaml", "tls: {}\n");
  EXPECT_NE(message.find("tls.cert: missing"), std::string::npos) << message;
  EXPECT_NE(message.find("tls.key: missing"), std::string::npos) << message;

  message = Error("t.yaml", "tls: { cert: a.pem, key: b.pem, ca: c.pem }\n");
  EXPECT_NE(message.find("tls.ca: unknown key"), std::string::npos) << message;

  message = Error("t.yaml", "tls: { cert: 5, key: b.pem }\n");
  EXPECT_NE(message.find("tls.cert: expected a string"), std::string::npos) << message;

  message = Error("t.yaml", "tls: true\n");
  EXPECT_NE(message.find("tls: expected a map"), std::string::npos) << message;

  const std::string missing = (dir_ / "missing.pem").string();
  message = Error("t.yaml", "tls: { cert: " + missing + ", key: " + missing + " }\n");
  EXPECT_NE(message.find("tls.cert: cannot read '" + missing + "': No such file or directory"),
            std::string::npos)
      << message;
}

TEST_F(ConfigTest, TokenFileErrors) {
  std::string worker = WriteSecret("worker.token", "abc\n");
  std::string empty = WriteSecret("empty.token", " \n");
  std::string missing = (dir_ / "missing.token").string();

  std::string message =
      Error("t.yaml", "auth: { worker_token: abc, worker_token_file: " + worker + " }");
  EXPECT_NE(message.find("auth.worker_token_file: cannot be set together with auth.worker_token"),
            std::string::npos)
      << message;

  message = Error("t.yaml", "auth: { client_token_file: " + missing + " }");
  EXPECT_NE(message.find("auth.client_token_file: cannot read '" + missing +
                         "': No such file or directory"),
            std::string::npos)
      << message;

  message = Error("t.yaml", "auth: { client_token_file: " + empty + " }");
  EXPECT_NE(message.find("auth.client_token_file: '" + empty + "' is empty"), std::string::npos)
      << message;

  message = Error("t.yaml", "auth: { client_token_file: 5 }");
  EXPECT_NE(message.find("auth.client_token_file: expected a string"), std::string::npos)
      << message;
}

TEST_F(ConfigTest, TokenFilesOthersCanReadAreRefused) {
  for (const char* key : {"worker_token_file", "client_token_file", "admin_token_file"}) {
    for (mode_t mode : {0644, 0640, 0604, 0620}) {
      SCOPED_TRACE(std::string(key) + " mode " + std::to_string(mode));
      std::string token = Write("open.token", "secret\n");
      ASSERT_EQ(chmod(token.c_str(), mode), 0);
      std::string message = Error("t.yaml", "auth: { " + std::string(key) + ": " + token + " }");
      char octal[16];
      std::snprintf(octal, sizeof octal, "%04o", static_cast<unsigned>(mode));
      EXPECT_NE(message.find("auth." + std::string(key) + ": '" + token +
                             "' is accessible by group or others (mode " + octal +
                             "); run: chmod 600 '" + token + "'"),
                std::string::npos)
          << message;
      EXPECT_EQ(message.find("secret"), std::string::npos) << "never the token: " << message;
    }
  }
  // Owner-only modes are fine.
  for (mode_t mode : {0600, 0400, 0700}) {
    std::string token = Write("own.token", "secret\n");
    ASSERT_EQ(chmod(token.c_str(), mode), 0);
    EXPECT_EQ(Load("t.yaml", "auth: { admin_token_file: " + token + " }").auth.admin_token,
              "secret");
  }
}

TEST_F(ConfigTest, TokenFilesMustBeSmallRegularFiles) {
  std::string message = Error("t.yaml", "auth: { client_token_file: /dev/zero }");
  EXPECT_NE(message.find("auth.client_token_file: cannot read '/dev/zero': is not a regular file"),
            std::string::npos)
      << message;
  std::string big = WriteSecret("big.token", std::string(64 * 1024 + 1, 'x'));
  message = Error("t.yaml", "auth: { client_token_file: " + big + " }");
  EXPECT_NE(message.find("is larger than 64 KiB"), std::string::npos) << message;
}

// ---- hostile files: refused with a short message, never a crash --------

TEST_F(ConfigTest, HugeScalarsAreRefusedWithAShortMessage) {
  const std::string digits(40000, '1');
  std::string accents;
  for (int i = 0; i < 20000; ++i) accents += "\xc3\xa9";
  struct Case {
    std::string name;
    std::string text;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"a.yaml", "log_level: " + digits + "\n",
       "log_level: integer 11111111111111111111111111111111... (40000 bytes) is out of range"},
      {"a.yaml", "log_level: -" + digits + "\n", "log_level: integer -1111"},
      {"a.yaml", "log_level: 0x" + std::string(40000, 'f') + "\n", "out of range"},
      {"a.yaml", "log_level: 1." + digits + "\n", "log_level: expected a string, got a number"},
      {"a.yaml", "log_level: 1e" + digits + "\n", "log_level: expected a string, got a number"},
      {"a.yaml", "log_level: " + digits + "x\n", "log_level: unknown log level '1111"},
      {"a.yaml", "tasks: { timeout: " + digits + "s }\n", "tasks.timeout: bad duration '1111"},
      {"a.yaml", digits + ": 1\n", "YAML syntax error"},
      {"a.yaml", "? " + digits + "\n: 1\n", "unknown key"},
      {"a.json", R"({"log_level": )" + digits + "}", "number overflow"},
      {"a.json", R"({"log_level": ")" + digits + R"("})", "log_level: unknown log level '1111"},
      // Shortened on a UTF-8 boundary: "é" is two bytes.
      {"a.yaml", "log_level: x" + accents + "\n", "log_level: unknown log level 'x"},
      {"a.yaml", "? x" + accents + "\n: 1\n", "unknown key"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name + ": " + c.text.substr(0, 40));
    std::string message = Error(c.name, c.text);
    EXPECT_NE(message.find(c.says), std::string::npos) << message.substr(0, 2000);
    EXPECT_LT(message.size(), 2000u) << message.substr(0, 2000);
    // Valid UTF-8: it goes out in a JSON string (reload_failed).
    EXPECT_NO_THROW(nlohmann::json(message).dump());
  }
}

TEST_F(ConfigTest, YamlAliasBombIsRefused) {
  // "Billion laughs": 9 levels of 10 aliases stand for 10^9 values.
  std::string bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    const char prev = static_cast<char>(c - 1);
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", " : "") + "*" + prev;
    bomb += "]\n";
  }
  std::string message = Error("bomb.yaml", bomb);
  EXPECT_NE(
      message.find("holds more than 100000 values (each use of a YAML alias counts as a copy)"),
      std::string::npos)
      << message;

  // An alias inside its own anchor is a cycle.
  message = Error("cycle.yaml", "a: &x [*x]\n");
  EXPECT_NE(message.find("a[0]: alias *x is inside its own anchor (a cycle)"), std::string::npos)
      << message;
  message = Error("cycle2.yaml", "a: &x {b: *x, c: *x}\n");
  EXPECT_NE(message.find("a.b: alias *x is inside its own anchor (a cycle)"), std::string::npos)
      << message;
  message = Error("unknown.yaml", "a: *nope\n");
  EXPECT_NE(message.find("a: unknown alias *nope"), std::string::npos) << message;

  // Aliases within the bounds still work.
  Config c = Load("ok.yaml",
                  "pools:\n"
                  "  - { name: a, command: &cmd [pincer-worker, --skill, x] }\n"
                  "  - { name: b, command: *cmd }\n");
  ASSERT_EQ(c.pools.size(), 2u);
  EXPECT_EQ(c.pools[1].command, c.pools[0].command);
}

// `depth` maps or lists, one inside the other, under the key `a`.
std::string NestedJson(int depth) {
  return R"({"a": )" + std::string(depth - 1, '[') + std::string(depth - 1, ']') + "}";
}
std::string NestedYamlFlow(int depth) {
  return "a: " + std::string(depth - 1, '[') + std::string(depth - 1, ']') + "\n";
}
std::string NestedYamlBlock(int depth) {
  std::string text;
  for (int i = 0; i < depth; ++i) text += std::string(static_cast<std::size_t>(i), ' ') + "a:\n";
  return text;
}

TEST_F(ConfigTest, NestingIsBounded) {
  struct Case {
    std::string name;
    std::string (*nested)(int);
  };
  for (const Case& c : {Case{"n.json", NestedJson}, Case{"n.yaml", NestedYamlFlow},
                        Case{"m.yaml", NestedYamlBlock}}) {
    SCOPED_TRACE(c.name);
    // 64 levels parse (and are refused for their unknown key, as usual).
    std::string message = Error(c.name, c.nested(64));
    EXPECT_EQ(message.find("nested deeper"), std::string::npos) << message;
    EXPECT_NE(message.find(": a: unknown key"), std::string::npos) << message;
    message = Error(c.name, c.nested(65));
    EXPECT_NE(message.find("nested deeper than 64 levels"), std::string::npos) << message;
  }
  // Far deeper, as a hostile file would be: refused, not a crash. (A block
  // YAML this deep would need gigabytes of indentation.)
  std::string message = Error("deep.json", NestedJson(100000));
  EXPECT_NE(message.find("nested deeper than 64 levels"), std::string::npos) << message;
  message = Error("deep.yaml", NestedYamlFlow(100000));
  EXPECT_FALSE(message.empty());
  EXPECT_LT(message.size(), 2000u);
}

TEST_F(ConfigTest, HugeAndSpecialFilesAreRefused) {
  // Past 4 MiB: refused before parsing (this one is a valid YAML comment).
  std::string big = Write("big.yaml", "#" + std::string(4 << 20, 'x') + "\n");
  ConfigResult result = LoadConfig(big);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error->message, big + ": cannot read config: is larger than 4 MiB");
  // At 4 MiB exactly it is read.
  Load("max.yaml", "#" + std::string((4 << 20) - 2, 'x') + "\n");

  // Devices and FIFOs: refused at once, without reading or waiting.
  std::string zero = (dir_ / "zero.yaml").string();
  std::filesystem::create_symlink("/dev/zero", zero);
  result = LoadConfig(zero);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error->message,
            zero + ": cannot read config: is not a regular file (a device, FIFO or socket)");
  std::string fifo = (dir_ / "fifo.json").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  result = LoadConfig(fifo);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error->message.find("is not a regular file"), std::string::npos);
}

TEST_F(ConfigTest, ManyProblemsAreCutShort) {
  std::string text;
  for (int i = 0; i < 50000; ++i) text += "bad" + std::to_string(i) + ": 1\n";
  std::string message = Error("many.yaml", text);
  EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 100) << message.substr(0, 500);
  EXPECT_NE(message.find("and 49900 more problem(s)"), std::string::npos)
      << message.substr(message.size() - 200);
}

// ---- pools -------------------------------------------------------------

TEST_F(ConfigTest, PoolDefaults) {
  Config c = Load("p.yaml", "pools:\n  - name: echo\n    command: [cat]\n");
  ASSERT_EQ(c.pools.size(), 1u);
  PoolConfig want;
  want.name = "echo";
  want.command = {"cat"};
  EXPECT_EQ(c.pools[0], want);
  EXPECT_EQ(c.pools[0].replicas, 1);
  EXPECT_EQ(c.pools[0].restart.policy, RestartPolicy::kOnFailure);
  EXPECT_EQ(c.pools[0].restart.min_uptime, seconds(30));
}

TEST_F(ConfigTest, PoolValidation) {
  struct Case {
    std::string pools;  // YAML for the pools list
    std::string key;
    std::string says;
  };
  const std::vector<Case> cases = {
      {"[{name: a, command: [x]}, {name: b, command: [y]}, {name: a, command: [z]}]",
       "pools[2].name", "duplicate pool name 'a' (also pools[0])"},
      {"[{command: [x]}]", "pools[0].name", "missing"},
      {"[{name: a}]", "pools[0].command", "missing"},
      {"[{name: a, command: []}]", "pools[0].command",
       "must name a program (a non-empty list of strings)"},
      {"[{name: a, command: ['']}]", "pools[0].command[0]", "program name must not be empty"},
      {"[{name: a, command: cat}]", "pools[0].command", "expected a list of strings"},
      {"[{name: a, command: [cat, 1]}]", "pools[0].command[1]", "expected a string"},
      {"[{name: a, command: [x], sidecar: []}]", "pools[0].sidecar",
       "must name a program (a non-empty list of strings)"},
      {"[{name: a, command: [x], sidecar: ['']}]", "pools[0].sidecar[0]",
       "program name must not be empty"},
      {"[{name: a, command: [x], sidecar: gateway}]", "pools[0].sidecar",
       "expected a list of strings"},
      {"[{name: 'my pool', command: [x]}]", "pools[0].name", "bad pool name 'my pool'"},
      {"[{name: a, command: [x], replicas: -1}]", "pools[0].replicas", "must be at least 0"},
      {"[{name: a, command: [x], env: {N: 4}}]", "pools[0].env.N", "expected a string"},
      {"[{name: a, command: [x], env: [A]}]", "pools[0].env", "expected a map"},
      {"[{name: a, command: [x], env: {'A=B': x}}]", "pools[0].env.A=B", "bad environment"},
      {"[{name: a, command: [x], restart: {backoff: {jitter: 1.5}}}]",
       "pools[0].restart.backoff.jitter", "must be between 0 and 1"},
      {"[{name: a, command: [x], restart: {backoff: {initial: 0}}}]",
       "pools[0].restart.backoff.initial", "must be greater than 0"},
      {"[{name: a, command: [x], restart: {backoff: {initial: 1m, max: 1s}}}]",
       "pools[0].restart.backoff.max", "must not be less than"},
      {"[{name: a, command: [x], restart: {max_restarts: -1}}]", "pools[0].restart.max_restarts",
       "must be at least 0"},
      {"[{name: a, command: [x], restart: {window: 0}}]", "pools[0].restart.window",
       "must be greater than 0"},
      {"[{name: a, command: [x], stop_grace: soon}]", "pools[0].stop_grace", "bad duration"},
      {"[a, b]", "pools[0]", "expected a map, got a string"},
      {"{name: a}", "pools", "expected a list"},
  };
  for (const Case& c : cases) {
    std::string path = Write("p.yaml", "pools: " + c.pools + "\n");
    std::string message = Error("p.yaml", "pools: " + c.pools + "\n");
    EXPECT_NE(message.find(path + ": " + c.key + ": " + c.says), std::string::npos)
        << c.pools << "\nmessage: " << message;
  }
}

// ---- ValidateConfig on a Config built in code --------------------------

TEST(ConfigNameTest, SpellsEachChoiceAsTheFileDoes) {
  EXPECT_EQ(ConfigName(StoreKind::kSqlite), "sqlite");
  EXPECT_EQ(ConfigName(StoreKind::kMemory), "memory");
  EXPECT_EQ(ConfigName(FsyncPolicy::kAlways), "always");
  EXPECT_EQ(ConfigName(FsyncPolicy::kInterval), "interval");
  EXPECT_EQ(ConfigName(FsyncPolicy::kOff), "off");
  EXPECT_EQ(ConfigName(RestartPolicy::kAlways), "always");
  EXPECT_EQ(ConfigName(RestartPolicy::kOnFailure), "on-failure");
  EXPECT_EQ(ConfigName(RestartPolicy::kNever), "never");
}

TEST(ValidateConfigTest, BuiltInCodeHasNoFilePrefix) {
  Config c;
  c.routing.rules.push_back({{"code"}, "fastest", {}, {}, "", seconds(60)});
  std::optional<ConfigError> error = ValidateConfig(c);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->message,
            "routing.rules[0].strategy: unknown strategy 'fastest' (expected round_robin, "
            "least_connections or skill_match)");

  c.routing.rules.clear();
  c.source_path = "etc/pincer.yaml";
  c.limits.max_frame_bytes = 10;
  error = ValidateConfig(c);
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->message, "etc/pincer.yaml: limits.max_frame_bytes: must be at least 1024");
}

TEST(ValidateConfigTest, SizesBuiltInCodeAreRangeChecked) {
  Config c;
  c.limits.max_frame_bytes = SIZE_MAX;  // would be negative as a signed number
  c.tasks.max_ended = SIZE_MAX;
  std::optional<ConfigError> error = ValidateConfig(c);
  ASSERT_TRUE(error.has_value());
  EXPECT_NE(error->message.find("limits.max_frame_bytes: must be between 1024 and 1073741824"),
            std::string::npos)
      << error->message;
  EXPECT_NE(error->message.find("tasks.max_ended: must be between 0 and 100000000"),
            std::string::npos)
      << error->message;
}

TEST_F(ConfigTest, ReadsThePostgresStore) {
  Config c =
      Load("pg.yaml",
           "data_dir: \"\"\nstore: { kind: postgres, url: \"postgresql://u:pw@db/pincer\" }\n");
  EXPECT_EQ(c.store.kind, StoreKind::kPostgres);
  EXPECT_EQ(c.store.url, "postgresql://u:pw@db/pincer");
  EXPECT_EQ(ConfigName(StoreKind::kPostgres), "postgres");
}

TEST_F(ConfigTest, AMisplacedUrlIsNotEchoed) {
  const std::string error =
      Error("pg.yaml", "store: { kind: sqlite, url: \"postgresql://u:s3cret@db/p\" }\n");
  EXPECT_NE(error.find("store.url"), std::string::npos) << error;
  EXPECT_EQ(error.find("s3cret"), std::string::npos) << error;
}

TEST(ValidateConfigTest, AcceptsEdgeValues) {
  Config c;
  c.listen = "";
  c.unix_socket = "/tmp/p.sock";
  c.store.kind = StoreKind::kMemory;
  c.data_dir = "";
  c.tasks.timeout = Duration(0);
  c.routing.affinity_wait = Duration(0);
  c.limits.max_frame_bytes = 1024;
  c.routing.outlier.latency_factor = 1;
  c.metrics_listen = "[::1]:0";
  EXPECT_FALSE(ValidateConfig(c).has_value()) << ValidateConfig(c)->message;
}

}  // namespace
}  // namespace pincer
