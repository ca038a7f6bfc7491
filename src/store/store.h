// The durable task store. pincerd records every change that matters after
// a crash and calls Commit() once per event-loop iteration, before it sends
// the answers that iteration produced: persist, then answer.
//
// Threading: used from the event-loop thread only.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "config/config.h"
#include "store/task_record.h"

namespace pincer {

class Store {
 public:
  virtual ~Store() = default;

  // Loads every stored task, in submit order, through `visit`. Called once,
  // before serving. An error means the data cannot be trusted: do not start.
  virtual Status Recover(const std::function<void(TaskRecord&&)>& visit) = 0;

  // Record changes; they become durable at the next successful Commit().
  virtual void Insert(const TaskRecord& task) = 0;  // a newly accepted task
  virtual void Update(const TaskRecord& task) = 0;  // state, attempts, result
  virtual void Erase(TaskId id) = 0;                // purged after result_ttl

  // Makes everything recorded since the last Commit durable, per the fsync
  // policy. On error the changes stay pending; Commit may be retried.
  virtual Status Commit() = 0;

  // True when a change is pending a Commit().
  virtual bool dirty() const = 0;
  // False for the memory store: "accepted" then means "in memory".
  virtual bool durable() const = 0;
};

// Builds the store the config names ("memory" or "sqlite").
// Returns nullptr and fills `error` when it cannot.
std::unique_ptr<Store> OpenStore(const Config& config, Status& error);

}  // namespace pincer
