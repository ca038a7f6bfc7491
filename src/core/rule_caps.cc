#include "core/rule_caps.h"

#include <algorithm>

namespace pincer {

void RuleCaps::Reconfigure(const std::vector<RoutingRule>& rules) {
  std::vector<Rule> next;
  any_ = false;
  for (std::size_t i = 0; i < rules.size(); ++i) {
    Rule r;
    r.skills = rules[i].skills;
    std::sort(r.skills.begin(), r.skills.end());
    r.skills.erase(std::unique(r.skills.begin(), r.skills.end()), r.skills.end());
    r.index = i;
    r.max_running = rules[i].max_running.value_or(0);
    r.rate = rules[i].rate.value_or(RateCap{});
    r.capped = r.max_running > 0 || r.rate.tasks > 0;
    any_ = any_ || r.capped;
    // A rule of the same skills keeps its starts, its rate changed or not:
    // a reload does not let a burst through.
    for (Rule& old : rules_) {
      if (old.skills == r.skills && r.rate.tasks > 0) {
        r.starts = std::move(old.starts);
        break;
      }
    }
    next.push_back(std::move(r));
  }
  rules_ = std::move(next);
  class_rule_.clear();
}

int RuleCaps::Resolve(ClassId c, const std::vector<std::string>& class_skills) {
  int found = kNone;
  for (std::size_t i = 0; i < rules_.size(); ++i) {
    const Rule& r = rules_[i];
    if (RuleMatches(r.skills, class_skills)) {
      if (r.capped) found = static_cast<int>(i);
      break;  // the first match is the class's rule, capped or not
    }
  }
  if (class_rule_.size() <= c) class_rule_.resize(c + 1, kUnknown);
  class_rule_[c] = found;
  return found;
}

void RuleCaps::Expire(Rule& rule, TimePoint now) {
  while (!rule.starts.empty() && rule.starts.front() + rule.rate.per <= now)
    rule.starts.pop_front();
}

bool RuleCaps::Open(int r, TimePoint now) {
  Rule& rule = rules_[r];
  if (rule.max_running > 0 && rule.running >= rule.max_running) return false;
  if (rule.rate.tasks > 0) {
    Expire(rule, now);
    if (rule.starts.size() >= static_cast<std::size_t>(rule.rate.tasks)) return false;
  }
  return true;
}

std::optional<TimePoint> RuleCaps::ReopensAt(int r, TimePoint now) {
  Rule& rule = rules_[r];
  if (rule.max_running > 0 && rule.running >= rule.max_running) return std::nullopt;
  if (rule.rate.tasks <= 0) return std::nullopt;
  Expire(rule, now);
  if (rule.starts.size() < static_cast<std::size_t>(rule.rate.tasks)) return std::nullopt;
  return rule.starts.front() + rule.rate.per;
}

void RuleCaps::Started(int r, TimePoint now) {
  Rule& rule = rules_[r];
  ++rule.running;
  if (rule.rate.tasks > 0) {
    Expire(rule, now);
    rule.starts.push_back(now);
  }
}

void RuleCaps::Stopped(int r) {
  if (rules_[r].running > 0) --rules_[r].running;
}

pincer::Why RuleCaps::Why(int r, TimePoint now) {
  const Rule& rule = rules_[r];
  std::string skills;
  for (const std::string& s : rule.skills) skills += (skills.empty() ? "" : ", ") + s;
  const std::string who =
      "held by routing.rules[" + std::to_string(rule.index) + "] (skills " + skills + "): ";
  if (rule.max_running > 0 && rule.running >= rule.max_running) {
    return {WhyCode::kRuleMaxRunning, who + "max_running " + std::to_string(rule.max_running) +
                                          " reached (" + std::to_string(rule.running) +
                                          " running)"};
  }
  if (const auto at = ReopensAt(r, now)) {
    const auto wait = std::chrono::duration_cast<Duration>(*at - now);
    return {WhyCode::kRuleRate, who + "rate " + std::to_string(rule.rate.tasks) + " per " +
                                    FormatDuration(rule.rate.per) + " reached (next start in " +
                                    FormatDuration(wait) + ")"};
  }
  return {WhyCode::kRuleRate, who + "cap open"};  // not reached: asked only when closed
}

}  // namespace pincer
