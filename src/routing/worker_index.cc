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
  // A newcomer has never been picked: it takes the next turn, then goes to
  // the back of the rotation like everyone else. Nothing it must catch up on.
  Entry e{ProfileFor(skills), std::max(capacity, 1)};
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
  if (last_id_ == id) last_ = nullptr;
  workers_.erase(it);
}

template <typename F>
void WorkerIndex::Relist(WorkerId id, F&& change) {
  Entry& e = At(id);
  Profile& p = profiles_[e.profile];
  const Entry before = e;
  change(e);
  // Each order is touched only where the worker's place in it changed: a
  // release moves a worker in the load order, not in the rotation.
  Rekey(p.rotation, before.routable, before.turn_key(id), e.routable, e.turn_key(id));
  Rekey(p.by_turn, before.free(), before.turn_key(id), e.free(), e.turn_key(id));
  Rekey(p.by_load, before.free(), before.load_key(id), e.free(), e.load_key(id));
}

template <typename Set, typename Key>
void WorkerIndex::Rekey(Set& set, bool was_in, const Key& old_key, bool now_in,
                        const Key& new_key) {
  if (was_in == now_in && old_key == new_key) return;
  typename Set::node_type node;
  if (was_in) node = set.extract(old_key);
  if (!now_in) return;
  if (node) {
    node.value() = new_key;  // the node is reused, not freed and allocated again
    set.insert(std::move(node));
  } else {
    set.insert(new_key);
  }
}

void WorkerIndex::SetInflight(WorkerId id, int inflight) {
  Relist(id, [&](Entry& e) { e.inflight = inflight; });
}

void WorkerIndex::Picked(WorkerId id, int inflight) {
  Relist(id, [&](Entry& e) {
    e.inflight = inflight;
    e.last_pick = ++pick_clock_;
  });
}

void WorkerIndex::SetRoutable(WorkerId id, bool routable) {
  Entry& e = At(id);
  if (e.routable == routable) return;
  profiles_[e.profile].routable += routable ? 1 : -1;
  Relist(id, [&](Entry& entry) { entry.routable = routable; });
}

void WorkerIndex::MarkPicked(WorkerId id) {
  Relist(id, [&](Entry& e) { e.last_pick = ++pick_clock_; });
}

std::optional<WorkerIndex::TurnKey> WorkerIndex::TurnHolder(
    std::span<const ProfileId> profiles) const {
  std::optional<TurnKey> first;
  for (ProfileId p : profiles) {
    const auto& rotation = profiles_[p].rotation;
    if (!rotation.empty() && (!first || *rotation.begin() < *first)) first = *rotation.begin();
  }
  return first;
}

bool WorkerIndex::HasFreeSlot(WorkerId id) const {
  if (id == last_id_ && last_) return last_->free();
  auto it = workers_.find(id);
  return it != workers_.end() && it->second.free();
}

const WorkerIndex::Entry& WorkerIndex::At(WorkerId id) const {
  if (id != last_id_ || !last_) {
    last_ = &workers_.at(id);
    last_id_ = id;
  }
  return *last_;
}

void WorkerIndex::Unlist(WorkerId id, const Entry& e) {
  Profile& p = profiles_[e.profile];
  if (e.routable) p.rotation.erase(e.turn_key(id));
  if (!e.free()) return;
  p.by_turn.erase(e.turn_key(id));
  p.by_load.erase(e.load_key(id));
}

void WorkerIndex::List(WorkerId id, const Entry& e) {
  Profile& p = profiles_[e.profile];
  if (e.routable) p.rotation.insert(e.turn_key(id));
  if (!e.free()) return;
  p.by_turn.insert(e.turn_key(id));
  p.by_load.insert(e.load_key(id));
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
