#include "config/document.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <regex>
#include <set>
#include <sstream>
#include <vector>

namespace pincer::config_internal {
namespace {

using nlohmann::json;

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// YAML 1.2 core schema resolution of an untagged plain scalar.
json ResolvePlainScalar(const std::string& s, const std::string& path, Problems& problems) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;

  static const std::regex kDecimal("[-+]?[0-9]+");
  static const std::regex kOctal("0o[0-7]+");
  static const std::regex kHex("0x[0-9a-fA-F]+");
  static const std::regex kFloat("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  static const std::regex kInf("[-+]?\\.(inf|Inf|INF)");
  static const std::regex kNan("\\.(nan|NaN|NAN)");

  auto integer = [&](std::string_view digits, int base, bool negative) -> json {
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value, base);
    constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    if (ec != std::errc() || end != digits.data() + digits.size() || value > kMax + negative) {
      problems.Add(path, "integer " + s + " is out of range");
      return nullptr;
    }
    if (!negative) return static_cast<std::int64_t>(value);
    return value == kMax + 1 ? std::numeric_limits<std::int64_t>::min()
                             : -static_cast<std::int64_t>(value);
  };
  if (std::regex_match(s, kDecimal)) {
    bool negative = s[0] == '-';
    bool signed_ = s[0] == '-' || s[0] == '+';
    return integer(std::string_view(s).substr(signed_ ? 1 : 0), 10, negative);
  }
  if (std::regex_match(s, kOctal)) return integer(std::string_view(s).substr(2), 8, false);
  if (std::regex_match(s, kHex)) return integer(std::string_view(s).substr(2), 16, false);
  if (std::regex_match(s, kFloat)) return std::strtod(s.c_str(), nullptr);
  if (std::regex_match(s, kInf)) {
    return s[0] == '-' ? -std::numeric_limits<double>::infinity()
                       : std::numeric_limits<double>::infinity();
  }
  if (std::regex_match(s, kNan)) return std::numeric_limits<double>::quiet_NaN();
  return s;
}

json FromYaml(const YAML::Node& node, const std::string& path, Problems& problems) {
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar:
      // yaml-cpp tags plain scalars "?" and quoted ones "!"; any explicit tag
      // (!!str ...) is taken as a string too.
      if (node.Tag() == "?") return ResolvePlainScalar(node.Scalar(), path, problems);
      return node.Scalar();
    case YAML::NodeType::Sequence: {
      json out = json::array();
      std::size_t i = 0;
      for (const YAML::Node& item : node) {
        out.push_back(FromYaml(item, Index(path, i), problems));
        ++i;
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& entry : node) {
        if (!entry.first.IsScalar()) {
          problems.Add(path, "keys must be plain strings");
          continue;
        }
        const std::string& key = entry.first.Scalar();
        std::string child = Field(path, key);
        // yaml-cpp keeps both entries of a repeated key; refusing it avoids
        // guessing which one the user meant.
        if (out.contains(key)) {
          problems.Add(child, "duplicate key");
          continue;
        }
        out[key] = FromYaml(entry.second, child, problems);
      }
      return out;
    }
  }
  return nullptr;
}

// Counts the documents of a YAML stream and notes where each starts.
// yaml-cpp 0.7's LoadAll never returns on some malformed text ("," alone):
// each round yields one more empty document without consuming anything
// (yaml-cpp issue 1040), growing its vector until memory runs out. Counted
// here instead, a document that starts where the one before started means
// the parser is stuck there, and the text is refused.
class DocumentCounter final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    stuck = documents > 0 && mark.pos == last.pos;
    last = mark;
    ++documents;
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  int documents = 0;
  bool stuck = false;
  YAML::Mark last;
};

json ParseYaml(const std::string& text, Problems& problems) {
  std::vector<YAML::Node> documents;
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentCounter counter;
    while (parser.HandleNextDocument(counter)) {
      if (counter.stuck) throw YAML::ParserException(counter.last, "unexpected token");
    }
    if (counter.documents == 1) {
      documents.push_back(YAML::Load(text));
    } else {
      documents.resize(static_cast<std::size_t>(counter.documents));
    }
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
  return FromYaml(documents[0], "", problems);
}

// nlohmann::json keeps the last of repeated keys without a word; this parser
// callback tracks the keys of each open object to refuse them instead.
class DuplicateKeyCheck {
 public:
  explicit DuplicateKeyCheck(Problems& problems) : problems_(problems) {}

  bool operator()(int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        frames_.push_back({ChildPath(), false, 0, "", {}});
        break;
      case json::parse_event_t::array_start:
        frames_.push_back({ChildPath(), true, 0, "", {}});
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

  void ElementDone() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
  }

  Problems& problems_;
  std::vector<Frame> frames_;
};

json ParseJson(const std::string& text, Problems& problems) {
  if (std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c); })) {
    return nullptr;
  }
  try {
    // Comments are accepted so that a JSON config can be annotated too.
    return json::parse(text, DuplicateKeyCheck(problems), /*allow_exceptions=*/true,
                       /*ignore_comments=*/true);
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
