// Fuzz target: the client's side of the wire (client/ and the pincerctl
// rendering of answers). The input is a byte stream from a daemon: it is
// fed to the LineFramer in chunks of varying sizes and must come out as the
// same lines however it was cut; each line is parsed as the client parses
// it, and every JSON object is rendered as pincerctl shows each kind of
// answer. An address (the first line) parses or is refused.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/address.h"
#include "ctl/exit_code.h"
#include "ctl/render.h"
#include "protocol/line_framer.h"

namespace {

constexpr std::size_t kMaxLine = 256;

// Lines of `in` cut into chunks of `step` bytes; "overflow" ends them.
std::vector<std::string> Lines(std::string_view in, std::size_t step) {
  pincer::LineFramer framer(kMaxLine);
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < in.size(); at += step) {
    framer.Append(in.substr(at, step));
    while (auto line = framer.NextLine()) lines.emplace_back(*line);
    if (framer.overflowed()) {
      lines.push_back("overflow");
      break;
    }
  }
  return lines;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pincer;
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  const std::vector<std::string> whole = Lines(in, in.size() + 1);
  const std::size_t step = size == 0 ? 1 : 1 + data[0] % 17;
  if (Lines(in, step) != whole) {
    std::fprintf(stderr, "LineFramer cuts lines differently in chunks of %zu bytes\n", step);
    std::abort();
  }

  (void)client::ParseAddress(std::string(in.substr(0, in.find('\n'))));
  (void)client::ParseAddressList(std::string(in.substr(0, in.find('\n'))));

  // pincerctl renders an answer's member (task, tasks, workers, pools,
  // stats) or the answer itself (end), whatever JSON they hold.
  auto render = [](const nlohmann::json& v) {
    (void)ctl::RenderTask(v, 0);
    (void)ctl::RenderEnd(v);
    (void)ctl::ExitCodeForState(ctl::Field(v, "state"));
    (void)ctl::RenderTaskTable(v, 0);
    (void)ctl::RenderWorkerTable(v);
    (void)ctl::RenderPoolTable(v);
    if (v.is_object()) (void)ctl::RenderStats(v);
    (void)ctl::WithoutEnvelope(v);
  };
  for (const std::string& line : whole) {
    const nlohmann::json message = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (message.is_discarded()) continue;
    render(message);
    if (message.is_object()) {
      for (const auto& [key, value] : message.items()) render(value);
    }
  }
  return 0;
}
