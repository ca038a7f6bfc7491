// An Outbox for unit tests of the core: records every line sent to each
// connection and every Close, so a test can read what the dispatcher said
// to whom. Connections are open unless the test (or a Close) says otherwise.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "core/outbox.h"
#include "protocol/encode.h"

namespace pincer::test {

class FakeOutbox final : public Outbox {
 public:
  std::string* Buffer(ConnId conn) override {
    if (gone_.count(conn)) return nullptr;
    return &pending_[conn];
  }
  // The store is taken to be durable at once: the `ok` goes out now.
  void Accepted(ConnId conn, const SubmitAck& ack, std::size_t /*weight*/) override {
    if (std::string* out = Buffer(conn)) {
      AppendSubmitOk(*out, ack.req, ack.id, ack.existing, ack.warning);
    }
  }
  void Close(ConnId conn) override { closed_.insert(conn); }
  void Waiting(ConnId conn, int64_t bytes) override { waiting_[conn] += bytes; }
  // What `conn`'s waits weigh now (Outbox::Waiting summed).
  int64_t waiting(ConnId conn) const {
    auto it = waiting_.find(conn);
    return it == waiting_.end() ? 0 : it->second;
  }

  // Marks `conn` as gone: lines sent to it are dropped, as the daemon does.
  void Drop(ConnId conn) { gone_.insert(conn); }
  bool closed(ConnId conn) const { return closed_.count(conn) != 0; }

  // Every message sent to `conn` since the last Take(conn), parsed, in order.
  // REQUIRES: what was sent is complete JSON lines.
  std::vector<nlohmann::json> Take(ConnId conn) {
    std::vector<nlohmann::json> out;
    std::string& buf = pending_[conn];
    std::size_t start = 0;
    while (true) {
      const std::size_t nl = buf.find('\n', start);
      if (nl == std::string::npos) break;
      out.push_back(nlohmann::json::parse(buf.substr(start, nl - start)));
      start = nl + 1;
    }
    buf.erase(0, start);
    return out;
  }
  // Like Take, keeping only messages of `type`.
  std::vector<nlohmann::json> TakeType(ConnId conn, const std::string& type) {
    std::vector<nlohmann::json> out;
    for (auto& m : Take(conn)) {
      if (m.value("type", "") == type) out.push_back(std::move(m));
    }
    return out;
  }
  // Forgets everything pending for every connection.
  void Clear() { pending_.clear(); }

 private:
  std::map<ConnId, std::string> pending_;
  std::set<ConnId> gone_;
  std::set<ConnId> closed_;
  std::map<ConnId, int64_t> waiting_;
};

}  // namespace pincer::test
