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

void AnswerGate::Refuse(const Status& store, const std::function<void(const SubmitAck&)>& forget) {
  // First the refused submits' tasks are forgotten: that may end them and
  // write their `end` here, to be dropped below with the rest of theirs.
  std::vector<SubmitAck> refused;
  for (ConnId conn : held_) {
    auto it = queues_.find(conn);
    if (it == queues_.end()) continue;
    for (const Run& run : it->second.runs) {
      if (run.kind == Kind::kAck) refused.push_back(SubmitAck{run.req, run.id, run.existing, {}});
    }
  }
  for (const SubmitAck& ack : refused) forget(ack);

  const std::string why = "not accepted: " + store.message();
  std::vector<int64_t> refused_reqs;  // of one connection: their `end` is not sent
  for (ConnId conn : held_) {
    auto it = queues_.find(conn);
    if (it == queues_.end()) continue;
    Queue& q = it->second;
    std::string* out = q.gone ? nullptr : out_(conn);
    refused_reqs.clear();
    for (std::size_t i = 0; out && i < q.runs.size(); ++i) {
      const Run& run = q.runs[i];
      const std::size_t end = i + 1 < q.runs.size() ? q.runs[i + 1].start : q.text.size();
      if (run.kind == Kind::kAck) {
        out->append(EncodeError("store_unavailable", why, run.req));
        refused_reqs.push_back(run.req);
      } else if (run.kind != Kind::kEnd || std::find(refused_reqs.begin(), refused_reqs.end(),
                                                     run.req) == refused_reqs.end()) {
        out->append(q.text, run.start, end - run.start);
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
}

}  // namespace pincer
