#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <stdexcept>
#include <vector>

namespace pincer::test {

TempDir::TempDir(const std::string& prefix) {
  std::string base = "/tmp";
  for (const char* variable : {"TEST_TMPDIR", "TMPDIR"}) {
    if (const char* value = std::getenv(variable); value != nullptr && *value != '\0') {
      base = value;
      break;
    }
  }
  std::string pattern = base + "/" + prefix + "-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    // Nothing a test can do without its directory; fail loudly.
    throw std::runtime_error("mkdtemp " + pattern + " failed");
  }
  path_ = buffer.data();
}

TempDir::~TempDir() {
  if (keep_ || ::testing::Test::HasFailure()) {
    std::cerr << "[ keeping  ] " << path_ << "\n";
    return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::Join(const std::string& name) const { return path_ + "/" + name; }

std::string TempDir::WriteFile(const std::string& name, const std::string& content) const {
  const std::string path = Join(name);
  std::ofstream file(path, std::ios::binary | std::ios::trunc);
  file << content;
  return path;
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return "";
  // A read that fails after the open (a /proc file of a process that just
  // exited: ESRCH) makes the stream buffer throw; that is "nothing" here.
  try {
    return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  } catch (const std::exception&) {
    return "";
  }
}

}  // namespace pincer::test
