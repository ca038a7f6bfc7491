#include "supervisor/output_log.h"

#include <algorithm>

namespace pincer {

void OutputLog::Add(const std::string& pool, int replica, bool err, std::string_view text,
                    int64_t unix_ms) {
  std::deque<Line>& ring = rings_[pool][replica];
  if (ring.size() >= kLinesPerReplica) ring.pop_front();
  Line line{next_seq_++, unix_ms, replica, err, std::string(text.substr(0, kMaxLineBytes))};
  if (text.size() > kMaxLineBytes) line.text += "...";
  ring.push_back(std::move(line));
}

std::vector<OutputLog::Line> OutputLog::Read(const std::string& pool, uint64_t after,
                                             std::size_t limit) const {
  std::vector<Line> out;
  auto it = rings_.find(pool);
  if (it == rings_.end()) return out;
  for (const auto& [replica, ring] : it->second) {
    // Each ring is in seq order: skip what the reader has seen.
    auto first = std::upper_bound(ring.begin(), ring.end(), after,
                                  [](uint64_t seq, const Line& l) { return seq < l.seq; });
    out.insert(out.end(), first, ring.end());
  }
  std::sort(out.begin(), out.end(), [](const Line& a, const Line& b) { return a.seq < b.seq; });
  if (out.size() > limit) out.erase(out.begin(), out.end() - static_cast<std::ptrdiff_t>(limit));
  return out;
}

std::vector<std::string> OutputLog::StderrTail(const std::string& pool, int replica,
                                               std::size_t n) const {
  std::vector<std::string> out;
  auto it = rings_.find(pool);
  if (it == rings_.end()) return out;
  auto ring = it->second.find(replica);
  if (ring == it->second.end()) return out;
  for (auto l = ring->second.rbegin(); l != ring->second.rend() && out.size() < n; ++l) {
    if (l->err) out.push_back(l->text);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

void OutputLog::KeepOnly(const std::vector<std::string>& pools) {
  std::erase_if(rings_, [&](const auto& entry) {
    return std::find(pools.begin(), pools.end(), entry.first) == pools.end();
  });
}

}  // namespace pincer
