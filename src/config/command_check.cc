#include "config/command_check.h"

#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <sstream>

namespace pincer {
namespace {

enum class Found { kOk, kMissing, kNotExecutable, kNotAFile };

Found Look(const std::string& file) {
  struct stat st;
  if (stat(file.c_str(), &st) != 0) return Found::kMissing;
  if (!S_ISREG(st.st_mode)) return Found::kNotAFile;
  return access(file.c_str(), X_OK) == 0 ? Found::kOk : Found::kNotExecutable;
}

// `name` relative to `cwd` ("" = the current directory).
std::string From(const std::string& cwd, const std::string& name) {
  if (name.empty() || name.front() == '/' || cwd.empty()) return name;
  return cwd + (cwd.back() == '/' ? "" : "/") + name;
}

// Why `program` cannot be run from `cwd` with `path`; nullopt when it can.
std::optional<std::string> Problem(const std::string& program, const std::string& cwd,
                                   const std::string& path) {
  if (program.empty()) return "empty command";
  if (program.find('/') != std::string::npos) {
    const std::string file = From(cwd, program);
    switch (Look(file)) {
      case Found::kOk:
        return std::nullopt;
      case Found::kMissing:
        return "'" + file + "' does not exist";
      case Found::kNotAFile:
        return "'" + file + "' is not a file";
      case Found::kNotExecutable:
        return "'" + file + "' is not executable";
    }
  }
  std::optional<std::string> not_executable;
  std::stringstream dirs(path.empty() ? std::string("/bin:/usr/bin") : path);
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string file = From(cwd, (dir.empty() ? "." : dir) + "/" + program);
    const Found found = Look(file);
    if (found == Found::kOk) return std::nullopt;
    if (found == Found::kNotExecutable && !not_executable) not_executable = file;
  }
  if (not_executable)
    return "'" + program + "' is in PATH at " + *not_executable + " but is not executable";
  return "'" + program + "' not found in PATH (" + (path.empty() ? "/bin:/usr/bin" : path) + ")";
}

std::string Basename(const std::string& file) {
  const auto slash = file.rfind('/');
  return slash == std::string::npos ? file : file.substr(slash + 1);
}

}  // namespace

std::vector<std::string> PoolCommandWarnings(const Config& config, const std::string& path) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < config.pools.size(); ++i) {
    const PoolConfig& pool = config.pools[i];
    const std::string where = "pools[" + std::to_string(i) + "] (" + pool.name + ")";
    if (pool.command.empty()) continue;  // validation already refuses it
    if (auto problem = Problem(pool.command[0], pool.cwd, path)) {
      out.push_back(where + ".command[0]: " + *problem);
    }
    if (Basename(pool.command[0]) != "pincer-worker") continue;
    for (std::size_t a = 1; a + 1 < pool.command.size(); ++a) {
      if (pool.command[a] != "--") continue;
      // pincer-worker looks its COMMAND up in its own environment's PATH:
      // pincerd's, or the pool's when its env sets one.
      auto env_path = pool.env.find("PATH");
      const std::string worker_path = env_path != pool.env.end() ? env_path->second : path;
      if (auto problem = Problem(pool.command[a + 1], pool.cwd, worker_path)) {
        out.push_back(where + ".command[" + std::to_string(a + 1) +
                      "] (pincer-worker's COMMAND): " + *problem);
      }
      break;
    }
  }
  return out;
}

}  // namespace pincer
