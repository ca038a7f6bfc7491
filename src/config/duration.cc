// Duration syntax shared by the config file and pincerctl flags.
#include <cstdint>
#include <string>

#include "config/config.h"

namespace pincer {
namespace {

constexpr std::int64_t kSecond = 1000;
constexpr std::int64_t kMinute = 60 * kSecond;
constexpr std::int64_t kHour = 60 * kMinute;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Milliseconds per unit, or 0 for an unknown unit.
std::int64_t UnitMs(std::string_view unit) {
  if (unit == "h") return kHour;
  if (unit == "m") return kMinute;
  if (unit == "s") return kSecond;
  if (unit == "ms") return 1;
  return 0;
}

}  // namespace

std::optional<Duration> ParseDuration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::size_t i = 0;
  auto read_digits = [&](std::int64_t* value, int* count) {
    *value = 0;
    *count = 0;
    while (i < text.size() && IsDigit(text[i])) {
      if (__builtin_mul_overflow(*value, 10, value) ||
          __builtin_add_overflow(*value, text[i] - '0', value)) {
        return false;
      }
      ++i;
      ++*count;
    }
    return true;
  };

  std::int64_t whole = 0;
  int whole_digits = 0;
  if (!read_digits(&whole, &whole_digits)) return std::nullopt;
  // A bare integer is milliseconds, like a bare number in the file.
  if (whole_digits > 0 && i == text.size()) return Duration(whole);

  i = 0;
  std::int64_t total = 0;
  std::int64_t previous_unit = INT64_MAX;
  while (i < text.size()) {
    if (!read_digits(&whole, &whole_digits) || whole_digits == 0) return std::nullopt;
    std::int64_t fraction = 0;
    int fraction_digits = 0;
    if (i < text.size() && text[i] == '.') {
      ++i;
      if (!read_digits(&fraction, &fraction_digits) || fraction_digits == 0 ||
          fraction_digits > 9) {
        return std::nullopt;
      }
    }
    std::size_t unit_start = i;
    while (i < text.size() && !IsDigit(text[i]) && text[i] != '.') ++i;
    std::int64_t unit = UnitMs(std::string_view(text).substr(unit_start, i - unit_start));
    // Units must go from large to small ("1h30m", not "30m1h" or "1m1m"), which
    // catches typos that would otherwise add up silently.
    if (unit == 0 || unit >= previous_unit) return std::nullopt;
    previous_unit = unit;

    std::int64_t scale = 1;
    for (int d = 0; d < fraction_digits; ++d) scale *= 10;
    std::int64_t part = 0;
    std::int64_t fraction_ms = 0;
    if (__builtin_mul_overflow(whole, unit, &part) ||
        __builtin_mul_overflow(fraction, unit, &fraction_ms)) {
      return std::nullopt;
    }
    // The clock has millisecond resolution; "1.0005s" would be silently rounded.
    if (fraction_ms % scale != 0) return std::nullopt;
    if (__builtin_add_overflow(part, fraction_ms / scale, &part) ||
        __builtin_add_overflow(total, part, &total)) {
      return std::nullopt;
    }
  }
  return Duration(total);
}

std::string FormatDuration(Duration d) {
  std::int64_t ms = d.count();
  if (ms == 0) return "0s";
  if (ms < 0) {
    if (ms == INT64_MIN) return std::to_string(ms) + "ms";
    return "-" + FormatDuration(Duration(-ms));
  }
  if (ms < kSecond) return std::to_string(ms) + "ms";

  std::string out;
  if (ms >= kHour) out += std::to_string(ms / kHour) + "h";
  ms %= kHour;
  if (ms >= kMinute) out += std::to_string(ms / kMinute) + "m";
  ms %= kMinute;
  if (ms > 0) {
    out += std::to_string(ms / kSecond);
    if (std::int64_t frac = ms % kSecond; frac != 0) {
      std::string digits = std::to_string(frac + 1000).substr(1);  // zero-padded to 3
      while (digits.back() == '0') digits.pop_back();
      out += "." + digits;
    }
    out += "s";
  }
  return out;
}

}  // namespace pincer
