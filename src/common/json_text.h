// Helpers to build JSON text by hand on the hot path, where going through a
// DOM would cost an allocation per field. Values that are already JSON text
// (payloads, outputs) are spliced in as they are.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
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
// The nesting depth of arrays and objects that pincer accepts from any peer.
// pincerd's own bound is `limits.max_json_depth` (default kDefaultMaxJsonDepth,
// at most kMaxConfigJsonDepth); every other program that reads pincer's JSON
// from the network (the client library, pincerctl, pincer-worker) uses
// kMaxPeerJsonDepth: deep enough for pincerd's deepest value inside the
// envelopes of its replies (a `tasks` reply holds a payload 3 levels down),
// and shallow enough for the recursive walks of a JSON library (dump, copy,
// compare) to use a few hundred KiB of stack at most.
inline constexpr int kDefaultMaxJsonDepth = 64;
inline constexpr int kMaxConfigJsonDepth = 1000;
inline constexpr int kMaxPeerJsonDepth = 1024;

// True when no array or object in `text` is nested more than `max_depth`
// levels deep: the outermost array or object is level 1, so `[]` and `{}`
// have depth 1, `[[1]]` depth 2, and a scalar depth 0. Brackets inside
// strings do not count. It does not validate the text (invalid JSON within
// the bound is left to the parser): it exists so that no recursive parser,
// serialiser or destructor ever sees a value nested without bound. One
// pass, no recursion, no allocation.
bool JsonDepthWithin(std::string_view text, int max_depth);

// The text of the value of member `name` of the JSON object `object_text`
// (top level only), exactly as it stands there: from its first byte to its
// last, without the whitespace around it. nullopt when there is no such
// member. When `name` appears more than once, the last one counts (as it
// does for nlohmann's parser). A key written with escapes ("pay\u006coad")
// matches its decoded name. REQUIRES: `object_text` is valid JSON (a
// parser accepted it); on other text the answer is some span of it or
// nullopt, never a read past its end. One pass, no recursion; allocates
// only for a key written with escapes.
std::optional<std::string_view> JsonMemberText(std::string_view object_text, std::string_view name);

inline void AppendInt(std::string& out, int64_t v) {
  char digits[24];  // no temporary string
  const auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
  out.append(digits, static_cast<std::size_t>(end - digits));
}

}  // namespace pincer
