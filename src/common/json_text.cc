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
      case '"':
        out.append("\\\""sv);
        break;
      case '\\':
        out.append("\\\\"sv);
        break;
      case '\b':
        out.append("\\b"sv);
        break;
      case '\f':
        out.append("\\f"sv);
        break;
      case '\n':
        out.append("\\n"sv);
        break;
      case '\r':
        out.append("\\r"sv);
        break;
      case '\t':
        out.append("\\t"sv);
        break;
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

namespace {

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

const char* SkipSpace(const char* p, const char* end) {
  while (p < end && IsJsonSpace(*p)) ++p;
  return p;
}

// `p` is just past an opening quote: returns the position of the closing
// one (or `end`).
const char* StringEnd(const char* p, const char* end) {
  while (p < end) {
    const char* q =
        static_cast<const char*>(std::memchr(p, '"', static_cast<std::size_t>(end - p)));
    if (!q) return end;
    std::size_t backslashes = 0;
    for (const char* b = q; b > p && b[-1] == '\\'; --b) ++backslashes;
    if (backslashes % 2 == 0) return q;
    p = q + 1;
  }
  return end;
}

// `p` is at the first byte of a value: returns the position just past it.
const char* ValueEnd(const char* p, const char* end) {
  if (p >= end) return end;
  if (*p == '"') {
    const char* q = StringEnd(p + 1, end);
    return q < end ? q + 1 : end;
  }
  if (*p == '{' || *p == '[') {
    int depth = 0;
    while (p < end) {
      const char c = *p++;
      if (c == '"') {
        p = StringEnd(p, end);
        if (p < end) ++p;
      } else if (c == '{' || c == '[') {
        ++depth;
      } else if ((c == '}' || c == ']') && --depth == 0) {
        return p;
      }
    }
    return end;
  }
  // A number, true, false or null: up to the next delimiter.
  while (p < end && *p != ',' && *p != '}' && *p != ']' && !IsJsonSpace(*p)) ++p;
  return p;
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

bool Hex4(std::string_view s, std::size_t at, uint32_t& out) {
  if (at + 4 > s.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + 4; ++i) {
    const char c = s[i];
    const uint32_t d = c >= '0' && c <= '9'   ? static_cast<uint32_t>(c - '0')
                       : c >= 'a' && c <= 'f' ? static_cast<uint32_t>(c - 'a' + 10)
                       : c >= 'A' && c <= 'F' ? static_cast<uint32_t>(c - 'A' + 10)
                                              : 16u;
    if (d == 16) return false;
    out = out * 16 + d;
  }
  return true;
}

// The key text between its quotes, as `name`? Escapes are decoded.
bool KeyIs(std::string_view raw, std::string_view name) {
  if (raw.find('\\') == std::string_view::npos) return raw == name;
  std::string decoded;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\\') {
      decoded.push_back(raw[i]);
      continue;
    }
    if (++i == raw.size()) return false;
    switch (raw[i]) {
      case 'b':
        decoded.push_back('\b');
        break;
      case 'f':
        decoded.push_back('\f');
        break;
      case 'n':
        decoded.push_back('\n');
        break;
      case 'r':
        decoded.push_back('\r');
        break;
      case 't':
        decoded.push_back('\t');
        break;
      case 'u': {
        uint32_t cp;
        if (!Hex4(raw, i + 1, cp)) return false;
        i += 4;
        uint32_t low;
        if (cp >= 0xd800 && cp < 0xdc00 && i + 2 < raw.size() && raw[i + 1] == '\\' &&
            raw[i + 2] == 'u' && Hex4(raw, i + 3, low) && low >= 0xdc00 && low < 0xe000) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          i += 6;
        }
        AppendUtf8(decoded, cp);
        break;
      }
      default:
        decoded.push_back(raw[i]);  // " \ /
    }
  }
  return decoded == name;
}

}  // namespace

std::optional<std::string_view> JsonMemberText(std::string_view object_text,
                                               std::string_view name) {
  const char* p = object_text.data();
  const char* const end = p + object_text.size();
  std::optional<std::string_view> found;
  p = SkipSpace(p, end);
  if (p == end || *p != '{') return std::nullopt;
  ++p;
  while (true) {
    p = SkipSpace(p, end);
    if (p == end || *p != '"') return found;  // `}` (or not an object)
    const char* const key = p + 1;
    const char* const key_end = StringEnd(key, end);
    if (key_end == end) return found;
    p = SkipSpace(key_end + 1, end);
    if (p == end || *p != ':') return found;
    const char* const value = SkipSpace(p + 1, end);
    p = ValueEnd(value, end);
    if (KeyIs(std::string_view(key, static_cast<std::size_t>(key_end - key)), name)) {
      found = std::string_view(value, static_cast<std::size_t>(p - value));
    }
    p = SkipSpace(p, end);
    if (p == end || *p != ',') return found;
    ++p;
  }
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
