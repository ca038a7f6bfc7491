#include "dashboard/queues.h"

#include <algorithm>
#include <unordered_map>
#include <vector>

namespace pincer::dashboard {

nlohmann::json QueuesView(Dispatcher& dispatcher) {
  struct Group {
    const Task* oldest = nullptr;  // the first queued, in submit order
    int64_t depth = 0;
    int64_t waiting_in_queue = 0;  // in its class queue (not a session's, a backoff's)
  };
  // By skill class; classes with the same skills (in another order) stay
  // apart, as the dispatcher keeps them.
  std::unordered_map<ClassId, Group> groups;
  std::vector<ClassId> order;
  dispatcher.tasks().ForEachLive([&](const Task& t) {
    if (t.rec.state != TaskState::kQueued) return;
    auto [it, added] = groups.try_emplace(t.cls);
    if (added) order.push_back(t.cls);
    Group& g = it->second;
    if (!g.oldest || t.seq < g.oldest->seq) g.oldest = &t;
    ++g.depth;
    g.waiting_in_queue += t.where == Task::Where::kQueue;
  });
  nlohmann::json list = nlohmann::json::array();
  std::stable_sort(order.begin(), order.end(),
                   [&](ClassId a, ClassId b) { return groups[a].depth > groups[b].depth; });
  for (ClassId cls : order) {
    const Group& g = groups[cls];
    const Task& t = *g.oldest;
    std::string label;
    for (const auto& s : t.rec.skills) label += (label.empty() ? "" : ",") + s;
    if (label.empty()) label = "any";
    const Why why = dispatcher.WaitReason(t);
    const bool routable = dispatcher.workers().index().AnyConnected(t.rec.skills);
    list.push_back({{"skills", t.rec.skills},
                    {"label", label},
                    {"depth", g.depth},
                    {"oldest_id", t.id_string()},
                    {"oldest_ms", t.rec.created_ms},
                    {"why", why.text},
                    {"why_code", WhyCodeName(why.code)},
                    {"unroutable", routable ? 0 : g.waiting_in_queue}});
  }
  return list;
}

}  // namespace pincer::dashboard
