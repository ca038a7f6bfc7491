// Accepts stream connections on a TCP address ("host:port", port 0 picks a
// free one) or a Unix socket path, and hands each accepted socket on.
#pragma once

#include <asio.hpp>
#include <functional>
#include <string>

#include "common/status.h"
#include "net/connection.h"

namespace pincer {

class Listener {
 public:
  using OnAccept = std::function<void(Connection::Socket)>;

  explicit Listener(asio::io_context& io) : io_(io), acceptor_(io), retry_(io) {}

  // Binds and listens. `address` is "host:port" or "unix:/path".
  Status Open(const std::string& address, OnAccept on_accept);
  void Close();
  // A descriptor was freed: if accepting waits for one (EMFILE), try now.
  void Resume();
  // The bound address, e.g. "127.0.0.1:41234" or "unix:/run/pincer.sock".
  const std::string& bound() const { return bound_; }

 private:
  void Accept();
  // accept() failed for want of a resource (descriptors, memory): the
  // pending connection stays queued, so accepting again at once would spin.
  // Waits for Resume() or kRetry, whichever comes first.
  void Backoff(const std::error_code& ec);
  static constexpr std::chrono::milliseconds kRetry{100};

  asio::io_context& io_;
  asio::basic_socket_acceptor<asio::generic::stream_protocol> acceptor_;
  OnAccept on_accept_;
  asio::steady_timer retry_;
  bool backing_off_ = false;
  bool warned_ = false;  // this shortage was logged
  std::string bound_;
  std::string unix_path_;
};

// Splits "host:port" ("[::1]:7878" for IPv6). Returns false when malformed.
bool SplitHostPort(const std::string& address, std::string& host, uint16_t& port);

}  // namespace pincer
