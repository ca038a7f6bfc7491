// Internal to the config module: collects every problem found in a config so
// that one run of --check-config shows them all, not just the first.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace pincer::config_internal {

class Problems {
 public:
  // `file` prefixes every message; empty for a Config built in code.
  explicit Problems(std::string file) : file_(std::move(file)) {}

  // `path` is the dotted key path ("routing.rules[1].strategy"); empty when
  // the problem is about the file as a whole (syntax, not readable, ...).
  void Add(std::string_view path, std::string_view message) {
    std::string line = file_.empty() ? "" : file_ + ": ";
    if (!path.empty()) line.append(path).append(": ");
    line.append(message);
    lines_.push_back(std::move(line));
  }

  bool empty() const { return lines_.empty(); }

  // One line per problem, in the order they were found.
  ConfigError ToError() const {
    std::string joined;
    for (const std::string& line : lines_) {
      if (!joined.empty()) joined += '\n';
      joined += line;
    }
    return ConfigError{joined};
  }

 private:
  std::string file_;
  std::vector<std::string> lines_;
};

inline std::string Field(std::string_view path, std::string_view key) {
  std::string out(path);
  if (!out.empty()) out += '.';
  out.append(key);
  return out;
}

inline std::string Index(std::string_view path, std::size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

}  // namespace pincer::config_internal
