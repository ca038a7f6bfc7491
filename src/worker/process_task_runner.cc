#include "worker/process_task_runner.h"

#include <signal.h>
#include <sys/wait.h>

#include <array>
#include <utility>

#include "worker/child_process.h"
#include "worker/output_capture.h"

namespace pincer::worker {

struct ProcessTaskRunner::Proc {
  Proc(asio::io_context& io, const ProcessRunnerOptions& o)
      : in(io),
        out(io),
        err(io),
        stdout_buf(o.stdout_cap),
        stderr_buf(o.stderr_tail),
        kill_timer(io),
        linger_timer(io) {}

  std::string id;
  pid_t pid = -1;  // -1: the spawn failed
  std::string spawn_error;
  bool wanted = true;  // false once cancelled: end silently
  bool reaped = false;
  int wait_status = 0;
  bool stdout_done = false;
  bool stderr_done = false;
  asio::posix::stream_descriptor in;
  asio::posix::stream_descriptor out;
  asio::posix::stream_descriptor err;
  std::string stdin_data;
  std::array<char, 64 << 10> out_chunk;
  std::array<char, 16 << 10> err_chunk;
  HeadBuffer stdout_buf;
  TailBuffer stderr_buf;
  asio::steady_timer kill_timer;
  asio::steady_timer linger_timer;
};

ProcessTaskRunner::ProcessTaskRunner(asio::io_context& io, ProcessRunnerOptions options)
    : io_(io), options_(std::move(options)), sigchld_(io, SIGCHLD) {
  WaitForSigchld();
}

ProcessTaskRunner::~ProcessTaskRunner() {
  // Never leave a task's processes running behind a worker that is gone.
  for (auto& [serial, p] : procs_) {
    if (p->pid > 0) SignalProcessGroup(p->pid, SIGKILL);
  }
}

ProcessTaskRunner::Proc* ProcessTaskRunner::Find(uint64_t serial) {
  const auto it = procs_.find(serial);
  return it == procs_.end() ? nullptr : it->second.get();
}

std::vector<pid_t> ProcessTaskRunner::pids() const {
  std::vector<pid_t> out;
  for (const auto& [serial, p] : procs_) {
    if (p->pid > 0 && !p->reaped) out.push_back(p->pid);
  }
  return out;
}

void ProcessTaskRunner::Start(TaskSpec spec) {
  const uint64_t serial = next_serial_++;
  auto proc = std::make_unique<Proc>(io_, options_);
  Proc& p = *proc;
  p.id = spec.id;
  procs_.emplace(serial, std::move(proc));
  by_id_[spec.id] = serial;

  auto spawned = SpawnChild(options_.command, {{"PINCER_TASK_ID", spec.id},
                                               {"PINCER_SESSION", spec.session},
                                               {"PINCER_ATTEMPT", std::to_string(spec.attempt)}});
  if (auto* error = std::get_if<std::string>(&spawned)) {
    p.spawn_error = std::move(*error);
    p.reaped = p.stdout_done = p.stderr_done = true;
    // Reported from the loop, not from here: Start's caller is in the
    // middle of handling a message and must not be re-entered.
    asio::post(io_, [this, serial] { MaybeFinish(serial); });
    return;
  }
  const SpawnedChild& child = std::get<SpawnedChild>(spawned);
  p.pid = child.pid;
  by_pid_[child.pid] = serial;
  std::error_code ignored;
  p.in.assign(child.stdin_fd, ignored);
  p.out.assign(child.stdout_fd, ignored);
  p.err.assign(child.stderr_fd, ignored);
  p.stdin_data = std::move(spec.stdin_data);
  WriteStdin(serial);
  ReadStdout(serial);
  ReadStderr(serial);
}

void ProcessTaskRunner::WriteStdin(uint64_t serial) {
  Proc* p = Find(serial);
  if (p->stdin_data.empty()) {
    std::error_code ignored;
    p->in.close(ignored);
    return;
  }
  asio::async_write(p->in, asio::buffer(p->stdin_data),
                    [this, serial](std::error_code, std::size_t) {
                      // Written, or the child stopped reading (EPIPE: it may
                      // not care about its input). Either way stdin is done.
                      Proc* p = Find(serial);
                      if (p == nullptr) return;
                      std::error_code ignored;
                      p->in.close(ignored);
                      std::string().swap(p->stdin_data);
                    });
}

void ProcessTaskRunner::ReadStdout(uint64_t serial) {
  Proc* p = Find(serial);
  p->out.async_read_some(asio::buffer(p->out_chunk),
                         [this, serial](std::error_code ec, std::size_t n) {
                           Proc* p = Find(serial);
                           if (p == nullptr || p->stdout_done) return;
                           p->stdout_buf.Append(std::string_view(p->out_chunk.data(), n));
                           if (ec) {
                             p->stdout_done = true;
                             std::error_code ignored;
                             p->out.close(ignored);
                             MaybeFinish(serial);
                             return;
                           }
                           ReadStdout(serial);
                         });
}

void ProcessTaskRunner::ReadStderr(uint64_t serial) {
  Proc* p = Find(serial);
  p->err.async_read_some(asio::buffer(p->err_chunk),
                         [this, serial](std::error_code ec, std::size_t n) {
                           Proc* p = Find(serial);
                           if (p == nullptr || p->stderr_done) return;
                           p->stderr_buf.Append(std::string_view(p->err_chunk.data(), n));
                           if (ec) {
                             p->stderr_done = true;
                             std::error_code ignored;
                             p->err.close(ignored);
                             MaybeFinish(serial);
                             return;
                           }
                           ReadStderr(serial);
                         });
}

void ProcessTaskRunner::WaitForSigchld() {
  sigchld_.async_wait([this](std::error_code ec, int) {
    if (ec) return;  // the runner is being destroyed
    ReapChildren();
    WaitForSigchld();
  });
}

void ProcessTaskRunner::ReapChildren() {
  // One SIGCHLD may stand for several exits, so reap until none is left.
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    const auto it = by_pid_.find(pid);
    if (it == by_pid_.end()) continue;
    const uint64_t serial = it->second;
    by_pid_.erase(it);
    OnReaped(serial, status);
    MaybeFinish(serial);
  }
}

void ProcessTaskRunner::OnReaped(uint64_t serial, int wait_status) {
  Proc* p = Find(serial);
  if (p == nullptr) return;
  p->reaped = true;
  p->wait_status = wait_status;
  std::error_code ignored;
  p->in.close(ignored);
  if (p->stdout_done && p->stderr_done) return;
  // Something the command started in the background still holds its
  // output pipes. Give it a moment to finish writing, then end the task
  // without it rather than wait forever.
  p->linger_timer.expires_after(options_.linger);
  p->linger_timer.async_wait([this, serial](std::error_code ec) {
    if (ec) return;
    Proc* p = Find(serial);
    if (p == nullptr) return;
    SignalProcessGroup(p->pid, SIGKILL);
    p->stdout_done = p->stderr_done = true;
    std::error_code ignored;
    p->out.close(ignored);
    p->err.close(ignored);
    MaybeFinish(serial);
  });
}

bool ProcessTaskRunner::Cancel(const std::string& id) {
  const auto it = by_id_.find(id);
  if (it == by_id_.end()) return false;
  const uint64_t serial = it->second;
  by_id_.erase(it);
  Proc* p = Find(serial);
  p->wanted = false;
  std::error_code ignored;
  p->in.close(ignored);
  if (p->pid > 0) {
    SignalProcessGroup(p->pid, SIGTERM);
    p->kill_timer.expires_after(options_.kill_grace);
    p->kill_timer.async_wait([this, serial](std::error_code ec) {
      if (ec) return;
      // Still here: the leader has not exited, or its group still holds
      // the pipes. Either way the group ignored SIGTERM.
      if (Proc* p = Find(serial)) SignalProcessGroup(p->pid, SIGKILL);
    });
  }
  return true;
}

void ProcessTaskRunner::CancelAll() {
  std::vector<std::string> ids;
  ids.reserve(by_id_.size());
  for (const auto& [id, serial] : by_id_) ids.push_back(id);
  for (const auto& id : ids) Cancel(id);
}

void ProcessTaskRunner::MaybeFinish(uint64_t serial) {
  const auto it = procs_.find(serial);
  if (it == procs_.end()) return;
  Proc& p = *it->second;
  if (!p.reaped || !p.stdout_done || !p.stderr_done) return;

  TaskOutcome outcome;
  if (p.pid < 0) {
    outcome.kind = TaskOutcome::Kind::kSpawnFailed;
    outcome.spawn_error = p.spawn_error;
  } else if (WIFSIGNALED(p.wait_status)) {
    outcome.kind = TaskOutcome::Kind::kSignaled;
    outcome.code = WTERMSIG(p.wait_status);
  } else {
    outcome.kind = TaskOutcome::Kind::kExited;
    outcome.code = WEXITSTATUS(p.wait_status);
  }
  outcome.stdout_overflowed = p.stdout_buf.overflowed();
  outcome.stdout_total = p.stdout_buf.total();
  outcome.stdout_data = p.stdout_buf.Take();
  outcome.stderr_truncated = p.stderr_buf.truncated();
  outcome.stderr_tail = p.stderr_buf.Take();

  const std::string id = p.id;
  const bool wanted = p.wanted;
  if (wanted) {
    const auto by = by_id_.find(id);
    if (by != by_id_.end() && by->second == serial) by_id_.erase(by);
  }
  // Erase before calling out: the callbacks may start the next task.
  procs_.erase(it);
  if (wanted && done_) done_(id, std::move(outcome));
  // Reaped (waitpid) and its pipes closed: a cancelled task is over.
  if (!wanted && stopped_) stopped_(id);
  if (gone_) gone_();
}

}  // namespace pincer::worker
