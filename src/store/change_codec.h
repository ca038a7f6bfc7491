// The binary form of a store change (insert, update, erase of one task), as
// kept in the SQLite store's journal (docs/durability.md). A journal entry
// is a run of changes, each: op byte, task id, then the fields the op
// carries. Integers are LEB128 varints (signed ones zigzag-encoded),
// strings a varint length and the bytes. The ended-task archive keeps its
// records in the same encoding, in an order of its own (EncodeEnded).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "task/task_record.h"

namespace pincer {

enum class ChangeOp : uint8_t { kInsert = 1, kUpdate = 2, kErase = 3 };

// The fields that change after submit (what an update carries).
void CopyMutableFields(const TaskRecord& from, TaskRecord& to);

// Appends one change. kInsert writes the whole record, kUpdate the mutable
// fields, kErase only the id.
void EncodeChange(std::string& out, ChangeOp op, const TaskRecord& rec);
void EncodeErase(std::string& out, TaskId id);

// Reads the change at the front of `in` and advances past it. For kUpdate
// only `rec.id` and the mutable fields are set. Returns false (and leaves
// `in` somewhere inside) for anything truncated or malformed.
bool DecodeChange(std::string_view& in, ChangeOp& op, TaskRecord& rec);

// An ended task as the ended archive (core/ended_archive.h) keeps it: the
// id and the fields that change after submit first, then the submitted
// ones, so that what an `end` event tells is read from the front alone.
void EncodeEnded(std::string& out, const TaskRecord& rec);
// Reads the whole record and advances past it.
bool DecodeEnded(std::string_view& in, TaskRecord& rec);
// Reads the outcome at the front of an EncodeEnded record without copying:
// its strings point into `in`; its attempt errors (most tasks have none)
// are copied into `errors`, which it points to.
bool DecodeEndedOutcome(std::string_view in, Outcome& out, std::vector<AttemptError>& errors);

// Reads only the op and the task id of the change at the front of `in`
// and advances past the whole change, without copying its fields.
bool SkipChange(std::string_view& in, ChangeOp& op, TaskId& id);

// Changes coalesced per task, ordered by id, as a store applies them: one
// INSERT, UPDATE or DELETE per task. Applying in id order keeps an erased
// task's idempotency key free before a newer task (a larger id) takes it.
struct PendingChange {
  ChangeOp op;
  TaskRecord rec;  // kInsert: the whole record; kUpdate: the mutable fields
};
using PendingChanges = std::map<TaskId, PendingChange>;

// What an erase does to an insert pending in the same changes: kDrop
// forgets both (the row never existed: sqlite's fold), kKeepErase keeps
// the delete (a batch given back after a lost connection may have
// committed on the server after all: postgres).
enum class InsertThenErase : uint8_t { kDrop, kKeepErase };

// Adds one decoded change to `changes`: a later update moves its mutable
// fields into a pending insert or update; an erase wins over both.
void AddPendingChange(PendingChanges& changes, ChangeOp op, TaskRecord&& rec,
                      InsertThenErase insert_then_erase);

}  // namespace pincer
