// Hostile config files against a real pincerd: a reload (`pincerctl reload`
// or SIGHUP) of a file with a 40,000-digit value, a YAML alias bomb, JSON or
// YAML nested 100,000 deep, /dev/zero or a file past 4 MiB is refused with
// a message naming the problem, and pincerd serves on with the config it
// had. `pincerd --check-config` refuses the same files with exit code 1.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/test_worker.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

void WriteText(const std::string& path, const std::string& text) {
  std::filesystem::remove(path);  // it may be a symlink
  std::ofstream(path) << text;
}

std::string AliasBomb() {
  // 9 levels of 10 aliases: 10^9 values once expanded.
  std::string bomb = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i)
      bomb += std::string(i ? ", " : "") + "*" + static_cast<char>(c - 1);
    bomb += "]\n";
  }
  return bomb;
}

struct Hostile {
  std::string name;
  std::string text;  // the file's content; empty: a symlink to /dev/zero
  std::string says;  // in the refusal
};

std::vector<Hostile> HostileYamlFiles() {
  const int deep = 100000;
  return {
      {"40,000 digits", "log_level: " + std::string(40000, '1') + "\n",
       "log_level: integer 11111111111111111111111111111111... (40000 bytes) is out of range"},
      {"alias bomb", AliasBomb(), "holds more than 100000 values"},
      {"deep flow", "a: " + std::string(deep, '[') + std::string(deep, ']') + "\n",
       "nested deeper than 64 levels"},
      {"deep JSON as YAML", std::string(deep, '[') + std::string(deep, ']') + "\n",
       "nested deeper than 64 levels"},
      {"past 4 MiB", "#" + std::string(5 << 20, 'x') + "\n", "is larger than 4 MiB"},
      {"/dev/zero", "", "is not a regular file"},
      {"huge replicas", "pools: [{name: a, command: [x], replicas: 4294967296}]\n",
       "pools[0].replicas: value is too large"},
      {"overflowing duration", "tasks: { timeout: 9999999999999h }\n",
       "tasks.timeout: bad duration"},
      {"long duration", "tasks: { timeout: 87601h }\n", "tasks.timeout: must be at most 87600h"},
  };
}

class HostileConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<DaemonProcess>("store: { kind: memory }\n");
    ASSERT_TRUE(daemon_->Start());
    good_config_ = ReadFileOrEmpty(daemon_->config_path());
    TestWorkerOptions o;
    o.name = "echo";
    o.skills = {"echo"};
    auto w = TestWorker::Connect(daemon_->address(), o);
    ASSERT_TRUE(w.ok()) << w.error().ToString();
    echo_ = std::move(w).value();
    echo_->StartAuto();
  }

  void Put(const Hostile& h) {
    const std::string path = daemon_->config_path();
    if (h.text.empty()) {
      std::filesystem::remove(path);
      std::filesystem::create_symlink("/dev/zero", path);
    } else {
      WriteText(path, h.text);
    }
  }

  // pincerd still answers, and runs a task end to end.
  void ExpectServing() {
    ASSERT_TRUE(daemon_->running());
    CtlResult end = RunCtl(daemon_->address(), {"--json", "submit", "--skill", "echo", "--wait"});
    EXPECT_EQ(end.exit_code, 0) << end;
    EXPECT_EQ(end.Json().value("state", ""), "succeeded") << end;
  }

  std::size_t Refusals() {
    const std::string log = daemon_->ReadStderr();
    std::size_t n = 0;
    for (auto at = log.find("reload refused"); at != std::string::npos;
         at = log.find("reload refused", at + 1)) {
      ++n;
    }
    return n;
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<TestWorker> echo_;
  std::string good_config_;
};

TEST_F(HostileConfigTest, CtlReloadIsRefusedAndPincerdServesOn) {
  for (const Hostile& h : HostileYamlFiles()) {
    SCOPED_TRACE(h.name);
    Put(h);
    CtlResult reload = RunCtl(daemon_->address(), {"reload"});
    EXPECT_EQ(reload.exit_code, 1) << reload;
    EXPECT_NE(reload.err.find("reload_failed"), std::string::npos) << reload;
    EXPECT_NE(reload.err.find(h.says), std::string::npos) << reload;
    EXPECT_LT(reload.err.size(), 4000u) << "a short message";
    ExpectServing();
  }
  // A good file afterwards is taken as ever.
  WriteText(daemon_->config_path(), good_config_ + "routing: { strategy: round_robin }\n");
  CtlResult reload = RunCtl(daemon_->address(), {"reload"});
  EXPECT_EQ(reload.exit_code, 0) << reload;
  ExpectServing();
}

TEST_F(HostileConfigTest, SighupReloadIsRefusedAndPincerdServesOn) {
  std::size_t refusals = Refusals();
  for (const Hostile& h : HostileYamlFiles()) {
    SCOPED_TRACE(h.name);
    Put(h);
    daemon_->Signal(SIGHUP);
    ++refusals;
    EXPECT_TRUE(WaitFor([&] { return Refusals() >= refusals || !daemon_->running(); }))
        << daemon_->ReadStderr().substr(0, 4000);
    EXPECT_NE(daemon_->ReadStderr().find(h.says), std::string::npos);
    ExpectServing();
  }
}

TEST_F(HostileConfigTest, ReloadsAskedForWhileOneLoadsAreAllAnswered) {
  Put(HostileYamlFiles()[1]);  // the alias bomb
  for (int i = 0; i < 5; ++i) daemon_->Signal(SIGHUP);
  CtlResult reload = RunCtl(daemon_->address(), {"reload"});
  EXPECT_EQ(reload.exit_code, 1) << reload;
  EXPECT_NE(reload.err.find("holds more than 100000 values"), std::string::npos) << reload;
  ExpectServing();
}

// A JSON config: pincerd is started on a .json file of its own.
TEST(HostileJsonConfigTest, DeepAndHugeJsonReloadsAreRefused) {
  TempDir dir("pincerd-json");
  const std::string config = dir.Join("pincer.json");
  const std::string address_file = dir.Join("addr");
  WriteText(config, R"({"listen": "127.0.0.1:0", "store": {"kind": "memory"}})");
  ChildProcess pincerd;
  ASSERT_EQ(pincerd.Start({std::string(PINCER_BUILD_DIR) + "/pincerd", "--config", config,
                           "--address-file", address_file},
                          dir.Join("out"), dir.Join("err"), {}),
            "");
  std::string address;
  ASSERT_TRUE(WaitFor([&] {
    address = ReadFileOrEmpty(address_file);
    return address.find('\n') != std::string::npos || !pincerd.running();
  }));
  ASSERT_TRUE(pincerd.running()) << ReadFileOrEmpty(dir.Join("err"));
  address.pop_back();

  const int deep = 100000;
  std::string many = R"({"a": [1)";
  for (int i = 0; i < 200000; ++i) many += ",1";
  many += "]}";
  const std::vector<Hostile> cases = {
      {"deep JSON", R"({"a": )" + std::string(deep, '[') + std::string(deep, ']') + "}",
       "nested deeper than 64 levels"},
      {"40,000 digits", R"({"log_level": )" + std::string(40000, '1') + "}", "number overflow"},
      {"many values", many, "holds more than 100000 values"},
  };
  for (const Hostile& h : cases) {
    SCOPED_TRACE(h.name);
    WriteText(config, h.text);
    CtlResult reload = RunCtl(address, {"reload"});
    EXPECT_EQ(reload.exit_code, 1) << reload;
    EXPECT_NE(reload.err.find(h.says), std::string::npos) << reload;
    EXPECT_LT(reload.err.size(), 4000u);
    ASSERT_TRUE(pincerd.running());
    EXPECT_EQ(RunCtl(address, {"stats"}).exit_code, 0);
  }
  pincerd.Signal(SIGTERM);
  EXPECT_EQ(pincerd.Wait(seconds(10)), 0);
}

TEST(CheckConfigTest, HostileFilesExitOneWithTheProblem) {
  TempDir dir("check");
  std::vector<Hostile> cases = HostileYamlFiles();
  for (const Hostile& h : cases) {
    SCOPED_TRACE(h.name);
    const std::string path = dir.Join("c.yaml");
    std::filesystem::remove(path);
    if (h.text.empty()) {
      std::filesystem::create_symlink("/dev/zero", path);
    } else {
      WriteText(path, h.text);
    }
    ProcessResult r =
        RunProcess({std::string(PINCER_BUILD_DIR) + "/pincerd", "--check-config", path});
    EXPECT_EQ(r.exit_code, 1) << "not a crash: " << r.err.substr(0, 2000);
    EXPECT_NE(r.err.find(h.says), std::string::npos) << r.err.substr(0, 2000);
  }
  const std::string json = dir.Join("c.json");
  WriteText(json, R"({"a": )" + std::string(100000, '[') + std::string(100000, ']') + "}");
  ProcessResult r =
      RunProcess({std::string(PINCER_BUILD_DIR) + "/pincerd", "--check-config", json});
  EXPECT_EQ(r.exit_code, 1) << r.err.substr(0, 2000);
  EXPECT_NE(r.err.find("nested deeper than 64 levels"), std::string::npos) << r.err.substr(0, 2000);
}

}  // namespace
}  // namespace pincer::test
