// workers/python against a real pincerd: the example worker answers tasks,
// fails bad payloads without retry, drains, survives a daemon restart and
// runs as a pincerd pool (PINCER_SPAWN_ID), and a plan contracts children
// through pincerd (example_plan.py). The library's own logic is
// tested against a fake daemon in workers/python/test_pincer_worker.py.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "support/ctl_runner.h"
#include "support/daemon_process.h"
#include "support/subprocess.h"
#include "support/temp_dir.h"
#include "support/wait_for.h"
#include "support/worker_fixture.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::seconds;

const std::string kExample = std::string(PINCER_SOURCE_DIR) + "/workers/python/example_upper.py";
const std::string kPlanExample = std::string(PINCER_SOURCE_DIR) + "/workers/python/example_plan.py";

class PythonWorkerTest : public WorkerFixture {
 protected:
  void StartExample(const std::string& name, int capacity = 1) {
    python_ = std::make_unique<ChildProcess>();
    ASSERT_EQ(python_->Start({"/usr/bin/env", "python3", kExample}, daemon_->dir() + "/python.out",
                             daemon_->dir() + "/python.err",
                             {{"PINCER_ADDR", daemon_->address()},
                              {"PINCER_TOKEN", std::nullopt},
                              {"PINCER_SPAWN_ID", std::nullopt},
                              {"WORKER_NAME", name},
                              {"CAPACITY", std::to_string(capacity)}}),
              "");
  }

  void TearDown() override {
    if (HasFailure() && daemon_) {
      std::cerr << "--- python worker stderr:\n" << ReadFileOrEmpty(daemon_->dir() + "/python.err");
    }
    python_.reset();
    WorkerFixture::TearDown();
  }

  std::unique_ptr<ChildProcess> python_;
};

TEST_F(PythonWorkerTest, ExampleUpperCasesAndRefusesBadPayloads) {
  StartDaemon();
  StartExample("upper-py", 2);
  ASSERT_TRUE(WaitFor([&] { return FindWorker("upper-py").has_value(); }));
  const json w = *FindWorker("upper-py");
  EXPECT_EQ(w["skills"], json::array({"upper"}));
  EXPECT_EQ(w["capacity"], 2);

  json end = SubmitWait({"--skill", "upper", "--payload", R"("hello")"});
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["output"], "HELLO");

  end = SubmitWait({"--skill", "upper", "--payload", R"({"text":"abc","n":1})"});
  EXPECT_EQ(end["output"], json::parse(R"({"text":"ABC","n":1})")) << end;

  // TaskError(retryable=False): one attempt, whatever max_attempts says.
  end = SubmitWait({"--skill", "upper", "--max-attempts", "3", "--payload", "5"});
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["attempts"], 1) << end;

  // Heartbeats carry the process's memory.
  EXPECT_TRUE(WaitFor([&] {
    auto now = FindWorker("upper-py");
    return now && (*now)["load"].value("rss_bytes", 0) > 0;
  }));
}

// The daemon's limits.max_json_depth reaches the worker in welcome: an
// output nested past it fails the task without retry instead of a result
// the daemon would refuse (which would leave the task running).
TEST_F(PythonWorkerTest, OutputNestedPastTheDaemonsLimitFailsTheTask) {
  StartDaemon("limits: { max_json_depth: 10 }\n");
  const std::string script = daemon_->dir() + "/nest.py";
  {
    std::ofstream out(script);
    out << "import os, sys\n"
        << "sys.path.insert(0, " << json(std::string(PINCER_SOURCE_DIR) + "/workers/python").dump()
        << ")\n"
        << "from pincer_worker import run_worker\n"
        << "def nest(task):\n"
        << "    out = []\n"
        << "    for _ in range(task.payload - 1):\n"
        << "        out = [out]\n"
        << "    return out\n"
        << "run_worker(nest, skills=['nest'], name='nest-py')\n";
  }
  python_ = std::make_unique<ChildProcess>();
  ASSERT_EQ(python_->Start({"/usr/bin/env", "python3", script}, daemon_->dir() + "/python.out",
                           daemon_->dir() + "/python.err",
                           {{"PINCER_ADDR", daemon_->address()},
                            {"PINCER_TOKEN", std::nullopt},
                            {"PINCER_SPAWN_ID", std::nullopt}}),
            "");
  ASSERT_TRUE(WaitFor([&] { return FindWorker("nest-py").has_value(); }));
  // The result object is level 1: 9 levels of output fit in 10.
  json end = SubmitWait({"--skill", "nest", "--payload", "9"});
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["output"].dump(), std::string(9, '[') + std::string(9, ']'));
  end = SubmitWait({"--skill", "nest", "--max-attempts", "3", "--payload", "10"});
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["attempts"], 1) << end;
  EXPECT_NE(end["error"].get<std::string>().find("output too deep"), std::string::npos) << end;
  // Past Python's own recursion limit, too; and the worker serves on.
  end = SubmitWait({"--skill", "nest", "--max-attempts", "3", "--payload", "100000"});
  EXPECT_EQ(end["state"], "failed") << end;
  EXPECT_EQ(end["attempts"], 1) << end;
  EXPECT_EQ(SubmitWait({"--skill", "nest", "--payload", "1"})["output"], json::array());
}

// A `plan` handler contracts 4 children to `leaf` workers on its own
// connection (task.submit, task.wait): the parent succeeds with their
// outputs, and status links them both ways.
TEST_F(PythonWorkerTest, APlanWorkerSubmitsChildrenAndWaitsForThem) {
  StartDaemon();
  const EnvChanges env = {{"PINCER_ADDR", daemon_->address()},
                          {"PINCER_TOKEN", std::nullopt},
                          {"PINCER_SPAWN_ID", std::nullopt}};
  StartWorkerProcess({"/usr/bin/env", "python3", kPlanExample, "leaf"}, env);
  StartWorkerProcess({"/usr/bin/env", "python3", kPlanExample, "plan"}, env);
  ASSERT_TRUE(WaitForWorker("leaf-py"));
  ASSERT_TRUE(WaitForWorker("plan-py"));

  const json end = SubmitWait({"--skill", "plan", "--payload", json("a\nb\nc\nd").dump()});
  EXPECT_EQ(end["state"], "succeeded") << end;
  EXPECT_EQ(end["output"], json::array({"A", "B", "C", "D"})) << end;

  const json parent = Status(end.value("id", ""));
  ASSERT_TRUE(parent["children"].is_array()) << parent;
  ASSERT_EQ(parent["children"].size(), 4u) << parent;
  for (const json& child_id : parent["children"]) {
    const json child = Status(child_id.get<std::string>());
    EXPECT_EQ(child["parent"], end["id"]) << child;
    EXPECT_EQ(child["state"], "succeeded") << child;
  }
}

// A parent cancelled while its handler waits on its children: the
// children end cancelled (their worker gets `cancel`), the handler's wait
// ends, and the one-slot worker serves the next task.
TEST_F(PythonWorkerTest, ACancelledParentTakesItsChildren) {
  StartDaemon();
  const std::string script = daemon_->dir() + "/fanout.py";
  {
    std::ofstream out(script);
    out << "import sys\n"
        << "sys.path.insert(0, " << json(std::string(PINCER_SOURCE_DIR) + "/workers/python").dump()
        << ")\n"
        << "from pincer_worker import run_worker\n"
        << "role = sys.argv[1]\n"
        << "def handle(task):\n"
        << "    if role == 'hang':\n"
        << "        task.cancelled.wait()\n"
        << "        return 'cancelled'\n"
        << "    if task.payload == 'quick':\n"
        << "        return 'quick'\n"
        << "    children = [task.submit(i, skills=['hang']) for i in range(3)]\n"
        << "    return task.wait(children[0])\n"
        << "run_worker(handle, skills=[role], capacity=3 if role == 'hang' else 1,\n"
        << "           name=role + '-py')\n";
  }
  const EnvChanges env = {{"PINCER_ADDR", daemon_->address()},
                          {"PINCER_TOKEN", std::nullopt},
                          {"PINCER_SPAWN_ID", std::nullopt}};
  StartWorkerProcess({"/usr/bin/env", "python3", script, "hang"}, env);
  StartWorkerProcess({"/usr/bin/env", "python3", script, "fanout"}, env);
  ASSERT_TRUE(WaitForWorker("hang-py"));
  ASSERT_TRUE(WaitForWorker("fanout-py"));

  const std::string parent = Submit({"--skill", "fanout", "--payload", R"("go")"});
  json children;
  ASSERT_TRUE(WaitFor([&] {
    children = Status(parent)["children"];
    if (!children.is_array() || children.size() != 3) return false;
    for (const json& id : children) {
      if (Status(id.get<std::string>())["state"] != "running") return false;
    }
    return true;
  }));
  const CtlResult cancel = Ctl({"cancel", parent});
  EXPECT_EQ(cancel.exit_code, 0) << cancel;
  for (const json& id : children) {
    ASSERT_TRUE(WaitFor([&] { return Status(id.get<std::string>())["state"] == "cancelled"; }));
  }
  // One slot: served only once the cancelled handler has returned.
  const json end = SubmitWait({"--skill", "fanout", "--payload", R"("quick")"});
  EXPECT_EQ(end["output"], "quick") << end;
  EXPECT_EQ(Status(parent)["state"], "cancelled");
}

TEST_F(PythonWorkerTest, DrainMakesItExitZero) {
  StartDaemon();
  StartExample("drain-py");
  ASSERT_TRUE(WaitFor([&] { return FindWorker("drain-py").has_value(); }));
  const std::string id = FindWorker("drain-py")->value("id", "");
  CtlResult drain = Ctl({"drain", id});
  EXPECT_EQ(drain.exit_code, 0) << drain;
  EXPECT_EQ(python_->Wait(seconds(10)), std::optional<int>(0));
}

TEST_F(PythonWorkerTest, SigtermMakesItExitZero) {
  StartDaemon();
  StartExample("term-py");
  ASSERT_TRUE(WaitFor([&] { return FindWorker("term-py").has_value(); }));
  python_->Signal(SIGTERM);
  EXPECT_EQ(python_->Wait(seconds(10)), std::optional<int>(0));
}

TEST_F(PythonWorkerTest, ReconnectsAfterTheDaemonRestarts) {
  StartDaemon();
  StartExample("phoenix-py");
  ASSERT_TRUE(WaitFor([&] { return FindWorker("phoenix-py").has_value(); }));
  daemon_->Kill9();
  ASSERT_TRUE(daemon_->Restart());
  ASSERT_TRUE(WaitFor([&] { return FindWorker("phoenix-py").has_value(); }));
  EXPECT_TRUE(python_->running());
  const json end = SubmitWait({"--skill", "upper", "--payload", R"("again")"});
  EXPECT_EQ(end["output"], "AGAIN") << end;
}

TEST_F(PythonWorkerTest, RunsAsAPincerdPool) {
  // pincerd starts it with PINCER_ADDR, PINCER_TOKEN and PINCER_SPAWN_ID;
  // the spawn id in its hello ties the connection to the pool.
  StartDaemon(
      "pools:\n"
      "  - name: upper\n"
      "    command: [\"/usr/bin/env\", \"python3\", \"" +
      kExample +
      "\"]\n"
      "    replicas: 1\n");
  ASSERT_TRUE(WaitFor(
      [&] {
        auto w = FindWorker("upper-py");
        return w && (*w)["pool"] == "upper" && (*w)["state"] == "ready";
      },
      seconds(20)));
  const json end = SubmitWait({"--skill", "upper", "--payload", R"("pooled")"});
  EXPECT_EQ(end["output"], "POOLED") << end;
}

}  // namespace
}  // namespace pincer::test
