#include "config/document.h"

#include <yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>
#include <vector>

namespace pincer::config_internal {
namespace {

using nlohmann::json;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool IsDigitIn(char c, int base) {
  if (c >= '0' && c <= '9') return c - '0' < base;
  if (base != 16) return false;
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Skips the digits of `base` at s[*i...]; returns how many there were.
std::size_t SkipDigits(std::string_view s, std::size_t* i, int base = 10) {
  const std::size_t start = *i;
  while (*i < s.size() && IsDigitIn(s[*i], base)) ++*i;
  return *i - start;
}

// `prefix` followed by at least one digit of `base`, and nothing else.
bool IsNumber(std::string_view s, std::string_view prefix, int base) {
  if (!s.starts_with(prefix)) return false;
  std::size_t i = prefix.size();
  return SkipDigits(s, &i, base) > 0 && i == s.size();
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsFloat(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  const std::size_t whole = SkipDigits(s, &i);
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (SkipDigits(s, &i) == 0 && whole == 0) return false;
  } else if (whole == 0) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (SkipDigits(s, &i) == 0) return false;
  }
  return i == s.size();
}

// YAML 1.2 core schema resolution of an untagged plain scalar. Plain loops,
// no regular expressions: std::regex recurses once per character and a long
// scalar would overflow the stack.
json ResolvePlainScalar(const std::string& s, const std::string& path, Problems& problems) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;

  auto integer = [&](std::string_view digits, int base, bool negative) -> json {
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (ec != std::errc() || end != digits.data() + digits.size() || value > kMax + negative) {
      problems.Add(path, "integer " + Shown(s) + " is out of range");
      return nullptr;
    }
    if (!negative) return static_cast<std::int64_t>(value);
    return value == kMax + 1 ? std::numeric_limits<std::int64_t>::min()
                             : -static_cast<std::int64_t>(value);
  };
  const std::string_view text(s);
  const bool signed_ = s[0] == '-' || s[0] == '+';
  if (IsNumber(text.substr(signed_ ? 1 : 0), "", 10)) {
    return integer(text.substr(signed_ ? 1 : 0), 10, s[0] == '-');
  }
  if (IsNumber(text, "0o", 8)) return integer(text.substr(2), 8, false);
  if (IsNumber(text, "0x", 16)) return integer(text.substr(2), 16, false);
  if (IsFloat(text)) return std::strtod(s.c_str(), nullptr);
  const std::string_view unsigned_ = text.substr(signed_ ? 1 : 0);
  if (unsigned_ == ".inf" || unsigned_ == ".Inf" || unsigned_ == ".INF") {
    return s[0] == '-' ? -std::numeric_limits<double>::infinity()
                       : std::numeric_limits<double>::infinity();
  }
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return std::numeric_limits<double>::quiet_NaN();
  return s;
}

std::string TooDeep() {
  return "nested deeper than " + std::to_string(kMaxDocumentDepth) + " levels";
}

std::string TooManyValues(Format format) {
  return "holds more than " + std::to_string(kMaxDocumentValues) + " values" +
         (format == Format::kYaml ? " (each use of a YAML alias counts as a copy)" : "");
}

// Owns one libyaml event.
struct Event {
  yaml_event_t e{};
  ~Event() { yaml_event_delete(&e); }
};

struct Parser {
  yaml_parser_t p{};
  Parser() { yaml_parser_initialize(&p); }
  ~Parser() { yaml_parser_delete(&p); }
};

// Builds the JSON tree from libyaml's events. libyaml's scanner keeps a
// bounded lookahead and emits each collection's start as it meets it, so
// the bounds below stop a hostile file early: nesting past
// kMaxDocumentDepth, or more than kMaxDocumentValues values, where an alias
// counts as a copy of every value under its anchor (a "billion laughs"
// file stops at the bound instead of expanding). An alias to a node that is
// not finished yet (`a: &x [*x]`) would be a cycle, and is refused.
class YamlBuilder {
 public:
  explicit YamlBuilder(Problems& problems) : problems_(problems) {}

  json Parse(const std::string& text) {
    Parser parser;
    yaml_parser_set_input_string(&parser.p, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
    std::size_t documents = 0;
    while (true) {
      Event event;
      if (!yaml_parser_parse(&parser.p, &event.e)) {
        SyntaxError(parser.p);
        return nullptr;
      }
      const yaml_event_type_t type = event.e.type;
      if (type == YAML_STREAM_END_EVENT) break;
      if (type == YAML_DOCUMENT_START_EVENT) ++documents;
      // Past the first document only the count matters.
      if (documents > 1 || type == YAML_STREAM_START_EVENT || type == YAML_DOCUMENT_START_EVENT ||
          type == YAML_DOCUMENT_END_EVENT) {
        continue;
      }
      if (!Handle(event.e)) return nullptr;
    }
    if (documents > 1) {
      problems_.Add(
          "", "holds " + std::to_string(documents) + " YAML documents; a config is one document");
      return nullptr;
    }
    return std::move(root_);
  }

 private:
  struct Frame {
    json value;        // the array or object being built
    std::string path;  // for messages
    std::string anchor;
    std::size_t first_value = 0;  // values_ when it started (for anchors)
    bool expecting_key = false;   // maps: the next event is a key
    std::string key;              // maps: the key whose value comes next
  };
  struct Anchored {
    json value;
    std::size_t values = 0;
  };

  static std::string Text(const yaml_char_t* s) {
    return s ? reinterpret_cast<const char*>(s) : "";
  }

  // False: stop (a problem was added).
  bool Handle(const yaml_event_t& e) {
    switch (e.type) {
      case YAML_SCALAR_EVENT: {
        const std::string value(reinterpret_cast<const char*>(e.data.scalar.value),
                                e.data.scalar.length);
        if (!frames_.empty() && frames_.back().expecting_key) {
          Frame& map = frames_.back();
          map.key = value;
          map.expecting_key = false;
          // libyaml keeps both entries of a repeated key; refusing it avoids
          // guessing which one the user meant.
          if (map.value.contains(value)) {
            problems_.Add(Field(map.path, value), "duplicate key");
            return false;
          }
          return true;
        }
        if (!Count(1)) return false;
        // Untagged plain scalars are typed by the core schema; quoted ones
        // and any explicit tag (!!str ...) are strings.
        json v = e.data.scalar.tag == nullptr && e.data.scalar.style == YAML_PLAIN_SCALAR_STYLE
                     ? ResolvePlainScalar(value, ChildPath(), problems_)
                     : json(value);
        const std::string anchor = Text(e.data.scalar.anchor);
        if (!anchor.empty()) anchors_[anchor] = {v, 1};
        return Place(std::move(v));
      }
      case YAML_ALIAS_EVENT: {
        const std::string anchor = Text(e.data.alias.anchor);
        if (!frames_.empty() && frames_.back().expecting_key) return KeyNotScalar();
        auto it = anchors_.find(anchor);
        if (it == anchors_.end()) {
          bool open = false;
          for (const Frame& f : frames_) open = open || f.anchor == anchor;
          problems_.Add(ChildPath(),
                        open ? "alias *" + Shown(anchor) + " is inside its own anchor (a cycle)"
                             : "unknown alias *" + Shown(anchor));
          return false;
        }
        if (!Count(it->second.values)) return false;
        return Place(it->second.value);
      }
      case YAML_SEQUENCE_START_EVENT:
      case YAML_MAPPING_START_EVENT: {
        if (!frames_.empty() && frames_.back().expecting_key) return KeyNotScalar();
        const std::string path = ChildPath();
        if (frames_.size() >= static_cast<std::size_t>(kMaxDocumentDepth)) {
          problems_.Add(path, TooDeep());
          return false;
        }
        if (!Count(1)) return false;
        const bool map = e.type == YAML_MAPPING_START_EVENT;
        const yaml_char_t* anchor =
            map ? e.data.mapping_start.anchor : e.data.sequence_start.anchor;
        frames_.push_back(
            {map ? json::object() : json::array(), path, Text(anchor), values_ - 1, map, ""});
        return true;
      }
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT: {
        Frame done = std::move(frames_.back());
        frames_.pop_back();
        if (!done.anchor.empty()) anchors_[done.anchor] = {done.value, values_ - done.first_value};
        return Place(std::move(done.value));
      }
      default:
        return true;
    }
  }

  bool KeyNotScalar() {
    problems_.Add(frames_.back().path, "keys must be plain strings");
    return false;
  }

  bool Count(std::size_t n) {
    values_ += n;
    if (values_ <= kMaxDocumentValues) return true;
    problems_.Add("", TooManyValues(Format::kYaml));
    return false;
  }

  std::string ChildPath() const {
    if (frames_.empty()) return "";
    const Frame& top = frames_.back();
    return top.value.is_object() ? Field(top.path, top.key) : Index(top.path, top.value.size());
  }

  // Puts a finished value where it belongs: the root, the next item of a
  // list, or the value of a map's current key.
  bool Place(json v) {
    if (frames_.empty()) {
      root_ = std::move(v);
      return true;
    }
    Frame& top = frames_.back();
    if (top.value.is_array()) {
      top.value.push_back(std::move(v));
    } else {
      top.value[top.key] = std::move(v);
      top.expecting_key = true;
    }
    return true;
  }

  void SyntaxError(const yaml_parser_t& p) {
    std::string what = p.problem ? p.problem : "unreadable YAML";
    if (p.context) what += " " + std::string(p.context);
    if (p.error == YAML_READER_ERROR) {
      problems_.Add("", "YAML error: " + what + " at byte " + std::to_string(p.problem_offset));
      return;
    }
    problems_.Add("", "line " + std::to_string(p.problem_mark.line + 1) + ", column " +
                          std::to_string(p.problem_mark.column + 1) +
                          ": YAML syntax error: " + what);
  }

  Problems& problems_;
  json root_;
  std::vector<Frame> frames_;
  std::map<std::string, Anchored> anchors_;
  std::size_t values_ = 0;
};

json ParseYaml(const std::string& text, Problems& problems) {
  return YamlBuilder(problems).Parse(text);
}

// Thrown by DocumentCheck to stop the parse at a bound; the problem has
// been added already.
struct StopParse {};

// nlohmann::json keeps the last of repeated keys without a word; this parser
// callback tracks the keys of each open object to refuse them instead. It
// also stops the parse past kMaxDocumentDepth levels or kMaxDocumentValues
// values (the parser itself is not recursive, but each level costs this
// check a path).
class DocumentCheck {
 public:
  explicit DocumentCheck(Problems& problems) : problems_(problems) {}

  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (frames_.size() >= static_cast<std::size_t>(kMaxDocumentDepth)) {
          problems_.Add(ChildPath(), TooDeep());
          throw StopParse{};
        }
        CountValue();
        frames_.push_back({ChildPath(), event == json::parse_event_t::array_start, 0, "", {}});
        break;
      case json::parse_event_t::key: {
        Frame& top = frames_.back();
        top.key = parsed.get<std::string>();
        if (!top.keys.insert(top.key).second)
          problems_.Add(Field(top.path, top.key), "duplicate key");
        break;
      }
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        frames_.pop_back();
        ElementDone();
        break;
      case json::parse_event_t::value:
        CountValue();
        ElementDone();
        break;
    }
    return true;
  }

 private:
  struct Frame {
    std::string path;
    bool array;
    std::size_t index;  // next element, for arrays
    std::string key;    // last key, for objects
    std::set<std::string> keys;
  };

  std::string ChildPath() const {
    if (frames_.empty()) return "";
    const Frame& top = frames_.back();
    return top.array ? Index(top.path, top.index) : Field(top.path, top.key);
  }

  void CountValue() {
    if (++values_ > kMaxDocumentValues) {
      problems_.Add("", TooManyValues(Format::kJson));
      throw StopParse{};
    }
  }

  void ElementDone() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }

  Problems& problems_;
  std::vector<Frame> frames_;
  std::size_t values_ = 0;
};

json ParseJson(const std::string& text, Problems& problems) {
  if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c); })) {
    return nullptr;
  }
  try {
    // Comments are accepted so that a JSON config can be annotated too.
    return json::parse(text, DocumentCheck(problems), /*allow_exceptions=*/true,
                       /*ignore_comments=*/true);
  } catch (const StopParse&) {
    return nullptr;
  } catch (const json::exception& e) {
    // what() is "[json.exception.parse_error.101] parse error at line 3, ...".
    std::string what = e.what();
    if (std::size_t end = what.find("] "); what.starts_with("[") && end != std::string::npos) {
      what = what.substr(end + 2);
    }
    problems.Add("", "JSON " + what);
    return nullptr;
  }
}

}  // namespace

std::optional<Format> FormatOf(const std::string& path) {
  std::string lower = Lower(path);
  if (lower.ends_with(".yaml") || lower.ends_with(".yml")) return Format::kYaml;
  if (lower.ends_with(".json")) return Format::kJson;
  return std::nullopt;
}

json ParseDocument(const std::string& text, Format format, Problems& problems) {
  return format == Format::kYaml ? ParseYaml(text, problems) : ParseJson(text, problems);
}

}  // namespace pincer::config_internal
