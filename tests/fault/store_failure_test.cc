// A store that stops being writable: submits are refused with
// store_unavailable and change nothing, /healthz says 503 and why,
// everything else keeps serving, and submits are accepted (and /healthz
// says 200) again once the disk is writable. "Unwritable" is
// made with `chattr +i`, which holds even for root; where the file system
// or the user cannot do that, the test is skipped. Without root, a file-size
// limit of 0 set on the running pincerd (prlimit) fails every store write
// the same way.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdlib>
#include <string>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/http.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

std::string MetricsAddress(DaemonProcess& daemon) {
  std::string addr = daemon.WaitForMetricsAddress();
  EXPECT_FALSE(addr.empty()) << daemon.ReadStderr();
  return addr;
}

constexpr char kConfig[] =
    "store: { kind: sqlite, fsync: always }\nmetrics_listen: \"127.0.0.1:0\"\n";

class StoreFailureTest : public ::testing::Test {
 protected:
  bool Chattr(const std::string& flag) {
    const std::string d = daemon_.data_dir();
    const std::string cmd = "chattr " + flag + " '" + d + "/pincer.db' '" + d +
                            "/pincer.db-wal' '" + d + "' 2>/dev/null";
    return std::system(cmd.c_str()) == 0;
  }
  void TearDown() override { Chattr("-i"); }

  DaemonProcess daemon_{kConfig};
};

TEST_F(StoreFailureTest, UnwritableStoreRefusesSubmitsAndRecovers) {
  ASSERT_TRUE(daemon_.Start());
  const std::string metrics = MetricsAddress(daemon_);
  ASSERT_EQ(HttpGet(metrics, "/healthz")->status, 200);
  CtlResult first = RunCtl(daemon_.address(), {"submit", "--skill", "gpu"});
  ASSERT_EQ(first.exit_code, 0) << first;
  const std::string kept = first.out.substr(0, first.out.find('\n'));

  if (!Chattr("+i")) GTEST_SKIP() << "chattr +i is not available here";

  CtlResult refused = RunCtl(daemon_.address(), {"--json", "submit", "--skill", "gpu"});
  EXPECT_NE(refused.exit_code, 0) << refused;
  EXPECT_NE(refused.err.find("store_unavailable"), std::string::npos) << refused;
  // Not ready to accept tasks: /healthz says so, and why (SPEC §9).
  auto health = HttpGet(metrics, "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_NE(health->body.find("not ready: the task store cannot commit"), std::string::npos)
      << health->body;

  // Everything else keeps serving, and the refused submit left nothing.
  CtlResult stats = RunCtl(daemon_.address(), {"--json", "stats"});
  ASSERT_EQ(stats.exit_code, 0) << stats;
  EXPECT_EQ(stats.Json()["queued"], 1) << stats;
  EXPECT_EQ(RunCtl(daemon_.address(), {"status", kept}).exit_code, 0);

  ASSERT_TRUE(Chattr("-i"));
  CtlResult accepted;
  EXPECT_TRUE(WaitFor([&] {
    accepted = RunCtl(daemon_.address(), {"submit", "--skill", "gpu"});
    return accepted.exit_code == 0;
  })) << accepted;
  // The commit that accepted it made pincerd ready again.
  health = HttpGet(metrics, "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << health->body;

  // Both accepted tasks survive a crash.
  daemon_.Kill9();
  ASSERT_TRUE(daemon_.Restart());
  CtlResult after = RunCtl(daemon_.address(), {"--json", "stats"});
  ASSERT_EQ(after.exit_code, 0) << after;
  EXPECT_EQ(after.Json()["queued"], 2) << after;
}

TEST(StoreFileSizeLimitTest, StoreWritesPastTheLimitRefuseSubmitsUntilItIsRaised) {
  DaemonProcess daemon(kConfig);
  ASSERT_TRUE(daemon.Start());
  const std::string metrics = MetricsAddress(daemon);
  CtlResult first = RunCtl(daemon.address(), {"submit", "--skill", "gpu"});
  ASSERT_EQ(first.exit_code, 0) << first;

  // No file of pincerd's may grow (or be written) past 0 bytes now.
  rlimit old{};
  ASSERT_EQ(::prlimit(daemon.pid(), RLIMIT_FSIZE, nullptr, &old), 0);
  const rlimit none{0, old.rlim_max};
  ASSERT_EQ(::prlimit(daemon.pid(), RLIMIT_FSIZE, &none, nullptr), 0);

  CtlResult refused = RunCtl(daemon.address(), {"--json", "submit", "--skill", "gpu"});
  EXPECT_NE(refused.exit_code, 0) << refused;
  EXPECT_NE(refused.err.find("store_unavailable"), std::string::npos) << refused;
  auto health = HttpGet(metrics, "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_NE(health->body.find("not ready: the task store cannot commit"), std::string::npos)
      << health->body;
  EXPECT_TRUE(daemon.running());  // not killed by SIGXFSZ
  CtlResult stats = RunCtl(daemon.address(), {"--json", "stats"});
  ASSERT_EQ(stats.exit_code, 0) << stats;
  EXPECT_EQ(stats.Json()["queued"], 1) << stats;

  ASSERT_EQ(::prlimit(daemon.pid(), RLIMIT_FSIZE, &old, nullptr), 0);
  CtlResult accepted;
  EXPECT_TRUE(WaitFor([&] {
    accepted = RunCtl(daemon.address(), {"submit", "--skill", "gpu"});
    return accepted.exit_code == 0;
  })) << accepted;
  health = HttpGet(metrics, "/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200) << health->body;

  daemon.Kill9();
  ASSERT_TRUE(daemon.Restart());
  CtlResult after = RunCtl(daemon.address(), {"--json", "stats"});
  ASSERT_EQ(after.exit_code, 0) << after;
  EXPECT_EQ(after.Json()["queued"], 2) << after;
}

}  // namespace
}  // namespace pincer::test
