#include "protocol/line_framer.h"

#include <cstring>

namespace pincer {

char* LineFramer::Prepare(std::size_t n) {
  if (start_ > 0) {
    std::memmove(buf_.data(), buf_.data() + start_, size_ - start_);
    size_ -= start_;
    scanned_ -= start_;
    start_ = 0;
  }
  // Grown, never shrunk: a read does not re-zero its buffer each time.
  if (buf_.size() < size_ + n + kLinePadding) buf_.resize(size_ + n + kLinePadding);
  return buf_.data() + size_;
}

void LineFramer::Append(std::string_view bytes) {
  std::memcpy(Prepare(bytes.size()), bytes.data(), bytes.size());
  Commit(bytes.size());
}

std::optional<std::string_view> LineFramer::NextLine() {
  while (!overflowed_) {
    const char* base = buf_.data();
    const void* nl = std::memchr(base + scanned_, '\n', size_ - scanned_);
    if (!nl) {
      scanned_ = size_;
      // One byte of slack: it may be the '\r' of a "\r\n" ending.
      if (size_ - start_ > max_line_ + 1) overflowed_ = true;
      return std::nullopt;
    }
    const std::size_t end = static_cast<const char*>(nl) - base;
    const std::size_t begin = start_;
    std::size_t len = end - begin;
    if (len > 0 && base[end - 1] == '\r') --len;
    start_ = scanned_ = end + 1;
    if (len > max_line_) {
      overflowed_ = true;
      return std::nullopt;
    }
    if (len > 0) return std::string_view(base + begin, len);
  }
  return std::nullopt;
}

}  // namespace pincer
