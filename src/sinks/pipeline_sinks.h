#pragma once
// The sinks as pipeline::Sink: each turns its client's answers into the
// runtime's three outcomes (pipeline/stage.h): stored except `refused` (the
// record's fault), kUnavailable (the sink's: retried, intake paused) and
// kTooLarge (the batch is split).
//
//   KafkaTopicSink   seed 000 `embeddings` records keyed by id; acked by the
//                    broker (acks=all) before Write returns. Every produce or
//                    delivery failure is kUnavailable (unknown topic, brokers
//                    down, a fatal idempotence error) except a record too
//                    large for the topic (refused). A retried batch skips
//                    the records already delivered.
//   PgvectorSink     PostgresSink::Upsert (text + vector), UpsertText (text
//                    mode) or UpsertVectors (fed by the PostgreSQL source of
//                    the same table); a batch PostgreSQL refuses is written
//                    row by row to find the refused rows.
//   QdrantPointSink  QdrantSink::Upsert; HTTP 413 from Qdrant or a proxy is
//                    kTooLarge; points Qdrant refuses are refused. Then one
//                    delete per batch: deleted documents, and a written
//                    document's points of another chunk count.
//   JsonLinesSink    seed 000 `embeddings` records, one JSON line each, to a
//                    file descriptor (stdout, a file), in batch order.
//
// Each object belongs to its sink thread (the clients are not thread-safe).

#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "pipeline/stage.h"
#include "sinks/kafka_producer.h"
#include "sinks/postgres_sink.h"
#include "sinks/qdrant_sink.h"

namespace embedstream::sinks {

class KafkaTopicSink : public pipeline::Sink {
 public:
  struct Options {
    KafkaProducerOptions producer;
    std::string topic = "embeddings";
    std::string model_name;
    int delivery_wait_ms = 30000;  // per Write: longer is kUnavailable
  };
  static Result<std::unique_ptr<KafkaTopicSink>> Create(Options options);
  ~KafkaTopicSink() override;
  const std::string& name() const override { return name_; }
  pipeline::WriteResult Write(std::span<const pipeline::SinkItem> items) override;

 private:
  explicit KafkaTopicSink(Options options) : options_(std::move(options)) {}
  struct Delivery {
    bool done = false;
    bool ok = false;
    bool permanent = false;
    std::string error;
  };
  const std::string name_ = "kafka";
  Options options_;
  std::vector<Delivery> deliveries_;  // of the current Write, by token - base_
  uint64_t base_ = 1;                 // first token of the current Write
  // Records of the batch being retried that the broker already has.
  std::unordered_set<const pipeline::Record*> delivered_;
  std::unique_ptr<KafkaProducer> producer_;  // last: destroyed (flushed) first
};

class PgvectorSink : public pipeline::Sink {
 public:
  enum class Mode {
    kEmbeddings,  // text and vector rows (Upsert)
    kText,        // only the text table (seed 001's writer; the PostgreSQL source embeds them)
    kVectors,     // only the vector rows, for the PostgreSQL source's own table
  };
  PgvectorSink(std::shared_ptr<PostgresSink> sink, Mode mode)
      : sink_(std::move(sink)), mode_(mode) {}
  const std::string& name() const override { return name_; }
  pipeline::WriteResult Write(std::span<const pipeline::SinkItem> items) override;

 private:
  std::shared_ptr<PostgresSink> sink_;
  const Mode mode_;
  const std::string name_ = "postgres";
};

class QdrantPointSink : public pipeline::Sink {
 public:
  explicit QdrantPointSink(std::shared_ptr<QdrantSink> sink) : sink_(std::move(sink)) {}
  const std::string& name() const override { return name_; }
  pipeline::WriteResult Write(std::span<const pipeline::SinkItem> items) override;
  // The payload of a record's point: a mapped event's payload as it is
  // (it holds "text"), else its metadata's fields plus "text".
  static std::string Payload(const pipeline::Record& r);
  // Payload() plus parent_id, chunk_index, chunk_count (every point: a
  // document's points are found by parent_id to replace or delete them) and
  // char_start/char_end for a chunk.
  static std::string ChunkPayload(const pipeline::Record& r);

 private:
  std::shared_ptr<QdrantSink> sink_;
  const std::string name_ = "qdrant";
};

class JsonLinesSink : public pipeline::Sink {
 public:
  // `default_source`: input_source of records that carry none.
  JsonLinesSink(int fd, std::string model_name, std::string default_source)
      : fd_(fd), model_name_(std::move(model_name)), default_source_(std::move(default_source)) {}
  const std::string& name() const override { return name_; }
  // kUnavailable when the descriptor refuses the bytes (disk full); a closed
  // pipe (EPIPE, `| head`) counts as written: nobody reads any more.
  pipeline::WriteResult Write(std::span<const pipeline::SinkItem> items) override;

 private:
  const int fd_;
  const std::string model_name_;
  const std::string default_source_;
  const std::string name_ = "jsonl";
  std::string out_;
};

}  // namespace embedstream::sinks
