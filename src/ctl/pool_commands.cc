// The supervisorctl-like commands: `pool start|stop|restart|scale` (admin
// when auth.admin_token is set) and `logs POOL [-f]`.

#include <chrono>
#include <iostream>
#include <thread>

#include "ctl/commands.h"
#include "ctl/exit_code.h"
#include "ctl/render.h"

namespace pincer::ctl {
namespace {

// How often `logs -f` asks for new lines: a CLI's pacing, not the daemon's.
constexpr std::chrono::milliseconds kFollowInterval{500};

std::string LogLine(const nlohmann::json& line, const std::string& pool) {
  const auto time = line.find("time_ms");
  return (time != line.end() && time->is_number_integer()
              ? FormatTimestamp(time->get<std::int64_t>())
              : std::string("-")) +
         " " + pool + "/" + Field(line, "replica") + " " + Field(line, "stream") + " " +
         (line.contains("text") && line["text"].is_string() ? line["text"].get<std::string>() : "");
}

}  // namespace

int RunPoolVerb(const CommandContext& context, const std::string& op, const std::string& pool,
                std::optional<int> replicas) {
  auto client = DialDaemon(context);
  if (!client.ok()) return ReportError(context, client.error());
  nlohmann::json request = {{"type", "pool"}, {"op", op}, {"pool", pool}};
  if (replicas) request["replicas"] = *replicas;
  client::Result<nlohmann::json> answer = (*client)->Request(std::move(request), kRequestTimeout);
  if (!answer.ok()) return ReportError(context, answer.error());
  const nlohmann::json view = answer->value("pool", nlohmann::json::object());
  if (context.options.json) {
    PrintJson(context, view);
    return kExitOk;
  }
  const char* done = op == "start"     ? "started"
                     : op == "stop"    ? "stopping"
                     : op == "restart" ? "restarting"
                                       : "scaled";
  *context.out << pool << " " << done << ": wants " << Field(view, "desired") << ", running "
               << Field(view, "running") << " (" << Field(view, "state") << ")\n";
  return kExitOk;
}

int RunLogs(const CommandContext& context, const std::string& pool, bool follow,
            std::int64_t lines) {
  auto client = DialDaemon(context);
  if (!client.ok()) return ReportError(context, client.error());
  std::int64_t after = 0;
  for (bool first = true;; first = false) {
    nlohmann::json request = {{"type", "logs"}, {"pool", pool}, {"after", after}};
    request["limit"] = first ? lines : std::int64_t{100000};
    client::Result<nlohmann::json> answer = (*client)->Request(std::move(request), kRequestTimeout);
    if (!answer.ok()) return ReportError(context, answer.error());
    const nlohmann::json got = answer->value("lines", nlohmann::json::array());
    for (const auto& line : got) {
      if (context.options.json) {
        *context.out << line.dump() << "\n";
      } else {
        *context.out << LogLine(line, pool) << "\n";
      }
      if (line.contains("seq") && line["seq"].is_number_integer()) {
        after = std::max(after, line["seq"].get<std::int64_t>());
      }
    }
    // Nothing new also means nothing to skip next time: the newest seq
    // of any pool is where the next look starts.
    if (const auto last = answer->find("last");
        last != answer->end() && last->is_number_integer()) {
      after = std::max(after, last->get<std::int64_t>());
    }
    context.out->flush();
    if (!follow) return kExitOk;
    std::this_thread::sleep_for(kFollowInterval);
  }
}

}  // namespace pincer::ctl
