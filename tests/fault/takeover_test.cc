// A takeover under load (docs/high-availability.md, "Tested"): a real
// PostgreSQL, two real pincerd on it (a leader and a standby), two real
// pincer-worker given both addresses, and 400 submits, each through its own
// real `pincerctl --addr A,B`. After the 150th accepted submit the leader is
// killed with SIGKILL. Every submit pincerctl answered as accepted ends
// `succeeded` on the new leader with its own output. A submit refused during
// the takeover (pincerctl's exit code 3 once its 10 s are up) is run again
// with the same --key, which makes it idempotent.
//
// The time from the kill to the first accepted submit on the new leader is
// printed, not asserted: `scripts/bench takeover` measures it
// (docs/benchmarks.md, "Takeover").
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
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
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr int kSubmits = 400;
constexpr std::size_t kKillAfter = 150;

bool Logged(const DaemonProcess& d, const std::string& text) {
  return d.ReadStderr().find(text) != std::string::npos;
}

TEST(TakeoverTest, EveryAcceptedSubmitSucceedsWithItsOutputWhenTheLeaderIsKilledMidway) {
  if (!PostgresServer::Available()) GTEST_SKIP() << PostgresServer::kMissing;
  PostgresServer pg;
  ASSERT_TRUE(pg.Start());
  // The default lease and renew (4 s, 1 s): the takeover an operator gets.
  const std::string yaml = "store: { kind: postgres, url: \"" + pg.url() + "\" }\n";
  DaemonProcess a(yaml), b(yaml);
  ASSERT_TRUE(a.Start());  // the first one takes the lease
  ASSERT_TRUE(b.Start());
  ASSERT_TRUE(WaitFor([&] { return Logged(b, "standby"); })) << b.ReadStderr();
  const std::string both = a.address() + "," + b.address();

  const EnvChanges no_env = {{"PINCER_ADDR", std::nullopt}, {"PINCER_TOKEN", std::nullopt}};
  std::vector<std::unique_ptr<ChildProcess>> workers;
  for (int i = 0; i < 2; ++i) {
    const std::string name = "echo-" + std::to_string(i);
    workers.push_back(std::make_unique<ChildProcess>());
    ASSERT_EQ(
        workers.back()->Start({kWorker, "--addr", both, "--name", name, "--skill", "echo",
                               "--capacity", "4", "--", "cat"},
                              b.dir() + "/" + name + ".out", b.dir() + "/" + name + ".err", no_env),
        "");
  }

  std::map<std::string, std::string> accepted;  // id -> payload
  int refused = 0;
  std::optional<Clock::time_point> killed_at;
  std::optional<Clock::duration> takeover;
  for (int i = 0; i < kSubmits; ++i) {
    const std::string payload = R"({"n":)" + std::to_string(i) + "}";
    const std::string key = "submit-" + std::to_string(i);
    CtlResult r;
    // One submit, run again (same key) while pincerctl finds no leader.
    ASSERT_TRUE(WaitFor(
        [&] {
          r = RunCtl(both, {"submit", "--skill", "echo", "--key", key, "--payload", payload});
          if (r.exit_code != 0) ++refused;
          return r.exit_code == 0;
        },
        seconds(120), std::chrono::milliseconds(0)))
        << r << b.ReadStderr();
    ASSERT_EQ(r.Lines().size(), 1u) << r;
    const std::string id = r.Lines()[0];
    EXPECT_EQ(accepted.count(id), 0u) << "two submits answered with one id: " << id;
    accepted[id] = payload;
    if (killed_at && !takeover) takeover = Clock::now() - *killed_at;
    if (accepted.size() == kKillAfter) {
      a.Kill9();
      killed_at = Clock::now();
    }
  }
  ASSERT_TRUE(takeover);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*takeover).count();
  std::printf("kill -9 of the leader to the first accepted submit on the new leader: %lld ms\n",
              static_cast<long long>(ms));
  std::printf("submits refused during the takeover and run again: %d\n", refused);
  RecordProperty("takeover_ms", std::to_string(ms));
  EXPECT_TRUE(Logged(b, "leading: lease taken")) << b.ReadStderr();

  // Every accepted task ends succeeded on B, however long two workers take.
  std::size_t succeeded = 0;
  EXPECT_TRUE(WaitWhileProgressing(
      [&] {
        const json list =
            RunCtl(b.address(), {"--json", "tasks", "--state", "succeeded", "--all"}).Json();
        succeeded = 0;
        if (list.is_array()) {
          for (const json& t : list) succeeded += accepted.count(t.value("id", "")) > 0;
        }
        return succeeded == accepted.size();
      },
      [&] { return succeeded; }))
      << succeeded << " of " << accepted.size() << " succeeded\n"
      << b.ReadStderr();

  // Each with its own output: `pincerctl wait --json` on every id.
  std::vector<std::string> args = {"--json", "wait"};
  for (const auto& [id, payload] : accepted) args.push_back(id);
  const CtlResult ends = RunCtl(b.address(), args);
  EXPECT_EQ(ends.exit_code, 0) << ends;
  const json list = ends.Json();
  ASSERT_TRUE(list.is_array()) << ends;
  ASSERT_EQ(list.size(), accepted.size());
  std::set<std::string> seen;
  for (const json& end : list) {
    const std::string id = end.value("id", "");
    ASSERT_EQ(accepted.count(id), 1u) << end;
    seen.insert(id);
    EXPECT_EQ(end.value("state", ""), "succeeded") << end;
    EXPECT_EQ(end["output"], json::parse(accepted[id])) << end;
  }
  EXPECT_EQ(seen.size(), accepted.size());
  // The keys made the runs again idempotent: B holds no task but these.
  const json all = RunCtl(b.address(), {"--json", "tasks", "--all"}).Json();
  ASSERT_TRUE(all.is_array());
  std::set<std::string> held;
  for (const json& t : all) held.insert(t.value("id", ""));
  EXPECT_EQ(held, seen);
  for (auto& w : workers) w->KillGroup();
}

}  // namespace
}  // namespace pincer::test
