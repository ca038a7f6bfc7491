// Helpers to build JSON text by hand on the hot path, where going through a
// DOM would cost an allocation per field. Values that are already JSON text
// (payloads, outputs) are spliced in as they are.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pincer {

// Appends `s` as a quoted JSON string. REQUIRES: `s` is valid UTF-8.
void AppendJsonString(std::string& out, std::string_view s);
// Appends `raw` if non-empty, else `null`. REQUIRES: `raw` is valid JSON.
inline void AppendRawOrNull(std::string& out, std::string_view raw) {
  out.append(raw.empty() ? std::string_view("null") : raw);
}
// Appends `s` as a JSON string, or `null` when it is empty.
inline void AppendStringOrNull(std::string& out, std::string_view s) {
  if (s.empty()) {
    out.append(std::string_view("null"));
  } else {
    AppendJsonString(out, s);
  }
}
void AppendJsonStringArray(std::string& out, const std::vector<std::string>& items);
inline void AppendInt(std::string& out, int64_t v) {
  char digits[24];  // no temporary string
  const auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
  out.append(digits, static_cast<std::size_t>(end - digits));
}

}  // namespace pincer
