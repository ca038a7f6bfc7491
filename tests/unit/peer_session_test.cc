// One connection's session (src/daemon/peer_session.h): the hello
// handshake, what each role may send, and the refusals that close a
// connection. Real sockets (a connected pair) and a real dispatcher on a
// memory store and a manual clock; the answers pincerd would send through
// the answer gate land in a FakeOutbox.
#include "daemon/peer_session.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>

#include "store/memory_store.h"
#include "support/fake_outbox.h"

namespace pincer {
namespace {

using nlohmann::json;
using Peer = asio::local::stream_protocol::socket;

class PeerSessionsTest : public ::testing::Test {
 protected:
  PeerSessionsTest() {
    config_.store.kind = StoreKind::kMemory;
    config_.auth.worker_token = "wt";
    config_.auth.client_token = "ct";
    config_.heartbeat.interval = std::chrono::hours(1);
    Start();
  }

  void Start() {
    dispatcher_ = std::make_unique<Dispatcher>(config_, store_, clock_, out_);
    api_ = std::make_unique<ClientApi>(*dispatcher_, out_, ClientApi::Hooks{});
    PeerSessions::Hooks hooks;
    hooks.changed = [] {};
    hooks.bind_worker = [this](const std::string& spawn_id, ConnId) -> std::optional<std::string> {
      spawn_ids_.push_back(spawn_id);
      if (spawn_id == "sp-1") return std::string("pool-a");
      return std::nullopt;
    };
    hooks.closed = [this](ConnId id, PeerSessions::Role role) { closed_[id] = role; };
    hooks.held = [](ConnId) { return std::size_t{0}; };
    sessions_ = std::make_unique<PeerSessions>(io_, config_, held_clock_, *dispatcher_, *api_, out_,
                                               std::move(hooks));
  }

  // A new connection: pincerd's end goes to the sessions (id 1, 2, ...),
  // the test keeps the other.
  Peer Connect() {
    Peer ours(io_), theirs(io_);
    asio::local::connect_pair(ours, theirs);
    sessions_->Accept(Connection::Socket(io_, asio::generic::stream_protocol(AF_UNIX, SOCK_STREAM),
                                         theirs.release()),
                      nullptr);
    return ours;
  }
  static void Say(Peer& peer, const std::string& line) {
    asio::write(peer, asio::buffer(line + "\n"));
  }
  // Runs the loop until `done` holds (or a generous cap passes: a failure).
  template <typename Done>
  bool RunUntil(Done&& done) {
    const auto cap = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done() && std::chrono::steady_clock::now() < cap) {
      io_.run_one_for(std::chrono::milliseconds(50));
    }
    return done();
  }
  // The messages the sessions sent through the outbox to connection `id`,
  // waiting for at least `n`.
  std::vector<json> Answers(ConnId id, std::size_t n = 1) {
    std::vector<json> got;
    RunUntil([&] {
      for (json& m : out_.Take(id)) got.push_back(std::move(m));
      return got.size() >= n;
    });
    return got;
  }
  // What was written straight to the socket before pincerd closed it.
  std::vector<json> ReadUntilClosed(Peer& peer, ConnId id) {
    EXPECT_TRUE(RunUntil([&] { return closed_.count(id) != 0; }));
    std::string all;
    std::error_code ec;
    asio::read(peer, asio::dynamic_buffer(all), ec);  // to EOF: it is closed
    std::vector<json> out;
    std::size_t start = 0;
    for (std::size_t nl; (nl = all.find('\n', start)) != std::string::npos; start = nl + 1) {
      out.push_back(json::parse(all.substr(start, nl - start)));
    }
    return out;
  }

  asio::io_context io_;
  Config config_;
  ManualClock clock_;
  HeldClock held_clock_;
  MemoryStore store_;
  test::FakeOutbox out_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<ClientApi> api_;
  std::unique_ptr<PeerSessions> sessions_;
  std::vector<std::string> spawn_ids_;
  std::map<ConnId, PeerSessions::Role> closed_;
};

TEST_F(PeerSessionsTest, ClientWithTheTokenIsWelcomedAndItsRequestsAnswered) {
  Peer c = Connect();
  Say(c, R"({"type":"hello","proto":1,"role":"client","token":"ct"})");
  auto welcome = Answers(1);
  ASSERT_EQ(welcome.size(), 1u);
  EXPECT_EQ(welcome[0]["type"], "welcome");
  EXPECT_EQ(welcome[0]["id"], "c1");
  Say(c, R"({"type":"status","req":4,"id":"t77"})");
  auto answer = Answers(1);
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0]["type"], "error");
  EXPECT_EQ(answer[0]["code"], "not_found");
  EXPECT_EQ(answer[0]["req"], 4);
  EXPECT_EQ(sessions_->Find(1)->role, PeerSessions::Role::kClient);
}

TEST_F(PeerSessionsTest, WrongTokenIsRefusedAndClosed) {
  Peer c = Connect();
  Say(c, R"({"type":"hello","proto":1,"role":"client","token":"nope"})");
  auto got = ReadUntilClosed(c, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["code"], "unauthorized");
  EXPECT_EQ(closed_[1], PeerSessions::Role::kNone);
  EXPECT_EQ(sessions_->size(), 0u);
}

TEST_F(PeerSessionsTest, FirstLineMustBeAHello) {
  Peer c = Connect();
  Say(c, R"({"type":"status","req":1,"id":"t1"})");
  auto got = ReadUntilClosed(c, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["code"], "bad_hello");
}

TEST_F(PeerSessionsTest, UnsupportedProtocolIsRefused) {
  Peer c = Connect();
  Say(c, R"({"type":"hello","proto":2,"role":"client","token":"ct"})");
  auto got = ReadUntilClosed(c, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["code"], "bad_hello");
  EXPECT_NE(got[0]["message"].get<std::string>().find("proto 2"), std::string::npos);
}

TEST_F(PeerSessionsTest, LongLineBeforeHelloIsRefused) {
  Peer c = Connect();
  Say(c, std::string(PeerSessions::kMaxHelloBytes + 10, 'x'));
  auto got = ReadUntilClosed(c, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["code"], "frame_too_large");
}

TEST_F(PeerSessionsTest, WorkerIsRegisteredBoundToItsPoolAndForgottenWhenGone) {
  Peer w = Connect();
  Say(w, R"({"type":"hello","proto":1,"role":"worker","token":"wt","name":"a","capacity":2,)"
         R"("skills":["x"],"spawn_id":"sp-1"})");
  auto welcome = Answers(1);
  ASSERT_EQ(welcome.size(), 1u);
  EXPECT_EQ(welcome[0]["type"], "welcome");
  ASSERT_EQ(dispatcher_->workers().size(), 1u);
  const Worker* worker = dispatcher_->workers().Find(1);
  ASSERT_NE(worker, nullptr);
  EXPECT_EQ(worker->pool, "pool-a");
  EXPECT_EQ(spawn_ids_, std::vector<std::string>{"sp-1"});
  w.close();
  ASSERT_TRUE(RunUntil([&] { return closed_.count(1) != 0; }));
  EXPECT_EQ(closed_[1], PeerSessions::Role::kWorker);
  EXPECT_EQ(dispatcher_->workers().size(), 0u);
}

TEST_F(PeerSessionsTest, WorkerWithBadCapacityIsRefused) {
  Peer w = Connect();
  Say(w, R"({"type":"hello","proto":1,"role":"worker","token":"wt","capacity":0})");
  auto got = ReadUntilClosed(w, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["code"], "bad_hello");
  EXPECT_EQ(dispatcher_->workers().size(), 0u);
}

TEST_F(PeerSessionsTest, EachRoleMaySendOnlyItsOwnMessages) {
  Peer c = Connect();
  Say(c, R"({"type":"hello","proto":1,"role":"client","token":"ct"})");
  Answers(1);
  Say(c, R"({"type":"result","id":"t1","ok":true})");
  auto answer = Answers(1);
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0]["code"], "unknown_type");
  Say(c, R"({"type":"hello","proto":1,"role":"client","token":"ct"})");
  answer = Answers(1);
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0]["code"], "unknown_type");

  Peer w = Connect();
  Say(w, R"({"type":"hello","proto":1,"role":"worker","token":"wt","capacity":1})");
  Answers(2);
  // A worker may send the client requests it needs for subtasks, not
  // the others.
  Say(w, R"({"type":"status","req":3,"id":"t999"})");
  answer = Answers(2);
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0]["code"], "not_found");
  EXPECT_EQ(answer[0]["req"], 3);
  Say(w, R"({"type":"stats","req":4})");
  answer = Answers(2);
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0]["code"], "unknown_type");
  EXPECT_EQ(answer[0]["req"], 4);
  EXPECT_EQ(closed_.size(), 0u);  // errors, not refusals: both stay
}

TEST_F(PeerSessionsTest, AdminRequestsNeedTheAdminToken) {
  config_.auth.admin_token = "at";
  Peer c = Connect();
  Say(c, R"({"type":"hello","proto":1,"role":"client","token":"ct"})");
  Answers(1);
  Say(c, R"({"type":"drain","req":9,"worker":"w1"})");
  auto answer = Answers(1);
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0]["code"], "unauthorized");
  EXPECT_EQ(answer[0]["req"], 9);

  Peer admin = Connect();
  Say(admin, R"({"type":"hello","proto":1,"role":"client","token":"at"})");
  Answers(2);
  Say(admin, R"({"type":"drain","req":9,"worker":"w1"})");
  answer = Answers(2);
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0]["code"], "not_found");  // allowed; there is no such worker
}

TEST_F(PeerSessionsTest, WorkersAreRefusedOnceShuttingDown) {
  sessions_->RefuseWorkers();
  Peer w = Connect();
  Say(w, R"({"type":"hello","proto":1,"role":"worker","token":"wt","capacity":1})");
  auto got = ReadUntilClosed(w, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0]["code"], "shutting_down");
  Peer c = Connect();
  Say(c, R"({"type":"hello","proto":1,"role":"client","token":"ct"})");
  EXPECT_EQ(Answers(2).at(0)["type"], "welcome");  // clients may still ask
}

}  // namespace
}  // namespace pincer
