#include "support/test_worker.h"

#include <algorithm>
#include <list>

namespace pincer::test {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Auto mode reads in slices this long so StopAuto() is prompt.
constexpr milliseconds kSlice{20};

std::string TypeOf(const nlohmann::json& message) {
  auto it = message.find("type");
  return it != message.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

client::Result<std::unique_ptr<TestWorker>> TestWorker::Connect(const std::string& addr,
                                                                TestWorkerOptions options) {
  nlohmann::json hello = {
      {"name", options.name}, {"skills", options.skills}, {"capacity", options.capacity}};
  if (!options.labels.is_null()) hello["labels"] = options.labels;
  if (options.spawn_id) hello["spawn_id"] = *options.spawn_id;
  auto client = client::Client::Connect(addr, "worker", options.token, hello);
  if (!client.ok()) return client.error();
  return std::unique_ptr<TestWorker>(new TestWorker(std::move(client).value(), std::move(options)));
}

TestWorker::TestWorker(std::unique_ptr<client::Client> client, TestWorkerOptions options)
    : client_(std::move(client)), options_(std::move(options)) {
  id_ = client_->id();
  const auto& welcome = client_->welcome();
  if (auto it = welcome.find("heartbeat_ms"); it != welcome.end() && it->is_number_integer()) {
    heartbeat_ = milliseconds(std::max<std::int64_t>(it->get<std::int64_t>(), 1));
  }
  last_heartbeat_ = Clock::now();
}

TestWorker::~TestWorker() { Close(); }

void TestWorker::Close() {
  StopAuto();
  client_->Close();
  connected_ = false;
}

void TestWorker::Note(const nlohmann::json& message) {
  const std::string type = TypeOf(message);
  if (type == "cancel") ++cancels_received_;
  if (type == "drain") drain_received_ = true;
  std::lock_guard<std::mutex> lock(mutex_);
  events_.push_back(message);
}

void TestWorker::NoteTask(const nlohmann::json& task) {
  ++tasks_received_;
  std::lock_guard<std::mutex> lock(mutex_);
  task_ids_.push_back(task.value("id", ""));
}

std::vector<std::string> TestWorker::task_ids() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return task_ids_;
}

std::vector<nlohmann::json> TestWorker::events() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return events_;
}

void TestWorker::HeartbeatIfDue() {
  // Half the interval: a heartbeat is never late because of scheduling.
  if (Clock::now() - last_heartbeat_ >= heartbeat_ / 2) SendHeartbeat();
}

std::optional<nlohmann::json> TestWorker::NextMessage(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (connected_) {
    const auto now = Clock::now();
    if (now >= deadline) break;
    auto wait = std::chrono::duration_cast<milliseconds>(deadline - now);
    if (options_.auto_heartbeat) wait = std::min(wait, std::max(heartbeat_ / 2, milliseconds(1)));
    client::Result<nlohmann::json> message = client_->ReadMessage(wait);
    if (options_.auto_heartbeat) HeartbeatIfDue();
    if (message.ok()) return std::move(message).value();
    if (message.error().kind == client::ErrorKind::kTimeout) continue;
    if (message.error().kind == client::ErrorKind::kProtocol && client_->is_open()) continue;
    connected_ = false;
  }
  return std::nullopt;
}

std::optional<nlohmann::json> TestWorker::NextTask(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    std::optional<nlohmann::json> message = NextMessage(left);
    if (!message) return std::nullopt;
    if (TypeOf(*message) == "task") {
      NoteTask(*message);
      return message;
    }
    Note(*message);
  }
}

bool TestWorker::Send(const nlohmann::json& message) {
  if (!client_->Send(message).ok()) {
    connected_ = false;
    return false;
  }
  return true;
}

bool TestWorker::SendResult(const std::string& task_id, bool ok, const nlohmann::json& value,
                            bool retryable) {
  nlohmann::json result = {{"type", "result"}, {"id", task_id}, {"ok", ok}};
  if (ok) {
    result["output"] = value;
  } else {
    result["error"] = value.is_string() ? value.get<std::string>() : value.dump();
    result["retryable"] = retryable;
  }
  if (!Send(result)) return false;
  ++results_sent_;
  return true;
}

bool TestWorker::SendProgress(const std::string& task_id, const nlohmann::json& data) {
  return Send({{"type", "progress"}, {"id", task_id}, {"data", data}});
}

bool TestWorker::SendHeartbeat(const nlohmann::json& load) {
  last_heartbeat_ = Clock::now();
  return Send({{"type", "heartbeat"}, {"load", load}});
}

void TestWorker::StartAuto(AutoOptions options) {
  StopAuto();
  stop_ = false;
  auto_thread_ = std::thread([this, options = std::move(options)] { AutoLoop(options); });
}

void TestWorker::StopAuto() {
  stop_ = true;
  if (auto_thread_.joinable()) auto_thread_.join();
}

void TestWorker::AutoLoop(AutoOptions options) {
  struct Pending {
    Clock::time_point due;
    std::string id;
    TaskReply reply;
  };
  std::list<Pending> pending;  // in due order: one fixed delay keeps arrival order

  while (!stop_ && connected_) {
    const auto now = Clock::now();
    for (auto it = pending.begin(); it != pending.end() && it->due <= now;) {
      const TaskReply& reply = it->reply;
      if (reply.ok) {
        SendResult(it->id, true, reply.output);
      } else {
        SendResult(it->id, false, reply.error, reply.retryable);
      }
      it = pending.erase(it);
    }
    HeartbeatIfDue();

    milliseconds wait = std::min(kSlice, std::max(heartbeat_ / 2, milliseconds(1)));
    if (!pending.empty()) {
      wait = std::min(wait, std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(
                                                          pending.front().due - Clock::now())));
    }
    client::Result<nlohmann::json> message = client_->ReadMessage(wait);
    if (!message.ok()) {
      const auto kind = message.error().kind;
      if (kind == client::ErrorKind::kTimeout) continue;
      if (kind == client::ErrorKind::kProtocol && client_->is_open()) continue;
      connected_ = false;
      break;
    }
    if (TypeOf(*message) != "task") {
      Note(*message);
      if (TypeOf(*message) == "cancel") {
        // The daemon freed the slot already; an answer would be refused.
        const std::string id = message->value("id", "");
        pending.remove_if([&](const Pending& p) { return p.id == id; });
      }
      continue;
    }
    NoteTask(*message);
    TaskReply reply;
    if (options.handler) {
      reply = options.handler(*message);
    } else {
      reply.output = message->value("payload", nlohmann::json());
    }
    if (!reply.send) continue;
    pending.push_back({Clock::now() + options.delay, message->value("id", ""), std::move(reply)});
  }
}

}  // namespace pincer::test
