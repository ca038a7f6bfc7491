#include "worker/line_connection.h"

#include <fcntl.h>

#include <utility>
#include <vector>

#include "tls/tls_context.h"

namespace pincer::worker {
namespace {
// The most one read takes off the socket.
constexpr std::size_t kReadChunk = 64 * 1024;
}  // namespace

std::shared_ptr<LineConnection> LineConnection::Create(asio::io_context& io,
                                                       std::size_t max_line_bytes,
                                                       std::shared_ptr<asio::ssl::context> tls) {
  return std::shared_ptr<LineConnection>(new LineConnection(io, max_line_bytes, std::move(tls)));
}

LineConnection::LineConnection(asio::io_context& io, std::size_t max_line_bytes,
                               std::shared_ptr<asio::ssl::context> tls)
    : socket_(io), tls_context_(std::move(tls)), resolver_(io), in_(max_line_bytes) {}

void LineConnection::Connect(const client::Address& endpoint,
                             std::function<void(const std::string&)> done) {
  auto self = shared_from_this();
  is_unix_ = endpoint.kind == client::Address::Kind::kUnix;
  if (is_unix_) {
    const asio::local::stream_protocol::endpoint unix_ep(endpoint.path);
    socket_.async_connect(asio::generic::stream_protocol::endpoint(unix_ep),
                          [this, self, done = std::move(done)](std::error_code ec) mutable {
                            AfterConnect(ec, "", done);
                          });
    return;
  }
  resolver_.async_resolve(
      endpoint.host, endpoint.port,
      [this, self, host = endpoint.host, done = std::move(done)](
          std::error_code ec, asio::ip::tcp::resolver::results_type results) mutable {
        if (closed_) return;
        if (ec) {
          done(ec.message());
          return;
        }
        std::vector<asio::generic::stream_protocol::endpoint> candidates;
        for (const auto& entry : results) candidates.emplace_back(entry.endpoint());
        asio::async_connect(
            socket_, candidates,
            [this, self, host, done = std::move(done)](
                std::error_code ec, const asio::generic::stream_protocol::endpoint&) mutable {
              AfterConnect(ec, host, done);
            });
      });
}

void LineConnection::AfterConnect(std::error_code ec, const std::string& host,
                                  std::function<void(const std::string&)>& done) {
  if (closed_) return;
  if (ec) {
    done(ec.message());
    return;
  }
  {
    // Asio opens sockets without SOCK_CLOEXEC; task processes must not
    // inherit the daemon connection (the spawner closes it too).
    const int fd = socket_.native_handle();
    fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC);
    if (!is_unix_) {
      std::error_code ignored;
      socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
    }
  }
  if (tls_context_ && !is_unix_) return Handshake(host, done);
  done("");
}

void LineConnection::Handshake(const std::string& host,
                               std::function<void(const std::string&)>& done) {
  tls_ = std::make_unique<asio::ssl::stream<asio::generic::stream_protocol::socket&>>(
      socket_, *tls_context_);
  std::string error;
  if (!tls::ExpectServerName(tls_->native_handle(), host, &error)) {
    done(error);
    return;
  }
  tls_->async_handshake(
      asio::ssl::stream_base::client,
      [this, self = shared_from_this(), done = std::move(done)](std::error_code ec) mutable {
        if (closed_) return;
        if (ec) {
          done("TLS handshake failed: " + tls::DescribeHandshakeError(tls_->native_handle(), ec));
          return;
        }
        done("");
      });
}

void LineConnection::Start(LineHandler on_line, ClosedHandler on_closed) {
  on_line_ = std::move(on_line);
  on_closed_ = std::move(on_closed);
  ReadNext();
}

void LineConnection::ReadNext() {
  auto on_read = [this, self = shared_from_this()](std::error_code ec, std::size_t n) {
    if (closed_) return;
    in_.Commit(n);
    while (const std::optional<std::string_view> line = in_.NextLine()) {
      if (on_line_) on_line_(*line);
      if (closed_) return;
    }
    if (in_.overflowed()) {
      Fail("the daemon sent a line longer than " + std::to_string(in_.max_line()) + " bytes");
    } else if (!ec) {
      ReadNext();
    } else if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) {
      Fail("the daemon closed the connection");
    } else {
      Fail(tls_ ? tls::DescribeHandshakeError(tls_->native_handle(), ec) : ec.message());
    }
  };
  const auto into = asio::buffer(in_.Prepare(kReadChunk), kReadChunk);
  if (tls_) {
    tls_->async_read_some(into, std::move(on_read));
  } else {
    socket_.async_read_some(into, std::move(on_read));
  }
}

void LineConnection::Send(std::string line) {
  if (closed_) return;
  write_queue_.push_back(std::move(line));
  if (!writing_) WriteNext();
}

void LineConnection::WriteNext() {
  if (write_queue_.empty()) {
    if (on_flushed_) {
      auto flushed = std::move(on_flushed_);
      Close();
      flushed();
    }
    return;
  }
  writing_ = true;
  auto on_written = [this, self = shared_from_this()](std::error_code ec, std::size_t) {
    writing_ = false;
    if (closed_) return;
    if (ec) {
      Fail("write failed: " + ec.message());
      return;
    }
    write_queue_.pop_front();
    WriteNext();
  };
  if (tls_) {
    asio::async_write(*tls_, asio::buffer(write_queue_.front()), std::move(on_written));
  } else {
    asio::async_write(socket_, asio::buffer(write_queue_.front()), std::move(on_written));
  }
}

void LineConnection::CloseAfterFlush(std::function<void()> flushed) {
  if (closed_) {
    flushed();
    return;
  }
  on_flushed_ = std::move(flushed);
  if (!writing_) WriteNext();
}

void LineConnection::Fail(const std::string& reason) {
  auto on_closed = std::move(on_closed_);
  auto flushed = std::move(on_flushed_);
  Close();
  if (flushed) {
    flushed();
  } else if (on_closed) {
    on_closed(reason);
  }
}

void LineConnection::Close() {
  if (closed_) return;
  // The callbacks are kept, not reset: Close() may run inside one of them,
  // and closed_ already keeps them from being called again.
  closed_ = true;
  std::error_code ignored;
  resolver_.cancel();
  socket_.shutdown(asio::socket_base::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace pincer::worker
