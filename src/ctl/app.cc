#include "ctl/app.h"

#include <pincer/version.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "common/edit_distance.h"
#include "config/config.h"
#include "ctl/commands.h"
#include "ctl/exit_code.h"
#include "ctl/top.h"

namespace pincer::ctl {
namespace {

// Checks a duration flag at parse time, so a typo is a usage error.
CLI::Validator DurationValidator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (ParseDuration(text)) return {};
        return "'" + text + "' is not a duration (e.g. 250ms, 30s, 10m, 1h30m; 0 = none)";
      },
      "DURATION");
}

std::vector<std::string> TaskStates() {
  return {"queued", "running", "succeeded", "failed", "cancelled", "timed_out"};
}

// Flag values as parsed; the Option pointers tell whether a flag was given.
struct Flags {
  SubmitFlags submit;
  std::string payload, payload_file, text, text_file, batch, timeout, session, key, id, worker;
  std::int64_t priority = 0, max_attempts = 0;
  std::vector<std::string> ids;
  TasksQuery tasks;
  std::string backoff_initial, backoff_max;
  double backoff_jitter = 0;
  CLI::Option* backoff_initial_opt = nullptr;
  CLI::Option* backoff_max_opt = nullptr;
  CLI::Option* backoff_jitter_opt = nullptr;
  std::string top_interval = "1s";
  bool top_once = false;
  bool tree = false;    // status --tree
  bool follow = false;  // wait --follow
  int top_frames = 0;
  CLI::Option* priority_opt = nullptr;
  CLI::Option* max_attempts_opt = nullptr;
  CLI::Option* timeout_opt = nullptr;
  CLI::Option* session_opt = nullptr;
  CLI::Option* key_opt = nullptr;
  CLI::Option* payload_opt = nullptr;
  CLI::Option* payload_file_opt = nullptr;
  CLI::Option* text_opt = nullptr;
  CLI::Option* text_file_opt = nullptr;
  CLI::Option* batch_opt = nullptr;
  CLI::Option* top_frames_opt = nullptr;
};

template <typename T>
std::optional<T> IfGiven(const CLI::Option* option, const T& value) {
  if (option == nullptr || option->count() == 0) return std::nullopt;
  return value;
}

// Global flags may come before or after the subcommand.
CLI::App* Subcommand(CLI::App& app, const char* name, const char* description) {
  CLI::App* sub = app.add_subcommand(name, description);
  sub->fallthrough();
  return sub;
}

// Owns the CLI11 app and everything its callbacks touch, so the callbacks
// can capture `this` and nothing else.
class CommandLine {
 public:
  explicit CommandLine(const ProcessIo& io);
  int Run(int argc, const char* const* argv);

 private:
  // The one line a parse error is reported as: the command word when it is
  // not a command (with the nearest one), else CLI11's message on one line.
  std::string UsageErrorText(int argc, const char* const* argv, const CLI::ParseError& error);
  // The first argument that is neither a global flag nor a global flag's
  // value: where the command should be. Empty when there is none.
  std::string CommandWord(int argc, const char* const* argv);

 private:
  void AddSubmit();
  void AddQueries();
  void AddAdmin();
  void AddPoolVerbs();

  CLI::App app_{"Submit, inspect and administer tasks on a pincerd daemon.", "pincerctl"};
  CommandContext context_;
  Flags flags_;
  std::function<int()> action_;  // set by the chosen subcommand's callback
  // `pool` and `logs` flags.
  std::string pool_name_;
  int pool_replicas_ = 0;
  bool logs_follow_ = false;
  std::int64_t logs_lines_ = 200;
  const ProcessIo& io_;
};

CommandLine::CommandLine(const ProcessIo& io) : io_(io) {
  context_.in = io.in;
  context_.in_fd = io.in_fd;
  context_.out = io.out;
  context_.err = io.err;
  context_.out_is_terminal = io.out_is_terminal;
  context_.err_is_terminal = io.err_is_terminal;
  context_.now_ms = io.now_ms;

  app_.footer(
      "Exit codes: 0 ok; 1 the task did not succeed (or the daemon refused for another reason);\n"
      "2 usage or bad input; 3 cannot connect or unauthorized; 4 not found.");
  app_.set_version_flag("--version", std::string("pincerctl ") + kVersion);
  app_.add_option("--addr", context_.options.addr,
                  "Daemon address HOST:PORT or unix:/path; A,B tries each in turn "
                  "(a leader and its standbys)")
      ->envname("PINCER_ADDR")
      ->capture_default_str();
  app_.add_option("--token", context_.options.token, "Client token")->envname("PINCER_TOKEN");
  app_.add_option("--tls-ca", context_.options.tls.ca,
                  "Speak TLS; the daemon's certificate must chain to a CA in this PEM file")
      ->envname("PINCER_TLS_CA");
  app_.add_option("--tls-cert", context_.options.tls.cert,
                  "Client certificate (PEM), for a daemon that requires one")
      ->envname("PINCER_TLS_CERT");
  app_.add_option("--tls-key", context_.options.tls.key, "The client certificate's key (PEM)")
      ->envname("PINCER_TLS_KEY");
  app_.add_flag("--json", context_.options.json, "Machine-readable output: one JSON value");
  app_.require_subcommand(1);
  AddSubmit();
  AddQueries();
  AddAdmin();
  AddPoolVerbs();
}

int CommandLine::Run(int argc, const char* const* argv) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // Help and --version are "errors" with exit code 0; every real parse
    // error is a usage error, whatever code CLI11 would pick, reported as
    // one "pincerctl:" line like every other failure (docs/cli.md).
    if (error.get_exit_code() == 0) return app_.exit(error, *io_.out, *io_.err);
    *io_.err << "pincerctl: " << UsageErrorText(argc, argv, error) << "\n";
    return kExitUsage;
  }
  if (!action_) return kExitUsage;  // unreachable with require_subcommand(1)
  return action_();
}

std::string CommandLine::CommandWord(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.empty() || arg[0] != '-') return arg;
    if (arg == "--") return i + 1 < argc ? argv[i + 1] : "";
    if (arg.find('=') != std::string::npos) continue;  // --addr=HOST:PORT
    // The global flags that take a value; the others (--json) take none.
    for (const char* with_value : {"--addr", "--token", "--tls-ca", "--tls-cert", "--tls-key"}) {
      if (arg == with_value) {
        ++i;  // skips its value
        break;
      }
    }
  }
  return "";
}

std::string CommandLine::UsageErrorText(int argc, const char* const* argv,
                                        const CLI::ParseError& error) {
  if (app_.get_subcommands().empty()) {
    const std::string word = CommandWord(argc, argv);
    if (word.empty()) return "no command given (pincerctl --help lists them)";
    bool known = false;
    for (const CLI::App* sub : app_.get_subcommands({})) known = known || sub->get_name() == word;
    if (!known) {
      std::string nearest;
      std::size_t best = 0;
      for (const CLI::App* sub : app_.get_subcommands({})) {
        const std::size_t d = EditDistance(word, sub->get_name());
        if (nearest.empty() || d < best) {
          nearest = sub->get_name();
          best = d;
        }
      }
      std::string text = "unknown command '" + word + "'";
      // Only a near miss is a suggestion; far off, the list helps more.
      if (!nearest.empty() && best <= std::max<std::size_t>(2, word.size() / 3)) {
        text += "; did you mean '" + nearest + "'?";
      } else {
        text += " (pincerctl --help lists the commands)";
      }
      return text;
    }
  }
  std::string text = error.what();
  for (char& c : text) {
    if (c == '\n') c = ' ';
  }
  while (!text.empty() && text.back() == ' ') text.pop_back();
  std::string command;
  for (const CLI::App* sub : app_.get_subcommands()) command = sub->get_name();
  text += command.empty() ? " (see pincerctl --help)" : " (see pincerctl " + command + " --help)";
  return text;
}

void CommandLine::AddSubmit() {
  CLI::App* sub =
      Subcommand(app_, "submit", "Submit a task (or a batch of tasks) and print its id");
  auto* skill = sub->add_option(
      "--skill", flags_.submit.spec.skills,
      "A skill the task needs; repeat for several. Without --skill, any worker may take it");
  sub->footer(
      "A task submitted without --skill needs no skill: it may go to any worker, whatever\n"
      "skills that worker offers.\n");
  flags_.payload_opt = sub->add_option("--payload", flags_.payload, "The task's payload, as JSON");
  flags_.payload_file_opt = sub->add_option("--payload-file", flags_.payload_file,
                                            "Read the JSON payload from a file ('-': stdin)");
  flags_.text_opt = sub->add_option(
      "--text", flags_.text, "The payload as text: sent as a JSON string, no quoting needed");
  flags_.text_file_opt =
      sub->add_option("--text-file", flags_.text_file,
                      "Read a text payload from a file ('-': stdin), sent as a JSON string");
  flags_.priority_opt =
      sub->add_option("--priority", flags_.priority, "Higher runs first (default 0)");
  flags_.timeout_opt =
      sub->add_option("--timeout", flags_.timeout, "Per attempt, e.g. 30s, 10m (0 = none)")
          ->check(DurationValidator());
  flags_.max_attempts_opt =
      sub->add_option("--max-attempts", flags_.max_attempts, "Attempts before failing")
          ->check(CLI::Range(std::int64_t{1}, std::numeric_limits<std::int64_t>::max()));
  flags_.backoff_initial_opt =
      sub->add_option("--backoff-initial", flags_.backoff_initial,
                      "This task's first retry pause, doubled per failure (default: "
                      "tasks.retry_backoff.initial)")
          ->check(DurationValidator());
  flags_.backoff_max_opt = sub->add_option("--backoff-max", flags_.backoff_max,
                                           "This task's longest retry pause (default: "
                                           "tasks.retry_backoff.max, at least --backoff-initial)")
                               ->check(DurationValidator());
  flags_.backoff_jitter_opt =
      sub->add_option(
             "--backoff-jitter", flags_.backoff_jitter,
             "Fraction 0..1 of a pause added at random (default: tasks.retry_backoff.jitter)")
          ->check(CLI::Range(0.0, 1.0));
  flags_.session_opt =
      sub->add_option("--session", flags_.session, "Affinity key: keep on one worker");
  flags_.key_opt =
      sub->add_option("--key", flags_.key, "Idempotency key: resubmits return the first id");
  auto* wait =
      sub->add_flag("--wait", flags_.submit.spec.wait, "Wait for the end state and print it");
  auto* follow = sub->add_flag("--follow", flags_.submit.follow,
                               "With --wait: print the task's progress to stderr as it comes");
  follow->needs(wait);
  flags_.batch_opt = sub->add_option("--batch", flags_.batch,
                                     "Submit one task per line of a JSONL file ('-': stdin)");
  const std::vector<CLI::Option*> payloads = {flags_.payload_opt, flags_.payload_file_opt,
                                              flags_.text_opt, flags_.text_file_opt};
  for (CLI::Option* a : payloads) {
    for (CLI::Option* b : payloads) {
      if (a != b) a->excludes(b);
    }
  }
  for (CLI::Option* single :
       {skill, flags_.payload_opt, flags_.payload_file_opt, flags_.text_opt, flags_.text_file_opt,
        flags_.priority_opt, flags_.timeout_opt, flags_.max_attempts_opt, flags_.session_opt,
        flags_.key_opt, wait, flags_.backoff_initial_opt, flags_.backoff_max_opt,
        flags_.backoff_jitter_opt}) {
    flags_.batch_opt->excludes(single);
  }
  sub->callback([this] {
    SubmitFlags& s = flags_.submit;
    s.payload = IfGiven(flags_.payload_opt, flags_.payload);
    s.payload_file = IfGiven(flags_.payload_file_opt, flags_.payload_file);
    s.text = IfGiven(flags_.text_opt, flags_.text);
    s.text_file = IfGiven(flags_.text_file_opt, flags_.text_file);
    s.batch_file = IfGiven(flags_.batch_opt, flags_.batch);
    s.spec.priority = IfGiven(flags_.priority_opt, flags_.priority);
    s.spec.timeout = IfGiven(flags_.timeout_opt, flags_.timeout);
    s.spec.max_attempts = IfGiven(flags_.max_attempts_opt, flags_.max_attempts);
    s.spec.session = IfGiven(flags_.session_opt, flags_.session);
    s.spec.key = IfGiven(flags_.key_opt, flags_.key);
    s.spec.backoff_initial = IfGiven(flags_.backoff_initial_opt, flags_.backoff_initial);
    s.spec.backoff_max = IfGiven(flags_.backoff_max_opt, flags_.backoff_max);
    s.spec.backoff_jitter = IfGiven(flags_.backoff_jitter_opt, flags_.backoff_jitter);
    action_ = [this] { return RunSubmit(context_, flags_.submit); };
  });
}

void CommandLine::AddQueries() {
  CLI::App* status =
      Subcommand(app_, "status", "Show one task: state, attempts, output, why it waits");
  status->add_option("id", flags_.id, "Task id")->required();
  status->add_flag("--tree", flags_.tree, "Draw the task's subtask tree (parent and children)");
  status->callback(
      [this] { action_ = [this] { return RunStatus(context_, flags_.id, flags_.tree); }; });

  CLI::App* wait =
      Subcommand(app_, "wait", "Wait until each task ends; exit 1 unless all of them succeeded");
  wait->add_option("id", flags_.ids, "Task ids")->required();
  wait->add_flag("--follow", flags_.follow, "Print the tasks' progress to stderr as it comes");
  wait->callback(
      [this] { action_ = [this] { return RunWait(context_, flags_.ids, flags_.follow); }; });

  CLI::App* watch = Subcommand(
      app_, "watch", "Print a task's progress as it comes, then its end; exit as wait does");
  watch->add_option("id", flags_.id, "Task id")->required();
  watch->callback([this] { action_ = [this] { return RunWatch(context_, flags_.id); }; });

  CLI::App* tasks = Subcommand(app_, "tasks", "List tasks, newest first");
  TasksQuery& q = flags_.tasks;
  tasks->add_option("--state", q.state, "Only tasks in this state")
      ->check(CLI::IsMember(TaskStates()));
  tasks->add_option("--skill", q.skill, "Only tasks that need this skill");
  tasks->add_option("--worker", q.worker, "Only tasks that ran (or run) on this worker id");
  tasks->add_option("--session", q.session, "Only tasks of this session");
  auto* limit = tasks->add_option("--limit", q.limit, "At most this many (default 1000)")
                    ->check(CLI::Range(std::int64_t{1}, kTasksMaxLimit));
  auto* all = tasks->add_flag("--all", q.all, "Every task that matches, fetched in pages");
  limit->excludes(all);
  tasks->add_option("--after", q.after,
                    "Start past this task id (the next page: the id the cut-off note names)");
  tasks->add_flag("--oldest", q.oldest, "Oldest first");
  tasks->add_flag("--tree", q.tree, "Draw the listed tasks as subtask trees");
  tasks->callback([this] {
    if (flags_.tasks.all) flags_.tasks.limit = kTasksDefaultLimit;  // the page size
    action_ = [this] { return RunTasks(context_, flags_.tasks); };
  });

  Subcommand(app_, "workers", "List connected workers with their load")->callback([this] {
    action_ = [this] { return RunWorkers(context_); };
  });
  Subcommand(app_, "stats", "Show task and worker counters")->callback([this] {
    action_ = [this] { return RunStats(context_); };
  });
  Subcommand(app_, "pools", "List the worker pools pincerd supervises")->callback([this] {
    action_ = [this] { return RunPools(context_); };
  });

  CLI::App* top = Subcommand(app_, "top", "Live view of workers, queue depth and throughput");
  top->add_option("--interval", flags_.top_interval, "Time between refreshes")
      ->check(DurationValidator())
      ->capture_default_str();
  top->add_flag("--once", flags_.top_once, "Print one frame and exit");
  flags_.top_frames_opt =
      top->add_option("--frames", flags_.top_frames, "Stop after this many frames")
          ->check(CLI::Range(1, std::numeric_limits<int>::max()));
  top->callback([this] {
    TopOptions options;
    options.interval = *ParseDuration(flags_.top_interval);  // checked by DurationValidator
    options.frames = IfGiven(flags_.top_frames_opt, flags_.top_frames);
    // A pipe wants a snapshot, not a movie: without a terminal and without
    // --frames, one frame.
    options.once = flags_.top_once || (!context_.out_is_terminal && !options.frames);
    options.clear_screen = context_.out_is_terminal;
    action_ = [this, options] { return RunTop(context_, options); };
  });
}

void CommandLine::AddAdmin() {
  CLI::App* cancel = Subcommand(app_, "cancel", "Cancel a queued or running task");
  cancel->add_option("id", flags_.id, "Task id")->required();
  cancel->callback([this] { action_ = [this] { return RunCancel(context_, flags_.id); }; });

  CLI::App* retry = Subcommand(app_, "retry",
                               "Put a failed or timed_out task back in the queue (attempts reset)");
  retry->add_option("id", flags_.id, "Task id")->required();
  retry->callback([this] { action_ = [this] { return RunRetry(context_, flags_.id); }; });

  CLI::App* drain =
      Subcommand(app_, "drain", "Let a worker finish what it holds and take nothing new");
  drain->add_option("worker", flags_.worker, "Worker id")->required();
  drain->callback([this] { action_ = [this] { return RunDrain(context_, flags_.worker); }; });

  Subcommand(app_, "reload", "Re-read pincerd's config file (like SIGHUP)")->callback([this] {
    action_ = [this] { return RunReload(context_); };
  });
}

void CommandLine::AddPoolVerbs() {
  CLI::App* pool = Subcommand(app_, "pool", "Start, stop, restart or scale a supervised pool");
  pool->require_subcommand(1);
  struct Verb {
    const char* name;
    const char* description;
  };
  for (const Verb& verb :
       {Verb{"start", "Start a stopped pool, or give a failed one a fresh start"},
        Verb{"stop", "Drain and stop every process of a pool until `pool start`"},
        Verb{"restart", "Replace every process of a pool (drained first)"},
        Verb{"scale", "Run N replicas of a pool (until a reload changes its replicas)"}}) {
    CLI::App* sub = Subcommand(*pool, verb.name, verb.description);
    sub->add_option("pool", pool_name_, "Pool name")->required();
    const std::string op = verb.name;
    if (op == "scale") {
      sub->add_option("replicas", pool_replicas_, "How many replicas")
          ->required()
          ->check(CLI::Range(0, 1000));
    }
    sub->callback([this, op] {
      action_ = [this, op] {
        return RunPoolVerb(context_, op, pool_name_,
                           op == "scale" ? std::optional<int>(pool_replicas_) : std::nullopt);
      };
    });
  }

  CLI::App* logs = Subcommand(app_, "logs", "Show a pool's recent output (stdout and stderr)");
  logs->add_option("pool", pool_name_, "Pool name")->required();
  logs->add_flag("-f,--follow", logs_follow_, "Keep printing new lines until interrupted");
  logs->add_option("-n,--lines", logs_lines_, "Show the last N lines first")
      ->capture_default_str()
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{100000}));
  logs->callback([this] {
    action_ = [this] { return RunLogs(context_, pool_name_, logs_follow_, logs_lines_); };
  });
}

}  // namespace

int RunCtl(int argc, const char* const* argv, const ProcessIo& io) {
  CommandLine command_line(io);
  return command_line.Run(argc, argv);
}

}  // namespace pincer::ctl
