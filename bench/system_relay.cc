// The floor: a relay that only forwards lines client -> worker -> client.
// No parsing beyond finding newlines, no state beyond who is connected,
// one epoll loop that flushes every touched socket once per wake-up (the
// same batching pincerd does). Whatever pincerd costs above this is the
// price of being a dispatcher rather than a pipe.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net_util.h"
#include "systems.h"

namespace pincer::bench {
namespace {

struct Peer {
  enum class Kind { kUnknown, kClient, kWorker } kind = Kind::kUnknown;
  std::string in;
  std::string out;
  bool dirty = false;
};

class Relay {
 public:
  explicit Relay(int port) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listen_fd_, 1024) != 0) {
      std::_Exit(2);
    }
    ep_ = epoll_create1(0);
    Watch(listen_fd_);
  }

  [[noreturn]] void Run() {
    epoll_event events[256];
    for (;;) {
      const int n = epoll_wait(ep_, events, 256, -1);
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == listen_fd_) {
          Accept();
        } else {
          OnReadable(fd);
        }
      }
      for (int fd : dirty_) FlushPeer(fd);
      dirty_.clear();
    }
  }

 private:
  void Watch(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  }

  void Accept() {
    for (;;) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK);
      if (fd < 0) return;
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      peers_[fd];
      Watch(fd);
    }
  }

  void Drop(int fd) {
    epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
    close(fd);
    peers_.erase(fd);
    std::erase(workers_, fd);
  }

  Peer& Out(int fd) {
    Peer& p = peers_[fd];
    if (!p.dirty) {
      p.dirty = true;
      dirty_.push_back(fd);
    }
    return p;
  }

  void OnReadable(int fd) {
    char buf[64 * 1024];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      if (n < 0 && errno == EAGAIN) return;
      return Drop(fd);
    }
    Peer& p = peers_[fd];
    p.in.append(buf, static_cast<std::size_t>(n));
    std::size_t start = 0;
    for (;;) {
      const auto nl = p.in.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(p.in.data() + start, nl - start);
      start = nl + 1;
      OnLine(fd, p, line);
    }
    p.in.erase(0, start);
  }

  void OnLine(int fd, Peer& p, std::string_view line) {
    if (p.kind == Peer::Kind::kUnknown) {
      p.kind = line == "W" ? Peer::Kind::kWorker : Peer::Kind::kClient;
      if (p.kind == Peer::Kind::kWorker) workers_.push_back(fd);
      return;
    }
    if (p.kind == Peer::Kind::kClient) {
      if (workers_.empty()) return;
      const int w = workers_[next_++ % workers_.size()];
      std::string& o = Out(w).out;
      o.append(std::to_string(fd));
      o.push_back(' ');
      o.append(line);
      o.push_back('\n');
      return;
    }
    const auto sp = line.find(' ');
    const int client = std::atoi(std::string(line.substr(0, sp)).c_str());
    if (!peers_.count(client)) return;
    std::string& o = Out(client).out;
    o.append(line.substr(sp + 1));
    o.push_back('\n');
  }

  void FlushPeer(int fd) {
    auto it = peers_.find(fd);
    if (it == peers_.end()) return;
    Peer& p = it->second;
    p.dirty = false;
    std::size_t done = 0;
    // Blocking-until-written keeps the floor simple; the bench windows fit
    // in the socket buffers, so this never waits in practice.
    while (done < p.out.size()) {
      const ssize_t n = send(fd, p.out.data() + done, p.out.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EAGAIN) continue;
      if (n <= 0) return Drop(fd);
      done += static_cast<std::size_t>(n);
    }
    p.out.clear();
  }

  int listen_fd_;
  int ep_;
  std::unordered_map<int, Peer> peers_;
  std::vector<int> workers_;
  std::vector<int> dirty_;
  std::size_t next_ = 0;
};

class RelayClient final : public ClientConn {
 public:
  explicit RelayClient(int fd) : conn_(fd) { conn_.out().append("C\n"); }
  void Submit(uint64_t req) override {
    conn_.out().append(std::to_string(req));
    conn_.out().push_back(' ');
    conn_.out().append(Payload());
    conn_.out().push_back('\n');
  }
  void Wait(std::vector<uint64_t>& done) override {
    conn_.Flush();
    const std::size_t before = done.size();
    while (done.size() == before) {
      conn_.Fill();
      std::string_view line;
      while (conn_.NextLine(line)) done.push_back(std::strtoull(line.data(), nullptr, 10));
    }
  }

 private:
  Conn conn_;
};

std::unique_ptr<ClientConn> MakeClient(const Endpoint& ep, int) {
  const int fd = ConnectLocal(ep.port);
  if (fd < 0) std::_Exit(2);
  return std::make_unique<RelayClient>(fd);
}

void WorkerLoop(const Endpoint& ep, int) {
  const int fd = ConnectLocal(ep.port);
  if (fd < 0) std::_Exit(2);
  Conn c(fd);
  c.out().append("W\n");
  c.Flush();
  for (;;) {
    c.Fill();
    std::string_view line;
    while (c.NextLine(line)) {
      c.out().append(line);
      c.out().push_back('\n');
    }
    c.Flush();
  }
}

}  // namespace

void RunRelayServer(int port) { Relay(port).Run(); }

SystemAdapter RelayAdapter() { return {"floor (relay)", &MakeClient, &WorkerLoop}; }

}  // namespace pincer::bench
