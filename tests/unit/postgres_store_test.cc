// The postgres store against a real PostgreSQL started for each test
// (tests/support/postgres_server.h).
#include "store/postgres_store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "store/postgres_lease.h"
#include "support/postgres_server.h"

namespace pincer {
namespace {

using test::PostgresServer;
using namespace std::string_literals;

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

void ExpectSameTask(const TaskRecord& a, const TaskRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.skills, b.skills);
  EXPECT_EQ(a.payload, b.payload);
  EXPECT_EQ(a.priority, b.priority);
  EXPECT_EQ(a.timeout_ms, b.timeout_ms);
  EXPECT_EQ(a.max_attempts, b.max_attempts);
  EXPECT_EQ(a.session, b.session);
  EXPECT_EQ(a.key, b.key);
  EXPECT_EQ(a.has_backoff, b.has_backoff);
  EXPECT_EQ(a.backoff, b.backoff);
  EXPECT_EQ(a.parent, b.parent);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.worker, b.worker);
  EXPECT_EQ(a.output, b.output);
  EXPECT_EQ(a.error, b.error);
  ASSERT_EQ(a.errors.size(), b.errors.size());
  for (std::size_t i = 0; i < a.errors.size(); ++i) {
    EXPECT_EQ(a.errors[i].attempt, b.errors[i].attempt);
    EXPECT_EQ(a.errors[i].worker, b.errors[i].worker);
    EXPECT_EQ(a.errors[i].error, b.errors[i].error);
  }
  EXPECT_EQ(a.created_ms, b.created_ms);
  EXPECT_EQ(a.started_ms, b.started_ms);
  EXPECT_EQ(a.ended_ms, b.ended_ms);
  EXPECT_EQ(a.usage.input, b.usage.input);
  EXPECT_EQ(a.usage.output, b.usage.output);
  EXPECT_EQ(a.usage.total, b.usage.total);
  EXPECT_EQ(a.usage.cost, b.usage.cost);
  EXPECT_EQ(a.usage.model, b.usage.model);
}

TEST(MaskPostgresUrlTest, HidesThePasswordOnly) {
  EXPECT_EQ(MaskPostgresUrl("postgresql://pincer:s3cret@db.example:5432/pincer"),
            "postgresql://pincer:****@db.example:5432/pincer");
  EXPECT_EQ(MaskPostgresUrl("postgres://pincer@db/pincer"), "postgres://pincer@db/pincer");
  EXPECT_EQ(MaskPostgresUrl("postgresql://db/pincer?user=p&password=s3cret&sslmode=require"),
            "postgresql://db/pincer?user=p&password=****&sslmode=require");
  EXPECT_EQ(MaskPostgresUrl("postgresql://u:p%40ss@host/db?password=x"),
            "postgresql://u:****@host/db?password=****");
  EXPECT_EQ(MaskPostgresUrl("postgresql:///postgres?host=/tmp/pg"),
            "postgresql:///postgres?host=/tmp/pg");
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PostgresServer::Available()) GTEST_SKIP() << PostgresServer::kMissing;
    ASSERT_TRUE(server_.Start());
  }

  std::unique_ptr<PostgresStore> Open(Status* error = nullptr) {
    PostgresStoreOptions options;
    options.url = server_.url();
    options.lease = std::chrono::seconds(4);
    Status st;
    auto store = PostgresStore::Open(options, st);
    if (error) *error = st;
    EXPECT_TRUE(store || error) << st.message();
    return store;
  }

  std::vector<TaskRecord> Recover(PostgresStore& store) {
    std::vector<TaskRecord> out;
    Status st = store.Recover([&](TaskRecord&& r) { out.push_back(std::move(r)); });
    EXPECT_TRUE(st.ok()) << st.message();
    return out;
  }

  PostgresServer server_;
};

TEST_F(PostgresStoreTest, RoundTripKeepsEveryFieldInSubmitOrder) {
  TaskRecord a = MakeTask(1, "k1");
  a.state = TaskState::kSucceeded;
  a.attempts = 2;
  a.worker = "w7";
  a.output = R"({"text":"h\"i","list":[1,2.5,null]})";
  a.error = "nul \0 inside, \"quotes\", back\\slash, ünïcode"s;
  a.errors = {{1, "w3", "boom"}, {2, "w7", "{not json"}};
  a.started_ms = 1'700'000'000'100;
  a.ended_ms = 1'700'000'000'200;
  a.usage = {120, 30, 150, 0.1 + 0.2, "model-x"};
  a.has_backoff = true;
  a.backoff = {250, 60000, 0.125};
  TaskRecord b = MakeTask(2);
  b.payload = "";  // null
  b.session = "s\0x"s;
  b.skills = {};
  TaskRecord c = MakeTask(3, "NULL");  // a key that reads like SQL's NULL
  c.parent = 1;                        // a subtask of a

  {
    auto store = Open();
    ASSERT_TRUE(store);
    EXPECT_TRUE(Recover(*store).empty());
    store->Insert(c);  // recorded out of order: recovered in id order
    store->Insert(a);
    store->Insert(b);
    EXPECT_TRUE(store->dirty());
    ASSERT_TRUE(store->Commit().ok());
    EXPECT_FALSE(store->dirty());
    EXPECT_EQ(store->TaskRowsForTest(), 3);
  }
  auto store = Open();
  ASSERT_TRUE(store);
  const std::vector<TaskRecord> got = Recover(*store);
  ASSERT_EQ(got.size(), 3u);
  ExpectSameTask(got[0], a);
  ExpectSameTask(got[1], b);
  ExpectSameTask(got[2], c);
}

TEST_F(PostgresStoreTest, UpdatesAndErasesThroughGroupCommit) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    for (TaskId id = 1; id <= 5; ++id) store->Insert(MakeTask(id, "key" + std::to_string(id)));
    // The writer thread's way: a batch taken, grown while it waits, written.
    std::unique_ptr<StoreBatch> batch = store->TakeBatch();
    TaskRecord running = MakeTask(2, "key2");
    running.state = TaskState::kRunning;
    running.attempts = 1;
    running.worker = "w1";
    running.started_ms = 5;
    store->Update(running);
    store->TakeInto(*batch);
    EXPECT_EQ(store->next_take(), 3u);
    ASSERT_TRUE(store->Write(*batch).ok());
    store->Reuse(std::move(batch));

    TaskRecord done = running;
    done.state = TaskState::kSucceeded;
    done.output = "42";
    done.ended_ms = 9;
    done.usage = {1, 2, 3, 0.5, "m"};
    store->Update(done);
    store->Erase(4);
    store->Erase(5);
    // A purged task's key is free for a newer task in the same batch.
    store->Insert(MakeTask(6, "key4"));
    batch = store->TakeBatch();
    ASSERT_TRUE(store->Write(*batch).ok());
  }
  auto store = Open();
  ASSERT_TRUE(store);
  const std::vector<TaskRecord> got = Recover(*store);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0].id, 1u);
  EXPECT_EQ(got[1].id, 2u);
  EXPECT_EQ(got[1].state, TaskState::kSucceeded);
  EXPECT_EQ(got[1].output, "42");
  EXPECT_EQ(got[1].worker, "w1");
  EXPECT_EQ(got[1].usage.model, "m");
  EXPECT_EQ(got[1].key, "key2");
  EXPECT_EQ(got[2].id, 3u);
  EXPECT_EQ(got[3].id, 6u);
  EXPECT_EQ(got[3].key, "key4");
}

// A write whose answer was lost with the connection may have committed.
// The daemon gives it back and writes it again with what came since: a
// task it dropped meanwhile (a refused submit is forgotten) must not stay.
TEST_F(PostgresStoreTest, ABatchWrittenAgainAfterALostAnswerLeavesNoDroppedTask) {
  auto store = Open();
  ASSERT_TRUE(store);
  store->Insert(MakeTask(1, "kept"));
  store->Insert(MakeTask(2, "dropped"));
  std::unique_ptr<StoreBatch> batch = store->TakeBatch();
  ASSERT_TRUE(store->Write(*batch).ok());  // committed, but the daemon heard a failure
  store->GiveBack(std::move(batch));
  store->Erase(2);
  batch = store->TakeBatch();
  ASSERT_TRUE(store->Write(*batch).ok());
  EXPECT_EQ(store->TaskRowsForTest(), 1);
  store.reset();

  store = Open();
  ASSERT_TRUE(store);
  const std::vector<TaskRecord> got = Recover(*store);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].key, "kept");
}

TEST_F(PostgresStoreTest, IdReservationOutlivesTheStore) {
  {
    auto store = Open();
    ASSERT_TRUE(store);
    EXPECT_TRUE(Recover(*store).empty());
    EXPECT_EQ(store->reserved_ids(), IdMarks{});
    ASSERT_TRUE(store->ReserveIds({100000, 100}).ok());
    ASSERT_TRUE(store->ReserveIds({200000, 100}).ok());
  }
  auto store = Open();
  ASSERT_TRUE(store);
  Recover(*store);
  EXPECT_EQ(store->reserved_ids(), (IdMarks{200000, 100}));
}

TEST_F(PostgresStoreTest, AServerThatWentAwayFailsWritesAndLosesNothing) {
  auto store = Open();
  ASSERT_TRUE(store);
  store->Insert(MakeTask(1));
  ASSERT_TRUE(store->Commit().ok());

  ASSERT_TRUE(server_.Stop());
  store->Insert(MakeTask(2));
  std::unique_ptr<StoreBatch> batch = store->TakeBatch();
  Status st = store->Write(*batch);
  EXPECT_EQ(st.code(), "store_unavailable");
  EXPECT_NE(st.message().find(server_.url()), std::string::npos) << st.message();
  // The daemon gives a failed batch back, under what came since.
  store->GiveBack(std::move(batch));
  store->Insert(MakeTask(3));
  EXPECT_EQ(store->Commit().code(), "store_unavailable");
  EXPECT_TRUE(store->dirty());
  EXPECT_EQ(store->ReserveIds({100000, 100}).code(), "store_unavailable");

  // Back: the next write connects again and writes everything pending.
  ASSERT_TRUE(server_.Start());
  batch = store->TakeBatch();
  st = store->Write(*batch);
  ASSERT_TRUE(st.ok()) << st.message();
  ASSERT_TRUE(store->ReserveIds({100000, 100}).ok());
  store.reset();

  store = Open();
  ASSERT_TRUE(store);
  const std::vector<TaskRecord> got = Recover(*store);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].id, 1u);
  EXPECT_EQ(got[1].id, 2u);
  EXPECT_EQ(got[2].id, 3u);
  EXPECT_EQ(store->reserved_ids(), (IdMarks{100000, 100}));
}

TEST_F(PostgresStoreTest, OpeningFailsClearly) {
  // Nothing listens there; the message names the url, password masked.
  PostgresStoreOptions options;
  options.url = "postgresql://pincer:s3cret@/postgres?host=/nonexistent&connect_timeout=2";
  Status st;
  EXPECT_FALSE(PostgresStore::Open(options, st));
  EXPECT_EQ(st.code(), "store_unavailable");
  EXPECT_NE(st.message().find("postgresql://pincer:****@/postgres?host=/nonexistent"),
            std::string::npos)
      << st.message();
  EXPECT_EQ(st.message().find("s3cret"), std::string::npos) << st.message();
}

// Two pincerd on one database (docs/high-availability.md): the lease is
// one holder's at a time, and a write fenced by a lease taken over since
// changes nothing.
TEST_F(PostgresStoreTest, TheLeaseHasOneHolderAndFencesTheWritesOfAFormerOne) {
  auto first = Open();
  ASSERT_TRUE(first);
  auto second = Open();  // several pincerd may open the tables
  ASSERT_TRUE(second);
  Recover(*first);

  PostgresLease a(server_.url(), "a", "127.0.0.1:1", std::chrono::seconds(60));
  PostgresLease b(server_.url(), "b", "127.0.0.1:2", std::chrono::seconds(60));
  PostgresLease::View view;
  ASSERT_TRUE(a.Acquire(view).ok());
  const int64_t epoch = view.epoch;
  ASSERT_GT(epoch, 0);
  ASSERT_TRUE(b.Acquire(view).ok());
  EXPECT_EQ(view.epoch, 0);
  EXPECT_EQ(view.leader, "127.0.0.1:1");  // b is a standby; it names a
  EXPECT_TRUE(a.Renew(epoch).ok());
  EXPECT_EQ(b.Renew(epoch).code(), "lease_lost");  // not b's

  first->SetFence("a", epoch);
  first->Insert(MakeTask(1));
  ASSERT_TRUE(first->Commit().ok());
  ASSERT_TRUE(first->ReserveIds({1000, 10}).ok());

  // a's lease runs out (as if it had been paused) and b takes it.
  ASSERT_TRUE(server_.Sql("UPDATE pincer_lease SET expires_at = now() - interval '1 second'"));
  ASSERT_TRUE(b.Acquire(view).ok());
  EXPECT_EQ(view.epoch, epoch + 1);
  EXPECT_EQ(a.Renew(epoch).code(), "lease_lost");

  // a's writes fail, in whole, and stay pending.
  first->Insert(MakeTask(2));
  Status st = first->Commit();
  EXPECT_EQ(st.code(), "lease_lost") << st.message();
  EXPECT_TRUE(first->dirty());
  std::unique_ptr<StoreBatch> batch = first->TakeBatch();
  EXPECT_EQ(first->Write(*batch).code(), "lease_lost");
  EXPECT_EQ(first->ReserveIds({2000, 20}).code(), "lease_lost");
  EXPECT_EQ(first->TaskRowsForTest(), 1);
  Recover(*second);
  EXPECT_EQ(second->reserved_ids(), (IdMarks{1000, 10}));

  // b's store writes under b's lease; a clean stop lets it go at once.
  second->SetFence("b", epoch + 1);
  second->Insert(MakeTask(2));
  EXPECT_TRUE(second->Commit().ok());
  EXPECT_EQ(second->TaskRowsForTest(), 2);
  b.Release(epoch + 1);
  ASSERT_TRUE(a.Acquire(view).ok());
  EXPECT_EQ(view.epoch, epoch + 2);
}

TEST_F(PostgresStoreTest, TablesOfANewerPincerAreRefused) {
  ASSERT_TRUE(Open());  // creates the tables
  ASSERT_TRUE(server_.Sql("UPDATE pincer_schema SET version = 99"));
  Status st;
  EXPECT_FALSE(Open(&st));
  EXPECT_EQ(st.code(), "store_corrupt") << st.message();
  EXPECT_NE(st.message().find("pincer_schema"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace pincer
