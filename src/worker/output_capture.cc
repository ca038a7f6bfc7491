#include "worker/output_capture.h"

namespace pincer::worker {

void HeadBuffer::Append(std::string_view bytes) {
  total_ += bytes.size();
  if (data_.size() >= cap_) return;
  data_.append(bytes.substr(0, cap_ - data_.size()));
}

void TailBuffer::Append(std::string_view bytes) {
  if (bytes.size() >= cap_) {
    data_.assign(bytes.substr(bytes.size() - cap_));
    truncated_ = true;
    return;
  }
  data_.append(bytes);
  if (data_.size() > 2 * cap_) Trim();
}

std::string TailBuffer::Take() {
  Trim();
  return data_;
}

void TailBuffer::Trim() {
  if (data_.size() <= cap_) return;
  data_.erase(0, data_.size() - cap_);
  truncated_ = true;
}

}  // namespace pincer::worker
