#include "pipeline/offset_tracker.h"

#include <algorithm>

#include "core/check.h"

namespace embedstream::pipeline {

void OffsetTracker::Track(const std::string& topic, int32_t partition, int64_t offset) {
  auto& p = partitions_[{topic, partition}];
  ES_CHECK(p.pending.empty() || p.pending.back().first < offset);
  p.pending.emplace_back(offset, false);
  ++inflight_;
}

bool OffsetTracker::Ack(const std::string& topic, int32_t partition, int64_t offset) {
  auto it = partitions_.find({topic, partition});
  if (it == partitions_.end()) return false;
  auto& p = it->second;
  auto pos = std::lower_bound(p.pending.begin(), p.pending.end(), std::make_pair(offset, false),
                              [](const auto& a, const auto& b) { return a.first < b.first; });
  if (pos == p.pending.end() || pos->first != offset || pos->second) return false;
  pos->second = true;
  while (!p.pending.empty() && p.pending.front().second) {
    p.safe_next = p.pending.front().first + 1;
    p.pending.pop_front();
    p.advanced = true;
    --inflight_;
  }
  return true;
}

std::vector<CommitPoint> OffsetTracker::TakeCommittable() {
  std::vector<CommitPoint> out;
  for (auto& [key, p] : partitions_) {
    if (!p.advanced) continue;
    p.advanced = false;
    out.push_back({key.first, key.second, p.safe_next});
  }
  return out;
}

void OffsetTracker::Drop(const std::string& topic, int32_t partition) {
  auto it = partitions_.find({topic, partition});
  if (it == partitions_.end()) return;
  // Entries acknowledged out of order still sit in `pending`: all count.
  inflight_ -= it->second.pending.size();
  partitions_.erase(it);
}

void OffsetTracker::Clear() {
  partitions_.clear();
  inflight_ = 0;
}

size_t OffsetTracker::inflight(const std::string& topic, int32_t partition) const {
  auto it = partitions_.find({topic, partition});
  return it == partitions_.end() ? 0 : it->second.pending.size();
}

}  // namespace embedstream::pipeline
