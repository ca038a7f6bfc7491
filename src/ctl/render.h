// pincerctl's human output for each kind of answer: tables for lists,
// "key: value" lines for one object. Pure: the current time is a
// parameter. The --json output does not come through here.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"  // FormatDuration
#include "ctl/format.h"
#include "ctl/table.h"

namespace pincer::ctl {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

// "key:   value" lines with the values aligned. A value with newlines (an
// agent's multi-line output, say) goes below its key, indented by two.
std::string RenderKeyValues(const KeyValues& lines);

// A payload or output: strings raw (they are usually text), else JSON.
std::string ValueText(const nlohmann::json& object, const char* key);

// "attempts/max_attempts" when the maximum is known.
std::string AttemptsText(const nlohmann::json& task);

std::string ErrorText(const nlohmann::json& object);

// The errors array, when it has entries; null otherwise.
const nlohmann::json* AttemptErrors(const nlohmann::json& object);

// Whether `entry` starts a new run of attempts, after a `retry` (which
// starts the count again), given the entry before it. Within one run the
// attempt numbers grow; only a task that waited out its queue timeout adds
// a second entry (with no worker) for an attempt number.
bool StartsNewRun(const nlohmann::json& previous, const nlohmann::json& entry);

// One entry per failed or lost attempt: "attempt 2 on w3: worker w3
// disconnected". An error's further lines are indented below its first;
// the runs before and after a `retry` are set apart by a "retried" line.
void AddAttemptErrors(const nlohmann::json& object, KeyValues& lines);

// The `error` line, unless it is the last attempt's error, which the
// errors list prints already: each error is printed once.
void AddError(const nlohmann::json& object, KeyValues& lines, bool always);

std::string TimeText(const nlohmann::json& object, const char* key, std::int64_t now_ms);

// A usage object ({input, output, total, cost[, model]}) on one line:
// "1200 tokens (1000 in, 200 out), cost 0.0042, model m"; "-" for null.
std::string UsageText(const nlohmann::json& usage);

// `pincerctl status`: the task object from {"type":"ok","task":{...}}.
std::string RenderTask(const nlohmann::json& task, std::int64_t now_ms);

// `submit --wait` and `wait`: the `end` event, id first.
std::string RenderEnd(const nlohmann::json& end);

// `pincerctl tasks`, oldest first as the daemon lists them.
std::string RenderTaskTable(const nlohmann::json& tasks, std::int64_t now_ms);

// A worker's labels as "k=v,k2=v2"; "-" when it has none.
std::string LabelsText(const nlohmann::json& worker);

// `pincerctl workers`. PID, REPLICA and UPTIME are set for workers pincerd
// started (a pool's), "-" for the others.
std::string RenderWorkerTable(const nlohmann::json& workers);

// `pincerctl pools` (the supervisor's managed pools).
// `pincerctl pools`: wanted versus running per pool, then for each pool
// that is short (or failed) why, with the tail of its last exit's stderr.
// A SIDECARS column (live sidecar processes) appears when a pool has one.
std::string RenderPoolTable(const nlohmann::json& pools);

// `pincerctl stats`: the contract's counters first, in a fixed order, then
// whatever else the daemon reports.
std::string RenderStats(const nlohmann::json& stats);

// An `ok` answer without its envelope: what --json prints for cancel,
// drain and reload.
nlohmann::json WithoutEnvelope(nlohmann::json answer);

}  // namespace pincer::ctl
