// A log-linear latency histogram (about 1.5% resolution) that merges by
// adding counts, so client processes can ship theirs to the orchestrator
// through a pipe as plain bytes.
#pragma once

#include <array>
#include <bit>
#include <cstdint>

namespace pincer::bench {

class Histogram {
 public:
  static constexpr int kSubBits = 6;  // 64 sub-buckets per power of two
  static constexpr int kBuckets = 64 * 40;

  void Record(uint64_t ns) {
    ++counts_[Index(ns)];
    ++total_;
    if (ns > max_) max_ = ns;
  }
  void Merge(const Histogram& o) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    if (o.max_ > max_) max_ = o.max_;
  }
  uint64_t total() const { return total_; }
  uint64_t max() const { return max_; }
  // The value below which a fraction `q` of the samples lie (bucket midpoint).
  uint64_t Quantile(double q) const {
    if (total_ == 0) return 0;
    const uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return Value(i) < max_ ? Value(i) : max_;
    }
    return max_;
  }

 private:
  static int Index(uint64_t v) {
    if (v < 128) return static_cast<int>(v);
    const int e = 63 - std::countl_zero(v) - kSubBits;  // >= 1
    const int i = 64 * e + static_cast<int>(v >> e);
    return i < kBuckets ? i : kBuckets - 1;
  }
  static uint64_t Value(int i) {
    if (i < 128) return static_cast<uint64_t>(i);
    const int e = i / 64 - 1;
    const uint64_t m = static_cast<uint64_t>(i - 64 * e);
    return (m << e) + (uint64_t{1} << e) / 2;
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t max_ = 0;
};

}  // namespace pincer::bench
