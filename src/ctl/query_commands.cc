// Read-only commands: status, wait, tasks, workers, stats, pools.

#include <iostream>
#include <map>
#include <vector>

#include "ctl/commands.h"
#include "ctl/exit_code.h"
#include "ctl/render.h"
#include "ctl/tree.h"

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

// The most tasks `status --tree` reads for one tree.
constexpr std::size_t kMaxTreeTasks = 100000;

// `status --tree`: the task's root (up its parents), then every task
// below it, one `status` each, drawn with `id` pointed out.
int StatusTree(const CommandContext& context, const std::string& id) {
  auto client = DialDaemon(context);
  if (!client.ok()) return ReportError(context, client.error());
  std::map<std::string, nlohmann::json> known;
  // Fetches a task; a child gone meanwhile (purged) is drawn as its id.
  auto fetch = [&](const std::string& task_id, bool must) -> client::Result<bool> {
    if (known.count(task_id)) return true;
    client::Result<nlohmann::json> answer =
        (*client)->Request({{"type", "status"}, {"id", task_id}}, kRequestTimeout);
    if (!answer.ok()) {
      if (!must && answer.error().code == "not_found") return false;
      return answer.error();
    }
    known[task_id] = Member(*answer, "task");
    return true;
  };
  if (auto got = fetch(id, true); !got.ok()) return ReportError(context, got.error());
  // Up to the root; a parent that cannot be read stops the climb there.
  std::string root = id;
  for (std::size_t hops = 0; hops < kMaxTreeTasks; ++hops) {
    const nlohmann::json parent = known[root].value("parent", nlohmann::json());
    if (!parent.is_string() || known.count(parent.get<std::string>())) break;
    client::Result<bool> got = fetch(parent.get<std::string>(), false);
    if (!got.ok()) return ReportError(context, got.error());
    if (!*got) break;
    root = parent.get<std::string>();
  }
  // Down, breadth first.
  std::vector<std::string> todo = {root};
  for (std::size_t i = 0; i < todo.size() && known.size() < kMaxTreeTasks; ++i) {
    auto it = known.find(todo[i]);
    if (it == known.end()) continue;
    const nlohmann::json children = it->second.value("children", nlohmann::json::array());
    for (const auto& child : children) {
      if (!child.is_string() || known.count(child.get<std::string>())) continue;
      client::Result<bool> got = fetch(child.get<std::string>(), false);
      if (!got.ok()) return ReportError(context, got.error());
      todo.push_back(child.get<std::string>());
    }
  }
  const TaskLookup find = [&](const std::string& task_id) -> const nlohmann::json* {
    auto it = known.find(task_id);
    return it == known.end() ? nullptr : &it->second;
  };
  if (context.options.json) {
    PrintJson(context, TreeJson({root}, find)[0]);
  } else {
    *context.out << RenderTree({root}, find, id);
  }
  return kExitOk;
}

}  // namespace

int RunStatus(const CommandContext& context, const std::string& id, bool tree) {
  if (tree) return StatusTree(context, id);
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

int RunWatch(const CommandContext& context, const std::string& id) {
  auto client = DialDaemon(context);
  if (!client.ok()) return ReportError(context, client.error());
  client::Result<std::int64_t> req = (*client)->SendRequest({{"type", "watch"}, {"id", id}});
  if (!req.ok()) return ReportError(context, req.error());
  // Each progress line as it comes: its data (human), or the line itself
  // without its envelope (--json); then the end, as `wait` prints it.
  auto print = [&context](const nlohmann::json& progress) {
    if (context.options.json) {
      PrintJson(context, WithoutEnvelope(progress));
    } else {
      const auto data = progress.find("data");
      *context.out << DumpJson(data == progress.end() ? nlohmann::json() : *data) << "\n";
    }
    context.out->flush();
  };
  client::Result<nlohmann::json> end = (*client)->AwaitReply(*req, client::kNoTimeout, print);
  if (!end.ok()) return ReportError(context, end.error());
  return PrintEnd(context, *end);
}

int RunWait(const CommandContext& context, const std::vector<std::string>& ids, bool follow) {
  auto client = DialDaemon(context);
  if (!client.ok()) return ReportError(context, client.error());
  // Every wait is sent at once; the answers are taken in the order of the
  // ids (the client keeps those that come early).
  std::vector<std::int64_t> reqs;
  for (const std::string& id : ids) {
    client::Result<std::int64_t> req = (*client)->SendRequest({{"type", "wait"}, {"id", id}});
    if (!req.ok()) return ReportError(context, req.error());
    reqs.push_back(*req);
  }
  // --follow: progress of any of them, as it comes (while the first end is
  // awaited, the others' progress is shown too).
  const client::Client::ProgressFn progress = follow ? FollowProgress(context) : nullptr;
  if (ids.size() == 1) {
    // No timeout: a task may legitimately run for hours.
    client::Result<nlohmann::json> end =
        (*client)->AwaitReply(reqs[0], client::kNoTimeout, progress);
    if (!end.ok()) return ReportError(context, end.error());
    return PrintEnd(context, *end);
  }
  // Several: the worst outcome decides the exit code: an error (not found,
  // connection lost) over a task that did not succeed over success.
  int error_code = kExitOk;
  bool all_succeeded = true;
  nlohmann::json json_out = nlohmann::json::array();
  for (std::size_t i = 0; i < ids.size(); ++i) {
    client::Result<nlohmann::json> end =
        (*client)->AwaitReply(reqs[i], client::kNoTimeout, progress);
    if (!end.ok()) {
      const int code = ReportError(context, end.error());
      if (error_code == kExitOk) error_code = code;
      if (end.error().kind != client::ErrorKind::kServer) break;  // the connection is gone
      if (context.options.json) {
        json_out.push_back(
            {{"id", ids[i]},
             {"error", {{"code", end.error().code}, {"message", end.error().message}}}});
      }
      continue;
    }
    all_succeeded = all_succeeded && Field(*end, "state") == "succeeded";
    if (context.options.json) {
      json_out.push_back(WithoutEnvelope(*end));
    } else {
      if (i > 0) *context.out << "\n";
      *context.out << RenderEnd(*end);
      context.out->flush();
    }
  }
  if (context.options.json) PrintJson(context, json_out);
  if (error_code != kExitOk) return error_code;
  return all_succeeded ? kExitOk : kExitFailed;
}

int RunTasks(const CommandContext& context, const TasksQuery& query) {
  nlohmann::json request = {{"type", "tasks"}, {"order", query.oldest ? "oldest" : "newest"}};
  if (query.state) request["state"] = *query.state;
  if (query.skill) request["skill"] = *query.skill;
  if (query.worker) request["worker"] = *query.worker;
  if (query.session) request["session"] = *query.session;
  if (query.after) request["after"] = *query.after;
  request["limit"] = query.limit.value_or(kTasksDefaultLimit);

  auto client = DialDaemon(context);
  if (!client.ok()) return ReportError(context, client.error());
  nlohmann::json tasks = nlohmann::json::array();
  std::int64_t total = 0;
  // --all follows the daemon's cursor, one page per request, so no answer
  // is larger than one page.
  for (bool first = true;; first = false) {
    client::Result<nlohmann::json> answer = (*client)->Request(request, kRequestTimeout);
    if (!answer.ok()) return ReportError(context, answer.error());
    nlohmann::json page = Member(*answer, "tasks");
    if (page.is_array()) {
      for (auto& task : page) tasks.push_back(std::move(task));
    }
    if (first) {
      const nlohmann::json count = Member(*answer, "total");
      total = count.is_number_integer() ? count.get<std::int64_t>() : 0;
    }
    const nlohmann::json next = Member(*answer, "next");
    if (!query.all || !next.is_string()) {
      // Cut short: say so, and how to see the rest.
      if (!query.all && next.is_string()) {
        *context.err << "pincerctl: " << tasks.size() << " of " << total
                     << " shown, --limit/--all for more (or --after " << next.get<std::string>()
                     << ")\n";
      }
      break;
    }
    request["after"] = next;
  }
  if (query.tree) {
    std::map<std::string, const nlohmann::json*> by_id;
    for (const auto& task : tasks) by_id[Field(task, "id")] = &task;
    const TaskLookup find = [&](const std::string& id) -> const nlohmann::json* {
      auto it = by_id.find(id);
      return it == by_id.end() ? nullptr : it->second;
    };
    const std::vector<std::string> roots = TreeRoots(tasks);
    if (context.options.json) {
      PrintJson(context, TreeJson(roots, find));
    } else {
      *context.out << RenderTree(roots, find);
    }
  } else if (context.options.json) {
    PrintJson(context, tasks);
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
