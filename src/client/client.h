// A small blocking client for pincerd's line protocol (docs/protocol.md),
// used by pincerctl, the integration tests and the benchmarks.
//
// Every call blocks the calling thread until it finishes or its timeout
// passes; nothing throws. A Client is not thread-safe: use it from one
// thread at a time. A Client owns its socket and its own io_context, so
// many Clients may live in one process (one per thread, say).
#pragma once

#include <asio/generic/stream_protocol.hpp>
#include <asio/io_context.hpp>
#include <asio/ssl/context.hpp>
#include <asio/ssl/stream.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "client/address.h"
#include "client/result.h"
#include "protocol/line_framer.h"

namespace pincer::client {

using Duration = std::chrono::milliseconds;

// Pass as a timeout to wait without limit.
inline constexpr Duration kNoTimeout = Duration::max();

// TLS to pincerd's TCP listener. With `ca` set the client speaks TLS and
// checks that the daemon's certificate chains to a CA in that PEM file and
// names the host dialled (a DNS name or the IP literal). `cert` and `key`
// (both or neither) are presented when the daemon asks for a client
// certificate. Unix sockets stay plain whatever is set here.
struct TlsOptions {
  std::string ca;
  std::string cert;
  std::string key;
};

struct ConnectOptions {
  // Bounds resolving, connecting, sending hello and receiving welcome.
  Duration timeout{5000};
  // Longest line accepted from the daemon, newline excluded; the daemon's
  // own default frame limit, so any answer it may send fits.
  std::size_t max_line_bytes = 16 * 1024 * 1024;
  // Unanswered messages that Request() may hold back while it looks for
  // its answer; past this the connection is considered broken.
  std::size_t max_pending_messages = 1 << 16;
  TlsOptions tls;
};

class Client {
 public:
  // Dials `addr` ("HOST:PORT", "[V6]:PORT" or "unix:/path"), sends
  // {"type":"hello","role":role,"proto":1,"token":token} merged with the
  // fields of `extra_hello` (an object, e.g. a worker's name and skills),
  // and waits for `welcome`. A refused hello comes back as kServer with the
  // daemon's code ("unauthorized", "bad_hello", ...).
  //
  // `addr` may list several pincerd, "A,B" (a leader and its standbys).
  // They are tried in turn, and a standby's `not_leader` leads to the
  // leader it names; passes over the list go on until one accepts or
  // `options.timeout` passes. A single address that refuses fails at once.
  static Result<std::unique_ptr<Client>> Connect(
      const std::string& addr, const std::string& role, const std::string& token,
      const nlohmann::json& extra_hello = nlohmann::json::object(),
      const ConnectOptions& options = {});

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // The daemon's welcome message ({"type":"welcome","id":...,"heartbeat_ms":N}).
  const nlohmann::json& welcome() const { return welcome_; }
  // welcome().id: this connection's (or worker's) id.
  std::string id() const;

  // Writes `message` as one line. A write that times out closes the
  // connection: half a line would corrupt the stream.
  Status Send(const nlohmann::json& message, Duration timeout = Duration{10000});

  // The next message from the daemon: first any held back by Request(),
  // then the next line off the socket. Empty lines are skipped. A timeout
  // leaves the connection usable; a line that is not a JSON object is
  // kProtocol ("bad_json") and the connection stays usable as well.
  Result<nlohmann::json> ReadMessage(Duration timeout);

  // Allocates the next `req` number, sets it on `message` and sends it.
  // For pipelining: send many, then collect answers with AwaitReply.
  Result<std::int64_t> SendRequest(nlohmann::json message, Duration timeout = Duration{10000});

  // A `progress` line the daemon streams to a wait or watch.
  using ProgressFn = std::function<void(const nlohmann::json& progress)>;

  // The next message carrying `req`; others read meanwhile are held back
  // for ReadMessage/AwaitReply. An `error` answer becomes kServer with its
  // code. An `error` with no `req` at all also ends the wait: the daemon
  // sends those for a line it could not even parse, which can only be ours.
  // `progress` lines (for any request) are never the answer: each one read
  // meanwhile goes to `on_progress`, or is dropped when it is null.
  Result<nlohmann::json> AwaitReply(std::int64_t req, Duration timeout,
                                    const ProgressFn& on_progress = nullptr);

  // SendRequest followed by AwaitReply with one overall timeout.
  Result<nlohmann::json> Request(nlohmann::json message, Duration timeout = Duration{30000});

  bool is_open() const;
  void Close();

 private:
  explicit Client(const ConnectOptions& options);

  using Clock = std::chrono::steady_clock;
  using Deadline = std::optional<Clock::time_point>;
  static Deadline DeadlineAfter(Duration timeout);
  static Duration Remaining(const Deadline& deadline);

  Status Dial(const Address& address, const Deadline& deadline);
  // The TLS handshake on the connected socket_, checking `host`'s certificate.
  Status StartTls(const std::string& addr, const std::string& host, const Deadline& deadline);
  // Sends the hello line and waits for welcome.
  Status Handshake(const std::string& hello_line, const Deadline& deadline);
  Status WriteLine(const std::string& line, const Deadline& deadline);
  // Reads one message off the socket, ignoring anything held back.
  Result<nlohmann::json> ReadFromSocket(const Deadline& deadline);
  // Runs io_ until `done` or the deadline. On the deadline it calls
  // `cancel` (default: cancel the socket's operations), lets the aborted
  // handlers run and returns false. Either way no handler is left pending.
  bool RunUntil(const bool& done, const Deadline& deadline,
                const std::function<void()>& cancel = nullptr);

  ConnectOptions options_;
  asio::io_context io_;
  asio::generic::stream_protocol::socket socket_;
  // Set when a TCP address is dialled with TLS; every read and write then
  // goes through tls_ (declared after socket_, which it refers to).
  std::shared_ptr<asio::ssl::context> tls_context_;
  std::unique_ptr<asio::ssl::stream<asio::generic::stream_protocol::socket&>> tls_;
  // Why the last read failed, for the kClosed error that follows.
  std::string closed_reason_;
  LineFramer lines_;
  std::deque<nlohmann::json> held_;
  std::int64_t next_req_ = 1;
  nlohmann::json welcome_;
};

}  // namespace pincer::client
