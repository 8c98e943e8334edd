#pragma once
// The PostgreSQL parts of `embedstream serve`, as configured (serve_config.h):
//   - sources.postgres: a PostgresSource on its own thread, embedding the
//     pending rows of postgres.text_table (seed 001's CQRS read side);
//   - search.backend postgres: a connection for POST /embeddings/search
//     (pgvector `<=>`), used by the API's search thread;
//   - sinks.postgres: OpenPostgresSink() for the Kafka pipeline.
// Every connection is made at start: an unreachable server or a schema that
// does not fit (another dimension) is a start-up error, not a later surprise.
// Later outages are retried (the source backs off; a search answers 503).

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "api/api_routes.h"
#include "app/serve_config.h"
#include "core/result.h"
#include "model/sentence_encoder.h"
#include "sinks/postgres_sink.h"
#include "sources/postgres_source.h"

namespace embedstream::app {

// A sink over postgres.* (one connection, one thread): the Kafka pipeline's
// (for_writes: the text id must be uuid) or the search connection's.
Result<std::unique_ptr<sinks::PostgresSink>> OpenPostgresSink(const ServeConfig& config,
                                                              const model::SentenceEncoder& encoder,
                                                              bool for_writes = true);

// store::Filter (metadata equalities, dotted paths) as a JSON object for
// jsonb containment: {"metadata.a.b": 1, "c": "x"} -> {"a":{"b":1},"c":"x"}.
// invalid_argument when a literal is not JSON or two paths collide.
Result<std::string> FilterToContainment(const store::Filter& filter);

class PostgresService {
 public:
  // Connects the source and/or the search connection, as enabled.
  static Result<std::unique_ptr<PostgresService>> Open(const ServeConfig& config,
                                                       model::SentenceEncoder& encoder);
  ~PostgresService();  // Stop()s
  PostgresService(const PostgresService&) = delete;
  PostgresService& operator=(const PostgresService&) = delete;

  void Start();  // the source thread
  void Stop();   // stops the source after its current round; joins

  bool has_source() const { return source_ != nullptr; }
  // False while the source's connection is down (GET /ready answers 503).
  bool connected() const { return source_ == nullptr || source_->stats().connected.load(); }
  // {"embedded", "batches", "errors", "reconnects", "notifications", "polls",
  //  "connected", "listening", "pending", "oldest_pending_age_s"}
  std::string SourceStatsJson() const;
  // The search backend for ApiOptions; empty when search.backend is embedded.
  api::SearchBackend search_backend();

 private:
  PostgresService() = default;
  void RegisterMetrics();

  std::unique_ptr<sources::PostgresSource> source_;
  std::unique_ptr<sinks::PostgresSink> search_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace embedstream::app
