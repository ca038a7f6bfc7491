#include "daemon/answer_gate.h"

#include <algorithm>

#include "protocol/encode.h"

namespace pincer {

AnswerGate::Queue& AnswerGate::Mark(ConnId conn, uint64_t take, Kind kind, int64_t req) {
  if (!last_ || last_conn_ != conn) {
    last_ = &queues_[conn];  // element pointers survive a rehash
    last_conn_ = conn;
  }
  Queue& q = *last_;
  if (!q.listed) {
    q.listed = true;
    held_.push_back(conn);
  }
  // Lines that need the same take as the run before them join it.
  if (kind != Kind::kLines || q.runs.empty() || q.runs.back().take != take ||
      q.runs.back().kind != Kind::kLines) {
    Run& run = q.runs.emplace_back();
    run.take = take;
    run.start = q.text.size();
    run.kind = kind;
    run.req = req;
  }
  return q;
}

void AnswerGate::Accepted(ConnId conn, uint64_t take, const SubmitAck& ack, std::size_t weight) {
  Queue& q = Mark(conn, take, Kind::kAck, ack.req);
  Run& run = q.runs.back();
  run.id = ack.id;
  run.existing = ack.existing;
  run.weight = weight;
  q.weight += weight;
  AppendSubmitOk(q.text, ack.req, ack.id, ack.existing, ack.warning);
}

void AnswerGate::Drop(ConnId conn) {
  auto it = queues_.find(conn);
  if (it == queues_.end()) return;
  Queue& q = it->second;
  std::erase_if(q.runs, [](const Run& run) { return run.kind != Kind::kAck; });
  if (q.runs.empty()) {
    if (last_ == &q) last_ = nullptr;
    queues_.erase(it);  // held_ forgets it at the next Durable or Refuse
    return;
  }
  q.text.clear();
  for (Run& run : q.runs) run.start = 0;
  q.gone = true;
}

void AnswerGate::Durable(uint64_t take) {
  std::erase_if(held_, [&](ConnId conn) {
    auto it = queues_.find(conn);
    if (it == queues_.end()) return true;
    Queue& q = it->second;
    // Takes never decrease along a queue: the runs that can go are a prefix.
    std::size_t kept = 0;
    while (kept < q.runs.size() && q.runs[kept].take <= take) ++kept;
    if (kept > 0) Send(conn, q, kept);
    q.listed = !q.runs.empty();
    if (!q.listed && q.gone) {
      if (last_ == &q) last_ = nullptr;
      queues_.erase(it);
    }
    return !q.listed;
  });
}

void AnswerGate::Send(ConnId conn, Queue& q, std::size_t kept) {
  const std::size_t cut = kept < q.runs.size() ? q.runs[kept].start : q.text.size();
  for (std::size_t i = 0; i < kept; ++i) q.weight -= q.runs[i].weight;
  if (std::string* out = q.gone ? nullptr : out_(conn)) {
    if (cut == q.text.size() && out->empty()) {
      out->swap(q.text);  // the common case: all of it, into an empty buffer
    } else {
      out->append(q.text, 0, cut);
    }
    sent_(conn);
  }
  if (cut == q.text.size()) {
    q.text.clear();
    q.runs.clear();
    return;
  }
  q.text.erase(0, cut);
  q.runs.erase(q.runs.begin(), q.runs.begin() + static_cast<std::ptrdiff_t>(kept));
  for (Run& run : q.runs) run.start -= cut;
}

void AnswerGate::Refuse(const Status& store,
                        const std::function<void(const SubmitAck&)>& forget) {
  const std::string why = "not accepted: " + store.message();
  std::vector<SubmitAck> refused;
  for (ConnId conn : held_) {
    auto it = queues_.find(conn);
    if (it == queues_.end()) continue;
    Queue& q = it->second;
    std::string* out = q.gone ? nullptr : out_(conn);
    const std::size_t first_refused = refused.size();
    for (std::size_t i = 0; out && i < q.runs.size(); ++i) {
      const Run& run = q.runs[i];
      const std::size_t end = i + 1 < q.runs.size() ? q.runs[i + 1].start : q.text.size();
      if (run.kind == Kind::kAck) {
        out->append(EncodeError("store_unavailable", why, run.req));
        refused.push_back(SubmitAck{run.req, run.id, run.existing, {}});
      } else if (run.kind != Kind::kEnd ||
                 std::none_of(refused.begin() + static_cast<std::ptrdiff_t>(first_refused),
                              refused.end(),
                              [&](const SubmitAck& a) { return a.req == run.req; })) {
        out->append(q.text, run.start, end - run.start);
      }  // else: the end of a submit just refused
    }
    if (!out) {  // gone: its submits are refused all the same
      for (const Run& run : q.runs) {
        if (run.kind == Kind::kAck) refused.push_back(SubmitAck{run.req, run.id, run.existing, {}});
      }
    }
    q.text.clear();
    q.runs.clear();
    q.weight = 0;
    q.listed = false;
    if (out) sent_(conn);
    if (q.gone) {
      if (last_ == &q) last_ = nullptr;
      queues_.erase(it);
    }
  }
  held_.clear();
  // Last: forgetting a task may send lines (to its worker).
  for (const SubmitAck& ack : refused) forget(ack);
}

}  // namespace pincer
