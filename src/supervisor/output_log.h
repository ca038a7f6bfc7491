// What pool processes wrote on stdout and stderr, kept in memory for
// `pincerctl logs` and for `pincerctl pools` to say why a replica died: a
// ring of the last kLinesPerReplica lines per replica slot (pool, index),
// each cut at kMaxLineBytes, so the whole is bounded whatever a child
// prints. A slot's ring outlives its process (a crash's last words stay
// readable after the restart); a pool's rings go with the pool.
//
// Every line gets a sequence number, increasing across all pools, so a
// reader can ask for "what came after the last line I saw".
//
// Threading: the event-loop thread only.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace pincer {

class OutputLog {
 public:
  static constexpr std::size_t kLinesPerReplica = 500;
  static constexpr std::size_t kMaxLineBytes = 2048;

  struct Line {
    uint64_t seq = 0;
    int64_t unix_ms = 0;
    int replica = 0;
    bool err = false;  // stderr (else stdout)
    std::string text;
  };

  void Add(const std::string& pool, int replica, bool err, std::string_view text, int64_t unix_ms);
  // The lines of `pool` after `after` (a seq), oldest first; when there are
  // more than `limit`, the newest `limit` of them.
  std::vector<Line> Read(const std::string& pool, uint64_t after, std::size_t limit) const;
  // The last `n` stderr lines of one replica slot, oldest first.
  std::vector<std::string> StderrTail(const std::string& pool, int replica, std::size_t n) const;
  // Drops the rings of pools not in `pools`.
  void KeepOnly(const std::vector<std::string>& pools);
  uint64_t last_seq() const { return next_seq_ - 1; }

 private:
  std::map<std::string, std::map<int, std::deque<Line>>> rings_;
  uint64_t next_seq_ = 1;
};

}  // namespace pincer
