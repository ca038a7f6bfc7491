// The three runnable examples of docs/patterns.md (config/examples/patterns)
// run as a user runs them: a real pincerd on the example's own config,
// started from the top of the source tree, starting its pools of the
// example agents (Python, and pincer-worker around `wc`); tasks go in
// through the client API and come out with the agents' answers.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/daemon_process.h"
#include "support/scenario.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

constexpr std::chrono::milliseconds kStart = seconds(60);  // pools' processes connect
constexpr std::chrono::milliseconds kEnd = seconds(60);    // bounds a wait for an end

// The example's config as written, less its data_dir (each test gets its
// own; DaemonProcess adds it and a free port).
std::string ExampleConfig(const std::string& name) {
  std::ifstream in(std::string(PINCER_SOURCE_DIR) + "/config/examples/patterns/" + name);
  EXPECT_TRUE(in) << name;
  std::string text, line;
  while (std::getline(in, line)) {
    if (line.rfind("data_dir:", 0) != 0) text += line + "\n";
  }
  return text;
}

class ExamplesTest : public ::testing::Test {
 protected:
  // The pools' commands are relative to the top of the source tree, and
  // pincer-worker is found in PATH, as the examples say to run them.
  static void SetUpTestSuite() { ASSERT_EQ(chdir(PINCER_SOURCE_DIR), 0); }

  void Start(const std::string& name, size_t workers) {
    DaemonOptions o;
    o.config_yaml = ExampleConfig(name);
    o.env["PATH"] = std::string(PINCER_BUILD_DIR) + ":" + std::getenv("PATH");
    daemon_ = std::make_unique<DaemonProcess>(o);
    ASSERT_TRUE(daemon_->Start());
    client_ = ConnectClient(daemon_->address());
    ASSERT_NE(client_, nullptr);
    ASSERT_TRUE(WaitFor([&] { return Workers(*client_).size() == workers; }, kStart))
        << Workers(*client_).dump();
  }
  json Run(const json& submit) {
    const std::string id = SubmitTask(*client_, submit);
    EXPECT_NE(id, "");
    return WaitEnd(*client_, id, kEnd);
  }

  std::unique_ptr<DaemonProcess> daemon_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(ExamplesTest, TheDispatcherSendsEachTaskToTheAgentWithItsSkill) {
  Start("dispatcher.yaml", 4);
  json end = Run({{"skills", {"summarize"}}, {"payload", "Agents route work. Then rest."}});
  EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
  EXPECT_EQ(end["output"], json({{"summary", "Agents route work."}, {"by", "summarizer-0"}}));

  end = Run({{"skills", {"translate"}}, {"payload", "the cat eats"}});
  EXPECT_EQ(end["output"], json({{"fr", "le chat mange"}, {"by", "translator-0"}})) << end.dump();

  end = Run({{"skills", {"count"}}, {"payload", "four words right here"}});
  EXPECT_EQ(end["output"], 4) << end.dump();
}

TEST_F(ExamplesTest, TheDispatchersClassifyAgentRoutesATaskThatNamesNoSkill) {
  Start("dispatcher.yaml", 4);
  json end = Run({{"payload", "the dog sleeps"}});
  EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
  EXPECT_EQ(end["output"], json({{"fr", "le chien dort"}, {"by", "translator-0"}})) << end.dump();
  const json status = TaskStatus(*client_, end.value("id", ""));
  EXPECT_EQ(status["triage"].value("state", ""), "decided") << status.dump();
  EXPECT_EQ(status["triage"]["skills"], json({"translate"})) << status.dump();

  end = Run({{"payload", "Count the words here. Please."}});
  EXPECT_EQ(end["output"], 5) << end.dump();
}

TEST_F(ExamplesTest, TheWorkQueueLosesNoTaskWhenItsAgentsAreKilled) {
  Start("work-queue.yaml", 4);
  const std::vector<std::string> topics = {"rust", "go", "zig", "odin", "nim", "gleam"};
  std::vector<std::string> ids;
  for (const std::string& t : topics) {
    ids.push_back(SubmitTask(
        *client_, {{"skills", {"research"}}, {"payload", {{"text", t}, {"seconds", 2}}}}));
  }
  // Four agents, one task each: four run at once.
  ASSERT_TRUE(WaitFor([&] { return Stats(*client_).value("running", 0) == 4; }, kStart));
  std::set<int> killed;
  for (const json& w : Workers(*client_)) {
    const int pid = w.value("pid", 0);
    ASSERT_GT(pid, 0) << w.dump();
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    killed.insert(pid);
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    json end = WaitEnd(*client_, ids[i], kEnd);
    EXPECT_EQ(end.value("state", ""), "succeeded") << end.dump();
    EXPECT_EQ(end["output"].value("topic", ""), topics[i]) << end.dump();
  }
  // pincerd started the pool's four agents again.
  ASSERT_TRUE(WaitFor([&] { return Workers(*client_).size() == 4; }, kStart));
  for (const json& w : Workers(*client_)) EXPECT_EQ(killed.count(w.value("pid", 0)), 0u);
}

TEST_F(ExamplesTest, TheSwarmsPlannerContractsASubtaskPerSectionAndJoinsThem) {
  Start("swarm.yaml", 4);
  json end = Run({{"skills", {"plan"}},
                  {"payload", {{"text", "a report"}, {"sections", {"intro", "design", "costs"}}}}});
  ASSERT_EQ(end.value("state", ""), "succeeded") << end.dump();
  const json& report = end["output"]["report"];
  ASSERT_EQ(report.size(), 3u) << end.dump();
  EXPECT_EQ(report[0].get<std::string>().rfind("intro of a report (by writers-", 0), 0u);
  EXPECT_EQ(report[2].get<std::string>().rfind("costs of a report (by writers-", 0), 0u);

  const json parent = TaskStatus(*client_, end.value("id", ""));
  EXPECT_EQ(parent["children"], end["output"]["children"]) << parent.dump();
  for (const json& child : parent["children"]) {
    const json c = TaskStatus(*client_, child.get<std::string>());
    EXPECT_EQ(c.value("parent", ""), end.value("id", "")) << c.dump();
    EXPECT_EQ(c["skills"], json({"write"})) << c.dump();
  }
}

}  // namespace
}  // namespace pincer::test
