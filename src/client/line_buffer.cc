#include "client/line_buffer.h"

#include <algorithm>

namespace pincer::client {

std::optional<std::string> LineBuffer::NextLine() {
  if (overflowed_) return std::nullopt;
  // Resume the search where the last one stopped: a long line arriving in
  // many small reads is scanned once, not once per read.
  const auto newline = data_.find('\n', std::max(scan_, start_));
  if (newline == std::string::npos) {
    if (start_ > 0) {
      data_.erase(0, start_);
      start_ = 0;
    }
    scan_ = data_.size();
    // One byte of slack: it may be the '\r' of a "\r\n" ending.
    if (data_.size() > max_line_bytes_ + 1) overflowed_ = true;
    return std::nullopt;
  }
  std::size_t end = newline;
  if (end > start_ && data_[end - 1] == '\r') --end;
  if (end - start_ > max_line_bytes_) {
    overflowed_ = true;
    return std::nullopt;
  }
  std::string line = data_.substr(start_, end - start_);
  start_ = newline + 1;
  scan_ = start_;
  if (start_ == data_.size()) {
    data_.clear();
    start_ = 0;
    scan_ = 0;
  }
  return line;
}

}  // namespace pincer::client
