#pragma once
// The PostgreSQL parts of `embedstream serve`, as configured (serve_config.h):
//   - sources.postgres: OpenPostgresSource() for the `postgres` pipeline
//     (seed 001's CQRS read side), its /stats object and metrics;
//   - search.backend postgres: a connection for POST /embeddings/search
//     (pgvector `<=>`), used by the API's search thread (PostgresSearch);
//   - the `postgres` sink: OpenPostgresSink().
// Every connection is made at start: an unreachable server or a schema that
// does not fit (another dimension) is a start-up error, not a later surprise.
// Later outages are retried (the source backs off; a search answers 503).

#include <memory>
#include <string>

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

// The source over postgres.* and sources.postgres (pg reembed: `reembed`
// takes rows of other models too, `finite` ends when nothing is pending).
Result<std::unique_ptr<sources::PostgresSource>> OpenPostgresSource(
    const ServeConfig& config, const model::SentenceEncoder& encoder, bool reembed = false,
    bool finite = false);

// /stats "postgres_source" and /status "postgres": {"embedded", "claimed",
// "batches", "dead_letters", "errors", "reconnects", "notifications",
// "polls", "open_claims", "connected", "listening", "pending",
// "oldest_pending_age_s"}.
std::string PostgresSourceStatsJson(const sources::PostgresSource& source);
// embedstream_pg_source_* metrics of `source`, which must outlive the process' metrics.
void RegisterPostgresSourceMetrics(const sources::PostgresSource* source);

// search.backend postgres: one connection, used by the API's search thread.
class PostgresSearch {
 public:
  static Result<std::unique_ptr<PostgresSearch>> Open(const ServeConfig& config,
                                                      const model::SentenceEncoder& encoder);
  api::SearchBackend backend();

 private:
  std::unique_ptr<sinks::PostgresSink> search_;
};

}  // namespace embedstream::app
