#include "store/memory_store.h"

namespace pincer {

std::unique_ptr<Store> OpenStore(const Config& config, Status& error) {
  if (config.store.kind == "memory") return std::make_unique<MemoryStore>();
  // The SQLite store is added by the durability work; until then a config
  // asking for it is refused rather than silently losing durability.
  error = Status("store_unavailable", "store kind '" + config.store.kind + "' is not available");
  return nullptr;
}

}  // namespace pincer
