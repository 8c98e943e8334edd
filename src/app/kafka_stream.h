#pragma once
// KafkaStream: the Kafka pipeline of `embedstream serve`.
//
//   consumer (group) -> decode + validate -> tokenize -> batch (token budget,
//   max wait) -> encoder -> producer (embeddings topic, keyed by id)
//                 \-> bad record -> producer (DLQ topic, original bytes + reason headers)
//
// A consumed offset is committed only once its output (or its dead letter)
// is acknowledged by the broker, so a crash replays and loses nothing
// (at-least-once; output keyed by id makes the replay an upsert downstream).
// Failed deliveries are retried with exponential backoff and jitter; while a
// retry is pending or too many records are unacknowledged, intake pauses.
//
// Threads: Run() is the pipeline thread and owns the consumer, producer and
// offset tracker; Stats() may be read from any thread (atomics).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "app/lifecycle.h"
#include "app/serve_config.h"
#include "core/metrics.h"
#include "core/result.h"
#include "model/sentence_encoder.h"
#include "pipeline/backoff.h"
#include "pipeline/circuit_breaker.h"
#include "pipeline/event_mapping.h"
#include "pipeline/offset_tracker.h"
#include "server/sse_hub.h"
#include "sinks/kafka_producer.h"
#include "sinks/postgres_sink.h"
#include "sinks/qdrant_sink.h"
#include "sources/kafka_consumer.h"
#include "store/embedded_store.h"

namespace embedstream::app {

struct StreamStats {
  std::atomic<uint64_t> consumed{0};
  std::atomic<uint64_t> embedded{0};
  std::atomic<uint64_t> produced{0};
  std::atomic<uint64_t> dlq{0};
  std::atomic<uint64_t> errors{0};  // failed deliveries (each retried)
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> batch_records{0};
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> postgres_rows{0};  // rows committed in PostgreSQL
  std::atomic<int64_t> inflight{0};
  std::atomic<bool> paused{false};
  std::atomic<bool> running{false};
};

class KafkaStream {
 public:
  KafkaStream(ServeConfig config, model::SentenceEncoder& encoder);
  ~KafkaStream();

  // Also writes every embedded record into `store` (may be null; searchable
  // through the HTTP API) before producing it, and publishes each record's
  // lifecycle events to `hub` (may be null). Call before Start; both must
  // outlive the stream.
  void SetStoreSink(store::EmbeddedStore* store, server::SseHub* hub);
  // Also writes into PostgreSQL (may be null; must outlive the stream; call
  // before Start). Embeddings mode: text + vector rows before producing. Text
  // mode (seed 001's text writer): only text rows, nothing is embedded or
  // produced here (sources.postgres embeds them); offsets are committed once
  // the rows are committed in PostgreSQL. A down database pauses intake and is
  // retried; a row PostgreSQL refuses goes to the DLQ (reason sink_rejected).
  void SetPostgresSink(sinks::PostgresSink* sink, bool text_mode);
  // Also writes points into Qdrant (may be null; must outlive the stream):
  // id, vector, payload = the record's metadata (for mapped events: the
  // mapped fields) plus "text". Same retry, breaker and DLQ rules.
  void SetQdrantSink(sinks::QdrantSink* sink);
  // {"store": {"state", "opened_total", "rejected_calls", "consecutive_failures"}, ...}
  // for each sink in use; safe from any thread.
  std::string SinksJson() const;
  Status Start();                           // connects consumer and producer
  void Run(const std::atomic<bool>& stop);  // until stop; then drains and commits
  const StreamStats& stats() const { return stats_; }
  // Lag per assigned partition, refreshed by the pipeline thread every second.
  std::vector<sources::PartitionLag> Lag() const;

 private:
  struct Pending {
    sources::ConsumedRecord source;
    std::string id;
    std::string text;
    std::string input_source;
    std::string metadata_json;
    bool mapped = false;    // metadata_json is a mapped payload (has "text")
    std::string user_id;    // metadata.user_id, for /events?user_id=
    std::string event_key;  // the record key, else the id, for /events?key=
    double input_timestamp = 0;
    std::vector<int32_t> token_ids;
  };
  struct InFlight {
    std::string source_topic;
    int32_t source_partition = 0;
    int64_t source_offset = 0;
    std::string topic;
    std::string key;
    std::string value;
    std::vector<std::pair<std::string, std::string>> headers;
    bool dead_letter = false;
    double input_timestamp = 0;
    std::chrono::steady_clock::time_point sent_at;
    int attempts = 0;
    // The input as consumed, kept until delivery so a record the broker
    // refuses can still go to the DLQ with its original bytes.
    std::string source_key;
    std::string source_value;
  };

  void HandleRecord(sources::ConsumedRecord&& rec);
  void SendDeadLetter(sources::ConsumedRecord&& rec, const std::string& reason,
                      const std::string& stage, const std::string& detail);
  void FlushBatch();
  // Writes the batch in hand (vectors_) into the store sink, retrying with
  // backoff; false when stopping before it succeeded.
  bool StoreBatch();
  // Writes the batch in hand into PostgreSQL, retrying while it fails; a
  // batch it refuses is written row by row and the indexes of the rows it
  // refuses land in `rejected` (with their reasons). false when stopping
  // before it succeeded.
  bool PostgresBatch(bool with_vectors, std::map<size_t, std::string>& rejected);
  // Retries `write` with backoff (intake paused) until it succeeds; false when
  // stopping first.
  // Each sink has a circuit breaker: while it is open no write is tried and
  // intake stays paused; nothing is dropped.
  bool RetryWrite(const char* sink, const std::function<Status()>& write);
  // Writes the batch in hand into Qdrant; refused points land in `rejected`.
  bool QdrantBatch(std::map<size_t, std::string>& rejected);
  pipeline::CircuitBreaker& BreakerFor(const std::string& sink);
  // Text mode: the batch in hand into the text table, then its offsets acked.
  void FlushTextBatch();
  void Send(uint64_t token);
  void Reject(std::map<uint64_t, InFlight>::iterator it, const std::string& why);
  void OnDelivery(const sinks::DeliveryReport& report);
  void OnRebalance(bool assigned, const std::vector<std::pair<std::string, int32_t>>& parts);
  void RetryDue();
  // Embeds the batch in hand, waits up to `limit` for every delivery
  // (retrying failures) and commits what is safe.
  void FinishInHand(std::chrono::seconds limit);
  void CommitSafe(bool sync);
  void UpdateLag();
  bool Assigned(const std::string& topic, int32_t partition) const;

  void RegisterMetrics();

  ServeConfig config_;
  model::SentenceEncoder& encoder_;
  // Histograms in the global metrics registry (owned there).
  Histogram* e2e_latency_ = nullptr;
  Histogram* embed_latency_ = nullptr;
  Histogram* deliver_latency_ = nullptr;
  Histogram* batch_size_ = nullptr;
  Histogram* batch_tokens_hist_ = nullptr;
  std::unique_ptr<sources::KafkaConsumer> consumer_;
  std::unique_ptr<sinks::KafkaProducer> producer_;
  pipeline::OffsetTracker tracker_;
  pipeline::Backoff backoff_;
  StreamStats stats_;

  std::vector<Pending> batch_;
  size_t batch_tokens_ = 0;
  // When the batch in hand must be embedded: the earliest record's arrival
  // (its Kafka timestamp, so time spent queued behind the previous batch
  // counts) plus batch.max_wait_ms.
  std::chrono::steady_clock::time_point batch_deadline_;
  // When the first record of the batch in hand was taken from the client.
  std::chrono::steady_clock::time_point batch_first_seen_;
  std::map<uint64_t, InFlight> inflight_;
  uint64_t next_token_ = 1;
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> retries_;
  std::set<std::pair<std::string, int32_t>> assigned_;
  std::map<std::pair<std::string, int32_t>, int64_t> uncommitted_;  // safe, not yet committed
  std::chrono::steady_clock::time_point last_commit_;
  std::chrono::steady_clock::time_point last_lag_;
  mutable std::mutex lag_mu_;
  std::vector<sources::PartitionLag> lag_;  // guarded by lag_mu_
  std::vector<float> vectors_;
  store::EmbeddedStore* store_ = nullptr;
  sinks::PostgresSink* postgres_ = nullptr;
  sinks::QdrantSink* qdrant_ = nullptr;
  std::map<std::string, pipeline::CompiledMapping> mappings_;  // by input topic
  // One per sink in use, created before Run (the map is not modified after).
  std::map<std::string, std::unique_ptr<pipeline::CircuitBreaker>> breakers_;
  bool postgres_text_mode_ = false;
  Lifecycle events_{nullptr};
  const std::atomic<bool>* stop_ = nullptr;  // Run's flag
};

}  // namespace embedstream::app
