#include "core/triage.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "protocol/messages.h"  // kMaxSkills, kMaxSkillBytes

namespace pincer {

std::string TriageKey(TaskId id) { return std::string(kTriageKeyPrefix) + TaskIdString(id); }

std::string_view TriageStateName(TriageDecision::State s) {
  switch (s) {
    case TriageDecision::State::kPending:
      return "pending";
    case TriageDecision::State::kDecided:
      return "decided";
    case TriageDecision::State::kFallback:
      return "fallback";
  }
  return "pending";
}

TriageDecision DecideTriage(const TaskRecord& step) {
  TriageDecision d;
  if (!IsEnded(step.state)) return d;
  d.state = TriageDecision::State::kFallback;
  if (step.state != TaskState::kSucceeded) {
    d.error = "triage step " + TaskIdString(step.id) + " ended " +
              std::string(TaskStateName(step.state)) +
              (step.error.empty() ? "" : ": " + step.error);
    return d;
  }
  constexpr std::string_view kShape = R"(its output is not {"skills": [skill names]})";
  const nlohmann::json out = nlohmann::json::parse(step.output, nullptr, false);
  const nlohmann::json* list = nullptr;
  if (out.is_object()) {
    if (auto it = out.find("skills"); it != out.end() && it->is_array()) list = &*it;
  }
  if (!list) {
    d.error = "triage step " + TaskIdString(step.id) + ": " + std::string(kShape);
    return d;
  }
  if (list->size() > kMaxSkills) {
    d.error = "triage step " + TaskIdString(step.id) + ": more than " + std::to_string(kMaxSkills) +
              " skills";
    return d;
  }
  std::vector<std::string> skills;
  for (const nlohmann::json& s : *list) {
    if (!s.is_string() || s.get_ref<const std::string&>().empty() ||
        s.get_ref<const std::string&>().size() > kMaxSkillBytes) {
      d.error = "triage step " + TaskIdString(step.id) + ": " + std::string(kShape) +
                " (a skill must be a non-empty string of at most " +
                std::to_string(kMaxSkillBytes) + " bytes)";
      return d;
    }
    skills.push_back(s.get<std::string>());
  }
  std::sort(skills.begin(), skills.end());
  skills.erase(std::unique(skills.begin(), skills.end()), skills.end());
  d.state = TriageDecision::State::kDecided;
  d.skills = std::move(skills);
  return d;
}

}  // namespace pincer
