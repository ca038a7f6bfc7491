#include "ctl/render.h"

namespace pincer::ctl {

std::string RenderKeyValues(const KeyValues& lines) {
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

std::string ValueText(const nlohmann::json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  return DumpJson(*it);
}

std::string AttemptsText(const nlohmann::json& task) {
  std::string text = Field(task, "attempts");
  if (auto it = task.find("max_attempts"); it != task.end() && it->is_number()) {
    text += "/" + DumpJson(*it);
  }
  return text;
}

std::string ErrorText(const nlohmann::json& object) {
  auto it = object.find("error");
  if (it != object.end() && it->is_string()) return it->get<std::string>();
  return Field(object, "error");
}

const nlohmann::json* AttemptErrors(const nlohmann::json& object) {
  auto it = object.find("errors");
  if (it == object.end() || !it->is_array() || it->empty()) return nullptr;
  return &*it;
}

bool StartsNewRun(const nlohmann::json& previous, const nlohmann::json& entry) {
  auto number = [](const nlohmann::json& e) {
    auto it = e.find("attempt");
    return it != e.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
  };
  auto has_worker = [](const nlohmann::json& e) { return Field(e, "worker") != "-"; };
  const std::int64_t before = number(previous);
  const std::int64_t now = number(entry);
  return now < before || (now == before && (!has_worker(previous) || has_worker(entry)));
}

void AddAttemptErrors(const nlohmann::json& object, KeyValues& lines) {
  const nlohmann::json* errors = AttemptErrors(object);
  if (errors == nullptr) return;
  std::string text;
  const nlohmann::json* previous = nullptr;
  for (const auto& entry : *errors) {
    if (previous != nullptr && StartsNewRun(*previous, entry)) text += "\n-- retried --";
    previous = &entry;
    std::string error = ErrorText(entry);
    while (!error.empty() && error.back() == '\n') error.pop_back();
    std::string indented;
    for (char c : error) {
      indented += c;
      if (c == '\n') indented += "    ";
    }
    const std::string worker = Field(entry, "worker");
    text += "\nattempt " + Field(entry, "attempt") + (worker == "-" ? "" : " on " + worker) + ": " +
            indented;
  }
  lines.emplace_back("errors", text);  // leading '\n' puts the list under the key
}

void AddError(const nlohmann::json& object, KeyValues& lines, bool always) {
  const bool has_error = object.contains("error") && !object["error"].is_null();
  if (const nlohmann::json* errors = AttemptErrors(object);
      has_error && errors != nullptr && ErrorText(errors->back()) == ErrorText(object)) {
    return;
  }
  if (always || has_error) lines.emplace_back("error", ValueText(object, "error"));
}

std::string TimeText(const nlohmann::json& object, const char* key, std::int64_t now_ms) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_number()) return "-";
  return FormatTimestamp(it->get<std::int64_t>()) + " (" + AgeOf(object, key, now_ms) + " ago)";
}

std::string UsageText(const nlohmann::json& usage) {
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

// A task's triage (docs/cli.md): "decided gpu, by step t5 (classify on
// w2)", "fallback (step t5 ...): <error>", "pending (step t5 ...)".
static std::string TriageText(const nlohmann::json& triage) {
  const std::string state = Field(triage, "state");
  std::string step = "step " + Field(triage, "task") + " (" + Field(triage, "skill");
  if (Field(triage, "worker") != "-") step += " on " + Field(triage, "worker");
  step += ")";
  if (state == "decided") {
    auto it = triage.find("skills");
    const bool none = it == triage.end() || !it->is_array() || it->empty();
    return "decided " + (none ? std::string("no skills") : Field(triage, "skills")) + ", by " +
           step;
  }
  if (state == "fallback") return "fallback, by its own skills: " + Field(triage, "error");
  return state + ", " + step;
}

std::string RenderTask(const nlohmann::json& task, std::int64_t now_ms) {
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
  if (auto it = task.find("parent"); it != task.end() && it->is_string()) {
    lines.emplace_back("parent", Field(task, "parent"));
  }
  if (auto it = task.find("children"); it != task.end() && it->is_array() && !it->empty()) {
    lines.emplace_back("children", Field(task, "children"));
  }
  if (auto it = task.find("triage"); it != task.end() && it->is_object()) {
    lines.emplace_back("triage", TriageText(*it));
  }
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
      return m != b.end() && m->is_number_integer()
                 ? FormatDuration(Duration(m->get<std::int64_t>()))
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
  AddError(task, lines, /*always=*/true);
  AddAttemptErrors(task, lines);
  return RenderKeyValues(lines);
}

std::string RenderEnd(const nlohmann::json& end) {
  KeyValues lines;
  lines.emplace_back("id", Field(end, "id"));
  lines.emplace_back("state", Field(end, "state"));
  lines.emplace_back("attempts", Field(end, "attempts"));
  lines.emplace_back("worker", Field(end, "worker"));
  lines.emplace_back("output", ValueText(end, "output"));
  AddError(end, lines, /*always=*/false);
  AddAttemptErrors(end, lines);
  return RenderKeyValues(lines);
}

std::string RenderTaskTable(const nlohmann::json& tasks, std::int64_t now_ms) {
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

std::string LabelsText(const nlohmann::json& worker) {
  auto it = worker.find("labels");
  if (it == worker.end() || !it->is_object() || it->empty()) return "-";
  std::string text;
  for (const auto& [key, value] : it->items()) {
    if (!text.empty()) text += ",";
    text += key + "=" + (value.is_string() ? value.get<std::string>() : DumpJson(value));
  }
  return text;
}

std::string RenderWorkerTable(const nlohmann::json& workers) {
  Table table({"ID", "NAME", "STATE", "INFLIGHT/CAP", "SKILLS", "COMPLETED", "FAILED", "POOL",
               "REPLICA", "PID", "UPTIME", "CPU", "RSS", "LABELS"});
  if (workers.is_array()) {
    for (const auto& worker : workers) {
      std::string uptime = "-";
      if (auto it = worker.find("uptime_ms"); it != worker.end() && it->is_number()) {
        uptime = FormatAge(it->get<std::int64_t>());
      }
      table.AddRow({Field(worker, "id"), Field(worker, "name"), Field(worker, "state"),
                    Field(worker, "inflight") + "/" + Field(worker, "capacity"),
                    Field(worker, "skills"), Field(worker, "completed"), Field(worker, "failed"),
                    Field(worker, "pool"), Field(worker, "replica"), Field(worker, "pid"), uptime,
                    LoadCpu(worker), LoadRss(worker), LabelsText(worker)});
    }
  }
  return table.Render();
}

std::string RenderPoolTable(const nlohmann::json& pools) {
  std::vector<std::string> header{"NAME", "STATE", "WANTED", "RUNNING", "READY", "RESTARTS"};
  bool sidecars = false;
  if (pools.is_array()) {
    for (const auto& pool : pools)
      sidecars = sidecars || (pool.is_object() && pool.contains("sidecar"));
  }
  if (sidecars) header.push_back("SIDECARS");
  Table table(std::move(header));
  std::string why;
  if (pools.is_array()) {
    for (const auto& pool : pools) {
      std::string desired = Field(pool, "desired");
      if (desired == "-") desired = Field(pool, "replicas");
      std::string live_sidecars = "-";
      if (pool.is_object() && pool.contains("sidecar_pids") && pool["sidecar_pids"].is_array()) {
        live_sidecars = std::to_string(pool["sidecar_pids"].size());
      }
      table.AddRow({Field(pool, "name"), Field(pool, "state"), desired, Field(pool, "running"),
                    Field(pool, "ready"), Field(pool, "restarts"), live_sidecars});
      if (!pool.is_object() || !pool.contains("why")) continue;
      why += Field(pool, "name") + ": " + Field(pool, "why") + "\n";
      const auto tail = pool.find("stderr_tail");
      if (tail == pool.end() || !tail->is_array()) continue;
      why += "  last stderr:\n";
      for (const auto& line : *tail) why += "    " + CellText(line) + "\n";
    }
  }
  return table.Render() + (why.empty() ? "" : "\n" + why);
}

std::string RenderStats(const nlohmann::json& stats) {
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
      for (const auto& [name, usage] : group->items())
        lines.emplace_back(prefix + name, UsageText(usage));
    }
  }
  return RenderKeyValues(lines);
}

nlohmann::json WithoutEnvelope(nlohmann::json answer) {
  if (answer.is_object()) {
    answer.erase("type");
    answer.erase("req");
  }
  return answer;
}

}  // namespace pincer::ctl
