#pragma once
// KafkaStream: the Kafka path of `embedstream serve`, built on the pipeline
// runtime (pipeline/runtime.h):
//
//   KafkaSource (group, decode/map, DLQ) -> batch -> encoder -> sinks:
//     kafka (embeddings topic, keyed by id), store, postgres, qdrant
//
// (text mode: the PostgreSQL text table only, nothing embedded here.)
// An offset is committed only once every sink has its record or the DLQ
// has its dead letter (at-least-once). A sink that is down pauses the
// partitions while the consumer keeps polling, so the member is never
// evicted and rebalances are served at once.
//
// Threads: Run() is the intake thread (the consumer's); the runtime adds an
// encoder thread, one per sink and one for dead letters. StatsJson, SinksJson
// and Lag may be called from any thread.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "app/runtime_adapters.h"
#include "app/serve_config.h"
#include "core/metrics.h"
#include "core/result.h"
#include "model/sentence_encoder.h"
#include "pipeline/runtime.h"
#include "server/sse_hub.h"
#include "sinks/pipeline_sinks.h"
#include "sources/kafka_source.h"
#include "store/embedded_store.h"

namespace embedstream::app {

class KafkaStream : public pipeline::Listener {
 public:
  KafkaStream(ServeConfig config, model::SentenceEncoder& encoder);
  ~KafkaStream() override;

  // Sinks besides the embeddings topic; call before Start. Each may be null
  // and must outlive the stream. The store also gets SSE lifecycle events
  // through `hub` (may be null).
  void SetStoreSink(store::EmbeddedStore* store, server::SseHub* hub);
  // Embeddings mode: text + vector rows. Text mode (seed 001's text writer):
  // only text rows, nothing is embedded or produced here (sources.postgres
  // embeds them).
  void SetPostgresSink(sinks::PostgresSink* sink, bool text_mode);
  void SetQdrantSink(sinks::QdrantSink* sink);
  Status Start();                           // consumer, producers, runtime
  void Run(const std::atomic<bool>& stop);  // until stop; then drains and commits

  bool running() const { return runtime_ && runtime_->stats().running.load(); }
  // The /stats object of the Kafka path (sources.kafka and sinks.<name>
  // have the same fields as every other path's).
  std::string StatsJson() const;
  // {"kafka": {...}, "store": {...}, ...}: per sink, its breaker and counters.
  std::string SinksJson() const;
  std::vector<sources::PartitionLag> Lag() const;

  // pipeline::Listener: metrics.
  void OnBatch(size_t records, size_t tokens, std::chrono::duration<double> took) override;
  void OnStored(const pipeline::Record& r) override;
  void OnSinkWrite(const std::string& sink, size_t items,
                   std::chrono::duration<double> took) override;

 private:
  void RegisterMetrics();

  ServeConfig config_;
  model::SentenceEncoder& encoder_;
  EncoderEmbedder embedder_;
  store::EmbeddedStore* store_ = nullptr;
  server::SseHub* hub_ = nullptr;
  sinks::PostgresSink* postgres_ = nullptr;
  sinks::QdrantSink* qdrant_ = nullptr;
  bool text_mode_ = false;
  Histogram* e2e_latency_ = nullptr;
  Histogram* embed_latency_ = nullptr;
  Histogram* batch_size_ = nullptr;
  Histogram* batch_tokens_hist_ = nullptr;
  std::vector<std::pair<std::string, Histogram*>> sink_latency_;  // by sink name
  std::unique_ptr<sources::KafkaSource> source_;
  std::vector<std::unique_ptr<pipeline::Sink>> sinks_;
  std::unique_ptr<LifecycleListener> lifecycle_;
  std::unique_ptr<pipeline::Runtime> runtime_;  // after what it refers to
};

}  // namespace embedstream::app
