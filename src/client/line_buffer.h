// Splits a byte stream into newline-terminated lines with a hard bound on
// how much an unfinished line may hold, so a peer that never sends '\n'
// cannot make the client grow without limit. Pure; no sockets.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pincer::client {

class LineBuffer {
 public:
  // max_line_bytes: the longest line accepted, newline excluded.
  explicit LineBuffer(std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

  void Append(std::string_view bytes) { data_.append(bytes); }

  // The next complete line without its "\n" (and without a "\r" before it),
  // or nullopt when no full line is buffered yet. Empty lines are returned
  // as empty strings; the caller decides to skip them.
  std::optional<std::string> NextLine();

  // Set by NextLine once a line (finished or not) is longer than the bound;
  // NextLine then returns nullopt for good, as the stream cannot be
  // resynchronised.
  bool overflowed() const { return overflowed_; }

  std::size_t buffered() const { return data_.size() - start_; }

 private:
  std::size_t max_line_bytes_;
  std::string data_;
  std::size_t start_ = 0;  // consumed prefix of data_, compacted lazily
  std::size_t scan_ = 0;   // data_[start_, scan_) is known to hold no '\n'
  bool overflowed_ = false;
};

}  // namespace pincer::client
