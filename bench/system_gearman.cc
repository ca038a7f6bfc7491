// gearmand over its binary protocol (http://gearman.org/protocol/), the
// way libgearman drives it: foreground jobs (SUBMIT_JOB) pipelined on one
// client connection, function name = skill; workers CAN_DO it, GRAB_JOB,
// answer WORK_COMPLETE and sleep with PRE_SLEEP until a NOOP wakes them.
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string_view>
#include <unordered_map>

#include "net_util.h"
#include "systems.h"

namespace pincer::bench {
namespace {

enum : uint32_t {
  kCanDo = 1,
  kPreSleep = 4,
  kNoop = 6,
  kSubmitJob = 7,
  kJobCreated = 8,
  kGrabJob = 9,
  kNoJob = 10,
  kJobAssign = 11,
  kWorkComplete = 13,
  kWorkFail = 14,
};

void PutU32(std::string& o, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16),
                     static_cast<char>(v >> 8), static_cast<char>(v)};
  o.append(b, 4);
}
uint32_t GetU32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | u[3];
}

void Request(std::string& o, uint32_t type, std::initializer_list<std::string_view> args) {
  uint32_t size = 0;
  for (auto a : args) size += static_cast<uint32_t>(a.size());
  size += static_cast<uint32_t>(args.size() > 0 ? args.size() - 1 : 0);
  o.append("\0REQ", 4);
  PutU32(o, type);
  PutU32(o, size);
  bool first = true;
  for (auto a : args) {
    if (!first) o.push_back('\0');
    first = false;
    o.append(a);
  }
}

// Next complete response packet, if buffered.
bool NextPacket(Conn& c, uint32_t& type, std::string_view& data) {
  std::string_view rest = c.pending();
  if (rest.size() < 12) return false;
  const uint32_t size = GetU32(rest.data() + 8);
  if (rest.size() < 12 + size) return false;
  type = GetU32(rest.data() + 4);
  data = rest.substr(12, size);
  c.Consume(12 + size);
  return true;
}

class GearmanClient final : public ClientConn {
 public:
  explicit GearmanClient(int fd) : conn_(fd) {}

  void Submit(uint64_t req) override {
    Request(conn_.out(), kSubmitJob, {"bench", "", Payload()});
    created_.push_back(req);
  }

  void Wait(std::vector<uint64_t>& done) override {
    conn_.Flush();
    const std::size_t before = done.size();
    while (done.size() == before) {
      conn_.Fill();
      uint32_t type;
      std::string_view data;
      while (NextPacket(conn_, type, data)) {
        if (type == kJobCreated) {
          // JOB_CREATED answers SUBMIT_JOBs in the order they were sent.
          by_handle_.emplace(std::string(data), created_.front());
          created_.pop_front();
        } else if (type == kWorkComplete || type == kWorkFail) {
          const std::string handle(data.substr(0, data.find('\0')));
          auto it = by_handle_.find(handle);
          if (it == by_handle_.end()) continue;
          done.push_back(it->second);
          by_handle_.erase(it);
        }
      }
    }
  }

 private:
  Conn conn_;
  std::deque<uint64_t> created_;
  std::unordered_map<std::string, uint64_t> by_handle_;
};

std::unique_ptr<ClientConn> MakeClient(const Endpoint& ep, int) {
  const int fd = ConnectLocal(ep.port);
  if (fd < 0) std::_Exit(2);
  return std::make_unique<GearmanClient>(fd);
}

void WorkerLoop(const Endpoint& ep, int) {
  const int fd = ConnectLocal(ep.port);
  if (fd < 0) std::_Exit(2);
  Conn c(fd);
  Request(c.out(), kCanDo, {"bench"});
  Request(c.out(), kGrabJob, {});
  c.Flush();
  for (;;) {
    c.Fill();
    uint32_t type;
    std::string_view data;
    while (NextPacket(c, type, data)) {
      switch (type) {
        case kJobAssign: {
          const auto h = data.find('\0');
          const auto f = data.find('\0', h + 1);
          Request(c.out(), kWorkComplete, {data.substr(0, h), data.substr(f + 1)});
          Request(c.out(), kGrabJob, {});
          break;
        }
        case kNoJob:
          Request(c.out(), kPreSleep, {});
          break;
        case kNoop:
          Request(c.out(), kGrabJob, {});
          break;
        default:
          break;
      }
    }
    c.Flush();
  }
}

}  // namespace

SystemAdapter GearmanAdapter() { return {"gearmand", &MakeClient, &WorkerLoop}; }

}  // namespace pincer::bench
