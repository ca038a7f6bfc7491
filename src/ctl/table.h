// Aligned plain-text tables for pincerctl's human output: left-aligned
// columns, two spaces apart, no trailing blanks. Header-only: pure.
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
inline std::size_t DisplayWidth(std::string_view text) {
  std::size_t width = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++width;
  }
  return width;
}

// A cell holds one line: control characters (a newline in a worker's name,
// say) would break the alignment, so they become spaces.
inline std::string CellSafe(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) c = ' ';
  }
  return out;
}

class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }

  // Missing cells are blank; extra cells are dropped.
  void AddRow(std::vector<std::string> cells) {
    cells.resize(rows_.front().size());
    for (auto& cell : cells) cell = CellSafe(cell);
    rows_.push_back(std::move(cells));
  }

  std::size_t size() const { return rows_.size() - 1; }

  // Every row ends with "\n"; the header is the first row.
  std::string Render() const {
    const std::size_t columns = rows_.front().size();
    std::vector<std::size_t> widths(columns, 0);
    for (const auto& row : rows_) {
      for (std::size_t i = 0; i < columns; ++i) {
        widths[i] = std::max(widths[i], DisplayWidth(row[i]));
      }
    }
    std::string out;
    for (const auto& row : rows_) {
      std::string line;
      for (std::size_t i = 0; i < columns; ++i) {
        if (i > 0) line += "  ";
        line += row[i];
        if (i + 1 < columns) line.append(widths[i] - DisplayWidth(row[i]), ' ');
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line;
      out += '\n';
    }
    return out;
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace pincer::ctl
