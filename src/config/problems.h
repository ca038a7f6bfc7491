// Internal to the config module: collects every problem found in a config so
// that one run of --check-config shows them all, not just the first.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace pincer::config_internal {

// The length of the longest prefix of `text` of at most `max` bytes that
// does not end inside a UTF-8 sequence, so a shortened message stays valid
// UTF-8 (it goes out in a JSON string).
inline std::size_t Utf8Prefix(std::string_view text, std::size_t max) {
  if (text.size() <= max) return text.size();
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return n;
}

class Problems {
 public:
  // `file` prefixes every message; empty for a Config built in code.
  explicit Problems(std::string file) : file_(std::move(file)) {}

  // `path` is the dotted key path ("routing.rules[1].strategy"); empty when
  // the problem is about the file as a whole (syntax, not readable, ...).
  //
  // A hostile file could hold a million bad keys, or one key or value of
  // megabytes: the error keeps the first kMaxLines problems and cuts each
  // line to kMaxLineBytes, so it stays readable in a log and fits in one
  // wire message.
  void Add(std::string_view path, std::string_view message) {
    if (lines_.size() >= kMaxLines) {
      ++dropped_;
      return;
    }
    std::string line = file_.empty() ? "" : file_ + ": ";
    if (!path.empty()) line.append(path).append(": ");
    line.append(message);
    if (line.size() > kMaxLineBytes) {
      const std::size_t kept = Utf8Prefix(line, kMaxLineBytes);
      const std::size_t cut = line.size() - kept;
      line.resize(kept);
      line += "... (" + std::to_string(cut) + " more bytes)";
    }
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
    if (dropped_ > 0) {
      joined += "\n" + (file_.empty() ? "" : file_ + ": ") + "and " + std::to_string(dropped_) +
                " more problem(s)";
    }
    return ConfigError{joined};
  }

  static constexpr std::size_t kMaxLines = 100;
  static constexpr std::size_t kMaxLineBytes = 1000;

 private:
  std::string file_;
  std::vector<std::string> lines_;
  std::size_t dropped_ = 0;
};

// A value quoted in a message: whole when short, else its start and its
// length ("11111111111111111111111111111111... (40000 bytes)").
inline std::string Shown(std::string_view value) {
  constexpr std::size_t kShown = 32;
  if (value.size() <= kShown) return std::string(value);
  return std::string(value.substr(0, Utf8Prefix(value, kShown))) + "... (" +
         std::to_string(value.size()) + " bytes)";
}

// "unknown <what> '<value>' (expected a, b or c)": a name that is none of
// `allowed`.
inline std::string UnknownName(std::string_view what, std::string_view value,
                               const std::vector<std::string_view>& allowed) {
  std::string expected;
  for (std::size_t i = 0; i < allowed.size(); ++i) {
    if (i > 0) expected += (i + 1 == allowed.size()) ? " or " : ", ";
    expected.append(allowed[i]);
  }
  return "unknown " + std::string(what) + " '" + std::string(value) + "' (expected " + expected +
         ")";
}

// Paths are for messages only: a key longer than any real one is shortened.
inline std::string Field(std::string_view path, std::string_view key) {
  std::string out(path);
  if (!out.empty()) out += '.';
  out.append(key.size() > 64 ? Shown(key) : std::string(key));
  return out;
}

inline std::string Index(std::string_view path, std::size_t i) {
  return std::string(path) + "[" + std::to_string(i) + "]";
}

}  // namespace pincer::config_internal
