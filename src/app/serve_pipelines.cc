#include "app/serve_pipelines.h"

#include <algorithm>

#include "app/postgres_service.h"
#include "app/sink_registry.h"
#include "core/check.h"
#include "core/metrics.h"

namespace embedstream::app {
namespace {

Result<std::unique_ptr<sources::KafkaSource>> OpenKafkaSource(const ServeConfig& config) {
  const KafkaSettings& k = config.kafka;
  sources::KafkaSourceOptions so;
  so.consumer.bootstrap_servers = k.bootstrap_servers;
  so.consumer.group_id = k.group_id;
  so.consumer.topics = k.input_topics;
  so.consumer.auto_offset_reset = k.auto_offset_reset;
  so.consumer.properties = k.properties;
  so.dlq_producer.bootstrap_servers = k.bootstrap_servers;
  so.dlq_producer.properties = k.properties;
  so.dlq_topic = k.DlqTopic();
  so.max_record_bytes = config.max_record_bytes;
  for (const auto& [topic, mapping] : k.mappings) {
    auto compiled = pipeline::CompiledMapping::Compile(mapping);
    ES_CHECK(compiled.ok());  // LoadServeConfig compiled it already
    so.mappings.emplace(topic, std::move(*compiled));
  }
  return sources::KafkaSource::Create(std::move(so));
}

}  // namespace

pipeline::RuntimeOptions RuntimeOptionsOf(const ServeConfig& config) {
  pipeline::RuntimeOptions ro;
  ro.batch_max_tokens = config.batch_max_tokens;
  ro.batch_max_wait = std::chrono::milliseconds(config.batch_max_wait_ms);
  ro.batch_linger = std::chrono::milliseconds(config.batch_linger_ms);
  ro.max_inflight_records = config.max_inflight;
  ro.max_inflight_bytes = config.max_inflight_bytes;
  ro.guard.retry_attempts = config.retry_attempts;
  ro.guard.backoff = {std::chrono::milliseconds(config.retry_base_ms),
                      std::chrono::milliseconds(config.retry_max_ms)};
  ro.guard.breaker = config.breaker;
  return ro;
}

Result<BuiltSources> BuildPipelines(const PipelineContext& ctx, PipelineSet& set) {
  const ServeConfig& config = ctx.config;
  BuiltSources built;
  for (const auto& name : config.Sources()) {
    SourcePipelineOptions po;
    po.runtime = RuntimeOptionsOf(config);
    po.runtime.chunking = config.ChunkingOf(name);
    po.hub = ctx.hub;
    po.model_name = ctx.encoder.info().model_name;
    po.dim = ctx.encoder.dim();
    std::unique_ptr<pipeline::Source> source;
    if (name == "http") {
      auto http = std::make_unique<sources::HttpIngestSource>(*ctx.store, po.model_name,
                                                              ctx.http_read_lock);
      built.http = http.get();
      source = std::move(http);
      po.announce_received = false;  // the writer announced it at commit
    } else if (name == "kafka") {
      auto kafka = OpenKafkaSource(config);
      if (!kafka) return kafka.error();
      built.kafka = kafka->get();
      source = std::move(*kafka);
      // Text mode writes text rows for the PostgreSQL source to embed.
      const auto sinks = config.SinksOf("kafka");
      const bool text_mode = config.postgres.sink_mode == "text" &&
                             std::find(sinks.begin(), sinks.end(), "postgres") != sinks.end();
      po.runtime.embed = !text_mode;
      po.completes = !text_mode;
    } else if (name == "postgres") {
      auto pg = OpenPostgresSource(config, ctx.encoder);
      if (!pg) return pg.error();
      built.postgres = pg->get();
      source = std::move(*pg);
    } else {
      return Error(errc::invalid_argument, "unknown source " + name);
    }
    auto sinks = OpenSinks({config, ctx.encoder, ctx.store, name});
    if (!sinks) return sinks.error();
    set.Add(std::make_unique<SourcePipeline>(std::move(source), std::move(*sinks), &ctx.embedder,
                                             std::move(po)));
  }
  return built;
}

void RegisterKafkaLagMetrics(const sources::KafkaSource* source) {
  MetricsRegistry::Global().AddCollector([source](std::string& out) {
    AppendMetricHeader(out, "embedstream_consumer_lag", "Records behind the high watermark",
                       "gauge");
    for (const auto& l : source->Lag()) {
      AppendSample(out, "embedstream_consumer_lag",
                   {{"topic", l.topic}, {"partition", std::to_string(l.partition)}},
                   static_cast<double>(l.lag));
    }
  });
}

void WriteLegacyStats(JsonWriter& w, const PipelineSet& set, const BuiltSources& sources,
                      const MessageService* messages) {
  if (const SourcePipeline* kafka = set.Find("kafka"); kafka != nullptr && sources.kafka) {
    const auto& s = kafka->stats();
    uint64_t errors = 0, produced = 0, postgres_rows = 0;
    for (const auto* g : kafka->guards()) {
      errors += g->stats().errors.load();
      if (g->name() == "kafka") produced = g->stats().written.load();
      if (g->name() == "postgres") postgres_rows = g->stats().written.load();
    }
    const auto lag = sources.kafka->Lag();
    int64_t total_lag = 0;
    for (const auto& l : lag) total_lag += std::max<int64_t>(0, l.lag);
    w.Key("consumed")
        .Uint(s.read.load())
        .Key("embedded")
        .Uint(s.embedded.load())
        .Key("produced")
        .Uint(produced)
        .Key("dlq")
        .Uint(s.rejected.load())
        .Key("postgres_rows")
        .Uint(postgres_rows)
        .Key("errors")
        .Uint(errors)
        .Key("batches")
        .Uint(s.batches.load())
        .Key("average_batch_size")
        .Double(s.average_batch_records())
        .Key("inflight")
        .Int(s.inflight_records.load())
        .Key("inflight_bytes")
        .Int(s.inflight_bytes.load())
        .Key("paused")
        .Bool(s.paused.load())
        .Key("lag")
        .Int(total_lag)
        .Key("partitions")
        .BeginArray();
    for (const auto& l : lag) {
      w.BeginObject()
          .Key("topic")
          .String(l.topic)
          .Key("partition")
          .Int(l.partition)
          .Key("lag")
          .Int(l.lag)
          .EndObject();
    }
    w.EndArray();
  } else if (const SourcePipeline* http = set.Find("http"); http != nullptr && messages) {
    const auto& m = messages->stats();
    const auto& s = http->stats();
    w.Key("received")
        .Uint(m.received.load())
        .Key("created")
        .Uint(m.created.load())
        .Key("requeued")
        .Uint(m.requeued.load())
        .Key("refused")
        .Uint(m.refused.load())
        .Key("queued")
        .Int(m.queued.load())
        .Key("queued_bytes")
        .Int(m.queued_bytes.load())
        .Key("commits")
        .Uint(m.commits.load())
        .Key("embedded")
        .Uint(s.embedded.load())
        .Key("failed")
        .Uint(s.rejected.load())
        .Key("worker_batches")
        .Uint(s.batches.load())
        .Key("store_errors")
        .Uint(m.store_errors.load());
  }
  if (sources.postgres != nullptr) {
    w.Key("postgres_source").Raw(PostgresSourceStatsJson(*sources.postgres));
  }
}

}  // namespace embedstream::app
