#include "common/json_text.h"

#include <cstdint>
#include <cstring>

namespace pincer {

using namespace std::string_view_literals;

// Escapes exactly like nlohmann::json::dump() (ensure_ascii off), so a value
// is byte-identical whichever path built it.
void AppendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  // Payloads rarely need escaping: skip clean 8-byte words at once (SWAR:
  // a word is clean when no byte is < 0x20, '"' or '\\').
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull;
  std::size_t clean = 0;
  while (clean + 8 <= s.size()) {
    uint64_t w;
    std::memcpy(&w, s.data() + clean, 8);
    const uint64_t quote = w ^ (kOnes * '"'), slash = w ^ (kOnes * '\\');
    const uint64_t special = ((w - kOnes * 0x20) | (quote - kOnes) | (slash - kOnes)) & ~w & kHigh;
    if (special) break;
    clean += 8;
  }
  std::size_t run = 0;
  for (std::size_t i = clean; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s.substr(run, i - run));
    run = i + 1;
    switch (c) {
      case '"': out.append("\\\""sv); break;
      case '\\': out.append("\\\\"sv); break;
      case '\b': out.append("\\b"sv); break;
      case '\f': out.append("\\f"sv); break;
      case '\n': out.append("\\n"sv); break;
      case '\r': out.append("\\r"sv); break;
      case '\t': out.append("\\t"sv); break;
      default:
        out.append("\\u00"sv);
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xf]);
    }
  }
  out.append(s.substr(run));
  out.push_back('"');
}

bool JsonDepthWithin(std::string_view text, int max_depth) {
  int depth = 0;
  const char* p = text.data();
  const char* const end = p + text.size();
  while (p < end) {
    const char c = *p++;
    switch (c) {
      case '[':
      case '{':
        if (++depth > max_depth) return false;
        break;
      case ']':
      case '}':
        // Unbalanced closers make the text invalid; the parser says so.
        if (depth > 0) --depth;
        break;
      case '"':
        // Skip the string: up to the next quote that is not escaped. An
        // unterminated string ends the text (the parser refuses it).
        while (p < end) {
          const char* q =
              static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
          if (!q) return true;
          std::size_t backslashes = 0;
          for (const char* b = q; b > p && b[-1] == '\\'; --b) ++backslashes;
          p = q + 1;
          if (backslashes % 2 == 0) break;
        }
        break;
      default:
        break;
    }
  }
  return true;
}

void AppendJsonStringArray(std::string& out, const std::vector<std::string>& items) {
  out.push_back('[');
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    AppendJsonString(out, items[i]);
  }
  out.push_back(']');
}

}  // namespace pincer
