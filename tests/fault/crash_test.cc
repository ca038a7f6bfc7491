// Accepted means durable (SPEC section 3), checked the hard way: clients
// submit over real sockets while real workers run tasks, and pincerd is
// killed with SIGKILL at random moments (and workers with it), then
// restarted on the same data dir, or the same PostgreSQL database. At the
// end every task a client saw accepted must exist and have ended, and
// every task that ended `succeeded` must have been run by a worker.
//
// The moments are chosen by a seeded RNG; the seed is printed, and
// PINCER_FAULT_SEED=N replays a run.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "support/daemon_process.h"
#include "support/postgres_server.h"
#include "support/subprocess.h"
#include "support/wait_for.h"

namespace pincer::test {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr int kClients = 4;
constexpr int kWorkers = 4;
constexpr int kCrashes = 5;
constexpr int kPipeline = 25;  // submits in flight per client

// What the clients saw accepted: task id -> payload.
struct Accepted {
  std::mutex mu;
  std::map<std::string, std::string> tasks;
  std::atomic<size_t> count{0};
  void Add(const std::string& id, const std::string& payload) {
    std::lock_guard<std::mutex> lock(mu);
    tasks.emplace(id, payload);
    count = tasks.size();
  }
};

// Submits until `stop`, reconnecting whenever pincerd went away. Only an
// `ok` answer counts as accepted; a submit left unanswered by a crash is
// not (the client could not know, and pincer promises nothing for it).
void SubmitLoop(int index, const std::string& address, const std::atomic<bool>& stop,
                Accepted& accepted) {
  std::unique_ptr<client::Client> c;
  int n = 0;
  while (!stop) {
    if (!c || !c->is_open()) {
      client::ConnectOptions options;
      options.timeout = milliseconds(1000);
      auto r = client::Client::Connect(address, "client", "", json::object(), options);
      if (!r.ok()) {
        // pincerd is down or restarting: poll for it.
        std::this_thread::sleep_for(milliseconds(10));
        continue;
      }
      c = std::move(r.value());
    }
    std::vector<std::pair<int64_t, std::string>> sent;
    for (int i = 0; i < kPipeline; ++i) {
      const std::string payload = "p" + std::to_string(index) + "-" + std::to_string(n++) + "x";
      auto req = c->SendRequest({{"type", "submit"}, {"skills", {"echo"}}, {"payload", payload}});
      if (!req.ok()) break;
      sent.emplace_back(req.value(), payload);
    }
    for (const auto& [req, payload] : sent) {
      auto answer = c->AwaitReply(req, milliseconds(5000));
      if (answer.ok()) {
        accepted.Add(answer.value().at("id").get<std::string>(), payload);
      } else if (answer.error().kind != client::ErrorKind::kServer) {
        c.reset();  // closed or timed out: the rest of this batch is unknown
        break;
      }
    }
  }
}

class Workers {
 public:
  Workers(std::string address, std::string dir)
      : address_(std::move(address)), dir_(std::move(dir)) {}

  void Start(int n) {
    for (int i = 0; i < n; ++i) StartOne();
  }
  // SIGKILL to a worker and the task command it may be running.
  void KillOne(std::mt19937& rng) {
    auto& victim = procs_[std::uniform_int_distribution<size_t>(0, procs_.size() - 1)(rng)];
    victim->KillGroup();
    victim->Wait(milliseconds(5000));
    victim = Spawn();
  }
  const std::string& runs_path() const { return runs_; }

 private:
  void StartOne() { procs_.push_back(Spawn()); }
  std::unique_ptr<ChildProcess> Spawn() {
    const int id = next_++;
    auto p = std::make_unique<ChildProcess>();
    // Every run is logged before the output is given back: a task that
    // succeeded must appear in this log.
    const std::string script = "p=$(cat); echo \"$p\" >> " + runs_ + "; printf '%s' \"$p\"";
    const std::string err =
        p->Start({std::string(PINCER_BUILD_DIR) + "/pincer-worker", "--addr", address_, "--skill",
                  "echo", "--capacity", "4", "--name", "crash-w" + std::to_string(id), "--",
                  "/bin/sh", "-c", script},
                 dir_ + "/worker" + std::to_string(id) + ".out",
                 dir_ + "/worker" + std::to_string(id) + ".err");
    EXPECT_EQ(err, "");
    return p;
  }

  std::string address_;
  std::string dir_;
  std::string runs_ = dir_ + "/runs.log";
  int next_ = 0;
  std::vector<std::unique_ptr<ChildProcess>> procs_;
};

// All tasks pincerd knows, by id; empty when it cannot be asked.
std::map<std::string, json> ListTasks(const std::string& address) {
  std::map<std::string, json> out;
  auto c = client::Client::Connect(address, "client", "");
  if (!c.ok()) return out;
  auto r = c.value()->Request({{"type", "tasks"}, {"limit", 10'000'000}}, milliseconds(10000));
  if (!r.ok()) return out;
  for (const json& t : r.value().at("tasks")) out.emplace(t.at("id").get<std::string>(), t);
  return out;
}

uint64_t Seed() {
  if (const char* env = std::getenv("PINCER_FAULT_SEED")) return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

// The crash loop over the store `store_yaml` configures (a `store:` line).
void CrashAndCheck(const std::string& store_yaml) {
  const uint64_t seed = Seed();
  std::printf("crash test seed: %llu (replay with PINCER_FAULT_SEED=%llu)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  std::mt19937 rng(static_cast<std::mt19937::result_type>(seed));

  DaemonProcess daemon("metrics_listen: \"\"\n" + store_yaml +
                       "heartbeat: { interval: 200ms, misses: 3 }\n"
                       "tasks: { timeout: 10s, max_attempts: 50 }\n");
  ASSERT_TRUE(daemon.Start());
  const std::string address = daemon.address();

  Workers workers(address, daemon.dir());
  workers.Start(kWorkers);

  Accepted accepted;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back(SubmitLoop, i, address, std::cref(stop), std::ref(accepted));
  }

  for (int crash = 0; crash < kCrashes; ++crash) {
    // Crash after a random number of further acceptances: mid-submit, with
    // tasks queued, running and finishing.
    const size_t target = accepted.count + std::uniform_int_distribution<size_t>(50, 600)(rng);
    ASSERT_TRUE(WaitWhileProgressing([&] { return accepted.count >= target; },
                                     [&] { return accepted.count.load(); }))
        << "clients stalled at " << accepted.count << " accepted\n"
        << daemon.ReadStderr();
    daemon.Kill9();
    if (std::uniform_int_distribution<int>(0, 1)(rng)) workers.KillOne(rng);
    ASSERT_TRUE(daemon.Restart()) << "restart " << crash;
  }
  const size_t final_target = accepted.count + 300;
  ASSERT_TRUE(WaitWhileProgressing([&] { return accepted.count >= final_target; },
                                   [&] { return accepted.count.load(); }))
      << "clients stalled at " << accepted.count << " accepted\n"
      << daemon.ReadStderr();
  workers.KillOne(rng);
  stop = true;
  for (auto& t : clients) t.join();

  std::map<std::string, std::string> want;
  {
    std::lock_guard<std::mutex> lock(accepted.mu);
    want = accepted.tasks;
  }
  std::printf("%zu tasks accepted across %d crashes\n", want.size(), kCrashes);

  // Every accepted task reaches an end state. How long that takes depends
  // on the machine, so the wait lasts as long as tasks keep ending.
  std::map<std::string, json> tasks;
  size_t ended_count = 0;
  size_t most_ended = 0;  // a failed listing (0) is no progress when the next one works
  const bool ended = WaitWhileProgressing(
      [&] {
        tasks = ListTasks(address);
        ended_count = 0;
        for (const auto& [id, payload] : want) {
          auto it = tasks.find(id);
          if (it == tasks.end()) continue;
          const std::string state = it->second.at("state");
          if (state != "queued" && state != "running") ++ended_count;
        }
        most_ended = std::max(most_ended, ended_count);
        return ended_count == want.size();
      },
      [&] { return most_ended; }, kStallTimeout, milliseconds(100));

  std::set<std::string> runs;
  {
    std::ifstream in(workers.runs_path());
    for (std::string line; std::getline(in, line);) {
      line.erase(std::remove(line.begin(), line.end(), '"'), line.end());
      runs.insert(line);
    }
  }
  size_t missing = 0, unended = 0, unran = 0, wrong = 0, succeeded = 0;
  for (const auto& [id, payload] : want) {
    auto it = tasks.find(id);
    if (it == tasks.end()) {
      if (++missing <= 5)
        ADD_FAILURE() << "accepted task " << id << " (" << payload << ") is missing";
      continue;
    }
    const json& t = it->second;
    const std::string state = t.at("state");
    if (state == "queued" || state == "running") {
      if (++unended <= 5) ADD_FAILURE() << id << " did not end: " << t.dump();
    }
    if (t.at("payload") != payload) {
      if (++wrong <= 5) ADD_FAILURE() << id << " has another task's payload: " << t.dump();
    }
    if (state == "succeeded") {
      ++succeeded;
      if (!runs.count(payload) && ++unran <= 5) {
        ADD_FAILURE() << id << " succeeded but no worker ran it: " << t.dump();
      }
    }
  }
  EXPECT_TRUE(ended) << ended_count << " of " << want.size()
                     << " accepted tasks ended; no more ended in the last " << kStallTimeout.count()
                     << " ms";
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(unended, 0u);
  EXPECT_EQ(unran, 0u);
  EXPECT_EQ(wrong, 0u);
  std::printf("%zu succeeded, %zu ended otherwise\n", succeeded, want.size() - succeeded);
  if (::testing::Test::HasFailure())
    std::printf("seed was %llu\n", static_cast<unsigned long long>(seed));
}

TEST(CrashTest, AcceptedTasksSurviveKillNineAndEnd) {
  // A small journal budget, so folds run all the time.
  CrashAndCheck("store: { kind: sqlite, fsync: always, journal_bytes: 4096 }\n");
}

TEST(CrashTest, AcceptedTasksSurviveKillNineAndEndOnPostgres) {
  if (!PostgresServer::Available()) GTEST_SKIP() << PostgresServer::kMissing;
  PostgresServer server;
  ASSERT_TRUE(server.Start());
  CrashAndCheck("store: { kind: postgres, url: \"" + server.url() + "\" }\n");
}

}  // namespace
}  // namespace pincer::test
