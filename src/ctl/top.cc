#include "ctl/top.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <ostream>
#include <thread>
#include <vector>

#include "ctl/exit_code.h"

namespace pincer::ctl {
namespace {

using nlohmann::json;

std::int64_t Int(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_number() ? it->get<std::int64_t>() : 0;
}

std::string Str(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

std::string Join(const json& arr) {
  if (!arr.is_array() || arr.empty()) return "any";
  std::string s;
  for (const json& v : arr) {
    if (!s.empty()) s += ',';
    s += v.is_string() ? v.get<std::string>() : v.dump();
  }
  return s;
}

std::string Bytes(const json& load) {
  auto it = load.find("rss_bytes");
  if (it == load.end() || !it->is_number()) return "-";
  double b = it->get<double>();
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f%s" : "%.1f%s", b, units[u]);
  return buf;
}

std::string Cpu(const json& load) {
  auto it = load.find("cpu");
  if (it == load.end() || !it->is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", it->get<double>() * 100);
  return buf;
}

std::int64_t Ended(const json& stats) {
  return Int(stats, "succeeded") + Int(stats, "failed") + Int(stats, "cancelled") +
         Int(stats, "timed_out");
}

// Left-aligned columns, as wide as their widest cell.
std::string Table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace

std::string RenderTopFrame(const std::string& addr, const TopSample& now,
                           const TopSample* previous) {
  const json& s = now.stats;
  std::string out;
  char line[512];

  std::time_t t = static_cast<std::time_t>(now.at_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char clock[16];
  std::strftime(clock, sizeof clock, "%H:%M:%S", &tm);
  std::snprintf(line, sizeof line, "pincer top  %s  %s\n\n", addr.c_str(), clock);
  out += line;

  std::snprintf(line, sizeof line,
                "tasks    %lld queued (%lld unroutable), %lld running, %lld succeeded, "
                "%lld failed, %lld timed out, %lld cancelled\n",
                static_cast<long long>(Int(s, "queued")), static_cast<long long>(Int(s, "unroutable")),
                static_cast<long long>(Int(s, "running")), static_cast<long long>(Int(s, "succeeded")),
                static_cast<long long>(Int(s, "failed")), static_cast<long long>(Int(s, "timed_out")),
                static_cast<long long>(Int(s, "cancelled")));
  out += line;

  // Rates over the last refresh: what is happening now, not since start.
  std::string rates = "rate     - ended/s, error rate -\n";
  if (previous && now.at_ms > previous->at_ms) {
    const double dt = static_cast<double>(now.at_ms - previous->at_ms) / 1000.0;
    const std::int64_t ended = Ended(s) - Ended(previous->stats);
    const std::int64_t bad = Int(s, "failed") + Int(s, "timed_out") -
                             Int(previous->stats, "failed") - Int(previous->stats, "timed_out");
    const std::int64_t submitted = Int(s, "submitted") - Int(previous->stats, "submitted");
    if (ended >= 0 && bad >= 0) {  // a restarted daemon resets its counters
      std::snprintf(line, sizeof line, "rate     %.1f submitted/s, %.1f ended/s, error rate %s\n",
                    std::max<std::int64_t>(submitted, 0) / dt, ended / dt,
                    ended > 0 ? (std::to_string(bad * 100 / ended) + "%").c_str() : "-");
      rates = line;
    }
  }
  out += rates;
  if (auto u = s.find("usage"); u != s.end() && u->is_object() && Int(*u, "total") > 0) {
    const auto cost = u->find("cost");
    out += "usage    " + std::to_string(Int(*u, "total")) + " tokens (" +
           std::to_string(Int(*u, "input")) + " in, " + std::to_string(Int(*u, "output")) +
           " out), cost " + (cost != u->end() && cost->is_number() ? cost->dump() : "0") + "\n";
  }

  std::map<std::string, int> by_state;
  for (const json& w : now.workers) ++by_state[Str(w, "state")];
  std::snprintf(line, sizeof line, "workers  %zu (%d ready, %d draining, %d ejected)\n\n",
                now.workers.size(), by_state["ready"], by_state["draining"], by_state["ejected"]);
  out += line;

  std::vector<std::vector<std::string>> rows{
      {"WORKER", "NAME", "STATE", "LOAD", "DONE", "FAILED", "TOKENS", "CPU", "RSS", "POOL",
       "SKILLS"}};
  std::vector<json> workers(now.workers.begin(), now.workers.end());
  std::sort(workers.begin(), workers.end(), [](const json& a, const json& b) {
    return Str(a, "name") != Str(b, "name") ? Str(a, "name") < Str(b, "name")
                                            : Str(a, "id") < Str(b, "id");
  });
  for (const json& w : workers) {
    const json load = w.value("load", json::object());
    rows.push_back({Str(w, "id"), Str(w, "name"), Str(w, "state"),
                    std::to_string(Int(w, "inflight")) + "/" + std::to_string(Int(w, "capacity")),
                    std::to_string(Int(w, "completed")), std::to_string(Int(w, "failed")),
                    std::to_string(Int(w.value("usage", json::object()), "total")), Cpu(load), Bytes(load), Str(w, "pool").empty() ? "-" : Str(w, "pool"),
                    Join(w.value("skills", json::array()))});
  }
  out += Table(rows);

  std::map<std::string, int> queued;
  for (const json& task : now.queued) ++queued[Join(task.value("skills", json::array()))];
  std::vector<std::pair<std::string, int>> by_depth(queued.begin(), queued.end());
  std::sort(by_depth.begin(), by_depth.end(),
            [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  out += "\n";
  std::vector<std::vector<std::string>> qrows{{"QUEUED", "SKILLS"}};
  for (const auto& [skills, n] : by_depth) qrows.push_back({std::to_string(n), skills});
  if (by_depth.empty()) qrows.push_back({"0", "-"});
  out += Table(qrows);
  if (static_cast<std::int64_t>(now.queued.size()) >= kTopQueuedLimit) {
    out += "(per-skill counts from the first " + std::to_string(kTopQueuedLimit) +
           " queued tasks)\n";
  }
  return out;
}

int RunTop(const CommandContext& context, const TopOptions& options) {
  auto client = DialDaemon(context);
  if (!client.ok()) return ReportError(context, client.error());
  client::Client& c = **client;

  std::optional<TopSample> previous;
  for (int frame = 0;; ++frame) {
    // Three requests pipelined on one connection: one round trip a frame.
    auto stats = c.SendRequest({{"type", "stats"}});
    auto workers = c.SendRequest({{"type", "workers"}});
    auto queued = c.SendRequest({{"type", "tasks"}, {"state", "queued"}, {"limit", kTopQueuedLimit}});
    for (const auto* r : {&stats, &workers, &queued}) {
      if (!r->ok()) return ReportError(context, r->error());
    }
    TopSample sample;
    sample.at_ms = context.now_ms();
    auto s = c.AwaitReply(*stats, kRequestTimeout);
    if (!s.ok()) return ReportError(context, s.error());
    auto w = c.AwaitReply(*workers, kRequestTimeout);
    if (!w.ok()) return ReportError(context, w.error());
    auto q = c.AwaitReply(*queued, kRequestTimeout);
    if (!q.ok()) return ReportError(context, q.error());
    sample.stats = s->value("stats", json::object());
    sample.workers = w->value("workers", json::array());
    sample.queued = q->value("tasks", json::array());

    if (context.options.json) {
      PrintJson(context, {{"at_ms", sample.at_ms},
                          {"stats", sample.stats},
                          {"workers", sample.workers},
                          {"queued", sample.queued.size()}});
    } else {
      // Home and clear, then the frame: the terminal redraws in place.
      if (options.clear_screen) *context.out << "\x1b[H\x1b[2J";
      *context.out << RenderTopFrame(context.options.addr, sample,
                                     previous ? &*previous : nullptr);
    }
    context.out->flush();
    previous = std::move(sample);
    if (options.once || (options.frames && frame + 1 >= *options.frames)) return kExitOk;
    std::this_thread::sleep_for(options.interval);  // a CLI's pacing, not the daemon's loop
  }
}

}  // namespace pincer::ctl
