#include "app/kafka_stream.h"

#include <algorithm>

#include "core/check.h"
#include "core/clock.h"
#include "core/json_writer.h"
#include "core/logging.h"

namespace embedstream::app {
namespace {

double StateValue(pipeline::CircuitBreaker::State s) {
  return s == pipeline::CircuitBreaker::State::kClosed     ? 0.0
         : s == pipeline::CircuitBreaker::State::kHalfOpen ? 1.0
                                                           : 2.0;
}

}  // namespace

KafkaStream::KafkaStream(ServeConfig config, model::SentenceEncoder& encoder)
    : config_(std::move(config)), encoder_(encoder), embedder_(encoder) {
  RegisterMetrics();
}

KafkaStream::~KafkaStream() {
  runtime_.reset();  // its threads first: they use the sinks and the source
  sinks_.clear();
  source_.reset();
}

void KafkaStream::SetStoreSink(store::EmbeddedStore* store, server::SseHub* hub) {
  store_ = store;
  hub_ = hub;
}

void KafkaStream::SetPostgresSink(sinks::PostgresSink* sink, bool text_mode) {
  postgres_ = sink;
  text_mode_ = sink != nullptr && text_mode;
}

void KafkaStream::SetQdrantSink(sinks::QdrantSink* sink) { qdrant_ = sink; }

Status KafkaStream::Start() {
  const std::string& model_name = encoder_.info().model_name;
  sources::KafkaSourceOptions so;
  so.consumer.bootstrap_servers = config_.kafka.bootstrap_servers;
  so.consumer.group_id = config_.kafka.group_id;
  so.consumer.topics = config_.kafka.input_topics;
  so.consumer.auto_offset_reset = config_.kafka.auto_offset_reset;
  so.consumer.properties = config_.kafka.properties;
  so.dlq_producer.bootstrap_servers = config_.kafka.bootstrap_servers;
  so.dlq_producer.properties = config_.kafka.properties;
  so.dlq_topic = config_.kafka.DlqTopic();
  so.max_record_bytes = config_.max_record_bytes;
  for (const auto& [topic, mapping] : config_.kafka.mappings) {
    auto compiled = pipeline::CompiledMapping::Compile(mapping);
    ES_CHECK(compiled.ok());  // LoadServeConfig compiled it already
    so.mappings.emplace(topic, std::move(*compiled));
  }
  auto source = sources::KafkaSource::Create(std::move(so));
  if (!source) return source.error();
  source_ = std::move(*source);

  std::vector<pipeline::Sink*> sinks;
  if (text_mode_) {
    // Text mode embeds nothing on this path, so there is nothing for the
    // store, Qdrant or the embeddings topic.
    sinks_.push_back(std::make_unique<sinks::PgvectorSink>(*postgres_, true));
  } else {
    sinks::KafkaTopicSink::Options ko;
    ko.producer.bootstrap_servers = config_.kafka.bootstrap_servers;
    ko.producer.properties = config_.kafka.properties;
    ko.topic = config_.kafka.output_topic;
    ko.model_name = model_name;
    auto kafka = sinks::KafkaTopicSink::Create(std::move(ko));
    if (!kafka) return kafka.error();
    // The store first: a record is searchable before it is announced downstream.
    if (store_ != nullptr) sinks_.push_back(std::make_unique<StoreSink>(*store_, model_name));
    if (postgres_ != nullptr)
      sinks_.push_back(std::make_unique<sinks::PgvectorSink>(*postgres_, false));
    if (qdrant_ != nullptr) sinks_.push_back(std::make_unique<sinks::QdrantPointSink>(*qdrant_));
    sinks_.push_back(std::move(*kafka));
  }
  auto& reg = MetricsRegistry::Global();
  for (auto& s : sinks_) {
    sinks.push_back(s.get());
    sink_latency_.emplace_back(
        s->name(),
        &reg.GetHistogram("embedstream_sink_write_seconds", "One write of a batch to a sink",
                          LatencyBucketsSeconds(), {{"sink", s->name()}}));
  }
  pipeline::RuntimeOptions ro;
  ro.batch_max_tokens = config_.batch_max_tokens;
  ro.batch_max_wait = std::chrono::milliseconds(config_.batch_max_wait_ms);
  ro.batch_linger = std::chrono::milliseconds(config_.batch_linger_ms);
  ro.max_inflight_records = config_.max_inflight;
  ro.max_inflight_bytes = config_.max_inflight_bytes;
  ro.embed = !text_mode_;
  ro.guard.retry_attempts = config_.retry_attempts;
  ro.guard.backoff = {std::chrono::milliseconds(config_.retry_base_ms),
                      std::chrono::milliseconds(config_.retry_max_ms)};
  ro.guard.breaker = config_.breaker;
  runtime_ = std::make_unique<pipeline::Runtime>(*source_, text_mode_ ? nullptr : &embedder_,
                                                 std::move(sinks), ro);
  lifecycle_ = std::make_unique<LifecycleListener>(hub_, model_name, encoder_.dim(),
                                                   /*completes=*/!text_mode_);
  runtime_->AddListener(lifecycle_.get());
  runtime_->AddListener(this);
  return Status::Ok();
}

void KafkaStream::Run(const std::atomic<bool>& stop) {
  auto log = GetLogger("stream");
  std::string names;
  for (const auto& s : sinks_) names += (names.empty() ? "" : ", ") + s->name();
  log->info("consuming {} as group '{}' -> [{}] (dlq {}), batch {} tokens / {} ms",
            config_.kafka.input_topics.front(), config_.kafka.group_id, names,
            config_.kafka.DlqTopic(), config_.batch_max_tokens, config_.batch_max_wait_ms);
  runtime_->Run(stop);
  source_->Close();
  const auto& st = runtime_->stats();
  log->info("stopped: consumed {}, stored {}, dlq {}", st.read.load(), st.stored.load(),
            st.rejected.load());
}

void KafkaStream::OnBatch(size_t records, size_t tokens, std::chrono::duration<double> took) {
  embed_latency_->Observe(took.count());
  batch_size_->Observe(static_cast<double>(records));
  batch_tokens_hist_->Observe(static_cast<double>(tokens));
}

void KafkaStream::OnStored(const pipeline::Record& r) {
  e2e_latency_->Observe(std::max(0.0, UnixSeconds() - r.input_timestamp));
}

void KafkaStream::OnSinkWrite(const std::string& sink, size_t /*items*/,
                              std::chrono::duration<double> took) {
  for (const auto& [name, h] : sink_latency_) {
    if (name == sink) h->Observe(took.count());
  }
}

void KafkaStream::RegisterMetrics() {
  auto& reg = MetricsRegistry::Global();
  e2e_latency_ =
      &reg.GetHistogram("embedstream_end_to_end_latency_seconds",
                        "Input record timestamp to stored in every sink", LatencyBucketsSeconds());
  embed_latency_ =
      &reg.GetHistogram("embedstream_stage_latency_seconds", "Time spent per stage and batch",
                        LatencyBucketsSeconds(), {{"stage", "embed"}});
  batch_size_ = &reg.GetHistogram("embedstream_batch_size_records", "Records per encoder batch",
                                  ExponentialBuckets(1, 2, 14));
  batch_tokens_hist_ = &reg.GetHistogram("embedstream_batch_size_tokens",
                                         "Tokens per encoder batch", ExponentialBuckets(16, 2, 12));
  reg.AddCollector([this](std::string& out) {
    if (!runtime_) return;
    const auto guards = runtime_->guards();
    AppendMetricHeader(out, "embedstream_sink_circuit_state",
                       "Circuit breaker per sink: 0 closed, 1 half-open, 2 open", "gauge");
    for (const auto* g : guards) {
      AppendSample(out, "embedstream_sink_circuit_state", {{"sink", g->name()}},
                   StateValue(g->breaker().state()));
    }
    AppendMetricHeader(out, "embedstream_sink_circuit_opened_total",
                       "Times the sink's circuit breaker opened", "counter");
    for (const auto* g : guards) {
      AppendSample(out, "embedstream_sink_circuit_opened_total", {{"sink", g->name()}},
                   static_cast<double>(g->breaker().opened_total()));
    }
    AppendMetricHeader(out, "embedstream_sink_records_total",
                       "Records per sink and outcome (written, refused for good)", "counter");
    for (const auto* g : guards) {
      AppendSample(out, "embedstream_sink_records_total",
                   {{"sink", g->name()}, {"outcome", "written"}},
                   static_cast<double>(g->stats().written.load()));
      AppendSample(out, "embedstream_sink_records_total",
                   {{"sink", g->name()}, {"outcome", "refused"}},
                   static_cast<double>(g->stats().refused.load()));
    }
    AppendMetricHeader(out, "embedstream_sink_errors_total",
                       "Writes that found the sink unavailable (each retried)", "counter");
    for (const auto* g : guards) {
      AppendSample(out, "embedstream_sink_errors_total", {{"sink", g->name()}},
                   static_cast<double>(g->stats().errors.load()));
    }
  });
  reg.AddCollector([this](std::string& out) {
    if (!runtime_) return;
    const auto& s = runtime_->stats();
    auto counter = [&out](const char* name, const char* help, uint64_t v) {
      AppendScalarMetric(out, name, help, "counter", static_cast<double>(v));
    };
    counter("embedstream_records_consumed_total", "Records consumed from Kafka", s.read.load());
    counter("embedstream_records_embedded_total", "Records embedded", s.embedded.load());
    counter("embedstream_records_produced_total",
            "Records every sink has (the embeddings topic included)", s.stored.load());
    counter("embedstream_records_dlq_total", "Records written to the dead-letter topic",
            s.rejected.load());
    uint64_t errors = 0;
    for (const auto* g : runtime_->guards()) errors += g->stats().errors.load();
    counter("embedstream_delivery_errors_total",
            "Failed writes to a sink or the DLQ (each retried)", errors);
    counter("embedstream_batches_total", "Encoder batches", s.batches.load());
    AppendScalarMetric(out, "embedstream_inflight_records",
                       "Records consumed and not yet acknowledged", "gauge",
                       static_cast<double>(s.inflight_records.load()));
    AppendScalarMetric(out, "embedstream_inflight_bytes", "Their bytes", "gauge",
                       static_cast<double>(s.inflight_bytes.load()));
    AppendScalarMetric(out, "embedstream_intake_paused",
                       "1 while intake is paused for backpressure", "gauge",
                       s.paused.load() ? 1.0 : 0.0);
    AppendMetricHeader(out, "embedstream_consumer_lag", "Records behind the high watermark",
                       "gauge");
    for (const auto& l : Lag()) {
      AppendSample(out, "embedstream_consumer_lag",
                   {{"topic", l.topic}, {"partition", std::to_string(l.partition)}},
                   static_cast<double>(l.lag));
    }
  });
}

std::string KafkaStream::SinksJson() const {
  JsonWriter w;
  w.BeginObject();
  if (runtime_) {
    for (const auto* g : runtime_->guards()) {
      const auto st = g->breaker().stats();
      const auto& c = g->stats();
      w.Key(g->name())
          .BeginObject()
          .Key("state")
          .String(pipeline::StateName(st.state))
          .Key("opened_total")
          .Uint(st.opened_total)
          .Key("rejected_calls")
          .Uint(st.rejected_calls)
          .Key("consecutive_failures")
          .Int(st.consecutive_failures)
          .Key("available")
          .Bool(c.available.load())
          .Key("written")
          .Uint(c.written.load())
          .Key("refused")
          .Uint(c.refused.load())
          .Key("writes")
          .Uint(c.writes.load())
          .Key("errors")
          .Uint(c.errors.load())
          .Key("retries")
          .Uint(c.retries.load())
          .Key("splits")
          .Uint(c.splits.load())
          .EndObject();
    }
  }
  w.EndObject();
  return w.Take();
}

std::string KafkaStream::StatsJson() const {
  JsonWriter w;
  const auto lag = Lag();
  int64_t total_lag = 0;
  for (const auto& l : lag) total_lag += std::max<int64_t>(0, l.lag);
  if (!runtime_) return "{}";
  const auto& s = runtime_->stats();
  const uint64_t batches = s.batches.load();
  uint64_t errors = 0;
  uint64_t produced = 0;
  uint64_t postgres_rows = 0;
  for (const auto* g : runtime_->guards()) {
    errors += g->stats().errors.load();
    if (g->name() == "kafka") produced = g->stats().written.load();
    if (g->name() == "postgres") postgres_rows = g->stats().written.load();
  }
  auto source = [&](JsonWriter& o) {
    o.BeginObject()
        .Key("read")
        .Uint(s.read.load())
        .Key("embedded")
        .Uint(s.embedded.load())
        .Key("stored")
        .Uint(s.stored.load())
        .Key("rejected")
        .Uint(s.rejected.load())
        .Key("acked")
        .Uint(s.acked.load())
        .Key("batches")
        .Uint(batches)
        .Key("inflight_records")
        .Int(s.inflight_records.load())
        .Key("inflight_bytes")
        .Int(s.inflight_bytes.load())
        .Key("paused")
        .Bool(s.paused.load())
        .EndObject();
  };
  w.BeginObject()
      .Key("consumed")
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
      .Uint(batches)
      .Key("average_batch_size")
      .Double(batches == 0
                  ? 0.0
                  : static_cast<double>(s.batch_records.load()) / static_cast<double>(batches))
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
  w.EndArray().Key("sources").BeginObject().Key(runtime_->source_name());
  source(w);
  w.EndObject().Key("sinks").Raw(SinksJson()).EndObject();
  return w.Take();
}

std::vector<sources::PartitionLag> KafkaStream::Lag() const {
  return source_ ? source_->Lag() : std::vector<sources::PartitionLag>{};
}

}  // namespace embedstream::app
