// What one peer may cost pincerd, against a real pincerd over raw sockets:
// a line before hello is small; a client that does not read its answers is
// no longer read from, and a worker that does not read its tasks is offered
// no more, until they drain; many silent connections are closed after
// limits.hello_timeout while others are served; running out of descriptors
// pauses accepting instead of spinning. Memory is pincerd's resident set
// from /proc/PID/status (its peak, VmHWM, for the bounds).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/daemon_process.h"
#include "support/raw_peer.h"
#include "support/scenario.h"
#include "support/test_worker.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr int64_t kMiB = 1024 * 1024;
// How long to wait for something that is bound to happen (a close, the next
// line of a drain). Reached only when pincerd made no progress at all.
constexpr milliseconds kStall{60000};

// A field of /proc/PID/status in bytes ("VmRSS", "VmHWM"); -1 if unreadable.
int64_t StatusBytes(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;
  }
  return -1;
}

// pincerd's CPU time so far (user + system), in clock ticks.
int64_t CpuTicks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));
  std::string field;
  int64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return utime + stime;
}

std::size_t OpenFiles(pid_t pid) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    ++n;
  }
  return n;
}

// Raises this process's open-file soft limit to at least `want`; false if
// the hard limit does not allow it.
bool EnsureOpenFiles(rlim_t want) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_cur >= want) return true;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < want) return false;
  lim.rlim_cur = want;
  return ::setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

// A field of a JSON object, or `fallback` when it is not one (a missing
// worker, a line that was not JSON).
template <typename T>
T Field(const json& j, const char* key, T fallback) {
  return j.is_object() ? j.value(key, fallback) : fallback;
}

bool LogHas(const DaemonProcess& daemon, const std::string& text) {
  return daemon.ReadStderr().find(text) != std::string::npos;
}

// Many TCP connections that never send a byte; watched together with poll().
class SilentSockets {
 public:
  ~SilentSockets() {
    for (const pollfd& p : fds_) ::close(p.fd);
  }
  // Connects `n` sockets; "" or an error.
  std::string Open(const std::string& addr, int n) {
    const auto colon = addr.rfind(':');
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(std::stoi(addr.substr(colon + 1))));
    ::inet_pton(AF_INET, addr.substr(0, colon).c_str(), &sa.sin_addr);
    for (int i = 0; i < n; ++i) {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0) return "socket " + std::to_string(i) + ": " + std::strerror(errno);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        const std::string err = std::strerror(errno);
        ::close(fd);
        return "connect " + std::to_string(i) + ": " + err;
      }
      fds_.push_back({fd, POLLIN, 0});
      input_.emplace_back();
    }
    return "";
  }
  // Reads what is there without waiting; returns how many are closed by
  // pincerd by now.
  int Closed() { return Poll(0); }
  // Waits until every socket is closed, as long as some close within
  // `stall` of each other. True when all are.
  bool WaitAllClosed(milliseconds stall) {
    int closed = Poll(0);
    auto last_close = std::chrono::steady_clock::now();
    while (closed < static_cast<int>(fds_.size())) {
      const auto left = stall - (std::chrono::steady_clock::now() - last_close);
      if (left <= milliseconds(0)) return false;
      const int now =
          Poll(static_cast<int>(std::chrono::duration_cast<milliseconds>(left).count()) + 1);
      if (now > closed) last_close = std::chrono::steady_clock::now();
      closed = now;
    }
    return true;
  }
  // What socket `i` received before it was closed.
  const std::string& input(std::size_t i) const { return input_[i]; }
  std::size_t size() const { return fds_.size(); }

 private:
  int Poll(int timeout_ms) {
    std::vector<pollfd> open;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < fds_.size(); ++i) {
      if (fds_[i].events == 0) continue;
      open.push_back(fds_[i]);
      which.push_back(i);
    }
    if (!open.empty() && ::poll(open.data(), open.size(), timeout_ms) > 0) {
      for (std::size_t k = 0; k < open.size(); ++k) {
        if (!open[k].revents) continue;
        char buf[4096];
        const ssize_t n = ::recv(open[k].fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n > 0) {
          input_[which[k]].append(buf, static_cast<std::size_t>(n));
        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
          fds_[which[k]].events = 0;  // closed
        }
      }
    }
    int closed = 0;
    for (const pollfd& p : fds_) closed += p.events == 0;
    return closed;
  }

  std::vector<pollfd> fds_;  // events == 0 once closed
  std::vector<std::string> input_;
};

// ------------------------------------------------------------ before hello

TEST(PeerLimitsTest, ThirtyConnectionsSendingTwelveMiBBeforeHelloCostLittleMemory) {
  DaemonProcess daemon("store: { kind: memory }\n");
  ASSERT_TRUE(daemon.Start());
  const int64_t before = StatusBytes(daemon.pid(), "VmRSS");
  ASSERT_GT(before, 0);

  const std::string blob(12 * kMiB, 'x');  // no newline, no hello
  std::vector<std::thread> senders;
  std::atomic<int> closed{0};
  for (int i = 0; i < 30; ++i) {
    senders.emplace_back([&] {
      RawPeer peer;
      if (!peer.Connect(daemon.address()).empty()) return;
      peer.SendRaw(blob);  // fails once pincerd has closed the connection
      if (peer.WaitClosed(kStall)) ++closed;
    });
  }
  for (std::thread& t : senders) t.join();
  EXPECT_EQ(closed, 30);
  const int64_t peak = StatusBytes(daemon.pid(), "VmHWM");
  EXPECT_LT(peak - before, 100 * kMiB)
      << "pincerd grew from " << before << " to a peak of " << peak;

  auto client = ConnectClient(daemon.address());
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(Stats(*client).is_object());
}

TEST(PeerLimitsTest, ALongLineBeforeHelloIsRefusedAndAfterHelloTheFrameLimitApplies) {
  DaemonProcess daemon("store: { kind: memory }\n");
  ASSERT_TRUE(daemon.Start());
  {
    RawPeer peer;
    ASSERT_EQ(peer.Connect(daemon.address()), "");
    ASSERT_TRUE(peer.SendRaw(std::string(70000, 'x')));  // past 64 KiB, no newline
    auto err = peer.ReadJson(kStall);
    ASSERT_TRUE(err);
    EXPECT_EQ(err->value("code", ""), "frame_too_large") << err->dump();
    EXPECT_NE(err->value("message", "").find("before hello"), std::string::npos) << err->dump();
    EXPECT_TRUE(peer.WaitClosed(kStall));
  }
  {
    // A hello with large labels still fits, and once welcomed the peer may
    // send lines up to limits.max_frame_bytes.
    RawPeer peer;
    ASSERT_EQ(peer.Connect(daemon.address()), "");
    auto welcome = peer.Hello("client", "", {{"labels", {{"note", std::string(60000, 'l')}}}});
    ASSERT_TRUE(welcome);
    ASSERT_EQ(welcome->value("type", ""), "welcome") << welcome->dump();
    ASSERT_TRUE(peer.SendJson({{"type", "submit"},
                               {"req", 1},
                               {"skills", {"none"}},
                               {"payload", std::string(2 * kMiB, 'p')}}));
    auto ok = peer.ReadJson(kStall);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->value("type", ""), "ok") << ok->dump();
  }
}

// ------------------------------------------------- silent connections, fds

TEST(PeerLimitsTest, SilentConnectionsAreClosedAfterHelloTimeoutWhileAClientIsServed) {
  constexpr int kSilent = 1500;
  if (!EnsureOpenFiles(kSilent + 256))
    GTEST_SKIP() << "the open-file hard limit is below " << kSilent + 256;
  DaemonProcess daemon("store: { kind: memory }\nlimits: { hello_timeout: 3s }\n");
  ASSERT_TRUE(daemon.Start());
  TestWorkerOptions o;
  o.skills = {"echo"};
  auto worker = TestWorker::Connect(daemon.address(), o);
  ASSERT_TRUE(worker.ok()) << worker.error().ToString();
  (*worker)->StartAuto();

  const int64_t before = StatusBytes(daemon.pid(), "VmRSS");
  SilentSockets silent;
  ASSERT_EQ(silent.Open(daemon.address(), kSilent), "");
  // A client coming after them is served at once, long before their
  // hello_timeout.
  auto client = ConnectClient(daemon.address());
  ASSERT_NE(client, nullptr);
  json end = WaitEnd(*client, SubmitTask(*client, {{"skills", {"echo"}}, {"payload", "hi"}}));
  EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
  EXPECT_EQ(silent.Closed(), 0) << "silent connections were closed before the client was served";

  ASSERT_TRUE(silent.WaitAllClosed(kStall)) << silent.Closed() << " of " << kSilent << " closed";
  // An idle connection costs pincerd a few KiB, not a read buffer of 64.
  const int64_t peak = StatusBytes(daemon.pid(), "VmHWM");
  EXPECT_LT(peak - before, 48 * kMiB) << "pincerd grew from " << before << " to a peak of " << peak;
  for (std::size_t i = 0; i < silent.size(); ++i) {
    const json err = json::parse(silent.input(i), nullptr, false);
    ASSERT_EQ(Field<std::string>(err, "code", ""), "hello_timeout") << i << ": " << silent.input(i);
  }
  // The connection that was served stays open, and serves on.
  end = WaitEnd(*client, SubmitTask(*client, {{"skills", {"echo"}}, {"payload", "again"}}));
  EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
}

TEST(PeerLimitsTest, OutOfDescriptorsAcceptingWaitsInsteadOfSpinning) {
#if defined(__SANITIZE_ADDRESS__)
  // UBSan's vptr check probes memory through a pipe; with no descriptor
  // left it cannot, and reports every virtual call as a bad one. The
  // Release suite runs this test.
  GTEST_SKIP() << "out of descriptors, the sanitizers report false positives";
#endif
  DaemonProcess daemon("store: { kind: memory }\nlimits: { hello_timeout: 1s }\n");
  ASSERT_TRUE(daemon.Start());
  const pid_t pid = daemon.pid();
  // Room for 20 more descriptors in pincerd, then accept() fails (EMFILE).
  const rlim_t limit = OpenFiles(pid) + 20;
  const rlimit lim{limit, limit};
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &lim, nullptr), 0) << std::strerror(errno);

  // While descriptors are short, pincerd waits for one to be freed rather
  // than retrying accept() in a loop: it stays all but idle (a few ticks
  // for 60 connections). A busy loop takes a core, or on a loaded machine
  // a good part of one (a third on two shared cores); more than a tenth of
  // the time is taken for one.
  const auto wall_start = std::chrono::steady_clock::now();
  const int64_t cpu_start = CpuTicks(pid);
  SilentSockets silent;
  ASSERT_EQ(silent.Open(daemon.address(), 60), "");  // queued by the kernel past the 20
  // Every silent connection is taken in turn as earlier ones time out.
  ASSERT_TRUE(silent.WaitAllClosed(kStall)) << silent.Closed() << " of 60 closed";
  const double wall_ticks =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count() *
      static_cast<double>(::sysconf(_SC_CLK_TCK));
  EXPECT_LT(static_cast<double>(CpuTicks(pid) - cpu_start), 0.1 * wall_ticks)
      << "pincerd used " << CpuTicks(pid) - cpu_start << " CPU ticks in " << wall_ticks;
  for (std::size_t i = 0; i < silent.size(); ++i) {
    EXPECT_NE(silent.input(i).find("hello_timeout"), std::string::npos)
        << i << ": " << silent.input(i);
  }
  // The listener is alive: a client connecting now is served.
  auto client = ConnectClient(daemon.address());
  ASSERT_NE(client, nullptr);
  EXPECT_TRUE(Stats(*client).is_object());
  EXPECT_TRUE(LogHas(daemon, "cannot accept connections"));
  EXPECT_TRUE(LogHas(daemon, "accepting connections again"));
}

// ------------------------------------------------------- output backlogs

class PeerBacklogTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::string Config() const {
    return "store: { kind: " + GetParam() + " }\nheartbeat: { interval: 60s }\n";
  }
};

INSTANTIATE_TEST_SUITE_P(Stores, PeerBacklogTest, ::testing::Values("memory", "sqlite"));

// A client that pipelines `wait: true` submits of 4 KB from a thread and
// reads nothing until told to.
class Hog {
 public:
  static constexpr int kTasks = 12000;  // 48 MB of submits

  Hog(DaemonProcess& daemon, const std::string& skill) : daemon_(daemon) {
    if (!peer_.Connect(daemon.address()).empty()) return;
    auto welcome = peer_.Hello("client");
    if (!welcome) return;
    id_ = Field<std::string>(*welcome, "id", "");
    sender_ = std::thread([this, skill] {
      const std::string payload(4000, 'p');
      for (int i = 1; i <= kTasks; ++i) {
        const json submit = {{"type", "submit"},
                             {"req", i},
                             {"skills", {skill}},
                             {"payload", payload},
                             {"wait", true}};
        if (!peer_.SendJson(submit)) return;
        ++sent_;
      }
    });
  }
  // If the test stopped early, the sender may be blocked: a dead pincerd
  // lets it go.
  ~Hog() {
    if (!drained_) daemon_.Kill9();
    if (sender_.joinable()) sender_.join();
  }
  const std::string& id() const { return id_; }  // "" if it could not connect
  int sent() const { return sent_; }
  bool HeldBack() const { return LogHas(daemon_, "connection " + id_ + " is not reading"); }

  // Reads every answer; true when each submit got its ack and an `end`
  // that says succeeded, and every submit was sent.
  ::testing::AssertionResult ReadAll() {
    int acks = 0, ends = 0, succeeded = 0;
    while (ends < kTasks) {
      auto line = peer_.ReadJson(kStall);
      if (!line) {
        return ::testing::AssertionFailure() << "stalled after " << acks << " acks and " << ends
                                             << " ends (" << sent_ << " sent)";
      }
      const std::string type = Field<std::string>(*line, "type", "");
      if (type == "ok") {
        ++acks;
      } else if (type == "end") {
        ++ends;
        succeeded += Field<std::string>(*line, "state", "") == "succeeded";
      } else {
        return ::testing::AssertionFailure() << "unexpected: " << line->dump();
      }
    }
    sender_.join();
    drained_ = true;
    if (acks != kTasks || succeeded != kTasks || sent_ != kTasks) {
      return ::testing::AssertionFailure()
             << acks << " acks, " << succeeded << " succeeded, " << sent_ << " sent of " << kTasks;
    }
    return ::testing::AssertionSuccess();
  }

 private:
  DaemonProcess& daemon_;
  RawPeer peer_;
  std::string id_;
  std::atomic<int> sent_{0};
  std::thread sender_;
  bool drained_ = false;
};

TEST_P(PeerBacklogTest, AClientThatDoesNotReadIsNotReadFromUntilItDoes) {
  DaemonProcess daemon(Config());
  ASSERT_TRUE(daemon.Start());
  TestWorkerOptions o;
  o.skills = {"echo"};
  o.capacity = 16;
  auto worker = TestWorker::Connect(daemon.address(), o);
  ASSERT_TRUE(worker.ok()) << worker.error().ToString();
  (*worker)->StartAuto();  // answers with the payload: every `end` carries 4 KB
  const int64_t before = StatusBytes(daemon.pid(), "VmRSS");

  Hog hog(daemon, "echo");
  ASSERT_FALSE(hog.id().empty());
  ASSERT_TRUE(WaitFor([&] { return hog.HeldBack(); }, kStall)) << daemon.ReadStderr();
  // The sender is stuck: pincerd stopped reading far short of the 48 MB.
  EXPECT_LT(hog.sent(), Hog::kTasks);

  // Everyone else is served meanwhile.
  auto other = ConnectClient(daemon.address());
  ASSERT_NE(other, nullptr);
  json end = WaitEnd(*other, SubmitTask(*other, {{"skills", {"echo"}}, {"payload", "other"}}));
  EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
  const int64_t peak = StatusBytes(daemon.pid(), "VmHWM");
  EXPECT_LT(peak - before, 160 * kMiB)
      << "pincerd grew from " << before << " to a peak of " << peak;

  // Once the client reads, pincerd reads on: every submit is answered and
  // every task ends.
  EXPECT_TRUE(hog.ReadAll());
}

// No worker runs the tasks yet: nothing is written to the client, but
// what it waits for counts, so pincerd stops reading it all the same.
TEST_P(PeerBacklogTest, AClientWaitingForTasksNobodyRunsIsReadAsTheyEnd) {
  DaemonProcess daemon(Config());
  ASSERT_TRUE(daemon.Start());
  const int64_t before = StatusBytes(daemon.pid(), "VmRSS");

  Hog hog(daemon, "later");
  ASSERT_FALSE(hog.id().empty());
  ASSERT_TRUE(WaitFor([&] { return hog.HeldBack(); }, kStall)) << daemon.ReadStderr();
  EXPECT_LT(hog.sent(), Hog::kTasks);
  auto other = ConnectClient(daemon.address());
  ASSERT_NE(other, nullptr);
  const json stats = Stats(*other);
  EXPECT_LT(stats.value("submitted", Hog::kTasks), Hog::kTasks) << stats.dump();
  const int64_t peak = StatusBytes(daemon.pid(), "VmHWM");
  EXPECT_LT(peak - before, 160 * kMiB)
      << "pincerd grew from " << before << " to a peak of " << peak;

  // A worker comes: as tasks end, the client gets their ends and pincerd
  // reads the rest of its submits.
  TestWorkerOptions o;
  o.skills = {"later"};
  o.capacity = 16;
  auto worker = TestWorker::Connect(daemon.address(), o);
  ASSERT_TRUE(worker.ok()) << worker.error().ToString();
  (*worker)->StartAuto();
  EXPECT_TRUE(hog.ReadAll());
}

TEST_P(PeerBacklogTest, AWorkerThatDoesNotReadIsOfferedNoTasksUntilItDoes) {
  DaemonProcess daemon(Config());
  ASSERT_TRUE(daemon.Start());
  RawPeer stuck;
  ASSERT_EQ(stuck.Connect(daemon.address()), "");
  auto welcome = stuck.Hello("worker", "", {{"skills", {"stuck"}}, {"capacity", 1000000}});
  ASSERT_TRUE(welcome);
  const std::string stuck_id = welcome->value("id", "");

  // 1,500 tasks of 32 KB (48 MB) for the one worker that could run them all.
  constexpr int kTasks = 1500;
  RawPeer feeder;
  ASSERT_EQ(feeder.Connect(daemon.address()), "");
  ASSERT_TRUE(feeder.Hello("client"));
  const std::string payload(32000, 'p');
  for (int i = 1; i <= kTasks; ++i) {
    ASSERT_TRUE(feeder.SendJson(
        {{"type", "submit"}, {"req", i}, {"skills", {"stuck"}}, {"payload", payload}}));
  }
  for (int i = 1; i <= kTasks; ++i) {
    auto ok = feeder.ReadJson(kStall);
    ASSERT_TRUE(ok);
    ASSERT_EQ(ok->value("type", ""), "ok") << ok->dump();
  }

  auto witness = ConnectClient(daemon.address());
  ASSERT_NE(witness, nullptr);
  ASSERT_TRUE(WaitFor(
      [&] { return Field(FindWorker(Workers(*witness), stuck_id), "backlogged", false); }, kStall));
  // It was sent what fits in the backlog and no more: the rest wait.
  const json stats = Stats(*witness);
  EXPECT_GT(stats.value("queued", 0), 0) << stats.dump();
  const json w = FindWorker(Workers(*witness), stuck_id);
  EXPECT_LT(Field(w, "inflight", kTasks), kTasks) << w.dump();

  // Other work goes on.
  TestWorkerOptions o;
  o.skills = {"other"};
  auto other = TestWorker::Connect(daemon.address(), o);
  ASSERT_TRUE(other.ok()) << other.error().ToString();
  (*other)->StartAuto();
  json end = WaitEnd(*witness, SubmitTask(*witness, {{"skills", {"other"}}, {"payload", "x"}}));
  EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();

  // Once it reads, it is offered the rest: it gets every task.
  for (int i = 0; i < kTasks; ++i) {
    auto task = stuck.ReadJson(kStall);
    ASSERT_TRUE(task) << "stalled after " << i << " tasks";
    ASSERT_EQ(task->value("type", ""), "task") << task->dump();
    ASSERT_TRUE(stuck.SendJson(
        {{"type", "result"}, {"id", (*task)["id"]}, {"ok", true}, {"output", "done"}}));
  }
  ASSERT_TRUE(WaitFor([&] { return Stats(*witness).value("succeeded", 0) == kTasks + 1; }, kStall))
      << Stats(*witness).dump();
  EXPECT_FALSE(Field(FindWorker(Workers(*witness), stuck_id), "backlogged", true));
}

}  // namespace
}  // namespace pincer::test
