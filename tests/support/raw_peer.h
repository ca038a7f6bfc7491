// A bare TCP peer for bad-input tests: sends arbitrary bytes (broken JSON,
// oversize lines, nothing at all) and reads the daemon's lines back, with
// no protocol logic in the way. Plain blocking POSIX sockets with poll()
// timeouts.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace pincer::test {

class RawPeer {
 public:
  RawPeer() = default;
  ~RawPeer();
  RawPeer(const RawPeer&) = delete;
  RawPeer& operator=(const RawPeer&) = delete;

  // Connects to "HOST:PORT" (IPv4). Returns "" or an error message.
  std::string Connect(const std::string& addr);
  // Takes over a connected socket (one a test accepted, playing pincerd).
  void Adopt(int fd) { fd_ = fd; }
  // Writes all of `bytes`; false when the peer is gone.
  bool SendRaw(const std::string& bytes);
  bool SendLine(const std::string& line) { return SendRaw(line + "\n"); }
  bool SendJson(const nlohmann::json& message) { return SendLine(message.dump()); }
  // Sends a hello for `role` and reads the answer (welcome or error).
  std::optional<nlohmann::json> Hello(const std::string& role, const std::string& token = "",
                                      const nlohmann::json& extra = nlohmann::json::object());

  // The next line (without its newline), or nullopt on timeout or close.
  std::optional<std::string> ReadLine(std::chrono::milliseconds timeout);
  // The next line parsed as JSON (null when it is not JSON), or nullopt.
  std::optional<nlohmann::json> ReadJson(std::chrono::milliseconds timeout);
  // Reads until the daemon closes the connection; true if it did within
  // `timeout`. Lines read meanwhile are kept for ReadLine.
  bool WaitClosed(std::chrono::milliseconds timeout);
  bool closed() const { return closed_; }
  void Close();

 private:
  // Reads what is available within `timeout` into buffer_; false on timeout.
  bool Fill(std::chrono::milliseconds timeout);

  int fd_ = -1;
  std::string buffer_;
  bool closed_ = false;
};

}  // namespace pincer::test
