#include "ctl/top.h"

#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <map>
#include <ostream>
#include <vector>

#include "ctl/exit_code.h"
#include "ctl/format.h"

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

// stdin while `top` runs: on a terminal, keys arrive one at a time and are
// not echoed (restored on the way out); from a pipe, its bytes are read as
// they are. Ctrl-C and SIGTERM end the wait too, so the terminal is
// restored before pincerctl exits.
class Keys {
 public:
  explicit Keys(int fd) : fd_(fd) {
    if (fd_ < 0) return;
    if (::isatty(fd_) == 1 && ::tcgetattr(fd_, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      raw.c_cc[VMIN] = 1;
      raw.c_cc[VTIME] = 0;
      restore_ = ::tcsetattr(fd_, TCSANOW, &raw) == 0;
    }
    struct sigaction action {};
    action.sa_handler = [](int) { stop_ = 1; };  // no SA_RESTART: poll returns EINTR
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &old_int_);
    ::sigaction(SIGTERM, &action, &old_term_);
  }
  ~Keys() {
    if (restore_) ::tcsetattr(fd_, TCSANOW, &saved_);
    if (fd_ >= 0) {
      ::sigaction(SIGINT, &old_int_, nullptr);
      ::sigaction(SIGTERM, &old_term_, nullptr);
    }
  }
  Keys(const Keys&) = delete;
  Keys& operator=(const Keys&) = delete;

  // Waits `interval` or until q is pressed or a signal comes: true to quit.
  bool WaitForQuit(std::chrono::milliseconds interval) {
    const auto until = std::chrono::steady_clock::now() + interval;
    while (!stop_) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      const int ready = ::poll(&p, open_ ? 1 : 0, static_cast<int>(left.count()));
      if (ready <= 0) continue;  // timed out (loop ends) or a signal (stop_ set)
      char buffer[64];
      const ssize_t n = ::read(fd_, buffer, sizeof buffer);
      if (n <= 0) {
        open_ = false;  // end of input: only time and signals from now on
        continue;
      }
      if (std::find_if(buffer, buffer + n, [](char c) { return c == 'q' || c == 'Q'; }) !=
          buffer + n) {
        return true;
      }
    }
    return true;
  }

 private:
  static inline volatile std::sig_atomic_t stop_ = 0;
  int fd_;
  bool open_ = fd_ >= 0;
  bool restore_ = false;
  termios saved_{};
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

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

  std::snprintf(
      line, sizeof line,
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

  std::vector<std::vector<std::string>> rows{{"WORKER", "NAME", "STATE", "LOAD", "DONE", "FAILED",
                                              "TOKENS", "CPU", "RSS", "POOL", "SKILLS"}};
  std::vector<json> workers(now.workers.begin(), now.workers.end());
  std::sort(workers.begin(), workers.end(), [](const json& a, const json& b) {
    return Str(a, "name") != Str(b, "name") ? Str(a, "name") < Str(b, "name")
                                            : Str(a, "id") < Str(b, "id");
  });
  for (const json& w : workers) {
    rows.push_back({Str(w, "id"), Str(w, "name"), Str(w, "state"),
                    std::to_string(Int(w, "inflight")) + "/" + std::to_string(Int(w, "capacity")),
                    std::to_string(Int(w, "completed")), std::to_string(Int(w, "failed")),
                    std::to_string(Int(w.value("usage", json::object()), "total")), LoadCpu(w),
                    LoadRss(w), Str(w, "pool").empty() ? "-" : Str(w, "pool"),
                    Join(w.value("skills", json::array()))});
  }
  out += Table(rows);

  std::map<std::string, int> queued;
  for (const json& task : now.queued) ++queued[Join(task.value("skills", json::array()))];
  std::vector<std::pair<std::string, int>> by_depth(queued.begin(), queued.end());
  std::sort(by_depth.begin(), by_depth.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  out += "\n";
  std::vector<std::vector<std::string>> qrows{{"QUEUED", "SKILLS"}};
  for (const auto& [skills, n] : by_depth) qrows.push_back({std::to_string(n), skills});
  if (by_depth.empty()) qrows.push_back({"0", "-"});
  out += Table(qrows);
  if (static_cast<std::int64_t>(now.queued.size()) >= kTopQueuedLimit) {
    out +=
        "(per-skill counts from the first " + std::to_string(kTopQueuedLimit) + " queued tasks)\n";
  }
  return out;
}

int RunTop(const CommandContext& context, const TopOptions& options) {
  auto client = DialDaemon(context);
  if (!client.ok()) return ReportError(context, client.error());
  client::Client& c = **client;

  std::optional<TopSample> previous;
  std::optional<Keys> keys;
  if (!options.once) keys.emplace(context.in_fd);
  for (int frame = 0;; ++frame) {
    // Three requests pipelined on one connection: one round trip a frame.
    auto stats = c.SendRequest({{"type", "stats"}});
    auto workers = c.SendRequest({{"type", "workers"}});
    auto queued =
        c.SendRequest({{"type", "tasks"}, {"state", "queued"}, {"limit", kTopQueuedLimit}});
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
      *context.out << RenderTopFrame(context.options.addr, sample, previous ? &*previous : nullptr);
    }
    context.out->flush();
    previous = std::move(sample);
    if (options.once || (options.frames && frame + 1 >= *options.frames)) return kExitOk;
    // A CLI's pacing, not the daemon's loop; q (or Ctrl-C) quits.
    if (keys->WaitForQuit(options.interval)) return kExitOk;
  }
}

}  // namespace pincer::ctl
