// Reading a whole (small) file: config files, token files, payload files.
#pragma once

#include <optional>
#include <string>

namespace pincer {

// The file's bytes; nullopt with `*error` set ("No such file or directory",
// "is a directory", ...) when it cannot be read. Never throws.
std::optional<std::string> ReadFile(const std::string& path, std::string* error);

}  // namespace pincer
