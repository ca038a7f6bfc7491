#include "store/change_codec.h"

#include <cstring>
#include <limits>

namespace pincer {
namespace {

// Appends into space reserved up front: no capacity check per byte.
class Writer {
 public:
  Writer(std::string& out, std::size_t max_bytes) : out_(out), start_(out.size()) {
    out_.resize(start_ + max_bytes);
    p_ = out_.data() + start_;
  }
  ~Writer() { out_.resize(static_cast<std::size_t>(p_ - out_.data())); }

  void Byte(uint8_t b) { *p_++ = static_cast<char>(b); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      *p_++ = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    *p_++ = static_cast<char>(v);
  }
  void Signed(int64_t v) { Varint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63)); }
  void String(std::string_view s) {
    Varint(s.size());
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }

 private:
  std::string& out_;
  std::size_t start_;
  char* p_;
};

constexpr std::size_t kVarint = 10;  // the most bytes a varint takes

std::size_t MutableBound(const TaskRecord& r) {
  std::size_t n = 1 + 4 * kVarint + r.worker.size() + r.output.size() + r.error.size() + kVarint;
  for (const AttemptError& e : r.errors) n += 3 * kVarint + e.worker.size() + e.error.size();
  return n;
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

void PutMutable(Writer& w, const TaskRecord& r) {
  w.Byte(static_cast<uint8_t>(r.state));
  w.Signed(r.attempts);
  w.String(r.worker);
  w.String(r.output);
  w.String(r.error);
  w.Varint(r.errors.size());
  for (const AttemptError& e : r.errors) {
    w.Signed(e.attempt);
    w.String(e.worker);
    w.String(e.error);
  }
  w.Signed(r.started_ms);
  w.Signed(r.ended_ms);
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
  if (op == ChangeOp::kErase) {
    EncodeErase(out, r.id);
    return;
  }
  std::size_t bound = 1 + kVarint + MutableBound(r);
  if (op == ChangeOp::kInsert) {
    bound += kVarint + r.payload.size() + r.session.size() + r.key.size() + 7 * kVarint;
    for (const std::string& skill : r.skills) bound += kVarint + skill.size();
  }
  Writer w(out, bound);
  w.Byte(static_cast<uint8_t>(op));
  w.Varint(r.id);
  if (op == ChangeOp::kInsert) {
    w.Varint(r.skills.size());
    for (const std::string& skill : r.skills) w.String(skill);
    w.String(r.payload);
    w.Signed(r.priority);
    w.Signed(r.timeout_ms);
    w.Signed(r.max_attempts);
    w.String(r.session);
    w.String(r.key);
    w.Signed(r.created_ms);
  }
  PutMutable(w, r);
}

void EncodeErase(std::string& out, TaskId id) {
  Writer w(out, 1 + kVarint);
  w.Byte(static_cast<uint8_t>(ChangeOp::kErase));
  w.Varint(id);
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

namespace {

// Reads the op and the id, then skips a kInsert's submitted fields.
bool GetHead(std::string_view& in, ChangeOp& op, TaskId& id) {
  if (in.empty()) return false;
  const auto raw = static_cast<uint8_t>(in.front());
  in.remove_prefix(1);
  if (raw < 1 || raw > 3) return false;
  op = static_cast<ChangeOp>(raw);
  if (!GetVarint(in, id) || id == 0) return false;
  if (op != ChangeOp::kInsert) return true;
  uint64_t skills;
  if (!GetVarint(in, skills) || skills > in.size()) return false;
  for (uint64_t i = 0; i < skills; ++i) {
    if (!SkipString(in)) return false;
  }
  // payload, priority, timeout_ms, max_attempts, session, key, created_ms
  return SkipString(in) && SkipVarints(in, 3) && SkipString(in) && SkipString(in) &&
         SkipVarints(in, 1);
}

}  // namespace

bool DecodeMutableFields(std::string_view& in, ChangeOp& op, TaskRecord& rec) {
  if (!GetHead(in, op, rec.id)) return false;
  return op == ChangeOp::kErase || GetMutable(in, rec);
}

bool SkipChange(std::string_view& in, ChangeOp& op, TaskId& id) {
  if (!GetHead(in, op, id)) return false;
  if (op == ChangeOp::kErase) return true;
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
