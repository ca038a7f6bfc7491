// Aligned plain-text tables for pincerctl's human output: left-aligned
// columns, two spaces apart, no trailing blanks. Pure.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pincer::ctl {

// Display width of UTF-8 text, counted in code points: close enough for
// names and skills, and never splits a character.
std::size_t DisplayWidth(std::string_view text);

// A cell holds one line: control characters (a newline in a worker's name,
// say) would break the alignment, so they become spaces.
std::string CellSafe(std::string_view text);

class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }

  // Missing cells are blank; extra cells are dropped.
  void AddRow(std::vector<std::string> cells);

  std::size_t size() const { return rows_.size() - 1; }

  // Every row ends with "\n"; the header is the first row.
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace pincer::ctl
