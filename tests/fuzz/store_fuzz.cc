// Fuzz target: the store's decoders (store/change_codec, journal_file,
// sqlite_store recovery). The input's first byte picks what it is:
//   0: encoded changes and ended records, decoded in memory: a decode
//      either fails or gives a record that encodes and decodes back to
//      itself, and skipping a change agrees with decoding it;
//   1: the bytes of a journal segment on disk, recovered by a fresh
//      SqliteStore;
//   2: records (a 2-byte length, then the payload) appended to a segment
//      with valid checksums, so that recovery decodes the payloads;
//   3: the text columns of a row in pincer.db (skills, errors, state, one
//      per line), read back by recovery.
// Recovery from any bytes either refuses (store_corrupt) or gives records;
// it never crashes.
#include <dirent.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "store/change_codec.h"
#include "store/journal_file.h"
#include "store/sqlite_store.h"

namespace pincer {
namespace {

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "%s\n", what);
  std::abort();
}

void CheckChanges(std::string_view in) {
  while (!in.empty()) {
    std::string_view decoded = in, skipped = in;
    ChangeOp op, skip_op;
    TaskRecord rec;
    TaskId skip_id = 0;
    const bool decode_ok = DecodeChange(decoded, op, rec);
    const bool skip_ok = SkipChange(skipped, skip_op, skip_id);
    if (!decode_ok) return;
    if (!skip_ok) Fail("SkipChange refuses a change DecodeChange reads");
    if (skip_op != op || skip_id != rec.id || skipped.size() != decoded.size()) {
      Fail("SkipChange and DecodeChange disagree");
    }
    // What was read encodes and reads back to the same.
    if (op != ChangeOp::kErase) {
      std::string once;
      EncodeChange(once, op, rec);
      std::string_view again_in = once;
      ChangeOp again_op;
      TaskRecord again;
      if (!DecodeChange(again_in, again_op, again) || again_op != op || !again_in.empty()) {
        Fail("an encoded change does not decode");
      }
      std::string twice;
      EncodeChange(twice, again_op, again);
      if (once != twice) Fail("a change does not survive encode and decode");
    }
    in = decoded;
  }
}

void CheckEnded(std::string_view in) {
  std::string_view rest = in;
  TaskRecord rec;
  if (!DecodeEnded(rest, rec)) return;
  Outcome out;
  std::vector<AttemptError> errors;
  if (!DecodeEndedOutcome(in, out, errors))
    Fail("DecodeEndedOutcome refuses what DecodeEnded reads");
  if (out.id != rec.id || out.state != rec.state || out.attempts != rec.attempts ||
      out.worker != rec.worker || out.output != rec.output || out.error != rec.error ||
      out.errors.size() != rec.errors.size()) {
    Fail("DecodeEndedOutcome and DecodeEnded disagree");
  }
  std::string once;
  EncodeEnded(once, rec);
  std::string_view again_in = once;
  TaskRecord again;
  if (!DecodeEnded(again_in, again) || !again_in.empty())
    Fail("an encoded ended record does not decode");
  std::string twice;
  EncodeEnded(twice, again);
  if (once != twice) Fail("an ended record does not survive encode and decode");
}

const std::string& Dir() {
  static const std::string dir = [] {
    const char* base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    std::string t = std::string(base) + "/pincer-store-fuzz-XXXXXX";
    if (!mkdtemp(t.data())) Fail("cannot make a temporary directory");
    return t;
  }();
  return dir;
}

void EmptyDir(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(d);
  for (const auto& name : names) ::unlink((dir + "/" + name).c_str());
}

void InsertRow(std::string_view text) {
  std::string_view cols[3] = {"[]", "[]", "queued"};
  for (auto& col : cols) {
    if (text.empty()) break;
    const std::size_t nl = text.find('\n');
    col = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  }
  sqlite3* db = nullptr;
  if (sqlite3_open((Dir() + "/pincer.db").c_str(), &db) != SQLITE_OK) Fail("cannot open pincer.db");
  sqlite3_stmt* q = nullptr;
  const char* sql =
      "INSERT INTO tasks (id, seq, skills, priority, timeout_ms, max_attempts, state, attempts, "
      "errors, created_ms, started_ms, ended_ms) VALUES (1, 1, ?1, 0, 0, 3, ?3, 0, ?2, 1, 0, 0)";
  if (sqlite3_prepare_v2(db, sql, -1, &q, nullptr) != SQLITE_OK) Fail(sqlite3_errmsg(db));
  for (int i = 0; i < 3; ++i) {
    sqlite3_bind_text(q, i + 1, cols[i].data(), static_cast<int>(cols[i].size()), SQLITE_TRANSIENT);
  }
  if (sqlite3_step(q) != SQLITE_DONE) Fail(sqlite3_errmsg(db));
  sqlite3_finalize(q);
  sqlite3_close(db);
}

void Recover() {
  SystemClock clock;
  SqliteStoreOptions options;
  options.data_dir = Dir();
  options.fsync = FsyncPolicy::kOff;
  Status error;
  auto store = SqliteStore::Open(options, clock, error);
  if (!store) return;
  Status st = store->Recover([](TaskRecord&& r) {
    if (r.id == 0) Fail("recovery gave a task with id 0");
  });
  (void)st;
}

}  // namespace
}  // namespace pincer

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pincer;
  if (size == 0) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 4) {
    case 0:
      CheckChanges(in);
      CheckEnded(in);
      return 0;
    case 1: {
      EmptyDir(Dir());
      FILE* f = std::fopen(SegmentPath(Dir(), 1).c_str(), "wb");
      if (!f) Fail("cannot write a segment");
      std::fwrite(in.data(), 1, in.size(), f);
      std::fclose(f);
      Recover();
      return 0;
    }
    case 3: {
      EmptyDir(Dir());
      {
        SystemClock clock;
        SqliteStoreOptions options;
        options.data_dir = Dir();
        options.fsync = FsyncPolicy::kOff;
        Status error;
        if (!SqliteStore::Open(options, clock, error)) Fail("cannot create pincer.db");
      }
      InsertRow(in);
      Recover();
      return 0;
    }
    default: {
      EmptyDir(Dir());
      {
        SegmentWriter writer(Dir(), 1, 4096);
        std::string_view rest = in;
        while (rest.size() >= 2) {
          const std::size_t len =
              static_cast<unsigned char>(rest[0]) | (static_cast<unsigned char>(rest[1]) << 8);
          rest.remove_prefix(2);
          const std::string_view payload = rest.substr(0, len);
          rest.remove_prefix(payload.size());
          if (payload.empty()) continue;  // a zero length ends a segment
          if (!writer.Append(payload).ok()) Fail("cannot append a record");
        }
      }
      Recover();
      return 0;
    }
  }
}
