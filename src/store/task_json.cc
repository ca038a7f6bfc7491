#include "store/task_json.h"

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/json_text.h"

namespace pincer {

std::string ErrorsJson(const std::vector<AttemptError>& errors) {
  std::string out = "[";
  for (std::size_t i = 0; i < errors.size(); ++i) {
    if (i) out.push_back(',');
    out.append(R"({"attempt":)");
    AppendInt(out, errors[i].attempt);
    out.append(R"(,"worker":)");
    AppendJsonString(out, errors[i].worker);
    out.append(R"(,"error":)");
    AppendJsonString(out, errors[i].error);
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

bool ParseSkills(std::string_view text, std::vector<std::string>& out) {
  if (text == "[]") return true;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return false;
  for (const auto& s : j) {
    if (!s.is_string()) return false;
    out.push_back(s.get<std::string>());
  }
  return true;
}

bool ParseErrors(std::string_view text, std::vector<AttemptError>& out) {
  if (text == "[]") return true;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return false;
  // Read back field by field with their types checked: json::value() throws
  // on a field of another type.
  for (const auto& e : j) {
    if (!e.is_object()) return false;
    AttemptError a;
    if (auto it = e.find("attempt"); it != e.end()) {
      if (!it->is_number_integer()) return false;
      const int64_t n = it->get<int64_t>();
      if (n < 0 || n > std::numeric_limits<int>::max()) return false;
      a.attempt = static_cast<int>(n);
    }
    for (auto [key, into] : {std::pair{"worker", &a.worker}, std::pair{"error", &a.error}}) {
      auto it = e.find(key);
      if (it == e.end()) continue;
      if (!it->is_string()) return false;
      *into = it->get<std::string>();
    }
    out.push_back(std::move(a));
  }
  return true;
}

}  // namespace pincer
