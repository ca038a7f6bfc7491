#include "core/usage_book.h"

namespace pincer {

std::string UsageBook::SkillsLabel(const std::vector<std::string>& skills) {
  if (skills.empty()) return "any";  // a task without skills fits any worker
  std::string s;
  for (const auto& k : skills) {
    if (!s.empty()) s += ',';
    s += k;
  }
  return s;
}

void UsageBook::AddTo(ByName& into, std::string_view name, const TaskUsage& u) {
  auto it = into.find(name);
  if (it == into.end()) {
    if (into.size() >= kMaxKeys) name = "other";
    it = into.try_emplace(std::string(name)).first;
  }
  it->second.Add(u);
}

void UsageBook::Add(std::string_view worker, const std::vector<std::string>& skills,
                    const TaskUsage& u) {
  TaskUsage counts = u;
  counts.model.clear();  // the maps' keys say it
  total_.Add(counts);
  AddTo(by_worker_, worker, counts);
  AddTo(by_skill_, SkillsLabel(skills), counts);
  AddTo(by_model_, u.model.empty() ? std::string_view("none") : std::string_view(u.model), counts);
}

}  // namespace pincer
