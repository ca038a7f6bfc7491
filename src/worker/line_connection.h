// One connection to pincerd carrying newline-delimited JSON: it dials (TCP
// or Unix), reads lines into a bounded buffer and keeps one write in flight
// with a queue behind it. It knows nothing of the protocol.
//
// Held by shared_ptr: every pending handler keeps it alive, and after
// Close() no callback fires, so the owner may drop it at any time.
#pragma once

#include <asio.hpp>
#include <asio/generic/stream_protocol.hpp>
#include <asio/ssl.hpp>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "client/address.h"
#include "protocol/line_framer.h"

namespace pincer::worker {

class LineConnection : public std::enable_shared_from_this<LineConnection> {
 public:
  using LineHandler = std::function<void(std::string_view line)>;
  using ClosedHandler = std::function<void(const std::string& reason)>;

  // `max_line_bytes`: the longest line accepted from the peer (newline
  // excluded); a longer one closes the connection. With `tls`, a TCP
  // endpoint is spoken to over TLS (its certificate must name the host
  // dialled); a Unix socket stays plain.
  static std::shared_ptr<LineConnection> Create(asio::io_context& io, std::size_t max_line_bytes,
                                                std::shared_ptr<asio::ssl::context> tls = nullptr);

  // Resolves, connects and (with TLS) handshakes; `done` gets "" on success,
  // else what failed. Called once, unless Close() came first.
  void Connect(const client::Address& endpoint, std::function<void(const std::string& error)> done);

  // Starts reading. `on_line` gets each non-empty line (without "\r\n");
  // `on_closed` is called once when the peer closes, an I/O error occurs or
  // a line is too long — never after Close().
  void Start(LineHandler on_line, ClosedHandler on_closed);

  // Queues a line (ending in '\n') for sending. Ignored once closed.
  void Send(std::string line);

  // Sends everything queued, then closes and calls `flushed` (also when
  // the connection fails first).
  void CloseAfterFlush(std::function<void()> flushed);

  // Closes now; no callback fires afterwards.
  void Close();

  bool closed() const { return closed_; }

 private:
  LineConnection(asio::io_context& io, std::size_t max_line_bytes,
                 std::shared_ptr<asio::ssl::context> tls);

  void ReadNext();
  void WriteNext();
  void Fail(const std::string& reason);
  void AfterConnect(std::error_code ec, const std::string& host,
                    std::function<void(const std::string&)>& done);
  void Handshake(const std::string& host, std::function<void(const std::string&)>& done);

  asio::generic::stream_protocol::socket socket_;
  // With TLS: the context, and the stream over socket_ once connected (a
  // Unix endpoint leaves it null). Reads and writes go through it then.
  std::shared_ptr<asio::ssl::context> tls_context_;
  std::unique_ptr<asio::ssl::stream<asio::generic::stream_protocol::socket&>> tls_;
  asio::ip::tcp::resolver resolver_;
  LineFramer in_;  // bytes read, not yet handed out as lines
  std::deque<std::string> write_queue_;
  bool is_unix_ = false;
  bool writing_ = false;
  bool closed_ = false;
  LineHandler on_line_;
  ClosedHandler on_closed_;
  std::function<void()> on_flushed_;
};

}  // namespace pincer::worker
