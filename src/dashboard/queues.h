// The dashboard's queues: queued tasks grouped by the skill set they need.
#pragma once

#include <nlohmann/json.hpp>

#include "core/dispatcher.h"

namespace pincer::dashboard {

// One object per skill set with queued tasks, deepest first:
//   {"skills":["gpu"],"label":"gpu","depth":7,"oldest_ms":..,"oldest_id":"t3",
//    "why":"no worker has skill gpu","why_code":"missing_skill","unroutable":7}
// `label` is the skills joined by commas ("any" for none, as /metrics
// labels them); `why` is the oldest task's (docs/protocol.md, "Why a task
// waits"); `unroutable` counts those that need a skill no connected worker
// has (as stats' `unroutable`). Loop thread: walks the live tasks.
nlohmann::json QueuesView(Dispatcher& dispatcher);

}  // namespace pincer::dashboard
