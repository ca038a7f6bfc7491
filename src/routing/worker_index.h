// The routing view of connected workers, indexed so that a decision never
// scans every worker. Workers with the same skill set share a Profile; each
// profile keeps its free, routable workers ordered two ways (by rotation and
// by load), and all its routable workers in rotation order. A task's candidates are the profiles
// whose skills cover the task's, so a decision costs O(matching profiles), not O(workers).
//
// Eligibility — connected, routable (not draining or ejected), a free slot,
// the right skills — is enforced here, once, for every strategy.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace pincer {

using WorkerId = uint64_t;  // 0 = "no worker"
using ProfileId = uint32_t;

class WorkerIndex {
 public:
  struct LoadKey {
    int inflight;
    int capacity;
    uint64_t last_pick;
    WorkerId id;
    bool operator<(const LoadKey& o) const;  // by inflight/capacity, then last_pick, then id
    bool operator==(const LoadKey&) const = default;
  };
  // Round-robin order: least recently picked first (a worker that was never
  // picked, such as one that just joined, has last_pick 0: it takes the next
  // turn), then by id. Picking a worker moves it to the back.
  struct TurnKey {
    uint64_t last_pick;
    WorkerId id;
    auto operator<=>(const TurnKey&) const = default;
  };
  struct Profile {
    std::vector<std::string> skills;
    int connected = 0;           // all workers of this profile, routable or not
    int routable = 0;            // not draining/ejected
    std::set<TurnKey> by_turn;   // free
    std::set<LoadKey> by_load;   // free
    std::set<TurnKey> rotation;  // routable, free or not
  };

  // REQUIRES: `skills` sorted and unique; `id` not present; capacity >= 1.
  void Add(WorkerId id, const std::vector<std::string>& skills, int capacity);
  void Remove(WorkerId id);
  void SetInflight(WorkerId id, int inflight);
  void SetRoutable(WorkerId id, bool routable);
  // Records that `id` was just given a task (moves it to the back of the rotation).
  void MarkPicked(WorkerId id);
  // MarkPicked and SetInflight in one step.
  void Picked(WorkerId id, int inflight);

  // The routable worker of `profiles` whose turn it is (the least recently
  // picked, free or not); nullopt when none is routable. Round-robin lets
  // only that worker take a waiting task (bounded by the dispatcher's turn
  // wait).
  std::optional<TurnKey> TurnHolder(std::span<const ProfileId> profiles) const;
  TurnKey Turn(WorkerId id) const { return At(id).turn_key(id); }

  bool Contains(WorkerId id) const { return workers_.count(id) != 0; }
  bool HasFreeSlot(WorkerId id) const;
  ProfileId ProfileOf(WorkerId id) const { return At(id).profile; }

  // Profiles whose skills include all of `task_skills` (sorted, unique).
  // The reference stays valid until the next Add of a new skill set.
  const std::vector<ProfileId>& Matching(const std::vector<std::string>& task_skills);
  const Profile& profile(ProfileId p) const { return profiles_[p]; }
  const std::vector<Profile>& profiles() const { return profiles_; }

  // True when some connected worker has every skill in `task_skills`.
  bool AnyConnected(const std::vector<std::string>& task_skills);

 private:
  struct Entry {
    ProfileId profile;
    int capacity;
    int inflight = 0;
    uint64_t last_pick = 0;  // 0: never picked since it connected
    bool routable = true;
    bool free() const { return routable && inflight < capacity; }
    // Its keys in the profile's orders (`rotation` and `by_turn`, `by_load`).
    TurnKey turn_key(WorkerId id) const { return {last_pick, id}; }
    LoadKey load_key(WorkerId id) const { return {inflight, capacity, last_pick, id}; }
  };
  // The entry of `id`, which must be present (throws std::out_of_range if
  // not). The last one found is kept at hand: one routing decision and its
  // bookkeeping ask about the same worker several times.
  const Entry& At(WorkerId id) const;
  Entry& At(WorkerId id) { return const_cast<Entry&>(std::as_const(*this).At(id)); }
  void Unlist(WorkerId id, const Entry& e);
  void List(WorkerId id, const Entry& e);
  // Applies `change` to the worker's entry and moves it in the orders.
  // Every assignment and release comes through here, so the set nodes are
  // reused (extract, rekey, insert) instead of freed and allocated again.
  template <typename F>
  void Relist(WorkerId id, F&& change);
  // Moves a worker's key in one order: out if it was in, in if it is now;
  // nothing when neither its membership nor its key changed.
  template <typename Set, typename Key>
  static void Rekey(Set& set, bool was_in, const Key& old_key, bool now_in, const Key& new_key);
  ProfileId ProfileFor(const std::vector<std::string>& skills);

  std::unordered_map<WorkerId, Entry> workers_;
  mutable WorkerId last_id_ = 0;
  mutable const Entry* last_ = nullptr;
  std::vector<Profile> profiles_;
  std::map<std::vector<std::string>, ProfileId> profile_ids_;
  std::map<std::vector<std::string>, std::vector<ProfileId>> matching_cache_;
  uint64_t pick_clock_ = 0;
};

}  // namespace pincer
