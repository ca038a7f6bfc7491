#include "worker/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string_view>

extern char** environ;

namespace pincer::worker {
namespace {

// Closes whatever it holds when it goes out of scope, so every early return
// below leaves no descriptor behind.
class FdPair {
 public:
  FdPair() = default;
  FdPair(const FdPair&) = delete;
  FdPair& operator=(const FdPair&) = delete;
  ~FdPair() {
    CloseRead();
    CloseWrite();
  }
  bool Open() { return pipe2(fds_, O_CLOEXEC) == 0; }
  int read_end() const { return fds_[0]; }
  int write_end() const { return fds_[1]; }
  int ReleaseRead() { return std::exchange(fds_[0], -1); }
  int ReleaseWrite() { return std::exchange(fds_[1], -1); }
  void CloseRead() {
    if (fds_[0] >= 0) close(std::exchange(fds_[0], -1));
  }
  void CloseWrite() {
    if (fds_[1] >= 0) close(std::exchange(fds_[1], -1));
  }

 private:
  int fds_[2] = {-1, -1};
};

std::vector<std::string> BuildEnvironment(
    const std::vector<std::pair<std::string, std::string>>& overrides) {
  std::vector<std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view entry(*e);
    bool replaced = false;
    for (const auto& [key, value] : overrides) {
      if (entry.size() > key.size() && entry.substr(0, key.size()) == key &&
          entry[key.size()] == '=') {
        replaced = true;
        break;
      }
    }
    if (!replaced) env.emplace_back(entry);
  }
  for (const auto& [key, value] : overrides) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> PointerArray(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

std::string Errno(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

}  // namespace

std::variant<SpawnedChild, std::string> SpawnChild(
    const std::vector<std::string>& argv,
    const std::vector<std::pair<std::string, std::string>>& env_overrides) {
  if (argv.empty()) return std::string("no command to run");
  FdPair in, out, err;
  if (!in.Open() || !out.Open() || !err.Open()) return Errno("pipe", errno);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  // dup2 onto 0..2 clears close-on-exec on the copies only; every other
  // descriptor is closed outright, whether or not its owner (Asio opens
  // sockets without SOCK_CLOEXEC) remembered to mark it.
  posix_spawn_file_actions_adddup2(&actions, in.read_end(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out.write_end(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.write_end(), STDERR_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty, all;
  sigemptyset(&empty);
  sigfillset(&all);
  // The worker ignores SIGPIPE and handles SIGCHLD/SIGTERM/SIGINT itself;
  // the command must start with the defaults and no blocked signals.
  posix_spawnattr_setsigmask(&attr, &empty);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<std::string> args = argv;
  std::vector<char*> arg_ptrs = PointerArray(args);
  std::vector<std::string> env = BuildEnvironment(env_overrides);
  std::vector<char*> env_ptrs = PointerArray(env);

  pid_t pid = -1;
  // glibc reports a failed exec (ENOENT, EACCES) here, not as exit 127.
  const int rc =
      posix_spawnp(&pid, args[0].c_str(), &actions, &attr, arg_ptrs.data(), env_ptrs.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return "cannot run \"" + argv[0] + "\": " + std::strerror(rc);

  in.CloseRead();
  out.CloseWrite();
  err.CloseWrite();
  SpawnedChild child;
  child.pid = pid;
  child.stdin_fd = in.ReleaseWrite();
  child.stdout_fd = out.ReleaseRead();
  child.stderr_fd = err.ReleaseRead();
  return child;
}

void SignalProcessGroup(pid_t pgid, int sig) {
  if (pgid > 0) kill(-pgid, sig);
}

void EnsureStdioOpen() {
  for (int fd = 0; fd <= 2; ++fd) {
    if (fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      const int null_fd = open("/dev/null", O_RDWR);
      if (null_fd >= 0 && null_fd != fd) {
        dup2(null_fd, fd);
        close(null_fd);
      }
    }
  }
}

}  // namespace pincer::worker
