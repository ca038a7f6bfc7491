// A real pincerd for integration tests: its own temp dir with the config,
// data dir, address file and logs; started on port 0 and found through
// --address-file; killed, terminated and restarted on the same data.
//
//   DaemonProcess daemon("routing: { strategy: round_robin }\n");
//   ASSERT_TRUE(daemon.Start());
//   RunCtl(daemon.address(), {"stats", "--json"});
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/subprocess.h"
#include "support/temp_dir.h"

namespace pincer::test {

struct DaemonOptions {
  // YAML config body. `listen: 127.0.0.1:0` and `data_dir: <dir>/data` are
  // added unless it sets them itself. "{dir}" anywhere in it is replaced by
  // the temp dir (for unix_socket paths, token files, ...).
  std::string config_yaml;
  std::vector<std::string> extra_args;  // more pincerd flags
  // A command pincerd is run under, e.g. {"ip", "netns", "exec", "ns1"}
  // to start it in a network namespace. It must exec pincerd in its own
  // process (as `ip netns exec` does), so signals reach pincerd.
  std::vector<std::string> prefix;
  EnvChanges env;  // PINCER_* are cleared unless set here
  // Until the address file appears. Generous: a restart recovers the whole
  // store first, which takes as long as the machine needs (a pincerd that
  // exits instead fails the start at once).
  std::chrono::milliseconds start_timeout{60000};
};

class DaemonProcess {
 public:
  explicit DaemonProcess(std::string config_yaml = "");
  explicit DaemonProcess(DaemonOptions options);
  // Kills pincerd and its process group. If the test failed, prints
  // pincerd's stderr first.
  ~DaemonProcess();
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  // Writes the config and starts pincerd; succeeds once pincerd wrote its
  // address file (polled every 10ms up to start_timeout). On failure the
  // message holds pincerd's stderr.
  ::testing::AssertionResult Start();
  // Starts again on the same data dir, after Kill9 or Terminate (or after
  // terminating it itself if it still runs). Keeps the same port when the
  // config did not choose one, so reconnecting workers find it again.
  ::testing::AssertionResult Restart();

  // "127.0.0.1:PORT" as pincerd reported it. REQUIRES: Start() succeeded.
  const std::string& address() const { return address_; }
  const std::string& dir() const { return dir_.path(); }
  std::string config_path() const;
  std::string data_dir() const;
  pid_t pid() const { return process_ ? process_->pid() : -1; }
  bool running() { return process_ && process_->running(); }

  // SIGKILL to pincerd alone (its children live on, as after a crash).
  void Kill9();
  // SIGTERM (unless Signal(SIGTERM) already sent one: a second SIGTERM
  // may mean "stop draining, die now"), then waits up to `timeout` for it
  // to exit: its exit code, or nullopt if it did not exit (it is then
  // killed).
  std::optional<int> Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Sends any signal (SIGHUP for a reload, say).
  void Signal(int signal);

  // Replaces the config body (same rules as the constructor) for the next
  // Restart() or a reload.
  void SetConfig(std::string config_yaml);
  std::string ReadStderr() const;
  // The address of the /metrics endpoint (with metrics_listen set), from
  // the line pincerd logs once it is bound (port 0 picks one); after a
  // restart, the last one logged. Empty if that line never comes.
  std::string WaitForMetricsAddress() const;

 private:
  std::string ComposeConfig() const;
  ::testing::AssertionResult Launch();

  DaemonOptions options_;
  TempDir dir_{"pincerd"};
  std::unique_ptr<ChildProcess> process_;
  std::string address_;
  std::string listen_override_;  // set after the first start: keep the port
  bool sigterm_sent_ = false;    // to this run of pincerd
};

}  // namespace pincer::test
