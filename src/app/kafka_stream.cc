#include "app/kafka_stream.h"

#include "core/json_writer.h"

#include <algorithm>
#include <thread>

#include "core/check.h"
#include "core/clock.h"
#include "core/json_writer.h"
#include "core/logging.h"
#include "core/uuid.h"
#include "pipeline/record.h"

namespace embedstream::app {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kPollMaxRecords = 2000;

}  // namespace

KafkaStream::KafkaStream(ServeConfig config, model::SentenceEncoder& encoder)
    : config_(std::move(config)),
      encoder_(encoder),
      backoff_({std::chrono::milliseconds(config_.retry_base_ms),
                std::chrono::milliseconds(config_.retry_max_ms)}) {
  for (const auto& [topic, mapping] : config_.kafka.mappings) {
    auto compiled = pipeline::CompiledMapping::Compile(mapping);
    ES_CHECK(compiled.ok());  // LoadServeConfig compiled it already
    mappings_.emplace(topic, std::move(*compiled));
  }
  RegisterMetrics();
}

void KafkaStream::RegisterMetrics() {
  auto& reg = MetricsRegistry::Global();
  e2e_latency_ = &reg.GetHistogram("embedstream_end_to_end_latency_seconds",
                                   "Input record timestamp to output acknowledged by Kafka",
                                   LatencyBucketsSeconds());
  embed_latency_ =
      &reg.GetHistogram("embedstream_stage_latency_seconds", "Time spent per stage and batch",
                        LatencyBucketsSeconds(), {{"stage", "embed"}});
  deliver_latency_ =
      &reg.GetHistogram("embedstream_stage_latency_seconds", "Time spent per stage and batch",
                        LatencyBucketsSeconds(), {{"stage", "deliver"}});
  batch_size_ = &reg.GetHistogram("embedstream_batch_size_records", "Records per encoder batch",
                                  ExponentialBuckets(1, 2, 14));
  batch_tokens_hist_ = &reg.GetHistogram("embedstream_batch_size_tokens",
                                         "Tokens per encoder batch", ExponentialBuckets(16, 2, 12));
  reg.AddCollector([this](std::string& out) {
    if (breakers_.empty()) return;
    AppendMetricHeader(out, "embedstream_sink_circuit_state",
                       "Circuit breaker per sink: 0 closed, 1 half-open, 2 open", "gauge");
    for (const auto& [name, breaker] : breakers_) {
      const auto state = breaker->state();
      const double v = state == pipeline::CircuitBreaker::State::kClosed     ? 0.0
                       : state == pipeline::CircuitBreaker::State::kHalfOpen ? 1.0
                                                                             : 2.0;
      AppendSample(out, "embedstream_sink_circuit_state", {{"sink", name}}, v);
    }
    AppendMetricHeader(out, "embedstream_sink_circuit_opened_total",
                       "Times the sink's circuit breaker opened", "counter");
    for (const auto& [name, breaker] : breakers_) {
      AppendSample(out, "embedstream_sink_circuit_opened_total", {{"sink", name}},
                   static_cast<double>(breaker->opened_total()));
    }
  });
  reg.AddCollector([this](std::string& out) {
    auto counter = [&out](const char* name, const char* help, uint64_t v) {
      AppendScalarMetric(out, name, help, "counter", static_cast<double>(v));
    };
    counter("embedstream_records_consumed_total", "Records consumed from Kafka",
            stats_.consumed.load());
    counter("embedstream_records_embedded_total", "Records embedded", stats_.embedded.load());
    counter("embedstream_records_produced_total", "Output records acknowledged by Kafka",
            stats_.produced.load());
    counter("embedstream_records_dlq_total", "Records written to the dead-letter topic",
            stats_.dlq.load());
    counter("embedstream_delivery_errors_total", "Failed deliveries (each retried)",
            stats_.errors.load());
    counter("embedstream_batches_total", "Encoder batches", stats_.batches.load());
    AppendScalarMetric(out, "embedstream_inflight_records",
                       "Records consumed and not yet acknowledged", "gauge",
                       static_cast<double>(stats_.inflight.load()));
    AppendScalarMetric(out, "embedstream_intake_paused",
                       "1 while intake is paused for backpressure", "gauge",
                       stats_.paused.load() ? 1.0 : 0.0);
    AppendMetricHeader(out, "embedstream_consumer_lag", "Records behind the high watermark",
                       "gauge");
    for (const auto& l : Lag()) {
      AppendSample(out, "embedstream_consumer_lag",
                   {{"topic", l.topic}, {"partition", std::to_string(l.partition)}},
                   static_cast<double>(l.lag));
    }
  });
}

KafkaStream::~KafkaStream() = default;

void KafkaStream::SetStoreSink(store::EmbeddedStore* store, server::SseHub* hub) {
  store_ = store;
  if (store != nullptr) BreakerFor("store");
  events_ = Lifecycle(hub);
}

void KafkaStream::SetPostgresSink(sinks::PostgresSink* sink, bool text_mode) {
  postgres_ = sink;
  postgres_text_mode_ = sink != nullptr && text_mode;
  if (sink != nullptr) BreakerFor("postgres");
}

void KafkaStream::SetQdrantSink(sinks::QdrantSink* sink) {
  qdrant_ = sink;
  if (sink != nullptr) BreakerFor("qdrant");
}

pipeline::CircuitBreaker& KafkaStream::BreakerFor(const std::string& sink) {
  auto it = breakers_.find(sink);
  if (it != breakers_.end()) return *it->second;
  auto on_change = [sink](pipeline::CircuitBreaker::State from, pipeline::CircuitBreaker::State to,
                          const std::string& why) {
    auto log = GetLogger("stream");
    if (to == pipeline::CircuitBreaker::State::kOpen) {
      log->warn("{} sink circuit {} -> open: {}; intake paused", sink, pipeline::StateName(from),
                why);
    } else {
      log->info("{} sink circuit {} -> {}: {}", sink, pipeline::StateName(from),
                pipeline::StateName(to), why);
    }
  };
  auto breaker = std::make_unique<pipeline::CircuitBreaker>(config_.breaker, on_change);
  return *breakers_.emplace(sink, std::move(breaker)).first->second;
}

std::string KafkaStream::SinksJson() const {
  JsonWriter w;
  w.BeginObject();
  for (const auto& [name, breaker] : breakers_) {
    const auto st = breaker->stats();
    w.Key(name)
        .BeginObject()
        .Key("state")
        .String(pipeline::StateName(st.state))
        .Key("opened_total")
        .Uint(st.opened_total)
        .Key("rejected_calls")
        .Uint(st.rejected_calls)
        .Key("consecutive_failures")
        .Int(st.consecutive_failures)
        .EndObject();
  }
  w.EndObject();
  return w.Take();
}

Status KafkaStream::Start() {
  sources::KafkaConsumerOptions co;
  co.bootstrap_servers = config_.kafka.bootstrap_servers;
  co.group_id = config_.kafka.group_id;
  co.topics = config_.kafka.input_topics;
  co.auto_offset_reset = config_.kafka.auto_offset_reset;
  co.properties = config_.kafka.properties;
  auto consumer = sources::KafkaConsumer::Create(
      co, [this](bool assigned, const auto& parts) { OnRebalance(assigned, parts); });
  if (!consumer) return consumer.error();
  consumer_ = std::move(*consumer);
  sinks::KafkaProducerOptions po;
  po.bootstrap_servers = config_.kafka.bootstrap_servers;
  po.properties = config_.kafka.properties;
  auto producer =
      sinks::KafkaProducer::Create(po, [this](const auto& report) { OnDelivery(report); });
  if (!producer) return producer.error();
  producer_ = std::move(*producer);
  return Status::Ok();
}

bool KafkaStream::Assigned(const std::string& topic, int32_t partition) const {
  return assigned_.count({topic, partition}) != 0;
}

void KafkaStream::Run(const std::atomic<bool>& stop) {
  auto log = GetLogger("stream");
  stats_.running = true;
  stop_ = &stop;
  last_commit_ = last_lag_ = Clock::now();
  log->info("consuming {} as group '{}' -> {} (dlq {}), batch {} tokens / {} ms",
            config_.kafka.input_topics.front(), config_.kafka.group_id, config_.kafka.output_topic,
            config_.kafka.DlqTopic(), config_.batch_max_tokens, config_.batch_max_wait_ms);
  while (!stop.load(std::memory_order_relaxed)) {
    // Backpressure: no new intake while a retry waits or too much is unacknowledged.
    const bool hold = !retries_.empty() || inflight_.size() >= config_.max_inflight;
    if (hold && !consumer_->paused()) {
      consumer_->PauseAll();
      log->info("intake paused ({} unacknowledged, {} retries waiting)", inflight_.size(),
                retries_.size());
    } else if (!hold && consumer_->paused()) {
      consumer_->ResumeAll();
      log->info("intake resumed");
    }
    stats_.paused = consumer_->paused();

    // With records in hand, wait no longer than the earlier of the linger
    // (for companions when the input is idle) and the max-wait deadline.
    int timeout_ms = 100;
    if (!batch_.empty()) {
      const auto until = std::min(
          batch_deadline_, batch_first_seen_ + std::chrono::milliseconds(config_.batch_linger_ms));
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
      timeout_ms = static_cast<int>(std::max<int64_t>(0, left));
    }
    if (hold) timeout_ms = std::min(timeout_ms, 20);
    auto records = consumer_->Poll(timeout_ms, kPollMaxRecords);
    const bool drained = records.size() < kPollMaxRecords;
    for (auto& r : records) HandleRecord(std::move(r));
    // Embed when nothing more is queued in the client and the linger is over,
    // or when the oldest record reaches max_wait. With a backlog (a full
    // poll) keep filling the batch up to its token budget instead.
    if (!batch_.empty() && drained) {
      const auto now = Clock::now();
      if (now >= batch_first_seen_ + std::chrono::milliseconds(config_.batch_linger_ms) ||
          now >= batch_deadline_) {
        FlushBatch();
      }
    }
    producer_->Poll(0);
    RetryDue();
    if (Clock::now() - last_commit_ >= std::chrono::milliseconds(500)) CommitSafe(false);
    if (Clock::now() - last_lag_ >= std::chrono::seconds(1)) UpdateLag();
    stats_.inflight = static_cast<int64_t>(inflight_.size());
  }

  // Drain: finish the batch in hand, wait for deliveries (retrying failures),
  // commit what is safe, leave the group.
  log->info("stopping: embedding {} buffered records, {} unacknowledged", batch_.size(),
            inflight_.size());
  FinishInHand(std::chrono::seconds(30));
  if (!inflight_.empty()) {
    log->warn("{} records still unacknowledged at shutdown; they will be consumed again",
              inflight_.size());
  }
  consumer_->Close();
  stats_.running = false;
  log->info("stopped: consumed {}, produced {}, dlq {}", stats_.consumed.load(),
            stats_.produced.load(), stats_.dlq.load());
}

void KafkaStream::HandleRecord(sources::ConsumedRecord&& rec) {
  if (!Assigned(rec.topic, rec.partition)) return;  // revoked meanwhile: the new owner has it
  stats_.consumed.fetch_add(1, std::memory_order_relaxed);
  tracker_.Track(rec.topic, rec.partition, rec.offset);
  pipeline::DecodeOptions dopt;
  dopt.max_bytes = config_.max_record_bytes;
  const auto mapping = mappings_.find(rec.topic);
  const bool mapped = mapping != mappings_.end();
  auto decoded = mapped
                     ? pipeline::MapEvent(rec.value, mapping->second, {.max_bytes = dopt.max_bytes})
                     : pipeline::DecodeRecord(rec.value, dopt);
  if (!decoded.ok()) {
    SendDeadLetter(std::move(rec), decoded.error.reason, "decode", decoded.error.detail);
    return;
  }
  Pending p;
  p.text = std::move(decoded.record->text);
  if (!decoded.record->id.empty()) {
    p.id = std::move(decoded.record->id);
  } else if (rec.has_key && !rec.key.empty()) {
    p.id = rec.key;
  } else {
    p.id =
        FormatUuid(UuidV5(EmbedstreamNamespace(), rec.topic + "/" + std::to_string(rec.partition) +
                                                      "/" + std::to_string(rec.offset)));
  }
  p.metadata_json = std::move(decoded.record->metadata_json);
  p.mapped = mapped;
  p.user_id = UserIdOf(p.metadata_json);
  p.event_key = rec.has_key && !rec.key.empty() ? rec.key : p.id;
  events_.Received(p.id, p.user_id, p.event_key);
  p.input_source =
      decoded.record->source.empty() ? "kafka:" + rec.topic : std::move(decoded.record->source);
  p.input_timestamp = decoded.record->timestamp.value_or(
      rec.timestamp_ms >= 0 ? static_cast<double>(rec.timestamp_ms) / 1000.0 : UnixSeconds());
  // Text mode embeds nothing here: batch by an estimate of the tokens.
  if (postgres_text_mode_) {
    p.token_ids.resize(std::max<size_t>(1, p.text.size() / 4));
  } else {
    p.token_ids = encoder_.Tokenize(p.text);
  }
  // Arrival: the record's timestamp when it is plausible (not in the future,
  // not older than a minute: clock skew or a backlog), else now.
  auto arrival = Clock::now();
  if (rec.timestamp_ms > 0) {
    const double age = UnixSeconds() - static_cast<double>(rec.timestamp_ms) / 1000.0;
    if (age > 0 && age < 60) {
      arrival -= std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(age));
    }
  }
  const auto deadline = arrival + std::chrono::milliseconds(config_.batch_max_wait_ms);
  if (batch_.empty()) batch_first_seen_ = Clock::now();
  if (batch_.empty() || deadline < batch_deadline_) batch_deadline_ = deadline;
  p.source = std::move(rec);
  batch_tokens_ += p.token_ids.size();
  batch_.push_back(std::move(p));
  if (batch_tokens_ >= config_.batch_max_tokens) FlushBatch();
}

void KafkaStream::SendDeadLetter(sources::ConsumedRecord&& rec, const std::string& reason,
                                 const std::string& stage, const std::string& detail) {
  GetLogger("stream")->debug("dead letter {}/{}@{}: {} ({})", rec.topic, rec.partition, rec.offset,
                             reason, detail);
  const uint64_t token = next_token_++;
  InFlight f;
  f.source_topic = rec.topic;
  f.source_partition = rec.partition;
  f.source_offset = rec.offset;
  f.topic = config_.kafka.DlqTopic();
  f.key = rec.key;
  f.value = std::move(rec.value);
  f.dead_letter = true;
  f.attempts = 1;
  f.headers = {{"error.reason", reason},
               {"error.detail", detail},
               {"error.stage", stage},
               {"source.topic", rec.topic},
               {"source.partition", std::to_string(rec.partition)},
               {"source.offset", std::to_string(rec.offset)},
               {"attempts", "1"}};
  inflight_.emplace(token, std::move(f));
  Send(token);
}

void KafkaStream::FlushBatch() {
  if (batch_.empty()) return;
  if (postgres_text_mode_) {
    FlushTextBatch();
    return;
  }
  const size_t dim = encoder_.dim();
  std::vector<std::vector<int32_t>> seqs;
  seqs.reserve(batch_.size());
  for (auto& p : batch_) {
    seqs.push_back(std::move(p.token_ids));
    events_.Processing(p.id, p.user_id, p.event_key);
    events_.Stage(1, p.id, p.user_id, p.event_key);
  }
  vectors_.resize(batch_.size() * dim);
  const auto t0 = Clock::now();
  encoder_.EmbedTokens(seqs, vectors_.data());
  embed_latency_->Observe(std::chrono::duration<double>(Clock::now() - t0).count());
  batch_size_->Observe(static_cast<double>(batch_.size()));
  batch_tokens_hist_->Observe(static_cast<double>(batch_tokens_));
  for (const auto& p : batch_) events_.Stage(2, p.id, p.user_id, p.event_key);
  if (store_ != nullptr && !StoreBatch()) {
    // Stopping while the store is failing: produce nothing for this batch, so
    // its offsets are not committed and a restart consumes it again.
    batch_.clear();
    batch_tokens_ = 0;
    return;
  }
  // Rows a sink refused (index -> sink, reason): they go to the DLQ, not out.
  std::map<size_t, std::pair<std::string, std::string>> refused;
  std::map<size_t, std::string> rejected;
  if (postgres_ != nullptr) {
    if (!PostgresBatch(true, rejected)) {
      batch_.clear();  // as above
      batch_tokens_ = 0;
      return;
    }
    for (auto& [i, why] : rejected) refused.emplace(i, std::make_pair("postgres", why));
  }
  if (qdrant_ != nullptr) {
    if (!QdrantBatch(rejected)) {
      batch_.clear();  // as above
      batch_tokens_ = 0;
      return;
    }
    for (auto& [i, why] : rejected) refused.emplace(i, std::make_pair("qdrant", why));
  }
  const double now = UnixSeconds();
  const std::string& model_name = encoder_.info().model_name;
  for (size_t i = 0; i < batch_.size(); ++i) {
    Pending& p = batch_[i];
    if (auto r = refused.find(i); r != refused.end()) {
      const auto& [sink, why] = r->second;
      events_.Failed(p.id, p.user_id, p.event_key, sink + ": " + why);
      SendDeadLetter(std::move(p.source), "sink_rejected", sink, why);
      p.id.clear();  // no completion events below
      continue;
    }
    if (postgres_ != nullptr) stats_.postgres_rows.fetch_add(1, std::memory_order_relaxed);
    InFlight f;
    f.source_topic = p.source.topic;
    f.source_partition = p.source.partition;
    f.source_offset = p.source.offset;
    f.topic = config_.kafka.output_topic;
    f.key = p.id;
    f.input_timestamp = p.input_timestamp;
    f.attempts = 1;
    f.source_key = std::move(p.source.key);
    f.source_value = std::move(p.source.value);
    pipeline::OutputFields out;
    out.id = p.id;
    out.original_text = p.text;
    out.model_name = model_name;
    out.input_timestamp = p.input_timestamp;
    out.processing_timestamp = now;
    out.input_source = p.input_source;
    pipeline::AppendEmbeddingRecord(f.value, out, {vectors_.data() + i * dim, dim});
    const uint64_t token = next_token_++;
    inflight_.emplace(token, std::move(f));
    Send(token);
  }
  // Stage 3 is the store when there is one (done above), else the hand-over
  // to the producer; either way the record is now on its way out.
  for (const auto& p : batch_) {
    if (p.id.empty()) continue;  // went to the DLQ
    events_.Stage(3, p.id, p.user_id, p.event_key);
    events_.Completed(p.id, p.user_id, p.event_key, model_name, dim);
  }
  stats_.embedded.fetch_add(batch_.size(), std::memory_order_relaxed);
  stats_.batches.fetch_add(1, std::memory_order_relaxed);
  stats_.batch_records.fetch_add(batch_.size(), std::memory_order_relaxed);
  batch_.clear();
  batch_tokens_ = 0;
}

bool KafkaStream::RetryWrite(const char* sink, const std::function<Status()>& write) {
  auto log = GetLogger("stream");
  pipeline::CircuitBreaker& breaker = BreakerFor(sink);
  pipeline::Backoff backoff({std::chrono::milliseconds(config_.retry_base_ms),
                             std::chrono::milliseconds(config_.retry_max_ms)});
  for (int attempt = 1;;) {
    if (stop_ != nullptr && stop_->load() && attempt > 1) {
      log->error("{} sink still failing while stopping; the batch will be consumed again", sink);
      return false;
    }
    if (!breaker.Allow()) {
      // Open: no call until a probe is due; intake stays paused meanwhile.
      stats_.paused = true;
      const auto wait = std::clamp(breaker.RetryAfter(), std::chrono::milliseconds(10),
                                   std::chrono::milliseconds(200));
      std::this_thread::sleep_for(wait);
      if (stop_ != nullptr && stop_->load()) {
        log->error("{} sink circuit open while stopping; the batch will be consumed again", sink);
        return false;
      }
      continue;
    }
    Status st = write();
    if (st.ok()) {
      breaker.OnSuccess();
      break;
    }
    breaker.OnFailure();
    stats_.errors.fetch_add(1, std::memory_order_relaxed);
    const auto pause = backoff.Next();
    log->error("{} sink failed (attempt {}): {}; intake paused, retrying in {} ms", sink, attempt,
               st.error().ToString(), pause.count());
    stats_.paused = true;
    ++attempt;
    if (stop_ != nullptr && stop_->load()) continue;  // reported above on the next turn
    std::this_thread::sleep_for(pause);
  }
  return true;
}

bool KafkaStream::StoreBatch() {
  const size_t dim = encoder_.dim();
  const std::string& model_name = encoder_.info().model_name;
  std::vector<store::EmbeddedMessage> rows;
  rows.reserve(batch_.size());
  for (size_t i = 0; i < batch_.size(); ++i) {
    const float* v = vectors_.data() + i * dim;
    rows.push_back(
        {batch_[i].id, batch_[i].text, batch_[i].metadata_json, std::vector<float>(v, v + dim)});
  }
  return RetryWrite("store", [&]() -> Status {
    auto stored = store_->PutEmbedded(rows, model_name);
    if (!stored) return stored.error();
    return {};
  });
}

bool KafkaStream::PostgresBatch(bool with_vectors, std::map<size_t, std::string>& rejected) {
  const size_t dim = encoder_.dim();
  std::vector<sinks::PgRow> rows;
  rows.reserve(batch_.size());
  for (size_t i = 0; i < batch_.size(); ++i) {
    sinks::PgRow row{batch_[i].id, batch_[i].text, batch_[i].metadata_json, {}};
    if (with_vectors) row.vector.assign(vectors_.data() + i * dim, vectors_.data() + (i + 1) * dim);
    rows.push_back(std::move(row));
  }
  auto upsert = [&](std::span<const sinks::PgRow> part) {
    return with_vectors ? postgres_->Upsert(part) : postgres_->UpsertText(part);
  };
  return RetryWrite("postgres", [&]() -> Status {
    rejected.clear();
    auto n = upsert(rows);
    if (n.ok()) return {};
    if (n.error().code != errc::invalid_argument) return n.error();
    // Refused: find the rows it refuses, one by one; write the others.
    for (size_t i = 0; i < rows.size(); ++i) {
      auto one = upsert(std::span(rows).subspan(i, 1));
      if (one.ok()) continue;
      if (one.error().code != errc::invalid_argument) return one.error();
      rejected.emplace(i, one.error().message);
    }
    return {};
  });
}

bool KafkaStream::QdrantBatch(std::map<size_t, std::string>& rejected) {
  const size_t dim = encoder_.dim();
  std::vector<sinks::QdrantPoint> points;
  points.reserve(batch_.size());
  for (size_t i = 0; i < batch_.size(); ++i) {
    const Pending& p = batch_[i];
    sinks::QdrantPoint point;
    point.id = p.id;
    point.vector.assign(vectors_.data() + i * dim, vectors_.data() + (i + 1) * dim);
    // Mapped events carry their payload (with "text"); other records get
    // their metadata's fields plus "text".
    if (p.mapped) {
      point.payload_json = p.metadata_json;
    } else {
      JsonWriter text;
      text.String(p.text);
      std::string meta = p.metadata_json.empty() ? "{}" : p.metadata_json;
      while (!meta.empty() && meta.back() != '}') meta.pop_back();  // trailing space
      if (meta.size() >= 2 && meta.front() == '{') {
        meta.pop_back();
        const bool empty = meta.find_first_not_of(" \t\r\n", 1) == std::string::npos;
        point.payload_json = meta + (empty ? "" : ",") + "\"text\":" + text.Take() + "}";
      } else {
        point.payload_json = "{\"text\":" + text.Take() + "}";
      }
    }
    points.push_back(std::move(point));
  }
  if (!RetryWrite("qdrant", [&]() -> Status {
        rejected.clear();
        auto out = qdrant_->Upsert(points);
        if (!out) return out.error();
        for (const auto& r : out->rejected) rejected.emplace(r.index, r.message);
        return {};
      })) {
    return false;
  }
  // Points Qdrant refused get pipeline.retry_attempts tries in all (with
  // backoff) before they go to the DLQ; a refusal is usually about the record
  // and final, but a transient one then does not lose it.
  pipeline::Backoff backoff({std::chrono::milliseconds(config_.retry_base_ms),
                             std::chrono::milliseconds(config_.retry_max_ms)});
  for (int attempt = 2; attempt <= config_.retry_attempts && !rejected.empty(); ++attempt) {
    std::this_thread::sleep_for(backoff.Next());
    std::vector<size_t> again;
    std::vector<sinks::QdrantPoint> retry;
    for (const auto& [i, why] : rejected) {
      again.push_back(i);
      retry.push_back(points[i]);
    }
    std::map<size_t, std::string> still;
    if (!RetryWrite("qdrant", [&]() -> Status {
          still.clear();
          auto out = qdrant_->Upsert(retry);
          if (!out) return out.error();
          for (const auto& r : out->rejected) still.emplace(again[r.index], r.message);
          return {};
        })) {
      return false;
    }
    rejected = std::move(still);
  }
  return true;
}

void KafkaStream::FlushTextBatch() {
  std::map<size_t, std::string> rejected;
  if (!PostgresBatch(false, rejected)) {
    batch_.clear();  // stopping: not acked, consumed again after a restart
    batch_tokens_ = 0;
    return;
  }
  for (size_t i = 0; i < batch_.size(); ++i) {
    Pending& p = batch_[i];
    if (auto r = rejected.find(i); r != rejected.end()) {
      events_.Failed(p.id, p.user_id, p.event_key, "postgres: " + r->second);
      SendDeadLetter(std::move(p.source), "sink_rejected", "postgres", r->second);
      continue;
    }
    stats_.postgres_rows.fetch_add(1, std::memory_order_relaxed);
    tracker_.Ack(p.source.topic, p.source.partition, p.source.offset);
  }
  stats_.batches.fetch_add(1, std::memory_order_relaxed);
  stats_.batch_records.fetch_add(batch_.size(), std::memory_order_relaxed);
  batch_.clear();
  batch_tokens_ = 0;
}

void KafkaStream::Send(uint64_t token) {
  auto it = inflight_.find(token);
  if (it == inflight_.end()) return;
  InFlight& f = it->second;
  for (;;) {
    const Status st = producer_->Produce(f.topic, f.key, f.value, f.headers, token);
    if (st.ok()) {
      f.sent_at = Clock::now();
      return;
    }
    if (st.error().code == errc::unavailable) {  // local queue full: let deliveries drain
      producer_->Poll(50);
      continue;
    }
    Reject(it, st.error().message);
    return;
  }
}

// The broker or client refuses a record for what it is: its input goes to
// the DLQ with the reason; a dead letter that cannot be written either is
// logged and acknowledged, so one poisoned record cannot stop its partition.
void KafkaStream::Reject(std::map<uint64_t, InFlight>::iterator it, const std::string& why) {
  auto log = GetLogger("stream");
  InFlight& f = it->second;
  if (!f.dead_letter) {
    log->warn("output for {}/{}@{} refused ({}); sending the input to the DLQ", f.source_topic,
              f.source_partition, f.source_offset, why);
    sources::ConsumedRecord rec;
    rec.topic = f.source_topic;
    rec.partition = f.source_partition;
    rec.offset = f.source_offset;
    rec.key = std::move(f.source_key);
    rec.value = std::move(f.source_value);
    inflight_.erase(it);
    SendDeadLetter(std::move(rec), "output_rejected", "produce", why);
    return;
  }
  log->error("dead letter for {}/{}@{} refused too ({}); skipping it", f.source_topic,
             f.source_partition, f.source_offset, why);
  tracker_.Ack(f.source_topic, f.source_partition, f.source_offset);
  inflight_.erase(it);
}

void KafkaStream::OnDelivery(const sinks::DeliveryReport& report) {
  auto it = inflight_.find(report.token);
  if (it == inflight_.end()) return;
  InFlight& f = it->second;
  if (report.ok) {
    if (f.dead_letter) {
      stats_.dlq.fetch_add(1, std::memory_order_relaxed);
    } else {
      stats_.produced.fetch_add(1, std::memory_order_relaxed);
      e2e_latency_->Observe(std::max(0.0, UnixSeconds() - f.input_timestamp));
      deliver_latency_->Observe(std::chrono::duration<double>(Clock::now() - f.sent_at).count());
    }
    tracker_.Ack(f.source_topic, f.source_partition, f.source_offset);
    inflight_.erase(it);
    if (retries_.empty()) backoff_.Reset();
    return;
  }
  stats_.errors.fetch_add(1, std::memory_order_relaxed);
  if (report.permanent) {
    Reject(it, report.error);
    return;
  }
  const auto delay = backoff_.Next();
  GetLogger("stream")->warn("delivery to {} failed ({}), attempt {}; retrying in {} ms", f.topic,
                            report.error, f.attempts, delay.count());
  ++f.attempts;
  if (f.dead_letter) {
    for (auto& h : f.headers) {
      if (h.first == "attempts") h.second = std::to_string(f.attempts);
    }
  }
  retries_.emplace_back(Clock::now() + delay, report.token);
}

void KafkaStream::FinishInHand(std::chrono::seconds limit) {
  FlushBatch();
  const auto deadline = Clock::now() + limit;
  while (!inflight_.empty() && Clock::now() < deadline) {
    producer_->Poll(20);
    RetryDue();
  }
  CommitSafe(true);
}

void KafkaStream::RetryDue() {
  const auto now = Clock::now();
  while (!retries_.empty() && retries_.front().first <= now) {
    const uint64_t token = retries_.front().second;
    retries_.pop_front();
    Send(token);
  }
}

void KafkaStream::OnRebalance(bool assigned,
                              const std::vector<std::pair<std::string, int32_t>>& parts) {
  if (assigned) {
    for (const auto& p : parts) assigned_.insert(p);
    return;
  }
  // Revoked: finish what we hold for these partitions, commit it, forget them.
  FinishInHand(std::chrono::seconds(10));
  for (const auto& p : parts) {
    tracker_.Drop(p.first, p.second);
    assigned_.erase(p);
  }
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    if (!Assigned(it->second.source_topic, it->second.source_partition)) {
      it = inflight_.erase(it);  // the next owner consumes it again
    } else {
      ++it;
    }
  }
  retries_.erase(std::remove_if(retries_.begin(), retries_.end(),
                                [this](const auto& r) { return inflight_.count(r.second) == 0; }),
                 retries_.end());
}

void KafkaStream::CommitSafe(bool sync) {
  last_commit_ = Clock::now();
  for (auto& p : tracker_.TakeCommittable()) {
    uncommitted_[{p.topic, p.partition}] = p.next_offset;
  }
  std::vector<pipeline::CommitPoint> points;
  for (auto it = uncommitted_.begin(); it != uncommitted_.end();) {
    if (!Assigned(it->first.first, it->first.second)) {
      it = uncommitted_.erase(it);  // not ours any more: the new owner commits
      continue;
    }
    points.push_back({it->first.first, it->first.second, it->second});
    ++it;
  }
  if (points.empty()) return;
  const Status st = consumer_->Commit(points, sync);
  if (!st.ok()) {  // kept in uncommitted_: the next commit tries again
    GetLogger("stream")->warn("offset commit failed: {}", st.error().message);
    return;
  }
  uncommitted_.clear();
  stats_.commits.fetch_add(1, std::memory_order_relaxed);
}

void KafkaStream::UpdateLag() {
  last_lag_ = Clock::now();
  auto lag = consumer_->Lag();
  std::lock_guard<std::mutex> lock(lag_mu_);
  lag_ = std::move(lag);
}

std::vector<sources::PartitionLag> KafkaStream::Lag() const {
  std::lock_guard<std::mutex> lock(lag_mu_);
  return lag_;
}

}  // namespace embedstream::app
