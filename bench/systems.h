// The systems pincer-bench drives. Every system gets the same workload: a
// fixed number of no-op worker processes that send the payload back, and
// client processes that keep a window of tasks in flight. An adapter only
// knows how to speak its system's protocol; timing lives in the driver.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace pincer::bench {

struct Endpoint {
  int port = 0;
  int worker_capacity = 256;  // pincerd: tasks a worker may hold at once
};

// One client connection. REQUIRES: used from one thread.
class ClientConn {
 public:
  virtual ~ClientConn() = default;
  // Queues the submission of task `req` (written at the next Wait).
  virtual void Submit(uint64_t req) = 0;
  // Sends what is queued, blocks until at least one task has come back and
  // appends the `req` of every task that came back to `done`.
  virtual void Wait(std::vector<uint64_t>& done) = 0;
};

// The payload every task carries: 128 bytes of printable ASCII, safe inside
// a JSON string and in every text protocol used here.
const std::string& Payload();

using ClientFactory = std::unique_ptr<ClientConn> (*)(const Endpoint&, int client_index);
using WorkerFn = void (*)(const Endpoint&, int worker_index);  // never returns

struct SystemAdapter {
  const char* name;
  ClientFactory client;
  WorkerFn worker;
};

SystemAdapter PincerdAdapter();
SystemAdapter NatsAdapter();
SystemAdapter GearmanAdapter();
SystemAdapter RedisAdapter();
SystemAdapter BeanstalkAdapter();
SystemAdapter RelayAdapter();

// The floor's server: forwards lines client -> worker -> client and does
// nothing else. Runs until killed.
void RunRelayServer(int port);

}  // namespace pincer::bench
