// A scripted worker that speaks the worker protocol itself (through
// src/client), for integration tests that need exact control: take a task,
// answer it (or not), stay silent, disconnect.
//
// Two modes. Manual: the test thread calls NextTask/SendResult/... Auto:
// StartAuto() runs a thread that answers every task (by default with its
// payload as output, after an optional delay) and sends heartbeats; the
// test then only reads the counters. Do not call the manual methods while
// auto mode runs.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"

namespace pincer::test {

struct TestWorkerOptions {
  std::string name = "test-worker";
  std::vector<std::string> skills;
  int capacity = 1;
  std::string token;
  nlohmann::json labels;                // sent when not null
  std::optional<std::string> spawn_id;  // sent when set
  // Manual mode: NextTask/NextMessage send heartbeats while they wait.
  // Turn off to play a worker that went silent.
  bool auto_heartbeat = true;
};

// How auto mode answers one task.
struct TaskReply {
  bool ok = true;
  nlohmann::json output;  // when ok
  std::string error;      // when !ok
  bool retryable = true;
  bool send = true;  // false: never answer (the task stays running)
};

struct AutoOptions {
  std::chrono::milliseconds delay{0};  // between receiving a task and answering it
  // Decides each answer; null answers ok with the task's payload.
  std::function<TaskReply(const nlohmann::json& task)> handler;
};

class TestWorker {
 public:
  // Connects and says hello as a worker. A refused hello is an error with
  // the daemon's code (e.g. "unauthorized").
  static client::Result<std::unique_ptr<TestWorker>> Connect(const std::string& addr,
                                                             TestWorkerOptions options = {});
  // Stops auto mode and closes the connection.
  ~TestWorker();
  TestWorker(const TestWorker&) = delete;
  TestWorker& operator=(const TestWorker&) = delete;

  // The worker id from welcome ("w3").
  const std::string& id() const { return id_; }
  std::chrono::milliseconds heartbeat_interval() const { return heartbeat_; }

  // Manual mode. The next `task` message, or nullopt after `timeout`.
  // Other messages (cancel, drain, error) met meanwhile go to events().
  std::optional<nlohmann::json> NextTask(std::chrono::milliseconds timeout);
  // Manual mode. The next message of any type.
  std::optional<nlohmann::json> NextMessage(std::chrono::milliseconds timeout);
  // ok: {"ok":true,"output":value}; else {"ok":false,"error":value (a
  // string, or the JSON text of anything else),"retryable":retryable}.
  bool SendResult(const std::string& task_id, bool ok, const nlohmann::json& value,
                  bool retryable = true);
  bool SendProgress(const std::string& task_id, const nlohmann::json& data);
  bool SendHeartbeat(const nlohmann::json& load = nlohmann::json::object());
  bool Send(const nlohmann::json& message);  // anything, for bad-input tests
  void Close();
  bool connected() const { return connected_; }

  // Auto mode; see the file comment.
  void StartAuto(AutoOptions options = {});
  void StopAuto();

  // Counters, safe to read from any thread.
  int tasks_received() const { return tasks_received_; }
  int results_sent() const { return results_sent_; }
  int cancels_received() const { return cancels_received_; }
  bool drain_received() const { return drain_received_; }
  std::vector<std::string> task_ids() const;   // in arrival order
  std::vector<nlohmann::json> events() const;  // cancel, drain, error, ...

 private:
  TestWorker(std::unique_ptr<client::Client> client, TestWorkerOptions options);
  // Counts and records a message that is not a task.
  void Note(const nlohmann::json& message);
  void NoteTask(const nlohmann::json& task);
  void HeartbeatIfDue();
  void AutoLoop(AutoOptions options);

  std::unique_ptr<client::Client> client_;  // used by one thread at a time
  TestWorkerOptions options_;
  std::string id_;
  std::chrono::milliseconds heartbeat_{5000};
  std::chrono::steady_clock::time_point last_heartbeat_;

  std::thread auto_thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> connected_{true};
  std::atomic<int> tasks_received_{0};
  std::atomic<int> results_sent_{0};
  std::atomic<int> cancels_received_{0};
  std::atomic<bool> drain_received_{false};
  mutable std::mutex mutex_;  // guards the two vectors
  std::vector<std::string> task_ids_;
  std::vector<nlohmann::json> events_;
};

}  // namespace pincer::test
