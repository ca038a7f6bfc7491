#include "store/memory_store.h"

#include "store/sqlite_store.h"

namespace pincer {

std::unique_ptr<Store> OpenStore(const Config& config, Status& error) {
  if (config.store.kind == "memory") return std::make_unique<MemoryStore>();
  if (config.store.kind == "sqlite") {
    // Stateless; only paces fsync: interval, so one shared instance will do.
    static const SystemClock clock;
    SqliteStoreOptions options;
    options.data_dir = config.data_dir;
    options.fsync = config.store.fsync == "off"        ? FsyncPolicy::kOff
                    : config.store.fsync == "interval" ? FsyncPolicy::kInterval
                                                       : FsyncPolicy::kAlways;
    options.fsync_interval = config.store.fsync_interval;
    options.journal_bytes = config.store.journal_bytes;
    return SqliteStore::Open(options, clock, error);
  }
  error = Status("store_unavailable", "unknown store kind '" + config.store.kind + "'");
  return nullptr;
}

}  // namespace pincer
