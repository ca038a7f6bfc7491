// The test's side of pincerd's HTTP endpoint (metrics_listen): a plain
// HTTP/1.0 GET, the samples of a /metrics text, and bare TCP connections
// that say nothing (to hold the server's threads).
#pragma once

#include <map>
#include <optional>
#include <string>

namespace pincer::test {

struct HttpResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
};

// GET `path` from "host:port"; nullopt when the connection or the answer
// failed (the socket gives up after 10 s of silence).
std::optional<HttpResponse> HttpGet(const std::string& host_port, const std::string& path);
// Any method, with more header lines ("Name: value"; a "Host" replaces
// the one sent by default) and a body.
std::optional<HttpResponse> HttpRequest(const std::string& host_port, const std::string& method,
                                        const std::string& path,
                                        const std::map<std::string, std::string>& headers = {},
                                        const std::string& body = "");

// The value of the sample `series` (e.g. `pincer_workers{state="ready"}`)
// in a /metrics text; nullopt when absent.
std::optional<double> Sample(const std::string& text, const std::string& series);

// A TCP connection to "host:port" that sends nothing; closed with the object.
class IdleConnection {
 public:
  explicit IdleConnection(const std::string& host_port);
  ~IdleConnection();
  IdleConnection(const IdleConnection&) = delete;
  IdleConnection& operator=(const IdleConnection&) = delete;

  bool connected() const { return fd_ >= 0; }
  // Whether the server has closed it (an EOF or a reset is waiting), now.
  bool ClosedByPeer() const;

 private:
  int fd_ = -1;
};

}  // namespace pincer::test
