#pragma once
// ServeConfig: everything `embedstream serve` runs with, resolved from a
// YAML file, then the environment, then flags (later wins). Plain data.
//
//   kafka:
//     bootstrap_servers: 127.0.0.1:9092     # env KAFKA_BOOTSTRAP_SERVERS
//     group_id: embedstream                 # env KAFKA_GROUP_ID
//     input_topics: [text-messages]         # env KAFKA_INPUT_TOPICS (comma-separated)
//     output_topic: embeddings              # env KAFKA_OUTPUT_TOPIC
//     dlq_topic: ""                         # "" = <first input topic>-dlq
//     auto_offset_reset: earliest           # earliest | latest
//     properties: {}                        # extra librdkafka settings
//     mappings:                             # per input topic: how to read an event
//       ecommerce-events:                   # (seed 002); topics without one take
//         id_field: event_id                # seed 000/001 records or plain text
//         text_template: "{product.name}. {product.description}"
//         payload_fields: [event_type, user_id, product.category, product.price]
//         timestamp_field: timestamp
//   batch:
//     max_tokens: 8192                      # token budget of one forward pass
//     max_wait_ms: 50                       # no record waits longer than this for a batch
//     linger_ms: 0                          # when the input is idle, wait this long for more
//   pipeline:
//     max_inflight: 20000                   # unacknowledged records before intake pauses
//     max_inflight_bytes: 268435456         # their bytes (text, metadata, tokens, vectors): 256
//     MiB max_record_bytes: 1048576             # larger records go to the DLQ retry_base_ms: 200
//     retry_max_ms: 10000
//     retry_attempts: 3                     # tries for a record a sink refuses (e.g. a
//                                           # 400) before the DLQ; a sink that is down
//                                           # is retried without limit (intake pauses)
//     breaker:                              # a circuit breaker per sink
//       failure_threshold: 5                # consecutive failures that open it
//       failure_rate: 0.5                   # or this failure rate over 20 calls
//       open_ms: 5000                       # first open period (doubles, up to open_max_ms)
//       open_max_ms: 60000
//   http:
//     host: 0.0.0.0                         # env EMBEDSTREAM_HTTP_HOST
//     port: 5000                            # env EMBEDSTREAM_HTTP_PORT / PORT
//     max_body_bytes: 1048576               # larger request bodies get a 413
//     max_document_bytes: 16777216          # POST /documents bodies (16 MiB)
//     max_connections: 4096                 # more at once: 503 at accept
//     write_timeout_ms: 30000               # a response not written by then: closed
//     max_response_bytes: 8388608           # lists and searches page past this ("next")
//     cors_origins: []                      # origins allowed cross-origin ("*": any)
//   auth:                                   # docs/SECURITY.md
//     token: ""                             # env EMBEDSTREAM_AUTH_TOKEN; set: every route
//                                           # but /health and /ready needs
//                                           # "Authorization: Bearer <token>"
//     read_token: ""                        # env EMBEDSTREAM_AUTH_READ_TOKEN; reads only
//     public_metrics: false                 # true: /metrics needs no token
//   store:
//     enabled: true                         # the embedded store (HTTP ingest, search);
//                                           # with Kafka it is a second sink
//     dir: data                             # env EMBEDSTREAM_DATA_DIR
//     sync: full                            # full (fsync per commit) | normal
//     max_queue: 10000                      # POSTs waiting for a commit before 503
//     max_queue_bytes: 67108864             # the same in bytes (text + metadata + id)
//   ingest:                                 # POST /messages (many instances: docs/SCALING.md)
//     mode: store                           # env EMBEDSTREAM_INGEST_MODE, --ingest; store (the
//                                           # embedded store is the outbox) | kafka (produced to
//                                           # the input topic, 202 after the broker's ack)
//     topic: ""                             # kafka mode; "" = the first kafka.input_topics
//     timeout_ms: 5000                      # kafka mode: no broker ack by then -> 503
//   events:                                 # lifecycle events (SSE) across instances
//     bus: local                            # env EMBEDSTREAM_EVENTS_BUS, --events-bus;
//                                           # local | kafka | redis (app/event_bus.h)
//     topic: embedstream-events             # kafka: one partition (ids = offsets)
//     redis_url: ""                         # env REDIS_URL; redis://[:password@]host:port[/db]
//     redis_prefix: embedstream:events      # <prefix>:stream, :seq; channels <prefix>:<user_id>
//                                           # and <prefix> (every event)
//   sse:
//     ring: 10000                           # events kept for Last-Event-ID resume
//     heartbeat_ms: 15000
//     max_client_bytes: 4194304             # queued for one slow client before it is dropped
//     max_total_bytes: 67108864             # queued for every client together
//   postgres:                               # connection and tables, shared by
//                                           # sinks.postgres, sources.postgres and
//                                           # search.backend postgres
//     host: 127.0.0.1                       # env DATABASE_HOST
//     port: 5433                            # env DATABASE_PORT
//     database: text_messages_db            # env DATABASE_NAME
//     user: postgres                        # env DATABASE_USER
//     password: postgres                    # env DATABASE_PASSWORD
//     text_table: text_messages
//     embeddings_table: message_embeddings
//     hnsw_m: 16                            # HNSW settings when the index is created
//     hnsw_ef_construction: 64              # (32: faster inserts, slightly lower recall)
//   sinks:
//     postgres:
//       mode: off                           # off | embeddings (text + vector rows) |
//                                           # text (seed 001's text writer: text rows
//                                           # only; sources.postgres embeds them)
//     qdrant:
//       url: ""                             # env QDRANT_URL; set: the Kafka pipeline
//                                           # writes points (id, vector, payload)
//       collection: ecommerce_embeddings    # env QDRANT_COLLECTION
//       api_key: ""                         # env QDRANT_API_KEY
//       batch_size: 256                     # points per upsert request
//       timeout_ms: 10000
//     jsonl:
//       path: ""                            # the jsonl sink writes seed 000 records here
//   sources:                                # every source names its sinks (docs/ARCHITECTURE.md);
//                                           # without a list, the defaults follow the keys
//                                           # above (SinksOf)
//     http:
//       sinks: [store]                      # env EMBEDSTREAM_HTTP_SINKS; the store is always
//                                           # its outbox (202 = on disk)
//     kafka:
//       topics: [text-messages]             # = kafka.input_topics
//       sinks: [store, kafka]               # env EMBEDSTREAM_KAFKA_SINKS
//     postgres:
//       enabled: false                      # embed pending rows of postgres.text_table
//                                           # (true when a sinks list or table is given)
//       table: text_messages                # = postgres.text_table
//       sinks: [postgres]                   # env EMBEDSTREAM_POSTGRES_SINKS
//       id_column: id
//       text_column: message
//       poll_interval_ms: 5000              # fallback when no NOTIFY arrives
//   chunking:                               # texts longer than the model takes (every
//                                           # source; sources.<name>.chunking overrides)
//     max_tokens: 0                         # per chunk with [CLS]/[SEP]; 0: the model's (256)
//     overlap_tokens: 32                    # repeated from the end of the chunk before
//     split: sentence                       # sentence (never cut one that fits) | tokens
//     on_overflow: chunk                    # chunk | truncate | reject (dead letter / 400)
//   search:
//     backend: embedded                     # embedded | postgres (pgvector) | qdrant
//   model: {...}                            # see encoder_flags.h

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "pg/connection.h"
#include "pipeline/chunker.h"
#include "pipeline/circuit_breaker.h"
#include "pipeline/event_mapping.h"

namespace embedstream::app {

struct KafkaSettings {
  std::string bootstrap_servers;
  std::string group_id = "embedstream";
  std::vector<std::string> input_topics = {"text-messages"};
  std::string output_topic = "embeddings";
  std::string dlq_topic;
  std::string auto_offset_reset = "earliest";
  std::map<std::string, std::string> properties;
  std::map<std::string, pipeline::EventMapping> mappings;  // by input topic

  bool enabled() const { return !bootstrap_servers.empty(); }
  std::string DlqTopic() const {
    return dlq_topic.empty() ? input_topics.front() + "-dlq" : dlq_topic;
  }
};

struct PostgresSettings {
  pg::ConnectionOptions connection;
  std::string text_table = "text_messages";
  std::string embeddings_table = "message_embeddings";
  int hnsw_m = 16;
  int hnsw_ef_construction = 64;
  std::string sink_mode = "off";  // off | embeddings | text
  bool source_enabled = false;
  std::string id_column = "id";
  std::string text_column = "message";
  int poll_interval_ms = 5000;
};

struct QdrantSettings {
  std::string url;  // empty: no Qdrant sink
  std::string collection = "ecommerce_embeddings";
  std::string api_key;
  size_t batch_size = 256;
  int timeout_ms = 10000;
  bool enabled() const { return !url.empty(); }
};

struct IngestSettings {
  std::string mode = "store";  // store | kafka
  std::string topic;           // "" = kafka.input_topics.front()
  int timeout_ms = 5000;
  bool kafka() const { return mode == "kafka"; }
};

struct EventsSettings {
  std::string bus = "local";  // local | kafka | redis
  std::string topic = "embedstream-events";
  std::string redis_url;
  std::string redis_prefix = "embedstream:events";
};

// The sinks a source may name, and the sources (SinkNames(), SourceNames()).
inline constexpr const char* kSinkNames[] = {"store", "postgres", "qdrant", "kafka", "jsonl"};
inline constexpr const char* kSourceNames[] = {"http", "kafka", "postgres"};

struct ServeConfig {
  KafkaSettings kafka;
  // sources.<name>.sinks as given (file, env EMBEDSTREAM_<NAME>_SINKS, flag
  // --sinks NAME=a,b); a source without an entry takes SinksOf's defaults.
  std::map<std::string, std::vector<std::string>> source_sinks;
  std::string jsonl_path;  // sinks.jsonl.path
  size_t batch_max_tokens = 8192;
  int batch_max_wait_ms = 50;
  int batch_linger_ms = 0;
  size_t max_inflight = 20000;
  size_t max_inflight_bytes = 256u
                              << 20;  // records in flight, in bytes (pipeline.max_inflight_bytes)
  size_t max_record_bytes = 1 << 20;
  int retry_base_ms = 200;
  int retry_max_ms = 10000;
  int retry_attempts = 3;  // tries for a record a sink refuses, before the DLQ
  pipeline::CircuitBreakerOptions breaker;
  std::string http_host = "0.0.0.0";
  int http_port = 5000;
  size_t http_max_body_bytes = 1 << 20;
  size_t http_max_document_bytes = 16 << 20;
  // chunking: (every source), and sources.<name>.chunking over it.
  pipeline::ChunkingOptions chunking;
  std::map<std::string, pipeline::ChunkingOptions> source_chunking;
  const pipeline::ChunkingOptions& ChunkingOf(const std::string& source) const {
    auto it = source_chunking.find(source);
    return it == source_chunking.end() ? chunking : it->second;
  }
  size_t http_max_connections = 4096;
  int http_write_timeout_ms = 30000;
  size_t http_max_response_bytes = 8 << 20;
  std::vector<std::string> http_cors_origins;
  std::string auth_token;
  std::string auth_read_token;
  bool auth_public_metrics = false;
  bool store_enabled = true;
  std::string store_dir = "data";
  bool store_sync_full = true;
  size_t store_max_queue = 10000;
  size_t store_max_queue_bytes = 64 << 20;
  IngestSettings ingest;
  EventsSettings events;
  size_t sse_ring = 10000;
  int sse_heartbeat_ms = 15000;
  size_t sse_max_client_bytes = 4 << 20;
  size_t sse_max_total_bytes = 64 << 20;
  PostgresSettings postgres;
  QdrantSettings qdrant;
  std::string search_backend = "embedded";  // embedded | postgres
  std::string log_level = "info";

  // The sinks `source` writes to, in write order: sources.<source>.sinks when
  // given, else the defaults of the older keys — kafka: [store] (store
  // enabled, not text mode) + [postgres] (sinks.postgres.mode) + [qdrant]
  // (sinks.qdrant.url) + [kafka] (the embeddings topic); http: [store];
  // postgres: [postgres].
  std::vector<std::string> SinksOf(const std::string& source) const;
  // The sources this configuration runs: http (store.enabled, ingest.mode
  // store), kafka (kafka.bootstrap_servers), postgres (sources.postgres.enabled).
  std::vector<std::string> Sources() const;
};

// Overrides given on the command line; empty/negative = not given.
struct ServeFlags {
  std::string config_file;
  std::string kafka_brokers;
  std::string group_id;
  std::vector<std::string> input_topics;
  std::string output_topic;
  std::string dlq_topic;
  std::string auto_offset_reset;
  long batch_max_tokens = -1;
  long batch_max_wait_ms = -1;
  long batch_linger_ms = -1;
  long http_port = -1;
  std::string http_host;
  std::string data_dir;
  std::string auth_token;
  bool no_store = false;
  std::string pg_sink;  // off | embeddings | text
  bool pg_source = false;
  long pg_poll_ms = -1;
  std::string search_backend;
  std::string qdrant_url;
  std::vector<std::string> sinks;  // SOURCE=SINK[,SINK...]
  std::string ingest_mode;         // store | kafka
  std::string events_bus;          // local | kafka | redis
  std::string redis_url;
};

// The file (flags.config_file, when given), then the environment, then the
// flags, then ValidateServeConfig.
Result<ServeConfig> LoadServeConfig(const ServeFlags& flags);

// The YAML step on its own: applies the settings of one YAML document (text,
// not a path) over `config`. Errors (invalid_argument) start with `where`.
// Bytes from outside (tests/fuzz/fuzz_serve_config.cc): a malformed or hostile
// document is an error, never a crash.
Status ApplyServeConfigYaml(std::string_view yaml_text, const std::string& where,
                            ServeConfig& config);

// The checks LoadServeConfig makes on the resolved configuration.
Status ValidateServeConfig(const ServeConfig& config);

// The effective configuration as JSON, safe to show: values of keys that look
// secret (password, secret, token, key, credential) and of every
// kafka.properties key librdkafka treats as sensitive (sasl.*, ssl.* keys,
// keystores, passwords, PEMs) are "***", and every URL's userinfo
// (scheme://user:pass@host) is "***@".
std::string ServeConfigJson(const ServeConfig& config);

// "scheme://user:pass@host/x" -> "scheme://***@host/x", for every URL in `s`
// (a comma-separated broker list included); other text unchanged.
std::string MaskUrlUserinfo(std::string_view s);
// A kafka.properties key whose value must not be shown (see ServeConfigJson).
bool IsSensitiveKafkaProperty(std::string_view key);

}  // namespace embedstream::app
