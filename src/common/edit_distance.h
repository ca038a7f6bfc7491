// Levenshtein distance, for "did you mean": an unknown config key or
// pincerctl command is answered with the nearest known one.
#pragma once

#include <cstddef>
#include <string_view>

namespace pincer {

// Insertions, deletions and substitutions (one byte each) that turn `a`
// into `b`. O(|a| * |b|) time: meant for short words.
std::size_t EditDistance(std::string_view a, std::string_view b);

}  // namespace pincer
