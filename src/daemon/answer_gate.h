// The durable-answer gate: persist, then answer (docs/durability.md).
//
// Every line to a client tells of changes the store has recorded. The
// store numbers its takes (Store::next_take): a change recorded while
// next_take() is n is durable once a batch holding take n is written. So
// each line is held here with the take it needs, and goes to its
// connection once that take is durable (Durable), in the order the lines
// were written. Nothing else decides when a client hears something.
//
// A submit's `ok` is held the same way (Accepted). If the write fails,
// the submits it held are refused instead (Refuse): their `ok` becomes a
// store_unavailable error, their tasks are forgotten, and the `end`
// events of those same requests (EndLines, for `wait: true`) are dropped.
//
// Lines to workers do not pass here: a task goes out while its insert is
// being written (docs/architecture.md, "Persist, then answer").
//
// Threading: the event loop's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "core/outbox.h"

namespace pincer {

class AnswerGate {
 public:
  // `out(conn)`: the connection's output buffer, nullptr when it is gone;
  // `sent(conn)`: lines were appended to it (write them).
  using Out = std::function<std::string*(ConnId)>;
  using Sent = std::function<void(ConnId)>;
  AnswerGate(Out out, Sent sent) : out_(std::move(out)), sent_(std::move(sent)) {}

  // Where to append complete lines for `conn` that need take `take`.
  // Takes passed for one connection never decrease.
  std::string& Lines(ConnId conn, uint64_t take) { return Mark(conn, take, Kind::kLines, 0).text; }
  // The same for the `end` event answering request `req`.
  std::string& EndLines(ConnId conn, uint64_t take, int64_t req) {
    return Mark(conn, take, Kind::kEnd, req).text;
  }
  // A submit accepted, stored with take `take`: its `ok` waits here.
  // `weight`: what else pincerd holds for it until then (Held).
  void Accepted(ConnId conn, uint64_t take, const SubmitAck& ack, std::size_t weight);

  // Every take up to `take` is durable: the lines that need no later one
  // go out.
  void Durable(uint64_t take);
  // A write failed (`store`): every line held goes out now, except that
  // each submit's `ok` becomes store_unavailable, `forget(ack)` runs for
  // it first, and `end` events for that request are dropped (also one
  // that forgetting its task wrote).
  void Refuse(const Status& store, const std::function<void(const SubmitAck&)>& forget);

  // The connection is gone: its lines are dropped. Its submits still
  // held are still refused (forgotten) if their write fails.
  void Drop(ConnId conn);
  // What is held for `conn`: its lines' bytes and its submits' weights.
  std::size_t Held(ConnId conn) const {
    auto it = queues_.find(conn);
    return it == queues_.end() ? 0 : it->second.text.size() - it->second.begin + it->second.weight;
  }

 private:
  enum class Kind : uint8_t { kLines, kAck, kEnd };
  // One run of lines that need one take: text from `start` to the next
  // mark's start (or the end of the text).
  struct Run {
    uint64_t take = 0;
    std::size_t start = 0;
    Kind kind = Kind::kLines;
    // kAck: its submit; kEnd: the request it answers.
    int64_t req = 0;
    uint64_t id = 0;
    bool existing = false;
    std::size_t weight = 0;
  };
  // What is held for one connection: text[begin, end) in runs[first, end).
  // What goes out moves `begin` and `first` on; the front is cut off only
  // once it is the larger part, so a partial release does not move the
  // rest of the text each time.
  struct Queue {
    std::string text;
    std::size_t begin = 0;
    std::vector<Run> runs;
    std::size_t first = 0;
    std::size_t weight = 0;  // the acks' weights
    bool listed = false;     // in held_
    bool gone = false;       // Drop: only its submits are kept
    bool empty() const { return first == runs.size(); }
    std::size_t End(std::size_t i) const {
      return i + 1 < runs.size() ? runs[i + 1].start : text.size();
    }
    void Clear() {
      text.clear();
      runs.clear();
      begin = first = weight = 0;
    }
  };
  Queue& Mark(ConnId conn, uint64_t take, Kind kind, int64_t req);
  // Sends the runs of `q` before `kept` to `conn`.
  void Send(ConnId conn, Queue& q, std::size_t kept);
  // Cuts off what has gone out, once it is most of the buffer.
  static void Compact(Queue& q);

  Out out_;
  Sent sent_;
  std::unordered_map<ConnId, Queue> queues_;
  std::vector<ConnId> held_;  // connections with lines held
  // The queue Mark used last: a busy client's lines come in runs.
  ConnId last_conn_ = 0;
  Queue* last_ = nullptr;
};

}  // namespace pincer
