// A store that keeps nothing: tasks live only in pincerd's memory and are
// lost with the process. For tests, benchmarks, and users who want speed
// over durability (store.kind: memory).
#pragma once

#include "store/store.h"

namespace pincer {

class MemoryStore : public Store {
 public:
  Status Recover(const std::function<void(TaskRecord&&)>&) override { return Status::Ok(); }
  void Insert(const TaskRecord&) override {}
  void Update(const TaskRecord&) override {}
  void Erase(TaskId) override {}
  Status Commit() override { return Status::Ok(); }
  bool dirty() const override { return false; }
};

}  // namespace pincer
