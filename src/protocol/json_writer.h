// A JSON object written member by member straight into a string, for the
// daemon's answers built without a DOM (a task view, a usage object). Each
// member is `"name":value`, a comma before all but the first.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_text.h"

namespace pincer {

// A number as nlohmann/json writes it (the shortest text that reads back
// the same), so a field reads the same in a hand-built answer as in one
// built from a DOM.
void AppendNumber(std::string& out, double v);

class JsonObjectWriter {
 public:
  // Opens the object: `out` must outlive the writer. REQUIRES: Close()
  // before `out` is sent.
  explicit JsonObjectWriter(std::string& out) : out_(out) { out_.push_back('{'); }
  JsonObjectWriter(const JsonObjectWriter&) = delete;
  JsonObjectWriter& operator=(const JsonObjectWriter&) = delete;

  // Starts member `name` (a plain name: it is not escaped); append its
  // value to what comes back.
  std::string& Key(std::string_view name) {
    if (!first_) out_.push_back(',');
    first_ = false;
    out_.push_back('"');
    out_.append(name);
    out_.append("\":");
    return out_;
  }
  JsonObjectWriter& Int(std::string_view name, int64_t v) {
    AppendInt(Key(name), v);
    return *this;
  }
  // 0 is null (a time not reached yet).
  JsonObjectWriter& IntOrNull(std::string_view name, int64_t v) {
    if (v) return Int(name, v);
    return Null(name);
  }
  JsonObjectWriter& Number(std::string_view name, double v) {
    AppendNumber(Key(name), v);
    return *this;
  }
  JsonObjectWriter& String(std::string_view name, std::string_view v) {
    AppendJsonString(Key(name), v);
    return *this;
  }
  // "" is null.
  JsonObjectWriter& StringOrNull(std::string_view name, std::string_view v) {
    AppendStringOrNull(Key(name), v);
    return *this;
  }
  JsonObjectWriter& StringArray(std::string_view name, const std::vector<std::string>& v) {
    AppendJsonStringArray(Key(name), v);
    return *this;
  }
  // Raw JSON text, "" is null.
  JsonObjectWriter& RawOrNull(std::string_view name, std::string_view raw) {
    AppendRawOrNull(Key(name), raw);
    return *this;
  }
  JsonObjectWriter& Null(std::string_view name) {
    Key(name).append("null");
    return *this;
  }
  void Close() { out_.push_back('}'); }

 private:
  std::string& out_;
  bool first_ = true;
};

}  // namespace pincer
