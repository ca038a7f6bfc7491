// pincerctl's subcommands. Each takes the parsed flags, talks to pincerd
// through src/client, prints its result and returns the exit code
// (ctl/exit_code.h). Flag parsing itself lives in app.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ctl/command_context.h"
#include "ctl/submit_request.h"

namespace pincer::ctl {

struct SubmitFlags {
  SubmitSpec spec;                          // skills, priority, ..., wait
  std::optional<std::string> payload;       // --payload JSON
  std::optional<std::string> payload_file;  // --payload-file F ("-": stdin)
  std::optional<std::string> text;          // --text TEXT: a string payload
  std::optional<std::string> text_file;     // --text-file F ("-": stdin): a string payload
  std::optional<std::string> batch_file;    // --batch FILE.jsonl ("-": stdin)
  bool follow = false;                      // --follow: progress to stderr while waiting
};

int RunSubmit(const CommandContext& context, const SubmitFlags& flags);
// --batch: validates every line first (nothing is sent if one is bad), then
// pipelines the submits on one connection.
int RunBatchSubmit(const CommandContext& context, const std::string& path);

// `tree`: the task's subtask tree (parent, children) instead of its fields.
int RunStatus(const CommandContext& context, const std::string& id, bool tree = false);
// Waits for every task in `ids` and prints each end, in the order given.
// `follow`: the progress streamed meanwhile goes to stderr (FollowProgress).
int RunWait(const CommandContext& context, const std::vector<std::string>& ids,
            bool follow = false);
// Prints the task's progress as it comes, one line each, then its end;
// exits as `wait` does.
int RunWatch(const CommandContext& context, const std::string& id);
// `tasks`: what to list. Unset filters match every task.
struct TasksQuery {
  std::optional<std::string> state, skill, worker, session;
  std::optional<std::string> after;   // a task id: list past it (the daemon's cursor)
  std::optional<std::int64_t> limit;  // default kTasksDefaultLimit
  bool all = false;                   // every match, fetched page by page
  bool oldest = false;                // oldest first instead of newest first
  bool tree = false;                  // drawn as subtask trees instead of a table
};
inline constexpr std::int64_t kTasksDefaultLimit = 1000;
inline constexpr std::int64_t kTasksMaxLimit = 10000000;  // the protocol's bound
int RunTasks(const CommandContext& context, const TasksQuery& query);
int RunWorkers(const CommandContext& context);
int RunStats(const CommandContext& context);
int RunPools(const CommandContext& context);

// Prints an `end` event (human or --json) and returns 0 for succeeded, 1
// for any other end state. Shared by `submit --wait` and `wait`.
int PrintEnd(const CommandContext& context, const nlohmann::json& end);
// --follow: writes each streamed `progress` line to stderr as
// "progress tN: DATA" (DATA as one line of JSON).
client::Client::ProgressFn FollowProgress(const CommandContext& context);

int RunCancel(const CommandContext& context, const std::string& id);
// Puts a failed or timed_out task back in the queue as a new attempt series.
int RunRetry(const CommandContext& context, const std::string& id);
int RunDrain(const CommandContext& context, const std::string& worker);
int RunReload(const CommandContext& context);

// pool_commands.cc. `op`: start, stop, restart or scale (with `replicas`).
int RunPoolVerb(const CommandContext& context, const std::string& op, const std::string& pool,
                std::optional<int> replicas);
// The pool's recent output, the last `lines` of it; with `follow`, then
// whatever comes, until interrupted or the pool is gone.
int RunLogs(const CommandContext& context, const std::string& pool, bool follow,
            std::int64_t lines);

}  // namespace pincer::ctl
