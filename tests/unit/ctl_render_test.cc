#include <gtest/gtest.h>

#include "ctl/render.h"

namespace pincer::ctl {
namespace {

constexpr std::int64_t kNow = 1764000060000;  // 60s after created_ms below

nlohmann::json QueuedTask() {
  return nlohmann::json::parse(R"({"id":"t18","state":"queued","skills":["gpu"],"payload":"x",
      "priority":0,"session":null,"key":null,"attempts":0,"max_attempts":3,"timeout_ms":30000,
      "worker":null,"output":null,"error":null,"errors":[],"progress":null,
      "why":"no worker has skill gpu","created_ms":1764000000000,"started_ms":null,
      "ended_ms":null})");
}

TEST(RenderTest, KeyValuesAlignValues) {
  EXPECT_EQ(RenderKeyValues({{"id", "t1"}, {"state", "queued"}}),
            "id:    t1\n"
            "state: queued\n");
}

TEST(RenderTest, MultiLineValuesGoBelowTheirKey) {
  EXPECT_EQ(RenderKeyValues({{"id", "t1"}, {"output", "line one\n\nline three\n"}}),
            "id:     t1\n"
            "output:\n"
            "  line one\n"
            "  \n"
            "  line three\n");
}

TEST(RenderTest, TaskStatus) {
  EXPECT_EQ(RenderTask(QueuedTask(), kNow),
            "id:       t18\n"
            "state:    queued\n"
            "why:      no worker has skill gpu\n"
            "skills:   gpu\n"
            "priority: 0\n"
            "session:  -\n"
            "key:      -\n"
            "attempts: 0/3\n"
            "worker:   -\n"
            "timeout:  30s\n"
            "created:  2025-11-24T16:00:00Z (1m ago)\n"
            "started:  -\n"
            "ended:    -\n"
            "payload:  x\n"
            "output:   -\n"
            "error:    -\n");
}

TEST(RenderTest, TaskStatusShowsItsTriage) {
  nlohmann::json t = QueuedTask();
  t["triage"] = {{"skill", "classify"}, {"task", "t19"},     {"worker", "w2"},
                 {"state", "decided"},  {"skills", {"gpu"}}, {"error", nullptr}};
  EXPECT_NE(RenderTask(t, kNow).find("triage:   decided gpu, by step t19 (classify on w2)\n"),
            std::string::npos)
      << RenderTask(t, kNow);
  t["triage"]["state"] = "fallback";
  t["triage"]["skills"] = nullptr;
  t["triage"]["error"] = "triage step t19 ended failed: boom";
  EXPECT_NE(RenderTask(t, kNow).find(
                "triage:   fallback, by its own skills: triage step t19 ended failed: boom\n"),
            std::string::npos)
      << RenderTask(t, kNow);
  t["triage"] = {{"skill", "classify"}, {"task", "t19"},     {"worker", nullptr},
                 {"state", "pending"},  {"skills", nullptr}, {"error", nullptr}};
  EXPECT_NE(RenderTask(t, kNow).find("triage:   pending, step t19 (classify)\n"), std::string::npos)
      << RenderTask(t, kNow);
  EXPECT_EQ(RenderTask(QueuedTask(), kNow).find("triage"), std::string::npos);
}

TEST(RenderTest, TaskStatusNamesItsParentAndChildren) {
  nlohmann::json t = QueuedTask();
  t["parent"] = "t4";
  t["children"] = {"t19", "t20"};
  const std::string text = RenderTask(t, kNow);
  EXPECT_NE(text.find("worker:   -\nparent:   t4\nchildren: t19,t20\n"), std::string::npos) << text;
  t["parent"] = nullptr;
  t["children"] = nlohmann::json::array();
  EXPECT_EQ(RenderTask(t, kNow), RenderTask(QueuedTask(), kNow));
}

TEST(RenderTest, EndStateListsEveryAttemptErrorOnce) {
  const auto end = nlohmann::json::parse(R"({"type":"end","req":2,"id":"t18","state":"failed",
      "output":null,"error":"boom","attempts":2,"worker":"w2","errors":[
      {"attempt":1,"worker":"w1","error":"worker w1 disconnected"},
      {"attempt":2,"worker":"w2","error":"boom"}]})");
  EXPECT_EQ(RenderEnd(end),
            "id:       t18\n"
            "state:    failed\n"
            "attempts: 2\n"
            "worker:   w2\n"
            "output:   -\n"
            "errors:\n"
            "  attempt 1 on w1: worker w1 disconnected\n"
            "  attempt 2 on w2: boom\n");
}

TEST(RenderTest, AttemptErrorsIndentTheirLinesAndSeparateRetries) {
  const auto end = nlohmann::json::parse(R"({"id":"t3","state":"cancelled","output":null,
      "error":"cancelled","attempts":1,"worker":null,"errors":[
      {"attempt":1,"worker":"w1","error":"Traceback:\n  line 3\nValueError\n"},
      {"attempt":1,"worker":null,"error":"no worker could take it within its timeout"},
      {"attempt":1,"worker":"w2","error":"worker w2 disconnected"},
      {"attempt":2,"worker":"w2","error":"boom"},
      {"attempt":1,"worker":"w3","error":"bang"}]})");
  EXPECT_EQ(RenderEnd(end),
            "id:       t3\n"
            "state:    cancelled\n"
            "attempts: 1\n"
            "worker:   -\n"
            "output:   -\n"
            "error:    cancelled\n"
            "errors:\n"
            "  attempt 1 on w1: Traceback:\n"
            "        line 3\n"
            "      ValueError\n"
            "  attempt 1: no worker could take it within its timeout\n"
            "  -- retried --\n"
            "  attempt 1 on w2: worker w2 disconnected\n"
            "  attempt 2 on w2: boom\n"
            "  -- retried --\n"
            "  attempt 1 on w3: bang\n");
}

TEST(RenderTest, SucceededEndShowsStructuredOutputAsJson) {
  const auto end = nlohmann::json::parse(R"({"id":"t1","state":"succeeded",
      "output":{"text":"hi"},"error":null,"attempts":1,"worker":"w3","errors":[]})");
  EXPECT_EQ(RenderEnd(end),
            "id:       t1\n"
            "state:    succeeded\n"
            "attempts: 1\n"
            "worker:   w3\n"
            "output:   {\"text\":\"hi\"}\n");
}

TEST(RenderTest, TaskTable) {
  nlohmann::json running = QueuedTask();
  running["id"] = "t19";
  running["state"] = "running";
  running["worker"] = "w2";
  running["attempts"] = 1;
  running["skills"] = nlohmann::json::array();
  EXPECT_EQ(RenderTaskTable({QueuedTask(), running}, kNow),
            "ID   STATE    PRIORITY  ATTEMPTS  WORKER  SKILLS  AGE\n"
            "t18  queued   0         0/3       -       gpu     1m\n"
            "t19  running  0         1/3       w2      -       1m\n");
}

TEST(RenderTest, WorkerTable) {
  const auto workers = nlohmann::json::parse(R"([
      {"id":"w1","name":"echo-1","skills":["echo","text"],"capacity":2,"inflight":1,
       "state":"ready","completed":17,"failed":0,"pool":null,"labels":{"team":"nlp","gpu":"no"},
       "load":{"cpu":0.1,"rss_bytes":1048576}},
      {"id":"w2","name":"gpus/0@h","skills":["gpu"],"capacity":1,"inflight":0,"state":"draining",
       "completed":3,"failed":1,"pool":"gpus","replica":0,"pid":4242,"uptime_ms":125000,
       "labels":{},"load":{"cpu":2.5}}])");
  EXPECT_EQ(
      RenderWorkerTable(workers),
      "ID  NAME      STATE     INFLIGHT/CAP  SKILLS     COMPLETED  FAILED  POOL  REPLICA  PID   "
      "UPTIME  CPU   RSS    LABELS\n"
      "w1  echo-1    ready     1/2           echo,text  17         0       -     -        -     "
      "-       10%   1.0Mi  gpu=no,team=nlp\n"
      "w2  gpus/0@h  draining  0/1           gpu        3          1       gpus  0        4242  "
      "2m      250%  -      -\n");
}

TEST(RenderTest, PoolTableFallsBackToReplicas) {
  const auto pools = nlohmann::json::parse(R"([
      {"name":"echo","state":"running","desired":2,"running":2,"ready":2,"restarts":0},
      {"name":"gpu","state":"failed","replicas":1,"running":0,"restarts":6}])");
  EXPECT_EQ(RenderPoolTable(pools),
            "NAME  STATE    WANTED  RUNNING  READY  RESTARTS\n"
            "echo  running  2       2        2      0\n"
            "gpu   failed   1       0        -      6\n");
}

TEST(RenderTest, PoolTableSaysWhyAPoolIsShort) {
  const auto pools = nlohmann::json::parse(R"([
      {"name":"bad","state":"failed","desired":1,"running":0,"ready":0,"restarts":3,
       "why":"failed: last: bad/0: pid 7 exited with exit code 2",
       "stderr_tail":["no such file","giving up"]}])");
  EXPECT_EQ(RenderPoolTable(pools),
            "NAME  STATE   WANTED  RUNNING  READY  RESTARTS\n"
            "bad   failed  1       0        0      3\n"
            "\n"
            "bad: failed: last: bad/0: pid 7 exited with exit code 2\n"
            "  last stderr:\n"
            "    no such file\n"
            "    giving up\n");
}

TEST(RenderTest, PoolTableCountsSidecarsWhenAPoolHasThem) {
  const auto pools = nlohmann::json::parse(R"([
      {"name":"claw","state":"running","desired":2,"running":2,"ready":2,"restarts":1,
       "sidecar":["openclaw-replica","gateway"],"sidecar_pids":[41,43]},
      {"name":"echo","state":"running","desired":1,"running":1,"ready":1,"restarts":0}])");
  EXPECT_EQ(RenderPoolTable(pools),
            "NAME  STATE    WANTED  RUNNING  READY  RESTARTS  SIDECARS\n"
            "claw  running  2       2        2      1         2\n"
            "echo  running  1       1        1      0         -\n");
}

TEST(RenderTest, StatsPutContractCountersFirst) {
  const auto stats = nlohmann::json::parse(
      R"({"zeta":1,"workers":4,"queued":3,"unroutable":1,"running":2,"succeeded":9,"failed":0})");
  EXPECT_EQ(RenderStats(stats),
            "queued:     3\n"
            "running:    2\n"
            "succeeded:  9\n"
            "failed:     0\n"
            "unroutable: 1\n"
            "workers:    4\n"
            "zeta:       1\n");
}

TEST(RenderTest, WithoutEnvelope) {
  EXPECT_EQ(WithoutEnvelope({{"type", "ok"}, {"req", 4}, {"id", "t18"}, {"state", "cancelled"}}),
            nlohmann::json({{"id", "t18"}, {"state", "cancelled"}}));
  EXPECT_EQ(WithoutEnvelope({{"type", "ok"}, {"req", 9}}), nlohmann::json::object());
}

}  // namespace
}  // namespace pincer::ctl
