#include "net/listener.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

namespace pincer {

bool SplitHostPort(const std::string& address, std::string& host, uint16_t& port) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  const char* begin = address.data() + colon + 1;
  const char* end = address.data() + address.size();
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end || begin == end || value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

Status Listener::Open(const std::string& address, OnAccept on_accept) {
  on_accept_ = std::move(on_accept);
  std::error_code ec;
  if (address.rfind("unix:", 0) == 0) {
    unix_path_ = address.substr(5);
    ::unlink(unix_path_.c_str());  // a stale socket file from an earlier run
    asio::generic::stream_protocol::endpoint ep(asio::local::stream_protocol::endpoint{unix_path_});
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.bind(ep, ec);
    bound_ = address;
  } else {
    std::string host;
    uint16_t port = 0;
    if (!SplitHostPort(address, host, port)) {
      return Status("bad_address", "'" + address + "' is not host:port");
    }
    auto ip = asio::ip::make_address(host, ec);
    if (ec) return Status("bad_address", "'" + host + "' is not an IP address");
    asio::generic::stream_protocol::endpoint ep(asio::ip::tcp::endpoint(ip, port));
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) {
      asio::ip::tcp::endpoint local;
      socklen_t len = static_cast<socklen_t>(local.capacity());
      ::getsockname(acceptor_.native_handle(), local.data(), &len);
      bound_ = (ip.is_v6() ? "[" + ip.to_string() + "]" : ip.to_string()) + ":" +
               std::to_string(local.port());
    }
  }
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status("listen_failed", "cannot listen on " + address + ": " + ec.message());
  Accept();
  return Status::Ok();
}

void Listener::Accept() {
  acceptor_.async_accept([this](const std::error_code& ec, Connection::Socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // One connection gone before it was taken: take the next.
      const bool this_one = ec == asio::error::connection_aborted ||
                            ec == asio::error::connection_reset || ec == asio::error::interrupted ||
                            ec == asio::error::would_block || ec == asio::error::try_again ||
                            ec.value() == EPROTO || ec.value() == EPERM;
      if (!this_one) return Backoff(ec);
    } else {
      if (warned_) spdlog::info("accepting connections again on {}", bound_);
      warned_ = false;
      if (unix_path_.empty()) {
        int one = 1;
        ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      on_accept_(std::move(socket));
    }
    Accept();
  });
}

void Listener::Backoff(const std::error_code& ec) {
  if (!warned_) {
    spdlog::warn("cannot accept connections on {}: {}; retrying when a connection closes", bound_,
                 ec.message());
    warned_ = true;
  }
  backing_off_ = true;
  retry_.expires_after(kRetry);
  retry_.async_wait([this](const std::error_code& e) {
    if (!e) Resume();
  });
}

void Listener::Resume() {
  if (!backing_off_ || !acceptor_.is_open()) return;
  backing_off_ = false;
  retry_.cancel();
  Accept();
}

void Listener::Close() {
  std::error_code ignored;
  backing_off_ = false;
  retry_.cancel();
  acceptor_.close(ignored);
  if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
}

}  // namespace pincer
