// The durable task store. pincerd records every change that matters after
// a crash; at the end of a loop turn the daemon hands what is pending to a
// writer thread, and a line to a client goes out only once the changes it
// tells of are durable: persist, then answer (daemon/answer_gate.h).
//
// Two ways to commit:
// - Commit(): synchronous, on the calling thread (shutdown, tests).
// - TakeBatch() / Write() / GiveBack(): group commit off the event loop.
//   The loop takes the changes recorded so far as a batch, a writer thread
//   Writes it (the slow part: SQL and fsync) while the loop goes on
//   recording the next batch (TakeInto grows a batch not yet begun), and a
//   batch whose Write failed is given back so its changes are pending
//   again, under any newer ones. Takes are numbered (next_take) so the
//   daemon knows which lines a written batch lets out.
//
// Threading: everything on the event-loop thread, except Write(), which
// may run on one other thread while the loop records changes. Never two
// Write()s or a Write() and a Commit() at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "config/config.h"
#include "task/task_record.h"

namespace pincer {

// How far the ids pincerd hands out may have gone: every task id and worker
// id issued so far is at most these (0: none reserved yet).
struct IdMarks {
  uint64_t tasks = 0;
  uint64_t workers = 0;

  bool operator==(const IdMarks&) const = default;
};

// Changes taken out of a store for one commit (opaque outside the store).
class StoreBatch {
 public:
  virtual ~StoreBatch() = default;
};

class Store {
 public:
  virtual ~Store() = default;

  // Loads every stored task, in submit order, through `visit`. Called once,
  // before serving. An error means the data cannot be trusted: do not start.
  virtual Status Recover(const std::function<void(TaskRecord&&)>& visit) = 0;

  // Record changes; they become durable at the next successful Commit(), or
  // once a batch that took them is written.
  virtual void Insert(const TaskRecord& task) = 0;  // a newly accepted task
  virtual void Update(const TaskRecord& task) = 0;  // state, attempts, result
  virtual void Erase(TaskId id) = 0;                // purged after result_ttl

  // Makes everything recorded since the last Commit durable, per the fsync
  // policy. On error the changes stay pending; Commit may be retried.
  virtual Status Commit() = 0;

  // Group commit. TakeBatch may return an empty batch (writing it checks
  // that the store can commit) or null (nothing to write, ever).
  virtual std::unique_ptr<StoreBatch> TakeBatch() { return nullptr; }
  virtual Status Write(StoreBatch&) { return Status::Ok(); }
  virtual void GiveBack(std::unique_ptr<StoreBatch>) {}
  // Moves what is pending to the end of `batch`, taken earlier and not yet
  // being written (group commit: the batch waiting behind a write grows).
  virtual void TakeInto(StoreBatch&) {}
  // A batch written: its buffers serve a later TakeBatch.
  virtual void Reuse(std::unique_ptr<StoreBatch>) {}

  // Every TakeBatch and TakeInto is a take, numbered 1, 2, 3... A change
  // recorded while next_take() is n is durable once a batch holding take n
  // or a later one is written (a failed batch is given back, and its
  // changes go with a later take). Loop thread.
  uint64_t next_take() const { return takes_ + 1; }

  // Id reservation (docs/durability.md, "Ids"). An id may leave pincerd
  // (to a worker, say) before the change that stores its task is durable,
  // so ids are reserved in blocks, and a block is durable before any id in
  // it is handed out: after a crash, ids carry on above every reservation
  // and none is issued twice. ReserveIds makes `marks` durable now, on the
  // calling (loop) thread, apart from the commit path; on error nothing
  // above the old marks may be issued. reserved_ids() is what the last
  // ReserveIds or Recover set. The memory store keeps them in memory.
  virtual Status ReserveIds(const IdMarks& marks) {
    reserved_ = marks;
    return Status::Ok();
  }
  const IdMarks& reserved_ids() const { return reserved_; }

  // True when a change is pending a Commit().
  virtual bool dirty() const = 0;

 protected:
  // Called by TakeBatch and TakeInto.
  void CountTake() { ++takes_; }

  IdMarks reserved_;

 private:
  uint64_t takes_ = 0;
};

// Builds the store the config names ("memory", "sqlite" or "postgres").
// Returns nullptr and fills `error` when it cannot.
std::unique_ptr<Store> OpenStore(const Config& config, Status& error);

}  // namespace pincer
