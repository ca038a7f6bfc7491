// One peer connection: newline-framed reads into a bounded buffer, and
// writes coalesced into one in flight with the next batch building behind
// it. It moves bytes only; what a line means is the handler's business.
//
// Lifetime: held by shared_ptr; every pending operation holds a reference,
// so the object outlives its handlers. Threading: the io_context's thread.
#pragma once

#include <asio.hpp>
#include <asio/ssl.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "protocol/line_framer.h"

namespace pincer {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  // Readable bytes after every line handed to OnLine (so a parser may read
  // past the end of a line without copying it first): the framer's.
  static constexpr std::size_t kLinePadding = pincer::kLinePadding;

  using Socket = asio::generic::stream_protocol::socket;

  class Handler {
   public:
    virtual ~Handler() = default;
    // The lines of one read are handed over between these two calls.
    virtual void BeginLines(Connection&) {}
    virtual void EndLines(Connection&) {}
    // `line` is followed in memory by at least kLinePadding readable bytes.
    virtual void OnLine(Connection& c, std::string_view line) = 0;
    // A line grew past the frame limit. The connection stops reading.
    virtual void OnOversizedLine(Connection& c) = 0;
    // Called once, when the connection is closed for whatever reason.
    virtual void OnClosed(Connection& c) = 0;
    // A write completed; called only while set_notify_written(true).
    virtual void OnWritten(Connection&) {}
    // The TLS handshake failed (`why` says how); OnClosed follows.
    virtual void OnHandshakeFailed(Connection&, const std::string& /*why*/) {}
  };

  // `handler` must outlive the connection's last callback. With `tls`, the
  // peer speaks TLS (pincerd is the server side): Start() handshakes first,
  // and output queued before the handshake ends waits for it.
  Connection(Socket socket, uint64_t id, std::size_t max_line, Handler& handler,
             std::shared_ptr<asio::ssl::context> tls = nullptr);

  void Start();
  uint64_t id() const { return id_; }
  bool open() const { return !closed_; }
  // The longest line accepted from now on (e.g. a small one until hello).
  void set_max_line(std::size_t max_line) { in_.set_max_line(max_line); }
  std::size_t max_line() const { return in_.max_line(); }

  // Backpressure the handler applies for its own buffers: no reads while
  // paused (the lines of a read already done are still handed over).
  void PauseReading() { paused_ = true; }
  void ResumeReading();
  bool reading_paused() const { return paused_; }
  // Output not yet written to the socket: the next batch and the one in
  // flight.
  std::size_t pending_out() const { return out_.size() + writing_.size(); }
  // While on, the handler hears of every completed write (OnWritten).
  void set_notify_written(bool on) { notify_written_ = on; }

  // Pending output; append complete lines, then call Flush().
  std::string& out() { return out_; }
  void Flush();
  // Stops reading, writes what is queued, then closes. During a TLS
  // handshake nothing can be written: it closes at once.
  void CloseAfterFlush();
  void Close();

 private:
  void Read();
  void OnRead(std::size_t n);
  // Hands over the complete lines in in_; false when reading must stop.
  bool TakeLines();
  void OnWritten();
  void OnHandshake(const std::error_code& ec);

  Socket socket_;
  // Set for a TLS peer; it keeps its context alive past a reload that
  // replaced it. Every read and write goes through tls_stream_ then.
  std::shared_ptr<asio::ssl::context> tls_context_;
  std::unique_ptr<asio::ssl::stream<Socket&>> tls_stream_;
  bool handshaking_ = false;  // TLS: from construction until the handshake succeeded
  const uint64_t id_;
  Handler& handler_;

  LineFramer in_;        // input not yet handed over, read straight into it
  std::size_t chunk_;    // the most one read takes (grows while reads fill it)
  std::string out_;      // next batch to write
  std::string writing_;  // the batch in flight
  bool writing_in_flight_ = false;
  bool reading_ = false;
  bool paused_ = false;
  bool notify_written_ = false;
  bool close_after_flush_ = false;
  bool closed_ = false;
};

}  // namespace pincer
