#include "net/connection.h"

#include "tls/tls_context.h"

namespace pincer {
namespace {
constexpr std::size_t kReadChunk = 64 * 1024;
// A connection starts reading in small chunks, so an idle one (thousands of
// them, before or after hello) holds little; each read that fills its chunk
// doubles it, up to kReadChunk.
constexpr std::size_t kFirstReadChunk = 4 * 1024;
// A peer that sends but does not read its answers is not read from while
// this much output waits for it (backpressure, not unbounded buffering).
constexpr std::size_t kMaxPendingOut = 16 * 1024 * 1024;
}  // namespace

Connection::Connection(Socket socket, uint64_t id, std::size_t max_line, Handler& handler,
                       std::shared_ptr<asio::ssl::context> tls)
    : socket_(std::move(socket)),
      tls_context_(std::move(tls)),
      id_(id),
      handler_(handler),
      in_(max_line),
      chunk_(kFirstReadChunk) {
  if (tls_context_) {
    tls_stream_ = std::make_unique<asio::ssl::stream<Socket&>>(socket_, *tls_context_);
    handshaking_ = true;  // from now: nothing can be written before the handshake
  }
}

void Connection::Start() {
  if (!tls_stream_) return Read();
  // A peer that stays silent here is closed by the owner's hello timeout.
  tls_stream_->async_handshake(
      asio::ssl::stream_base::server,
      [self = shared_from_this()](const std::error_code& ec) { self->OnHandshake(ec); });
}

void Connection::OnHandshake(const std::error_code& ec) {
  handshaking_ = false;
  if (closed_) return;
  if (ec) {
    handler_.OnHandshakeFailed(*this,
                               tls::DescribeHandshakeError(tls_stream_->native_handle(), ec));
    return Close();
  }
  Flush();
  Read();
}

void Connection::Read() {
  if (handshaking_) return;  // OnHandshake reads once the TLS handshake is done
  if (closed_ || close_after_flush_ || reading_ || paused_) return;
  if (out_.size() + writing_.size() > kMaxPendingOut) return;  // resumed in OnWritten
  reading_ = true;
  auto on_read = [self = shared_from_this()](const std::error_code& ec, std::size_t n) {
    self->reading_ = false;
    if (ec) return self->Close();
    self->in_.Commit(n);
    if (n == self->chunk_ && self->chunk_ < kReadChunk) self->chunk_ *= 2;
    self->OnRead(n);
  };
  const auto buffer = asio::buffer(in_.Prepare(chunk_), chunk_);
  if (tls_stream_) {
    tls_stream_->async_read_some(buffer, std::move(on_read));
  } else {
    socket_.async_read_some(buffer, std::move(on_read));
  }
}

void Connection::ResumeReading() {
  paused_ = false;
  Read();
}

void Connection::OnRead(std::size_t) {
  handler_.BeginLines(*this);
  const bool more = TakeLines();
  handler_.EndLines(*this);
  if (more) Read();
}

bool Connection::TakeLines() {
  while (!closed_ && !close_after_flush_) {
    const std::optional<std::string_view> line = in_.NextLine();
    if (!line) break;
    handler_.OnLine(*this, *line);
  }
  if (closed_ || close_after_flush_) return false;
  if (in_.overflowed()) {
    handler_.OnOversizedLine(*this);
    return false;
  }
  return true;
}

void Connection::Flush() {
  if (closed_ || writing_in_flight_) return;
  if (handshaking_) {
    // Nothing can be written before the handshake ends; a close cannot wait
    // for it. `self`: no operation may be pending to keep this alive.
    if (close_after_flush_) {
      auto self = shared_from_this();
      Close();
    }
    return;
  }
  if (out_.empty()) {
    if (close_after_flush_) Close();
    return;
  }
  writing_.swap(out_);
  out_.clear();
  writing_in_flight_ = true;
  auto on_written = [self = shared_from_this()](const std::error_code& ec, std::size_t) {
    self->writing_in_flight_ = false;
    if (ec) return self->Close();
    self->OnWritten();
  };
  if (tls_stream_) {
    asio::async_write(*tls_stream_, asio::buffer(writing_), std::move(on_written));
  } else {
    asio::async_write(socket_, asio::buffer(writing_), std::move(on_written));
  }
}

void Connection::OnWritten() {
  writing_.clear();
  if (writing_.capacity() > kMaxPendingOut) std::string().swap(writing_);
  Flush();
  if (notify_written_) handler_.OnWritten(*this);
  Read();
}

void Connection::CloseAfterFlush() {
  close_after_flush_ = true;
  Flush();
}

void Connection::Close() {
  if (closed_) return;
  closed_ = true;
  std::error_code ignored;
  socket_.shutdown(asio::socket_base::shutdown_both, ignored);
  socket_.close(ignored);
  handler_.OnClosed(*this);
}

}  // namespace pincer
