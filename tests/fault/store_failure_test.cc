// A store that stops being writable: submits are refused with
// store_unavailable and change nothing, everything else keeps serving, and
// submits are accepted again once the disk is writable. "Unwritable" is
// made with `chattr +i`, which holds even for root; where the file system
// or the user cannot do that, the test is skipped.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

class StoreFailureTest : public ::testing::Test {
 protected:
  bool Chattr(const std::string& flag) {
    const std::string d = daemon_.data_dir();
    const std::string cmd = "chattr " + flag + " '" + d + "/pincer.db' '" + d +
                            "/pincer.db-wal' '" + d + "' 2>/dev/null";
    return std::system(cmd.c_str()) == 0;
  }
  void TearDown() override { Chattr("-i"); }

  DaemonProcess daemon_{"store: { kind: sqlite, fsync: always }\n"};
};

TEST_F(StoreFailureTest, UnwritableStoreRefusesSubmitsAndRecovers) {
  ASSERT_TRUE(daemon_.Start());
  CtlResult first = RunCtl(daemon_.address(), {"submit", "--skill", "gpu"});
  ASSERT_EQ(first.exit_code, 0) << first;
  const std::string kept = first.out.substr(0, first.out.find('\n'));

  if (!Chattr("+i")) GTEST_SKIP() << "chattr +i is not available here";

  CtlResult refused = RunCtl(daemon_.address(), {"--json", "submit", "--skill", "gpu"});
  EXPECT_NE(refused.exit_code, 0) << refused;
  EXPECT_NE(refused.err.find("store_unavailable"), std::string::npos) << refused;

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

  // Both accepted tasks survive a crash.
  daemon_.Kill9();
  ASSERT_TRUE(daemon_.Restart());
  CtlResult after = RunCtl(daemon_.address(), {"--json", "stats"});
  ASSERT_EQ(after.exit_code, 0) << after;
  EXPECT_EQ(after.Json()["queued"], 2) << after;
}

}  // namespace
}  // namespace pincer::test
