// pincer's one framer of newline-delimited JSON: it splits a byte stream
// into lines, with a hard bound on a line's length, for pincerd's
// connections (net/connection), the client library and pincer-worker.
// Pure: bytes go in (read straight into its buffer, or appended) and lines
// come out as views into it; no sockets.
//
// A line ends at '\n'; a '\r' before it is not part of the line. Empty
// lines are skipped. A line longer than max_line() bytes, or an unfinished
// one that can no longer end as one that fits, overflows the framer for
// good: a stream cannot be resynchronised.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace pincer {

// Readable bytes after every line a LineFramer hands out, so a parser may
// read past the end of a line without copying it first (simdjson reads up
// to SIMDJSON_PADDING bytes past its input; ParseMessagePadded).
inline constexpr std::size_t kLinePadding = 64;

class LineFramer {
 public:
  // `max_line`: the longest line accepted, line end excluded.
  explicit LineFramer(std::size_t max_line) : max_line_(max_line) {}

  // The longest line accepted from the next NextLine on (e.g. a small one
  // until a peer is known).
  void set_max_line(std::size_t max_line) { max_line_ = max_line; }
  std::size_t max_line() const { return max_line_; }

  // Room for `n` more bytes of input: write at most `n` bytes there, then
  // Commit how many were written. Lines handed out before are invalid from
  // here on (the buffer may move).
  char* Prepare(std::size_t n);
  void Commit(std::size_t n) { size_ += n; }
  // Prepare, copy, Commit.
  void Append(std::string_view bytes);

  // The next complete non-empty line without its line end, or nullopt when
  // none is buffered (or overflowed()). The view stays valid, and is
  // followed by at least kLinePadding readable bytes, until the next
  // Prepare or Append.
  std::optional<std::string_view> NextLine();

  // Set by NextLine when a line is found too long; NextLine then returns
  // nullopt for good.
  bool overflowed() const { return overflowed_; }
  // Input not yet handed out as a line.
  std::size_t buffered() const { return size_ - start_; }

 private:
  std::size_t max_line_;
  // Input is buf_[0, size_); buf_ is kept kLinePadding longer than what may
  // be written into it. Lines before start_ are handed out (the space is
  // reclaimed by the next Prepare), and buf_[start_, scanned_) holds no
  // '\n', so a long line arriving in many reads is searched once.
  std::string buf_;
  std::size_t size_ = 0;
  std::size_t start_ = 0;
  std::size_t scanned_ = 0;
  bool overflowed_ = false;
};

}  // namespace pincer
