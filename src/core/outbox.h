// Where the core's outgoing lines go. The daemon implements it over
// connections and writes everything a loop iteration produced after the
// store has committed it (persist, then answer).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pincer {

using ConnId = uint64_t;

class Outbox {
 public:
  virtual ~Outbox() = default;
  // The pending output of `conn`, to append complete lines to; nullptr when
  // the connection is gone. Lines to one connection keep their order.
  virtual std::string* Buffer(ConnId conn) = 0;
  // Closes `conn` once what is queued for it has been written.
  virtual void Close(ConnId conn) = 0;
  // Client `conn` began (`bytes` > 0) or ended (< 0) waiting for a task's
  // end; `bytes` weighs what that keeps pincerd holding for it (the task,
  // the end event to come). The daemon counts it in the client's backlog.
  virtual void Waiting(ConnId /*conn*/, int64_t /*bytes*/) {}

  void Send(ConnId conn, std::string_view line) {
    if (std::string* out = Buffer(conn)) out->append(line);
  }
};

}  // namespace pincer
