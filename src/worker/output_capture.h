// Bounded capture of a child's output. Children can print without limit;
// the worker keeps what fits in one result frame (stdout, from the start)
// and what explains a failure (stderr, the end). Pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

namespace pincer::worker {

// Keeps the first `cap` bytes and remembers whether more arrived.
class HeadBuffer {
 public:
  explicit HeadBuffer(std::size_t cap) : cap_(cap) {}

  void Append(std::string_view bytes);

  const std::string& data() const { return data_; }
  std::string Take() { return std::move(data_); }
  bool overflowed() const { return total_ > cap_; }
  std::size_t total() const { return total_; }

 private:
  std::size_t cap_;
  std::size_t total_ = 0;
  std::string data_;
};

// Keeps the last `cap` bytes. The buffer is allowed to grow to twice the cap
// before it is trimmed, so appending is amortised O(bytes).
class TailBuffer {
 public:
  explicit TailBuffer(std::size_t cap) : cap_(cap) {}

  void Append(std::string_view bytes);
  std::string Take();
  bool truncated() const { return truncated_ || data_.size() > cap_; }

 private:
  void Trim();

  std::size_t cap_;
  std::string data_;
  bool truncated_ = false;
};

}  // namespace pincer::worker
