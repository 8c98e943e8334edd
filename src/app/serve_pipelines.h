#pragma once
// The pipelines of `serve`, built from the configuration: one per source that
// runs (ServeConfig::Sources), each writing to ServeConfig::SinksOf(source),
// opened by the sink registry. The only place sources are wired to sinks.
//
//   http      HttpIngestSource over the store's outbox (needs the store and
//             the MessageService that commits POST /messages)
//   kafka     KafkaSource (consumer group, DLQ topic, event mappings)
//   postgres  PostgresSource (the CQRS text table, claims + markers)

#include "app/message_service.h"
#include "app/serve_config.h"
#include "app/source_pipeline.h"
#include "model/sentence_encoder.h"
#include "sources/http_source.h"
#include "sources/kafka_source.h"
#include "sources/postgres_source.h"
#include "store/embedded_store.h"

namespace embedstream::app {

struct PipelineContext {
  const ServeConfig& config;
  model::SentenceEncoder& encoder;
  pipeline::Embedder& embedder;
  store::EmbeddedStore* store = nullptr;  // null: store.enabled is false
  server::EventPublisher* hub = nullptr;
  std::mutex* http_read_lock = nullptr;  // MessageService::read_lock()
};

// The sources built, for their own stats (owned by the pipelines in `set`).
struct BuiltSources {
  sources::HttpIngestSource* http = nullptr;
  sources::KafkaSource* kafka = nullptr;
  sources::PostgresSource* postgres = nullptr;
};

// pipeline.*, batch.* and the breaker as RuntimeOptions.
pipeline::RuntimeOptions RuntimeOptionsOf(const ServeConfig& config);

// Opens every source and sink (a start-up error names the source and sink)
// and adds the pipelines to `set`, not started.
Result<BuiltSources> BuildPipelines(const PipelineContext& ctx, PipelineSet& set);

// embedstream_consumer_lag{topic,partition}: records behind the high
// watermark per assigned partition; `source` must outlive the process' metrics.
void RegisterKafkaLagMetrics(const sources::KafkaSource* source);

// The /stats fields older clients read at the top level: the Kafka
// pipeline's (consumed, produced, dlq, lag, partitions, ...) or HTTP
// ingest's (received, embedded, failed, ...). Keys of the object being written.
void WriteLegacyStats(JsonWriter& w, const PipelineSet& set, const BuiltSources& sources,
                      const MessageService* messages);

}  // namespace embedstream::app
