// `--tree` for `pincerctl tasks` and `status`: tasks drawn as their
// subtask trees (each task's `parent` and `children`, docs/protocol.md),
// one line per task: its id, state and skills. Pure.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace pincer::ctl {

// The task object of an id, or nullptr when it is not known (a child not
// listed, or gone): drawn as its id alone.
using TaskLookup = std::function<const nlohmann::json*(const std::string& id)>;

// Draws each root and, below it, its children in their order, indented
// with box-drawing lines. `mark`: a task id to point out ("" = none). A task
// met twice (a cycle in bad data) is not drawn again.
std::string RenderTree(const std::vector<std::string>& roots, const TaskLookup& find,
                       const std::string& mark = "");

// The same trees as JSON, for --json: [{"id","state","skills","children":[…]}].
nlohmann::json TreeJson(const std::vector<std::string>& roots, const TaskLookup& find);

// The tasks of a list whose parent is not in the list: the roots of what
// the list shows, in its order.
std::vector<std::string> TreeRoots(const nlohmann::json& tasks);

}  // namespace pincer::ctl
