// src/client/client.h against a scripted in-process peer on a real socket:
// handshake, req matching, timeouts, framing limits, closed connections.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "support/temp_dir.h"

namespace pincer::client {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// One connection's worth of a fake pincerd: accepts once and runs `script`
// on the accepted socket in a thread. Blocking POSIX calls keep it obvious.
class ScriptedPeer {
 public:
  using Script = std::function<void(ScriptedPeer& peer)>;

  // TCP on 127.0.0.1 with a kernel-chosen port, or a Unix socket at `path`.
  explicit ScriptedPeer(Script script, const std::string& unix_path = "") {
    if (unix_path.empty()) {
      listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
      socklen_t len = sizeof addr;
      ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len);
      address_ = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
    } else {
      listener_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", unix_path.c_str());
      EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
      address_ = "unix:" + unix_path;
    }
    EXPECT_EQ(::listen(listener_, 1), 0);
    thread_ = std::thread([this, script = std::move(script)] {
      fd_ = ::accept(listener_, nullptr, nullptr);
      if (fd_ >= 0) script(*this);
    });
  }

  ~ScriptedPeer() {
    Join();
    if (fd_ >= 0) ::close(fd_);
    ::close(listener_);
  }

  // Waits for the script to finish (unblocking an accept that never came).
  void Join() {
    ::shutdown(listener_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
  }

  const std::string& address() const { return address_; }

  // The next line the client sent, parsed; null at EOF.
  json ReadJson() {
    std::string line;
    char c;
    while (::read(fd_, &c, 1) == 1) {
      if (c == '\n') return json::parse(line, nullptr, false);
      line += c;
    }
    return nullptr;
  }
  void WriteRaw(const std::string& bytes) {
    ASSERT_EQ(::write(fd_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void Write(const json& message) { WriteRaw(message.dump() + "\n"); }
  void Close() {
    ::close(fd_);
    fd_ = -1;
  }
  // Reads a hello and answers welcome.
  json Welcome() {
    json hello = ReadJson();
    Write({{"type", "welcome"}, {"id", "c1"}, {"heartbeat_ms", 5000}});
    return hello;
  }

 private:
  int listener_ = -1;
  int fd_ = -1;
  std::string address_;
  std::thread thread_;
};

ConnectOptions Quick() {
  ConnectOptions options;
  options.timeout = milliseconds(2000);
  return options;
}

TEST(ClientTest, HelloCarriesRoleTokenAndExtraFields) {
  json hello;
  ScriptedPeer peer([&](ScriptedPeer& p) { hello = p.Welcome(); });
  auto client = Client::Connect(peer.address(), "worker", "tok",
                                {{"name", "w"}, {"skills", {"echo"}}, {"capacity", 2}}, Quick());
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  EXPECT_EQ((*client)->id(), "c1");
  EXPECT_EQ((*client)->welcome()["heartbeat_ms"], 5000);
  peer.Join();  // `hello` is complete
  EXPECT_EQ(hello, json::parse(R"({"type":"hello","role":"worker","proto":1,"token":"tok",
                                   "name":"w","skills":["echo"],"capacity":2})"));
}

TEST(ClientTest, RefusedHelloIsAServerErrorWithItsCode) {
  ScriptedPeer peer([](ScriptedPeer& p) {
    p.ReadJson();
    p.Write({{"type", "error"}, {"code", "unauthorized"}, {"message", "bad token"}});
    p.Close();
  });
  auto client = Client::Connect(peer.address(), "client", "wrong", json::object(), Quick());
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().kind, ErrorKind::kServer);
  EXPECT_EQ(client.error().code, "unauthorized");
  EXPECT_EQ(client.error().message, "bad token");
}

// A peer that takes the connection but never welcomes is unreachable, as
// one that refuses it (pincerctl exits 3).
TEST(ClientTest, NoWelcomeIsAConnectError) {
  ScriptedPeer peer([](ScriptedPeer& p) { p.ReadJson(); });  // reads hello, says nothing
  ConnectOptions options;
  options.timeout = milliseconds(100);
  auto client = Client::Connect(peer.address(), "client", "", json::object(), options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().kind, ErrorKind::kConnect);
  EXPECT_NE(client.error().message.find("no welcome"), std::string::npos) << client.error().message;
}

TEST(ClientTest, NothingListeningIsAConnectError) {
  std::string address;
  {
    ScriptedPeer closed([](ScriptedPeer&) {});
    address = closed.address();
  }  // the port is closed again
  auto client = Client::Connect(address, "client", "", json::object(), Quick());
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().kind, ErrorKind::kConnect);
  EXPECT_EQ(client.error().code, "connect_failed");
}

TEST(ClientTest, MalformedAddressIsAnInvalidArgument) {
  auto client = Client::Connect("no-port", "client", "", json::object(), Quick());
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().kind, ErrorKind::kInvalidArgument);
}

TEST(ClientTest, RequestMatchesReqAndHoldsOtherMessagesBack) {
  ScriptedPeer peer([](ScriptedPeer& p) {
    p.Welcome();
    json first = p.ReadJson();
    json second = p.ReadJson();
    // Answer out of order, with an unrelated event in between.
    p.Write({{"type", "ok"}, {"req", second["req"]}, {"n", 2}});
    p.Write({{"type", "event"}, {"what", "unrelated"}});
    p.Write({{"type", "ok"}, {"req", first["req"]}, {"n", 1}});
  });
  auto client = Client::Connect(peer.address(), "client", "", json::object(), Quick());
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  Client& c = **client;
  auto first = c.SendRequest({{"type", "stats"}});
  auto second = c.SendRequest({{"type", "stats"}});
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_NE(*first, *second);

  auto answer = c.AwaitReply(*first, milliseconds(2000));
  ASSERT_TRUE(answer.ok()) << answer.error().ToString();
  EXPECT_EQ((*answer)["n"], 1);
  auto held = c.AwaitReply(*second, milliseconds(0));  // already read: no waiting
  ASSERT_TRUE(held.ok()) << held.error().ToString();
  EXPECT_EQ((*held)["n"], 2);
  auto event = c.ReadMessage(milliseconds(0));
  ASSERT_TRUE(event.ok()) << event.error().ToString();
  EXPECT_EQ((*event)["what"], "unrelated");
}

TEST(ClientTest, ProgressLinesAreNeverTheAnswerAndGoToTheCallback) {
  ScriptedPeer peer([](ScriptedPeer& p) {
    p.Welcome();
    json wait = p.ReadJson();
    p.Write({{"type", "progress"}, {"req", wait["req"]}, {"id", "t1"}, {"data", 1}});
    p.Write({{"type", "progress"}, {"req", 99}, {"id", "t2"}, {"data", 2}});
    p.Write({{"type", "end"}, {"req", wait["req"]}, {"id", "t1"}, {"state", "succeeded"}});
    json again = p.ReadJson();
    p.Write({{"type", "progress"}, {"req", again["req"]}, {"id", "t1"}, {"data", 3}});
    p.Write({{"type", "end"}, {"req", again["req"]}, {"id", "t1"}, {"state", "failed"}});
  });
  auto client = Client::Connect(peer.address(), "client", "", json::object(), Quick());
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  Client& c = **client;
  auto req = c.SendRequest({{"type", "wait"}, {"id", "t1"}});
  ASSERT_TRUE(req.ok());
  std::vector<json> seen;
  auto end =
      c.AwaitReply(*req, milliseconds(2000), [&](const json& p) { seen.push_back(p["data"]); });
  ASSERT_TRUE(end.ok()) << end.error().ToString();
  EXPECT_EQ((*end)["type"], "end");
  EXPECT_EQ(seen, std::vector<json>({1, 2}));  // any request's, as they come
  // Without a callback they are dropped, not taken for the answer.
  auto again = c.SendRequest({{"type", "wait"}, {"id", "t1"}});
  ASSERT_TRUE(again.ok());
  auto second = c.AwaitReply(*again, milliseconds(2000));
  ASSERT_TRUE(second.ok()) << second.error().ToString();
  EXPECT_EQ((*second)["state"], "failed");
}

TEST(ClientTest, ErrorAnswerBecomesAServerError) {
  ScriptedPeer peer([](ScriptedPeer& p) {
    p.Welcome();
    json request = p.ReadJson();
    p.Write({{"type", "error"},
             {"code", "not_found"},
             {"message", "no task t9"},
             {"req", request["req"]}});
  });
  auto client = Client::Connect(peer.address(), "client", "", json::object(), Quick());
  ASSERT_TRUE(client.ok());
  auto answer = (*client)->Request({{"type", "status"}, {"id", "t9"}});
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().kind, ErrorKind::kServer);
  EXPECT_EQ(answer.error().code, "not_found");
}

TEST(ClientTest, ReadTimeoutLeavesTheConnectionUsable) {
  ScriptedPeer peer([](ScriptedPeer& p) {
    p.Welcome();
    p.ReadJson();                  // the client's "go" after its timeout
    p.WriteRaw("{\"type\":\"ta");  // a line in two pieces
    p.WriteRaw("sk\",\"id\":\"t1\"}\r\n\n");
  });
  auto client = Client::Connect(peer.address(), "client", "", json::object(), Quick());
  ASSERT_TRUE(client.ok());
  auto nothing = (*client)->ReadMessage(milliseconds(30));
  ASSERT_FALSE(nothing.ok());
  EXPECT_EQ(nothing.error().kind, ErrorKind::kTimeout);
  EXPECT_TRUE((*client)->is_open());
  ASSERT_TRUE((*client)->Send({{"type", "go"}}).ok());
  auto task = (*client)->ReadMessage(milliseconds(2000));
  ASSERT_TRUE(task.ok()) << task.error().ToString();
  EXPECT_EQ((*task)["id"], "t1");
}

TEST(ClientTest, GarbledLineIsReportedAndSkipped) {
  ScriptedPeer peer([](ScriptedPeer& p) {
    p.Welcome();
    p.WriteRaw("not json\n[1]\n");
    p.Write({{"type", "ok"}});
  });
  auto client = Client::Connect(peer.address(), "client", "", json::object(), Quick());
  ASSERT_TRUE(client.ok());
  for (int i = 0; i < 2; ++i) {
    auto bad = (*client)->ReadMessage(milliseconds(2000));
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.error().code, "bad_json");
  }
  auto good = (*client)->ReadMessage(milliseconds(2000));
  ASSERT_TRUE(good.ok()) << good.error().ToString();
  EXPECT_EQ((*good)["type"], "ok");
}

// Nested past what any pincerd sends: refused before nlohmann sees it (its
// dump() and copies would recurse 100,000 deep), and the next line is read.
TEST(ClientTest, LineNestedTooDeepIsReportedAndSkipped) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string fits = std::string(1023, '[') + std::string(1023, ']');
  ScriptedPeer peer([&](ScriptedPeer& p) {
    p.Welcome();
    p.WriteRaw(R"({"type":"end","req":1,"output":)" + deep + "}\n");
    p.WriteRaw(R"({"type":"end","req":2,"output":)" + fits + "}\n");
  });
  auto client = Client::Connect(peer.address(), "client", "", json::object(), Quick());
  ASSERT_TRUE(client.ok());
  auto bad = (*client)->ReadMessage(milliseconds(2000));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "bad_json");
  EXPECT_NE(bad.error().message.find("1024"), std::string::npos) << bad.error().ToString();
  auto good = (*client)->ReadMessage(milliseconds(2000));
  ASSERT_TRUE(good.ok()) << good.error().ToString();
  EXPECT_EQ((*good)["output"].dump(), fits);
}

TEST(ClientTest, OverlongLineClosesTheConnection) {
  ScriptedPeer peer([](ScriptedPeer& p) {
    p.Welcome();
    p.WriteRaw(std::string(4096, 'x'));
  });
  ConnectOptions options = Quick();
  options.max_line_bytes = 1024;
  auto client = Client::Connect(peer.address(), "client", "", json::object(), options);
  ASSERT_TRUE(client.ok());
  auto message = (*client)->ReadMessage(milliseconds(2000));
  ASSERT_FALSE(message.ok());
  EXPECT_EQ(message.error().code, "frame_too_large");
  EXPECT_FALSE((*client)->is_open());
}

TEST(ClientTest, PeerClosingIsClosedAfterItsLastLine) {
  ScriptedPeer peer([](ScriptedPeer& p) {
    p.Welcome();
    p.Write({{"type", "drain"}});
    p.Close();
  });
  auto client = Client::Connect(peer.address(), "client", "", json::object(), Quick());
  ASSERT_TRUE(client.ok());
  auto drain = (*client)->ReadMessage(milliseconds(2000));
  ASSERT_TRUE(drain.ok()) << drain.error().ToString();
  EXPECT_EQ((*drain)["type"], "drain");
  auto closed = (*client)->ReadMessage(milliseconds(2000));
  ASSERT_FALSE(closed.ok());
  EXPECT_EQ(closed.error().kind, ErrorKind::kClosed);
  EXPECT_FALSE((*client)->Send({{"type", "heartbeat"}}).ok());
}

TEST(ClientTest, UnixSocket) {
  test::TempDir dir("pincer-client");
  ScriptedPeer peer([](ScriptedPeer& p) { p.Welcome(); }, dir.Join("d.sock"));
  auto client = Client::Connect(peer.address(), "client", "", json::object(), Quick());
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  EXPECT_EQ((*client)->id(), "c1");
}

}  // namespace
}  // namespace pincer::client
