#include "support/http.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <sstream>

namespace pincer::test {
namespace {

// A connected TCP socket to "host:port", or -1.
int Connect(const std::string& host_port) {
  const auto colon = host_port.rfind(':');
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host_port.substr(0, colon).c_str(), host_port.substr(colon + 1).c_str(), &hints,
                    &res) != 0) {
    return -1;
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  return fd;
}

}  // namespace

std::optional<HttpResponse> HttpGet(const std::string& host_port, const std::string& path) {
  return HttpRequest(host_port, "GET", path);
}

std::optional<HttpResponse> HttpRequest(const std::string& host_port, const std::string& method,
                                        const std::string& path,
                                        const std::map<std::string, std::string>& headers,
                                        const std::string& body) {
  const int fd = Connect(host_port);
  if (fd < 0) return std::nullopt;
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string req = method + " " + path + " HTTP/1.0\r\n";
  if (!headers.count("Host")) req += "Host: " + host_port + "\r\n";
  for (const auto& [name, value] : headers) req += name + ": " + value + "\r\n";
  if (!body.empty() || method == "POST") {
    req += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string all;
  char buf[8192];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;)
    all.append(buf, static_cast<size_t>(n));
  ::close(fd);
  const auto head_end = all.find("\r\n\r\n");
  if (all.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos) return std::nullopt;
  HttpResponse r;
  r.status = std::atoi(all.c_str() + all.find(' ') + 1);
  r.body = all.substr(head_end + 4);
  std::istringstream head(all.substr(0, head_end));
  std::string line;
  std::getline(head, line);  // the status line
  while (std::getline(head, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1) == std::string::npos
                                      ? line.size()
                                      : line.find_first_not_of(' ', colon + 1));
  }
  return r;
}

std::optional<double> Sample(const std::string& text, const std::string& series) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return std::nullopt;
}

IdleConnection::IdleConnection(const std::string& host_port) : fd_(Connect(host_port)) {}

IdleConnection::~IdleConnection() {
  if (fd_ >= 0) ::close(fd_);
}

bool IdleConnection::ClosedByPeer() const {
  if (fd_ < 0) return true;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, 0) != 1) return false;
  char c;
  // The server sends nothing but a close here; data would mean open.
  return ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
}

}  // namespace pincer::test
