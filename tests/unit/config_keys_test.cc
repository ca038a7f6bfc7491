// Every key the config loader reads is in config/examples/full.yaml and in
// docs/configuration.md's "Every key" tables. The key list comes from the
// loader itself (ConfigKeys), so a new key fails here until it is written
// in both places: a row `| \`key\` |` under the `### \`section\`` heading
// (top-level keys under "### Top level"), and the key in full.yaml (set, or
// in a commented-out line where a real value cannot ship, like tls files).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/document.h"

namespace pincer {
namespace {

using nlohmann::json;

std::string ReadSource(const std::string& relative) {
  std::ifstream in(std::string(PINCER_SOURCE_DIR) + "/" + relative);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  std::stringstream in(path);
  for (std::string part; std::getline(in, part, '.');) parts.push_back(part);
  return parts;
}

// Whether `node` holds the path parts[i..]; a list holds it when one of its
// items does.
bool Holds(const json& node, const std::vector<std::string>& parts, std::size_t i) {
  if (i == parts.size()) return true;
  if (node.is_array()) {
    for (const json& item : node) {
      if (Holds(item, parts, i)) return true;
    }
    return false;
  }
  if (!node.is_object()) return false;
  auto it = node.find(parts[i]);
  return it != node.end() && Holds(*it, parts, i + 1);
}

// full.yaml as YAML, its commented-out keys ("#   cert: ...") read as set.
json FullYamlWithCommentedKeys() {
  static const std::regex commented(R"(^(\s*)# ?(\s*[a-z_]+:(\s.*)?)$)");
  std::stringstream in(ReadSource("config/examples/full.yaml"));
  std::string text;
  for (std::string line; std::getline(in, line);) {
    text += std::regex_replace(line, commented, "$1$2") + "\n";
  }
  config_internal::Problems problems("full.yaml");
  json doc = config_internal::ParseDocument(text, config_internal::Format::kYaml, problems);
  EXPECT_TRUE(problems.empty()) << "full.yaml, commented keys included, is not YAML";
  return doc;
}

// The key names (first cells) of the table rows under each "### " heading
// of "## Every key": "Top level" -> {listen, ...}, "store" -> {kind, ...}.
std::map<std::string, std::set<std::string>> DocumentedKeys() {
  const std::string doc = ReadSource("docs/configuration.md");
  std::stringstream in(doc.substr(doc.find("## Every key")));
  static const std::regex heading(R"(^### `?([^`]+)`?\s*$)");
  static const std::regex row(R"(^\| `([a-z_.]+)` \|)");
  std::map<std::string, std::set<std::string>> keys;
  std::string section;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, heading)) {
      section = m[1];
    } else if (std::regex_search(line, m, row)) {
      keys[section].insert(m[1]);
    }
  }
  return keys;
}

TEST(ConfigKeysTest, TheLoaderReadsTheKeysItDocuments) {
  const std::vector<std::string> keys = ConfigKeys();
  const std::set<std::string> set(keys.begin(), keys.end());
  // A few known ones, so an empty list cannot pass the tests below.
  for (const char* key : {"listen", "store.journal_bytes", "tasks.max_ended", "tls.client_ca",
                          "auth.admin_token_file", "routing.rules.strategy",
                          "pools.restart.backoff.jitter", "shutdown.drain_timeout"}) {
    EXPECT_EQ(set.count(key), 1u) << key;
  }
  EXPECT_EQ(set.count("store"), 0u) << "sections are not keys";
  EXPECT_EQ(set.count("pools"), 0u);
}

TEST(ConfigKeysTest, FullYamlHasEveryKey) {
  const json full = FullYamlWithCommentedKeys();
  for (const std::string& key : ConfigKeys()) {
    EXPECT_TRUE(Holds(full, Split(key), 0)) << key << " is missing from config/examples/full.yaml";
  }
}

TEST(ConfigKeysTest, ConfigurationDocListsEveryKey) {
  const auto documented = DocumentedKeys();
  for (const std::string& key : ConfigKeys()) {
    const std::vector<std::string> parts = Split(key);
    const std::string section = parts.size() == 1 ? "Top level" : parts[0];
    auto rows = documented.find(section);
    bool found = false;
    // The row names the key relative to its section or to a sub-table:
    // `journal_bytes`, `retry_backoff.initial`, `backoff.initial`.
    std::string suffix;
    for (std::size_t i = parts.size(); i-- > (parts.size() == 1 ? 0 : 1);) {
      suffix = suffix.empty() ? parts[i] : parts[i] + "." + suffix;
      found = found || (rows != documented.end() && rows->second.count(suffix) > 0);
    }
    EXPECT_TRUE(found) << key << " has no row under '### `" << section
                       << "`' in docs/configuration.md";
  }
}

}  // namespace
}  // namespace pincer
