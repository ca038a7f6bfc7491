// Stand-in when hiredis is not installed: the Redis row reports why.
#include <cstdio>
#include <cstdlib>

#include "systems.h"

namespace pincer::bench {
namespace {
std::unique_ptr<ClientConn> MakeClient(const Endpoint&, int) {
  std::fprintf(stderr, "pincer-bench was built without hiredis (apt-get install libhiredis-dev)\n");
  std::_Exit(6);
}
void WorkerLoop(const Endpoint&, int) { std::_Exit(6); }
}  // namespace
SystemAdapter RedisAdapter() { return {"redis-streams", &MakeClient, &WorkerLoop}; }
}  // namespace pincer::bench
