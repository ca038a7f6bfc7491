// Caps per routing rule (routing.rules[].max_running and .rate): how many
// of a rule's tasks run at once, how many start per window. The dispatcher
// asks Open() before it starts a task of a capped rule; a task that may not
// start stays queued, and Why() says which cap holds it.
//
// The rule of a skill class is the first rule whose skills the class
// covers (the one that also picks its strategy). Classes of uncapped rules
// cost one vector lookup; no rule capped, one branch.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "config/config.h"
#include "core/why.h"
#include "queue/task_queue.h"

namespace pincer {

// Whether a rule of skills `rule` (sorted, unique) matches a task of
// skills `task` (sorted, unique): the task needs all of the rule's skills,
// and a rule of no skills (a triage rule) matches only tasks of none.
inline bool RuleMatches(const std::vector<std::string>& rule,
                        const std::vector<std::string>& task) {
  if (rule.empty()) return task.empty();
  return std::includes(task.begin(), task.end(), rule.begin(), rule.end());
}

class RuleCaps {
 public:
  static constexpr int kNone = -1;

  // Takes the rules of a (new) config. Start windows of a rule whose skills
  // are unchanged are kept; running counts start at 0 (the caller
  // counts its running tasks again with Started).
  void Reconfigure(const std::vector<RoutingRule>& rules);
  bool any() const { return any_; }

  // The capped rule of class `c` (skills `class_skills`), or kNone.
  int RuleOf(ClassId c, const std::vector<std::string>& class_skills) {
    if (c < class_rule_.size() && class_rule_[c] != kUnknown) return class_rule_[c];
    return Resolve(c, class_skills);
  }
  // May a task of rule `r` start at `now`?
  bool Open(int r, TimePoint now);
  // When a closed rate window lets the next start in; nullopt when the rule
  // is held by max_running (a task's end opens it) or open.
  std::optional<TimePoint> ReopensAt(int r, TimePoint now);
  void Started(int r, TimePoint now);
  void Stopped(int r);
  // Only the count, for a reconfigure's recount (no start is recorded).
  void CountRunning(int r) { ++rules_[r].running; }

  // Why a task of rule `r` waits, when !Open(r, now): the rule and its cap,
  // e.g. "held by routing.rules[0] (skills tts): max_running 1 reached",
  // with its why_code (rule_max_running or rule_rate). Every text a cap
  // gives is made here.
  pincer::Why Why(int r, TimePoint now);

 private:
  static constexpr int kUnknown = -2;
  struct Rule {
    std::vector<std::string> skills;  // sorted, unique
    std::size_t index = 0;            // in routing.rules
    bool capped = false;
    int max_running = 0;  // 0: no cap
    RateCap rate;         // tasks 0: no cap
    int running = 0;
    std::deque<TimePoint> starts;  // within the last rate.per, oldest first
  };
  int Resolve(ClassId c, const std::vector<std::string>& class_skills);
  void Expire(Rule& rule, TimePoint now);

  std::vector<Rule> rules_;
  std::vector<int> class_rule_;
  bool any_ = false;
};

}  // namespace pincer
