// A real pincerd on the postgres store (docs/durability.md, "The postgres
// store"), with a real PostgreSQL started by the test
// (tests/support/postgres_server.h): accepted tasks survive SIGKILL and
// end on a real pincer-worker; a server that stops makes submits fail with
// store_unavailable until it is back, losing nothing; a server that cannot
// be reached stops the start, naming the url with its password masked.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/postgres_server.h"
#include "support/subprocess.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;

class PostgresDaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PostgresServer::Available()) GTEST_SKIP() << PostgresServer::kMissing;
    ASSERT_TRUE(server_.Start());
    daemon_ = std::make_unique<DaemonProcess>(StoreYaml());
    ASSERT_TRUE(daemon_->Start());
  }

  std::string StoreYaml(const std::string& more = "") const {
    return "store: { kind: postgres, url: \"" + server_.url() + "\"" +
           (more.empty() ? "" : ", " + more) + " }\n";
  }

  void TearDown() override { worker_.reset(); }

  // After kill -9 the lease of the pincerd that died runs on for
  // store.lease: the new one starts as a standby and leads once it is out
  // (docs/high-availability.md).
  ::testing::AssertionResult RestartAndLead() {
    if (auto started = daemon_->Restart(); !started) return started;
    CtlResult r;
    if (WaitFor(
            [&] {
              r = RunCtl(daemon_->address(), {"stats"});
              return r.exit_code == 0;
            },
            std::chrono::seconds(60))) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << "pincerd does not lead: " << r;
  }

  // Submits a task needing skill `echo` with payload `payload`; its id.
  std::string Submit(const std::string& payload, const std::string& key = "") {
    std::vector<std::string> args = {"submit", "--skill", "echo", "--payload", payload};
    if (!key.empty()) args.insert(args.end(), {"--key", key});
    CtlResult r = RunCtl(daemon_->address(), args);
    EXPECT_EQ(r.exit_code, 0) << r;
    return r.Lines().empty() ? "" : r.Lines()[0];
  }

  json Status(const std::string& id) {
    return RunCtl(daemon_->address(), {"--json", "status", id}).Json();
  }

  void StartWorker() {
    worker_ = std::make_unique<ChildProcess>();
    ASSERT_EQ(worker_->Start({kWorker, "--addr", daemon_->address(), "--name", "echo", "--skill",
                              "echo", "--", "cat"},
                             daemon_->dir() + "/worker.out", daemon_->dir() + "/worker.err",
                             {{"PINCER_ADDR", std::nullopt},
                              {"PINCER_TOKEN", std::nullopt},
                              {"PINCER_SPAWN_ID", std::nullopt}}),
              "");
  }

  // Waits until every task in `payloads` (id -> payload) has ended, then
  // checks each succeeded with its own payload as output.
  void ExpectAllSucceed(const std::map<std::string, std::string>& payloads) {
    std::size_t ended = 0;
    EXPECT_TRUE(WaitWhileProgressing(
        [&] {
          ended = 0;
          for (const auto& [id, payload] : payloads) {
            const std::string state = Status(id).value("state", "");
            ended += state != "queued" && state != "running" && !state.empty();
          }
          return ended == payloads.size();
        },
        [&] { return ended; }));
    for (const auto& [id, payload] : payloads) {
      const json status = Status(id);
      EXPECT_EQ(status.value("state", ""), "succeeded") << id << ": " << status;
      EXPECT_EQ(status["output"], json::parse(payload)) << id << ": " << status;
    }
  }

  PostgresServer server_;
  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<ChildProcess> worker_;
};

TEST_F(PostgresDaemonTest, AcceptedTasksSurviveKill9AndCompleteOnAWorker) {
  std::map<std::string, std::string> payloads;
  for (int i = 0; i < 20; ++i) {
    const std::string payload = R"({"n":)" + std::to_string(i) + "}";
    payloads[Submit(payload, i == 0 ? "first" : "")] = payload;
  }
  ASSERT_EQ(payloads.size(), 20u);
  const std::string first = Submit(R"({"n":0})", "first");  // the key finds the task

  daemon_->Kill9();
  ASSERT_TRUE(RestartAndLead());
  EXPECT_NE(daemon_->ReadStderr().find("recovered 20 tasks (20 queued)"), std::string::npos)
      << daemon_->ReadStderr();
  // The idempotency key survived with its task.
  EXPECT_EQ(Submit(R"({"n":0})", "first"), first);

  StartWorker();
  ExpectAllSucceed(payloads);

  // The ends are stored too: after another crash they are still there.
  daemon_->Kill9();
  ASSERT_TRUE(RestartAndLead());
  for (const auto& [id, payload] : payloads) {
    EXPECT_EQ(Status(id).value("state", ""), "succeeded") << id;
  }
}

TEST_F(PostgresDaemonTest, AStoppedServerRefusesSubmitsUntilItIsBack) {
  // A lease far longer than the outage: the leader rides it out (a
  // database gone for longer than store.lease makes it step down). A clean
  // stop lets the lease go: the restart leads at once.
  daemon_->SetConfig(StoreYaml("lease: 1h, renew: 1s"));
  ASSERT_EQ(daemon_->Terminate(), 0);
  ASSERT_TRUE(RestartAndLead());
  std::map<std::string, std::string> payloads;
  payloads[Submit("1")] = "1";

  ASSERT_TRUE(server_.Stop());
  CtlResult refused = RunCtl(daemon_->address(), {"submit", "--skill", "echo", "--payload", "2"});
  EXPECT_NE(refused.exit_code, 0) << refused;
  EXPECT_NE(refused.err.find("store_unavailable"), std::string::npos) << refused;
  // Everything else keeps serving.
  EXPECT_EQ(Status(payloads.begin()->first).value("state", ""), "queued");

  ASSERT_TRUE(server_.Start());
  CtlResult accepted;
  ASSERT_TRUE(WaitFor([&] {
    accepted = RunCtl(daemon_->address(), {"submit", "--skill", "echo", "--payload", "3"});
    return accepted.exit_code == 0;
  })) << accepted;
  payloads[accepted.Lines().at(0)] = "3";
  EXPECT_NE(daemon_->ReadStderr().find("store commits again"), std::string::npos);

  daemon_->Kill9();
  // The dead one's lease would run for an hour: let it go by hand.
  ASSERT_TRUE(server_.Sql("UPDATE pincer_lease SET expires_at = '-infinity'"));
  ASSERT_TRUE(RestartAndLead());
  CtlResult stats = RunCtl(daemon_->address(), {"--json", "stats"});
  EXPECT_EQ(stats.Json()["queued"], 2) << stats;  // the refused submit left nothing
  StartWorker();
  ExpectAllSucceed(payloads);
}

TEST(PostgresStartTest, AnUnreachableDatabaseStopsTheStartNamingTheUrl) {
  DaemonProcess daemon(
      "store: { kind: postgres, url: "
      "\"postgresql://pincer:s3cret@/pincer?host=/nonexistent&connect_timeout=2\" }\n");
  EXPECT_FALSE(daemon.Start());
  const std::string log = daemon.ReadStderr();
  EXPECT_NE(log.find("cannot start: cannot connect to "
                     "postgresql://pincer:****@/pincer?host=/nonexistent"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("s3cret"), std::string::npos) << log;
}

}  // namespace
}  // namespace pincer::test
