#include "ctl/format.h"

namespace pincer::ctl {

std::string DumpJson(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string CellText(const nlohmann::json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    return text.empty() ? "-" : text;
  }
  if (value.is_array()) {
    if (value.empty()) return "-";
    std::string out;
    for (const auto& item : value) {
      if (!out.empty()) out += ",";
      out += item.is_string() ? item.get<std::string>() : DumpJson(item);
    }
    return out;
  }
  return DumpJson(value);
}

std::string Field(const nlohmann::json& object, const char* key) {
  if (!object.is_object()) return "-";
  auto it = object.find(key);
  return it == object.end() ? "-" : CellText(*it);
}

std::string FormatAge(std::int64_t ms) {
  if (ms < 0) ms = 0;
  const std::int64_t seconds = ms / 1000;
  if (seconds < 60) return std::to_string(seconds) + "s";
  if (seconds < 60 * 60) return std::to_string(seconds / 60) + "m";
  if (seconds < 24 * 60 * 60) return std::to_string(seconds / 3600) + "h";
  return std::to_string(seconds / 86400) + "d";
}

std::string AgeOf(const nlohmann::json& object, const char* ms_field, std::int64_t now_ms) {
  if (!object.is_object()) return "-";
  auto it = object.find(ms_field);
  if (it == object.end() || !it->is_number()) return "-";
  return FormatAge(now_ms - it->get<std::int64_t>());
}

std::string FormatBytes(std::int64_t bytes) {
  static const char* kUnits[] = {"Ki", "Mi", "Gi", "Ti"};
  if (bytes < 1024) return std::to_string(bytes < 0 ? 0 : bytes) + "B";
  double value = static_cast<double>(bytes);
  int unit = -1;
  while (value >= 1024 && unit < 3) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  std::snprintf(text, sizeof text, value < 10 ? "%.1f%s" : "%.0f%s", value, kUnits[unit]);
  return text;
}

std::string FormatCpu(double cores) {
  char text[32];
  std::snprintf(text, sizeof text, "%.0f%%", cores < 0 ? 0.0 : cores * 100);
  return text;
}

std::string LoadCpu(const nlohmann::json& worker) {
  auto load = worker.find("load");
  if (load == worker.end() || !load->is_object()) return "-";
  auto it = load->find("cpu");
  return it != load->end() && it->is_number() ? FormatCpu(it->get<double>()) : "-";
}

std::string LoadRss(const nlohmann::json& worker) {
  auto load = worker.find("load");
  if (load == worker.end() || !load->is_object()) return "-";
  auto it = load->find("rss_bytes");
  return it != load->end() && it->is_number() ? FormatBytes(it->get<std::int64_t>()) : "-";
}

std::string FormatTimestamp(std::int64_t unix_ms) {
  const std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return text;
}

}  // namespace pincer::ctl
