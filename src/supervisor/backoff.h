// Restart delays for supervised processes: exponential growth from
// `initial`, capped at `max`, with a random fraction added so that replicas
// that crashed together do not all come back in the same millisecond.
#pragma once

#include "config/config.h"

namespace pincer {

// The delay before restart number `failures` + 1 of a replica whose last
// `failures` runs (counted since its backoff was last reset) ended badly:
// failures = 0 -> initial, 1 -> 2*initial, ... capped at max; then
// `random01` (in [0,1)) times `jitter` of that delay is added. The result
// never exceeds max * (1 + jitter).
Duration BackoffDelay(const BackoffConfig& config, int failures, double random01);

}  // namespace pincer
