// Blocking TCP plumbing for the load generator's clients and workers. Each
// bench process is single-threaded and owns its sockets; buffering here
// lets every adapter batch its writes into one send per loop turn, the way
// a careful client library would.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace pincer::bench {

// Connects to 127.0.0.1:port, retrying for up to `wait_ms` while the server
// starts. Returns the fd or -1.
int ConnectLocal(int port, int wait_ms = 5000);
// A port that was free a moment ago (bind to 0, read it, close).
int FreePort();
// Monotonic nanoseconds.
uint64_t NowNs();

class Conn {
 public:
  explicit Conn(int fd = -1) : fd_(fd) {}
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  int fd() const { return fd_; }
  std::string& out() { return out_; }
  // Writes everything in out(). Exits the process on a socket error: a
  // bench peer that lost its server has nothing useful left to do.
  void Flush();
  // Blocks until more bytes arrive; appends them to the input buffer.
  void Fill();
  // Next '\n'-terminated line (without "\r\n"/"\n") if buffered.
  bool NextLine(std::string_view& line);
  // Exactly `n` buffered bytes if available.
  bool Take(std::size_t n, std::string_view& bytes);
  // Bytes buffered and not consumed yet.
  std::string_view pending() const { return std::string_view(in_).substr(pos_); }
  void Consume(std::size_t n) { pos_ += n; }

 private:
  int fd_;
  std::string in_;
  std::size_t pos_ = 0;
  std::string out_;
};

}  // namespace pincer::bench
