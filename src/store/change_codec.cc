#include "store/change_codec.h"

#include <limits>

namespace pincer {
namespace {

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void PutSigned(std::string& out, int64_t v) {
  PutVarint(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

void PutString(std::string& out, std::string_view s) {
  PutVarint(out, s.size());
  out.append(s);
}

bool GetVarint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    const auto byte = static_cast<uint8_t>(in.front());
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

bool GetSigned(std::string_view& in, int64_t& v) {
  uint64_t u;
  if (!GetVarint(in, u)) return false;
  v = static_cast<int64_t>((u >> 1) ^ (~(u & 1) + 1));
  return true;
}

bool GetInt(std::string_view& in, int& v) {
  int64_t wide;
  if (!GetSigned(in, wide) || wide < std::numeric_limits<int>::min() ||
      wide > std::numeric_limits<int>::max()) {
    return false;
  }
  v = static_cast<int>(wide);
  return true;
}

bool GetString(std::string_view& in, std::string& s) {
  uint64_t n;
  if (!GetVarint(in, n) || n > in.size()) return false;
  s.assign(in.data(), n);
  in.remove_prefix(n);
  return true;
}

bool SkipString(std::string_view& in) {
  uint64_t n;
  if (!GetVarint(in, n) || n > in.size()) return false;
  in.remove_prefix(n);
  return true;
}

bool SkipVarints(std::string_view& in, int count) {
  uint64_t v;
  for (int i = 0; i < count; ++i) {
    if (!GetVarint(in, v)) return false;
  }
  return true;
}

void PutMutable(std::string& out, const TaskRecord& r) {
  out.push_back(static_cast<char>(r.state));
  PutSigned(out, r.attempts);
  PutString(out, r.worker);
  PutString(out, r.output);
  PutString(out, r.error);
  PutVarint(out, r.errors.size());
  for (const AttemptError& e : r.errors) {
    PutSigned(out, e.attempt);
    PutString(out, e.worker);
    PutString(out, e.error);
  }
  PutSigned(out, r.started_ms);
  PutSigned(out, r.ended_ms);
}

bool GetMutable(std::string_view& in, TaskRecord& r) {
  if (in.empty()) return false;
  const auto state = static_cast<uint8_t>(in.front());
  in.remove_prefix(1);
  if (state > static_cast<uint8_t>(TaskState::kTimedOut)) return false;
  r.state = static_cast<TaskState>(state);
  uint64_t errors;
  if (!GetInt(in, r.attempts) || !GetString(in, r.worker) || !GetString(in, r.output) ||
      !GetString(in, r.error) || !GetVarint(in, errors) || errors > in.size()) {
    return false;
  }
  r.errors.resize(errors);
  for (AttemptError& e : r.errors) {
    if (!GetInt(in, e.attempt) || !GetString(in, e.worker) || !GetString(in, e.error)) return false;
  }
  return GetSigned(in, r.started_ms) && GetSigned(in, r.ended_ms);
}

}  // namespace

void CopyMutableFields(const TaskRecord& from, TaskRecord& to) {
  to.state = from.state;
  to.attempts = from.attempts;
  to.worker = from.worker;
  to.output = from.output;
  to.error = from.error;
  to.errors = from.errors;
  to.started_ms = from.started_ms;
  to.ended_ms = from.ended_ms;
}

void EncodeChange(std::string& out, ChangeOp op, const TaskRecord& r) {
  out.push_back(static_cast<char>(op));
  PutVarint(out, r.id);
  if (op == ChangeOp::kErase) return;
  if (op == ChangeOp::kInsert) {
    PutVarint(out, r.skills.size());
    for (const std::string& s : r.skills) PutString(out, s);
    PutString(out, r.payload);
    PutSigned(out, r.priority);
    PutSigned(out, r.timeout_ms);
    PutSigned(out, r.max_attempts);
    PutString(out, r.session);
    PutString(out, r.key);
    PutSigned(out, r.created_ms);
  }
  PutMutable(out, r);
}

bool DecodeChange(std::string_view& in, ChangeOp& op, TaskRecord& r) {
  if (in.empty()) return false;
  const auto raw = static_cast<uint8_t>(in.front());
  in.remove_prefix(1);
  if (raw < 1 || raw > 3) return false;
  op = static_cast<ChangeOp>(raw);
  if (!GetVarint(in, r.id) || r.id == 0) return false;
  if (op == ChangeOp::kErase) return true;
  if (op == ChangeOp::kInsert) {
    uint64_t skills;
    if (!GetVarint(in, skills) || skills > in.size()) return false;
    r.skills.resize(skills);
    for (std::string& s : r.skills) {
      if (!GetString(in, s)) return false;
    }
    if (!GetString(in, r.payload) || !GetSigned(in, r.priority) || !GetSigned(in, r.timeout_ms) ||
        !GetInt(in, r.max_attempts) || !GetString(in, r.session) || !GetString(in, r.key) ||
        !GetSigned(in, r.created_ms)) {
      return false;
    }
  }
  return GetMutable(in, r);
}

bool SkipChange(std::string_view& in, ChangeOp& op, TaskId& id) {
  if (in.empty()) return false;
  const auto raw = static_cast<uint8_t>(in.front());
  in.remove_prefix(1);
  if (raw < 1 || raw > 3) return false;
  op = static_cast<ChangeOp>(raw);
  if (!GetVarint(in, id) || id == 0) return false;
  if (op == ChangeOp::kErase) return true;
  if (op == ChangeOp::kInsert) {
    uint64_t skills;
    if (!GetVarint(in, skills) || skills > in.size()) return false;
    for (uint64_t i = 0; i < skills; ++i) {
      if (!SkipString(in)) return false;
    }
    // payload, priority, timeout_ms, max_attempts, session, key, created_ms
    if (!SkipString(in) || !SkipVarints(in, 3) || !SkipString(in) || !SkipString(in) ||
        !SkipVarints(in, 1)) {
      return false;
    }
  }
  // state, attempts, worker, output, error, errors, started_ms, ended_ms
  if (in.empty()) return false;
  in.remove_prefix(1);
  uint64_t errors;
  if (!SkipVarints(in, 1) || !SkipString(in) || !SkipString(in) || !SkipString(in) ||
      !GetVarint(in, errors) || errors > in.size()) {
    return false;
  }
  for (uint64_t i = 0; i < errors; ++i) {
    if (!SkipVarints(in, 1) || !SkipString(in) || !SkipString(in)) return false;
  }
  return SkipVarints(in, 2);
}

}  // namespace pincer
