#include "store/change_codec.h"

#include <bit>
#include <cstring>
#include <limits>

namespace pincer {
namespace {

// Appends into space reserved up front: no capacity check per byte. The
// encoders pass the write position along by value: a position kept in an
// object would be stored and loaded again around every byte written (a
// char store may alias it).
class Reserved {
 public:
  Reserved(std::string& out, std::size_t max_bytes) : out_(out), start_(out.size()) {
    out_.resize(start_ + max_bytes);
  }
  char* begin() { return out_.data() + start_; }
  // `end`: just past the last byte written.
  void Finish(const char* end) { out_.resize(static_cast<std::size_t>(end - out_.data())); }

 private:
  std::string& out_;
  std::size_t start_;
};

char* Byte(char* p, uint8_t b) {
  *p = static_cast<char>(b);
  return p + 1;
}

char* Varint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

char* Signed(char* p, int64_t v) {
  return Varint(p, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

char* String(char* p, std::string_view s) {
  p = Varint(p, s.size());
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

constexpr std::size_t kVarint = 10;  // the most bytes a varint takes

char* Double(char* p, double v) {
  uint64_t bits = std::bit_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i, bits >>= 8) *p++ = static_cast<char>(bits & 0xff);
  return p;
}

// The extension of a change (format 2, docs/durability.md): set on the op
// byte when the change carries fields format 1 did not have. It follows
// the rest of the change: a varint of flags, then the fields they name.
constexpr uint8_t kExtended = 0x80;
constexpr uint64_t kExtUsage = 1;    // input, output, total, cost, model
constexpr uint64_t kExtBackoff = 2;  // initial_ms, max_ms, jitter (kInsert only)
constexpr uint64_t kExtParent = 4;   // the parent task's id (kInsert only)

uint64_t ExtFlags(const TaskRecord& r, bool submitted) {
  return (r.usage.empty() ? 0 : kExtUsage) | (submitted && r.has_backoff ? kExtBackoff : 0) |
         (submitted && r.parent != 0 ? kExtParent : 0);
}

std::size_t ExtBound(const TaskRecord& r) {
  return kVarint + 3 * kVarint + 8 + kVarint + r.usage.model.size() + 2 * kVarint + 8 + kVarint;
}

char* PutExt(char* p, const TaskRecord& r, uint64_t flags) {
  p = Varint(p, flags);
  if (flags & kExtUsage) {
    p = Signed(p, r.usage.input);
    p = Signed(p, r.usage.output);
    p = Signed(p, r.usage.total);
    p = Double(p, r.usage.cost);
    p = String(p, r.usage.model);
  }
  if (flags & kExtBackoff) {
    p = Signed(p, r.backoff.initial_ms);
    p = Signed(p, r.backoff.max_ms);
    p = Double(p, r.backoff.jitter);
  }
  if (flags & kExtParent) p = Varint(p, r.parent);
  return p;
}

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

bool GetDouble(std::string_view& in, double& v) {
  if (in.size() < 8) return false;
  uint64_t bits = 0;
  for (int i = 7; i >= 0; --i) bits = (bits << 8) | static_cast<uint8_t>(in[i]);
  in.remove_prefix(8);
  v = std::bit_cast<double>(bits);
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

// The extension's fields into `r` (absent usage reset; backoff and parent
// set only when present); with `r` null, only skips them.
bool GetExt(std::string_view& in, TaskRecord* r) {
  uint64_t flags;
  if (!GetVarint(in, flags) || (flags & ~(kExtUsage | kExtBackoff | kExtParent))) return false;
  TaskUsage usage;
  TaskBackoff backoff;
  if (flags & kExtUsage) {
    if (!GetSigned(in, usage.input) || !GetSigned(in, usage.output) ||
        !GetSigned(in, usage.total) || !GetDouble(in, usage.cost) || !GetString(in, usage.model)) {
      return false;
    }
  }
  if (flags & kExtBackoff) {
    if (!GetSigned(in, backoff.initial_ms) || !GetSigned(in, backoff.max_ms) ||
        !GetDouble(in, backoff.jitter)) {
      return false;
    }
  }
  uint64_t parent = 0;
  if ((flags & kExtParent) && (!GetVarint(in, parent) || parent == 0)) return false;
  if (r) {
    if (flags & kExtParent) r->parent = parent;
    r->usage = std::move(usage);
    if (flags & kExtBackoff) {
      r->has_backoff = true;
      r->backoff = backoff;
    }
  }
  return true;
}

char* PutMutable(char* p, const TaskRecord& r) {
  p = Byte(p, static_cast<uint8_t>(r.state));
  p = Signed(p, r.attempts);
  p = String(p, r.worker);
  p = String(p, r.output);
  p = String(p, r.error);
  p = Varint(p, r.errors.size());
  for (const AttemptError& e : r.errors) {
    p = Signed(p, e.attempt);
    p = String(p, e.worker);
    p = String(p, e.error);
  }
  p = Signed(p, r.started_ms);
  return Signed(p, r.ended_ms);
}

bool GetView(std::string_view& in, std::string_view& s) {
  uint64_t n;
  if (!GetVarint(in, n) || n > in.size()) return false;
  s = in.substr(0, n);
  in.remove_prefix(n);
  return true;
}

// The mutable fields up to the attempt errors (those into `errors`), the
// strings as views into `in`.
bool GetOutcome(std::string_view& in, Outcome& o, std::vector<AttemptError>& errors) {
  if (in.empty()) return false;
  const auto state = static_cast<uint8_t>(in.front());
  in.remove_prefix(1);
  if (state > static_cast<uint8_t>(TaskState::kTimedOut)) return false;
  o.state = static_cast<TaskState>(state);
  uint64_t count;
  if (!GetInt(in, o.attempts) || !GetView(in, o.worker) || !GetView(in, o.output) ||
      !GetView(in, o.error) || !GetVarint(in, count) || count > in.size()) {
    return false;
  }
  errors.resize(count);
  for (AttemptError& e : errors) {
    if (!GetInt(in, e.attempt) || !GetString(in, e.worker) || !GetString(in, e.error)) return false;
  }
  o.errors = errors;
  return true;
}

bool GetMutable(std::string_view& in, TaskRecord& r) {
  Outcome o;
  if (!GetOutcome(in, o, r.errors)) return false;
  r.state = o.state;
  r.attempts = o.attempts;
  r.worker.assign(o.worker);
  r.output.assign(o.output);
  r.error.assign(o.error);
  return GetSigned(in, r.started_ms) && GetSigned(in, r.ended_ms);
}

std::size_t SubmittedBound(const TaskRecord& r) {
  std::size_t n = r.payload.size() + r.session.size() + r.key.size() + 8 * kVarint;
  for (const std::string& skill : r.skills) n += kVarint + skill.size();
  return n;
}

char* PutSubmitted(char* p, const TaskRecord& r) {
  p = Varint(p, r.skills.size());
  for (const std::string& skill : r.skills) p = String(p, skill);
  p = String(p, r.payload);
  p = Signed(p, r.priority);
  p = Signed(p, r.timeout_ms);
  p = Signed(p, r.max_attempts);
  p = String(p, r.session);
  p = String(p, r.key);
  return Signed(p, r.created_ms);
}

bool GetSubmitted(std::string_view& in, TaskRecord& r) {
  uint64_t skills;
  if (!GetVarint(in, skills) || skills > in.size()) return false;
  r.skills.resize(skills);
  for (std::string& s : r.skills) {
    if (!GetString(in, s)) return false;
  }
  return GetString(in, r.payload) && GetSigned(in, r.priority) && GetSigned(in, r.timeout_ms) &&
         GetInt(in, r.max_attempts) && GetString(in, r.session) && GetString(in, r.key) &&
         GetSigned(in, r.created_ms);
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
  to.usage = from.usage;
}

void EncodeChange(std::string& out, ChangeOp op, const TaskRecord& r) {
  if (op == ChangeOp::kErase) {
    EncodeErase(out, r.id);
    return;
  }
  const bool insert = op == ChangeOp::kInsert;
  // Format 1 when there is nothing of format 2 to say: most tasks.
  const uint64_t ext = ExtFlags(r, insert);
  Reserved space(out, 1 + kVarint + MutableBound(r) + (insert ? SubmittedBound(r) : 0) +
                          (ext ? ExtBound(r) : 0));
  char* p = Byte(space.begin(), static_cast<uint8_t>(op) | (ext ? kExtended : 0));
  p = Varint(p, r.id);
  if (insert) p = PutSubmitted(p, r);
  p = PutMutable(p, r);
  if (ext) p = PutExt(p, r, ext);
  space.Finish(p);
}

void EncodeEnded(std::string& out, const TaskRecord& r) {
  Reserved space(out, kVarint + MutableBound(r) + SubmittedBound(r) + ExtBound(r));
  char* p = Varint(space.begin(), r.id);
  p = PutMutable(p, r);
  p = PutSubmitted(p, r);
  space.Finish(PutExt(p, r, ExtFlags(r, true)));  // one byte (0) for most tasks
}

bool DecodeEnded(std::string_view& in, TaskRecord& r) {
  r.has_backoff = false;
  r.parent = 0;
  return GetVarint(in, r.id) && r.id != 0 && GetMutable(in, r) && GetSubmitted(in, r) &&
         GetExt(in, &r);
}

bool DecodeEndedOutcome(std::string_view in, Outcome& out, std::vector<AttemptError>& errors) {
  return GetVarint(in, out.id) && out.id != 0 && GetOutcome(in, out, errors);
}

void EncodeErase(std::string& out, TaskId id) {
  Reserved space(out, 1 + kVarint);
  space.Finish(Varint(Byte(space.begin(), static_cast<uint8_t>(ChangeOp::kErase)), id));
}

namespace {

// The op byte: the op, and whether an extension follows (never on kErase).
bool GetOp(std::string_view& in, ChangeOp& op, bool& extended) {
  if (in.empty()) return false;
  const auto raw = static_cast<uint8_t>(in.front());
  in.remove_prefix(1);
  extended = raw & kExtended;
  const uint8_t code = raw & ~kExtended;
  if (code < 1 || code > 3 || (extended && code == 3)) return false;
  op = static_cast<ChangeOp>(code);
  return true;
}

}  // namespace

bool DecodeChange(std::string_view& in, ChangeOp& op, TaskRecord& r) {
  bool extended;
  if (!GetOp(in, op, extended)) return false;
  if (!GetVarint(in, r.id) || r.id == 0) return false;
  if (op == ChangeOp::kErase) return true;
  if (op == ChangeOp::kInsert) {
    r.parent = 0;
    if (!GetSubmitted(in, r)) return false;
  }
  if (!GetMutable(in, r)) return false;
  if (extended) return GetExt(in, &r);
  r.usage = TaskUsage{};
  return true;
}

namespace {

// Reads the op and the id, then skips a kInsert's submitted fields.
bool GetHead(std::string_view& in, ChangeOp& op, bool& extended, TaskId& id) {
  if (!GetOp(in, op, extended)) return false;
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

bool SkipChange(std::string_view& in, ChangeOp& op, TaskId& id) {
  bool extended;
  if (!GetHead(in, op, extended, id)) return false;
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
  return SkipVarints(in, 2) && (!extended || GetExt(in, nullptr));
}

void AddPendingChange(PendingChanges& changes, ChangeOp op, TaskRecord&& rec,
                      InsertThenErase insert_then_erase) {
  auto [it, fresh] = changes.try_emplace(rec.id);
  PendingChange& p = it->second;
  switch (op) {
    case ChangeOp::kInsert:
      p.op = ChangeOp::kInsert;
      p.rec = std::move(rec);
      break;
    case ChangeOp::kUpdate:
      if (fresh) {
        p.op = ChangeOp::kUpdate;
        p.rec = std::move(rec);
      } else if (p.op != ChangeOp::kErase) {
        CopyMutableFields(rec, p.rec);  // a pending insert takes the new state along
      }
      break;
    case ChangeOp::kErase:
      if (!fresh && p.op == ChangeOp::kInsert && insert_then_erase == InsertThenErase::kDrop) {
        changes.erase(it);
        break;
      }
      p.op = ChangeOp::kErase;
      p.rec = TaskRecord{};
      p.rec.id = it->first;
      break;
  }
}

}  // namespace pincer
