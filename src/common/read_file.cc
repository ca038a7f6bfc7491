#include "common/read_file.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace pincer {

std::optional<std::string> ReadFile(const std::string& path, std::string* error) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    *error = "is a directory";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = std::strerror(errno);
    return std::nullopt;
  }
  // Inserting the stream buffer (not iterating it) keeps a failing read
  // from escaping as an exception.
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    *error = "read failed";
    return std::nullopt;
  }
  return text.str();
}

}  // namespace pincer
