// Where the core's outgoing lines go. The daemon implements it over
// connections: lines to workers go out at the end of the loop turn, lines
// to clients once the store has made durable what they tell of (persist,
// then answer: daemon/answer_gate.h).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pincer {

using ConnId = uint64_t;

// A submit the dispatcher accepted, to be answered `ok` once its task is
// stored (docs/protocol.md, "submit").
struct SubmitAck {
  int64_t req = 0;
  uint64_t id = 0;        // the task's id
  bool existing = false;  // an earlier task with the same key
  std::string warning;    // the answer's `warning`; "" = none
};

class Outbox {
 public:
  virtual ~Outbox() = default;
  // The pending output of `conn`, to append complete lines to; nullptr when
  // the connection is gone. Lines to one connection keep their order.
  virtual std::string* Buffer(ConnId conn) = 0;
  // The same for an answer to a client request, also one a worker sent on
  // its connection: it tells of state, so it waits for the store as any
  // line to a client does.
  virtual std::string* AnswerBuffer(ConnId conn) { return Buffer(conn); }
  // The same for the `end` event answering request `req` of client `conn`:
  // dropped if that request's submit turns out not to be accepted.
  virtual std::string* EndBuffer(ConnId conn, int64_t /*req*/) { return Buffer(conn); }
  // The same for a `progress` line streamed to request `req` of `conn` (a
  // wait or watch): nullptr (the line is skipped) when the connection is
  // gone or already holds too much unwritten output. Dropped like the
  // `end` if that request's submit turns out not to be accepted.
  virtual std::string* ProgressBuffer(ConnId conn, int64_t req) { return EndBuffer(conn, req); }
  // Answers an accepted submit: `ok`, in order with the other lines, once
  // its task is stored; store_unavailable if the store fails to.
  // `weight`: what pincerd holds for it meanwhile (the task).
  virtual void Accepted(ConnId conn, const SubmitAck& ack, std::size_t weight) = 0;
  // Closes `conn` once what is queued for it has been written.
  virtual void Close(ConnId conn) = 0;
  // Client `conn` began (`bytes` > 0) or ended (< 0) waiting for a task's
  // end; `bytes` weighs what that keeps pincerd holding for it (the task,
  // the end event to come). The daemon counts it in the client's backlog.
  virtual void Waiting(ConnId /*conn*/, int64_t /*bytes*/) {}

  void Send(ConnId conn, std::string_view line) {
    if (std::string* out = Buffer(conn)) out->append(line);
  }
  void Answer(ConnId conn, std::string_view line) {
    if (std::string* out = AnswerBuffer(conn)) out->append(line);
  }
};

}  // namespace pincer
