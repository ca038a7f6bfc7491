#include "client/client.h"

#include <algorithm>
#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/local/stream_protocol.hpp>
#include <asio/write.hpp>
#include <functional>
#include <optional>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "client/address.h"
#include "common/json_text.h"
#include "protocol/peer_encode.h"
#include "tls/tls_context.h"

namespace pincer::client {
namespace {

// The most one read takes off the socket.
constexpr std::size_t kReadChunk = 64 * 1024;

Error TimeoutError(const std::string& what) {
  return Error{ErrorKind::kTimeout, "timeout", "timed out " + what};
}

Error ClosedError(const std::string& reason = "") {
  return Error{ErrorKind::kClosed, "closed",
               "the daemon closed the connection" + (reason.empty() ? "" : " (" + reason + ")")};
}

// An `error` message from the daemon, as a value.
Error ServerError(const nlohmann::json& message) {
  Error error{ErrorKind::kServer, "error", ""};
  if (auto it = message.find("code"); it != message.end() && it->is_string()) {
    error.code = it->get<std::string>();
  }
  if (auto it = message.find("message"); it != message.end() && it->is_string()) {
    error.message = it->get<std::string>();
  }
  if (auto it = message.find("leader"); it != message.end() && it->is_string()) {
    error.leader = it->get<std::string>();
  }
  return error;
}

bool IsType(const nlohmann::json& message, std::string_view type) {
  auto it = message.find("type");
  return it != message.end() && it->is_string() && it->get_ref<const std::string&>() == type;
}

}  // namespace

Client::Client(const ConnectOptions& options)
    : options_(options), socket_(io_), lines_(options.max_line_bytes) {}

Client::~Client() { Close(); }

Result<std::unique_ptr<Client>> Client::Connect(const std::string& addr, const std::string& role,
                                                const std::string& token,
                                                const nlohmann::json& extra_hello,
                                                const ConnectOptions& options) {
  Result<std::vector<Address>> list = ParseAddressList(addr);
  if (!list.ok()) return list.error();
  const std::vector<Address>& addresses = list.value();
  const Deadline deadline = DeadlineAfter(options.timeout);
  const std::string hello = EncodeHello(role, token, extra_hello);

  // Each address in turn; a standby's not_leader sends us to the leader it
  // names first. One address fails at once, as it always did; with more,
  // passes go on (with a pause that grows) until one accepts or the
  // deadline passes: a takeover takes a few seconds (docs/high-availability.md).
  std::optional<Address> leader;
  std::vector<std::string> why(addresses.size());
  auto none_accepted = [&] {
    std::string text = "no pincerd in " + addr + " accepted the connection:";
    for (std::size_t i = 0; i < addresses.size(); ++i) {
      text += (i ? "; " : " ") + addresses[i].ToString() + ": " + why[i];
    }
    return Error{ErrorKind::kConnect, "connect_failed", text};
  };
  std::size_t next = 0;
  Duration pause{50};
  while (true) {
    // Out of time: each address keeps the reason it last gave.
    if (addresses.size() > 1 && deadline && Remaining(deadline) <= Duration::zero()) {
      return none_accepted();
    }
    const bool following = leader.has_value();
    const std::size_t index = next % addresses.size();
    const Address target = following ? *leader : addresses[index];
    leader.reset();
    if (!following) ++next;
    // Not make_unique: the constructor is private.
    std::unique_ptr<Client> client(new Client(options));
    // With a list, a hung pincerd (stopped, say) takes only its share.
    Deadline until = deadline;
    if (addresses.size() > 1 && deadline) {
      until = std::min(*deadline,
                       Clock::now() + std::max(Duration(options.timeout.count() /
                                                        static_cast<int64_t>(addresses.size())),
                                               Duration{1000}));
    }
    Status status = client->Dial(target, until);
    if (status.ok()) status = client->Handshake(hello, until);
    if (status.ok()) return client;
    const Error& error = status.error();
    const bool standby = error.kind == ErrorKind::kServer && error.code == "not_leader";
    const bool unreachable = error.kind == ErrorKind::kConnect && error.code == "connect_failed";
    const bool lost = error.kind == ErrorKind::kClosed ||
                      (error.kind == ErrorKind::kTimeout && addresses.size() > 1);
    if (!standby && !unreachable && !lost) return error;  // a token, TLS, a bad hello...
    if (!following) why[index] = error.ToString();
    if (standby && !following && !error.leader.empty()) {
      if (Result<Address> named = ParseAddress(error.leader); named.ok()) leader = named.value();
    }
    if (leader) continue;
    if (addresses.size() == 1 && !following) return error;
    if (next % addresses.size() != 0) continue;
    // A whole pass refused: pause, unless the deadline comes first.
    if (Remaining(deadline) <= pause) return none_accepted();
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, Duration{1000});
  }
}

Status Client::Dial(const Address& address, const Deadline& deadline) {
  const std::string addr = address.ToString();
  // One generic socket type serves TCP and Unix sockets alike.
  std::vector<asio::generic::stream_protocol::endpoint> endpoints;
  if (address.kind == Address::Kind::kUnix) {
    endpoints.emplace_back(asio::local::stream_protocol::endpoint(address.path));
  } else {
    asio::ip::tcp::resolver resolver(io_);
    bool done = false;
    std::error_code resolve_error;
    resolver.async_resolve(address.host, address.port,
                           [&](const std::error_code& ec, asio::ip::tcp::resolver::results_type r) {
                             resolve_error = ec;
                             for (const auto& entry : r) endpoints.emplace_back(entry.endpoint());
                             done = true;
                           });
    if (!RunUntil(done, deadline, [&] { resolver.cancel(); })) {
      return Error{ErrorKind::kConnect, "connect_failed", "timed out resolving " + address.host};
    }
    if (resolve_error || endpoints.empty()) {
      return Error{ErrorKind::kConnect, "connect_failed",
                   "cannot resolve " + address.host + ": " + resolve_error.message()};
    }
  }

  bool done = false;
  std::error_code connect_error;
  asio::async_connect(socket_, endpoints, [&](const std::error_code& ec, const auto& /*endpoint*/) {
    connect_error = ec;
    done = true;
  });
  if (!RunUntil(done, deadline)) {
    Close();
    return Error{ErrorKind::kConnect, "connect_failed", "timed out connecting to " + addr};
  }
  if (connect_error) {
    Close();
    return Error{ErrorKind::kConnect, "connect_failed",
                 "cannot connect to " + addr + ": " + connect_error.message()};
  }
  if (address.kind == Address::Kind::kTcp) {
    // Requests are small and answered one by one; Nagle would add delay.
    std::error_code ignored;
    socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    if (!options_.tls.ca.empty()) return StartTls(addr, address.host, deadline);
  }
  return Status::Ok();
}

Status Client::StartTls(const std::string& addr, const std::string& host,
                        const Deadline& deadline) {
  auto fail = [&](ErrorKind kind, std::string message) -> Status {
    tls_.reset();
    Close();
    return Error{kind, kind == ErrorKind::kConnect ? "tls_failed" : "invalid_request",
                 std::move(message)};
  };
  tls::ClientFiles files{options_.tls.ca, options_.tls.cert, options_.tls.key};
  std::string error;
  tls_context_ = tls::MakeClientContext(files, &error);
  if (!tls_context_) return fail(ErrorKind::kInvalidArgument, error);
  tls_ = std::make_unique<asio::ssl::stream<asio::generic::stream_protocol::socket&>>(
      socket_, *tls_context_);
  if (!tls::ExpectServerName(tls_->native_handle(), host, &error)) {
    return fail(ErrorKind::kInvalidArgument, error);
  }
  bool done = false;
  std::error_code handshake_error;
  tls_->async_handshake(asio::ssl::stream_base::client, [&](const std::error_code& ec) {
    handshake_error = ec;
    done = true;
  });
  if (!RunUntil(done, deadline)) {
    return fail(ErrorKind::kConnect, "timed out in the TLS handshake with " + addr);
  }
  if (handshake_error) {
    return fail(ErrorKind::kConnect,
                "TLS handshake with " + addr + " failed: " +
                    tls::DescribeHandshakeError(tls_->native_handle(), handshake_error));
  }
  return Status::Ok();
}

Status Client::Handshake(const std::string& hello_line, const Deadline& deadline) {
  if (Status sent = WriteLine(hello_line, deadline); !sent.ok()) return sent;
  Result<nlohmann::json> answer = ReadFromSocket(deadline);
  if (!answer.ok()) {
    Error error = answer.error();
    // It took the connection but never answered the hello (a stopped or
    // overloaded pincerd, or not pincerd): as unreachable as a refusal.
    if (error.kind == ErrorKind::kTimeout) {
      return Error{ErrorKind::kConnect, "connect_failed",
                   "no welcome in answer to the hello: the connection was taken, but nothing "
                   "answered"};
    }
    return error;
  }
  if (IsType(*answer, "error")) {
    Close();
    return ServerError(*answer);
  }
  if (!IsType(*answer, "welcome")) {
    Close();
    return Error{ErrorKind::kProtocol, "bad_message", "expected welcome, got " + answer->dump()};
  }
  welcome_ = std::move(answer).value();
  return Status::Ok();
}

std::string Client::id() const {
  auto it = welcome_.find("id");
  return it != welcome_.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Status Client::Send(const nlohmann::json& message, Duration timeout) {
  // Invalid UTF-8 in a string is replaced rather than thrown on.
  return WriteLine(DumpLine(message), DeadlineAfter(timeout));
}

Status Client::WriteLine(const std::string& line, const Deadline& deadline) {
  if (!socket_.is_open()) return ClosedError();
  bool done = false;
  std::error_code write_error;
  auto on_written = [&](const std::error_code& ec, std::size_t) {
    write_error = ec;
    done = true;
  };
  if (tls_) {
    asio::async_write(*tls_, asio::buffer(line), on_written);
  } else {
    asio::async_write(socket_, asio::buffer(line), on_written);
  }
  if (!RunUntil(done, deadline)) {
    Close();
    return TimeoutError("sending to the daemon");
  }
  if (write_error) {
    Close();
    return Error{ErrorKind::kClosed, "closed", "cannot send: " + write_error.message()};
  }
  return Status::Ok();
}

Result<nlohmann::json> Client::ReadMessage(Duration timeout) {
  if (!held_.empty()) {
    nlohmann::json message = std::move(held_.front());
    held_.pop_front();
    return message;
  }
  return ReadFromSocket(DeadlineAfter(timeout));
}

Result<nlohmann::json> Client::ReadFromSocket(const Deadline& deadline) {
  while (true) {
    while (std::optional<std::string_view> line = lines_.NextLine()) {
      // Bounded before nlohmann sees it: its dump() and copies recurse.
      if (!JsonDepthWithin(*line, kMaxPeerJsonDepth)) {
        return Error{ErrorKind::kProtocol, "bad_json",
                     "the daemon sent a line nested deeper than " +
                         std::to_string(kMaxPeerJsonDepth) + " levels"};
      }
      nlohmann::json message = nlohmann::json::parse(*line, nullptr, /*allow_exceptions=*/false);
      if (message.is_discarded() || !message.is_object()) {
        return Error{ErrorKind::kProtocol, "bad_json",
                     "the daemon sent a line that is not a JSON object: " +
                         std::string(line->substr(0, 200))};
      }
      return message;
    }
    if (lines_.overflowed()) {
      Close();
      return Error{ErrorKind::kProtocol, "frame_too_large",
                   "the daemon sent a line longer than " + std::to_string(options_.max_line_bytes) +
                       " bytes"};
    }
    if (!socket_.is_open()) return ClosedError(closed_reason_);

    bool done = false;
    std::error_code read_error;
    std::size_t read = 0;
    auto on_read = [&](const std::error_code& ec, std::size_t n) {
      read_error = ec;
      read = n;
      done = true;
    };
    const auto into = asio::buffer(lines_.Prepare(kReadChunk), kReadChunk);
    if (tls_) {
      tls_->async_read_some(into, on_read);
    } else {
      socket_.async_read_some(into, on_read);
    }
    const bool in_time = RunUntil(done, deadline);
    // Bytes that arrived as the deadline passed still count.
    lines_.Commit(read);
    if (read == 0 && (!in_time || read_error == asio::error::operation_aborted)) {
      return TimeoutError("waiting for the daemon");
    }
    if (read_error && read_error != asio::error::operation_aborted) {
      // EOF or reset: the daemon is gone. Complete lines it sent before
      // that are still handed out by the loop above, then kClosed. A TLS
      // alert (a refused client certificate, say) is worth showing; the
      // end of a TLS stream without close_notify is just EOF.
      if (read_error != asio::error::eof && read_error != asio::ssl::error::stream_truncated) {
        closed_reason_ = tls_ ? tls::DescribeHandshakeError(tls_->native_handle(), read_error)
                              : read_error.message();
      }
      Close();
    }
  }
}

Result<std::int64_t> Client::SendRequest(nlohmann::json message, Duration timeout) {
  const std::int64_t req = next_req_++;
  message["req"] = req;
  if (Status sent = Send(message, timeout); !sent.ok()) return sent.error();
  return req;
}

Result<nlohmann::json> Client::AwaitReply(std::int64_t req, Duration timeout,
                                          const ProgressFn& on_progress) {
  auto matches = [req](const nlohmann::json& message) {
    auto it = message.find("req");
    if (it == message.end()) return IsType(message, "error");
    return it->is_number_integer() && it->get<std::int64_t>() == req;
  };
  auto answer = [](nlohmann::json message) -> Result<nlohmann::json> {
    if (IsType(message, "error")) return ServerError(message);
    return message;
  };

  for (auto it = held_.begin(); it != held_.end(); ++it) {
    if (matches(*it)) {
      nlohmann::json message = std::move(*it);
      held_.erase(it);
      return answer(std::move(message));
    }
  }
  const Deadline deadline = DeadlineAfter(timeout);
  while (true) {
    Result<nlohmann::json> message = ReadFromSocket(deadline);
    if (!message.ok()) {
      // A garbled line is not our answer; keep looking until the deadline.
      if (message.error().kind == ErrorKind::kProtocol && is_open()) continue;
      return message.error();
    }
    if (IsType(*message, "progress")) {
      if (on_progress) on_progress(*message);
      continue;
    }
    if (matches(*message)) return answer(std::move(message).value());
    if (held_.size() >= options_.max_pending_messages) {
      Close();
      return Error{
          ErrorKind::kProtocol, "bad_message",
          "too many unanswered messages held while waiting for req " + std::to_string(req)};
    }
    held_.push_back(std::move(message).value());
  }
}

Result<nlohmann::json> Client::Request(nlohmann::json message, Duration timeout) {
  const Deadline deadline = DeadlineAfter(timeout);
  Result<std::int64_t> req = SendRequest(std::move(message), Remaining(deadline));
  if (!req.ok()) return req.error();
  return AwaitReply(*req, Remaining(deadline));
}

bool Client::is_open() const { return socket_.is_open(); }

void Client::Close() {
  std::error_code ignored;
  socket_.shutdown(asio::socket_base::shutdown_both, ignored);
  socket_.close(ignored);
}

Client::Deadline Client::DeadlineAfter(Duration timeout) {
  if (timeout == kNoTimeout) return std::nullopt;
  return Clock::now() + timeout;
}

Duration Client::Remaining(const Deadline& deadline) {
  if (!deadline) return kNoTimeout;
  const auto left = std::chrono::duration_cast<Duration>(*deadline - Clock::now());
  return left.count() > 0 ? left : Duration{0};
}

bool Client::RunUntil(const bool& done, const Deadline& deadline,
                      const std::function<void()>& cancel) {
  io_.restart();
  if (deadline) {
    io_.run_until(*deadline);
  } else {
    io_.run();
  }
  if (done) return true;
  // The deadline passed: abort what is outstanding and let its handler run,
  // so no handler outlives this call's stack frame.
  if (cancel) {
    cancel();
  } else {
    std::error_code ignored;
    socket_.cancel(ignored);
  }
  io_.restart();
  io_.run();
  return false;
}

}  // namespace pincer::client
