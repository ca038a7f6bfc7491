// `pincerctl top`: a live view of pincerd, refreshed every second:
// workers, queue depth per skill set, throughput and error rate. Built on
// the ordinary `stats`, `workers` and `tasks --state queued` requests.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "ctl/command_context.h"

namespace pincer::ctl {

struct TopOptions {
  std::chrono::milliseconds interval{1000};
  // Print one frame and exit (also what happens when stdout is no terminal
  // and no --frames is given: a pipe wants a snapshot, not a movie).
  bool once = false;
  std::optional<int> frames;  // stop after this many frames
  bool clear_screen = true;   // redraw in place (stdout is a terminal)
};

// What one refresh fetched.
struct TopSample {
  std::int64_t at_ms = 0;
  nlohmann::json stats;    // the `stats` object
  nlohmann::json workers;  // the `workers` array
  nlohmann::json queued;   // the `tasks` array for state queued
};

// The queued-task listing asked for per refresh; queues longer than this
// are summarised from its first entries (the frame says so).
inline constexpr std::int64_t kTopQueuedLimit = 100000;

// One frame of text. Rates (ended/s, error share) compare with `previous`;
// without it they show as "-". Pure, for tests.
std::string RenderTopFrame(const std::string& addr, const TopSample& now,
                           const TopSample* previous);

// Runs the view until interrupted (Ctrl-C), or for TopOptions::frames /
// once. Returns the exit code (ctl/exit_code.h).
int RunTop(const CommandContext& context, const TopOptions& options);

}  // namespace pincer::ctl
