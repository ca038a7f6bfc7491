// nats-server, driven as its client libraries drive it: request/reply
// with one wildcard inbox subscription per client, and workers in a queue
// group so that each request goes to exactly one of them. Raw text
// protocol with verbose off, writes batched per loop turn.
#include <cstdlib>
#include <string_view>

#include "net_util.h"
#include "systems.h"

namespace pincer::bench {
namespace {

uint64_t ParseUint(std::string_view s) {
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') break;
    v = v * 10 + static_cast<uint64_t>(ch - '0');
  }
  return v;
}

// Splits "MSG <subject> <sid> [reply-to] <#bytes>" into its tokens.
int Tokens(std::string_view line, std::string_view* tok, int max) {
  int n = 0;
  std::size_t i = 0;
  while (i < line.size() && n < max) {
    while (i < line.size() && line[i] == ' ') ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ') ++j;
    if (j > i) tok[n++] = line.substr(i, j - i);
    i = j;
  }
  return n;
}

void Connect(Conn& c) {
  c.out().append(
      R"(CONNECT {"verbose":false,"pedantic":false,"lang":"c++","version":"bench","protocol":1})"
      "\r\n");
}

// Reads protocol lines; for every MSG calls on_msg(tokens, n, payload).
// Returns when the buffer holds no complete message.
template <typename F>
void Drain(Conn& c, F&& on_msg) {
  for (;;) {
    std::string_view rest = c.pending();
    const auto nl = rest.find('\n');
    if (nl == std::string_view::npos) return;
    std::string_view line = rest.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with("MSG ")) {
      std::string_view tok[5];
      const int n = Tokens(line, tok, 5);
      const std::size_t size = ParseUint(tok[n - 1]);
      if (rest.size() < nl + 1 + size + 2) return;  // wait for the body
      std::string_view body = rest.substr(nl + 1, size);
      on_msg(tok, n, body);
      c.Consume(nl + 1 + size + 2);
      continue;
    }
    if (line.starts_with("PING")) c.out().append("PONG\r\n");
    if (line.starts_with("-ERR")) std::_Exit(5);
    c.Consume(nl + 1);
  }
}

class NatsClient final : public ClientConn {
 public:
  NatsClient(int fd, int index) : conn_(fd), inbox_("_INBOX.bench" + std::to_string(index) + ".") {
    Connect(conn_);
    conn_.out().append("SUB " + inbox_ + "* 1\r\n");
    conn_.Flush();
  }

  void Submit(uint64_t req) override {
    std::string& o = conn_.out();
    o.append("PUB bench ");
    o.append(inbox_);
    o.append(std::to_string(req));
    o.append(" ");
    o.append(std::to_string(Payload().size()));
    o.append("\r\n");
    o.append(Payload());
    o.append("\r\n");
  }

  void Wait(std::vector<uint64_t>& done) override {
    const std::size_t before = done.size();
    while (done.size() == before) {
      conn_.Flush();
      conn_.Fill();
      Drain(conn_, [&](std::string_view* tok, int, std::string_view) {
        done.push_back(ParseUint(tok[1].substr(inbox_.size())));
      });
    }
  }

 private:
  Conn conn_;
  std::string inbox_;
};

std::unique_ptr<ClientConn> MakeClient(const Endpoint& ep, int index) {
  const int fd = ConnectLocal(ep.port);
  if (fd < 0) std::_Exit(2);
  return std::make_unique<NatsClient>(fd, index);
}

void WorkerLoop(const Endpoint& ep, int) {
  const int fd = ConnectLocal(ep.port);
  if (fd < 0) std::_Exit(2);
  Conn c(fd);
  Connect(c);
  c.out().append("SUB bench workers 1\r\n");
  c.Flush();
  for (;;) {
    c.Fill();
    Drain(c, [&](std::string_view* tok, int n, std::string_view body) {
      if (n < 5) return;  // no reply-to: nothing to answer
      std::string& o = c.out();
      o.append("PUB ");
      o.append(tok[3]);
      o.append(" ");
      o.append(std::to_string(body.size()));
      o.append("\r\n");
      o.append(body);
      o.append("\r\n");
    });
    c.Flush();
  }
}

}  // namespace

SystemAdapter NatsAdapter() { return {"nats-server", &MakeClient, &WorkerLoop}; }

}  // namespace pincer::bench
