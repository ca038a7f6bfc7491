#include "config/document.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <limits>
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

std::string TooManyValues() {
  return "holds more than " + std::to_string(kMaxDocumentValues) +
         " values (each use of a YAML alias counts as a copy)";
}

// The YAML tree as JSON. yaml-cpp keeps an alias as one shared node, so a
// small file can stand for an exponential tree ("billion laughs"), or even a
// cycle (`a: &x [*x]`): the walk counts every value it makes and stops at
// the first bound it meets.
class YamlToJson {
 public:
  explicit YamlToJson(Problems& problems) : problems_(problems) {}

  json Convert(const YAML::Node& node, const std::string& path, int depth) {
    if (stopped_) return nullptr;
    if (++values_ > kMaxDocumentValues) return Stop("", TooManyValues());
    switch (node.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        return nullptr;
      case YAML::NodeType::Scalar:
        // yaml-cpp tags plain scalars "?" and quoted ones "!"; any explicit tag
        // (!!str ...) is taken as a string too.
        if (node.Tag() == "?") return ResolvePlainScalar(node.Scalar(), path, problems_);
        return node.Scalar();
      case YAML::NodeType::Sequence: {
        if (depth >= kMaxDocumentDepth) return Stop(path, TooDeep());
        json out = json::array();
        std::size_t i = 0;
        for (const YAML::Node& item : node) {
          out.push_back(Convert(item, Index(path, i), depth + 1));
          if (stopped_) return nullptr;
          ++i;
        }
        return out;
      }
      case YAML::NodeType::Map: {
        if (depth >= kMaxDocumentDepth) return Stop(path, TooDeep());
        json out = json::object();
        for (const auto& entry : node) {
          if (!entry.first.IsScalar()) {
            problems_.Add(path, "keys must be plain strings");
            continue;
          }
          const std::string& key = entry.first.Scalar();
          std::string child = Field(path, key);
          // yaml-cpp keeps both entries of a repeated key; refusing it avoids
          // guessing which one the user meant.
          if (out.contains(key)) {
            problems_.Add(child, "duplicate key");
            continue;
          }
          out[key] = Convert(entry.second, child, depth + 1);
          if (stopped_) return nullptr;
        }
        return out;
      }
    }
    return nullptr;
  }

 private:
  json Stop(const std::string& path, const std::string& message) {
    problems_.Add(path, message);
    stopped_ = true;
    return nullptr;
  }

  Problems& problems_;
  std::size_t values_ = 0;
  bool stopped_ = false;
};

json ParseYaml(const std::string& text, Problems& problems) {
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) {
      problems.Add("", "YAML error: " + e.msg);
    } else {
      problems.Add("", "line " + std::to_string(e.mark.line + 1) + ", column " +
                           std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg);
    }
    return nullptr;
  }
  if (documents.empty()) return nullptr;
  if (documents.size() > 1) {
    problems.Add("", "holds " + std::to_string(documents.size()) +
                         " YAML documents; a config is one document");
    return nullptr;
  }
  return YamlToJson(problems).Convert(documents[0], "", 0);
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
      problems_.Add("", TooManyValues());
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
