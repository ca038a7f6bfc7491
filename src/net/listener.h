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

  explicit Listener(asio::io_context& io) : io_(io), acceptor_(io) {}

  // Binds and listens. `address` is "host:port" or "unix:/path".
  Status Open(const std::string& address, OnAccept on_accept);
  void Close();
  // The bound address, e.g. "127.0.0.1:41234" or "unix:/run/pincer.sock".
  const std::string& bound() const { return bound_; }

 private:
  void Accept();

  asio::io_context& io_;
  asio::basic_socket_acceptor<asio::generic::stream_protocol> acceptor_;
  OnAccept on_accept_;
  std::string bound_;
  std::string unix_path_;
};

// Splits "host:port" ("[::1]:7878" for IPv6). Returns false when malformed.
bool SplitHostPort(const std::string& address, std::string& host, uint16_t& port);

}  // namespace pincer
