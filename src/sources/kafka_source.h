#pragma once
// KafkaSource: a consumer group as a pipeline::Source.
//
//   Read   -> Poll (also while paused: heartbeats, rebalances), decode seed
//             000/001 JSON, plain text or a topic's event mapping; records
//             that cannot be decoded come back as rejected (reason codes of
//             pipeline/record.h and event_mapping.h)
//   Ack    -> OffsetTracker; the safe offsets are committed every
//             commit_interval (and synchronously on revoke and Close)
//   Reject -> the DLQ topic (original key and value, headers error.reason,
//             error.detail, error.stage, source.topic/partition/offset,
//             attempts); acked only once the broker has the letter. A letter
//             the topic refuses for its size is cut to dlq_truncate_bytes of
//             its value with error.truncated=true and error.original_bytes,
//             never dropped; any other refusal is kUnavailable (retried).
//   Pause  -> pauses every assigned partition; partitions assigned while
//             paused are paused at once (the state survives rebalances).
//
// A rebalance never waits on a sink: revoked partitions' safe offsets are
// committed and their unacked records are simply not committed (the next
// owner consumes them again).
//
// Threads: Read/Ack/Pause/Resume/Close on the runtime's intake thread (the
// consumer's), Reject on its dead-letter thread (its own producer); Lag and
// stats from any thread.

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/result.h"
#include "pipeline/event_mapping.h"
#include "pipeline/offset_tracker.h"
#include "pipeline/stage.h"
#include "sinks/kafka_producer.h"
#include "sources/kafka_consumer.h"

namespace embedstream::sources {

struct KafkaSourceOptions {
  KafkaConsumerOptions consumer;
  sinks::KafkaProducerOptions dlq_producer;
  std::string dlq_topic;
  std::map<std::string, pipeline::CompiledMapping> mappings;  // by input topic
  size_t max_record_bytes = 1 << 20;
  // What is left of a dead letter's value when the DLQ topic refuses it for
  // its size (its headers say so).
  size_t dlq_truncate_bytes = 256;
  std::chrono::milliseconds commit_interval{500};
  std::chrono::milliseconds dlq_timeout{30'000};  // per Reject call
};

struct KafkaSourceStats {
  std::atomic<uint64_t> consumed{0};
  std::atomic<uint64_t> decode_errors{0};
  std::atomic<uint64_t> dead_letters{0};  // acknowledged by the broker
  std::atomic<uint64_t> truncated_letters{0};
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> rebalances{0};
};

class KafkaSource : public pipeline::Source {
 public:
  static Result<std::unique_ptr<KafkaSource>> Create(KafkaSourceOptions options);
  ~KafkaSource() override;

  const std::string& name() const override { return name_; }
  pipeline::ReadBatch Read(size_t max_records, std::chrono::milliseconds wait) override;
  void Ack(std::span<const pipeline::Record* const> records) override;
  pipeline::WriteResult Reject(std::span<const pipeline::DeadLetter> letters) override;
  void Pause() override;
  void Resume() override;

  // Commits what is safe (synchronously) and leaves the group.
  void Close() override;
  std::vector<PartitionLag> Lag() const;
  const KafkaSourceStats& stats() const { return stats_; }
  std::string last_error() const { return consumer_->last_error(); }

 private:
  struct Ref {
    std::string topic;
    int32_t partition = 0;
    int64_t offset = 0;
  };
  explicit KafkaSource(KafkaSourceOptions options);
  void OnRebalance(bool assigned, const std::vector<std::pair<std::string, int32_t>>& parts);
  void CommitSafe(bool sync);
  bool Assigned(const std::string& topic, int32_t partition) const;
  Ref RefOf(uint64_t handle) const;
  // Produces the letters (their value and detail cut to dlq_truncate_bytes
  // when `cut`) and waits for the broker; `too_large`: the letters refused
  // for their size. kUnavailable for any other failure.
  pipeline::WriteResult SendLetters(std::span<const pipeline::DeadLetter> letters, bool cut,
                                    std::vector<size_t>& too_large);

  const std::string name_ = "kafka";
  KafkaSourceOptions options_;
  KafkaSourceStats stats_;
  std::unique_ptr<KafkaConsumer> consumer_;
  pipeline::OffsetTracker tracker_;  // intake thread
  std::set<std::pair<std::string, int32_t>> assigned_;
  std::map<std::pair<std::string, int32_t>, int64_t> uncommitted_;
  std::chrono::steady_clock::time_point last_commit_{};
  std::chrono::steady_clock::time_point last_lag_{};
  uint64_t next_handle_ = 1;
  mutable std::mutex refs_mu_;  // the dead-letter thread reads refs_
  std::unordered_map<uint64_t, Ref> refs_;
  mutable std::mutex lag_mu_;
  std::vector<PartitionLag> lag_;

  // Dead-letter thread only.
  struct Delivery {
    bool done = false;
    bool ok = false;
    bool too_large = false;
    std::string error;
  };
  std::unordered_map<uint64_t, Delivery> deliveries_;
  uint64_t next_token_ = 1;
  std::unique_ptr<sinks::KafkaProducer> dlq_;  // last member: destroyed first
};

}  // namespace embedstream::sources
