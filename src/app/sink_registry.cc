#include "app/sink_registry.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "app/postgres_service.h"
#include "app/qdrant_options.h"
#include "sinks/pipeline_sinks.h"
#include "sinks/store_sink.h"

namespace embedstream::app {
namespace {

using SinkPtr = std::unique_ptr<pipeline::Sink>;

// JsonLinesSink over a file it opened (and closes).
class FileJsonLinesSink : public sinks::JsonLinesSink {
 public:
  FileJsonLinesSink(int fd, std::string model_name, std::string source)
      : JsonLinesSink(fd, std::move(model_name), std::move(source)), fd_(fd) {}
  ~FileJsonLinesSink() override { ::close(fd_); }

 private:
  const int fd_;
};

Result<SinkPtr> OpenStore(const SinkContext& ctx) {
  if (ctx.store == nullptr) return Error(errc::invalid_argument, "store: the store is disabled");
  // HTTP ingest's messages are in the store already (its outbox): only the
  // vector is written, for the revision read.
  const auto mode =
      ctx.source == "http" ? sinks::StoreSink::Mode::kOutbox : sinks::StoreSink::Mode::kUpsert;
  return SinkPtr(
      std::make_unique<sinks::StoreSink>(*ctx.store, ctx.encoder.info().model_name, mode));
}

Result<SinkPtr> OpenPostgres(const SinkContext& ctx) {
  // Fed by the PostgreSQL source, the rows are the text table's own: any id
  // type, vectors only (the source marks them done).
  const bool own_rows = ctx.source == "postgres";
  auto sink = OpenPostgresSink(ctx.config, ctx.encoder, /*for_writes=*/!own_rows);
  if (!sink) return sink.error();
  const auto mode = own_rows ? sinks::PgvectorSink::Mode::kVectors
                    : ctx.config.postgres.sink_mode == "text"
                        ? sinks::PgvectorSink::Mode::kText
                        : sinks::PgvectorSink::Mode::kEmbeddings;
  return SinkPtr(std::make_unique<sinks::PgvectorSink>(
      std::shared_ptr<sinks::PostgresSink>(std::move(*sink)), mode));
}

Result<SinkPtr> OpenQdrant(const SinkContext& ctx) {
  auto sink = sinks::QdrantSink::Connect(QdrantOptions(ctx.config.qdrant, ctx.encoder.dim()));
  if (!sink) return sink.error();
  return SinkPtr(std::make_unique<sinks::QdrantPointSink>(
      std::shared_ptr<sinks::QdrantSink>(std::move(*sink))));
}

Result<SinkPtr> OpenKafka(const SinkContext& ctx) {
  const KafkaSettings& k = ctx.config.kafka;
  sinks::KafkaTopicSink::Options o;
  o.producer.bootstrap_servers = k.bootstrap_servers;
  o.producer.properties = k.properties;
  o.topic = k.output_topic;
  o.model_name = ctx.encoder.info().model_name;
  auto sink = sinks::KafkaTopicSink::Create(std::move(o));
  if (!sink) return sink.error();
  return SinkPtr(std::move(*sink));
}

Result<SinkPtr> OpenJsonLines(const SinkContext& ctx) {
  const std::string& path = ctx.config.jsonl_path;
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Error(errc::invalid_argument,
                 "sinks.jsonl.path " + path + ": " + std::string(std::strerror(errno)));
  }
  return SinkPtr(
      std::make_unique<FileJsonLinesSink>(fd, ctx.encoder.info().model_name, ctx.source));
}

}  // namespace

const std::vector<SinkSpec>& SinkRegistry() {
  static const std::vector<SinkSpec> specs = {
      {"store", "the embedded store (SQLite + HNSW): text, metadata, vector", OpenStore},
      {"postgres", "PostgreSQL + pgvector: text and embeddings tables", OpenPostgres},
      {"qdrant", "Qdrant points: id, vector, payload", OpenQdrant},
      {"kafka", "the embeddings topic: seed 000 records keyed by id", OpenKafka},
      {"jsonl", "seed 000 records, one JSON line each, appended to a file", OpenJsonLines},
  };
  return specs;
}

Result<std::vector<std::unique_ptr<pipeline::Sink>>> OpenSinks(const SinkContext& ctx) {
  std::vector<std::unique_ptr<pipeline::Sink>> out;
  for (const auto& name : ctx.config.SinksOf(ctx.source)) {
    const auto& specs = SinkRegistry();
    auto it =
        std::find_if(specs.begin(), specs.end(), [&](const SinkSpec& s) { return name == s.name; });
    if (it == specs.end()) {
      return Error(errc::invalid_argument,
                   "sources." + ctx.source + ".sinks: unknown sink " + name);
    }
    auto sink = it->open(ctx);
    if (!sink) {
      return Error(sink.error().code,
                   "sources." + ctx.source + " -> " + name + ": " + sink.error().message);
    }
    out.push_back(std::move(*sink));
  }
  return out;
}

}  // namespace embedstream::app
