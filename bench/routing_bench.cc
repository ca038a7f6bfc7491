// Routing time against the number of registered workers, for each
// strategy (issue 6: at 10,000 workers a decision stays within 2x of its
// cost at 10, because WorkerIndex keeps per-profile ordered sets and a
// decision never scans workers).
//
// BM_Decision: the choice of a worker for a task: find the matching
// profiles, let the strategy pick. BM_Assignment: the decision plus what
// the dispatcher then records in the index for it (MarkPicked and the
// in-flight count going up), and the release of the slot when the result
// comes back, so the index is in the same state for the next iteration.
// The recording re-keys the worker in ordered sets: log(workers) and,
// at 10,000 workers, cache misses.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "routing/strategy.h"
#include "routing/worker_index.h"

namespace pincer {
namespace {

// Workers spread over 8 skill profiles (some specialists, some
// generalists), as a pool of agents would be; capacity 4 each.
void Populate(WorkerIndex& index, int workers) {
  const std::vector<std::vector<std::string>> profiles = {
      {"code"},   {"code", "review"}, {"echo"},   {"code", "echo"},
      {"search"}, {"code", "search"}, {"review"}, {"code", "echo", "review", "search"}};
  for (int i = 0; i < workers; ++i) {
    index.Add(static_cast<WorkerId>(i + 1), profiles[i % profiles.size()], 4);
    // Some load, so least_connections has an order to keep.
    index.SetInflight(static_cast<WorkerId>(i + 1), i % 3);
  }
}

void BM_Assignment(benchmark::State& state, const char* strategy_name) {
  WorkerIndex index;
  Populate(index, static_cast<int>(state.range(0)));
  auto strategy = MakeStrategy(strategy_name);
  const std::vector<std::string> task_skills = {"code"};
  for (auto _ : state) {
    const auto& matching = index.Matching(task_skills);
    const WorkerId w = strategy->Pick(index, matching, task_skills.size());
    benchmark::DoNotOptimize(w);
    index.MarkPicked(w);
    const int before = static_cast<int>((w - 1) % 3);
    index.SetInflight(w, before + 1);
    index.SetInflight(w, before);
  }
  state.counters["workers"] = static_cast<double>(state.range(0));
}

// The choice alone (matching profiles + strategy pick), without the index
// bookkeeping that follows it: this is the part that must not scan.
void BM_Decision(benchmark::State& state, const char* strategy_name) {
  WorkerIndex index;
  Populate(index, static_cast<int>(state.range(0)));
  auto strategy = MakeStrategy(strategy_name);
  const std::vector<std::string> task_skills = {"code"};
  for (auto _ : state) {
    const auto& matching = index.Matching(task_skills);
    benchmark::DoNotOptimize(strategy->Pick(index, matching, task_skills.size()));
  }
}

BENCHMARK_CAPTURE(BM_Decision, round_robin, "round_robin")->Arg(10)->Arg(1000)->Arg(10000);
BENCHMARK_CAPTURE(BM_Decision, least_connections, "least_connections")
    ->Arg(10)
    ->Arg(1000)
    ->Arg(10000);
BENCHMARK_CAPTURE(BM_Decision, skill_match, "skill_match")->Arg(10)->Arg(1000)->Arg(10000);
BENCHMARK_CAPTURE(BM_Assignment, round_robin, "round_robin")->Arg(10)->Arg(1000)->Arg(10000);
BENCHMARK_CAPTURE(BM_Assignment, least_connections, "least_connections")
    ->Arg(10)
    ->Arg(1000)
    ->Arg(10000);
BENCHMARK_CAPTURE(BM_Assignment, skill_match, "skill_match")->Arg(10)->Arg(1000)->Arg(10000);

}  // namespace
}  // namespace pincer

BENCHMARK_MAIN();
