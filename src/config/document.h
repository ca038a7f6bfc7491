// Internal to the config module: turns config text (YAML or JSON) into one
// nlohmann::json tree, so a single reader serves both formats.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "config/problems.h"

namespace pincer::config_internal {

enum class Format { kYaml, kJson };

// Bounds on what one config may hold, so that a hostile file (a reload is
// one SIGHUP away) is refused quickly instead of exhausting the daemon.
// docs/configuration.md names them.
inline constexpr std::size_t kMaxConfigBytes = 4 << 20;  // the file
inline constexpr std::size_t kMaxTokenBytes = 64 << 10;  // a *_token_file
inline constexpr int kMaxDocumentDepth = 64;             // nested maps and lists
// Values (scalars, maps and lists), every use of a YAML alias counted as a
// copy: the bound on a "billion laughs" file.
inline constexpr std::size_t kMaxDocumentValues = 100000;

// By extension, case-insensitively: .yaml/.yml or .json; nullopt otherwise.
std::optional<Format> FormatOf(const std::string& path);

// Parses `text`. Text that is empty, or holds only comments, gives null (all
// defaults). Syntax errors (with line and column), duplicate keys and YAML
// constructs JSON cannot hold are added to `problems`; the result is then
// meaningless. So is going past kMaxDocumentDepth or kMaxDocumentValues,
// which stops the parse.
//
// YAML plain scalars are typed by the YAML 1.2 core schema (true/false, null,
// integers, floats, else string); quoted scalars are always strings, so
// `"5"` is a string and `5` an integer, as in JSON.
nlohmann::json ParseDocument(const std::string& text, Format format, Problems& problems);

}  // namespace pincer::config_internal
