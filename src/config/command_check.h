// `pincerd --check-config` warnings about pool commands: a command that
// does not exist or is not executable, looked up as the supervisor will
// (a name with a '/' from the pool's cwd, a bare name in PATH), and the
// same for the `--` COMMAND of a pool that runs pincer-worker (looked up in
// the pool's PATH when its env sets one, as pincer-worker does).
//
// Warnings, not errors: the file may be checked on another machine than the
// one it runs on, or before the program is installed.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace pincer {

// One line per problem: "pools[0].command[0]: 'frob' not found in PATH (...)".
// `path` is pincerd's PATH ("" = unset: glibc's default, /bin:/usr/bin).
std::vector<std::string> PoolCommandWarnings(const Config& config, const std::string& path);

}  // namespace pincer
