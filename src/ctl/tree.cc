#include "ctl/tree.h"

#include <set>

#include "ctl/format.h"

namespace pincer::ctl {
namespace {

std::vector<std::string> ChildIds(const nlohmann::json* task) {
  std::vector<std::string> ids;
  if (!task) return ids;
  auto it = task->find("children");
  if (it == task->end() || !it->is_array()) return ids;
  for (const auto& child : *it) {
    if (child.is_string()) ids.push_back(child.get<std::string>());
  }
  return ids;
}

std::string SkillsText(const nlohmann::json& task) {
  auto it = task.find("skills");
  if (it == task.end() || !it->is_array() || it->empty()) return "[]";
  std::string text = "[";
  for (const auto& skill : *it) {
    if (text.size() > 1) text += ",";
    text += skill.is_string() ? skill.get<std::string>() : DumpJson(skill);
  }
  return text + "]";
}

struct Drawer {
  const TaskLookup& find;
  const std::string& mark;
  std::set<std::string> seen;
  std::string out;

  void Draw(const std::string& id, const std::string& lead, const std::string& branch,
            const std::string& rest) {
    out += lead + branch + id;
    const nlohmann::json* task = find(id);
    if (task) out += "  " + Field(*task, "state") + "  " + SkillsText(*task);
    if (!mark.empty() && id == mark) out += "  <";
    if (!seen.insert(id).second) {
      out += "  (again)\n";
      return;
    }
    out += "\n";
    const std::vector<std::string> children = ChildIds(task);
    for (std::size_t i = 0; i < children.size(); ++i) {
      const bool last = i + 1 == children.size();
      Draw(children[i], lead + rest, last ? "└─ " : "├─ ", last ? "   " : "│  ");
    }
  }
};

nlohmann::json Node(const std::string& id, const TaskLookup& find, std::set<std::string>& seen) {
  nlohmann::json node = {{"id", id}};
  const nlohmann::json* task = find(id);
  if (task) {
    node["state"] = task->value("state", nlohmann::json());
    node["skills"] = task->value("skills", nlohmann::json::array());
  }
  nlohmann::json children = nlohmann::json::array();
  if (seen.insert(id).second) {
    for (const std::string& child : ChildIds(task)) children.push_back(Node(child, find, seen));
  }
  node["children"] = std::move(children);
  return node;
}

}  // namespace

std::string RenderTree(const std::vector<std::string>& roots, const TaskLookup& find,
                       const std::string& mark) {
  Drawer drawer{find, mark, {}, {}};
  for (const std::string& root : roots) drawer.Draw(root, "", "", "");
  return drawer.out;
}

nlohmann::json TreeJson(const std::vector<std::string>& roots, const TaskLookup& find) {
  std::set<std::string> seen;
  nlohmann::json trees = nlohmann::json::array();
  for (const std::string& root : roots) trees.push_back(Node(root, find, seen));
  return trees;
}

std::vector<std::string> TreeRoots(const nlohmann::json& tasks) {
  std::set<std::string> listed;
  for (const auto& task : tasks) listed.insert(Field(task, "id"));
  std::vector<std::string> roots;
  for (const auto& task : tasks) {
    auto parent = task.find("parent");
    if (parent == task.end() || !parent->is_string() || !listed.count(parent->get<std::string>())) {
      roots.push_back(Field(task, "id"));
    }
  }
  return roots;
}

}  // namespace pincer::ctl
