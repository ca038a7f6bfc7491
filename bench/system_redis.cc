// Redis Streams as a task queue, the way its docs describe it: clients
// XADD to the `bench` stream; workers in one consumer group XREADGROUP
// batches, XADD each result to the submitting client's reply stream and
// XACK the batch. Everything pipelined through hiredis.
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "net_util.h"
#include "systems.h"

namespace pincer::bench {
namespace {

redisContext* Open(int port) {
  // Connect the way the other adapters do (retrying while the server
  // starts), then hand the socket to hiredis.
  for (int i = 0; i < 250; ++i) {
    redisContext* c = redisConnect("127.0.0.1", port);
    if (c && !c->err) return c;
    if (c) redisFree(c);
    usleep(20'000);
  }
  std::_Exit(2);
}

redisReply* Get(redisContext* c) {
  void* r = nullptr;
  if (redisGetReply(c, &r) != REDIS_OK) std::_Exit(3);
  return static_cast<redisReply*>(r);
}

const char kTrim[] = "100000";  // streams are capped, as a careful user would

class RedisClient final : public ClientConn {
 public:
  RedisClient(redisContext* c, int index) : c_(c), client_(std::to_string(index)) {
    reply_key_ = "reply:" + client_;
  }
  ~RedisClient() override { redisFree(c_); }

  void Submit(uint64_t req) override {
    const std::string r = std::to_string(req);
    redisAppendCommand(c_, "XADD bench MAXLEN ~ %s * c %s r %s p %b", kTrim, client_.c_str(),
                       r.c_str(), Payload().data(), Payload().size());
    ++pending_;
  }

  void Wait(std::vector<uint64_t>& done) override {
    const std::size_t before = done.size();
    while (done.size() == before) {
      redisAppendCommand(c_, "XREAD COUNT 1024 BLOCK 0 STREAMS %s %s", reply_key_.c_str(),
                         last_.c_str());
      for (; pending_ > 0; --pending_) freeReplyObject(Get(c_));
      redisReply* r = Get(c_);
      // [[key, [[id, [field, value, ...]], ...]]]
      if (r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
        redisReply* entries = r->element[0]->element[1];
        for (std::size_t i = 0; i < entries->elements; ++i) {
          redisReply* e = entries->element[i];
          last_.assign(e->element[0]->str, e->element[0]->len);
          redisReply* f = e->element[1];
          for (std::size_t k = 0; k + 1 < f->elements; k += 2) {
            if (f->element[k]->len == 1 && f->element[k]->str[0] == 'r') {
              done.push_back(std::strtoull(f->element[k + 1]->str, nullptr, 10));
            }
          }
        }
      }
      freeReplyObject(r);
    }
  }

 private:
  redisContext* c_;
  std::string client_;
  std::string reply_key_;
  std::string last_ = "0-0";  // the reply stream is new for every run
  std::size_t pending_ = 0;
};

std::unique_ptr<ClientConn> MakeClient(const Endpoint& ep, int index) {
  redisContext* c = Open(ep.port);
  auto client = std::make_unique<RedisClient>(c, index);
  return client;
}

void WorkerLoop(const Endpoint& ep, int index) {
  redisContext* c = Open(ep.port);
  freeReplyObject(redisCommand(c, "XGROUP CREATE bench workers 0 MKSTREAM"));  // BUSYGROUP is fine
  const std::string me = "w" + std::to_string(index);
  for (;;) {
    redisReply* r = static_cast<redisReply*>(redisCommand(
        c, "XREADGROUP GROUP workers %s COUNT 64 BLOCK 0 STREAMS bench >", me.c_str()));
    if (!r) std::_Exit(3);
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 1) {
      freeReplyObject(r);
      continue;
    }
    redisReply* entries = r->element[0]->element[1];
    std::vector<const char*> ack = {"XACK", "bench", "workers"};
    std::vector<std::size_t> ack_len = {4, 5, 7};
    std::size_t sent = 0;
    for (std::size_t i = 0; i < entries->elements; ++i) {
      redisReply* e = entries->element[i];
      redisReply* f = e->element[1];
      std::string client, req, payload;
      for (std::size_t k = 0; k + 1 < f->elements; k += 2) {
        const char key = f->element[k]->str[0];
        std::string v(f->element[k + 1]->str, f->element[k + 1]->len);
        if (key == 'c')
          client = std::move(v);
        else if (key == 'r')
          req = std::move(v);
        else if (key == 'p')
          payload = std::move(v);
      }
      const std::string reply_key = "reply:" + client;
      redisAppendCommand(c, "XADD %s MAXLEN ~ %s * r %s p %b", reply_key.c_str(), kTrim,
                         req.c_str(), payload.data(), payload.size());
      ++sent;
      ack.push_back(e->element[0]->str);
      ack_len.push_back(e->element[0]->len);
    }
    if (ack.size() > 3) {
      redisAppendCommandArgv(c, static_cast<int>(ack.size()), ack.data(), ack_len.data());
      ++sent;
    }
    for (; sent > 0; --sent) freeReplyObject(Get(c));
    freeReplyObject(r);
  }
}

}  // namespace

SystemAdapter RedisAdapter() { return {"redis-streams", &MakeClient, &WorkerLoop}; }

}  // namespace pincer::bench
