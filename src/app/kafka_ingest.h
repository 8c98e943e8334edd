#pragma once
// KafkaIngest: the write side of POST /messages and DELETE /messages/{id}
// when ingest.mode is kafka (seed 003's API instances in front of Kafka):
// every instance produces what it is given to the input topic, and the
// workers of the consumer group (the kafka source of every instance) embed
// it.
//
//   POST /messages -> Submit -> produce {"id","text","timestamp","source":"http",
//     "metadata"} keyed by user_id (else the id: one user's work stays in one
//     partition, in order), acks=all, idempotent producer
//   -> the broker acknowledged it -> 202  (no broker ack within timeout_ms -> 503)
//
// Nothing is answered before the broker has the record, so a 202 is as
// durable as the store's. Memory is bounded: a producer queue over
// max_pending_bytes (or 100,000 records) refuses (the route answers 503 with
// Retry-After). Threads: Submit/Delete from any thread; the callbacks run on
// the instance's delivery thread.

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "api/api_routes.h"
#include "core/json_writer.h"
#include "core/result.h"

namespace embedstream::sinks {
class KafkaProducer;
}

namespace embedstream::app {

struct KafkaIngestOptions {
  std::string bootstrap_servers;
  std::map<std::string, std::string> properties;  // extra librdkafka settings
  std::string topic;
  int timeout_ms = 5000;                // delivery timeout: then the caller gets an error
  size_t max_pending_bytes = 64 << 20;  // produced and not yet acknowledged
  // A larger record is refused at once (invalid_argument: the route's 413),
  // since the workers would dead-letter it (pipeline.max_record_bytes).
  size_t max_record_bytes = 1 << 20;
};

class KafkaIngest {
 public:
  static Result<std::unique_ptr<KafkaIngest>> Create(const KafkaIngestOptions& options);
  ~KafkaIngest();  // Stop
  KafkaIngest(const KafkaIngest&) = delete;
  KafkaIngest& operator=(const KafkaIngest&) = delete;

  // api::SubmitMessage: false when the producer's queue is full. A record
  // over max_record_bytes fails at once with invalid_argument.
  bool Submit(store::NewMessage message, std::string user_id, api::PutCallback done);
  // A delete record for `id` ({"id","op":"delete"}), keyed by `user_id` when
  // given (the partition of that user's upserts, so it is ordered after
  // them), else by the id.
  void Delete(const std::string& id, const std::string& user_id, std::function<void(Status)> done);
  // Flushes what is queued (up to timeout_ms) and stops the delivery thread.
  void Stop();

  // GET /ready: the last delivery did not fail because the brokers are down.
  bool Healthy(std::string& why) const;
  void WriteStats(JsonWriter& w) const;

 private:
  explicit KafkaIngest(KafkaIngestOptions options);
  // Queues `value` with `done` as its delivery callback; false: queue full.
  bool Produce(const std::string& key, const std::string& value, std::function<void(Status)> done);

  struct Pending;
  const KafkaIngestOptions options_;
  std::unique_ptr<sinks::KafkaProducer> producer_;
  std::thread poller_;
  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> next_token_{1};
  std::atomic<uint64_t> produced_{0}, acked_{0}, failed_{0}, refused_{0};
  std::atomic<bool> last_ok_{true};
  mutable std::mutex mu_;
  std::map<uint64_t, std::function<void(Status)>> pending_;  // guarded by mu_
  std::string last_error_;                                   // guarded by mu_
};

}  // namespace embedstream::app
