#pragma once
// OffsetTracker: which consumed offsets every sink has acknowledged, per
// topic-partition, and so which offset is safe to commit: one past the end
// of the longest fully acknowledged prefix. A record acknowledged out of
// order waits for the ones before it (at-least-once, order of commits kept).
// Single-threaded: owned by the pipeline thread.
//
// Example:
//   tracker.Track("t", 0, 10); tracker.Track("t", 0, 11);
//   tracker.Ack("t", 0, 11);            // nothing committable yet
//   tracker.Ack("t", 0, 10);            // TakeCommittable() -> {t, 0, 12}

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace embedstream::pipeline {

struct CommitPoint {
  std::string topic;
  int32_t partition = 0;
  int64_t next_offset = 0;  // the offset the group resumes from
};

class OffsetTracker {
 public:
  // Offsets of one partition must be tracked in increasing order.
  void Track(const std::string& topic, int32_t partition, int64_t offset);
  // Returns false when the offset is not tracked (e.g. its partition was dropped).
  bool Ack(const std::string& topic, int32_t partition, int64_t offset);
  // Partitions whose safe offset advanced since the last call.
  std::vector<CommitPoint> TakeCommittable();
  // Forget a partition (revoked in a rebalance): its unacknowledged records
  // will be consumed again by the next owner.
  void Drop(const std::string& topic, int32_t partition);
  void Clear();

  size_t inflight() const { return inflight_; }
  size_t inflight(const std::string& topic, int32_t partition) const;

 private:
  struct PartitionState {
    std::deque<std::pair<int64_t, bool>> pending;  // (offset, acknowledged)
    int64_t safe_next = -1;
    bool advanced = false;
  };
  std::map<std::pair<std::string, int32_t>, PartitionState> partitions_;
  size_t inflight_ = 0;
};

}  // namespace embedstream::pipeline
