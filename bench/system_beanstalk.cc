// beanstalkd over its text protocol: clients `put` into the `bench` tube;
// workers `reserve`, `put` the result into the client's own reply tube and
// `delete` the job; the client reserves from its reply tube. Commands are
// pipelined where the protocol allows (replies come back in order).
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

// Consumes one reply. A RESERVED reply fills `id` and `body` and returns
// true; other replies return true with `body` empty. False: need more bytes.
bool NextReply(Conn& c, std::string_view& id, std::string_view& body) {
  std::string_view rest = c.pending();
  const auto nl = rest.find("\r\n");
  if (nl == std::string_view::npos) return false;
  std::string_view line = rest.substr(0, nl);
  body = {};
  if (line.starts_with("RESERVED ")) {
    const auto sp = line.find(' ', 9);
    id = line.substr(9, sp - 9);
    const std::size_t size = ParseUint(line.substr(sp + 1));
    if (rest.size() < nl + 2 + size + 2) return false;
    body = rest.substr(nl + 2, size);
    c.Consume(nl + 2 + size + 2);
    return true;
  }
  if (!line.starts_with("INSERTED") && !line.starts_with("DELETED") && !line.starts_with("USING") &&
      !line.starts_with("WATCHING")) {
    std::_Exit(5);  // OUT_OF_MEMORY, JOB_TOO_BIG, ...: the run is invalid
  }
  c.Consume(nl + 2);
  return true;
}

void Put(std::string& o, std::string_view data) {
  o.append("put 0 0 60 ");
  o.append(std::to_string(data.size()));
  o.append("\r\n");
  o.append(data);
  o.append("\r\n");
}

class BeanstalkClient final : public ClientConn {
 public:
  BeanstalkClient(int fd, int index) : conn_(fd), prefix_(std::to_string(index) + " ") {
    conn_.out().append("use bench\r\nwatch reply." + std::to_string(index) +
                       "\r\nignore default\r\n");
  }

  void Submit(uint64_t req) override {
    std::string data = prefix_;
    data.append(std::to_string(req));
    data.push_back(' ');
    data.append(Payload());
    Put(conn_.out(), data);
  }

  void Wait(std::vector<uint64_t>& done) override {
    conn_.out().append("reserve\r\n");
    conn_.Flush();
    for (;;) {
      std::string_view id, body;
      while (NextReply(conn_, id, body)) {
        if (body.empty()) continue;
        // body: "<client> <req> <payload>"
        done.push_back(ParseUint(body.substr(body.find(' ') + 1)));
        conn_.out().append("delete ");
        conn_.out().append(id);
        conn_.out().append("\r\n");
        return;  // sent with the next batch
      }
      conn_.Fill();
    }
  }

 private:
  Conn conn_;
  std::string prefix_;
};

std::unique_ptr<ClientConn> MakeClient(const Endpoint& ep, int index) {
  const int fd = ConnectLocal(ep.port);
  if (fd < 0) std::_Exit(2);
  return std::make_unique<BeanstalkClient>(fd, index);
}

void WorkerLoop(const Endpoint& ep, int) {
  const int fd = ConnectLocal(ep.port);
  if (fd < 0) std::_Exit(2);
  Conn c(fd);
  c.out().append("watch bench\r\nignore default\r\nreserve\r\n");
  c.Flush();
  std::string using_client;
  for (;;) {
    c.Fill();
    std::string_view id, body;
    while (NextReply(c, id, body)) {
      if (body.empty()) continue;
      const std::string_view client = body.substr(0, body.find(' '));
      std::string& o = c.out();
      if (client != using_client) {
        using_client.assign(client);
        o.append("use reply.");
        o.append(client);
        o.append("\r\n");
      }
      Put(o, body);
      o.append("delete ");
      o.append(id);
      o.append("\r\nreserve\r\n");
    }
    c.Flush();
  }
}

}  // namespace

SystemAdapter BeanstalkAdapter() { return {"beanstalkd", &MakeClient, &WorkerLoop}; }

}  // namespace pincer::bench
