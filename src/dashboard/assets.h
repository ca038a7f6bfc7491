// The dashboard's files, compiled into pincerd (cmake/embed_assets.cmake
// generates the definition from src/dashboard/assets/ and Chart.js).
#pragma once

#include <optional>
#include <string_view>

namespace pincer::dashboard {

// The file served at URL path `name` ("/", "/app.js", ...); nullopt when
// there is none.
std::optional<std::string_view> FindAsset(std::string_view name);

}  // namespace pincer::dashboard
