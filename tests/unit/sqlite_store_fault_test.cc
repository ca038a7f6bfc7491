// The SQLite store on a failing disk (docs/durability.md, "When the store
// fails"), with the faults injected under the journal
// (support/faulty_file_system.h): a commit that fails is reported and its
// changes stay pending, nothing committed is lost, and commits work again
// once the disk does, also across a power cut.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "store/sqlite_store.h"
#include "support/faulty_file_system.h"
#include "support/temp_dir.h"

namespace pincer {
namespace {

using test::FaultyFileSystem;
using test::TempDir;
using Op = FaultyFileSystem::Op;

TaskRecord MakeTask(TaskId id, std::size_t payload_bytes = 10) {
  TaskRecord r;
  r.id = id;
  r.skills = {"gpu"};
  r.payload = "\"" + std::string(payload_bytes, 'p') + "\"";
  r.max_attempts = 3;
  r.created_ms = 1'700'000'000'000 + static_cast<int64_t>(id);
  return r;
}

struct Fault {
  const char* name;
  Op op;
  int error;
  std::size_t partial;     // of a failing write
  std::size_t task_bytes;  // the failing commit's payload: large enough to need a new segment
};

void PrintTo(const Fault& f, std::ostream* os) { *os << f.name; }

class SqliteStoreFaultTest : public ::testing::TestWithParam<Fault> {
 protected:
  std::unique_ptr<SqliteStore> Open() {
    SqliteStoreOptions options;
    options.data_dir = dir_.Join("data");
    options.journal_bytes = 16 << 10;  // segments of 4 KiB
    options.files = &files_;
    Status st;
    auto store = SqliteStore::Open(options, clock_, st);
    EXPECT_TRUE(store) << st.message();
    return store;
  }
  // The tasks a store opened anew recovers, by id.
  std::vector<TaskRecord> Reopen() {
    auto store = Open();
    std::vector<TaskRecord> out;
    if (!store) return out;
    Status st = store->Recover([&](TaskRecord&& r) { out.push_back(std::move(r)); });
    EXPECT_TRUE(st.ok()) << st.message();
    return out;
  }
  static std::vector<TaskId> Ids(const std::vector<TaskRecord>& tasks) {
    std::vector<TaskId> out;
    for (const TaskRecord& t : tasks) out.push_back(t.id);
    return out;
  }

  TempDir dir_{"sqlite-store-fault"};
  ManualClock clock_;
  FaultyFileSystem files_;
};

TEST_P(SqliteStoreFaultTest, AFailedCommitIsReportedKeptAndWrittenOnceTheDiskWorks) {
  const Fault& fault = GetParam();
  {
    auto store = Open();
    ASSERT_TRUE(store);
    store->Insert(MakeTask(1));
    ASSERT_TRUE(store->Commit().ok());

    TaskRecord two = MakeTask(2, fault.task_bytes);
    store->Insert(two);
    TaskRecord one = MakeTask(1);
    one.state = TaskState::kRunning;
    one.attempts = 1;
    store->Update(one);
    files_.Fail(fault.op, fault.error, fault.partial);
    Status st = store->Commit();
    EXPECT_EQ(st.code(), "store_unavailable");
    EXPECT_NE(st.message().find(std::strerror(fault.error)), std::string::npos) << st.message();
    EXPECT_NE(st.message().find(dir_.Join("data")), std::string::npos) << st.message();
    EXPECT_TRUE(store->dirty()) << "the changes stay pending";
    EXPECT_EQ(store->Commit().code(), "store_unavailable") << "still failing";
    EXPECT_EQ(files_.failed(fault.op), 2);

    files_.Heal();
    ASSERT_TRUE(store->Commit().ok());
    EXPECT_FALSE(store->dirty());
    store->Insert(MakeTask(3));
    ASSERT_TRUE(store->Commit().ok());
  }
  // A power cut now loses nothing: every commit that succeeded was synced.
  files_.DropUnsynced();
  std::vector<TaskRecord> got = Reopen();
  ASSERT_EQ(Ids(got), (std::vector<TaskId>{1, 2, 3}));
  EXPECT_EQ(got[0].state, TaskState::kRunning);
  EXPECT_EQ(got[0].attempts, 1);
  EXPECT_EQ(got[1].payload, MakeTask(2, fault.task_bytes).payload);
}

TEST_P(SqliteStoreFaultTest, APowerCutAfterAFailedCommitKeepsWhatWasCommittedBefore) {
  const Fault& fault = GetParam();
  {
    auto store = Open();
    ASSERT_TRUE(store);
    store->Insert(MakeTask(1));
    ASSERT_TRUE(store->Commit().ok());
    store->Insert(MakeTask(2, fault.task_bytes));
    files_.Fail(fault.op, fault.error, fault.partial);
    EXPECT_EQ(store->Commit().code(), "store_unavailable");
  }
  files_.DropUnsynced();
  files_.Heal();
  // Task 2 was never accepted, so it may be gone; task 1 was, and is there.
  // What the failed commit left on disk does not keep the store from
  // opening.
  std::vector<TaskRecord> got = Reopen();
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got[0].id, 1u);
  EXPECT_LE(got.size(), 2u);
}

// The batches the daemon's writer thread takes (store/store.h): a failed
// write is given back, newer changes pile up behind it, and the retry
// writes them all in order.
TEST_P(SqliteStoreFaultTest, AFailedBatchIsGivenBackAndWrittenWithTheChangesAfterIt) {
  const Fault& fault = GetParam();
  {
    auto store = Open();
    ASSERT_TRUE(store);
    store->Insert(MakeTask(1));
    ASSERT_TRUE(store->Commit().ok());

    store->Insert(MakeTask(2, fault.task_bytes));
    auto batch = store->TakeBatch();
    files_.Fail(fault.op, fault.error, fault.partial);
    EXPECT_EQ(store->Write(*batch).code(), "store_unavailable");
    TaskRecord two = MakeTask(2, fault.task_bytes);
    two.state = TaskState::kSucceeded;
    two.output = "\"done\"";
    store->Update(two);
    store->Erase(1);
    store->GiveBack(std::move(batch));

    files_.Heal();
    batch = store->TakeBatch();
    ASSERT_TRUE(store->Write(*batch).ok());
    EXPECT_FALSE(store->dirty());
  }
  files_.DropUnsynced();
  std::vector<TaskRecord> got = Reopen();
  ASSERT_EQ(Ids(got), std::vector<TaskId>{2});
  EXPECT_EQ(got[0].state, TaskState::kSucceeded);
  EXPECT_EQ(got[0].output, "\"done\"");
}

INSTANTIATE_TEST_SUITE_P(
    Faults, SqliteStoreFaultTest,
    ::testing::Values(Fault{"DiskFullMidRecord", Op::kWrite, ENOSPC, 20, 100},
                      Fault{"WriteIoError", Op::kWrite, EIO, 0, 100},
                      Fault{"SyncIoError", Op::kSync, EIO, 0, 100},
                      Fault{"NoRoomForANewSegment", Op::kAllocate, ENOSPC, 0, 5000},
                      Fault{"NewSegmentNotSynced", Op::kSyncDir, EIO, 0, 5000}),
    [](const ::testing::TestParamInfo<Fault>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace pincer
