#pragma once
// KafkaConsumer: a librdkafka consumer-group member. Subscribes to topics,
// hands out records, commits offsets the caller says are safe, pauses and
// resumes intake, and reports partition changes. Auto-commit is off: only
// KafkaConsumer::Commit moves the group's offsets. One thread (the pipeline
// thread) calls everything; librdkafka's own threads fetch in the background.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "pipeline/offset_tracker.h"

namespace embedstream::sources {

struct KafkaConsumerOptions {
  std::string bootstrap_servers;
  std::string group_id = "embedstream";
  std::vector<std::string> topics;
  std::string auto_offset_reset = "earliest";
  std::map<std::string, std::string> properties;  // extra librdkafka settings
  bool read_headers = false;  // copy record headers into ConsumedRecord::headers
};

struct ConsumedRecord {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  bool has_key = false;
  std::string value;
  bool has_value = true;      // false: a tombstone (null value)
  int64_t timestamp_ms = -1;  // the record's timestamp, -1 if none
  std::vector<std::pair<std::string, std::string>> headers;
};

struct PartitionLag {
  std::string topic;
  int32_t partition = 0;
  int64_t lag = 0;  // high watermark - position; -1 when unknown
};

class KafkaConsumer {
 public:
  // Called on the pipeline thread inside Poll when partitions are revoked
  // (before they go) and assigned.
  using RebalanceListener =
      std::function<void(bool assigned, const std::vector<std::pair<std::string, int32_t>>&)>;

  static Result<std::unique_ptr<KafkaConsumer>> Create(const KafkaConsumerOptions& options,
                                                       RebalanceListener listener);
  ~KafkaConsumer();

  // Up to `max_records` records, waiting at most `timeout_ms` for the first.
  std::vector<ConsumedRecord> Poll(int timeout_ms, size_t max_records);
  Status Commit(const std::vector<pipeline::CommitPoint>& points, bool sync);
  void PauseAll();
  void ResumeAll();
  // Paused partitions stay paused across rebalances (newly assigned ones
  // are paused on assignment) until ResumeAll.
  bool paused() const;
  std::vector<PartitionLag> Lag();
  // Leaves the group cleanly (commits nothing by itself).
  void Close();
  // The last broker-level error seen (e.g. all brokers down), empty if none.
  std::string last_error() const;

 private:
  KafkaConsumer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace embedstream::sources
