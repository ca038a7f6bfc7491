#include "supervisor/posix_spawner.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

extern char** environ;

namespace pincer {
namespace {

// A line longer than this is logged in pieces rather than held without bound.
constexpr std::size_t kMaxLine = 64 * 1024;

// Only async-signal-safe calls from here on: the child of fork() runs this
// between fork and exec.
void CloseFrom(int lowest, int keep) {
#ifdef SYS_close_range
  if (keep > lowest) syscall(SYS_close_range, lowest, keep - 1, 0);
  if (syscall(SYS_close_range, keep + 1, ~0U, 0) == 0) return;
#endif
  struct rlimit rl;
  int max = 65536;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 1048576) {
    max = static_cast<int>(rl.rlim_cur);
  }
  for (int fd = lowest; fd < max; ++fd) {
    if (fd != keep) close(fd);
  }
}

[[noreturn]] void ChildFail(int report_fd, int stage) {
  const int err[2] = {stage, errno};
  ssize_t ignored = write(report_fd, err, sizeof err);
  (void)ignored;
  _exit(127);
}

ExitStatus FromWaitStatus(int status) {
  ExitStatus e;
  if (WIFSIGNALED(status)) {
    e.signaled = true;
    e.signal = WTERMSIG(status);
  } else {
    e.code = WEXITSTATUS(status);
  }
  return e;
}

}  // namespace

// Reads one of a child's output pipes and logs whole lines, tagged. It owns
// its descriptor and keeps itself alive through its pending read, so lines a
// child wrote just before it died are still logged after it was reaped.
class PosixSpawner::LineLogger : public std::enable_shared_from_this<LineLogger> {
 public:
  LineLogger(asio::io_context& io, int fd, const SpawnSpec& spec, bool is_stderr,
             std::weak_ptr<OutputHandler> sink)
      : pipe_(io, fd), stderr_(is_stderr), sink_(std::move(sink)) {
    spec_.log_tag = spec.log_tag;
    spec_.pool = spec.pool;
    spec_.replica = spec.replica;
  }

  void Read() {
    pipe_.async_read_some(asio::buffer(chunk_),
                          [self = shared_from_this()](std::error_code ec, std::size_t n) {
                            self->partial_.append(self->chunk_.data(), n);
                            self->EmitLines(/*eof=*/static_cast<bool>(ec));
                            if (!ec) self->Read();
                          });
  }
  void Close() {
    std::error_code ignored;
    pipe_.close(ignored);
  }

 private:
  void EmitLines(bool eof) {
    std::size_t start = 0;
    for (std::size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
      Log(std::string_view(partial_).substr(start, nl - start));
    }
    partial_.erase(0, start);
    if (partial_.size() >= kMaxLine || (eof && !partial_.empty())) {
      Log(partial_);
      partial_.clear();
    }
  }
  void Log(std::string_view line) {
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (auto sink = sink_.lock(); sink && *sink) {
      (*sink)(OutputLine{spec_, stderr_, line});
    } else {
      spdlog::info("[{} {}] {}", spec_.log_tag, stderr_ ? "err" : "out", line);
    }
  }

  asio::posix::stream_descriptor pipe_;
  SpawnSpec spec_;  // the tag, pool and replica only
  bool stderr_;
  std::weak_ptr<OutputHandler> sink_;
  std::array<char, 4096> chunk_{};
  std::string partial_;
};

PosixSpawner::PosixSpawner(asio::io_context& io, ExitHandler on_exit, OutputHandler on_output)
    : io_(io),
      on_exit_(std::move(on_exit)),
      on_output_(std::make_shared<OutputHandler>(std::move(on_output))),
      sigchld_(io, SIGCHLD) {
  WatchSigchld();
}

PosixSpawner::~PosixSpawner() {
  std::error_code ignored;
  sigchld_.cancel(ignored);
  for (pid_t pid : children_) {
    if (kill(-pid, SIGKILL) != 0) kill(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  for (auto& weak : loggers_) {
    if (auto logger = weak.lock()) logger->Close();
  }
  on_output_.reset();  // lines still read after this go to the log
}

void PosixSpawner::WatchSigchld() {
  sigchld_.async_wait([this](const std::error_code& ec, int) {
    if (ec) return;
    Reap();
    WatchSigchld();
  });
}

void PosixSpawner::Reap() {
  // SIGCHLD coalesces: one signal may stand for several exits, so ask about
  // every child we have.
  std::vector<std::pair<pid_t, ExitStatus>> exited;
  for (auto it = children_.begin(); it != children_.end();) {
    int status = 0;
    const pid_t r = waitpid(*it, &status, WNOHANG);
    if (r == *it) {
      exited.emplace_back(*it, FromWaitStatus(status));
      it = children_.erase(it);
    } else if (r < 0 && errno == ECHILD) {
      exited.emplace_back(*it, ExitStatus{.code = 255});  // someone else reaped it
      it = children_.erase(it);
    } else {
      ++it;
    }
  }
  // Outside the loop: the handler may spawn (restart), changing children_.
  for (auto& [pid, status] : exited) {
    if (on_exit_) on_exit_(pid, status);
  }
}

pid_t PosixSpawner::Spawn(const SpawnSpec& spec, std::string& error) {
  if (spec.argv.empty() || spec.argv[0].empty()) {
    error = "empty command";
    return -1;
  }
  // Everything the child needs is built before fork: after fork only
  // async-signal-safe calls are allowed.
  std::vector<char*> argv;
  for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::map<std::string, std::string> env_map;
  for (char** e = environ; e && *e; ++e) {
    std::string_view kv(*e);
    const auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env_map[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
  }
  for (const auto& [k, v] : spec.env) env_map[k] = v;
  std::vector<std::string> env_strings;
  env_strings.reserve(env_map.size());
  for (const auto& [k, v] : env_map) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  const char* cwd = spec.cwd.empty() ? nullptr : spec.cwd.c_str();

  int out[2], err[2], report[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    error = std::string("pipe: ") + strerror(errno);
    return -1;
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    error = std::string("pipe: ") + strerror(errno);
    close(out[0]);
    close(out[1]);
    return -1;
  }
  if (pipe2(report, O_CLOEXEC) != 0) {
    error = std::string("pipe: ") + strerror(errno);
    for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
    return -1;
  }
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    error = std::string("fork: ") + strerror(errno);
    for (int fd : {out[0], out[1], err[0], err[1], report[0], report[1]}) close(fd);
    return -1;
  }
  if (pid == 0) {
    // ---- child ----
    setpgid(0, 0);  // its own group: signals to it reach what it starts
    // Die with pincerd, even when pincerd is SIGKILLed. If pincerd died
    // before prctl took effect, the parent is already someone else.
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ChildFail(report[1], 1);
    if (getppid() != parent) _exit(127);
    // pincerd blocks and catches signals for its own loop; the child starts clean.
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull < 0 || dup2(devnull, 0) < 0) ChildFail(report[1], 2);
    if (dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) ChildFail(report[1], 2);
    CloseFrom(3, report[1]);  // report[1] is close-on-exec
    if (cwd && chdir(cwd) != 0) ChildFail(report[1], 3);
    execvpe(argv[0], argv.data(), envp.data());
    ChildFail(report[1], 4);
  }
  // ---- parent ----
  setpgid(pid, pid);  // also here, so a signal sent right away finds the group
  close(out[1]);
  close(err[1]);
  close(report[1]);
  int failure[2] = {0, 0};
  ssize_t n;
  // Returns at exec (close-on-exec closes the pipe) or with the child's
  // errno; the child gets there within microseconds.
  while ((n = read(report[0], failure, sizeof failure)) < 0 && errno == EINTR) {
  }
  close(report[0]);
  if (n > 0) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    close(out[0]);
    close(err[0]);
    std::string stage = "child setup";
    if (failure[0] == 3) stage = "chdir to " + spec.cwd;
    if (failure[0] == 4) stage = "exec " + spec.argv[0];
    error = stage + ": " + strerror(failure[1]);
    return -1;
  }
  children_.insert(pid);
  std::erase_if(loggers_, [](const std::weak_ptr<LineLogger>& w) { return w.expired(); });
  for (auto [fd, is_err] : {std::pair{out[0], false}, std::pair{err[0], true}}) {
    auto logger = std::make_shared<LineLogger>(io_, fd, spec, is_err, on_output_);
    logger->Read();
    loggers_.push_back(logger);
  }
  return pid;
}

void PosixSpawner::Signal(pid_t pid, int signal) {
  if (!children_.count(pid)) return;  // reaped: the pid may belong to someone else now
  if (kill(-pid, signal) != 0) kill(pid, signal);
}

}  // namespace pincer
