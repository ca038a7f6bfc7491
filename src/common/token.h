// Comparing secrets (auth tokens). Header-only: pure.
#pragma once

#include <cstddef>
#include <string_view>

namespace pincer {

// Whether `given` is the token `expected`; an empty `expected` means the
// role needs no token, and anything matches. Takes the same time whatever
// `given` holds (it depends on the length of `expected` only), so a token
// cannot be guessed byte by byte from how fast a hello is refused.
inline bool TokenMatches(std::string_view expected, std::string_view given) {
  if (expected.empty()) return true;
  unsigned char diff = expected.size() != given.size();
  for (std::size_t i = 0; i < expected.size(); ++i) {
    diff |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
  }
  return diff == 0;
}

}  // namespace pincer
