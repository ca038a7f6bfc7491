// Read-only commands: status, wait, tasks, workers, stats, pools.

#include <iostream>

#include "ctl/commands.h"
#include "ctl/exit_code.h"
#include "ctl/render.h"

namespace pincer::ctl {
namespace {

// Connects, sends `request` and hands back the `ok` answer; on any error it
// has already been reported and `exit_code` says how to exit.
std::optional<nlohmann::json> Ask(const CommandContext& context, nlohmann::json request,
                                  int& exit_code) {
  auto client = DialDaemon(context);
  if (!client.ok()) {
    exit_code = ReportError(context, client.error());
    return std::nullopt;
  }
  client::Result<nlohmann::json> answer = (*client)->Request(std::move(request), kRequestTimeout);
  if (!answer.ok()) {
    exit_code = ReportError(context, answer.error());
    return std::nullopt;
  }
  exit_code = kExitOk;
  return std::move(answer).value();
}

// The member of an answer that carries the data ("task", "tasks", ...),
// or null when the daemon left it out.
nlohmann::json Member(const nlohmann::json& answer, const char* name) {
  auto it = answer.find(name);
  return it == answer.end() ? nlohmann::json() : *it;
}

}  // namespace

int RunStatus(const CommandContext& context, const std::string& id) {
  int exit_code;
  auto answer = Ask(context, {{"type", "status"}, {"id", id}}, exit_code);
  if (!answer) return exit_code;
  const nlohmann::json task = Member(*answer, "task");
  if (context.options.json) {
    PrintJson(context, task);
  } else {
    *context.out << RenderTask(task, context.now_ms());
  }
  return kExitOk;
}

int RunWait(const CommandContext& context, const std::string& id) {
  auto client = DialDaemon(context);
  if (!client.ok()) return ReportError(context, client.error());
  // No timeout: a task may legitimately run for hours.
  client::Result<nlohmann::json> end =
      (*client)->Request({{"type", "wait"}, {"id", id}}, client::kNoTimeout);
  if (!end.ok()) return ReportError(context, end.error());
  return PrintEnd(context, *end);
}

int RunTasks(const CommandContext& context, const std::optional<std::string>& state,
             std::optional<std::int64_t> limit) {
  nlohmann::json request = {{"type", "tasks"}};
  if (state) request["state"] = *state;
  if (limit) request["limit"] = *limit;
  int exit_code;
  auto answer = Ask(context, std::move(request), exit_code);
  if (!answer) return exit_code;
  nlohmann::json tasks = Member(*answer, "tasks");
  if (context.options.json) {
    PrintJson(context, tasks.is_array() ? tasks : nlohmann::json::array());
  } else {
    *context.out << RenderTaskTable(tasks, context.now_ms());
  }
  return kExitOk;
}

int RunWorkers(const CommandContext& context) {
  int exit_code;
  auto answer = Ask(context, {{"type", "workers"}}, exit_code);
  if (!answer) return exit_code;
  nlohmann::json workers = Member(*answer, "workers");
  if (context.options.json) {
    PrintJson(context, workers.is_array() ? workers : nlohmann::json::array());
  } else {
    *context.out << RenderWorkerTable(workers);
  }
  return kExitOk;
}

int RunStats(const CommandContext& context) {
  int exit_code;
  auto answer = Ask(context, {{"type", "stats"}}, exit_code);
  if (!answer) return exit_code;
  nlohmann::json stats = Member(*answer, "stats");
  if (!stats.is_object()) stats = nlohmann::json::object();
  if (context.options.json) {
    PrintJson(context, stats);
  } else {
    *context.out << RenderStats(stats);
  }
  return kExitOk;
}

int RunPools(const CommandContext& context) {
  int exit_code;
  auto answer = Ask(context, {{"type", "pools"}}, exit_code);
  if (!answer) return exit_code;
  nlohmann::json pools = Member(*answer, "pools");
  if (context.options.json) {
    PrintJson(context, pools.is_array() ? pools : nlohmann::json::array());
  } else {
    *context.out << RenderPoolTable(pools);
  }
  return kExitOk;
}

}  // namespace pincer::ctl
