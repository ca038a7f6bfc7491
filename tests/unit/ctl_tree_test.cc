// `--tree` drawing (ctl/tree.h): roots of a list, box lines, the task
// asked for pointed out, children not known drawn as ids, bad data (a
// cycle) drawn once.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "ctl/tree.h"

namespace pincer::ctl {
namespace {

using nlohmann::json;

json Task(const std::string& id, const std::string& state, json parent, json children) {
  return {{"id", id},
          {"state", state},
          {"skills", {"s"}},
          {"parent", std::move(parent)},
          {"children", std::move(children)}};
}

TEST(CtlTreeTest, DrawsEachRootWithItsChildrenInOrder) {
  const json tasks = json::array(
      {Task("t1", "running", nullptr, {"t2", "t3"}), Task("t2", "succeeded", "t1", json::array()),
       Task("t3", "running", "t1", {"t4", "t9"}), Task("t4", "queued", "t3", json::array()),
       Task("t5", "failed", nullptr, json::array())});
  std::map<std::string, const json*> by_id;
  for (const auto& t : tasks) by_id[t["id"]] = &t;
  const TaskLookup find = [&](const std::string& id) -> const json* {
    auto it = by_id.find(id);
    return it == by_id.end() ? nullptr : it->second;
  };
  const std::vector<std::string> roots = TreeRoots(tasks);
  EXPECT_EQ(roots, std::vector<std::string>({"t1", "t5"}));
  EXPECT_EQ(RenderTree(roots, find, "t4"),
            "t1  running  [s]\n"
            "├─ t2  succeeded  [s]\n"
            "└─ t3  running  [s]\n"
            "   ├─ t4  queued  [s]  <\n"
            "   └─ t9\n"
            "t5  failed  [s]\n");
  const json trees = TreeJson({"t1"}, find);
  ASSERT_EQ(trees.size(), 1u);
  EXPECT_EQ(trees[0]["children"][1]["children"][1],
            json({{"id", "t9"}, {"children", json::array()}}));
}

TEST(CtlTreeTest, ACycleIsDrawnOnce) {
  const json a = Task("t1", "running", "t2", {"t2"});
  const json b = Task("t2", "running", "t1", {"t1"});
  const TaskLookup find = [&](const std::string& id) -> const json* {
    return id == "t1" ? &a : id == "t2" ? &b : nullptr;
  };
  EXPECT_EQ(RenderTree({"t1"}, find),
            "t1  running  [s]\n"
            "└─ t2  running  [s]\n"
            "   └─ t1  running  [s]  (again)\n");
}

}  // namespace
}  // namespace pincer::ctl
