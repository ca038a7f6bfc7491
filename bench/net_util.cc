#include "net_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace pincer::bench {

int ConnectLocal(int port, int wait_ms) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const uint64_t deadline = NowNs() + static_cast<uint64_t>(wait_ms) * 1'000'000;
  for (;;) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    close(fd);
    if (NowNs() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

uint64_t NowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

Conn::~Conn() {
  if (fd_ >= 0) close(fd_);
}

void Conn::Flush() {
  std::size_t done = 0;
  while (done < out_.size()) {
    ssize_t n = send(fd_, out_.data() + done, out_.size() - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::_Exit(3);
    }
    done += static_cast<std::size_t>(n);
  }
  out_.clear();
}

void Conn::Fill() {
  if (pos_ > 0 && pos_ == in_.size()) {
    in_.clear();
    pos_ = 0;
  } else if (pos_ > 64 * 1024) {
    in_.erase(0, pos_);
    pos_ = 0;
  }
  const std::size_t used = in_.size();
  in_.resize(used + 64 * 1024);
  for (;;) {
    ssize_t n = recv(fd_, in_.data() + used, 64 * 1024, 0);
    if (n > 0) {
      in_.resize(used + static_cast<std::size_t>(n));
      return;
    }
    if (n < 0 && errno == EINTR) continue;
    std::_Exit(n == 0 ? 0 : 3);  // server gone: the run is over
  }
}

bool Conn::NextLine(std::string_view& line) {
  const char* base = in_.data() + pos_;
  const void* nl = std::memchr(base, '\n', in_.size() - pos_);
  if (!nl) return false;
  std::size_t len = static_cast<const char*>(nl) - base;
  pos_ += len + 1;
  if (len > 0 && base[len - 1] == '\r') --len;
  line = std::string_view(base, len);
  return true;
}

bool Conn::Take(std::size_t n, std::string_view& bytes) {
  if (in_.size() - pos_ < n) return false;
  bytes = std::string_view(in_.data() + pos_, n);
  pos_ += n;
  return true;
}

}  // namespace pincer::bench
