#include "store/sqlite_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "support/temp_dir.h"

namespace pincer {
namespace {

using test::TempDir;

TaskRecord MakeTask(TaskId id, std::string key = "") {
  TaskRecord r;
  r.id = id;
  r.skills = {"echo", "gpu"};
  r.payload = R"({"n":)" + std::to_string(id) + "}";
  r.priority = static_cast<int64_t>(id % 3);
  r.timeout_ms = 30000;
  r.max_attempts = 4;
  r.session = id % 2 ? "s1" : "";
  r.key = std::move(key);
  r.created_ms = 1'700'000'000'000 + static_cast<int64_t>(id);
  return r;
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  // `journal_bytes` 0 folds every journal row at the next commit.
  std::unique_ptr<SqliteStore> Open(
      Status* error = nullptr, std::size_t journal_bytes = SqliteStoreOptions{}.journal_bytes) {
    SqliteStoreOptions options;
    options.data_dir = dir_.Join("data");
    options.journal_bytes = journal_bytes;
    Status st;
    auto store = SqliteStore::Open(options, clock_, st);
    if (error) *error = st;
    return store;
  }
  std::vector<TaskRecord> Recover(SqliteStore& store) {
    std::vector<TaskRecord> out;
    Status st = store.Recover([&](TaskRecord&& r) { out.push_back(std::move(r)); });
    EXPECT_TRUE(st.ok()) << st.message();
    return out;
  }

  TempDir dir_{"sqlite-store"};
  ManualClock clock_;
};

TEST_F(SqliteStoreTest, RoundTripKeepsEveryField) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    TaskRecord a = MakeTask(1, "k1");
    store->Insert(a);
    store->Insert(MakeTask(2));
    store->Insert(MakeTask(3));
    ASSERT_TRUE(store->Commit().ok());
    EXPECT_FALSE(store->dirty());

    a.state = TaskState::kFailed;
    a.attempts = 2;
    a.worker = "w7";
    a.error = "boom \"quoted\"";
    a.errors = {{1, "w3", "lost"}, {2, "w7", "boom \"quoted\""}};
    a.started_ms = 5;
    a.ended_ms = 6;
    a.payload = "ignored: updates do not touch the payload";
    store->Update(a);
    store->Erase(2);
    ASSERT_TRUE(store->Commit().ok());
  }
  auto store = Open();
  ASSERT_TRUE(store);
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 2u);
  const TaskRecord& a = got[0];
  EXPECT_EQ(a.id, 1u);
  EXPECT_EQ(a.skills, (std::vector<std::string>{"echo", "gpu"}));
  EXPECT_EQ(a.payload, R"({"n":1})");
  EXPECT_EQ(a.priority, 1);
  EXPECT_EQ(a.timeout_ms, 30000);
  EXPECT_EQ(a.max_attempts, 4);
  EXPECT_EQ(a.session, "s1");
  EXPECT_EQ(a.key, "k1");
  EXPECT_EQ(a.state, TaskState::kFailed);
  EXPECT_EQ(a.attempts, 2);
  EXPECT_EQ(a.worker, "w7");
  EXPECT_EQ(a.error, "boom \"quoted\"");
  ASSERT_EQ(a.errors.size(), 2u);
  EXPECT_EQ(a.errors[1].attempt, 2);
  EXPECT_EQ(a.errors[1].worker, "w7");
  EXPECT_EQ(a.errors[1].error, "boom \"quoted\"");
  EXPECT_EQ(a.created_ms, 1'700'000'000'001);
  EXPECT_EQ(a.started_ms, 5);
  EXPECT_EQ(a.ended_ms, 6);
  EXPECT_EQ(got[1].id, 3u);
  EXPECT_EQ(got[1].session, "s1");
  EXPECT_EQ(got[1].key, "");
  EXPECT_EQ(got[1].state, TaskState::kQueued);
}

TEST_F(SqliteStoreTest, NothingWithoutCommit) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    store->Insert(MakeTask(1));
    ASSERT_TRUE(store->Commit().ok());
    TaskRecord r = MakeTask(1);
    r.state = TaskState::kRunning;
    store->Update(r);
    store->Insert(MakeTask(2));
    EXPECT_TRUE(store->dirty());
  }  // closed without Commit, like a crash between batches
  auto store = Open();
  ASSERT_TRUE(store);
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].state, TaskState::kQueued);
}

TEST_F(SqliteStoreTest, ChangesWithinABatchCoalesce) {
  auto store = Open();
  ASSERT_TRUE(store);
  TaskRecord r = MakeTask(1);
  store->Insert(r);
  r.state = TaskState::kSucceeded;
  r.output = R"("done")";
  store->Update(r);
  store->Insert(MakeTask(2));
  store->Erase(2);  // inserted and purged before any commit: never a task row
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(store->TaskRowsForTest(), 0);  // all still in the journal
  EXPECT_EQ(store->JournalFiles(), 1u);
  auto got = Recover(*store);
  EXPECT_EQ(store->TaskRowsForTest(), 1);
  EXPECT_EQ(store->JournalFiles(), 0u);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].state, TaskState::kSucceeded);
  EXPECT_EQ(got[0].output, R"("done")");
}

TEST_F(SqliteStoreTest, PurgedKeyCanBeTakenByANewerTask) {
  auto store = Open();
  ASSERT_TRUE(store);
  store->Insert(MakeTask(1, "same"));
  ASSERT_TRUE(store->Commit().ok());
  store->Insert(MakeTask(2, "same"));
  store->Erase(1);  // recorded after the insert, applied before it (id order)
  ASSERT_TRUE(store->Commit().ok());
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 2u);
}

TEST_F(SqliteStoreTest, CorruptFileIsRefusedByName) {
  std::filesystem::create_directories(dir_.Join("data"));
  const std::string path = dir_.Join("data/pincer.db");
  std::ofstream(path) << std::string(8192, 'x');
  Status st;
  auto store = Open(&st);
  EXPECT_FALSE(store);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(path), std::string::npos) << st.message();
}

TEST_F(SqliteStoreTest, ForeignDatabaseIsRefused) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
  }
  // A file from a future pincer: schema version 99.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.Join("data/pincer.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  Status st;
  EXPECT_FALSE(Open(&st));
  EXPECT_EQ(st.code(), "store_corrupt");
  EXPECT_NE(st.message().find("pincer.db"), std::string::npos) << st.message();
}

TEST_F(SqliteStoreTest, SecondOpenOfTheSameDirIsRefused) {
  auto first = Open();
  ASSERT_TRUE(first);
  Status st;
  EXPECT_FALSE(Open(&st));
  EXPECT_NE(st.message().find("pincer.db"), std::string::npos) << st.message();
}

TEST_F(SqliteStoreTest, UnwritableStoreKeepsChangesAndRecovers) {
  if (geteuid() == 0) GTEST_SKIP() << "root writes to read-only files";
  auto store = Open();
  ASSERT_TRUE(store);
  store->Insert(MakeTask(1));
  ASSERT_TRUE(store->Commit().ok());

  const std::string data = dir_.Join("data");
  ASSERT_EQ(chmod(data.c_str(), 0555), 0);
  store->Insert(MakeTask(2));
  Status st = store->Commit();
  EXPECT_EQ(st.code(), "store_unavailable");
  EXPECT_NE(st.message().find(data), std::string::npos) << st.message();
  EXPECT_TRUE(store->dirty());

  ASSERT_EQ(chmod(data.c_str(), 0755), 0);
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_FALSE(store->dirty());
  EXPECT_EQ(Recover(*store).size(), 2u);
}

TEST_F(SqliteStoreTest, FullDiskKeepsChangesAndRecovers) {
  auto store = Open();
  ASSERT_TRUE(store);
  store->Insert(MakeTask(1));
  ASSERT_TRUE(store->Commit().ok());
  store->FailWritesForTest(true);  // every write fails as on a full disk

  TaskRecord big = MakeTask(2);
  big.payload = "\"" + std::string(64 * 1024, 'p') + "\"";
  store->Insert(big);
  TaskRecord one = MakeTask(1);
  one.state = TaskState::kRunning;
  store->Update(one);
  Status st = store->Commit();
  EXPECT_EQ(st.code(), "store_unavailable");
  EXPECT_NE(st.message().find("No space left"), std::string::npos) << st.message();
  EXPECT_TRUE(store->dirty());
  EXPECT_EQ(store->Commit().code(), "store_unavailable");  // still full: still pending

  store->FailWritesForTest(false);
  ASSERT_TRUE(store->Commit().ok());
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].state, TaskState::kRunning);
  EXPECT_EQ(got[1].payload, big.payload);
}

TEST_F(SqliteStoreTest, ReadOnlyDirCannotBeOpened) {
  if (geteuid() == 0) GTEST_SKIP() << "root writes to read-only directories";
  const std::string data = dir_.Join("data");
  std::filesystem::create_directories(data);
  ASSERT_EQ(chmod(data.c_str(), 0555), 0);
  Status st;
  EXPECT_FALSE(Open(&st));
  chmod(data.c_str(), 0755);
  EXPECT_EQ(st.code(), "store_unavailable");
  EXPECT_NE(st.message().find("pincer.db"), std::string::npos) << st.message();
}

// Group commit: a batch is taken out and written while newer changes are
// recorded; a failed batch is given back under them.
TEST_F(SqliteStoreTest, ABatchWrittenWhileNewChangesArriveKeepsBoth) {
  auto store = Open();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->next_take(), 1u);
  store->Insert(MakeTask(1));
  auto batch = store->TakeBatch();
  EXPECT_FALSE(store->dirty());
  EXPECT_EQ(store->next_take(), 2u);  // the insert went with take 1
  TaskRecord one = MakeTask(1);
  one.state = TaskState::kSucceeded;  // the task moves on while its insert is written
  one.attempts = 1;
  store->Update(one);
  EXPECT_TRUE(store->dirty());
  store->Insert(MakeTask(2));
  ASSERT_TRUE(store->Write(*batch).ok());
  ASSERT_TRUE(store->Commit().ok());
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].state, TaskState::kSucceeded);
  EXPECT_EQ(got[0].attempts, 1);
  EXPECT_EQ(got[1].id, 2u);
}

// The daemon tells which write makes a change durable by the take that
// carried it: each TakeBatch and TakeInto counts one; a failed batch given
// back goes with a later take.
TEST_F(SqliteStoreTest, TakesAreNumberedInOrder) {
  auto store = Open();
  ASSERT_TRUE(store);
  store->Insert(MakeTask(1));
  EXPECT_EQ(store->next_take(), 1u);
  auto batch = store->TakeBatch();
  store->Insert(MakeTask(2));
  EXPECT_EQ(store->next_take(), 2u);
  store->TakeInto(*batch);  // task 2 joins the batch taken first
  EXPECT_EQ(store->next_take(), 3u);
  EXPECT_FALSE(store->dirty());
  store->GiveBack(std::move(batch));  // its write failed: pending again
  EXPECT_TRUE(store->dirty());
  EXPECT_EQ(store->next_take(), 3u);
  auto again = store->TakeBatch();
  EXPECT_EQ(store->next_take(), 4u);
  ASSERT_TRUE(store->Write(*again).ok());
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 2u);
}

TEST_F(SqliteStoreTest, ABatchReusedAfterItsWriteCarriesOnlyNewChanges) {
  auto store = Open();
  ASSERT_TRUE(store);
  store->Insert(MakeTask(1));
  store->Insert(MakeTask(2));
  auto first = store->TakeBatch();
  ASSERT_TRUE(store->Write(*first).ok());
  store->Reuse(std::move(first));
  TaskRecord two = MakeTask(2);
  two.state = TaskState::kFailed;
  store->Update(two);
  store->Insert(MakeTask(3));
  auto second = store->TakeBatch();  // in the buffers of the first
  EXPECT_FALSE(store->dirty());
  ASSERT_TRUE(store->Write(*second).ok());
  store->Reuse(std::move(second));
  store->Erase(1);
  auto third = store->TakeBatch();
  ASSERT_TRUE(store->Write(*third).ok());
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 2u) << "t1 erased; nothing written twice";
  EXPECT_EQ(got[0].id, 2u);
  EXPECT_EQ(got[0].state, TaskState::kFailed);
  EXPECT_EQ(got[1].id, 3u);
  EXPECT_EQ(got[1].state, TaskState::kQueued);
}

TEST_F(SqliteStoreTest, AFailedBatchGivenBackIsPendingUnderNewerChanges) {
  auto store = Open();
  ASSERT_TRUE(store);
  store->Insert(MakeTask(1));
  store->Insert(MakeTask(2));
  store->Insert(MakeTask(3));
  ASSERT_TRUE(store->Commit().ok());

  TaskRecord four = MakeTask(4);  // new: inserted, then updated after the take
  four.payload = "\"" + std::string(64 * 1024, 'p') + "\"";  // too big for the full disk
  store->Insert(four);
  store->Insert(MakeTask(5));  // new: inserted, then erased after the take
  TaskRecord two = MakeTask(2);
  two.state = TaskState::kRunning;
  store->Update(two);  // an update, superseded after the take
  store->Erase(3);
  store->FailWritesForTest(true);  // every write fails as on a full disk
  auto batch = store->TakeBatch();
  EXPECT_EQ(store->Write(*batch).code(), "store_unavailable");

  four.state = TaskState::kRunning;
  store->Update(four);
  store->Erase(5);
  two.state = TaskState::kSucceeded;
  store->Update(two);
  store->GiveBack(std::move(batch));
  EXPECT_TRUE(store->dirty());

  store->FailWritesForTest(false);
  ASSERT_TRUE(store->Commit().ok());
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 3u);  // 1, 2, 4: 3 erased, 5 never written
  EXPECT_EQ(got[0].id, 1u);
  EXPECT_EQ(got[1].id, 2u);
  EXPECT_EQ(got[1].state, TaskState::kSucceeded);
  EXPECT_EQ(got[2].id, 4u);
  EXPECT_EQ(got[2].state, TaskState::kRunning);
  EXPECT_EQ(got[2].payload, four.payload);
}

TEST_F(SqliteStoreTest, ErasingRunsOfConsecutiveTasksRemovesExactlyThose) {
  auto store = Open();
  ASSERT_TRUE(store);
  for (TaskId id = 1; id <= 10; ++id) store->Insert(MakeTask(id));
  ASSERT_TRUE(store->Commit().ok());
  for (TaskId id : {2, 3, 4, 5, 7, 9, 10}) store->Erase(id);  // runs 2..5 and 9..10, and 7
  ASSERT_TRUE(store->Commit().ok());
  std::vector<TaskId> left;
  for (const TaskRecord& r : Recover(*store)) left.push_back(r.id);
  EXPECT_EQ(left, (std::vector<TaskId>{1, 6, 8}));
}

// The journal: each commit appends a record to the current segment; once
// the journal is over its budget, the oldest complete segments are folded
// into pincer.db by the store's thread, and Recover folds them all.

// A task whose record fills a segment of its own (segments are 4 KiB with
// a journal budget of 0, or as large as the record).
TaskRecord BigTask(TaskId id) {
  TaskRecord r = MakeTask(id);
  r.payload = "\"" + std::string(5000, 'a' + static_cast<char>(id % 26)) + "\"";
  return r;
}

TEST_F(SqliteStoreTest, ACrashBeforeAnyFoldLosesNothing) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    store->Insert(MakeTask(1, "k1"));
    store->Insert(MakeTask(2));
    ASSERT_TRUE(store->Commit().ok());
    TaskRecord one = MakeTask(1, "k1");
    one.state = TaskState::kSucceeded;
    one.attempts = 1;
    one.worker = "w1";
    one.output = R"({"ok":true})";
    one.errors = {{1, "w2", "lost"}};
    one.started_ms = 5;
    one.ended_ms = 6;
    store->Update(one);
    store->Insert(MakeTask(3));
    store->Erase(2);
    ASSERT_TRUE(store->Commit().ok());
    EXPECT_EQ(store->TaskRowsForTest(), 0);
    EXPECT_EQ(store->JournalFiles(), 1u);
  }  // closed as by kill -9: nothing folded
  auto store = Open();
  ASSERT_TRUE(store);
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].id, 1u);
  EXPECT_EQ(got[0].key, "k1");
  EXPECT_EQ(got[0].skills, (std::vector<std::string>{"echo", "gpu"}));
  EXPECT_EQ(got[0].state, TaskState::kSucceeded);
  EXPECT_EQ(got[0].worker, "w1");
  EXPECT_EQ(got[0].output, R"({"ok":true})");
  ASSERT_EQ(got[0].errors.size(), 1u);
  EXPECT_EQ(got[0].errors[0].error, "lost");
  EXPECT_EQ(got[0].ended_ms, 6);
  EXPECT_EQ(got[1].id, 3u);
  EXPECT_EQ(store->JournalFiles(), 0u);
  // Commits after a recovery go on in a new segment.
  store->Erase(3);
  ASSERT_TRUE(store->Commit().ok());
  EXPECT_EQ(store->JournalFiles(), 1u);
  EXPECT_EQ(Recover(*store).size(), 1u);
}

TEST_F(SqliteStoreTest, SegmentsOverTheBudgetAreFoldedAndDeleted) {
  auto store = Open(nullptr, /*journal_bytes=*/0);
  ASSERT_TRUE(store);
  store->Insert(BigTask(1));
  ASSERT_TRUE(store->Commit().ok());
  store->WaitForFolds();
  EXPECT_EQ(store->TaskRowsForTest(), 0);  // the segment written to is not folded
  EXPECT_EQ(store->JournalFiles(), 1u);
  TaskRecord one = BigTask(1);
  one.state = TaskState::kRunning;
  store->Update(one);
  store->Insert(BigTask(2));
  ASSERT_TRUE(store->Commit().ok());  // a new segment: the first is complete
  store->WaitForFolds();
  EXPECT_EQ(store->TaskRowsForTest(), 1);
  EXPECT_EQ(store->JournalFiles(), 1u);
  store->Insert(BigTask(3));
  ASSERT_TRUE(store->Commit().ok());
  store->WaitForFolds();
  EXPECT_EQ(store->TaskRowsForTest(), 2);
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].state, TaskState::kRunning);
  EXPECT_EQ(got[0].payload, BigTask(1).payload);
  EXPECT_EQ(store->TaskRowsForTest(), 3);
  EXPECT_EQ(store->JournalFiles(), 0u);
}

TEST_F(SqliteStoreTest, TasksErasedInANewerSegmentNeverBecomeRows) {
  auto store = Open(nullptr, /*journal_bytes=*/0);
  ASSERT_TRUE(store);
  store->Insert(BigTask(1));
  store->Insert(BigTask(2));
  ASSERT_TRUE(store->Commit().ok());  // segment 1
  TaskRecord one = BigTask(1);
  one.state = TaskState::kSucceeded;
  store->Update(one);
  store->Erase(2);
  store->Insert(BigTask(3));
  ASSERT_TRUE(store->Commit().ok());  // segment 2; folds 1: task 2 is erased in 2
  store->WaitForFolds();
  EXPECT_EQ(store->TaskRowsForTest(), 1);  // task 1 only
  store->Erase(1);
  store->Insert(BigTask(4));
  ASSERT_TRUE(store->Commit().ok());  // segment 3; folds 2: task 1 is erased in 3
  store->WaitForFolds();
  EXPECT_EQ(store->TaskRowsForTest(), 2);  // 1 (as folded from segment 1) and 3
  store->Insert(BigTask(5));
  ASSERT_TRUE(store->Commit().ok());  // segment 4; folds 3: task 1 deleted
  store->WaitForFolds();
  EXPECT_EQ(store->TaskRowsForTest(), 2);  // 3 and 4
  std::vector<TaskId> ids;
  for (const TaskRecord& r : Recover(*store)) ids.push_back(r.id);
  EXPECT_EQ(ids, (std::vector<TaskId>{3, 4, 5}));
}

TEST_F(SqliteStoreTest, ASegmentFoldedBeforeACrashIsNotAppliedAgain) {
  const std::string segment1 = dir_.Join("data/journal-000001.log");
  std::string saved;
  {
    auto store = Open(nullptr, /*journal_bytes=*/0);
    ASSERT_TRUE(store);
    store->Insert(BigTask(1));  // segment 1: task 1 queued
    ASSERT_TRUE(store->Commit().ok());
    std::ifstream in(segment1, std::ios::binary);
    saved.assign(std::istreambuf_iterator<char>(in), {});
    TaskRecord one = BigTask(1);
    one.state = TaskState::kSucceeded;
    store->Update(one);
    store->Insert(BigTask(2));
    ASSERT_TRUE(store->Commit().ok());  // segment 2; segment 1 folded
    store->Insert(BigTask(3));
    ASSERT_TRUE(store->Commit().ok());  // segment 3; segment 2 folded
    store->WaitForFolds();
    EXPECT_EQ(store->JournalFiles(), 1u);
  }
  // As if pincerd died after the fold's commit, before the file was deleted.
  std::ofstream(segment1, std::ios::binary) << saved;
  auto store = Open();
  ASSERT_TRUE(store);
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].state, TaskState::kSucceeded);  // not queued again
  EXPECT_EQ(store->JournalFiles(), 0u);
}

TEST_F(SqliteStoreTest, ARecordCutShortAtTheEndIsDroppedAndTheRestKept) {
  {
    auto store = Open(nullptr, /*journal_bytes=*/64 << 10);
    ASSERT_TRUE(store);
    store->Insert(MakeTask(1));
    ASSERT_TRUE(store->Commit().ok());
    store->Insert(MakeTask(2));
    ASSERT_TRUE(store->Commit().ok());
  }
  // Cut the second record in half, as a crash during its write would.
  const std::string segment = dir_.Join("data/journal-000001.log");
  std::string data;
  {
    std::ifstream in(segment, std::ios::binary);
    data.assign(std::istreambuf_iterator<char>(in), {});
  }
  const std::size_t end = data.find_last_not_of('\0') + 1;
  data.resize(end - 20);
  data.resize(end + 4096, '\0');
  std::ofstream(segment, std::ios::binary | std::ios::trunc) << data;
  auto store = Open();
  ASSERT_TRUE(store);
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 1u);
}

TEST_F(SqliteStoreTest, ADamagedSegmentBeforeTheLastIsRefusedByName) {
  {
    auto store = Open(nullptr, /*journal_bytes=*/64 << 20);
    ASSERT_TRUE(store);
    store->Insert(BigTask(1));
    ASSERT_TRUE(store->Commit().ok());
  }
  {
    auto store = Open();  // numbers new segments after the one on disk
    ASSERT_TRUE(store);
    store->Insert(MakeTask(2));
    ASSERT_TRUE(store->Commit().ok());
  }
  const std::string segment = dir_.Join("data/journal-000001.log");
  {
    std::fstream f(segment, std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(100);
    f << "damaged";
  }
  Status st;
  auto store = Open(&st);
  ASSERT_TRUE(store);
  Status recovered = store->Recover([](TaskRecord&&) {});
  EXPECT_EQ(recovered.code(), "store_corrupt");
  EXPECT_NE(recovered.message().find("journal-000001.log"), std::string::npos)
      << recovered.message();
  EXPECT_EQ(store->JournalFiles(), 2u);  // nothing deleted or repaired
}

TEST_F(SqliteStoreTest, AWholeRecordThatDoesNotDecodeIsRefusedByName) {
  { ASSERT_TRUE(Open()); }
  {
    SegmentWriter writer(dir_.Join("data"), 1, 4096);
    ASSERT_TRUE(writer.Append("\x01\xff").ok());  // an insert cut off after its op
    ASSERT_TRUE(writer.Sync().ok());
  }
  auto store = Open();
  ASSERT_TRUE(store);
  Status recovered = store->Recover([](TaskRecord&&) {});
  EXPECT_EQ(recovered.code(), "store_corrupt");
  EXPECT_NE(recovered.message().find("journal-000001.log"), std::string::npos)
      << recovered.message();
}

// A task row whose JSON columns hold the wrong types (a damaged or
// hand-edited pincer.db) is refused by name; reading it never throws.
TEST_F(SqliteStoreTest, ARowWithFieldsOfTheWrongTypeIsRefusedByName) {
  for (const char* errors : {R"([{"attempt":"one","worker":"w1","error":"x"}])",
                             R"([{"attempt":1,"worker":7}])", R"([{"attempt":1,"error":{"a":1}}])",
                             R"([{"attempt":-1}])", R"([{"attempt":4294967296}])"}) {
    SCOPED_TRACE(errors);
    {
      auto store = Open();
      ASSERT_TRUE(store);
      store->Insert(MakeTask(1));
      ASSERT_TRUE(store->Commit().ok());
      Recover(*store);  // folded: a task row
    }
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(dir_.Join("data/pincer.db").c_str(), &db), SQLITE_OK);
    sqlite3_stmt* q = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "UPDATE tasks SET errors = ?1 WHERE id = 1", -1, &q, nullptr),
              SQLITE_OK);
    sqlite3_bind_text(q, 1, errors, -1, SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(q), SQLITE_DONE);
    sqlite3_finalize(q);
    sqlite3_close(db);

    auto store = Open();
    ASSERT_TRUE(store);
    Status recovered = store->Recover([](TaskRecord&&) {});
    EXPECT_EQ(recovered.code(), "store_corrupt");
    EXPECT_NE(recovered.message().find("task row 1"), std::string::npos) << recovered.message();
    store.reset();
    std::filesystem::remove_all(dir_.Join("data"));
  }
}

TEST_F(SqliteStoreTest, AFailedCommitLeavesTheJournalAndTasksAsTheyWere) {
  auto store = Open(nullptr, /*journal_bytes=*/0);
  ASSERT_TRUE(store);
  store->Insert(BigTask(1));
  ASSERT_TRUE(store->Commit().ok());
  store->Insert(BigTask(2));
  store->FailWritesForTest(true);
  EXPECT_EQ(store->Commit().code(), "store_unavailable");
  EXPECT_EQ(store->Commit().code(), "store_unavailable");
  store->WaitForFolds();
  EXPECT_EQ(store->TaskRowsForTest(), 0);
  EXPECT_EQ(store->JournalFiles(), 1u);
  store->FailWritesForTest(false);
  ASSERT_TRUE(store->Commit().ok());
  store->WaitForFolds();
  EXPECT_EQ(store->TaskRowsForTest(), 1);
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].payload, BigTask(2).payload);
}

// Turns the tasks table of a schema-4 file back into schema 3's.
constexpr const char* kDropVersion4Columns = "ALTER TABLE tasks DROP COLUMN parent;";
// Turns the tasks table of a schema-4 file back into schema 1 or 2's.
constexpr const char* kDropVersion3Columns =
    "ALTER TABLE tasks DROP COLUMN parent; ALTER TABLE tasks DROP COLUMN usage_input; ALTER TABLE "
    "tasks DROP COLUMN usage_output; "
    "ALTER TABLE tasks DROP COLUMN usage_total; ALTER TABLE tasks DROP COLUMN usage_cost; "
    "ALTER TABLE tasks DROP COLUMN usage_model; ALTER TABLE tasks DROP COLUMN backoff_initial_ms; "
    "ALTER TABLE tasks DROP COLUMN backoff_max_ms; ALTER TABLE tasks DROP COLUMN backoff_jitter;";

TEST_F(SqliteStoreTest, UsageAndBackoffSurviveAReopenThroughJournalAndTable) {
  TaskRecord a = MakeTask(1);
  a.has_backoff = true;
  a.backoff = {60'000, 120'000, 0.5};
  a.usage = {100, 20, 120, 0.25, "m1"};
  TaskRecord b = MakeTask(2);
  {
    auto store = Open(nullptr, /*journal_bytes=*/0);  // folded into rows at once
    ASSERT_TRUE(store);
    store->Insert(a);
    store->Insert(b);
    ASSERT_TRUE(store->Commit().ok());
    a.usage.Add({10, 5, 15, 0.5, "m2"});
    a.state = TaskState::kSucceeded;
    store->Update(a);
    ASSERT_TRUE(store->Commit().ok());
    store->WaitForFolds();
  }
  {
    auto store = Open();
    ASSERT_TRUE(store);
    auto got = Recover(*store);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].usage, (TaskUsage{110, 25, 135, 0.75, "m2"}));
    EXPECT_TRUE(got[0].has_backoff);
    EXPECT_EQ(got[0].backoff, a.backoff);
    EXPECT_TRUE(got[1].usage.empty());
    EXPECT_FALSE(got[1].has_backoff);
    // Left in the journal this time (not folded before the reopen).
    b.usage = {1, 2, 3, 0, ""};
    store->Update(b);
    ASSERT_TRUE(store->Commit().ok());
  }
  auto store = Open();
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].usage, (TaskUsage{1, 2, 3, 0, ""}));
  EXPECT_EQ(got[0].usage.total, 135);
}

TEST_F(SqliteStoreTest, AParentSurvivesAReopenThroughJournalAndTable) {
  TaskRecord a = MakeTask(1);
  TaskRecord b = MakeTask(2);
  b.parent = 1;
  TaskRecord c = MakeTask(3);
  c.parent = 1;
  {
    auto store = Open(nullptr, /*journal_bytes=*/0);  // folded into rows at once
    ASSERT_TRUE(store);
    store->Insert(a);
    store->Insert(b);
    ASSERT_TRUE(store->Commit().ok());
    b.state = TaskState::kSucceeded;
    store->Update(b);
    ASSERT_TRUE(store->Commit().ok());
    store->WaitForFolds();
  }
  {
    auto store = Open();
    ASSERT_TRUE(store);
    store->Insert(c);  // left in the journal
    ASSERT_TRUE(store->Commit().ok());
  }
  auto store = Open();
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].parent, 0u);
  EXPECT_EQ(got[1].parent, 1u);
  EXPECT_EQ(got[1].state, TaskState::kSucceeded);
  EXPECT_EQ(got[2].parent, 1u);
}

TEST_F(SqliteStoreTest, AVersion3FileGainsTheParentColumnAndKeepsItsTasks) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    store->Insert(MakeTask(1));
    ASSERT_TRUE(store->Commit().ok());
    Recover(*store);  // folded: a task row
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.Join("data/pincer.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, (std::string(kDropVersion4Columns) + "PRAGMA user_version=3").c_str(),
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  auto store = Open();
  ASSERT_TRUE(store);
  TaskRecord child = MakeTask(2);
  child.parent = 1;
  store->Insert(child);
  ASSERT_TRUE(store->Commit().ok());
  auto got = Recover(*store);  // folds the insert into the new column
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].payload, MakeTask(1).payload);
  EXPECT_EQ(got[0].parent, 0u);
  EXPECT_EQ(got[1].parent, 1u);
}

TEST_F(SqliteStoreTest, AVersion2FileGainsTheUsageColumnsAndKeepsItsTasks) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    store->Insert(MakeTask(1));
    ASSERT_TRUE(store->Commit().ok());
    Recover(*store);  // folded: a task row
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.Join("data/pincer.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, (std::string(kDropVersion3Columns) + "PRAGMA user_version=2").c_str(),
                         nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  auto store = Open();
  ASSERT_TRUE(store);
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, MakeTask(1).payload);
  EXPECT_TRUE(got[0].usage.empty());
  got[0].usage = {5, 6, 11, 1.5, "m"};
  store->Update(got[0]);
  ASSERT_TRUE(store->Commit().ok());
  got = Recover(*store);  // folds the update into the new columns
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].usage, (TaskUsage{5, 6, 11, 1.5, "m"}));
}

TEST_F(SqliteStoreTest, AVersion1FileGainsMetaAndKeepsItsTasks) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    store->Insert(MakeTask(1));
    store->Insert(MakeTask(2));
    ASSERT_TRUE(store->Commit().ok());
    Recover(*store);  // folded: both are task rows
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir_.Join("data/pincer.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(
          db,
          (std::string(kDropVersion3Columns) + "DROP TABLE meta; PRAGMA user_version=1").c_str(),
          nullptr, nullptr, nullptr),
      SQLITE_OK)
      << sqlite3_errmsg(db);
  sqlite3_close(db);
  auto store = Open();
  ASSERT_TRUE(store);
  store->Erase(1);
  ASSERT_TRUE(store->Commit().ok());
  auto got = Recover(*store);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 2u);
}

// Every fsync policy commits to the journal and folds into pincer.db;
// they differ only in what is synced (a power cut is not testable here).
TEST_F(SqliteStoreTest, EveryFsyncPolicyKeepsCommitsAcrossAReopen) {
  for (FsyncPolicy policy : {FsyncPolicy::kAlways, FsyncPolicy::kInterval, FsyncPolicy::kOff}) {
    TempDir dir("sqlite-policy");
    SqliteStoreOptions options;
    options.data_dir = dir.Join("data");
    options.fsync = policy;
    options.journal_bytes = 0;
    Status st;
    {
      auto store = SqliteStore::Open(options, clock_, st);
      ASSERT_TRUE(store) << st.message();
      store->Insert(BigTask(1));
      ASSERT_TRUE(store->Commit().ok());
      clock_.Advance(std::chrono::seconds(1));  // an interval has passed
      store->Insert(BigTask(2));
      ASSERT_TRUE(store->Commit().ok());  // folds the first segment
      store->WaitForFolds();
      EXPECT_EQ(store->TaskRowsForTest(), 1);
    }
    auto store = SqliteStore::Open(options, clock_, st);
    ASSERT_TRUE(store) << st.message();
    std::vector<TaskRecord> got;
    ASSERT_TRUE(store->Recover([&](TaskRecord&& r) { got.push_back(std::move(r)); }).ok());
    EXPECT_EQ(got.size(), 2u) << static_cast<int>(policy);
  }
}

// ---- Id reservations (store.h, ReserveIds) ----

TEST_F(SqliteStoreTest, IdReservationsOutliveTheProcessWithoutAnyTask) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    Recover(*store);
    EXPECT_EQ(store->reserved_ids(), IdMarks{}) << "a new data_dir has none";
    ASSERT_TRUE(store->ReserveIds({100000, 100}).ok());
    ASSERT_TRUE(store->ReserveIds({200000, 100}).ok());
    // A task inserted and never committed (the crash between dispatch and
    // commit): it is gone, its id's block is not.
    store->Insert(MakeTask(150000));
  }
  auto store = Open();
  ASSERT_TRUE(store);
  EXPECT_TRUE(Recover(*store).empty());
  EXPECT_EQ(store->reserved_ids(), (IdMarks{200000, 100}));
  EXPECT_FALSE(std::filesystem::exists(dir_.Join("data/ids.tmp")));
}

TEST_F(SqliteStoreTest, AFailedReservationKeepsTheOldOne) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    Recover(*store);
    ASSERT_TRUE(store->ReserveIds({100000, 100}).ok());
    store->FailWritesForTest(true);
    Status st = store->ReserveIds({200000, 100});
    EXPECT_EQ(st.code(), "store_unavailable");
    EXPECT_EQ(store->reserved_ids(), (IdMarks{100000, 100}));
  }
  auto store = Open();
  Recover(*store);
  EXPECT_EQ(store->reserved_ids(), (IdMarks{100000, 100}));
}

TEST_F(SqliteStoreTest, ADamagedIdsFileIsRefusedByName) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    Recover(*store);
  }
  for (const char* text : {"tasks 12x\nworkers 1\n", "tasks 5\n", "garbage\n"}) {
    std::ofstream(dir_.Join("data/ids"), std::ios::trunc) << text;
    auto store = Open();
    ASSERT_TRUE(store);
    Status st = store->Recover([](TaskRecord&&) {});
    EXPECT_EQ(st.code(), "store_corrupt") << text;
    EXPECT_NE(st.message().find(dir_.Join("data/ids")), std::string::npos) << st.message();
  }
}

}  // namespace
}  // namespace pincer
