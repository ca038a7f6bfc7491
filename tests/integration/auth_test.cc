// Roles and tokens against a real pincerd: with auth.admin_token set, drain,
// reload and retry need it, the client token keeps the rest, and each
// token opens only its own role. Token files others can read are refused,
// at start and at a reload, and no token ever reaches the log.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/raw_peer.h"
#include "support/test_worker.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kRead{5000};

void WriteText(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Distinctive, so that finding one in a log cannot be a coincidence.
constexpr char kWorkerToken[] = "worker-tok-Qx81";
constexpr char kClientToken[] = "client-tok-Zr27";
constexpr char kAdminToken[] = "admin-tok-Mv55";

std::string TokensConfig() {
  return std::string("store: { kind: memory }\n") + "auth: { worker_token: " + kWorkerToken +
         ", client_token: " + kClientToken + ", admin_token: " + kAdminToken + " }\n";
}

class AuthTest : public ::testing::Test {
 protected:
  void StartDaemon(const std::string& config) {
    DaemonOptions options;
    options.config_yaml = config;
    options.extra_args = {"--log-level", "trace"};  // the most there is to leak into
    daemon_ = std::make_unique<DaemonProcess>(options);
    ASSERT_TRUE(daemon_->Start());
  }

  CtlResult Ctl(const std::string& token, std::vector<std::string> args) {
    args.insert(args.begin(), {"--token", token});
    return RunCtl(daemon_->address(), args);
  }

  std::unique_ptr<TestWorker> Worker(const std::string& name, const std::string& skill) {
    TestWorkerOptions o;
    o.name = name;
    o.skills = {skill};
    o.token = kWorkerToken;
    auto w = TestWorker::Connect(daemon_->address(), o);
    EXPECT_TRUE(w.ok()) << (w.ok() ? "" : w.error().ToString());
    return w.ok() ? std::move(w).value() : nullptr;
  }

  // A task that ended `failed` (so that retry applies to it).
  std::string FailedTask() {
    auto failing = Worker("failing", "fail");
    if (!failing) return "";
    AutoOptions o;
    o.handler = [](const json&) {
      TaskReply r;
      r.ok = false;
      r.error = "broken";
      r.retryable = false;
      return r;
    };
    failing->StartAuto(o);
    CtlResult end = Ctl(kClientToken, {"--json", "submit", "--skill", "fail", "--wait"});
    EXPECT_EQ(end.exit_code, 1) << end;
    EXPECT_EQ(end.Json().value("state", ""), "failed") << end;
    return end.Json().value("id", "");
  }

  void ExpectNoTokenInLog() {
    const std::string log = daemon_->ReadStderr();
    for (const char* token : {kWorkerToken, kClientToken, kAdminToken}) {
      EXPECT_EQ(log.find(token), std::string::npos) << token << " is in the log:\n" << log;
    }
  }

  std::unique_ptr<DaemonProcess> daemon_;
};

void ExpectUnauthorized(const CtlResult& r, const std::string& op) {
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_NE(r.err.find("unauthorized: " + op + " needs the admin token (auth.admin_token)"),
            std::string::npos)
      << r;
}

TEST_F(AuthTest, ClientTokenCannotAdministerTheAdminTokenCan) {
  StartDaemon(TokensConfig());
  auto echo = Worker("echo", "echo");
  ASSERT_TRUE(echo);
  echo->StartAuto();
  const std::string failed = FailedTask();
  ASSERT_FALSE(failed.empty());

  // The client token: refused for drain, reload and retry (the connection
  // stays usable; each refusal is `unauthorized`, exit code 3)...
  ExpectUnauthorized(Ctl(kClientToken, {"reload"}), "reload");
  ExpectUnauthorized(Ctl(kClientToken, {"drain", echo->id()}), "drain");
  ExpectUnauthorized(Ctl(kClientToken, {"retry", failed}), "retry");
  // ... and nothing changed.
  CtlResult status = Ctl(kClientToken, {"--json", "status", failed});
  ASSERT_EQ(status.exit_code, 0) << status;
  EXPECT_EQ(status.Json().value("state", ""), "failed") << status;
  EXPECT_EQ(daemon_->ReadStderr().find("config reloaded"), std::string::npos);

  // ... while it keeps every other request.
  CtlResult submitted = Ctl(kClientToken, {"--json", "submit", "--skill", "echo", "--wait"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted;
  const std::string id = submitted.Json().value("id", "");
  EXPECT_EQ(Ctl(kClientToken, {"status", id}).exit_code, 0);
  EXPECT_EQ(Ctl(kClientToken, {"wait", id}).exit_code, 0);
  CtlResult queued = Ctl(kClientToken, {"submit", "--skill", "nobody"});
  ASSERT_EQ(queued.exit_code, 0) << queued;
  EXPECT_EQ(Ctl(kClientToken, {"cancel", queued.Lines().at(0)}).exit_code, 0);
  for (const char* query : {"tasks", "workers", "stats", "pools"}) {
    CtlResult r = Ctl(kClientToken, {query});
    EXPECT_EQ(r.exit_code, 0) << query << ": " << r;
  }

  // The admin token does what the client token could not, and the rest too.
  CtlResult reload = Ctl(kAdminToken, {"reload"});
  EXPECT_EQ(reload.exit_code, 0) << reload;
  EXPECT_TRUE(
      WaitFor([&] { return daemon_->ReadStderr().find("config reloaded") != std::string::npos; }));
  CtlResult retry = Ctl(kAdminToken, {"retry", failed});
  EXPECT_EQ(retry.exit_code, 0) << retry;
  EXPECT_EQ(Ctl(kAdminToken, {"drain", echo->id()}).exit_code, 0);
  EXPECT_EQ(Ctl(kAdminToken, {"submit", "--skill", "other"}).exit_code, 0);
  EXPECT_EQ(Ctl(kAdminToken, {"stats"}).exit_code, 0);

  ExpectNoTokenInLog();
}

TEST_F(AuthTest, EachTokenOpensOnlyItsOwnRole) {
  StartDaemon(TokensConfig());

  // pincerctl with the worker token (or a wrong one): refused at hello.
  for (const char* token : {kWorkerToken, "bad-tok-Hh31"}) {
    CtlResult r = Ctl(token, {"stats"});
    EXPECT_EQ(r.exit_code, 3) << r;
    EXPECT_NE(r.err.find("unauthorized"), std::string::npos) << r;
    EXPECT_EQ(r.err.find(token), std::string::npos) << "the token is not echoed: " << r;
    CtlResult submit = Ctl(token, {"submit", "--skill", "x"});
    EXPECT_EQ(submit.exit_code, 3) << submit;
  }

  // On the wire: a client hello with the worker token, and a worker hello
  // with the client or admin token, are refused and closed.
  struct Case {
    std::string role;
    std::string token;
  };
  for (const Case& c : {Case{"client", kWorkerToken}, Case{"worker", kClientToken},
                        Case{"worker", kAdminToken}, Case{"client", ""}, Case{"worker", ""}}) {
    SCOPED_TRACE(c.role + " with '" + c.token + "'");
    RawPeer peer;
    ASSERT_EQ(peer.Connect(daemon_->address()), "");
    auto answer =
        peer.Hello(c.role, c.token, c.role == "worker" ? json{{"skills", {"x"}}} : json::object());
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(answer->value("type", ""), "error") << *answer;
    EXPECT_EQ(answer->value("code", ""), "unauthorized") << *answer;
    EXPECT_TRUE(peer.WaitClosed(kRead));
  }
  // Each token in its own role is welcome.
  for (const Case& c :
       {Case{"client", kClientToken}, Case{"client", kAdminToken}, Case{"worker", kWorkerToken}}) {
    SCOPED_TRACE(c.role + " with '" + c.token + "'");
    RawPeer peer;
    ASSERT_EQ(peer.Connect(daemon_->address()), "");
    auto answer =
        peer.Hello(c.role, c.token, c.role == "worker" ? json{{"skills", {"x"}}} : json::object());
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(answer->value("type", ""), "welcome") << *answer;
  }

  // A per-request refusal keeps the connection: the same client may go on.
  RawPeer client;
  ASSERT_EQ(client.Connect(daemon_->address()), "");
  ASSERT_EQ(client.Hello("client", kClientToken)->value("type", ""), "welcome");
  ASSERT_TRUE(client.SendJson({{"type", "reload"}, {"req", 7}}));
  auto refused = client.ReadJson(kRead);
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->value("code", ""), "unauthorized") << *refused;
  EXPECT_EQ(refused->value("req", 0), 7) << *refused;
  ASSERT_TRUE(client.SendJson({{"type", "stats"}, {"req", 8}}));
  auto stats = client.ReadJson(kRead);
  ASSERT_TRUE(stats.has_value());
  EXPECT_EQ(stats->value("type", ""), "ok") << *stats;

  ExpectNoTokenInLog();
}

TEST_F(AuthTest, WithoutAdminTokenEveryClientMayAdminister) {
  StartDaemon(std::string("store: { kind: memory }\nauth: { client_token: ") + kClientToken +
              " }\n");
  EXPECT_EQ(Ctl(kClientToken, {"reload"}).exit_code, 0);
}

TEST_F(AuthTest, TokenFilesOthersCanReadAreRefusedAtStartAndReload) {
  // At start: pincerd does not start, and says which file and what to do.
  {
    DaemonOptions options;
    options.config_yaml =
        "store: { kind: memory }\nauth: { admin_token_file: {dir}/admin.token }\n";
    DaemonProcess daemon(options);
    const std::string file = daemon.dir() + "/admin.token";
    WriteText(file, std::string(kAdminToken) + "\n");
    ASSERT_EQ(chmod(file.c_str(), 0644), 0);
    ::testing::AssertionResult started = daemon.Start();
    ASSERT_FALSE(started);
    const std::string log = daemon.ReadStderr();
    EXPECT_NE(
        log.find("auth.admin_token_file: '" + file +
                 "' is accessible by group or others (mode 0644); run: chmod 600 '" + file + "'"),
        std::string::npos)
        << log;
    EXPECT_EQ(log.find(kAdminToken), std::string::npos) << log;
  }

  // At a reload: refused, and the running config (and its tokens) stay.
  DaemonOptions options;
  options.config_yaml = std::string("store: { kind: memory }\nauth: { client_token: ") +
                        kClientToken + ", admin_token_file: {dir}/admin.token }\n";
  options.extra_args = {"--log-level", "trace"};
  daemon_ = std::make_unique<DaemonProcess>(options);
  const std::string file = daemon_->dir() + "/admin.token";
  WriteText(file, std::string(kAdminToken) + "\n");
  ASSERT_EQ(chmod(file.c_str(), 0600), 0);
  ASSERT_TRUE(daemon_->Start());
  EXPECT_EQ(Ctl(kAdminToken, {"reload"}).exit_code, 0);

  ASSERT_EQ(chmod(file.c_str(), 0644), 0);
  CtlResult reload = Ctl(kAdminToken, {"reload"});
  EXPECT_EQ(reload.exit_code, 1) << reload;
  EXPECT_NE(reload.err.find("reload_failed"), std::string::npos) << reload;
  EXPECT_NE(reload.err.find("chmod 600 '" + file + "'"), std::string::npos) << reload;
  EXPECT_TRUE(daemon_->running());
  // The admin token read at start still rules.
  ExpectUnauthorized(Ctl(kClientToken, {"reload"}), "reload");
  EXPECT_EQ(Ctl(kClientToken, {"stats"}).exit_code, 0);

  ExpectNoTokenInLog();
}

}  // namespace
}  // namespace pincer::test
