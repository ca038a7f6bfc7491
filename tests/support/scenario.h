// Small helpers for integration scenarios: a client connection to a real
// pincerd and the requests the scenarios repeat (submit, status, stats,
// workers, wait for an end state). Failures are reported through gtest and
// come back as null JSON, so a test reads straight through.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "client/client.h"
#include "support/wait_for.h"

namespace pincer::test {

inline std::unique_ptr<client::Client> ConnectClient(const std::string& addr,
                                                     const std::string& token = "") {
  auto c = client::Client::Connect(addr, "client", token);
  if (!c.ok()) {
    ADD_FAILURE() << "client connect to " << addr << ": " << c.error().ToString();
    return nullptr;
  }
  return std::move(c).value();
}

// One request and its answer; null (and a test failure) on an error.
inline nlohmann::json Ask(client::Client& c, nlohmann::json request) {
  auto r = c.Request(std::move(request), std::chrono::seconds(10));
  if (!r.ok()) {
    ADD_FAILURE() << "request failed: " << r.error().ToString();
    return nullptr;
  }
  return std::move(r).value();
}

// Submits a task (`fields` merged into the submit) and returns its id.
inline std::string SubmitTask(client::Client& c, nlohmann::json fields = nlohmann::json::object()) {
  fields["type"] = "submit";
  nlohmann::json answer = Ask(c, fields);
  if (!answer.is_object() || !answer.contains("id")) return "";
  return answer["id"];
}

inline nlohmann::json TaskStatus(client::Client& c, const std::string& id) {
  nlohmann::json answer = Ask(c, {{"type", "status"}, {"id", id}});
  return answer.is_object() ? answer.value("task", nlohmann::json()) : nlohmann::json();
}

inline nlohmann::json Stats(client::Client& c) {
  nlohmann::json answer = Ask(c, {{"type", "stats"}});
  return answer.is_object() ? answer.value("stats", nlohmann::json()) : nlohmann::json();
}

inline nlohmann::json Workers(client::Client& c) {
  nlohmann::json answer = Ask(c, {{"type", "workers"}});
  return answer.is_object() ? answer.value("workers", nlohmann::json::array())
                            : nlohmann::json::array();
}

// The worker object with `id` from a workers list; null when absent.
inline nlohmann::json FindWorker(const nlohmann::json& workers, const std::string& id) {
  for (const auto& w : workers) {
    if (w.value("id", "") == id) return w;
  }
  return nullptr;
}

// Waits for the task's end state (an `end` event); null on timeout.
inline nlohmann::json WaitEnd(client::Client& c, const std::string& id,
                              std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  auto req = c.SendRequest({{"type", "wait"}, {"id", id}});
  if (!req.ok()) {
    ADD_FAILURE() << "wait " << id << ": " << req.error().ToString();
    return nullptr;
  }
  auto end = c.AwaitReply(*req, timeout);
  if (!end.ok()) {
    ADD_FAILURE() << "wait " << id << ": " << end.error().ToString();
    return nullptr;
  }
  return std::move(end).value();
}

// Polls `status` until the task is in `state`; false after `timeout`.
inline bool WaitState(client::Client& c, const std::string& id, const std::string& state,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  return WaitFor([&] { return TaskStatus(c, id).value("state", "") == state; }, timeout);
}

}  // namespace pincer::test
