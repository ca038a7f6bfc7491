// Turning JSON values from the daemon into short human-readable text:
// cells, ages, sizes, timestamps. Pure: the current time is passed in,
// never read here.
#pragma once

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>

namespace pincer::ctl {

std::string DumpJson(const nlohmann::json& value);

// Strings as they are, null and missing as "-", arrays of scalars joined by
// commas ("-" when empty), anything else as compact JSON.
std::string CellText(const nlohmann::json& value);

// `object[key]` as cell text, "-" when absent.
std::string Field(const nlohmann::json& object, const char* key);

// A compact age: "0s", "45s", "12m", "3h", "5d".
std::string FormatAge(std::int64_t ms);

// How long ago `ms_field` (unix ms) was, relative to now_ms; "-" if unset.
std::string AgeOf(const nlohmann::json& object, const char* ms_field, std::int64_t now_ms);

// Binary units, one decimal below 10: "512B", "1.5Ki", "100Mi", "2.0Gi".
std::string FormatBytes(std::int64_t bytes);

// CPU use in cores as a share of one core, as top and ps show it: 0.24 is
// "24%", two busy cores "200%". The one CPU format of pincerctl's output.
std::string FormatCpu(double cores);

// A worker's load.cpu and load.rss_bytes as cells ("-" until reported), in
// the formats `workers` and `top` share: FormatCpu and FormatBytes.
std::string LoadCpu(const nlohmann::json& worker);
std::string LoadRss(const nlohmann::json& worker);

// Unix ms as UTC ISO 8601, "2025-11-24T16:00:00Z". UTC, not local time, so
// output is the same on every host.
std::string FormatTimestamp(std::int64_t unix_ms);

}  // namespace pincer::ctl
