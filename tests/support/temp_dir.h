// A fresh directory for one test, removed when the test passes and kept
// (with its path printed) when it fails, so logs can be read afterwards.
#pragma once

#include <string>

namespace pincer::test {

class TempDir {
 public:
  // Creates "<base>/<prefix>-XXXXXX", base being $TEST_TMPDIR, $TMPDIR or
  // /tmp. Short on purpose: Unix socket paths must fit in 107 bytes.
  explicit TempDir(const std::string& prefix = "pincer-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name.
  std::string Join(const std::string& name) const;
  // Writes `content` to path()/name (replacing it) and returns the path.
  std::string WriteFile(const std::string& name, const std::string& content) const;
  // Keep the directory even if the test passes.
  void Keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

// The whole file, or "" when it cannot be read.
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace pincer::test
