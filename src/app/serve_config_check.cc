#include "app/serve_config.h"

// ServeConfig's checks (ValidateServeConfig) and which source feeds which
// sinks (Sources, SinksOf); loading is in serve_config.cc.

#include <algorithm>
#include <string>
#include <vector>

namespace embedstream::app {

std::vector<std::string> ServeConfig::Sources() const {
  std::vector<std::string> out;
  if (store_enabled && !ingest.kafka()) out.emplace_back("http");
  if (kafka.enabled()) out.emplace_back("kafka");
  if (postgres.source_enabled) out.emplace_back("postgres");
  return out;
}

std::vector<std::string> ServeConfig::SinksOf(const std::string& source) const {
  if (auto it = source_sinks.find(source); it != source_sinks.end()) return it->second;
  std::vector<std::string> out;
  if (source == "kafka") {
    if (postgres.sink_mode == "text") return {"postgres"};
    // The store first: a record is searchable before it is announced downstream.
    if (store_enabled) out.emplace_back("store");
    if (postgres.sink_mode == "embeddings") out.emplace_back("postgres");
    if (qdrant.enabled()) out.emplace_back("qdrant");
    out.emplace_back("kafka");
  } else if (source == "http") {
    out.emplace_back("store");
  } else if (source == "postgres") {
    out.emplace_back("postgres");
  }
  return out;
}

namespace {

// Why `sink` cannot be written by `source` in `c` (empty: it can).
std::string SinkUnusable(const ServeConfig& c, const std::string& sink) {
  if (sink == "store" && !c.store_enabled) return "the embedded store is disabled (store.enabled)";
  if (sink == "kafka" && !c.kafka.enabled()) {
    return "it produces to Kafka: set kafka.bootstrap_servers (--kafka-brokers)";
  }
  if (sink == "qdrant" && !c.qdrant.enabled()) return "set sinks.qdrant.url (--qdrant-url)";
  if (sink == "jsonl" && c.jsonl_path.empty()) return "set sinks.jsonl.path";
  return {};
}

Status ValidateSourceSinks(const ServeConfig& c) {
  for (const auto& entry : c.source_sinks) {
    const std::string& source = entry.first;  // (a lambda cannot capture a binding in clang 14)
    if (std::find_if(std::begin(kSourceNames), std::end(kSourceNames),
                     [&](const char* n) { return source == n; }) == std::end(kSourceNames)) {
      return Error(errc::invalid_argument,
                   "sources." + source + ": unknown source (http, kafka, postgres)");
    }
    const auto running = c.Sources();
    if (std::find(running.begin(), running.end(), source) == running.end()) {
      return Error(errc::invalid_argument,
                   "sources." + source + ".sinks is set but that source does not run: " +
                       (source == "kafka"  ? "set kafka.bootstrap_servers (--kafka-brokers)"
                        : source == "http" ? "store.enabled is false (HTTP ingest needs the store)"
                                           : "set sources.postgres.enabled"));
    }
  }
  for (const auto& source : c.Sources()) {
    const auto sinks = c.SinksOf(source);
    const std::string where = "sources." + source + ".sinks";
    if (sinks.empty()) {
      return Error(errc::invalid_argument,
                   where +
                       " is empty: a source needs at least one sink (store, postgres, "
                       "qdrant, kafka, jsonl)");
    }
    for (size_t i = 0; i < sinks.size(); ++i) {
      const std::string& sink = sinks[i];
      if (std::find_if(std::begin(kSinkNames), std::end(kSinkNames),
                       [&](const char* n) { return sink == n; }) == std::end(kSinkNames)) {
        return Error(errc::invalid_argument, where + ": unknown sink '" + sink +
                                                 "' (store, postgres, qdrant, kafka, jsonl)");
      }
      if (std::find(sinks.begin(), sinks.begin() + static_cast<long>(i), sink) !=
          sinks.begin() + static_cast<long>(i)) {
        return Error(errc::invalid_argument, where + ": '" + sink + "' is named twice");
      }
      if (auto why = SinkUnusable(c, sink); !why.empty()) {
        return Error(errc::invalid_argument, where + ": " + sink + ": " + why);
      }
    }
    if (source == "kafka" && c.postgres.sink_mode == "text" && sinks.size() > 1) {
      return Error(errc::invalid_argument,
                   where +
                       ": sinks.postgres.mode text embeds nothing on the Kafka path, so it "
                       "must be the only sink (the others need vectors)");
    }
  }
  return Status::Ok();
}

}  // namespace

Status ValidateServeConfig(const ServeConfig& c) {
  if (c.kafka.input_topics.empty()) {
    return Error(errc::invalid_argument, "kafka.input_topics is empty");
  }
  if (c.kafka.auto_offset_reset != "earliest" && c.kafka.auto_offset_reset != "latest") {
    return Error(errc::invalid_argument, "kafka.auto_offset_reset must be earliest or latest");
  }
  if (c.http_port < 0 || c.http_port > 65535) {
    return Error(errc::invalid_argument, "http.port must be within [0, 65535]");
  }
  if (c.batch_max_tokens < 2) return Error(errc::invalid_argument, "batch.max_tokens too small");
  if (c.batch_max_wait_ms < 0) return Error(errc::invalid_argument, "batch.max_wait_ms < 0");
  if (c.batch_linger_ms < 0) return Error(errc::invalid_argument, "batch.linger_ms < 0");
  if (c.max_inflight < 1) return Error(errc::invalid_argument, "pipeline.max_inflight < 1");
  if (c.max_inflight_bytes < (1u << 20)) {
    return Error(errc::invalid_argument, "pipeline.max_inflight_bytes < 1 MiB");
  }
  if (c.http_max_body_bytes < 64) return Error(errc::invalid_argument, "http.max_body_bytes < 64");
  if (c.store_enabled && c.store_dir.empty()) {
    return Error(errc::invalid_argument, "store.dir is empty");
  }
  if (c.store_max_queue < 1) return Error(errc::invalid_argument, "store.max_queue < 1");
  if (c.store_max_queue_bytes < c.http_max_body_bytes) {
    return Error(errc::invalid_argument,
                 "store.max_queue_bytes must be at least http.max_body_bytes (one message)");
  }
  if (c.http_max_connections < 1) {
    return Error(errc::invalid_argument, "http.max_connections < 1");
  }
  if (c.http_write_timeout_ms < 100) {
    return Error(errc::invalid_argument, "http.write_timeout_ms < 100");
  }
  if (c.http_max_response_bytes < 64 * 1024) {
    return Error(errc::invalid_argument, "http.max_response_bytes < 65536");
  }
  if (c.sse_max_client_bytes < 64 * 1024 || c.sse_max_total_bytes < c.sse_max_client_bytes) {
    return Error(errc::invalid_argument,
                 "sse.max_client_bytes must be >= 65536 and sse.max_total_bytes >= it");
  }
  if (!c.auth_read_token.empty() && c.auth_token.empty()) {
    return Error(errc::invalid_argument,
                 "auth.read_token needs auth.token: without it every route is open anyway");
  }
  if (!c.auth_read_token.empty() && c.auth_read_token == c.auth_token) {
    return Error(errc::invalid_argument, "auth.read_token must differ from auth.token");
  }
  for (const auto& origin : c.http_cors_origins) {
    if (origin != "*" && origin.find("://") == std::string::npos) {
      return Error(errc::invalid_argument, "http.cors_origins: '" + origin +
                                               "' is not an origin (scheme://host[:port]) or *");
    }
  }
  if (c.sse_heartbeat_ms < 100) return Error(errc::invalid_argument, "sse.heartbeat_ms < 100");
  const std::string& mode = c.postgres.sink_mode;
  if (mode != "off" && mode != "embeddings" && mode != "text") {
    return Error(errc::invalid_argument,
                 "sinks.postgres.mode must be off, embeddings or text, not '" + mode + "'");
  }
  if (mode != "off" && !c.kafka.enabled() && c.source_sinks.empty()) {
    return Error(errc::invalid_argument,
                 "sinks.postgres writes what the Kafka pipeline consumes: set "
                 "kafka.bootstrap_servers (--kafka-brokers)");
  }
  if (c.search_backend != "embedded" && c.search_backend != "postgres" &&
      c.search_backend != "qdrant") {
    return Error(
        errc::invalid_argument,
        "search.backend must be embedded, postgres or qdrant, not '" + c.search_backend + "'");
  }
  if (c.search_backend != "embedded" && !c.store_enabled) {
    return Error(errc::invalid_argument,
                 "search.backend " + c.search_backend +
                     " is served by the HTTP API, which needs store.enabled");
  }
  if (c.search_backend == "qdrant" && !c.qdrant.enabled()) {
    return Error(errc::invalid_argument, "search.backend qdrant needs sinks.qdrant.url");
  }
  if (c.qdrant.enabled() && c.qdrant.url.rfind("http://", 0) != 0 &&
      c.qdrant.url.rfind("https://", 0) != 0) {
    return Error(
        errc::invalid_argument,
        "sinks.qdrant.url must start with http:// or https://, not '" + c.qdrant.url + "'");
  }
  if (c.qdrant.enabled() && c.kafka.enabled() && mode == "text" &&
      !c.source_sinks.contains("kafka")) {
    return Error(errc::invalid_argument,
                 "sinks.qdrant needs vectors, but sinks.postgres.mode text embeds nothing on the "
                 "Kafka path");
  }
  if (c.ingest.mode != "store" && c.ingest.mode != "kafka") {
    return Error(errc::invalid_argument,
                 "ingest.mode must be store or kafka, not '" + c.ingest.mode + "'");
  }
  if (c.ingest.kafka() && !c.kafka.enabled()) {
    return Error(errc::invalid_argument,
                 "ingest.mode kafka produces POST /messages to Kafka: set kafka.bootstrap_servers "
                 "(--kafka-brokers)");
  }
  if (c.ingest.kafka() && !c.store_enabled) {
    return Error(errc::invalid_argument,
                 "ingest.mode kafka is served by the HTTP API, which needs store.enabled");
  }
  if (c.ingest.timeout_ms < 100) return Error(errc::invalid_argument, "ingest.timeout_ms < 100");
  if (c.events.bus != "local" && c.events.bus != "kafka" && c.events.bus != "redis") {
    return Error(errc::invalid_argument,
                 "events.bus must be local, kafka or redis, not '" + c.events.bus + "'");
  }
  if (c.events.bus == "kafka" && !c.kafka.enabled()) {
    return Error(errc::invalid_argument,
                 "events.bus kafka needs kafka.bootstrap_servers (--kafka-brokers)");
  }
  if (c.events.bus == "kafka" && c.events.topic.empty()) {
    return Error(errc::invalid_argument, "events.topic is empty");
  }
  if (c.events.bus == "redis" && c.events.redis_url.empty()) {
    return Error(errc::invalid_argument,
                 "events.bus redis needs events.redis_url (env REDIS_URL, --redis-url)");
  }
  if (c.events.bus == "redis" && c.events.redis_url.rfind("redis://", 0) != 0) {
    return Error(errc::invalid_argument, "events.redis_url must start with redis://, not '" +
                                             MaskUrlUserinfo(c.events.redis_url) + "'");
  }
  if (c.retry_attempts < 1) return Error(errc::invalid_argument, "pipeline.retry_attempts < 1");
  if (c.qdrant.batch_size < 1) return Error(errc::invalid_argument, "sinks.qdrant.batch_size < 1");
  if (Status st = pipeline::ValidateCircuitBreakerOptions(c.breaker); !st) {
    return Error(errc::invalid_argument, "pipeline.breaker: " + st.error().message);
  }
  for (const auto& [topic, mapping] : c.kafka.mappings) {
    if (std::find(c.kafka.input_topics.begin(), c.kafka.input_topics.end(), topic) ==
        c.kafka.input_topics.end()) {
      return Error(errc::invalid_argument, "kafka.mappings." + topic + ": not an input topic");
    }
    if (auto compiled = pipeline::CompiledMapping::Compile(mapping); !compiled) {
      return Error(errc::invalid_argument,
                   "kafka.mappings." + topic + ": " + compiled.error().message);
    }
  }
  if (c.postgres.poll_interval_ms < 10) {
    return Error(errc::invalid_argument, "sources.postgres.poll_interval_ms < 10");
  }
  if (c.postgres.connection.port <= 0 || c.postgres.connection.port > 65535) {
    return Error(errc::invalid_argument, "postgres.port must be within [1, 65535]");
  }
  if (!c.kafka.enabled() && !c.store_enabled && !c.postgres.source_enabled) {
    return Error(errc::invalid_argument,
                 "nothing to run: no Kafka brokers, no PostgreSQL source and the embedded store "
                 "is disabled");
  }
  return ValidateSourceSinks(c);
}

}  // namespace embedstream::app
