// How long recovery takes: fills <dir> with N tasks through the SqliteStore
// (the mix a long-running pincerd leaves behind: mostly ended tasks with
// results, some queued, a few that were running; all folded into pincer.db
// but the journal's last 64 MiB), then times Store::Recover alone (which
// folds that journal first). Starting pincerd on the same dir then times the
// whole start (Recover + Dispatcher::Restore):
//
//   build/store_recovery DIR [N]
//   time build/pincerd --config <yaml with data_dir: DIR> (see docs/benchmarks.md)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/clock.h"
#include "store/sqlite_store.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: store_recovery DIR [N]\n");
    return 2;
  }
  using Clock = std::chrono::steady_clock;
  const long n = argc > 2 ? std::atol(argv[2]) : 1'000'000;
  pincer::SystemClock clock;
  pincer::SqliteStoreOptions options;
  options.data_dir = argv[1];
  options.fsync = pincer::FsyncPolicy::kOff;  // filling is not what is measured
  {
    pincer::Status st;
    auto store = pincer::SqliteStore::Open(options, clock, st);
    if (!store) {
      std::fprintf(stderr, "%s\n", st.message().c_str());
      return 1;
    }
    const auto t0 = Clock::now();
    for (long i = 1; i <= n; ++i) {
      pincer::TaskRecord r;
      r.id = static_cast<pincer::TaskId>(i);
      r.skills = {"echo"};
      r.payload = "\"payload of task " + std::to_string(i) + " with some text in it\"";
      r.timeout_ms = 600000;
      r.created_ms = 1'764'000'000'000 + i;
      if (i % 10 == 0) {
        r.state = pincer::TaskState::kQueued;
      } else if (i % 100 == 1) {
        r.state = pincer::TaskState::kRunning;
        r.attempts = 1;
        r.worker = "w3";
        r.started_ms = r.created_ms + 5;
      } else {
        r.state = pincer::TaskState::kSucceeded;
        r.attempts = 1;
        r.worker = "w3";
        r.output = r.payload;
        r.started_ms = r.created_ms + 5;
        r.ended_ms = r.created_ms + 50;
      }
      store->Insert(r);
      if (i % 10000 == 0 && !store->Commit().ok()) return 1;
    }
    if (!store->Commit().ok()) return 1;
    std::printf("wrote %ld tasks in %.2f s\n", n,
                std::chrono::duration<double>(Clock::now() - t0).count());
    // As a running pincerd leaves it: all but the journal's budget folded.
    store->WaitForFolds();
    std::printf("journal files left: %zu\n", store->JournalFiles());
  }
  pincer::Status st;
  auto store = pincer::SqliteStore::Open(options, clock, st);
  if (!store) return 1;
  const auto t0 = Clock::now();
  long rows = 0;
  st = store->Recover([&](pincer::TaskRecord&&) { ++rows; });
  std::printf("Store::Recover: %ld tasks in %.3f s (%s)\n", rows,
              std::chrono::duration<double>(Clock::now() - t0).count(),
              st.ok() ? "ok" : st.message().c_str());
  return st.ok() ? 0 : 1;
}
