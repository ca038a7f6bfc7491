// --addr A,B (docs/cli.md, "Several addresses"; docs/protocol.md,
// not_leader): pincerctl and pincer-worker pass over an address that
// refuses the connection, and go where a standby's `not_leader` says the
// leader serves. The standby here is a listener of the test's own that
// answers every hello as a standby pincerd does; the leader is a real
// pincerd.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/wait_for.h"
#include "support/worker_fixture.h"

namespace pincer::test {
namespace {

using nlohmann::json;

// A loopback socket bound to a port and never listening: connecting to
// that port is refused, and no other test takes it while this one holds it.
class RefusingPort {
 public:
  RefusingPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    address_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  }
  ~RefusingPort() { close(fd_); }
  const std::string& address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_;
};

// A loopback port that listens and never answers: the kernel takes each
// connection, nothing reads the hello (a stopped pincerd, say).
class SilentPort {
 public:
  SilentPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 16);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    address_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  }
  ~SilentPort() { close(fd_); }
  const std::string& address() const { return address_; }

 private:
  int fd_ = -1;
  std::string address_;
};

// Answers each connection's first line with not_leader (naming `leader`
// when set) and closes it, as a standby pincerd does.
class FakeStandby {
 public:
  explicit FakeStandby(std::string leader) : leader_(std::move(leader)) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd_, 16);
    socklen_t len = sizeof a;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    address_ = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeStandby() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  const std::string& address() const { return address_; }
  // Hellos answered with not_leader so far.
  int refused() const { return refused_; }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      const int conn = accept(fd_, nullptr, nullptr);
      if (conn < 0) continue;
      std::string in;
      char buf[4096];
      while (in.find('\n') == std::string::npos) {
        pollfd c{conn, POLLIN, 0};
        if (poll(&c, 1, 5000) <= 0) break;
        const ssize_t n = read(conn, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, static_cast<std::size_t>(n));
      }
      if (in.find('\n') != std::string::npos) {
        json error = {
            {"type", "error"}, {"code", "not_leader"}, {"message", "this pincerd is a standby"}};
        if (!leader_.empty()) error["leader"] = leader_;
        const std::string line = error.dump() + "\n";
        if (write(conn, line.data(), line.size()) == static_cast<ssize_t>(line.size())) {
          ++refused_;
        }
      }
      close(conn);
    }
  }

  std::string leader_;
  int fd_ = -1;
  std::string address_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> refused_{0};
};

class AddressListTest : public WorkerFixture {
 protected:
  void SetUp() override { StartDaemon(); }

  CtlResult CtlAt(const std::string& addr, const std::vector<std::string>& args) {
    return RunCtl(addr, args);
  }
};

TEST_F(AddressListTest, PincerctlPassesOverARefusedAddress) {
  RefusingPort dead;
  CtlResult r = CtlAt(dead.address() + "," + daemon_->address(), {"--json", "stats"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_TRUE(r.Json().is_object()) << r;
}

TEST_F(AddressListTest, PincerctlFollowsTheLeaderAStandbyNames) {
  FakeStandby standby(daemon_->address());
  // Only the standby is listed: its answer alone leads to the leader.
  CtlResult r = CtlAt(standby.address(), {"--json", "stats"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(standby.refused(), 1);
}

TEST_F(AddressListTest, PincerctlGoesOnFromAStandbyThatNamesNoLeader) {
  FakeStandby standby("");
  CtlResult r = CtlAt(standby.address() + "," + daemon_->address(), {"--json", "stats"});
  EXPECT_EQ(r.exit_code, 0) << r;
  EXPECT_EQ(standby.refused(), 1);
}

TEST_F(AddressListTest, NoPincerdAcceptsExitsThreeNamingEachAddress) {
  RefusingPort dead;
  FakeStandby standby("");
  CtlResult r = CtlAt(dead.address() + "," + standby.address(), {"stats"});
  EXPECT_EQ(r.exit_code, 3) << r;
  EXPECT_NE(r.err.find(dead.address() + ": "), std::string::npos) << r;
  EXPECT_NE(r.err.find(standby.address() + ": not_leader"), std::string::npos) << r;
  // Rounds went on past the first: the standby was asked more than once.
  EXPECT_GT(standby.refused(), 1);

  // A single address that refuses fails at once, as before lists.
  CtlResult single = CtlAt(standby.address(), {"stats"});
  EXPECT_EQ(single.exit_code, 3) << single;
  EXPECT_NE(single.err.find("not_leader"), std::string::npos) << single;
}

TEST_F(AddressListTest, ADaemonThatNeverAnswersTheHelloIsUnreachable) {
  SilentPort silent;
  CtlResult single = CtlAt(silent.address(), {"stats"});
  EXPECT_EQ(single.exit_code, 3) << single;
  EXPECT_NE(single.err.find("no welcome"), std::string::npos) << single;

  // In a list, each address is named with its own reason, also when the
  // silent one used the time up.
  RefusingPort dead;
  CtlResult both = CtlAt(silent.address() + "," + dead.address(), {"stats"});
  EXPECT_EQ(both.exit_code, 3) << both;
  EXPECT_NE(both.err.find(silent.address() + ": connect_failed: no welcome"), std::string::npos)
      << both;
  EXPECT_NE(both.err.find(dead.address() + ": connect_failed: cannot connect"), std::string::npos)
      << both;
  EXPECT_EQ(both.err.find("timed out resolving"), std::string::npos) << both;
}

TEST_F(AddressListTest, BadListIsAUsageError) {
  CtlResult r = CtlAt(daemon_->address() + ",", {"stats"});
  EXPECT_EQ(r.exit_code, 2) << r;
  EXPECT_NE(r.err.find("empty address"), std::string::npos) << r;
}

TEST_F(AddressListTest, PincerWorkerServesThroughAStandbyAndADeadAddress) {
  RefusingPort dead;
  FakeStandby standby(daemon_->address());
  // The worker first meets a dead address, then the standby, which sends
  // it to the leader; then tasks run.
  StartWorkerProcess({kWorker, "--addr", dead.address() + "," + standby.address(), "--name",
                      "listed", "--skill", "echo", "--log-level", "debug", "--", "cat"},
                     {{"PINCER_ADDR", std::nullopt}, {"PINCER_TOKEN", std::nullopt}});
  ASSERT_TRUE(WaitForWorker("listed"));
  EXPECT_GE(standby.refused(), 1);
  const json end = SubmitWait({"--skill", "echo", "--payload", R"("through")"});
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["output"], "through");
  EXPECT_NE(WorkerLog(0).find("is a standby; the leader serves on " + daemon_->address()),
            std::string::npos)
      << WorkerLog(0);
}

}  // namespace
}  // namespace pincer::test
