#include "routing/worker_index.h"

#include <algorithm>

namespace pincer {

bool WorkerIndex::LoadKey::operator<(const LoadKey& o) const {
  // inflight/capacity < o.inflight/o.capacity, compared without division.
  const int64_t lhs = int64_t{inflight} * o.capacity;
  const int64_t rhs = int64_t{o.inflight} * capacity;
  if (lhs != rhs) return lhs < rhs;
  if (last_pick != o.last_pick) return last_pick < o.last_pick;
  return id < o.id;
}

ProfileId WorkerIndex::ProfileFor(const std::vector<std::string>& skills) {
  auto [it, inserted] = profile_ids_.try_emplace(skills, static_cast<ProfileId>(profiles_.size()));
  if (inserted) {
    profiles_.push_back(Profile{skills, 0, 0, {}, {}, {}});
    matching_cache_.clear();  // a new profile may match any cached task skill set
  }
  return it->second;
}

void WorkerIndex::Add(WorkerId id, const std::vector<std::string>& skills, int capacity) {
  Entry e{ProfileFor(skills), std::max(capacity, 1)};
  // A newcomer starts level with the least-served worker, so it takes its
  // turn in the rotation instead of catching up on everyone's history.
  std::optional<uint64_t> least;
  for (const Profile& p : profiles_) {
    if (!p.served.empty() && (!least || p.served.begin()->first < *least)) {
      least = p.served.begin()->first;
    }
  }
  e.served = least.value_or(0);
  Profile& p = profiles_[e.profile];
  ++p.connected;
  ++p.routable;
  List(id, e);
  workers_.emplace(id, e);
}

void WorkerIndex::Remove(WorkerId id) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  Unlist(id, it->second);
  Profile& p = profiles_[it->second.profile];
  --p.connected;
  if (it->second.routable) --p.routable;
  workers_.erase(it);
}

template <typename F>
void WorkerIndex::Relist(WorkerId id, F&& change) {
  Entry& e = workers_.at(id);
  Profile& p = profiles_[e.profile];
  std::set<std::pair<uint64_t, WorkerId>>::node_type served;
  std::set<TurnKey>::node_type turn;
  std::set<LoadKey>::node_type load;
  if (e.routable) served = p.served.extract({e.served, id});
  if (e.free()) {
    turn = p.by_turn.extract(TurnKey{e.served, e.last_pick, id});
    load = p.by_load.extract(LoadKey{e.inflight, e.capacity, e.last_pick, id});
  }
  change(e);
  if (e.routable) {
    if (served) {
      served.value() = {e.served, id};
      p.served.insert(std::move(served));
    } else {
      p.served.insert({e.served, id});
    }
  }
  if (e.free()) {
    const TurnKey tk{e.served, e.last_pick, id};
    const LoadKey lk{e.inflight, e.capacity, e.last_pick, id};
    if (turn) {
      turn.value() = tk;
      p.by_turn.insert(std::move(turn));
      load.value() = lk;
      p.by_load.insert(std::move(load));
    } else {
      p.by_turn.insert(tk);
      p.by_load.insert(lk);
    }
  }
}

void WorkerIndex::SetInflight(WorkerId id, int inflight) {
  Relist(id, [&](Entry& e) { e.inflight = inflight; });
}

void WorkerIndex::Picked(WorkerId id, int inflight) {
  Relist(id, [&](Entry& e) {
    e.inflight = inflight;
    e.last_pick = ++pick_clock_;
    ++e.served;
  });
}

void WorkerIndex::SetRoutable(WorkerId id, bool routable) {
  Entry& e = workers_.at(id);
  if (e.routable == routable) return;
  profiles_[e.profile].routable += routable ? 1 : -1;
  Relist(id, [&](Entry& entry) { entry.routable = routable; });
}

void WorkerIndex::MarkPicked(WorkerId id) {
  Relist(id, [&](Entry& e) {
    e.last_pick = ++pick_clock_;
    ++e.served;
  });
}

std::optional<uint64_t> WorkerIndex::MinServed(std::span<const ProfileId> profiles) const {
  std::optional<uint64_t> least;
  for (ProfileId p : profiles) {
    const auto& served = profiles_[p].served;
    if (!served.empty() && (!least || served.begin()->first < *least)) least = served.begin()->first;
  }
  return least;
}

bool WorkerIndex::HasFreeSlot(WorkerId id) const {
  auto it = workers_.find(id);
  return it != workers_.end() && it->second.free();
}

void WorkerIndex::Unlist(WorkerId id, const Entry& e) {
  Profile& p = profiles_[e.profile];
  if (e.routable) p.served.erase({e.served, id});
  if (!e.free()) return;
  p.by_turn.erase(TurnKey{e.served, e.last_pick, id});
  p.by_load.erase(LoadKey{e.inflight, e.capacity, e.last_pick, id});
}

void WorkerIndex::List(WorkerId id, const Entry& e) {
  Profile& p = profiles_[e.profile];
  if (e.routable) p.served.insert({e.served, id});
  if (!e.free()) return;
  p.by_turn.insert(TurnKey{e.served, e.last_pick, id});
  p.by_load.insert(LoadKey{e.inflight, e.capacity, e.last_pick, id});
}

const std::vector<ProfileId>& WorkerIndex::Matching(const std::vector<std::string>& task_skills) {
  auto it = matching_cache_.find(task_skills);
  if (it != matching_cache_.end()) return it->second;
  std::vector<ProfileId> match;
  for (ProfileId p = 0; p < profiles_.size(); ++p) {
    if (std::includes(profiles_[p].skills.begin(), profiles_[p].skills.end(), task_skills.begin(),
                      task_skills.end())) {
      match.push_back(p);
    }
  }
  return matching_cache_.emplace(task_skills, std::move(match)).first->second;
}

bool WorkerIndex::AnyConnected(const std::vector<std::string>& task_skills) {
  for (ProfileId p : Matching(task_skills)) {
    if (profiles_[p].connected > 0) return true;
  }
  return false;
}

}  // namespace pincer
