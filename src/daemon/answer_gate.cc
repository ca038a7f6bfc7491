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
  std::vector<Run> acks;
  for (std::size_t i = q.first; i < q.runs.size(); ++i) {
    if (q.runs[i].kind == Kind::kAck) acks.push_back(q.runs[i]);
  }
  if (acks.empty()) {
    if (last_ == &q) last_ = nullptr;
    queues_.erase(it);  // held_ forgets it at the next Durable or Refuse
    return;
  }
  const std::size_t weight = q.weight;
  q.Clear();
  q.runs = std::move(acks);
  for (Run& run : q.runs) run.start = 0;
  q.weight = weight;
  q.gone = true;
}

void AnswerGate::Durable(uint64_t take) {
  std::erase_if(held_, [&](ConnId conn) {
    auto it = queues_.find(conn);
    if (it == queues_.end()) return true;
    Queue& q = it->second;
    // Takes never decrease along a queue: the runs that can go are a prefix.
    std::size_t kept = q.first;
    while (kept < q.runs.size() && q.runs[kept].take <= take) ++kept;
    if (kept > q.first) Send(conn, q, kept);
    q.listed = !q.empty();
    if (q.listed) return false;
    if (q.gone) {
      if (last_ == &q) last_ = nullptr;
      queues_.erase(it);  // `q` is gone with it
    }
    return true;
  });
}

void AnswerGate::Send(ConnId conn, Queue& q, std::size_t kept) {
  const std::size_t cut = kept < q.runs.size() ? q.runs[kept].start : q.text.size();
  for (std::size_t i = q.first; i < kept; ++i) q.weight -= q.runs[i].weight;
  if (std::string* out = q.gone ? nullptr : out_(conn)) {
    if (q.begin == 0 && cut == q.text.size() && out->empty()) {
      out->swap(q.text);  // the common case: all of it, into an empty buffer
    } else {
      out->append(q.text, q.begin, cut - q.begin);
    }
    sent_(conn);
  }
  if (kept == q.runs.size()) {
    const std::size_t weight = q.weight;
    q.Clear();
    q.weight = weight;
    return;
  }
  q.begin = cut;
  q.first = kept;
  Compact(q);
}

void AnswerGate::Compact(Queue& q) {
  if (q.begin < 4096 || q.begin < q.text.size() / 2) return;
  q.text.erase(0, q.begin);
  q.runs.erase(q.runs.begin(), q.runs.begin() + static_cast<std::ptrdiff_t>(q.first));
  for (Run& run : q.runs) run.start -= q.begin;
  q.begin = 0;
  q.first = 0;
}

void AnswerGate::Refuse(const Status& store, const std::function<void(const SubmitAck&)>& forget) {
  // First the refused submits' tasks are forgotten: that may end them and
  // write their `end` here, to be dropped below with the rest of theirs.
  std::vector<SubmitAck> refused;
  for (ConnId conn : held_) {
    auto it = queues_.find(conn);
    if (it == queues_.end()) continue;
    const Queue& q = it->second;
    for (std::size_t i = q.first; i < q.runs.size(); ++i) {
      const Run& run = q.runs[i];
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
    for (std::size_t i = q.first; out && i < q.runs.size(); ++i) {
      const Run& run = q.runs[i];
      if (run.kind == Kind::kAck) {
        out->append(EncodeError("store_unavailable", why, run.req));
        refused_reqs.push_back(run.req);
      } else if (run.kind != Kind::kEnd || std::find(refused_reqs.begin(), refused_reqs.end(),
                                                     run.req) == refused_reqs.end()) {
        out->append(q.text, run.start, q.End(i) - run.start);
      }
    }
    q.Clear();
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
