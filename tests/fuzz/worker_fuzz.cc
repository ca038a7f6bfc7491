// Fuzz target: pincer-worker's parsers (protocol/daemon_messages.h and the
// pure helpers around it). A daemon line becomes one DaemonMessage and never an
// exception; a task's payload goes to the child's stdin; a child's stdout
// becomes the result's output; an address parses or is refused.
#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/daemon_messages.h"
#include "protocol/peer_encode.h"
#include "worker/result_builder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pincer;
  using namespace pincer::worker;
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  DaemonMessage m = ParseDaemonMessage(line);
  if (auto* task = std::get_if<TaskMsg>(&m)) {
    (void)PayloadToStdin(task->payload);
    (void)DumpLine(task->payload);
  }
  // The same bytes as a child's stdout, sent back in a result line.
  TaskOutcome outcome;
  outcome.kind = TaskOutcome::Kind::kExited;
  outcome.code = static_cast<int>(size % 2);  // success, or a failure with stderr
  outcome.stdout_data = std::string(line);
  outcome.stdout_total = size;
  outcome.stderr_tail = std::string(line);
  (void)ResultLine("t1", outcome, 1 << 20);
  (void)DumpLine(StdoutToOutput(line));
  return 0;
}
