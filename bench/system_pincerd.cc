// pincerd over its own protocol (docs/protocol.md): pipelined
// `submit` with `wait: true`; the `end` event carries the same `req`.
#include <cstdlib>
#include <string_view>

#include "net_util.h"
#include "systems.h"

namespace pincer::bench {
namespace {

// Reads the integer after `key` in `line` (the bench controls both ends,
// so a full JSON parser is not needed to find one field).
bool FieldInt(std::string_view line, std::string_view key, uint64_t& out) {
  const auto at = line.find(key);
  if (at == std::string_view::npos) return false;
  uint64_t v = 0;
  for (std::size_t i = at + key.size(); i < line.size() && line[i] >= '0' && line[i] <= '9'; ++i) {
    v = v * 10 + static_cast<uint64_t>(line[i] - '0');
  }
  out = v;
  return true;
}

void Hello(Conn& c, std::string_view role_fields) {
  c.out().append(R"({"type":"hello","proto":1,"token":"",)");
  c.out().append(role_fields);
  c.out().append("}\n");
  c.Flush();
  std::string_view line;
  for (;;) {
    while (c.NextLine(line)) {
      if (line.find(R"("type":"welcome")") != std::string_view::npos) return;
      std::_Exit(4);  // refused: the bench config is wrong
    }
    c.Fill();
  }
}

class PincerdClient final : public ClientConn {
 public:
  explicit PincerdClient(int fd) : conn_(fd) { Hello(conn_, R"("role":"client")"); }

  void Submit(uint64_t req) override {
    std::string& o = conn_.out();
    o.append(R"({"type":"submit","req":)");
    o.append(std::to_string(req));
    o.append(R"(,"skills":["bench"],"payload":")");
    o.append(Payload());
    o.append("\",\"wait\":true}\n");
  }

  void Wait(std::vector<uint64_t>& done) override {
    conn_.Flush();
    const std::size_t before = done.size();
    while (done.size() == before) {
      conn_.Fill();
      std::string_view line;
      while (conn_.NextLine(line)) {
        if (line.starts_with(R"({"type":"end")")) {
          uint64_t req;
          if (FieldInt(line, R"("req":)", req)) done.push_back(req);
        } else if (line.starts_with(R"({"type":"error")")) {
          std::_Exit(5);
        }
      }
    }
  }

 private:
  Conn conn_;
};

std::unique_ptr<ClientConn> MakeClient(const Endpoint& ep, int) {
  const int fd = ConnectLocal(ep.port);
  if (fd < 0) std::_Exit(2);
  return std::make_unique<PincerdClient>(fd);
}

void WorkerLoop(const Endpoint& ep, int index) {
  const int fd = ConnectLocal(ep.port);
  if (fd < 0) std::_Exit(2);
  Conn c(fd);
  Hello(c, R"("role":"worker","name":"bench-)" + std::to_string(index) +
               R"(","skills":["bench"],"capacity":)" + std::to_string(ep.worker_capacity));
  constexpr std::string_view kId = R"("id":")";
  constexpr std::string_view kPayload = R"("payload":)";
  constexpr std::string_view kAttempt = R"(,"attempt":)";
  for (;;) {
    c.Fill();
    std::string_view line;
    while (c.NextLine(line)) {
      if (!line.starts_with(R"({"type":"task")")) continue;
      const auto id_at = line.find(kId) + kId.size();
      const auto id_end = line.find('"', id_at);
      const auto p_at = line.find(kPayload) + kPayload.size();
      const auto p_end = line.find(kAttempt, p_at);
      std::string& o = c.out();
      o.append(R"({"type":"result","id":")");
      o.append(line.substr(id_at, id_end - id_at));
      o.append(R"(","ok":true,"output":)");
      o.append(line.substr(p_at, p_end - p_at));
      o.append("}\n");
    }
    c.Flush();
  }
}

}  // namespace

SystemAdapter PincerdAdapter() { return {"pincerd", &MakeClient, &WorkerLoop}; }

}  // namespace pincer::bench
