// What a reload changes, in words: one line per changed key ("tasks.timeout:
// 10m -> 5m"), pool ("pools: echo added") and rule, for the reload's info
// log. Secrets are named, never shown.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace pincer {

std::vector<std::string> DescribeConfigChanges(const Config& before, const Config& after);

}  // namespace pincer
