#include "store/memory_store.h"

#include "store/postgres_store.h"
#include "store/sqlite_store.h"

namespace pincer {

std::unique_ptr<Store> OpenStore(const Config& config, Status& error) {
  if (config.store.kind == StoreKind::kMemory) return std::make_unique<MemoryStore>();
  if (config.store.kind == StoreKind::kPostgres) {
    PostgresStoreOptions options;
    options.url = config.store.url;
    options.lease = config.store.lease;
    return PostgresStore::Open(options, error);
  }
  // Stateless; only paces fsync: interval, so one shared instance will do.
  static const SystemClock clock;
  SqliteStoreOptions options;
  options.data_dir = config.data_dir;
  options.fsync = config.store.fsync;
  options.fsync_interval = config.store.fsync_interval;
  options.journal_bytes = config.store.journal_bytes;
  return SqliteStore::Open(options, clock, error);
}

}  // namespace pincer
