#include "support/raw_peer.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace pincer::test {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

RawPeer::~RawPeer() { Close(); }

void RawPeer::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

std::string RawPeer::Connect(const std::string& addr) {
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos) return "no port in " + addr;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::stoi(addr.substr(colon + 1))));
  if (::inet_pton(AF_INET, addr.substr(0, colon).c_str(), &sa.sin_addr) != 1) {
    return "not an IPv4 address: " + addr;
  }
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return std::strerror(errno);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    std::string err = std::strerror(errno);
    Close();
    return err;
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return "";
}

bool RawPeer::SendRaw(const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

std::optional<nlohmann::json> RawPeer::Hello(const std::string& role, const std::string& token,
                                             const nlohmann::json& extra) {
  nlohmann::json hello = {{"type", "hello"}, {"role", role}, {"proto", 1}, {"token", token}};
  for (auto it = extra.begin(); it != extra.end(); ++it) hello[it.key()] = it.value();
  if (!SendJson(hello)) return std::nullopt;
  return ReadJson(milliseconds(5000));
}

bool RawPeer::Fill(milliseconds timeout) {
  if (fd_ < 0 || closed_) return false;
  pollfd p{fd_, POLLIN, 0};
  const int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (r <= 0) return false;
  char buf[65536];
  const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) {
    closed_ = true;
    return false;
  }
  buffer_.append(buf, static_cast<std::size_t>(n));
  return true;
}

std::optional<std::string> RawPeer::ReadLine(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    const auto nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || closed_) return std::nullopt;
    Fill(left);
  }
}

std::optional<nlohmann::json> RawPeer::ReadJson(milliseconds timeout) {
  auto line = ReadLine(timeout);
  if (!line) return std::nullopt;
  return nlohmann::json::parse(*line, nullptr, /*allow_exceptions=*/false);
}

bool RawPeer::WaitClosed(milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!closed_) {
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    Fill(left);
  }
  return true;
}

}  // namespace pincer::test
