// Workers on other hosts, cut off and healed (docs/high-availability.md,
// "Tested"). Three network namespaces stand for three hosts: pincerd runs
// in one, a pincer-worker in each of the other two, joined to pincerd's by
// a veth pair each (iproute2). Host A's link is cut while it runs tasks:
// pincerd hears no heartbeat from it, declares it dead and runs its tasks
// again on host B. A's runs then finish during the cut, and their results
// go out on the connection pincerd closed; when the link heals they are
// refused (the connection is reset; on a new connection a result for a
// task the worker does not hold is `unknown_task`, docs/protocol.md), A
// reconnects as a new worker, and no task has a second success.
//
// Needs root (CAP_NET_ADMIN) and iproute2; skips, saying so, without them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

std::string IpBinary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

// Three namespaces, `<tag>d` (pincerd) joined to `<tag>a` and `<tag>b` by a
// veth pair each: d is 10.231.1.1 to a's 10.231.1.2, and 10.231.2.1 to b's
// 10.231.2.2. The addresses exist only inside these namespaces. Removed
// when destroyed, whatever happened.
class Hosts {
 public:
  Hosts() : ip_(IpBinary()), tag_("pcr" + std::to_string(getpid())) {}
  ~Hosts() {
    for (const std::string& ns : made_) Ip({"netns", "del", ns});
  }
  Hosts(const Hosts&) = delete;
  Hosts& operator=(const Hosts&) = delete;

  // "" once built; else why not (not root, no iproute2, ...).
  std::string Build() {
    if (ip_.empty()) return "iproute2's `ip` is not installed (Debian: iproute2; scripts/deps)";
    RemoveLeftovers();
    for (const char* host : {"d", "a", "b"}) {
      const ProcessResult r = Ip({"netns", "add", ns(host)});
      if (r.exit_code != 0) {
        return "cannot create a network namespace (needs root or CAP_NET_ADMIN): " + r.err;
      }
      made_.push_back(ns(host));
    }
    for (const auto& [host, net] : {std::pair{"a", "1"}, std::pair{"b", "2"}}) {
      const std::string near = link(host), far = tag_ + host + "d";
      const std::vector<std::vector<std::string>> steps = {
          {"link", "add", near, "netns", ns("d"), "type", "veth", "peer", "name", far, "netns",
           ns(host)},
          {"-n", ns("d"), "addr", "add", "10.231." + std::string(net) + ".1/24", "dev", near},
          {"-n", ns(host), "addr", "add", "10.231." + std::string(net) + ".2/24", "dev", far},
          {"-n", ns("d"), "link", "set", near, "up"},
          {"-n", ns(host), "link", "set", far, "up"},
          {"-n", ns(host), "link", "set", "lo", "up"},
      };
      for (const auto& step : steps) {
        const ProcessResult r = Ip(step);
        if (r.exit_code != 0) return "ip " + step[0] + " " + step[1] + ": " + r.err;
      }
    }
    const ProcessResult lo = Ip({"-n", ns("d"), "link", "set", "lo", "up"});
    if (lo.exit_code != 0) return lo.err;
    return "";
  }

  // Namespaces of an earlier run that was killed before it removed them
  // (its process is gone).
  void RemoveLeftovers() const {
    const std::regex re("^pcr([0-9]+)[dab]\\b");
    std::istringstream list(Ip({"netns", "list"}).out);
    for (std::string line; std::getline(list, line);) {
      std::smatch m;
      if (std::regex_search(line, m, re) && access(("/proc/" + m[1].str()).c_str(), F_OK) != 0) {
        Ip({"netns", "del", line.substr(0, line.find(' '))});
      }
    }
  }

  std::string ns(const std::string& host) const { return tag_ + host; }
  // pincerd's end of the link to `host`.
  std::string link(const std::string& host) const { return tag_ + "d" + host; }
  // Runs argv in `host`'s namespace (ip netns exec execs it in place).
  std::vector<std::string> In(const std::string& host, std::vector<std::string> argv) const {
    argv.insert(argv.begin(), {ip_, "netns", "exec", ns(host)});
    return argv;
  }
  ProcessResult Ip(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {ip_};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunProcess(argv, "", {}, seconds(30));
  }

 private:
  std::string ip_;
  std::string tag_;
  std::vector<std::string> made_;
};

class PartitionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = hosts_.Build(); !why.empty()) GTEST_SKIP() << why;
  }

  // pincerctl run on pincerd's host, against its loopback.
  CtlResult Ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv =
        hosts_.In("d", {std::string(PINCER_BUILD_DIR) + "/pincerctl", "--addr", local_});
    argv.insert(argv.end(), args.begin(), args.end());
    const ProcessResult p = RunProcess(
        argv, "", {{"PINCER_ADDR", std::nullopt}, {"PINCER_TOKEN", std::nullopt}}, seconds(60));
    return {p.exit_code, p.out, p.err};
  }
  json Status(const std::string& id) { return Ctl({"--json", "status", id}).Json(); }

  // The id of the connected worker named `name`, or "".
  std::string WorkerId(const std::string& name) {
    const json list = Ctl({"--json", "workers"}).Json();
    if (!list.is_array()) return "";
    for (const json& w : list) {
      if (w.value("name", "") == name) return w.value("id", "");
    }
    return "";
  }

  Hosts hosts_;
  std::string local_;
};

TEST_F(PartitionTest, ACutOffHostsTasksRunElsewhereAndItsLateResultsAreRefused) {
  TempDir dir("netns");
  // A short heartbeat: a silent worker is dead after 10 × 200 ms (room
  // for a loaded machine, or a sanitizer build, to answer late).
  DaemonOptions options;
  options.config_yaml =
      "listen: \"0.0.0.0:0\"\n"
      "store: { kind: sqlite }\n"
      "heartbeat: { interval: 200ms, misses: 10 }\n";
  options.prefix = hosts_.In("d", {});
  DaemonProcess pincerd(options);
  ASSERT_TRUE(pincerd.Start());
  const std::string port = pincerd.address().substr(pincerd.address().rfind(':') + 1);
  local_ = "127.0.0.1:" + port;

  // Each run appends its host to markers/<payload> once it finishes, and
  // prints {"host":..,"job":..}. Host h's runs wait for the file release-h
  // first: the test decides when A's runs may end.
  ASSERT_EQ(system(("mkdir -p " + dir.Join("markers")).c_str()), 0);
  const std::string script =
      "job=$(cat); d=" + dir.path() +
      "; while [ ! -e $d/release-$HOST ]; do sleep 0.02; done;"
      " echo $HOST >> $d/markers/$job; printf '{\"host\":\"%s\",\"job\":\"%s\"}' $HOST $job";
  std::map<std::string, std::unique_ptr<ChildProcess>> workers;
  auto start_worker = [&](const std::string& host, const std::string& address) {
    auto w = std::make_unique<ChildProcess>();
    const std::string err =
        w->Start(hosts_.In(host, {kWorker, "--addr", address, "--name", "host-" + host, "--skill",
                                  "job", "--capacity", "4", "--", "sh", "-c", script}),
                 dir.Join("worker-" + host + ".out"), dir.Join("worker-" + host + ".err"),
                 {{"HOST", host}, {"PINCER_ADDR", std::nullopt}, {"PINCER_TOKEN", std::nullopt}});
    workers[host] = std::move(w);
    return err;
  };
  auto worker_log = [&](const std::string& host) {
    return ReadFileOrEmpty(dir.Join("worker-" + host + ".err"));
  };

  // Host A alone first: it takes four tasks and holds them running.
  ASSERT_EQ(start_worker("a", "10.231.1.1:" + port), "");
  std::string a_id;
  ASSERT_TRUE(WaitFor([&] { return !(a_id = WorkerId("host-a")).empty(); }, seconds(60)))
      << worker_log("a");
  std::vector<std::string> lost;
  for (int i = 0; i < 4; ++i) {
    const CtlResult r = Ctl({"submit", "--skill", "job", "--text", "lost-" + std::to_string(i)});
    ASSERT_EQ(r.exit_code, 0) << r;
    lost.push_back(r.Lines().at(0));
  }
  for (const std::string& id : lost) {
    ASSERT_TRUE(WaitFor([&] { return Status(id).value("state", "") == "running"; }, seconds(60)))
        << Status(id);
    EXPECT_EQ(Status(id).value("worker", ""), a_id);
  }

  // Host B joins; its runs end at once.
  dir.WriteFile("release-b", "");
  ASSERT_EQ(start_worker("b", "10.231.2.1:" + port), "");
  std::string b_id;
  ASSERT_TRUE(WaitFor([&] { return !(b_id = WorkerId("host-b")).empty(); }, seconds(60)))
      << worker_log("b");

  // Cut A off: its link goes down on pincerd's side.
  ProcessResult cut = hosts_.Ip({"-n", hosts_.ns("d"), "link", "set", hosts_.link("a"), "down"});
  ASSERT_EQ(cut.exit_code, 0) << cut.err;
  // pincerd hears nothing from A and runs its tasks again on B.
  ASSERT_TRUE(WaitFor(
      [&] {
        return pincerd.ReadStderr().find("worker " + a_id + " (host-a) declared dead") !=
               std::string::npos;
      },
      seconds(60)))
      << pincerd.ReadStderr();
  std::size_t done = 0;
  EXPECT_TRUE(WaitWhileProgressing(
      [&] {
        done = 0;
        for (const std::string& id : lost) done += Status(id).value("state", "") == "succeeded";
        return done == lost.size();
      },
      [&] { return done; }));

  // A's runs end during the cut: each finishes (its marker) and its
  // worker sends the result on the connection pincerd has closed.
  dir.WriteFile("release-a", "");
  ASSERT_TRUE(WaitWhileProgressing(
      [&] {
        done = 0;
        for (int i = 0; i < 4; ++i) {
          const std::string m = ReadFileOrEmpty(dir.Join("markers/lost-" + std::to_string(i)));
          done += m.find("a\n") != std::string::npos;
        }
        return done == lost.size();
      },
      [&] { return done; }));
  // (pincer-worker logs a result once it has handed it to the connection.)
  for (const std::string& id : lost) {
    ASSERT_TRUE(WaitFor([&] {
      return worker_log("a").find("task " + id + ": done") != std::string::npos;
    })) << worker_log("a");
  }

  // Heal: A's late results reach pincerd's host, on a connection it has
  // closed: refused (reset). A reconnects as a new worker.
  ProcessResult heal = hosts_.Ip({"-n", hosts_.ns("d"), "link", "set", hosts_.link("a"), "up"});
  ASSERT_EQ(heal.exit_code, 0) << heal.err;
  std::string a_again;
  ASSERT_TRUE(WaitFor(
      [&] {
        a_again = WorkerId("host-a");
        return !a_again.empty() && a_again != a_id;
      },
      seconds(120)))
      << worker_log("a");
  EXPECT_NE(worker_log("a").find("lost the connection"), std::string::npos) << worker_log("a");

  // A result for a lost task sent again from host A on a new connection
  // (as a worker that kept it might) is refused too: unknown_task.
  const std::string late = dir.WriteFile(
      "late.py",
      "import json, socket, sys\n"
      "s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)\n"
      "f = s.makefile('rw')\n"
      "def send(m):\n"
      "    f.write(json.dumps(m) + '\\n'); f.flush()\n"
      "send({'type': 'hello', 'role': 'worker', 'proto': 1, 'name': 'late', 'skills': ['job']})\n"
      "f.readline()\n"
      "send({'type': 'result', 'id': sys.argv[3], 'attempt': 1, 'ok': True, 'output': 'late'})\n"
      "while True:\n"
      "    m = json.loads(f.readline())\n"
      "    if m.get('type') == 'error':\n"
      "        print(json.dumps(m)); break\n");
  const ProcessResult refused = RunProcess(
      hosts_.In("a", {"python3", late, "10.231.1.1", port, lost[0]}), "", {}, seconds(60));
  ASSERT_EQ(refused.exit_code, 0) << refused.err;
  const json refusal = json::parse(refused.out, nullptr, false);
  EXPECT_EQ(refusal.value("code", ""), "unknown_task") << refused.out;
  EXPECT_EQ(refusal.value("id", ""), lost[0]) << refused.out;

  // One success each, B's, on the second attempt; A's lost one failed.
  for (std::size_t i = 0; i < lost.size(); ++i) {
    const json s = Status(lost[i]);
    EXPECT_EQ(s.value("state", ""), "succeeded") << s;
    EXPECT_EQ(s.value("worker", ""), b_id) << s;
    EXPECT_EQ(s.value("attempts", 0), 2) << s;
    EXPECT_EQ(s["output"], json({{"host", "b"}, {"job", "lost-" + std::to_string(i)}})) << s;
    ASSERT_TRUE(s["errors"].is_array() && s["errors"].size() == 1u) << s;
    EXPECT_NE(s["errors"][0].dump().find("heartbeats"), std::string::npos) << s;
    // Both hosts ran it to its end, once each: A's run is the one refused.
    std::string m = ReadFileOrEmpty(dir.Join("markers/lost-" + std::to_string(i)));
    std::vector<std::string> runs;
    for (std::size_t p; (p = m.find('\n')) != std::string::npos; m.erase(0, p + 1)) {
      runs.push_back(m.substr(0, p));
    }
    std::sort(runs.begin(), runs.end());
    EXPECT_EQ(runs, (std::vector<std::string>{"a", "b"})) << lost[i];
  }
  const json stats = Ctl({"--json", "stats"}).Json();
  EXPECT_EQ(stats.value("succeeded", -1), 4) << stats;
  // B stayed connected throughout.
  EXPECT_EQ(pincerd.ReadStderr().find("worker " + b_id + " disconnected"), std::string::npos)
      << pincerd.ReadStderr();
  EXPECT_EQ(WorkerId("host-b"), b_id);

  // Both hosts serve again: tasks submitted after the heal all succeed,
  // each once.
  std::vector<std::string> after;
  for (int i = 0; i < 8; ++i) {
    const CtlResult r = Ctl({"submit", "--skill", "job", "--text", "after-" + std::to_string(i)});
    ASSERT_EQ(r.exit_code, 0) << r;
    after.push_back(r.Lines().at(0));
  }
  EXPECT_TRUE(WaitWhileProgressing(
      [&] {
        done = 0;
        for (const std::string& id : after) done += Status(id).value("state", "") == "succeeded";
        return done == after.size();
      },
      [&] { return done; }));
  for (int i = 0; i < 8; ++i) {
    const std::string m = ReadFileOrEmpty(dir.Join("markers/after-" + std::to_string(i)));
    EXPECT_TRUE(m == "a\n" || m == "b\n") << "after-" << i << " ran: " << m;
  }
  for (auto& [host, w] : workers) w->KillGroup();
}

}  // namespace
}  // namespace pincer::test
