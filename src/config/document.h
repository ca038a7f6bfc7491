// Internal to the config module: turns config text (YAML or JSON) into one
// nlohmann::json tree, so a single reader serves both formats.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "config/problems.h"

namespace pincer::config_internal {

enum class Format { kYaml, kJson };

// By extension, case-insensitively: .yaml/.yml or .json; nullopt otherwise.
std::optional<Format> FormatOf(const std::string& path);

// Parses `text`. Text that is empty, or holds only comments, gives null (all
// defaults). Syntax errors (with line and column), duplicate keys and YAML
// constructs JSON cannot hold are added to `problems`; the result is then
// meaningless.
//
// YAML plain scalars are typed by the YAML 1.2 core schema (true/false, null,
// integers, floats, else string); quoted scalars are always strings, so
// `"5"` is a string and `5` an integer, as in JSON.
nlohmann::json ParseDocument(const std::string& text, Format format, Problems& problems);

}  // namespace pincer::config_internal
