// pincerctl's human output for each kind of answer: tables for lists,
// "key: value" lines for one object. Header-only: pure; the current time is
// a parameter. The --json output does not come through here.
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
inline std::string RenderKeyValues(const KeyValues& lines) {
  std::size_t width = 0;
  for (const auto& [key, value] : lines) width = std::max(width, key.size() + 1);
  std::string out;
  for (const auto& [key, value] : lines) {
    if (value.find('\n') != std::string::npos) {
      out += key + ":\n";
      // A leading '\n' only asks for the list-under-the-key layout.
      std::string_view body(value);
      if (body.front() == '\n') body.remove_prefix(1);
      if (!body.empty() && body.back() == '\n') body.remove_suffix(1);
      while (true) {
        const std::size_t end = body.find('\n');
        out += "  ";
        out += body.substr(0, end);
        out += "\n";
        if (end == std::string_view::npos) break;
        body.remove_prefix(end + 1);
      }
      continue;
    }
    out += key + ":" + std::string(width - key.size(), ' ') + value + "\n";
  }
  return out;
}

// A payload or output: strings raw (they are usually text), else JSON.
inline std::string ValueText(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  return DumpJson(*it);
}

// "attempts/max_attempts" when the maximum is known.
inline std::string AttemptsText(const nlohmann::json& task) {
  std::string text = Field(task, "attempts");
  if (auto it = task.find("max_attempts"); it != task.end() && it->is_number()) {
    text += "/" + DumpJson(*it);
  }
  return text;
}

// One line per failed or lost attempt: "attempt 2 on w3: worker w3 disconnected".
inline void AddAttemptErrors(const nlohmann::json& object, KeyValues& lines) {
  auto it = object.find("errors");
  if (it == object.end() || !it->is_array() || it->empty()) return;
  std::string text;
  for (const auto& entry : *it) {
    text +=
        "\nattempt " + Field(entry, "attempt") + " on " + Field(entry, "worker") + ": " +
        (entry.contains("error") && entry["error"].is_string() ? entry["error"].get<std::string>()
                                                               : Field(entry, "error"));
  }
  lines.emplace_back("errors", text);  // leading '\n' puts the list under the key
}

inline std::string TimeText(const nlohmann::json& object, const char* key, std::int64_t now_ms) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return "-";
  return FormatTimestamp(it->get<std::int64_t>()) + " (" + AgeOf(object, key, now_ms) + " ago)";
}

// A usage object ({input, output, total, cost[, model]}) on one line:
// "1200 tokens (1000 in, 200 out), cost 0.0042, model m"; "-" for null.
inline std::string UsageText(const nlohmann::json& usage) {
  if (!usage.is_object()) return "-";
  auto count = [&](const char* key) {
    auto it = usage.find(key);
    return it != usage.end() && it->is_number() ? it->dump() : std::string("0");
  };
  std::string text = count("total") + " tokens (" + count("input") + " in, " + count("output") +
                     " out), cost " + count("cost");
  if (auto it = usage.find("model"); it != usage.end() && it->is_string()) {
    text += ", model " + it->get<std::string>();
  }
  return text;
}

// `pincerctl status`: the task object from {"type":"ok","task":{...}}.
inline std::string RenderTask(const nlohmann::json& task, std::int64_t now_ms) {
  KeyValues lines;
  lines.emplace_back("id", Field(task, "id"));
  lines.emplace_back("state", Field(task, "state"));
  if (task.contains("why") && !task["why"].is_null()) lines.emplace_back("why", Field(task, "why"));
  lines.emplace_back("skills", Field(task, "skills"));
  lines.emplace_back("priority", Field(task, "priority"));
  lines.emplace_back("session", Field(task, "session"));
  lines.emplace_back("key", Field(task, "key"));
  lines.emplace_back("attempts", AttemptsText(task));
  lines.emplace_back("worker", Field(task, "worker"));
  if (auto it = task.find("usage"); it != task.end() && it->is_object()) {
    lines.emplace_back("usage", UsageText(*it));
  }
  if (auto it = task.find("retry_at_ms"); it != task.end() && it->is_number_integer()) {
    lines.emplace_back("retry at", FormatTimestamp(it->get<std::int64_t>()));
  }
  if (auto it = task.find("backoff"); it != task.end() && it->is_object()) {
    const nlohmann::json& b = *it;
    auto ms = [&](const char* key) {
      auto m = b.find(key);
      return m != b.end() && m->is_number_integer() ? FormatDuration(Duration(m->get<std::int64_t>()))
                                                    : std::string("-");
    };
    lines.emplace_back("backoff", ms("initial_ms") + " doubling to " + ms("max_ms") + ", jitter " +
                                      CellText(b.value("jitter", nlohmann::json())));
  }
  if (auto it = task.find("timeout_ms"); it != task.end() && it->is_number_integer()) {
    const std::int64_t ms = it->get<std::int64_t>();
    lines.emplace_back("timeout", ms == 0 ? "none" : FormatDuration(Duration(ms)));
  }
  lines.emplace_back("created", TimeText(task, "created_ms", now_ms));
  lines.emplace_back("started", TimeText(task, "started_ms", now_ms));
  lines.emplace_back("ended", TimeText(task, "ended_ms", now_ms));
  if (task.contains("progress") && !task["progress"].is_null()) {
    lines.emplace_back("progress", ValueText(task, "progress"));
  }
  lines.emplace_back("payload", ValueText(task, "payload"));
  lines.emplace_back("output", ValueText(task, "output"));
  lines.emplace_back("error", ValueText(task, "error"));
  AddAttemptErrors(task, lines);
  return RenderKeyValues(lines);
}

// `submit --wait` and `wait`: the `end` event, id first.
inline std::string RenderEnd(const nlohmann::json& end) {
  KeyValues lines;
  lines.emplace_back("id", Field(end, "id"));
  lines.emplace_back("state", Field(end, "state"));
  lines.emplace_back("attempts", Field(end, "attempts"));
  lines.emplace_back("worker", Field(end, "worker"));
  lines.emplace_back("output", ValueText(end, "output"));
  if (end.contains("error") && !end["error"].is_null()) {
    lines.emplace_back("error", ValueText(end, "error"));
  }
  AddAttemptErrors(end, lines);
  return RenderKeyValues(lines);
}

// `pincerctl tasks`, oldest first as the daemon lists them.
inline std::string RenderTaskTable(const nlohmann::json& tasks, std::int64_t now_ms) {
  Table table({"ID", "STATE", "PRIORITY", "ATTEMPTS", "WORKER", "SKILLS", "AGE"});
  if (tasks.is_array()) {
    for (const auto& task : tasks) {
      table.AddRow({Field(task, "id"), Field(task, "state"), Field(task, "priority"),
                    AttemptsText(task), Field(task, "worker"), Field(task, "skills"),
                    AgeOf(task, "created_ms", now_ms)});
    }
  }
  return table.Render();
}

// `pincerctl workers`.
inline std::string RenderWorkerTable(const nlohmann::json& workers) {
  Table table({"ID", "NAME", "STATE", "INFLIGHT/CAP", "SKILLS", "COMPLETED", "FAILED", "POOL",
               "CPU", "RSS"});
  if (workers.is_array()) {
    for (const auto& worker : workers) {
      std::string cpu = "-";
      std::string rss = "-";
      if (auto load = worker.find("load"); load != worker.end() && load->is_object()) {
        if (auto it = load->find("cpu"); it != load->end() && it->is_number()) {
          char text[16];
          std::snprintf(text, sizeof text, "%.2f", it->get<double>());
          cpu = text;
        }
        if (auto it = load->find("rss_bytes"); it != load->end() && it->is_number()) {
          rss = FormatBytes(it->get<std::int64_t>());
        }
      }
      table.AddRow({Field(worker, "id"), Field(worker, "name"), Field(worker, "state"),
                    Field(worker, "inflight") + "/" + Field(worker, "capacity"),
                    Field(worker, "skills"), Field(worker, "completed"), Field(worker, "failed"),
                    Field(worker, "pool"), cpu, rss});
    }
  }
  return table.Render();
}

// `pincerctl pools` (the supervisor's managed pools).
inline std::string RenderPoolTable(const nlohmann::json& pools) {
  Table table({"NAME", "STATE", "DESIRED", "RUNNING", "RESTARTS"});
  if (pools.is_array()) {
    for (const auto& pool : pools) {
      std::string desired = Field(pool, "desired");
      if (desired == "-") desired = Field(pool, "replicas");
      table.AddRow({Field(pool, "name"), Field(pool, "state"), desired, Field(pool, "running"),
                    Field(pool, "restarts")});
    }
  }
  return table.Render();
}

// `pincerctl stats`: the contract's counters first, in a fixed order, then
// whatever else the daemon reports.
inline std::string RenderStats(const nlohmann::json& stats) {
  static const char* kFirst[] = {"queued",    "running",    "succeeded", "failed",   "cancelled",
                                 "timed_out", "unroutable", "workers",   "submitted"};
  KeyValues lines;
  for (const char* key : kFirst) {
    if (stats.contains(key)) lines.emplace_back(key, Field(stats, key));
  }
  for (const auto& [key, value] : stats.items()) {
    bool listed = key == "usage";
    for (const char* first : kFirst) listed = listed || key == first;
    if (!listed) lines.emplace_back(key, CellText(value));
  }
  // Usage: the total, then one line per model, skill set and worker.
  if (auto it = stats.find("usage"); it != stats.end() && it->is_object()) {
    lines.emplace_back("usage", UsageText(*it));
    for (const char* by : {"by_model", "by_skill", "by_worker"}) {
      auto group = it->find(by);
      if (group == it->end() || !group->is_object()) continue;
      const std::string prefix = std::string("usage ") + (by + 3) + " ";
      for (const auto& [name, usage] : group->items()) lines.emplace_back(prefix + name, UsageText(usage));
    }
  }
  return RenderKeyValues(lines);
}

// An `ok` answer without its envelope: what --json prints for cancel,
// drain and reload.
inline nlohmann::json WithoutEnvelope(nlohmann::json answer) {
  if (answer.is_object()) {
    answer.erase("type");
    answer.erase("req");
  }
  return answer;
}

}  // namespace pincer::ctl
